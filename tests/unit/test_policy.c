/* Lua policies (core/policy.h), as the server will use them: loading
 * reports every mistake with file and line, the helper library decides
 * what the docs say it does, decisions come out as the JSON the audit log
 * stores, and a set of deployment and template policies merges so that a
 * template can only narrow what the deployment allows. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "atrium/error.h"
#include "policy.h"

#define INPUT                                                                  \
  "{\"user\": {\"name\": \"alice\", \"email\": \"alice@example.com\","         \
  " \"roles\": [\"member\", \"template-admin\"], \"groups\": "                 \
  "[\"gpu-users\"]},"                                                          \
  " \"organization\": {\"name\": \"default\"},"                                \
  " \"template\": {\"id\": \"t1\", \"name\": \"docker-dev\"},"                 \
  " \"workspace\": {\"name\": \"dev\"}, \"transition\": \"start\","            \
  " \"parameters\": {\"old\": {\"cpus\": \"2\"}, \"new\": {\"cpus\": \"8\","   \
  " \"gpu\": \"true\", \"tags\": \"[\\\"a\\\",\\\"b\\\"]\", \"name\": "        \
  "\"x\"}}}"

static atr_policy_t *load(const char *name, const char *text) {
  atr_policy_t *p = NULL;
  char *err = NULL;
  int rc = atr_policy_load(name, text, strlen(text), NULL, &p, &err);
  if (rc != 0)
    fprintf(stderr, "load %s: %s\n", name, err ? err : "?");
  assert_int_equal(rc, 0);
  free(err);
  return p;
}

/* A loose time limit: on a slow machine (valgrind) the instruction limit
 * must still be the one hit. */
static const atr_policy_limits_t slow = {0, 20000, 0};

static void load_fails(const char *text, const char *message) {
  atr_policy_t *p = NULL;
  char *err = NULL;
  assert_int_equal(
      atr_policy_load("p.lua", text, strlen(text), &slow, &p, &err),
      ATR_EINVAL);
  assert_null(p);
  assert_non_null(err);
  assert_string_equal(err, message);
  free(err);
}

/* Evaluate hook of a policy made of text on INPUT. */
static void eval_text(const char *hook, const char *text, atr_decision_t *d) {
  atr_policy_t *p = load("p.lua", text);
  json_t *in = json_loads(INPUT, 0, NULL);
  assert_int_equal(atr_policy_eval(p, hook, in, NULL, d), 0);
  json_decref(in);
  atr_policy_unref(p);
}

/* The one warning a hook gave. */
static void warns(const char *body, const char *warning) {
  char text[2048];
  snprintf(text, sizeof text, "function workspace_create(input)\n%s\nend\n",
           body);
  atr_decision_t d;
  eval_text("workspace_create", text, &d);
  if (d.ndenies)
    fprintf(stderr, "denied: %s\n", d.denies[0].message);
  assert_int_equal(d.ndenies, 0);
  assert_int_equal(d.nwarnings, 1);
  assert_string_equal(d.warnings[0].message, warning);
  atr_decision_clear(&d);
}

static void denied(const char *hook, const char *body, const char *message) {
  char text[2048];
  snprintf(text, sizeof text, "function %s(input)\n%s\nend\n", hook, body);
  atr_decision_t d;
  eval_text(hook, text, &d);
  assert_int_equal(d.ndenies, 1);
  assert_string_equal(d.denies[0].message, message);
  atr_decision_clear(&d);
}

static char *decision_text(const atr_decision_t *d) {
  json_t *j = atr_decision_to_json(d);
  assert_non_null(j);
  char *s = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  return s;
}

/* ---- loading ------------------------------------------------------------- */

static void load_reports_mistakes_with_file_and_line(void **state) {
  load_fails("function build(input)\n  local x = = 1\nend\n",
             "p.lua:2: unexpected symbol near '='");
  load_fails("x = 1\n", "p.lua: defines none of the hooks (template_push, "
                        "workspace_create, build, schedule): a policy is a "
                        "file of global functions named after them");
  load_fails("function workspace_creat(input) end\n",
             "p.lua: defines none of the hooks (template_push, "
             "workspace_create, build, schedule): a policy is a file of "
             "global functions named after them");
  load_fails("build = 42\n", "p.lua: build is a number, not a function");
  load_fails("function build(input) end\nlocal t = nil\nt.x = 1\n",
             "p.lua:3: attempt to index a nil value (local 't')");
  load_fails("function build(input) end\npolicy.deny('always')\n",
             "p.lua:2: policy.deny: call it from a hook function, not at the "
             "top level of the file");
  load_fails("function build(input) end\nwhile true do end\n",
             "p.lua:2: instruction limit exceeded (1000000 instructions)");
  load_fails("\x1bLua\x54", "p.lua: attempt to load a binary chunk (mode is "
                            "'t')");
}

