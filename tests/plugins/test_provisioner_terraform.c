/* tests/plugins/test_provisioner_terraform.c — what provisioner_terraform
 * promises a provisioner daemon, with the real terraform binary.
 *
 * Each test loads the real provisioner_terraform.so through the core loader
 * and drives the starter template examples/templates/terraform-local as the
 * host would: a fresh copy of the template per job, plan() then apply(),
 * and the state of one build given to the next. The workspaces are
 * directories under a temporary root. The job is this file's own
 * atr_prov_job_t, which records every log line.
 *
 * Two tests use a fake terraform (a shell script) to print exact -json
 * lines and to ignore SIGINT. Without a terraform at ATR_TEST_TERRAFORM
 * the whole test is skipped (exit 77).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atrium/provisioner.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "prov_harness.h"

#define TEMPLATE_DIR ATR_TEST_SOURCE_DIR "/examples/templates/terraform-local"
#define CANARY "Canary-tf-5e1d8b"
#define SERVER_SECRET "server-secret-9c2f"

static FILE *log_stream;
static char *log_buf;
static size_t log_len;

/* ---- the job: prov_harness.h records log lines and the cancel flag */

static void assert_logged(atr_prov_job_t *job, atr_log_level_t level,
                          const char *stage, const char *line) {
  for (size_t i = 0; i < job->n; i++) {
    if (strcmp(job->v[i].line, line) == 0) {
      assert_int_equal(job->v[i].level, level);
      assert_string_equal(job->v[i].stage, stage);
      return;
    }
  }
  fail_msg("not in the job log: \"%s\"", line);
}

/* ---- files */

static char *path2(const char *a, const char *b) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", a, b) >= 0);
  return p;
}

static void copy_file(const char *from, const char *to, mode_t mode) {
  int in = open(from, O_RDONLY);
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
  assert_true(in >= 0 && out >= 0);
  char buf[8192];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    assert_int_equal(write(out, buf, (size_t)n), n);
  close(in);
  close(out);
}

static void copy_tree(const char *from, const char *to) {
  assert_int_equal(mkdir(to, 0700), 0);
  DIR *d = opendir(from);
  assert_non_null(d);
  const struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *a = path2(from, e->d_name), *b = path2(to, e->d_name);
    struct stat st;
    assert_int_equal(stat(a, &st), 0);
    if (S_ISDIR(st.st_mode))
      copy_tree(a, b);
    else
      copy_file(a, b, st.st_mode & 0777);
    free(a);
    free(b);
  }
  closedir(d);
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

