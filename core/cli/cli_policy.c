/* core/cli/cli_policy.c — `atrium policy test|eval` (see cli_policy.h).
 *
 * The policies are loaded and evaluated exactly as the server does
 * (atr_policy_set_eval), so a case that passes here gives the same
 * decision there, messages included. */
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "cli_command.h"
#include "cli_policy.h"
#include "options.h"
#include "policy.h"

#define MAX_FILES 64

static const char policy_usage[] =
    "usage: atrium policy test POLICY.lua... CASES.json [options]\n"
    "       atrium policy eval POLICY.lua... --hook HOOK --input FILE|- "
    "[options]\n"
    "\n"
    "  test   run the cases of CASES.json, a JSON array of\n"
    "         {\"name\", \"hook\", \"input\", \"expect\": {\"denies\", "
    "\"warnings\", \"sets\"}},\n"
    "         and print PASS or FAIL for each; exit 0 when all pass, 1 "
    "otherwise\n"
    "  eval   print the decision for one input (a JSON object) as JSON;\n"
    "         exit 0 when it allows, 1 when it denies\n"
    "\n"
    "  POLICY.lua...                  deployment policies, run first, in "
    "order\n"
    "  --template-policy FILE         a template's policy, run after them\n"
    "  --hook HOOK                    " ATR_POLICY_HOOK_NAMES "\n"
    "  --policy.instruction_limit=N   default 1000000\n"
    "  --policy.time_limit=DURATION   default 100ms\n"
    "  --policy.memory_limit=SIZE     default 8MiB\n"
    "Bad arguments or files exit 2. See docs/policies.md.\n";

typedef struct args {
  const char *cmd; /* "test" or "eval" */
  const char *files[MAX_FILES];
  int nfiles;
  const char *template_policy, *hook, *input;
  atr_policy_limits_t lim;
} args_t;

static int usage_error(const char *fmt, const char *what) {
  fputs("atrium policy: ", stderr);
  fprintf(stderr, fmt, what);
  fputs(" (atrium policy --help)\n", stderr);
  return 2;
}

/* Whether arg is --name, as "--name=value" or "--name value" (value in
 * next, which *took then counts); *value is NULL when it is missing. */
static bool flag_value(const char *name, const char *arg, const char *next,
                       const char **value, int *took) {
  size_t n = strlen(name);
  if (strncmp(arg, name, n) != 0 || (arg[n] != '=' && arg[n] != '\0'))
    return false;
  *value = arg[n] == '=' ? arg + n + 1 : next;
  *took = arg[n] == '=' ? 0 : 1;
  return true;
}

static int parse_limit(const char *flag, const char *v, args_t *a) {
  int64_t ms = 0;
  uint64_t bytes = 0;
  char *end = NULL;
  if (strcmp(flag, "--policy.instruction_limit") == 0) {
    unsigned long long n = strtoull(v, &end, 10);
    if (!*v || *end || n == 0)
      return usage_error("--policy.instruction_limit: \"%s\" is not a "
                         "positive integer",
                         v);
    a->lim.instructions = n;
  } else if (strcmp(flag, "--policy.time_limit") == 0) {
    if (atr_parse_duration(v, &ms) != 0 || ms <= 0)
      return usage_error("--policy.time_limit: \"%s\" is not a positive "
                         "duration (100ms, 2s)",
                         v);
    a->lim.time_ms = ms;
  } else {
    if (atr_parse_size(v, &bytes) != 0 || bytes == 0)
      return usage_error("--policy.memory_limit: \"%s\" is not a positive "
                         "size (8MiB, 512KiB)",
                         v);
    a->lim.memory = bytes;
  }
  return 0;
}