static void load_file_names_the_policy_after_the_file(void **state) {
  char dir[] = "/tmp/atrium-policy-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[512];
  snprintf(path, sizeof path, "%s/caps.lua", dir);
  FILE *f = fopen(path, "w");
  fputs("function build(input) policy.warn('hi') end\n", f);
  fclose(f);
  atr_policy_t *p = NULL;
  char *err = NULL;
  assert_int_equal(atr_policy_load_file(path, NULL, &p, &err), 0);
  assert_string_equal(atr_policy_name(p), "caps.lua");
  assert_true(atr_policy_has_hook(p, "build"));
  assert_false(atr_policy_has_hook(p, "workspace_create"));
  assert_false(atr_policy_has_hook(p, "nope"));
  atr_policy_unref(p);
  snprintf(path, sizeof path, "%s/missing.lua", dir);
  assert_int_equal(atr_policy_load_file(path, NULL, &p, &err), ATR_ENOENT);
  char want[600];
  snprintf(want, sizeof want, "%s: No such file or directory", path);
  assert_string_equal(err, want);
  free(err);
  snprintf(path, sizeof path, "%s/caps.lua", dir);
  unlink(path);
  rmdir(dir);
}

static void a_memory_limit_too_small_is_reported(void **state) {
  atr_policy_limits_t lim = {0, 0, 1024};
  atr_policy_t *p = NULL;
  char *err = NULL;
  static const char text[] = "function build(input) end\n";
  assert_int_equal(
      atr_policy_load("p.lua", text, sizeof text - 1, &lim, &p, &err),
      ATR_EINVAL);
  assert_string_equal(err, "p.lua: the policy memory limit is too small");
  free(err);
  /* Loaded with room, evaluated without: a deny. */
  p = load("p.lua", text);
  json_t *in = json_object();
  atr_decision_t d;
  assert_int_equal(atr_policy_eval(p, "build", in, &lim, &d), 0);
  assert_int_equal(d.ndenies, 1);
  assert_string_equal(d.denies[0].message,
                      "policy p.lua: memory limit exceeded (1KiB)");
  atr_decision_clear(&d);
  json_decref(in);
  atr_policy_unref(p);
}

static void eval_checks_its_arguments(void **state) {
  atr_policy_t *p = load("p.lua", "function build(input) policy.warn('x') end");
  json_t *in = json_object(), *arr = json_array();
  atr_decision_t d;
  assert_int_equal(atr_policy_eval(p, "nope", in, NULL, &d), ATR_EINVAL);
  assert_int_equal(atr_policy_eval(p, "build", arr, NULL, &d), ATR_EINVAL);
  assert_int_equal(atr_policy_eval(NULL, "build", in, NULL, &d), ATR_EINVAL);
  /* A hook the policy does not define has no opinion. */
  assert_int_equal(atr_policy_eval(p, "schedule", in, NULL, &d), 0);
  assert_int_equal(d.ndenies + d.nwarnings + d.nsets, 0);
  assert_int_equal(atr_policy_eval(p, "build", in, NULL, &d), 0);
  assert_int_equal(d.nwarnings, 1);
  atr_decision_clear(&d);
  json_decref(in);
  json_decref(arr);
  atr_policy_unref(p);
}

/* ---- the helper library -------------------------------------------------- */

static void helpers_read_the_input(void **state) {
  warns("policy.warn(tostring(policy.has_role(input, 'template-admin')) .. "
        "tostring(policy.has_role(input, 'owner')) .. "
        "tostring(policy.in_group(input, 'gpu-users')) .. "
        "tostring(policy.in_group(input, 'member')))",
        "truefalsetruefalse");
  warns("policy.warn(policy.param(input, 'cpus') .. policy.param(input, "
        "'cpus', 'old') .. tostring(policy.param(input, 'nope')) .. "
        "math.type(policy.number(input, 'cpus')) .. "
        "tostring(policy.number(input, 'name')) .. "
        "tostring(policy.bool(input, 'gpu')) .. "
        "tostring(policy.bool(input, 'cpus')))",
        "82nilintegerniltruenil");
  warns("local t = policy.list(input, 'tags')\n"
        "t[#t + 1] = 'mine'\n"
        "policy.warn(table.concat(t, ',') .. tostring(policy.list(input, "
        "'cpus')))",
        "a,b,minenil");
}