static void rm_tree(const char *path) {
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void write_text(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

/* The file's text (malloc'd), or NULL when it does not exist. */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 1 << 20);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Descriptors open in this process. */
static int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

/* ---- the plugin */

typedef struct fx {
  ph_plugin_t plugin;
  atr_handle_t *h;
  const atr_provisioner_ops_t *ops;
  void *ctx;
  char *base; /* this test's temporary directory */
  char *root; /* the template's root parameter: workspaces go here */
  int njobs;
} fx_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Load the plugin with `options` (YAML lines under its section, indented
 * by four spaces; NULL: the real terraform). 0, or the failing step's
 * code with its message in *err. */
static int fx_try(fx_t *f, const char *options, char **err) {
  memset(f, 0, sizeof *f);
  f->base = strdup("/tmp/atr-test-tf-XXXXXX");
  assert_non_null(mkdtemp(f->base));
  f->root = path2(f->base, "root");
  assert_int_equal(mkdir(f->root, 0700), 0);
  int rc = ph_plugin_try(
      &f->plugin, ATR_TEST_PLUGIN_DIR, "provisioner_terraform",
      options ? options : "    binary: " ATR_TEST_TERRAFORM "\n", err);
  f->h = f->plugin.h;
  f->ops = f->plugin.ops;
  f->ctx = f->plugin.ctx;
  return rc;
}

static void fx_start(fx_t *f, const char *options) {
  char *err = NULL;
  if (fx_try(f, options, &err) != 0)
    fail_msg("start: %s", err);
}

static void fx_stop(fx_t *f) {
  ph_plugin_stop(&f->plugin);
  rm_tree(f->base);
  free(f->base);
  free(f->root);
}

/* A fresh copy of the starter template, as the host unpacks one per job. */
static char *fx_workdir(fx_t *f) {
  char name[32];
  snprintf(name, sizeof name, "job-%d", ++f->njobs);
  char *dir = path2(f->base, name);
  copy_tree(TEMPLATE_DIR, dir);
  return dir;
}

/* A script in the test's directory that plays terraform. */
static char *fx_fake(const char *body) {
  char dir[] = "/tmp/atr-test-tf-fake-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *path = path2(dir, "terraform");
  char *text = NULL;
  assert_true(asprintf(&text,
                       "#!/bin/sh\n"
                       "if [ \"$1\" = version ]; then\n"
                       "  echo '{\"terraform_version\": \"1.11.4\"}'\n"
                       "  exit 0\n"
                       "fi\n%s",
                       body) >= 0);
  write_text(path, text, 0755);
  free(text);
  return path;
}

/* Shell lines printing each of lines (which hold no ') on stdout. */
static char *printing(const char *const *lines, size_t n) {
  char *out = strdup("");
  for (size_t i = 0; i < n; i++) {
    char *more = NULL;
    assert_true(asprintf(&more, "%sprintf '%%s\\n' '%s'\n", out, lines[i]) >=
                0);
    free(out);
    out = more;
  }
  return out;
}

static void fake_free(char *path) {
  char *dir = strdup(path);
  *strrchr(dir, '/') = '\0';
  rm_tree(dir);
  free(dir);
  free(path);
}

/* ---- builds */

/* A parameter of one build: the starter's six, plus what a test adds. */
typedef struct pv {
  const char *name, *value, *type;
  int sensitive;
} pv_t;

typedef struct build {
  atr_transition_t transition;
  const pv_t *extra; /* {0}-terminated overrides and additions, or NULL */
  bool skip_plan;    /* as a host that does not call plan() */
  /* Out: */
  atr_prov_job_t job;
  int rc;
  char *err;
  atr_prov_apply_result_t res;
  char *workdir;
} build_t;

typedef struct ws {
  fx_t *f;
  const char *name;
  int64_t number;
  char *state;
  size_t state_len;
} ws_t;

static size_t make_params(fx_t *f, const pv_t *extra, atr_param_value_t *out,
                          size_t max) {
  const pv_t base[] = {{"root", f->root, "string", 0},
                       {"greeting", "hello", "string", 0},
                       {"cpus", "2", "number", 0},
                       {"secret_token", CANARY, "string", 1},
                       {"sleep_seconds", "0", "number", 0},
                       {"fail", "false", "bool", 0}};
  size_t n = 0;
  for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
    out[n++] =
        (atr_param_value_t){sizeof(atr_param_value_t), base[i].name,
                            base[i].value, base[i].type, base[i].sensitive};
  for (size_t k = 0; extra != NULL && extra[k].name != NULL; k++) {
    size_t i = 0;
    while (i < n && strcmp(out[i].name, extra[k].name) != 0)
      i++;
    assert_true(i < max);
    out[i] =
        (atr_param_value_t){sizeof(atr_param_value_t), extra[k].name,
                            extra[k].value, extra[k].type, extra[k].sensitive};
    if (i == n)
      n++;
  }
  return n;
}

/* plan() and apply() of the workspace's next build in a fresh workdir. */
static void ws_build(ws_t *ws, build_t *b) {
  fx_t *f = ws->f;
  ph_job_init(&b->job);
  b->workdir = fx_workdir(f);
  atr_param_value_t params[16];
  size_t np = make_params(f, b->extra, params, 16);
  atr_prov_apply_request_t req = {
      .struct_size = sizeof req,
      .job = &b->job,
      .log = ph_job_log,
      .canceled = ph_job_canceled,
      .workdir = b->workdir,
      .transition = b->transition,
      .build_number = ++ws->number,
      .workspace_id = "6a1f0c2e-0000-4000-8000-00000000000a",
      .workspace_name = ws->name,
      .owner_id = "6a1f0c2e-0000-4000-8000-00000000000b",
      .owner_name = "alice",
      .owner_email = "alice@example.com",
      .organization_id = "6a1f0c2e-0000-4000-8000-00000000000c",
      .template_id = "6a1f0c2e-0000-4000-8000-00000000000d",
      .template_name = "terraform-local",
      .template_version_id = "6a1f0c2e-0000-4000-8000-00000000000e",
      .template_version_name = "v1",
      .params = params,
      .nparams = np,
      .prior_state = ws->state,
      .prior_state_len = ws->state_len};
  memset(&b->res, 0, sizeof b->res);
  b->err = NULL;
  b->rc = b->skip_plan ? 0 : f->ops->plan(f->ctx, &req, &b->err);
  if (b->rc == 0)
    b->rc = f->ops->apply(f->ctx, &req, &b->res, &b->err);
  if (b->res.state != NULL) { /* the host keeps what it was given */
    free(ws->state);
    ws->state = malloc(b->res.state_len + 1);
    memcpy(ws->state, b->res.state, b->res.state_len);
    ws->state[b->res.state_len] = '\0';
    ws->state_len = b->res.state_len;
  }
}

static void build_ok(ws_t *ws, build_t *b) {
  ws_build(ws, b);
  if (b->rc != 0)
    fail_msg("build %lld: %s (%s)", (long long)ws->number, b->err,
             atr_err_name(b->rc));
  assert_null(b->err);
}

static void build_free(build_t *b) {
  free(b->err);
  ph_result_release(&b->res); /* as the core reads and frees it */
  free(b->workdir);
  ph_job_free(&b->job);
}

/* The resource with metadata address == addr, or NULL. */
static const atr_prov_resource_t *resource(const build_t *b, const char *addr) {
  for (size_t i = 0; i < b->res.nresources; i++) {
    const atr_prov_resource_t *r = &b->res.resources[i];
    for (size_t k = 0; k < r->nmetadata; k++) {
      if (strcmp(r->metadata[k].key, "address") == 0 &&
          strcmp(r->metadata[k].value, addr) == 0)
        return r;
    }
  }
  return NULL;
}

static char *ws_file(const ws_t *ws, const char *name) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/alice/%s%s%s", ws->f->root, ws->name,
                       name ? "/" : "", name ? name : "") >= 0);
  return p;
}

static char *ws_read(const ws_t *ws, const char *name) {
  char *p = ws_file(ws, name);
  char *text = read_text(p);
  free(p);
  return text;
}

static bool ws_has(const ws_t *ws, const char *name) {
  char *p = ws_file(ws, name);
  bool yes = exists(p);
  free(p);
  return yes;
}

/* ---- parse */

typedef struct parsed {
  atr_prov_job_t job;
  int rc;
  char *err;
} parsed_t;

static void parse(fx_t *f, const char *workdir, const char *const *names,
                  size_t n, parsed_t *p) {
  ph_job_init(&p->job);
  atr_prov_parse_request_t req = {.struct_size = sizeof req,
                                  .job = &p->job,
                                  .log = ph_job_log,
                                  .canceled = ph_job_canceled,
                                  .workdir = workdir,
                                  .param_names = names,
                                  .nparams = n};
  p->err = NULL;
  p->rc = f->ops->parse(f->ctx, &req, &p->err);
}

static void parsed_free(parsed_t *p) {
  free(p->err);
  ph_job_free(&p->job);
}

static const char *const starter_params[] = {
    "root", "greeting", "cpus", "secret_token", "sleep_seconds", "fail"};

