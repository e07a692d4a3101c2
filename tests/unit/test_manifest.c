/* template.yaml: a full manifest parses into exactly what was written; every
 * mistake a template author can make is reported with its field path,
 * file:line:col and what is allowed, all of them at once; and a workspace's
 * parameter values are checked against the schema the way the API sees them
 * (texts), with defaults filled in and the last build's values enforcing
 * immutable and monotonic parameters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "atrium/error.h"
#include "manifest.h"
#include "manifest_errors.h"

#define HEAD "name: t\nprovisioner: docker\nparameters:\n"
/* A number parameter at line 4; extra lines start at line 6. */
#define NUM HEAD "  - name: p\n    type: number\n"
#define STR HEAD "  - name: p\n    type: string\n"

static int parse(const char *yaml, atr_manifest_t *m, json_t **errors) {
  return atr_manifest_parse("template.yaml", yaml, strlen(yaml), m, errors);
}

static void assert_errors(const char *yaml, const char *expected) {
  atr_manifest_t m;
  manifest_assert_errors(yaml, expected, &m);
  assert_null(m.params);
  assert_int_equal(m.nparams, 0);
}

static void parses(const char *yaml, atr_manifest_t *m) {
  json_t *errors = NULL;
  int rc = parse(yaml, m, &errors);
  if (rc != 0) {
    char *got = manifest_errors_text(errors);
    fprintf(stderr, "unexpected errors:\n%s", got);
    free(got);
  }
  assert_int_equal(rc, 0);
  assert_null(errors);
}

/* ---- parsing ---------------------------------------------------------------- */

static const char full_yaml[] =
    "name: docker-dev\n"
    "provisioner: docker\n"
    "parameters:\n"
    "  - name: cpus\n"
    "    display_name: CPUs\n"
    "    description: How many CPUs\n"
    "    type: number\n"
    "    default: 2\n"
    "    validation: { min: 1, max: 8, monotonic: increasing,\n"
    "                  error: \"Between 1 and 8 CPUs\" }\n"
    "    mutable: true\n"
    "    display_order: 3\n"
    "  - name: size\n"
    "    type: string\n"
    "    default: small\n"
    "    options:\n"
    "      - { name: Small, value: small, description: 2 GB }\n"
    "      - { name: Large, value: large }\n"
    "  - name: region\n"
    "    type: string\n"
    "    validation: { regex: \"^[a-z]+$\" }\n"
    "    sensitive: true\n"
    "  - name: debug\n"
    "    type: bool\n"
    "    default: false\n"
    "    mutable: true\n"
    "    ephemeral: true\n"
    "  - name: repos\n"
    "    type: list(string)\n"
    "    default: [a, \"b c\"]\n"
    "policy: policies/policy.lua\n";

static void a_full_manifest_parses_into_what_was_written(void **state) {
  (void)state;
  atr_manifest_t m;
  parses(full_yaml, &m);
  assert_string_equal(m.name, "docker-dev");
  assert_string_equal(m.provisioner, "docker");
  assert_string_equal(m.policy, "policies/policy.lua");
  assert_int_equal(m.nparams, 5);

  const atr_param_t *p = &m.params[0];
  assert_string_equal(p->name, "cpus");
  assert_string_equal(p->display_name, "CPUs");
  assert_string_equal(p->description, "How many CPUs");
  assert_int_equal(p->type, ATR_PARAM_NUMBER);
  assert_true(p->has_default);
  assert_string_equal(p->default_value, "2");
  assert_false(p->required);
  assert_true(p->mutable_);
  assert_false(p->ephemeral);
  assert_true(p->has_min && p->has_max);
  assert_true(p->min == 1 && p->max == 8);
  assert_string_equal(p->monotonic, "increasing");
  assert_string_equal(p->error, "Between 1 and 8 CPUs");
  assert_null(p->regex);
  assert_int_equal(p->display_order, 3);

  p = &m.params[1];
  assert_int_equal(p->type, ATR_PARAM_STRING);
  assert_int_equal(p->noptions, 2);
  assert_string_equal(p->options[0].name, "Small");
  assert_string_equal(p->options[0].value, "small");
  assert_string_equal(p->options[0].description, "2 GB");
  assert_string_equal(p->options[1].value, "large");
  assert_null(p->options[1].description);
  assert_false(p->mutable_);

  p = &m.params[2];
  assert_string_equal(p->regex, "^[a-z]+$");
  assert_true(p->required);
  assert_false(p->has_default);
  assert_null(p->default_value);
  assert_true(p->sensitive);

  p = &m.params[3];
  assert_int_equal(p->type, ATR_PARAM_BOOL);
  assert_string_equal(p->default_value, "false");
  assert_true(p->ephemeral);

  p = &m.params[4];
  assert_int_equal(p->type, ATR_PARAM_LIST_STRING);
  assert_string_equal(p->default_value, "[\"a\",\"b c\"]");
  atr_manifest_free(&m);
  assert_null(m.params);
  atr_manifest_free(&m); /* twice is harmless */
}