static void helpers_check_their_arguments(void **state) {
  denied("workspace_create", "policy.has_role('owner')",
         "policy p.lua:2: bad argument #1 to 'has_role' (table expected, got "
         "string)");
  denied("workspace_create", "policy.param(input, 'cpus', 'older')",
         "policy p.lua:2: bad argument #3 to 'param' (invalid option "
         "'older')");
  denied("workspace_create", "policy.deny('')",
         "policy p.lua:2: bad argument #1 to 'deny' (the message is empty)");
  denied("workspace_create", "policy.set('cpus')",
         "policy p.lua:2: bad argument #2 to 'set' (value expected)");
  denied("workspace_create", "policy.set('cpus', {})\npolicy.set('x', {1})",
         "policy p.lua:3: policy.set: item 1 of the list is a number, not a "
         "string");
  denied("workspace_create", "policy.set('cpus', 0/0)",
         "policy p.lua:2: bad argument #2 to 'set' (the number is not "
         "finite)");
  denied("template_push", "policy.set('cpus', 2)",
         "policy p.lua:2: policy.set: template_push cannot set values");
  denied("schedule", "policy.set('cpus', 2)",
         "policy p.lua:2: policy.set: schedule can set \"autostart\" and "
         "\"ttl_ms\", not \"cpus\"");
}

static void set_writes_values_as_the_api_passes_them(void **state) {
  atr_decision_t d;
  eval_text("workspace_create",
            "function workspace_create(input)\n"
            "  policy.set('a', 4)\n"
            "  policy.set('b', 4.0)\n"
            "  policy.set('c', 2.5)\n"
            "  policy.set('d', true)\n"
            "  policy.set('e', {'x', 'y\"z'})\n"
            "  policy.set('f', 'text')\n"
            "  policy.set('a', 5)\n"
            "  policy.set('g', {})\n"
            "end\n",
            &d);
  char *s = decision_text(&d);
  assert_string_equal(
      s, "{\"denies\":[],\"warnings\":[],\"sets\":{\"a\":\"5\",\"b\":\"4\","
         "\"c\":\"2.5\",\"d\":\"true\",\"e\":\"[\\\"x\\\",\\\"y\\\\\\\"z\\\"]"
         "\",\"f\":\"text\",\"g\":\"[]\"},\"set_by\":{\"a\":\"p.lua\",\"b\":"
         "\"p.lua\",\"c\":\"p.lua\",\"d\":\"p.lua\",\"e\":\"p.lua\",\"f\":"
         "\"p.lua\",\"g\":\"p.lua\"}}");
  free(s);
  atr_decision_clear(&d);
}

static void a_failing_policy_sets_nothing(void **state) {
  atr_decision_t d;
  eval_text("workspace_create",
            "function workspace_create(input)\n"
            "  policy.set('cpus', 2)\n"
            "  policy.warn('before')\n"
            "  policy.deny('first', 'cpus')\n"
            "  error('then it broke')\n"
            "end\n",
            &d);
  char *s = decision_text(&d);
  assert_string_equal(
      s, "{\"denies\":[{\"message\":\"first\",\"parameter\":\"cpus\","
         "\"policy\":\"p.lua\"},{\"message\":\"policy p.lua:5: then it "
         "broke\",\"parameter\":null,\"policy\":\"p.lua\"}],\"warnings\":[{"
         "\"message\":\"before\",\"policy\":\"p.lua\"}],\"sets\":{},"
         "\"set_by\":{}}");
  free(s);
  atr_decision_clear(&d);
}

/* ---- sets: deployment first, the template can only narrow --------------- */

typedef struct fixture {
  atr_policy_set_t set;
  atr_decision_t d;
  json_t *input;
} fixture_t;

static void run_set(fixture_t *f, const char *deployment,
                    const char *template_policy) {
  atr_policy_set_init(&f->set);
  atr_policy_t *dep = load("caps.lua", deployment);
  atr_policy_t *tpl =
      template_policy ? load("policy.lua", template_policy) : NULL;
  /* Added in the wrong order on purpose: scopes decide the order. */
  if (tpl)
    assert_int_equal(atr_policy_set_add(&f->set, tpl, ATR_POLICY_TEMPLATE), 0);
  assert_int_equal(atr_policy_set_add(&f->set, dep, ATR_POLICY_DEPLOYMENT), 0);
  atr_policy_unref(dep); /* the set holds its own references */
  atr_policy_unref(tpl);
  f->input = json_loads(INPUT, 0, NULL);
  assert_int_equal(
      atr_policy_set_eval(&f->set, "workspace_create", f->input, NULL, &f->d),
      0);
}