/* The arguments of `atrium policy cmd argv...` (cmd: "test" or "eval"). */
static int parse_args(const char *cmd, int argc, char **argv, args_t *a) {
  static const char *const limits[] = {"--policy.instruction_limit",
                                       "--policy.time_limit",
                                       "--policy.memory_limit", NULL};
  memset(a, 0, sizeof *a);
  a->cmd = cmd;
  for (int i = 0; i < argc && argv[i]; i++) {
    const char *arg = argv[i], *next = i + 1 < argc ? argv[i + 1] : NULL;
    const char *v = NULL;
    int took = 0;
    if (flag_value("--template-policy", arg, next, &v, &took))
      a->template_policy = v;
    else if (flag_value("--hook", arg, next, &v, &took))
      a->hook = v;
    else if (flag_value("--input", arg, next, &v, &took))
      a->input = v;
    else {
      int k = 0;
      while (limits[k] && !flag_value(limits[k], arg, next, &v, &took))
        k++;
      if (!limits[k]) { /* not an option: a file */
        if (arg[0] == '-' && arg[1] != '\0')
          return usage_error("unknown option %s", arg);
        if (a->nfiles == MAX_FILES)
          return usage_error("%s", "too many files");
        a->files[a->nfiles++] = arg;
        continue;
      }
      if (v && parse_limit(limits[k], v, a) != 0)
        return 2;
    }
    if (!v)
      return usage_error("%s needs a value", arg);
    i += took;
  }
  bool test = strcmp(a->cmd, "test") == 0;
  if (test && a->nfiles < 2 && !(a->nfiles == 1 && a->template_policy))
    return usage_error("%s", "test needs POLICY.lua... and CASES.json");
  if (!test && a->nfiles < 1 && !a->template_policy)
    return usage_error("%s", "eval needs at least one policy");
  if (!test && (!a->hook || !a->input))
    return usage_error("%s", "eval needs --hook and --input");
  if (test && (a->hook || a->input))
    return usage_error("%s", "--hook and --input are for eval; a case "
                             "names its hook and input");
  if (a->hook && !atr_policy_hook_valid(a->hook))
    return usage_error("--hook: \"%s\" is not one of " ATR_POLICY_HOOK_NAMES,
                       a->hook);
  return 0;
}

static int load_policies(const args_t *a, int npolicies,
                         atr_policy_set_t *set) {
  for (int i = 0; i <= npolicies; i++) {
    const char *file = i < npolicies ? a->files[i] : a->template_policy;
    if (!file)
      continue;
    atr_policy_t *p = NULL;
    char *err = NULL;
    int rc = atr_policy_load_file(file, &a->lim, &p, &err);
    if (rc == 0)
      rc = atr_policy_set_add(
          set, p, i < npolicies ? ATR_POLICY_DEPLOYMENT : ATR_POLICY_TEMPLATE);
    atr_policy_unref(p);
    if (rc != 0) {
      fprintf(stderr, "atrium policy %s: %s\n", a->cmd,
              err ? err : atr_strerror(rc));
      free(err);
      return 2;
    }
  }
  return 0;
}

/* ---- eval ---------------------------------------------------------------- */

/* What the policies printed: "caps.lua: text" lines. */
static void print_output(FILE *out, const atr_decision_t *d,
                         const char *indent) {
  for (size_t i = 0; i < d->noutput; i++)
    fprintf(out, "%s%s: %s\n", indent, d->output[i].policy,
            d->output[i].message);
}

static int run_eval(const args_t *a, const atr_policy_set_t *set) {
  json_error_t jerr;
  bool from_stdin = strcmp(a->input, "-") == 0;
  json_t *input = from_stdin ? json_loadf(stdin, 0, &jerr)
                             : json_load_file(a->input, 0, &jerr);
  const char *name = from_stdin ? "standard input" : a->input;
  if (!input) {
    fprintf(stderr, "atrium policy eval: %s:%d:%d: %s\n", name, jerr.line,
            jerr.column, jerr.text);
    return 2;
  }
  if (!json_is_object(input)) {
    fprintf(stderr, "atrium policy eval: %s: the input must be a JSON object\n",
            name);
    json_decref(input);
    return 2;
  }
  atr_decision_t d;
  int rc = atr_policy_set_eval(set, a->hook, input, &a->lim, &d);
  json_decref(input);
  json_t *out = rc == 0 ? atr_decision_to_json(&d) : NULL;
  if (!out) {
    fprintf(stderr, "atrium policy eval: %s\n",
            atr_strerror(rc ? rc : ATR_ENOMEM));
    atr_decision_clear(&d);
    return 2;
  }
  print_output(stderr, &d, "");
  char *text = json_dumps(out, JSON_INDENT(2));
  if (text)
    puts(text);
  free(text);
  json_decref(out);
  int status = atr_decision_denied(&d) ? 1 : 0;
  atr_decision_clear(&d);
  return status;
}

/* ---- test: reading the cases --------------------------------------------- */

static int case_error(const char *file, const char *path, const char *what) {
  fprintf(stderr, "atrium policy test: %s: %s: %s\n", file, path, what);
  return 2;
}

static bool only_keys(json_t *obj, const char *const *keys, const char **bad) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    bool known = false;
    for (int i = 0; !known && keys[i]; i++)
      known = strcmp(k, keys[i]) == 0;
    if (!known) {
      *bad = k;
      return false;
    }
  }
  return true;
}