static void a_minimal_manifest_and_json_list_defaults_parse(void **state) {
  (void)state;
  atr_manifest_t m;
  parses("name: a\nprovisioner: terraform\n", &m);
  assert_int_equal(m.nparams, 0);
  assert_null(m.policy);
  atr_manifest_free(&m);
  parses(HEAD "  - name: l\n    type: list(string)\n"
              "    default: '[\"x\"]'\n",
         &m);
  assert_string_equal(m.params[0].default_value, "[\"x\"]");
  atr_manifest_free(&m);
  parses(NUM "    required: true\n", &m);
  assert_true(m.params[0].required);
  atr_manifest_free(&m);
}

static void top_level_mistakes_are_reported(void **state) {
  (void)state;
  assert_errors("provisioner: docker\n",
                "name|template.yaml:1:1: name is required\n");
  assert_errors("name: t\n",
                "provisioner|template.yaml:1:1: provisioner is required "
                "(e.g. docker, terraform)\n");
  assert_errors("name: Docker_Dev\nprovisioner: docker\n",
                "name|template.yaml:1:7: \"Docker_Dev\" is not a valid "
                "template name; use 1-64 characters of a-z, 0-9 and -\n");
  assert_errors("name: t\nprovisioner: ''\n",
                "provisioner|template.yaml:2:14: must not be empty\n");
  assert_errors("name: t\nprovisioner: docker\npolicy: /etc/p.lua\n",
                "policy|template.yaml:3:9: \"/etc/p.lua\" is not a path "
                "inside the archive; use a relative path without ..\n");
  assert_errors("name: t\nprovisioner: docker\npolicy: a/../../p.lua\n",
                "policy|template.yaml:3:9: \"a/../../p.lua\" is not a path "
                "inside the archive; use a relative path without ..\n");
  assert_errors("name: t\nprovisioner: docker\nversion: 2\n",
                "version|template.yaml:3:10: unknown key \"version\"; valid "
                "keys: name, provisioner, parameters, policy, agent\n");
  assert_errors("name: t\nprovisioner: docker\nparameters: 3\n",
                "parameters|template.yaml:3:13: must be a list of "
                "parameters\n");
  assert_errors("name: [a]\nprovisioner: docker\n",
                "name|template.yaml:1:7: must be a single value\n");
  assert_errors("name: t\nprovisioner: [\n",
                "|template.yaml:3:1: did not find expected node content\n");
}

static void all_mistakes_are_reported_at_once(void **state) {
  (void)state;
  assert_errors("bogus: 1\n" HEAD "  - name: P\n    type: text\n",
                "bogus|template.yaml:1:8: unknown key \"bogus\"; valid keys: "
                "name, provisioner, parameters, policy, agent\n"
                "parameters[0].name|template.yaml:5:11: \"P\" is not a valid "
                "parameter name; use 1-64 characters of a-z, 0-9, _ and -\n"
                "parameters[0].type|template.yaml:6:11: unknown type \"text\"; "
                "use string, number, bool or list(string)\n");
}