static void test_descriptor_is_the_terraform_type(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  assert_int_equal(f.h->desc->kind, ATR_KIND_PROVISIONER);
  assert_string_equal(f.ops->type, "terraform");
  assert_int_equal(f.ops->struct_size, sizeof(atr_provisioner_ops_t));
  assert_true(ATR_PROVISIONER_HAS_PLAN(f.ops));
  assert_non_null(f.ops->parse);
  assert_non_null(f.ops->apply);
  assert_non_null(f.ops->cancel);
  fx_stop(&f);
  /* init logged the version it found. */
  assert_int_equal(fflush(log_stream), 0);
  assert_non_null(strstr(log_buf, "[provisioner_terraform] Terraform 1."));
  assert_non_null(strstr(log_buf, " at " ATR_TEST_TERRAFORM));
}

static void test_parse_accepts_the_starter_template(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *dir = fx_workdir(&f);
  const char *names[] = {"root",          "greeting",      "cpus",
                         "secret_token",  "sleep_seconds", "fail",
                         "not_a_variable"};
  parsed_t p;
  parse(&f, dir, names, 7, &p);
  if (p.rc != 0)
    fail_msg("parse: %s", p.err);
  assert_null(p.err);
  assert_logged(&p.job, ATR_LOG_INFO, "Initializing",
                "Terraform has been successfully initialized!");
  assert_logged(&p.job, ATR_LOG_INFO, "Validating",
                "The configuration is valid.");
  /* Only the parameter that main.tf does not declare is warned about. */
  const ph_line_t *w = ph_job_find(&p.job, ATR_LOG_WARN, "is not a variable");
  assert_non_null(w);
  assert_string_equal(
      w->line, "parameter \"not_a_variable\" is not a variable of the "
               "Terraform configuration, so var.not_a_variable does not "
               "exist; declare variable \"not_a_variable\" {} to use it (it "
               "is in the environment as ATRIUM_PARAM_NOT_A_VARIABLE either "
               "way)");
  assert_null(ph_job_find(&p.job, -1, "parameter \"greeting\""));
  parsed_free(&p);
  free(dir);
  fx_stop(&f);
}

static void test_parse_rejects_a_syntax_error_with_file_and_line(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *dir = fx_workdir(&f);
  char *bad = path2(dir, "broken.tf");
  write_text(bad, "resource \"terraform_data\" \"x\" {\n  input = \n}\n", 0644);
  parsed_t p;
  parse(&f, dir, starter_params, 6, &p);
  assert_int_equal(p.rc, ATR_EPLUGIN);
  assert_non_null(p.err);
  assert_non_null(strstr(p.err, "terraform init failed (exit status 1): "
                                "broken.tf:2: Invalid expression: Expected "
                                "the start of an expression"));
  assert_non_null(strstr(p.err, "fix the template's Terraform files"));
  assert_logged(&p.job, ATR_LOG_ERROR, "Initializing",
                "Error: broken.tf:2: Invalid expression");
  parsed_free(&p);
  free(bad);
  free(dir);
  fx_stop(&f);
}

static void test_parse_rejects_an_invalid_reference(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *dir = fx_workdir(&f);
  char *bad = path2(dir, "extra.tf");
  write_text(bad,
             "resource \"terraform_data\" \"x\" {\n  input = var.nope\n}\n",
             0644);
  parsed_t p;
  parse(&f, dir, starter_params, 6, &p);
  assert_int_equal(p.rc, ATR_EPLUGIN);
  assert_non_null(strstr(p.err, "terraform validate failed (exit status 1): "
                                "extra.tf:2: Reference to undeclared input "
                                "variable: An input variable with the name "
                                "\"nope\" has not been declared."));
  assert_logged(&p.job, ATR_LOG_ERROR, "Validating",
                "Error: extra.tf:2: Reference to undeclared input variable");
  parsed_free(&p);
  free(bad);
  free(dir);
  fx_stop(&f);
}

static void test_parse_needs_a_tf_file(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *dir = fx_workdir(&f);
  char *main_tf = path2(dir, "main.tf");
  assert_int_equal(unlink(main_tf), 0);
  parsed_t p;
  parse(&f, dir, starter_params, 6, &p);
  assert_int_equal(p.rc, ATR_EINVAL);
  assert_string_equal(p.err, "the template has no .tf or .tf.json file next to "
                             "template.yaml; put the Terraform configuration "
                             "(main.tf) at the root of the archive");
  parsed_free(&p);
  free(main_tf);
  free(dir);
  fx_stop(&f);
}

/* ---- builds of the starter */