static int check_messages(const char *file, const char *path, json_t *list,
                          bool denies) {
  static const char *const deny_keys[] = {"message", "parameter", "policy",
                                          NULL};
  static const char *const warn_keys[] = {"message", "policy", NULL};
  char at[256], why[256];
  if (!json_is_array(list))
    return case_error(file, path, "expected an array of messages");
  size_t i;
  json_t *m;
  json_array_foreach(list, i, m) {
    snprintf(at, sizeof at, "%s[%zu]", path, i);
    if (json_is_string(m))
      continue;
    const char *bad = NULL;
    json_t *param = json_object_get(m, "parameter");
    if (!json_is_object(m) || !json_is_string(json_object_get(m, "message")))
      snprintf(why, sizeof why,
               "expected a message (a string) or an object with "
               "\"message\"%s",
               denies ? ", and maybe \"parameter\" and \"policy\""
                      : " and maybe \"policy\"");
    else if (!only_keys(m, denies ? deny_keys : warn_keys, &bad))
      snprintf(why, sizeof why, "unknown key \"%s\"; valid keys: %s", bad,
               denies ? "message, parameter, policy" : "message, policy");
    else if (param && !json_is_string(param) && !json_is_null(param))
      snprintf(why, sizeof why, "\"parameter\" must be a string or null");
    else if (json_object_get(m, "policy") &&
             !json_is_string(json_object_get(m, "policy")))
      snprintf(why, sizeof why, "\"policy\" must be a string");
    else
      continue;
    return case_error(file, at, why);
  }
  return 0;
}

/* A case's "expect" object: what the decision must hold. */
static int check_expect(const char *file, size_t i, json_t *expect) {
  static const char *const expect_keys[] = {"denies", "warnings", "sets", NULL};
  char at[256], why[256];
  const char *bad = NULL;
  snprintf(at, sizeof at, "[%zu].expect", i);
  if (!json_is_object(expect))
    return case_error(
        file, at,
        "expected an object with \"denies\", \"warnings\" and \"sets\" ({} "
        "for a decision that allows with nothing to say)");
  if (!only_keys(expect, expect_keys, &bad)) {
    snprintf(why, sizeof why,
             "unknown key \"%s\"; valid keys: denies, warnings, sets", bad);
    return case_error(file, at, why);
  }
  json_t *v;
  snprintf(at, sizeof at, "[%zu].expect.denies", i);
  if ((v = json_object_get(expect, "denies")) &&
      check_messages(file, at, v, true) != 0)
    return 2;
  snprintf(at, sizeof at, "[%zu].expect.warnings", i);
  if ((v = json_object_get(expect, "warnings")) &&
      check_messages(file, at, v, false) != 0)
    return 2;
  if ((v = json_object_get(expect, "sets"))) {
    snprintf(at, sizeof at, "[%zu].expect.sets", i);
    if (!json_is_object(v))
      return case_error(file, at, "expected an object of name: value");
    const char *k;
    json_t *val;
    json_object_foreach(v, k, val) {
      if (!json_is_string(val) && !json_is_number(val) &&
          !json_is_boolean(val)) {
        snprintf(at, sizeof at, "[%zu].expect.sets.%s", i, k);
        return case_error(file, at, "expected a string, number or boolean");
      }
    }
  }
  return 0;
}

static int check_case(const char *file, size_t i, json_t *c) {
  static const char *const case_keys[] = {"name", "hook", "input", "expect",
                                          NULL};
  char at[256], why[256];
  const char *bad = NULL;
  snprintf(at, sizeof at, "[%zu]", i);
  if (!json_is_object(c))
    return case_error(file, at, "expected an object");
  if (!only_keys(c, case_keys, &bad)) {
    snprintf(why, sizeof why,
             "unknown key \"%s\"; valid keys: name, hook, input, expect", bad);
    return case_error(file, at, why);
  }
  json_t *name = json_object_get(c, "name");
  json_t *hook = json_object_get(c, "hook");
  snprintf(at, sizeof at, "[%zu].name", i);
  if (!json_is_string(name) || !*json_string_value(name))
    return case_error(file, at, "expected a non-empty string");
  snprintf(at, sizeof at, "[%zu].hook", i);
  if (!json_is_string(hook) || !atr_policy_hook_valid(json_string_value(hook)))
    return case_error(file, at, "expected one of " ATR_POLICY_HOOK_NAMES);
  snprintf(at, sizeof at, "[%zu].input", i);
  if (!json_is_object(json_object_get(c, "input")))
    return case_error(file, at, "expected an object");
  return check_expect(file, i, json_object_get(c, "expect"));
}