static void fixture_clear(fixture_t *f) {
  atr_decision_clear(&f->d);
  atr_policy_set_clear(&f->set);
  json_decref(f->input);
}

static const char caps[] =
    "function workspace_create(input)\n"
    "  local cpus = policy.number(input, 'cpus')\n"
    "  if cpus > 8 then policy.deny('at most 8 CPUs', 'cpus') end\n"
    "  if cpus < 2 then policy.set('cpus', 2) end\n"
    "  policy.set('memory', 16)\n"
    "  print('caps saw ' .. cpus)\n"
    "end\n";

static void deployment_first_then_template(void **state) {
  fixture_t f;
  run_set(&f, caps,
          "function workspace_create(input)\n"
          "  policy.warn('memory is ' .. policy.param(input, 'memory'))\n"
          "  policy.deny('this template wants a gpu', 'gpu')\n"
          "end\n");
  char *s = decision_text(&f.d);
  assert_string_equal(
      s, "{\"denies\":[{\"message\":\"this template wants a gpu\","
         "\"parameter\":\"gpu\",\"policy\":\"policy.lua\"}],\"warnings\":[{"
         "\"message\":\"memory is 16\",\"policy\":\"policy.lua\"}],\"sets\":{"
         "\"memory\":\"16\"},\"set_by\":{\"memory\":\"caps.lua\"}}");
  free(s);
  assert_int_equal(f.d.noutput, 1);
  assert_string_equal(f.d.output[0].message, "caps saw 8");
  fixture_clear(&f);
}

static void a_template_cannot_change_what_the_deployment_set(void **state) {
  fixture_t f;
  run_set(&f, caps,
          "function workspace_create(input)\n"
          "  policy.set('memory', 64)\n"
          "end\n");
  assert_int_equal(f.d.ndenies, 0);
  assert_string_equal(atr_decision_get_set(&f.d, "memory"), "16");
  assert_int_equal(f.d.nwarnings, 1);
  assert_string_equal(f.d.warnings[0].message,
                      "policy.set(\"memory\", \"64\") was ignored: the "
                      "deployment policy caps.lua set it to \"16\"");
  assert_string_equal(f.d.warnings[0].policy, "policy.lua");
  fixture_clear(&f);
}

static void a_template_set_is_checked_by_the_deployment(void **state) {
  fixture_t f;
  /* 8 CPUs pass the cap; the template raises them to 32: denied. */
  run_set(&f, caps,
          "function workspace_create(input)\n"
          "  policy.set('cpus', 32)\n"
          "end\n");
  assert_int_equal(f.d.ndenies, 1);
  assert_string_equal(f.d.denies[0].message, "at most 8 CPUs");
  assert_string_equal(f.d.denies[0].policy, "caps.lua");
  assert_string_equal(atr_decision_get_set(&f.d, "cpus"), "32");
  /* The deployment ran twice; its output is shown once. */
  assert_int_equal(f.d.noutput, 1);
  fixture_clear(&f);
  /* Lowered to 1: the deployment raises it to its minimum again. */
  run_set(&f, caps,
          "function workspace_create(input)\n"
          "  policy.set('cpus', 1)\n"
          "end\n");
  assert_int_equal(f.d.ndenies, 0);
  assert_string_equal(atr_decision_get_set(&f.d, "cpus"), "2");
  fixture_clear(&f);
}

static void a_template_cannot_remove_a_deployment_deny(void **state) {
  fixture_t f;
  run_set(&f,
          "function workspace_create(input)\n"
          "  policy.deny('creates are frozen')\n"
          "end\n",
          "function workspace_create(input)\n"
          "  error('whatever the template does')\n"
          "end\n");
  assert_int_equal(f.d.ndenies, 2);
  assert_string_equal(f.d.denies[0].message, "creates are frozen");
  assert_string_equal(f.d.denies[1].message,
                      "policy policy.lua:2: whatever the template does");
  fixture_clear(&f);
}