static void test_start_creates_the_workspace_directory(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "dev"};
  build_t b = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &b);

  char *params = ws_read(&ws, "parameters.json");
  assert_non_null(params);
  assert_string_equal(params,
                      "{\"cpus\":2,\"fail\":false,\"greeting\":\"hello\","
                      "\"sleep_seconds\":0,\"workspace_id\":\"6a1f0c2e-0000-"
                      "4000-8000-00000000000a\"}\n");
  char *running = ws_read(&ws, "running");
  assert_string_equal(running, "build 1\n");
  char *token = ws_read(&ws, ".token");
  assert_string_equal(token, CANARY);
  char *token_path = ws_file(&ws, ".token");
  struct stat st;
  assert_int_equal(stat(token_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  /* The state is Terraform's, and every resource is listed with its id. */
  assert_non_null(b.res.state);
  assert_int_equal(b.res.state_len, strlen(b.res.state));
  assert_non_null(strstr(b.res.state, "\"terraform_version\""));
  assert_int_equal(b.res.nresources, 3);
  const char *addrs[] = {"terraform_data.home", "terraform_data.running[0]",
                         "terraform_data.token[0]"};
  const char *names[] = {"home", "running", "token"};
  for (size_t i = 0; i < 3; i++) {
    const atr_prov_resource_t *r = resource(&b, addrs[i]);
    assert_non_null(r);
    assert_string_equal(r->type, "terraform_data");
    assert_string_equal(r->name, names[i]);
    assert_non_null(r->id);
    assert_int_equal(strlen(r->id), 36);
    assert_string_equal(r->metadata[1].key, "provider");
    assert_string_equal(r->metadata[1].value, "terraform.io/builtin/terraform");
  }
  assert_logged(&b.job, ATR_LOG_INFO, "Applying",
                "Apply complete! Resources: 3 added, 0 changed, 0 destroyed.");
  assert_non_null(ph_job_find(&b.job, ATR_LOG_INFO, "Plan: 3 to add"));
  free(params);
  free(running);
  free(token);
  free(token_path);
  build_free(&b);
  free(ws.state);
  fx_stop(&f);
}

static void test_stop_removes_the_marker_and_keeps_the_directory(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "dev"};
  build_t start = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &start);
  build_t stop = {.transition = ATR_TRANSITION_STOP};
  build_ok(&ws, &stop);

  assert_true(ws_has(&ws, NULL));
  assert_false(ws_has(&ws, "running"));
  assert_false(ws_has(&ws, "parameters.json"));
  assert_false(ws_has(&ws, ".token"));
  assert_int_equal(stop.res.nresources, 1);
  assert_string_equal(resource(&stop, "terraform_data.home")->id,
                      resource(&start, "terraform_data.home")->id);
  assert_non_null(ph_job_find(&stop.job, ATR_LOG_INFO,
                              "Plan: 0 to add, 0 to change, 2 to "
                              "destroy."));
  build_free(&start);
  build_free(&stop);
  free(ws.state);
  fx_stop(&f);
}

static void test_start_after_stop_keeps_the_home_resource(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "dev"};
  build_t b1 = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &b1);
  build_t b2 = {.transition = ATR_TRANSITION_STOP};
  build_ok(&ws, &b2);
  const pv_t bonjour[] = {{"greeting", "bonjour", "string", 0}, {0}};
  build_t b3 = {.transition = ATR_TRANSITION_START, .extra = bonjour};
  build_ok(&ws, &b3);

  const char *id = resource(&b1, "terraform_data.home")->id;
  assert_string_equal(resource(&b2, "terraform_data.home")->id, id);
  assert_string_equal(resource(&b3, "terraform_data.home")->id, id);
  assert_null(ph_job_find(&b3.job, -1, "terraform_data.home: Creating"));
  assert_non_null(ph_job_find(&b3.job, ATR_LOG_INFO,
                              "Plan: 2 to add, 0 to "
                              "change, 0 to destroy."));
  char *running = ws_read(&ws, "running");
  assert_string_equal(running, "build 3\n");
  char *params = ws_read(&ws, "parameters.json");
  assert_non_null(strstr(params, "\"greeting\":\"bonjour\""));
  free(running);
  free(params);
  build_free(&b1);
  build_free(&b2);
  build_free(&b3);
  free(ws.state);
  fx_stop(&f);
}

static void test_delete_removes_the_directory(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "dev"};
  build_t start = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &start);
  assert_true(ws_has(&ws, NULL));
  build_t del = {.transition = ATR_TRANSITION_DELETE};
  build_ok(&ws, &del);
  assert_false(ws_has(&ws, NULL));
  assert_int_equal(del.res.nresources, 0);
  assert_non_null(del.res.state);
  assert_non_null(strstr(del.res.state, "\"resources\": []"));
  assert_logged(&del.job, ATR_LOG_INFO, "Destroying",
                "Apply complete! Resources: 0 added, 0 changed, 3 "
                "destroyed.");
  build_free(&start);
  build_free(&del);
  free(ws.state);
  fx_stop(&f);
}

static void test_apply_plans_itself_when_plan_was_not_called(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "old-host"};
  build_t b = {.transition = ATR_TRANSITION_START, .skip_plan = true};
  build_ok(&ws, &b);
  assert_non_null(ph_job_find(&b.job, ATR_LOG_INFO, "No plan yet"));
  assert_true(ws_has(&ws, "running"));
  assert_int_equal(b.res.nresources, 3);
  build_free(&b);
  free(ws.state);
  fx_stop(&f);
}

/* ---- variables and environment */

static const char extra_tf[] =
    "# variable \"commented\" {}\n"
    "/* variable \"commented\" {} */\n"
    "variable \"tags\" {\n  type = list(string)\n}\n"
    "variable unquoted {\n  type = string\n}\n"
    "locals {\n"
    "  closing = \"}}${\"}\"}\"\n"
    "  doc     = <<-EOT\n    }}\n    variable \"in_heredoc\" {\n  EOT\n"
    "}\n"
    "variable \"after_braces\" {\n  type = string\n}\n"
    "variable \"atrium_build_number\" {\n  type = number\n}\n"
    "variable \"atrium_template_version\" {\n  type = string\n}\n"
    "resource \"terraform_data\" \"env\" {\n"
    "  count = var.atrium_transition == \"start\" ? 1 : 0\n"
    "  provisioner \"local-exec\" {\n"
    "    command = \"env | grep -E '^(ATRIUM_|TF_IN_AUTOMATION=|TF_INPUT=|"
    "CHECKPOINT_DISABLE=)' | sort > \\\"$OUT\\\"\"\n"
    "    environment = { OUT = \"${var.root}/env.txt\" }\n"
    "  }\n"
    "}\n";

static const char extra_tf_json[] =
    "{\"variable\": {\"from_json\": {\"type\": \"string\"}}}\n";

static void write_extras(const char *workdir) {
  char *a = path2(workdir, "extra.tf"), *b = path2(workdir, "extra.tf.json");
  write_text(a, extra_tf, 0644);
  write_text(b, extra_tf_json, 0644);
  free(a);
  free(b);
}

/* plan() in a workdir with extra.tf and extra.tf.json next to the
 * starter's files. */