/* ---- test: comparing ----------------------------------------------------- */

static bool msg_matches(json_t *want, const atr_policy_msg_t *got) {
  if (json_is_string(want))
    return strcmp(json_string_value(want), got->message) == 0;
  json_t *param = json_object_get(want, "parameter");
  json_t *policy = json_object_get(want, "policy");
  if (strcmp(json_string_value(json_object_get(want, "message")),
             got->message) != 0)
    return false;
  if (json_is_null(param) && got->parameter)
    return false;
  if (json_is_string(param) &&
      (!got->parameter ||
       strcmp(json_string_value(param), got->parameter) != 0))
    return false;
  return !policy || strcmp(json_string_value(policy), got->policy) == 0;
}

static void print_want(FILE *out, json_t *want) {
  json_t *m = json_is_string(want) ? want : json_object_get(want, "message");
  char *text = json_dumps(m, JSON_ENCODE_ANY);
  fprintf(out, "%s", text ? text : "?");
  free(text);
  json_t *param = json_object_get(want, "parameter");
  json_t *policy = json_object_get(want, "policy");
  if (json_is_string(param))
    fprintf(out, " (parameter %s)", json_string_value(param));
  else if (json_is_null(param))
    fprintf(out, " (no parameter)");
  if (policy)
    fprintf(out, " (from %s)", json_string_value(policy));
  fprintf(out, "\n");
}

static void print_got(FILE *out, const atr_policy_msg_t *g) {
  json_t *m = json_string(g->message);
  char *text = m ? json_dumps(m, JSON_ENCODE_ANY) : NULL;
  fprintf(out, "%s", text ? text : g->message);
  free(text);
  json_decref(m);
  if (g->parameter)
    fprintf(out, " (parameter %s)", g->parameter);
  fprintf(out, " (from %s)\n", g->policy);
}

/* Compare as multisets; true when equal. With out, print what differs. */
static bool compare_msgs(FILE *out, const char *what, json_t *want,
                         const atr_policy_msg_t *got, size_t ngot) {
  size_t nwant = json_array_size(want);
  bool *used = calloc(ngot + 1, sizeof *used);
  bool *found = calloc(nwant + 1, sizeof *found);
  bool same = used && found;
  for (size_t w = 0; same && w < nwant; w++) {
    for (size_t g = 0; !found[w] && g < ngot; g++) {
      if (!used[g] && msg_matches(json_array_get(want, w), &got[g]))
        used[g] = found[w] = true;
    }
  }
  bool header = false;
  for (size_t w = 0; used && found && w < nwant; w++) {
    if (found[w])
      continue;
    same = false;
    if (!out)
      break;
    if (!header)
      fprintf(out, "      %s expected but not given:\n", what);
    header = true;
    fprintf(out, "        - ");
    print_want(out, json_array_get(want, w));
  }
  header = false;
  for (size_t g = 0; used && found && g < ngot; g++) {
    if (used[g])
      continue;
    same = false;
    if (!out)
      break;
    if (!header)
      fprintf(out, "      %s given but not expected:\n", what);
    header = true;
    fprintf(out, "        + ");
    print_got(out, &got[g]);
  }
  free(used);
  free(found);
  return same;
}