static void parameter_mistakes_are_reported(void **state) {
  (void)state;
  assert_errors(HEAD "  - type: number\n",
                "parameters[0].name|template.yaml:4:5: name is required\n");
  assert_errors(HEAD "  - name: p\n",
                "parameters[0].type|template.yaml:4:5: type is required; use "
                "string, number, bool or list(string)\n");
  assert_errors(HEAD "  - x\n",
                "parameters[0]|template.yaml:4:5: must be a map with keys: "
                "name, display_name, description, type, default, mutable, "
                "ephemeral, required, sensitive, options, validation, "
                "display_order\n");
  assert_errors(NUM "    hidden: true\n",
                "parameters[0].hidden|template.yaml:6:13: unknown key "
                "\"hidden\"; valid keys: name, display_name, description, "
                "type, default, mutable, ephemeral, required, sensitive, "
                "options, validation, display_order\n");
  assert_errors(NUM "  - name: p\n    type: bool\n",
                "parameters[1].name|template.yaml:6:11: duplicate parameter "
                "name \"p\" (also parameters[0])\n");
  assert_errors(NUM "    mutable: yes\n",
                "parameters[0].mutable|template.yaml:6:14: \"yes\" is not a "
                "bool; use true or false\n");
  assert_errors(NUM "    display_order: first\n",
                "parameters[0].display_order|template.yaml:6:20: \"first\" is "
                "not an integer\n");
  assert_errors(NUM "    default: two\n",
                "parameters[0].default|template.yaml:6:14: default \"two\" "
                "must be a number\n");
  assert_errors(NUM "    default: 0x10\n",
                "parameters[0].default|template.yaml:6:14: default \"0x10\" "
                "must be a number\n");
  assert_errors(NUM "    default: 9\n    validation: { min: 1, max: 8 }\n",
                "parameters[0].default|template.yaml:6:14: default \"9\" must "
                "be a number between 1 and 8\n");
  assert_errors(HEAD "  - name: p\n    type: bool\n    default: yes\n",
                "parameters[0].default|template.yaml:6:14: default \"yes\" "
                "must be true or false\n");
  assert_errors(HEAD "  - name: p\n    type: list(string)\n    default: a\n",
                "parameters[0].default|template.yaml:6:14: default \"a\" must "
                "be a JSON array of strings\n");
  assert_errors(STR "    default: ~\n",
                "parameters[0].default|template.yaml:6:14: must be a string "
                "value\n");
  assert_errors(STR
                "    default: Abc\n    validation: { regex: \"^[a-z]+$\" }\n",
                "parameters[0].default|template.yaml:6:14: default \"Abc\" "
                "must match ^[a-z]+$\n");
  assert_errors(NUM "    default: 2\n    required: true\n",
                "parameters[0].required|template.yaml:7:15: required: true "
                "conflicts with the default; a parameter with a default is "
                "optional\n");
  assert_errors(NUM "    required: false\n",
                "parameters[0].required|template.yaml:6:15: required: false "
                "needs a default\n");
  assert_errors(NUM "    default: 1\n    ephemeral: true\n",
                "parameters[0].ephemeral|template.yaml:7:16: an ephemeral "
                "parameter must be mutable: true and have a default\n");
  assert_errors(NUM "    mutable: true\n    ephemeral: true\n",
                "parameters[0].ephemeral|template.yaml:7:16: an ephemeral "
                "parameter must be mutable: true and have a default\n");
}

static void validation_mistakes_are_reported(void **state) {
  (void)state;
  assert_errors(STR "    validation: { min: 1 }\n",
                "parameters[0].validation.min|template.yaml:6:24: min is only "
                "allowed for number parameters\n");
  assert_errors(STR "    validation: { max: 1 }\n",
                "parameters[0].validation.max|template.yaml:6:24: max is only "
                "allowed for number parameters\n");
  assert_errors(NUM "    validation: { min: 5, max: 1 }\n",
                "parameters[0].validation.min|template.yaml:6:24: min 5 is "
                "greater than max 1\n");
  assert_errors(NUM "    validation: { min: low }\n",
                "parameters[0].validation.min|template.yaml:6:24: \"low\" is "
                "not a number\n");
  assert_errors(NUM "    validation: { regex: a }\n",
                "parameters[0].validation.regex|template.yaml:6:26: regex is "
                "only allowed for string parameters\n");
  assert_errors(STR "    validation: { regex: \"a(\" }\n",
                "parameters[0].validation.regex|template.yaml:6:26: \"a(\" is "
                "not a valid regular expression: missing closing parenthesis "
                "at offset 2\n");
  assert_errors(STR "    mutable: true\n    validation: { monotonic: "
                    "increasing }\n",
                "parameters[0].validation.monotonic|template.yaml:7:30: "
                "monotonic is only allowed for number parameters\n");
  assert_errors(NUM "    validation: { monotonic: increasing }\n",
                "parameters[0].validation.monotonic|template.yaml:6:30: "
                "monotonic requires mutable: true\n");
  assert_errors(NUM "    mutable: true\n    validation: { monotonic: up }\n",
                "parameters[0].validation.monotonic|template.yaml:7:30: "
                "\"up\" is not valid; use increasing or decreasing\n");
  assert_errors(NUM "    validation: { step: 2 }\n",
                "parameters[0].validation.step|template.yaml:6:25: unknown "
                "key \"step\"; valid keys: min, max, regex, monotonic, "
                "error\n");
  assert_errors(NUM "    validation: 3\n",
                "parameters[0].validation|template.yaml:6:17: must be a map "
                "with keys: min, max, regex, monotonic, error\n");
}