static void plan_with_extras(fx_t *f, build_t *b, const pv_t *extra,
                             atr_prov_apply_request_t *req,
                             atr_param_value_t *params) {
  ph_job_init(&b->job);
  b->workdir = fx_workdir(f);
  write_extras(b->workdir);
  size_t np = make_params(f, extra, params, 16);
  *req = (atr_prov_apply_request_t){.struct_size = sizeof *req,
                                    .job = &b->job,
                                    .log = ph_job_log,
                                    .canceled = ph_job_canceled,
                                    .workdir = b->workdir,
                                    .transition = ATR_TRANSITION_START,
                                    .build_number = 7,
                                    .workspace_id = "w-id",
                                    .workspace_name = "vars",
                                    .owner_name = "alice",
                                    .owner_email = "alice@example.com",
                                    .template_version_name = "v3",
                                    .params = params,
                                    .nparams = np};
  b->rc = f->ops->plan(f->ctx, req, &b->err);
  if (b->rc != 0)
    fail_msg("plan: %s", b->err);
}

static void test_tfvars_hold_only_declared_variables_typed(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  const pv_t extra[] = {{"tags", "[\"a\",\"b c\"]", "list(string)", 0},
                        {"unquoted", "u", "string", 0},
                        {"after_braces", "ab", "string", 0},
                        {"from_json", "fj", "string", 0},
                        {"commented", "no", "string", 0},
                        {"in_heredoc", "no", "string", 0},
                        {"undeclared", "no", "string", 0},
                        {0}};
  build_t b = {0};
  atr_prov_apply_request_t req;
  atr_param_value_t params[16];
  plan_with_extras(&f, &b, extra, &req, params);

  char *path = path2(b.workdir, "atrium.auto.tfvars.json");
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  json_t *vars = json_load_file(path, 0, NULL);
  assert_true(json_is_object(vars));
  /* Exactly the declared ones, in sorted order: the owner's email, the
   * template id and such are facts main.tf does not declare. */
  const char *keys[] = {"after_braces",
                        "atrium_build_number",
                        "atrium_owner_name",
                        "atrium_template_version",
                        "atrium_transition",
                        "atrium_workspace_id",
                        "atrium_workspace_name",
                        "cpus",
                        "fail",
                        "from_json",
                        "greeting",
                        "root",
                        "secret_token",
                        "sleep_seconds",
                        "tags",
                        "unquoted"};
  assert_int_equal(json_object_size(vars), sizeof keys / sizeof keys[0]);
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (json_object_get(vars, keys[i]) == NULL)
      fail_msg("%s is not in the tfvars", keys[i]);
  }
  assert_int_equal(json_integer_value(json_object_get(vars, "cpus")), 2);
  assert_true(json_is_false(json_object_get(vars, "fail")));
  assert_int_equal(
      json_integer_value(json_object_get(vars, "atrium_build_number")), 7);
  assert_string_equal(
      json_string_value(json_object_get(vars, "atrium_transition")), "start");
  const json_t *tags = json_object_get(vars, "tags");
  assert_int_equal(json_array_size(tags), 2);
  assert_string_equal(json_string_value(json_array_get(tags, 1)), "b c");
  assert_string_equal(json_string_value(json_object_get(vars, "secret_token")),
                      CANARY);
  /* Terraform accepted every value: the plan has the starter's three
   * resources and extra.tf's. */
  assert_non_null(ph_job_find(&b.job, ATR_LOG_INFO, "Plan: 4 to add"));
  json_decref(vars);
  free(path);
  build_free(&b);
  fx_stop(&f);
}

static void test_facts_and_parameters_reach_the_environment(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  const pv_t extra[] = {
      {"tags", "[]", "list(string)", 0},   {"unquoted", "u", "string", 0},
      {"after_braces", "ab", "string", 0}, {"from_json", "fj", "string", 0},
      {"with-dash", "d", "string", 0},     {0}};
  build_t b = {0};
  atr_prov_apply_request_t req;
  atr_param_value_t params[16];
  plan_with_extras(&f, &b, extra, &req, params);
  b.rc = f.ops->apply(f.ctx, &req, &b.res, &b.err);
  if (b.rc != 0)
    fail_msg("apply: %s", b.err);

  char *env_path = path2(f.root, "env.txt");
  char *env = read_text(env_path);
  assert_non_null(env);
  const char *want[] = {
      "ATRIUM_BUILD_NUMBER=7\n",      "ATRIUM_OWNER_EMAIL=alice@example.com\n",
      "ATRIUM_OWNER_NAME=alice\n",    "ATRIUM_PARAM_CPUS=2\n",
      "ATRIUM_PARAM_FAIL=false\n",    "ATRIUM_PARAM_SECRET_TOKEN=" CANARY "\n",
      "ATRIUM_PARAM_TAGS=[]\n",       "ATRIUM_PARAM_WITH_DASH=d\n",
      "ATRIUM_TEMPLATE_VERSION=v3\n", "ATRIUM_TRANSITION=start\n",
      "ATRIUM_WORKSPACE_ID=w-id\n",   "ATRIUM_WORKSPACE_NAME=vars\n",
      "CHECKPOINT_DISABLE=1\n",       "TF_INPUT=0\n",
      "TF_IN_AUTOMATION=1\n"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (strstr(env, want[i]) == NULL)
      fail_msg("not in the environment: %s(got:\n%s)", want[i], env);
  }
  /* The server's own ATRIUM_* variables stay with the server. */
  assert_null(strstr(env, SERVER_SECRET));
  assert_null(strstr(env, "ATRIUM_TEST_SERVER_SECRET"));
  free(env);
  free(env_path);
  build_free(&b);
  fx_stop(&f);
}

/* ---- secrets */