/* A JSON scalar as parameter text: "8", "true", "a". */
static void value_text(json_t *v, char *buf, size_t n) {
  if (json_is_string(v))
    snprintf(buf, n, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else if (json_is_real(v))
    snprintf(buf, n, "%.14g", json_real_value(v));
  else
    snprintf(buf, n, "%s", json_is_true(v) ? "true" : "false");
}

static bool compare_sets(FILE *out, json_t *want, const atr_decision_t *d) {
  bool same = true;
  const char *k;
  json_t *v;
  char text[1024];
  json_object_foreach(want, k, v) {
    value_text(v, text, sizeof text);
    const char *got = atr_decision_get_set(d, k);
    if (got && strcmp(got, text) == 0)
      continue;
    if (out && same)
      fprintf(out, "      sets:\n");
    same = false;
    if (out && got)
      fprintf(out, "        %s: expected \"%s\", got \"%s\"\n", k, text, got);
    else if (out)
      fprintf(out, "        %s: expected \"%s\", not set\n", k, text);
  }
  for (size_t i = 0; i < d->nsets; i++) {
    if (json_object_get(want, d->sets[i].name))
      continue;
    if (out && same)
      fprintf(out, "      sets:\n");
    same = false;
    if (out)
      fprintf(out, "        %s: set to \"%s\" by %s, not expected\n",
              d->sets[i].name, d->sets[i].value, d->sets[i].policy);
  }
  return same;
}

/* Compare the decision with the case's expectations; print to out. */
static bool compare(FILE *out, json_t *expect, const atr_decision_t *d,
                    json_t *none, json_t *no_sets) {
  json_t *denies = json_object_get(expect, "denies");
  json_t *warnings = json_object_get(expect, "warnings");
  json_t *sets = json_object_get(expect, "sets");
  bool a = compare_msgs(out, "denies", denies ? denies : none, d->denies,
                        d->ndenies);
  bool b = compare_msgs(out, "warnings", warnings ? warnings : none,
                        d->warnings, d->nwarnings);
  bool c = compare_sets(out, sets ? sets : no_sets, d);
  return a && b && c;
}

static int run_case(const atr_policy_set_t *set, const args_t *a, json_t *c,
                    bool *pass) {
  const char *name = json_string_value(json_object_get(c, "name"));
  const char *hook = json_string_value(json_object_get(c, "hook"));
  json_t *expect = json_object_get(c, "expect");
  json_t *none = json_array(), *no_sets = json_object();
  atr_decision_t d;
  int rc = none && no_sets
               ? atr_policy_set_eval(set, hook, json_object_get(c, "input"),
                                     &a->lim, &d)
               : ATR_ENOMEM;
  if (rc == 0) {
    *pass = compare(NULL, expect, &d, none, no_sets);
    printf("%s  %s\n", *pass ? "PASS" : "FAIL", name);
    if (!*pass) {
      compare(stdout, expect, &d, none, no_sets);
      fflush(stdout);
      print_output(stdout, &d, "      output: ");
    }
    atr_decision_clear(&d);
  } else {
    fprintf(stderr, "atrium policy test: %s: %s\n", name, atr_strerror(rc));
  }
  json_decref(none);
  json_decref(no_sets);
  return rc;
}

static int run_test(const args_t *a, const atr_policy_set_t *set,
                    const char *file) {
  json_error_t jerr;
  json_t *cases = json_load_file(file, 0, &jerr);
  if (!cases) {
    fprintf(stderr, "atrium policy test: %s:%d:%d: %s\n", file, jerr.line,
            jerr.column, jerr.text);
    return 2;
  }
  int status = 0;
  if (!json_is_array(cases) || json_array_size(cases) == 0)
    status = case_error(file, "(top)", "expected a non-empty array of cases");
  size_t i;
  json_t *c;
  json_array_foreach(cases, i, c) {
    if (status == 0)
      status = check_case(file, i, c);
  }
  size_t passed = 0, failed = 0;
  json_array_foreach(cases, i, c) {
    bool pass = false;
    if (status != 0 || run_case(set, a, c, &pass) != 0) {
      status = 2;
      break;
    }
    pass ? passed++ : failed++;
  }
  if (status == 0) {
    printf("%zu passed, %zu failed (%s)\n", passed, failed, file);
    status = failed ? 1 : 0;
  }
  json_decref(cases);
  return status;
}

/* `atrium policy test|eval argv...`: the policies loaded, then the
 * cases of the last file run, or the one input evaluated. */
static int policy_run(const char *name, int argc, char **argv) {
  args_t a;
  if (parse_args(name, argc, argv, &a) != 0)
    return 2;
  bool test = strcmp(a.cmd, "test") == 0;
  int npolicies = test ? a.nfiles - 1 : a.nfiles;
  atr_policy_set_t set;
  atr_policy_set_init(&set);
  int status = load_policies(&a, npolicies, &set);
  if (status == 0)
    status =
        test ? run_test(&a, &set, a.files[a.nfiles - 1]) : run_eval(&a, &set);
  atr_policy_set_clear(&set);
  return status;
}

/* Both share one usage (policy_usage) as they share their options. */
static const atr_cli_command_t policy_commands[] = {
    {"test", NULL, policy_run, NULL},
    {"eval", NULL, policy_run, NULL},
    {NULL, NULL, NULL, NULL},
};

int atr_cli_policy(const char *name, int argc, char **argv) {
  (void)name;
  if (argc >= 1 &&
      (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
       strcmp(argv[0], "help") == 0)) {
    fputs(policy_usage, stdout);
    return 0;
  }
  if (argc < 1)
    return usage_error("%s", "missing command (test or eval)");
  const atr_cli_command_t *c = atr_cli_find(policy_commands, argv[0]);
  if (!c)
    return usage_error("unknown command \"%s\"", argv[0]);
  return c->run(argv[0], argc - 1, argv + 1);
}