static void option_mistakes_are_reported(void **state) {
  (void)state;
  assert_errors(HEAD "  - name: p\n    type: bool\n"
                     "    options: [{ name: A, value: a }]\n",
                "parameters[0].options|template.yaml:6:14: options are only "
                "allowed for string and number parameters\n");
  assert_errors(STR "    options: [{ name: A, value: a }, { name: B, value: "
                    "a }]\n",
                "parameters[0].options[1].value|template.yaml:6:56: duplicate "
                "option value \"a\" (also parameters[0].options[0])\n");
  assert_errors(STR "    options: [{ value: a, colour: red }]\n",
                "parameters[0].options[0].colour|template.yaml:6:35: unknown "
                "key \"colour\"; valid keys: name, value, description\n"
                "parameters[0].options[0].name|template.yaml:6:15: option "
                "name is required\n");
  assert_errors(STR "    options: [{ name: A }]\n",
                "parameters[0].options[0].value|template.yaml:6:15: option "
                "value is required\n");
  assert_errors(NUM "    options: [{ name: A, value: big }]\n",
                "parameters[0].options[0].value|template.yaml:6:33: option "
                "value \"big\" is not a number\n");
  assert_errors(STR "    options: [a]\n",
                "parameters[0].options[0]|template.yaml:6:15: must be a map "
                "with keys: name, value, description\n");
  assert_errors(STR "    options: a\n",
                "parameters[0].options|template.yaml:6:14: must be a list of "
                "{name, value, description}\n");
  assert_errors(STR "    default: c\n    options: [{ name: A, value: a }, "
                    "{ name: B, value: b }]\n",
                "parameters[0].default|template.yaml:6:14: default \"c\" must "
                "be one of: a, b\n");
}

/* ---- values ------------------------------------------------------------------ */

static const char values_yaml[] =
    HEAD "  - name: cpus\n"
         "    type: number\n"
         "    default: 2\n"
         "    validation: { min: 1, max: 8, monotonic: increasing }\n"
         "    mutable: true\n"
         "  - name: disk\n"
         "    type: number\n"
         "    default: 50\n"
         "    validation: { monotonic: decreasing, error: \"Disks only "
         "shrink\" }\n"
         "    mutable: true\n"
         "  - name: user\n"
         "    type: string\n"
         "    validation: { regex: \"^[a-z]+$\" }\n"
         "  - name: size\n"
         "    type: string\n"
         "    default: small\n"
         "    mutable: true\n"
         "    options: [{ name: S, value: small }, { name: L, value: large }]\n"
         "  - name: gpu\n"
         "    type: bool\n"
         "    default: false\n"
         "    mutable: true\n"
         "  - name: repos\n"
         "    type: list(string)\n"
         "    default: []\n"
         "    mutable: true\n"
         "  - name: rebuild\n"
         "    type: bool\n"
         "    default: false\n"
         "    mutable: true\n"
         "    ephemeral: true\n";

typedef struct {
  atr_manifest_t m;
} vstate_t;

static int values_setup(void **state) {
  vstate_t *s = calloc(1, sizeof *s);
  json_t *errors = NULL;
  if (parse(values_yaml, &s->m, &errors) != 0) {
    char *got = manifest_errors_text(errors);
    fprintf(stderr, "%s", got);
    free(got);
    json_decref(errors);
    free(s);
    return -1;
  }
  *state = s;
  return 0;
}