static void test_a_sensitive_value_never_reaches_a_log_line(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "secret"};
  build_t b1 = {.transition = ATR_TRANSITION_START};
  ph_job_init(&b1.job);
  /* A template that prints the secret, twice over: in the command Terraform
   * shows and in the command's output. */
  b1.workdir = fx_workdir(&f);
  char *leak = path2(b1.workdir, "leak.tf");
  write_text(leak,
             "resource \"terraform_data\" \"leak\" {\n"
             "  provisioner \"local-exec\" {\n"
             "    command = \"echo token=${nonsensitive(var.secret_token)}\"\n"
             "  }\n"
             "}\n",
             0644);
  atr_param_value_t params[16];
  size_t np = make_params(&f, NULL, params, 16);
  atr_prov_apply_request_t req = {.struct_size = sizeof req,
                                  .job = &b1.job,
                                  .log = ph_job_log,
                                  .canceled = ph_job_canceled,
                                  .workdir = b1.workdir,
                                  .transition = ATR_TRANSITION_START,
                                  .build_number = 1,
                                  .workspace_id = "w-secret",
                                  .workspace_name = ws.name,
                                  .owner_name = "alice",
                                  .params = params,
                                  .nparams = np};
  b1.rc = f.ops->plan(f.ctx, &req, &b1.err);
  if (b1.rc == 0)
    b1.rc = f.ops->apply(f.ctx, &req, &b1.res, &b1.err);
  if (b1.rc != 0)
    fail_msg("build: %s", b1.err);
  assert_non_null(
      ph_job_find(&b1.job, ATR_LOG_INFO, "(local-exec): token=********"));
  for (size_t i = 0; i < b1.job.n; i++) {
    if (strstr(b1.job.v[i].line, CANARY) != NULL)
      fail_msg("the secret is in the job log: %s", b1.job.v[i].line);
  }
  /* A failing build's error message is redacted too. */
  const pv_t fail[] = {{"fail", "true", "bool", 0}, {0}};
  build_t b2 = {.transition = ATR_TRANSITION_START, .extra = fail};
  ws.state = b1.res.state;
  ws.state_len = b1.res.state_len;
  b1.res.state = NULL;
  ws.number = 1;
  ws_build(&ws, &b2);
  assert_int_equal(b2.rc, ATR_EPLUGIN);
  assert_null(strstr(b2.err, CANARY));
  for (size_t i = 0; i < b2.job.n; i++)
    assert_null(strstr(b2.job.v[i].line, CANARY));
  free(leak);
  build_free(&b1);
  build_free(&b2);
  free(ws.state);
  fx_stop(&f);
}

/* ---- failure and cancel */

static void test_a_failing_apply_returns_its_error_and_the_state(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "failing"};
  const pv_t fail[] = {{"fail", "true", "bool", 0}, {0}};
  build_t b = {.transition = ATR_TRANSITION_START, .extra = fail};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EPLUGIN);
  assert_non_null(b.err);
  assert_true(strncmp(b.err, "terraform apply failed (exit status 1): main.tf:",
                      48) == 0);
  assert_non_null(strstr(b.err, ": local-exec provisioner error: Error "
                                "running command './scripts/start.sh': exit "
                                "status 3."));
  assert_non_null(strstr(b.err, "failing on purpose because fail is true"));
  /* The state says what exists: the home, and a tainted running. */
  assert_non_null(b.res.state);
  assert_non_null(strstr(b.res.state, "\"tainted\""));
  assert_non_null(strstr(b.res.state, "\"home\""));
  assert_int_equal(b.res.nresources, 0);
  assert_non_null(ph_job_find(&b.job, ATR_LOG_ERROR, "Error: main.tf:"));
  assert_true(ws_has(&ws, NULL));
  build_free(&b);
  free(ws.state);
  fx_stop(&f);
}

typedef struct bg {
  ws_t *ws;
  build_t *b;
  pthread_t thread;
  double done_at;
} bg_t;

static void *bg_run(void *arg) {
  bg_t *g = arg;
  ws_build(g->ws, g->b);
  g->done_at = now_s();
  return NULL;
}

/* Wait (up to 30 s) for a job log line containing needle. */
static void wait_for_line(atr_prov_job_t *job, const char *needle) {
  for (int i = 0; i < 3000 && ph_job_find(job, -1, needle) == NULL; i++)
    usleep(10 * 1000);
  if (ph_job_find(job, -1, needle) == NULL)
    fail_msg("no \"%s\" in the job log within 30 s", needle);
}

/* Whether a process runs with exactly this command line. */
static bool process_running(const char *a0, const char *a1) {
  bool found = false;
  DIR *d = opendir("/proc");
  const struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL && !found) {
    char path[300], buf[256] = {0};
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
      continue;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    size_t l0 = strlen(a0);
    found = n == l0 + strlen(a1) + 2 && strcmp(buf, a0) == 0 &&
            strcmp(buf + l0 + 1, a1) == 0;
  }
  if (d != NULL)
    closedir(d);
  return found;
}