static void load_files_is_all_or_nothing(void **state) {
  char dir[] = "/tmp/atrium-policies-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[512], glob[512];
  const char *names[] = {"20-b.lua", "10-a.lua"};
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    FILE *f = fopen(path, "w");
    fprintf(f, "function build(input) policy.warn('%s') end\n", names[i]);
    fclose(f);
  }
  snprintf(glob, sizeof glob, "%s/*.lua", dir);
  const char *globs[] = {glob, NULL};
  atr_policy_set_t s;
  atr_policy_set_init(&s);
  char *err = NULL;
  assert_int_equal(
      atr_policy_set_load_files(&s, globs, ATR_POLICY_DEPLOYMENT, NULL, &err),
      0);
  assert_int_equal(s.n, 2);
  assert_string_equal(atr_policy_name(s.items[0].policy), "10-a.lua");
  assert_string_equal(atr_policy_name(s.items[1].policy), "20-b.lua");
  /* A broken file: nothing changes, the error names it. */
  snprintf(path, sizeof path, "%s/30-c.lua", dir);
  FILE *f = fopen(path, "w");
  fputs("function build(input)\n", f);
  fclose(f);
  assert_int_equal(
      atr_policy_set_load_files(&s, globs, ATR_POLICY_DEPLOYMENT, NULL, &err),
      ATR_EINVAL);
  char want[700];
  snprintf(want, sizeof want,
           "policy %s:2: 'end' expected (to close 'function' at line 1) near "
           "<eof>",
           path);
  assert_string_equal(err, want);
  free(err);
  assert_int_equal(s.n, 2);
  /* A pattern matching nothing is no policies; a missing file an error. */
  snprintf(glob, sizeof glob, "%s/none-*.lua", dir);
  assert_int_equal(
      atr_policy_set_load_files(&s, globs, ATR_POLICY_DEPLOYMENT, NULL, &err),
      0);
  snprintf(glob, sizeof glob, "%s/none.lua", dir);
  assert_int_equal(
      atr_policy_set_load_files(&s, globs, ATR_POLICY_DEPLOYMENT, NULL, &err),
      ATR_ENOENT);
  free(err);
  assert_int_equal(s.n, 2);
  /* A request's copy holds its own references. */
  atr_policy_set_t copy;
  atr_policy_set_init(&copy);
  assert_int_equal(atr_policy_set_add_all(&copy, &s), 0);
  atr_policy_set_clear(&s);
  assert_int_equal(copy.n, 2);
  assert_string_equal(atr_policy_name(copy.items[1].policy), "20-b.lua");
  assert_int_equal(copy.items[1].scope, ATR_POLICY_DEPLOYMENT);
  atr_policy_set_clear(&copy);
  for (int i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  snprintf(path, sizeof path, "%s/30-c.lua", dir);
  unlink(path);
  rmdir(dir);
}

/* ---- threads ------------------------------------------------------------- */

typedef struct shared {
  atr_policy_t *p;
  json_t *input;
  int failures;
} shared_t;

static void *evaluate_many(void *arg) {
  shared_t *sh = arg;
  for (int i = 0; i < 200; i++) {
    atr_decision_t d;
    if (atr_policy_eval(sh->p, "workspace_create", sh->input, NULL, &d) != 0 ||
        d.ndenies != 0 || !atr_decision_get_set(&d, "memory"))
      __atomic_add_fetch(&sh->failures, 1, __ATOMIC_RELAXED);
    atr_decision_clear(&d);
  }
  return NULL;
}

static void one_policy_evaluates_on_many_threads(void **state) {
  shared_t sh = {load("caps.lua", caps), json_loads(INPUT, 0, NULL), 0};
  pthread_t t[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&t[i], NULL, evaluate_many, &sh), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(t[i], NULL);
  assert_int_equal(sh.failures, 0);
  json_decref(sh.input);
  atr_policy_unref(sh.p);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(load_reports_mistakes_with_file_and_line),
      cmocka_unit_test(load_file_names_the_policy_after_the_file),
      cmocka_unit_test(a_memory_limit_too_small_is_reported),
      cmocka_unit_test(eval_checks_its_arguments),
      cmocka_unit_test(helpers_read_the_input),
      cmocka_unit_test(helpers_check_their_arguments),
      cmocka_unit_test(set_writes_values_as_the_api_passes_them),
      cmocka_unit_test(a_failing_policy_sets_nothing),
      cmocka_unit_test(deployment_first_then_template),
      cmocka_unit_test(a_template_cannot_change_what_the_deployment_set),
      cmocka_unit_test(a_template_set_is_checked_by_the_deployment),
      cmocka_unit_test(a_template_cannot_remove_a_deployment_deny),
      cmocka_unit_test(load_files_is_all_or_nothing),
      cmocka_unit_test(one_policy_evaluates_on_many_threads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