static int values_teardown(void **state) {
  vstate_t *s = *state;
  atr_manifest_free(&s->m);
  free(s);
  return 0;
}

/* Checks values (JSON text) against previous (JSON text or NULL) and returns
 * either the resolved object's dump or the errors' text; caller frees. */
static char *check(void **state, const char *values, const char *previous) {
  vstate_t *s = *state;
  json_t *v = json_loads(values, 0, NULL);
  json_t *p = previous ? json_loads(previous, 0, NULL) : NULL;
  assert_non_null(v);
  json_t *resolved = NULL, *errors = NULL;
  int rc = atr_manifest_check_values(&s->m, v, p, &resolved, &errors);
  char *out;
  if (rc == 0) {
    assert_null(errors);
    out = json_dumps(resolved, JSON_COMPACT | JSON_SORT_KEYS);
  } else {
    assert_int_equal(rc, ATR_EINVAL);
    assert_null(resolved);
    out = manifest_errors_text(errors);
  }
  json_decref(resolved);
  json_decref(errors);
  json_decref(v);
  json_decref(p);
  return out;
}

static void assert_check(void **state, const char *values, const char *previous,
                         const char *expected) {
  char *got = check(state, values, previous);
  if (strcmp(got, expected) != 0)
    fprintf(stderr, "values %s previous %s\n got: %s\nwant: %s\n", values,
            previous ? previous : "-", got, expected);
  assert_string_equal(got, expected);
  free(got);
}

static void defaults_are_filled_in(void **state) {
  assert_check(state, "{\"user\": \"ann\"}", NULL,
               "{\"cpus\":\"2\",\"disk\":\"50\",\"gpu\":\"false\","
               "\"rebuild\":\"false\",\"repos\":\"[]\",\"size\":\"small\","
               "\"user\":\"ann\"}");
}

static void values_of_every_type_are_accepted(void **state) {
  assert_check(state,
               "{\"user\": \"ann\", \"cpus\": \"8\", \"size\": \"large\", "
               "\"gpu\": \"true\", \"repos\": \"[\\\"a\\\", \\\"b\\\"]\", "
               "\"disk\": \"1.5e1\"}",
               NULL,
               "{\"cpus\":\"8\",\"disk\":\"1.5e1\",\"gpu\":\"true\","
               "\"rebuild\":\"false\",\"repos\":\"[\\\"a\\\", \\\"b\\\"]\","
               "\"size\":\"large\",\"user\":\"ann\"}");
}

static void bad_values_get_precise_messages(void **state) {
  assert_check(state,
               "{\"user\": \"Ann\", \"cpus\": \"9\", \"size\": \"medium\", "
               "\"gpu\": \"yes\", \"repos\": \"[1]\", \"disk\": \"lots\"}",
               NULL,
               "cpus|must be a number between 1 and 8\n"
               "disk|Disks only shrink\n"
               "user|must match ^[a-z]+$\n"
               "size|must be one of: small, large\n"
               "gpu|must be true or false\n"
               "repos|must be a JSON array of strings\n");
  assert_check(state, "{\"user\": \"ann\", \"cpus\": \"0\"}", NULL,
               "cpus|must be a number between 1 and 8\n");
  assert_check(state, "{\"user\": \"ann\", \"cpus\": \"nan\"}", NULL,
               "cpus|must be a number between 1 and 8\n");
  assert_check(state, "{\"user\": \"ann\", \"cpus\": \" 2\"}", NULL,
               "cpus|must be a number between 1 and 8\n");
  assert_check(state, "{\"user\": \"ann\", \"cpus\": 2}", NULL,
               "cpus|must be given as a string\n");
  assert_check(state, "{\"user\": \"ann\", \"repos\": \"\\\"a\\\"\"}", NULL,
               "repos|must be a JSON array of strings\n");
}

static void required_and_unknown_names_are_reported(void **state) {
  assert_check(state, "{\"colour\": \"red\"}", NULL,
               "colour|is not a parameter of this template\n"
               "user|is required\n");
}