static void test_cancel_stops_one_job_and_returns_the_state(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  /* Two workspaces at once: one sleeps 37 s and is canceled, the other
   * sleeps 2 s and must finish untouched. */
  ws_t slow_ws = {.f = &f, .name = "slow"}, quick_ws = {.f = &f, .name = "ok"};
  const pv_t slow_p[] = {{"sleep_seconds", "37", "number", 0}, {0}};
  const pv_t quick_p[] = {{"sleep_seconds", "2", "number", 0}, {0}};
  build_t slow = {.transition = ATR_TRANSITION_START, .extra = slow_p};
  build_t quick = {.transition = ATR_TRANSITION_START, .extra = quick_p};
  bg_t gs = {.ws = &slow_ws, .b = &slow}, gq = {.ws = &quick_ws, .b = &quick};
  int fds = open_fds();
  assert_int_equal(pthread_create(&gs.thread, NULL, bg_run, &gs), 0);
  assert_int_equal(pthread_create(&gq.thread, NULL, bg_run, &gq), 0);
  wait_for_line(&slow.job, "sleeping 37s");
  assert_true(process_running("sleep", "37"));

  double t0 = now_s();
  atomic_store(&slow.job.canceled, 1); /* the host's order: flag, then call */
  f.ops->cancel(f.ctx, &slow.job);
  pthread_join(gs.thread, NULL);
  pthread_join(gq.thread, NULL);
  double took = gs.done_at - t0;
  if (took > 5.0)
    fail_msg("cancel took %.1f s", took);

  assert_int_equal(slow.rc, ATR_ECANCELED);
  assert_string_equal(slow.err, "terraform apply was canceled");
  assert_non_null(slow.res.state);
  assert_non_null(strstr(slow.res.state, "\"tainted\""));
  assert_non_null(
      ph_job_find(&slow.job, ATR_LOG_INFO, "Canceling: sent SIGINT"));
  assert_non_null(ph_job_find(&slow.job, ATR_LOG_INFO, "Interrupt received."));
  if (quick.rc != 0)
    fail_msg("the other job: %s", quick.err);
  assert_int_equal(quick.res.nresources, 3);
  assert_null(ph_job_find(&quick.job, -1, "Canceling"));

  /* Nothing is left behind: no child to reap, no sleep running. */
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
  for (int i = 0; i < 200 && process_running("sleep", "37"); i++)
    usleep(10 * 1000);
  assert_false(process_running("sleep", "37"));
  assert_int_equal(open_fds(), fds);
  build_free(&slow);
  build_free(&quick);
  free(slow_ws.state);
  free(quick_ws.state);
  fx_stop(&f);
}

static void test_a_canceled_job_runs_nothing(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *workdir = fx_workdir(&f);
  atr_prov_job_t job;
  ph_job_init(&job);
  atomic_store(&job.canceled, 1);
  atr_param_value_t params[16];
  size_t np = make_params(&f, NULL, params, 16);
  atr_prov_apply_request_t req = {.struct_size = sizeof req,
                                  .job = &job,
                                  .log = ph_job_log,
                                  .canceled = ph_job_canceled,
                                  .workdir = workdir,
                                  .transition = ATR_TRANSITION_START,
                                  .build_number = 1,
                                  .workspace_name = "early",
                                  .owner_name = "alice",
                                  .params = params,
                                  .nparams = np};
  char *err = NULL;
  assert_int_equal(f.ops->plan(f.ctx, &req, &err), ATR_ECANCELED);
  assert_string_equal(err, "the build was canceled before terraform ran");
  assert_int_equal(job.n, 0); /* not even the command line */
  free(err);
  free(workdir);
  ph_job_free(&job);
  fx_stop(&f);
}

static void
test_a_terraform_ignoring_sigint_is_killed_after_the_grace(void **state) {
  (void)state;
  static const char *const said[] = {
      "{\"@level\":\"info\",\"@message\":\"stubborn\"}"};
  char *print = printing(said, 1);
  char *body = NULL;
  assert_true(asprintf(&body, "trap '' INT\n%sexec sleep 41\n", print) >= 0);
  char *fake = fx_fake(body);
  free(print);
  free(body);
  char *opts = NULL;
  assert_true(asprintf(&opts, "    binary: %s\n    cancel_grace: 1s\n", fake) >=
              0);
  fx_t f;
  fx_start(&f, opts);
  ws_t ws = {.f = &f, .name = "stubborn"};
  build_t b = {.transition = ATR_TRANSITION_START};
  bg_t g = {.ws = &ws, .b = &b};
  int fds = open_fds();
  assert_int_equal(pthread_create(&g.thread, NULL, bg_run, &g), 0);
  wait_for_line(&b.job, "stubborn");
  /* Only the host's flag, no cancel() call: the plugin sees it itself. */
  double t0 = now_s();
  atomic_store(&b.job.canceled, 1);
  pthread_join(g.thread, NULL);
  double took = g.done_at - t0;
  if (took < 0.9 || took > 5.0)
    fail_msg("returned %.2f s after the cancel; expected 1 s of grace", took);
  assert_int_equal(b.rc, ATR_ECANCELED);
  assert_non_null(ph_job_find(&b.job, ATR_LOG_WARN, "sent SIGKILL"));
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  for (int i = 0; i < 200 && process_running("sleep", "41"); i++)
    usleep(10 * 1000);
  assert_false(process_running("sleep", "41"));
  assert_int_equal(open_fds(), fds);
  build_free(&b);
  free(ws.state);
  fx_stop(&f);
  free(opts);
  fake_free(fake);
}

/* ---- the log */

static void test_json_levels_map_to_log_levels(void **state) {
  (void)state;
  static const char *const lines[] = {
      "{\"@level\":\"trace\",\"@message\":\"a trace line\"}",
      "{\"@level\":\"debug\",\"@message\":\"a debug line\"}",
      "{\"@level\":\"info\",\"@message\":\"an info line\\nand its second\"}",
      "{\"@level\":\"warn\",\"@message\":\"a warn line\"}",
      "{\"@level\":\"error\",\"@message\":\"an error line\"}",
      "{\"@level\":\"warn\",\"@message\":\"Warning: Old\",\"type\":"
      "\"diagnostic\",\"diagnostic\":{\"severity\":\"warning\",\"summary\":"
      "\"Old thing\",\"detail\":\"Use the new thing.\",\"range\":{"
      "\"filename\":\"main.tf\",\"start\":{\"line\":7}}}}",
      "not json at all"};
  char *print = printing(lines, sizeof lines / sizeof lines[0]);
  char *body = NULL;
  assert_true(asprintf(&body,
                       "if [ \"$1\" = validate ]; then\n"
                       "  echo '{\"valid\": true, \"diagnostics\": []}'\n"
                       "  exit 0\n"
                       "fi\n"
                       "%s"
                       "echo 'Error: a problem on stderr' >&2\n"
                       "echo 'more about it' >&2\n",
                       print) >= 0);
  char *fake = fx_fake(body);
  free(print);
  free(body);
  char *opts = NULL;
  assert_true(asprintf(&opts, "    binary: %s\n", fake) >= 0);
  fx_t f;
  fx_start(&f, opts);
  char *dir = fx_workdir(&f);
  parsed_t p;
  parse(&f, dir, starter_params, 6, &p);
  if (p.rc != 0)
    fail_msg("parse: %s", p.err);
  const char *st = "Initializing";
  assert_logged(&p.job, ATR_LOG_DEBUG, st, "a trace line");
  assert_logged(&p.job, ATR_LOG_DEBUG, st, "a debug line");
  assert_logged(&p.job, ATR_LOG_INFO, st, "an info line");
  assert_logged(&p.job, ATR_LOG_INFO, st, "and its second");
  assert_logged(&p.job, ATR_LOG_WARN, st, "a warn line");
  assert_logged(&p.job, ATR_LOG_ERROR, st, "an error line");
  assert_logged(&p.job, ATR_LOG_WARN, st, "Warning: main.tf:7: Old thing");
  assert_logged(&p.job, ATR_LOG_WARN, st, "Use the new thing.");
  assert_logged(&p.job, ATR_LOG_INFO, st, "not json at all");
  assert_logged(&p.job, ATR_LOG_ERROR, st, "Error: a problem on stderr");
  assert_logged(&p.job, ATR_LOG_ERROR, st, "more about it");
  assert_logged(&p.job, ATR_LOG_INFO, "Validating",
                "The configuration is valid.");
  assert_true(
      strncmp(ph_job_find(&p.job, ATR_LOG_DEBUG, "$ terraform init")->line,
              "$ terraform init -input=false -no-color -json", 45) == 0);
  parsed_free(&p);
  free(dir);
  fx_stop(&f);
  free(opts);
  fake_free(fake);
}

/* ---- the binary option */

static void assert_init_fails(const char *binary, const char *want) {
  char *opts = NULL;
  assert_true(asprintf(&opts, "    binary: %s\n", binary) >= 0);
  fx_t f;
  char *err = NULL;
  assert_int_not_equal(fx_try(&f, opts, &err), 0);
  assert_non_null(err);
  if (strstr(err, want) == NULL)
    fail_msg("init error \"%s\" does not contain \"%s\"", err, want);
  free(err);
  fx_stop(&f);
  free(opts);
}

static void test_a_bad_binary_fails_init_clearly(void **state) {
  (void)state;
  assert_init_fails("/nonexistent/terraform",
                    "plugin provisioner_terraform: init failed: "
                    "plugins.provisioner_terraform.binary: "
                    "/nonexistent/terraform: No such file or directory; "
                    "install Terraform there or set binary to the path of "
                    "the terraform executable");
  assert_init_fails("no-such-terraform-7",
                    "plugins.provisioner_terraform.binary: no executable "
                    "\"no-such-terraform-7\" in PATH (");
  char *plain = fx_fake("");
  assert_int_equal(chmod(plain, 0644), 0);
  char *want = NULL;
  assert_true(asprintf(&want, "%s is not an executable file; run chmod +x",
                       plain) >= 0);
  assert_init_fails(plain, want);
  free(want);
  fake_free(plain);
  assert_init_fails("/bin/false", "plugins.provisioner_terraform.binary: "
                                  "/bin/false version -json failed (exit "
                                  "status 1); is it the terraform executable?");
}

static void test_the_process_log_never_shows_a_secret(void **state) {
  (void)state;
  assert_int_equal(fflush(log_stream), 0);
  assert_non_null(log_buf);
  assert_null(strstr(log_buf, CANARY));
  assert_null(strstr(log_buf, SERVER_SECRET));
}

int main(void) {
  if (access(ATR_TEST_TERRAFORM, X_OK) != 0) {
    printf("terraform not found at %s; skipping\n", ATR_TEST_TERRAFORM);
    return 77;
  }
  /* The server's own configuration must not reach templates. */
  setenv("ATRIUM_TEST_SERVER_SECRET", SERVER_SECRET, 1);
  log_stream = open_memstream(&log_buf, &log_len);
  if (log_stream == NULL)
    return 1;
  atr_log_set_level(ATR_LOG_DEBUG);
  atr_log_set_stream(log_stream);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor_is_the_terraform_type),
      cmocka_unit_test(test_parse_accepts_the_starter_template),
      cmocka_unit_test(test_parse_rejects_a_syntax_error_with_file_and_line),
      cmocka_unit_test(test_parse_rejects_an_invalid_reference),
      cmocka_unit_test(test_parse_needs_a_tf_file),
      cmocka_unit_test(test_start_creates_the_workspace_directory),
      cmocka_unit_test(test_stop_removes_the_marker_and_keeps_the_directory),
      cmocka_unit_test(test_start_after_stop_keeps_the_home_resource),
      cmocka_unit_test(test_delete_removes_the_directory),
      cmocka_unit_test(test_apply_plans_itself_when_plan_was_not_called),
      cmocka_unit_test(test_tfvars_hold_only_declared_variables_typed),
      cmocka_unit_test(test_facts_and_parameters_reach_the_environment),
      cmocka_unit_test(test_a_sensitive_value_never_reaches_a_log_line),
      cmocka_unit_test(test_a_failing_apply_returns_its_error_and_the_state),
      cmocka_unit_test(test_cancel_stops_one_job_and_returns_the_state),
      cmocka_unit_test(test_a_canceled_job_runs_nothing),
      cmocka_unit_test(
          test_a_terraform_ignoring_sigint_is_killed_after_the_grace),
      cmocka_unit_test(test_json_levels_map_to_log_levels),
      cmocka_unit_test(test_a_bad_binary_fails_init_clearly),
      /* Last: it reads what every test before it logged. */
      cmocka_unit_test(test_the_process_log_never_shows_a_secret),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  atr_log_set_stream(NULL);
  fclose(log_stream);
  free(log_buf);
  return failed;
}