static void immutable_values_cannot_change(void **state) {
  const char *prev = "{\"user\": \"ann\", \"cpus\": \"2\", \"disk\": \"50\"}";
  assert_check(state, "{\"user\": \"bob\"}", prev,
               "user|cannot change after the workspace is created (it is "
               "immutable)\n");
  /* Omitted values keep the last build's; same value is fine. */
  assert_check(state, "{\"user\": \"ann\"}", prev,
               "{\"cpus\":\"2\",\"disk\":\"50\",\"gpu\":\"false\","
               "\"rebuild\":\"false\",\"repos\":\"[]\",\"size\":\"small\","
               "\"user\":\"ann\"}");
  assert_check(state, "{}", prev,
               "{\"cpus\":\"2\",\"disk\":\"50\",\"gpu\":\"false\","
               "\"rebuild\":\"false\",\"repos\":\"[]\",\"size\":\"small\","
               "\"user\":\"ann\"}");
}

static void monotonic_values_move_one_way(void **state) {
  const char *prev = "{\"user\": \"ann\", \"cpus\": \"4\", \"disk\": \"50\"}";
  assert_check(state, "{\"cpus\": \"3\"}", prev,
               "cpus|may only increase (was 4)\n");
  assert_check(state, "{\"cpus\": \"4.0\", \"disk\": \"60\"}", prev,
               "disk|Disks only shrink\n");
  assert_check(state, "{\"cpus\": \"6\", \"disk\": \"40\"}", prev,
               "{\"cpus\":\"6\",\"disk\":\"40\",\"gpu\":\"false\","
               "\"rebuild\":\"false\",\"repos\":\"[]\",\"size\":\"small\","
               "\"user\":\"ann\"}");
  /* The first build has no previous value to compare with. */
  assert_check(state, "{\"user\": \"ann\", \"disk\": \"60\"}", NULL,
               "{\"cpus\":\"2\",\"disk\":\"60\",\"gpu\":\"false\","
               "\"rebuild\":\"false\",\"repos\":\"[]\",\"size\":\"small\","
               "\"user\":\"ann\"}");
}

static void monotonic_decreasing_generic_message(void **state) {
  (void)state;
  atr_manifest_t m;
  parses(NUM "    default: 5\n    mutable: true\n"
             "    validation: { monotonic: decreasing }\n",
         &m);
  json_t *v = json_pack("{s:s}", "p", "6");
  json_t *prev = json_pack("{s:s}", "p", "5");
  json_t *resolved = NULL, *errors = NULL;
  assert_int_equal(atr_manifest_check_values(&m, v, prev, &resolved, &errors),
                   ATR_EINVAL);
  char *got = manifest_errors_text(errors);
  assert_string_equal(got, "p|may only decrease (was 5)\n");
  free(got);
  json_decref(errors);
  json_decref(v);
  json_decref(prev);
  atr_manifest_free(&m);
}

static void ephemeral_values_do_not_carry_over(void **state) {
  const char *prev = "{\"user\": \"ann\", \"rebuild\": \"true\"}";
  assert_check(state, "{\"rebuild\": \"true\"}", prev,
               "{\"cpus\":\"2\",\"disk\":\"50\",\"gpu\":\"false\","
               "\"rebuild\":\"true\",\"repos\":\"[]\",\"size\":\"small\","
               "\"user\":\"ann\"}");
  assert_check(state, "{}", prev,
               "{\"cpus\":\"2\",\"disk\":\"50\",\"gpu\":\"false\","
               "\"rebuild\":\"false\",\"repos\":\"[]\",\"size\":\"small\","
               "\"user\":\"ann\"}");
}

int main(void) {
#define V(fn) cmocka_unit_test_setup_teardown(fn, values_setup, values_teardown)
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_full_manifest_parses_into_what_was_written),
      cmocka_unit_test(a_minimal_manifest_and_json_list_defaults_parse),
      cmocka_unit_test(top_level_mistakes_are_reported),
      cmocka_unit_test(all_mistakes_are_reported_at_once),
      cmocka_unit_test(parameter_mistakes_are_reported),
      cmocka_unit_test(validation_mistakes_are_reported),
      cmocka_unit_test(option_mistakes_are_reported),
      cmocka_unit_test(monotonic_decreasing_generic_message),
      V(defaults_are_filled_in),
      V(values_of_every_type_are_accepted),
      V(bad_values_get_precise_messages),
      V(required_and_unknown_names_are_reported),
      V(immutable_values_cannot_change),
      V(monotonic_values_move_one_way),
      V(ephemeral_values_do_not_carry_over),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
