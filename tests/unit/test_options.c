/* Option tables as an operator meets them: values in every spelling, the
 * message for each mistake, where a value came from, and how the effective
 * configuration is shown. */
#ifndef _GNU_SOURCE /* the top-level CMakeLists.txt may define it */
#define _GNU_SOURCE /* open_memstream, vasprintf */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "conf.h"
#include "log.h"
#include "options.h"

#include "options_fixture.h"

/* Parses `text` as a one-option table of `type`, bounded when min < max. */
static char *parse_why(atr_option_type_t type, const char *text, double min,
                       double max) {
  atr_option_t opt = {type, "x",   NULL, 0,  ATR_OPT_NO_OFFSET,
                      "",   modes, min,  max};
  atr_optval_t val = {0};
  char *why = NULL;
  int rc = atr_option_parse(&opt, text, &val, &why);
  if (!rc) { /* an optset is the one owner that knows how to free a value */
    atr_optset_t set = {.table = &opt,
                        .section = strdup(""),
                        .n = 1,
                        .vals = calloc(1, sizeof val)};
    set.vals[0] = val;
    atr_optset_free(&set);
    return NULL;
  }
  assert_true(rc == ATR_EINVAL || rc == ATR_ERANGE);
  assert_non_null(why);
  return why;
}

static void assert_why(atr_option_type_t type, const char *text,
                       const char *expected) {
  char *why = parse_why(type, text, 0, 0);
  if (!why)
    fail_msg("\"%s\" was accepted", text);
  assert_string_equal(why, expected);
  free(why);
}

static void assert_accepted(atr_option_type_t type, const char *text) {
  char *why = parse_why(type, text, 0, 0);
  if (why)
    fail_msg("\"%s\" refused: %s", text, why);
}

/* ---- value spellings ---------------------------------------------------- */

static void sizes_take_decimal_and_binary_units(void **state) {
  (void)state;
  static const struct {
    const char *text;
    uint64_t bytes;
  } cases[] = {
      {"64MiB", 67108864},  {"1.5GB", 1500000000}, {"512", 512},
      {"1K", 1024},         {"64 mib", 67108864},  {"2TB", 2000000000000},
      {"1TiB", 1ull << 40}, {"10b", 10},           {"0.5KiB", 512},
      {"3kb", 3000},        {"1G", 1u << 30},      {"0", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    uint64_t bytes = 0;
    assert_int_equal(atr_parse_size(cases[i].text, &bytes), 0);
    assert_int_equal(bytes, cases[i].bytes);
  }
  uint64_t bytes;
  const char *bad[] = {"", "MiB", "12 parsecs", "-1MiB", "1.MiB", " 5"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(atr_parse_size(bad[i], &bytes), ATR_EINVAL);
  assert_int_equal(atr_parse_size("99999999TiB", &bytes), ATR_ERANGE);
  assert_why(ATR_OPT_SIZE, "12 parsecs",
             "\"12 parsecs\" is not a size; expected a number with a unit B, "
             "KB, KiB, MB, MiB, GB, GiB, TB or TiB (e.g. \"64MiB\")");
  assert_why(ATR_OPT_SIZE, "99999999TiB",
             "99999999TiB is out of range; expected at most "
             "18446744073709551615B");
}

static void durations_take_one_or_more_units(void **state) {
  (void)state;
  static const struct {
    const char *text;
    int64_t ms;
  } cases[] = {
      {"5m", 300000}, {"1h30m", 5400000}, {"250ms", 250},   {"1.5s", 1500},
      {"0", 0},       {"2d", 172800000},  {"1m30s", 90000}, {"0s", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    int64_t ms = -1;
    assert_int_equal(atr_parse_duration(cases[i].text, &ms), 0);
    assert_int_equal(ms, cases[i].ms);
  }
  int64_t ms;
  const char *bad[] = {"", "5", "m", "1h30", "-5s", "5 m", "5M", "1.s"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(atr_parse_duration(bad[i], &ms), ATR_EINVAL);
  assert_int_equal(atr_parse_duration("9999999999999999d", &ms), ATR_ERANGE);
  assert_why(ATR_OPT_DURATION, "5 parsecs",
             "\"5 parsecs\" is not a duration; expected a number with a unit "
             "ms, s, m, h or d (e.g. \"30s\", \"5m\", \"1h30m\")");
}

static void
sizes_and_durations_print_in_their_shortest_exact_form(void **state) {
  (void)state;
  static const struct {
    uint64_t bytes;
    const char *text;
  } sizes[] = {{67108864, "64MiB"}, {1000, "1000B"}, {1536, "1536B"},
               {0, "0B"},           {1024, "1KiB"},  {3ull << 40, "3TiB"}};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    char *s = atr_format_size(sizes[i].bytes);
    assert_string_equal(s, sizes[i].text);
    free(s);
  }
  static const struct {
    int64_t ms;
    const char *text;
  } durations[] = {{5400000, "1h30m"}, {300000, "5m"},
                   {250, "250ms"},     {0, "0s"},
                   {1500, "1s500ms"},  {90061001, "1d1h1m1s1ms"}};
  for (size_t i = 0; i < sizeof durations / sizeof *durations; i++) {
    char *s = atr_format_duration(durations[i].ms);
    assert_string_equal(s, durations[i].text);
    free(s);
  }
}

static void integers_booleans_and_doubles(void **state) {
  (void)state;
  const char *ints[] = {"42", "-7", "+3", "0"};
  for (size_t i = 0; i < 4; i++)
    assert_accepted(ATR_OPT_INT, ints[i]);
  assert_why(ATR_OPT_INT, "abc",
             "\"abc\" is not an integer; expected a whole number");
  assert_why(ATR_OPT_INT, "4.5",
             "\"4.5\" is not an integer; expected a whole number");
  assert_why(ATR_OPT_INT, "",
             "\"\" is not an integer; expected a whole number");
  assert_why(ATR_OPT_INT, "99999999999999999999",
             "99999999999999999999 is out of range; expected a value between "
             "-9223372036854775808 and 9223372036854775807");

  const char *bools[] = {"true", "FALSE", "yes", "No", "on", "off", "1", "0"};
  for (size_t i = 0; i < 8; i++)
    assert_accepted(ATR_OPT_BOOL, bools[i]);
  bool b = false;
  assert_int_equal(atr_parse_bool("Yes", &b), 0);
  assert_true(b);
  assert_int_equal(atr_parse_bool("off", &b), 0);
  assert_false(b);
  assert_why(ATR_OPT_BOOL, "maybe",
             "\"maybe\" is not a boolean; expected true or false");

  const char *doubles[] = {"0.25", "1e3", "-2", ".5"};
  for (size_t i = 0; i < 4; i++)
    assert_accepted(ATR_OPT_DOUBLE, doubles[i]);
  const char *not_doubles[] = {"abc", "nan", "inf", "0x10", "", "1.5x"};
  for (size_t i = 0; i < 6; i++) {
    char *expected = NULL;
    assert_true(asprintf(&expected,
                         "\"%s\" is not a number; expected a decimal number "
                         "such as 0.5",
                         not_doubles[i]) > 0);
    assert_why(ATR_OPT_DOUBLE, not_doubles[i], expected);
    free(expected);
  }
  char *why = parse_why(ATR_OPT_DOUBLE, "1e999", 0, 0);
  assert_non_null(strstr(why, "1e999 is out of range"));
  free(why);
}

static void enums_accept_exactly_their_choices(void **state) {
  (void)state;
  assert_accepted(ATR_OPT_ENUM, "fast");
  assert_why(ATR_OPT_ENUM, "maybe",
             "\"maybe\" is not allowed; expected one of: fast, safe, off");
  assert_why(ATR_OPT_ENUM, "FAST",
             "\"FAST\" is not allowed; expected one of: fast, safe, off");
}

static void bounds_name_the_allowed_range_in_the_option_s_units(void **state) {
  (void)state;
  char *why = parse_why(ATR_OPT_INT, "0", 1, 65535);
  assert_string_equal(why, "0 is out of range; expected a value between 1 "
                           "and 65535");
  free(why);
  why = parse_why(ATR_OPT_SIZE, "2GiB", 1024, 1073741824.0);
  assert_string_equal(why, "2GiB is out of range; expected a value between "
                           "1KiB and 1GiB");
  free(why);
  why = parse_why(ATR_OPT_DURATION, "500ms", 1000, 3600000);
  assert_string_equal(why, "500ms is out of range; expected a value between "
                           "1s and 1h");
  free(why);
  why = parse_why(ATR_OPT_DOUBLE, "1.5", 0, 1);
  assert_string_equal(why, "1.5 is out of range; expected a value between 0 "
                           "and 1");
  free(why);
  assert_null(parse_why(ATR_OPT_INT, "65535", 1, 65535)); /* inclusive */
  assert_null(parse_why(ATR_OPT_INT, "-5", 0, 0));        /* unbounded */
}

static void env_names_follow_the_full_dotted_key(void **state) {
  (void)state;
  char *e = atr_option_env_name("http.address");
  assert_string_equal(e, "ATRIUM_HTTP_ADDRESS");
  free(e);
  e = atr_option_env_name("plugins.provisioner_echo.greeting");
  assert_string_equal(e, "ATRIUM_PLUGINS_PROVISIONER_ECHO_GREETING");
  free(e);
  e = atr_option_env_name("plugins.auth-ldap.bind_dn");
  assert_string_equal(e, "ATRIUM_PLUGINS_AUTH_LDAP_BIND_DN");
  free(e);
  assert_string_equal(atr_option_type_name(ATR_OPT_DURATION), "duration");
  assert_string_equal(atr_option_type_name(ATR_OPT_SECRET), "secret");
}

/* ---- resolving against config, environment and flags ------------------- */

static void flags_beat_environment_beats_config_beats_default(void **state) {
  (void)state;
  const char *text = "token: s3cret\nhttp:\n  threads: 8\n";
  char *argv[] = {"atrium", "--http.threads=16"};
  atr_overrides_t flags;
  char **rest;
  int nrest;
  char *err = NULL;
  assert_int_equal(
      atr_overrides_from_argv(2, argv, &flags, &rest, &nrest, &err), 0);
  free(rest);
  set_env("ATRIUM_HTTP_THREADS", "12");

  static const struct {
    int64_t threads;
    const char *source;
  } want[] = {{16, "flag --http.threads"},
              {12, "environment ATRIUM_HTTP_THREADS"},
              {8, "atrium.yaml:3:12"},
              {4, "default"}};
  for (size_t step = 0; step < 4; step++) {
    atr_optset_t set;
    resolve_ok(&set, step < 3 ? text : "token: s3cret\n",
               step == 0 ? &flags : NULL);
    const atr_optval_t *v = atr_optset_find(&set, "http.threads");
    assert_true(v->set);
    assert_int_equal(v->v.i, want[step].threads);
    assert_string_equal(v->source, want[step].source);
    atr_optset_free(&set);
    if (step == 0)
      assert_null(atr_overrides_first_unused(&flags));
    if (step == 1)
      env_n = 0; /* drop the environment for the next steps */
  }
  atr_overrides_free(&flags);
}

static void a_plugin_section_uses_its_full_key_for_env_and_flags(void **state) {
  (void)state;
  static const atr_option_t echo[] = {
      {ATR_OPT_STRING, "greeting", "hello", 0, ATR_OPT_NO_OFFSET, "Says.", NULL,
       0, 0},
      {ATR_OPT_INT, "repeat", "1", 0, ATR_OPT_NO_OFFSET, "Times.", NULL, 0, 0},
      {0}};
  static const char *const reserved[] = {"enabled", NULL};
  atr_conf_node_t *root = yaml("plugins:\n  provisioner_echo:\n    enabled: "
                               "true\n    repeat: 2\n");
  set_env("ATRIUM_PLUGINS_PROVISIONER_ECHO_GREETING", "hi there");
  atr_optset_t set;
  char *err = NULL;
  assert_int_equal(atr_optset_resolve(&set, echo, "plugins.provisioner_echo",
                                      root, reserved, NULL, NULL, fake_getenv,
                                      &err),
                   0);
  assert_string_equal(set.section, "plugins.provisioner_echo");
  assert_string_equal(set.vals[0].v.s, "hi there");
  assert_string_equal(set.vals[0].source,
                      "environment ATRIUM_PLUGINS_PROVISIONER_ECHO_GREETING");
  assert_int_equal(set.vals[1].v.i, 2);
  assert_string_equal(set.vals[1].source, "atrium.yaml:4:13");
  atr_optset_free(&set);

  /* without `enabled` reserved, it is an unknown key like any other */
  assert_int_equal(atr_optset_resolve(&set, echo, "plugins.provisioner_echo",
                                      root, NULL, NULL, NULL, NULL, &err),
                   ATR_ECONFIG);
  assert_string_equal(err, "atrium.yaml:3:14: plugins.provisioner_echo."
                           "enabled: unknown option; valid options: "
                           "greeting, repeat");
  free(err);
  atr_conf_free(root);
}

static void the_core_section_skips_the_plugins_map(void **state) {
  (void)state;
  static const char *const skip[] = {"plugins", NULL};
  atr_conf_node_t *root =
      yaml("token: t\nplugins:\n  provisioner_echo:\n    enabled: true\n");
  atr_optset_t set;
  char *err = NULL;
  assert_int_equal(
      atr_optset_resolve(&set, table, "", root, NULL, skip, NULL, NULL, &err),
      0);
  atr_optset_free(&set);
  atr_conf_free(root);
}

static void an_unknown_key_lists_the_valid_options(void **state) {
  (void)state;
  assert_resolve_error("token: t\nhttp:\n  adress: x\n",
                       "atrium.yaml:3:11: http.adress: unknown option; valid "
                       "options: " VALID_OPTIONS);
  assert_resolve_error("tokn: t\n", "atrium.yaml:1:7: tokn: unknown option; "
                                    "valid options: " VALID_OPTIONS);
}

static void a_table_without_options_accepts_no_keys(void **state) {
  (void)state;
  static const atr_option_t none[] = {{0}};
  atr_optset_t set;
  char *err = NULL;
  assert_int_equal(resolve(&set, none, "plugins.bare",
                           "plugins:\n  bare:\n    color: red\n", NULL, &err),
                   ATR_ECONFIG);
  assert_string_equal(err, "atrium.yaml:3:12: plugins.bare.color: unknown "
                           "option; no options are accepted here");
  free(err);
  assert_int_equal(resolve(&set, none, "plugins.bare", "a: 1\n", NULL, &err),
                   0);
  assert_int_equal(set.n, 0);
  atr_optset_free(&set);
}

static void a_missing_required_option_says_how_to_set_it(void **state) {
  (void)state;
  assert_resolve_error("http:\n  threads: 8\n",
                       "atrium.yaml:1:1: token: required option is missing; "
                       "set it in the config file, with ATRIUM_TOKEN or with "
                       "--token");
  static const atr_option_t keyed[] = {{ATR_OPT_SECRET, "api_key", NULL,
                                        ATR_OPT_REQUIRED, ATR_OPT_NO_OFFSET,
                                        "Key.", NULL, 0, 0},
                                       {0}};
  atr_optset_t set;
  char *err = NULL;
  assert_int_equal(
      resolve(&set, keyed, "plugins.echo", "http: {}\n", NULL, &err),
      ATR_ECONFIG);
  assert_string_equal(err, "atrium.yaml: plugins.echo.api_key: required "
                           "option is missing; set it in the config file, "
                           "with ATRIUM_PLUGINS_ECHO_API_KEY or with "
                           "--plugins.echo.api_key");
  free(err);
  assert_int_equal(resolve(&set, keyed, "plugins.echo",
                           "plugins:\n  echo:\n    other: 1\n", NULL, &err),
                   ATR_ECONFIG);
  assert_string_equal(err, "atrium.yaml:3:12: plugins.echo.other: unknown "
                           "option; valid options: api_key");
  free(err);
  assert_int_equal(resolve(&set, keyed, "plugins.echo",
                           "plugins:\n  echo:\n    api_key: ~\n", NULL, &err),
                   ATR_ECONFIG);
  assert_string_equal(err, "atrium.yaml:3:5: plugins.echo.api_key: required "
                           "option is missing; set it in the config file, "
                           "with ATRIUM_PLUGINS_ECHO_API_KEY or with "
                           "--plugins.echo.api_key");
  free(err);
}

static void a_wrong_value_names_where_it_came_from(void **state) {
  (void)state;
  assert_resolve_error("token: t\nhttp:\n  threads: many\n",
                       "atrium.yaml:3:12: http.threads: \"many\" is not an "
                       "integer; expected a whole number");
  assert_resolve_error("token: t\nhttp:\n  threads: 0\n",
                       "atrium.yaml:3:12: http.threads: 0 is out of range; "
                       "expected a value between 1 and 64");
  assert_resolve_error("token: t\nhttp:\n  address:\n    a: 1\n",
                       "atrium.yaml:4:5: http.address: expected a single "
                       "value, not a map");
  assert_resolve_error("token: t\nverbose: [true]\n",
                       "atrium.yaml:2:10: verbose: expected a single value, "
                       "not a list");
  assert_resolve_error("token: t\nplugin_dirs:\n  a: 1\n",
                       "atrium.yaml:3:3: plugin_dirs: expected a list");
  assert_resolve_error("token: t\nplugin_dirs:\n  - [a]\n",
                       "atrium.yaml:3:5: plugin_dirs: list items must be "
                       "single values, not maps or lists");
  assert_resolve_error("token: t\nhttp: 5\n",
                       "atrium.yaml:2:7: http: expected a map of options, not "
                       "a single value");

  set_env("ATRIUM_VERBOSE", "maybe");
  assert_resolve_error("token: t\n", "environment ATRIUM_VERBOSE: verbose: "
                                     "\"maybe\" is not a boolean; expected "
                                     "true or false");
  env_n = 0;
  char *argv[] = {"--mode", "turbo"};
  atr_overrides_t flags;
  atr_optset_t set;
  char *err = NULL;
  assert_int_equal(atr_overrides_from_argv(2, argv, &flags, NULL, NULL, &err),
                   0);
  assert_int_equal(flags.n, 0); /* "mode" has no dot or underscore */
  atr_overrides_free(&flags);
  char *argv2[] = {"--http.max_body_size=lots"};
  assert_int_equal(atr_overrides_from_argv(1, argv2, &flags, NULL, NULL, &err),
                   0);
  assert_int_equal(resolve(&set, table, "", "token: t\n", &flags, &err),
                   ATR_ECONFIG);
  assert_string_equal(err, "flag --http.max_body_size: http.max_body_size: "
                           "\"lots\" is not a size; expected a number with a "
                           "unit B, KB, KiB, MB, MiB, GB, GiB, TB or TiB "
                           "(e.g. \"64MiB\")");
  free(err);
  atr_overrides_free(&flags);
}

static void
lists_come_from_yaml_sequences_or_comma_separated_text(void **state) {
  (void)state;
  atr_optset_t set;
  resolve_ok(&set, "token: t\nplugin_dirs:\n  - /a\n  - /b\n", NULL);
  const atr_optval_t *v = atr_optset_find(&set, "plugin_dirs");
  assert_string_equal(v->v.list[0], "/a");
  assert_string_equal(v->v.list[1], "/b");
  assert_null(v->v.list[2]);
  assert_string_equal(v->raw, "/a, /b");
  assert_string_equal(v->source, "atrium.yaml:3:3");
  atr_optset_free(&set);

  set_env("ATRIUM_PLUGIN_DIRS", "a, b,c");
  resolve_ok(&set, "token: t\n", NULL);
  v = atr_optset_find(&set, "plugin_dirs");
  assert_string_equal(v->v.list[0], "a");
  assert_string_equal(v->v.list[1], "b");
  assert_string_equal(v->v.list[2], "c");
  assert_null(v->v.list[3]);
  assert_string_equal(v->raw, "a, b, c");
  atr_optset_free(&set);
  env_n = 0;

  resolve_ok(&set, "token: t\n", NULL); /* default "" is an empty list */
  v = atr_optset_find(&set, "plugin_dirs");
  assert_true(v->set);
  assert_null(v->v.list[0]);
  atr_optset_free(&set);
}

static void a_null_value_falls_back_to_the_default(void **state) {
  (void)state;
  atr_optset_t set;
  resolve_ok(&set, "token: t\nhttp:\n  threads:\n", NULL);
  const atr_optval_t *v = atr_optset_find(&set, "http.threads");
  assert_int_equal(v->v.i, 4);
  assert_string_equal(v->source, "default");
  atr_optset_free(&set);
}

/* What the log shows while `text` is resolved. Caller frees. */
static char *log_of_resolving(const char *text) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  atr_log_set_stream(f);
  atr_optset_t set;
  resolve_ok(&set, text, NULL);
  atr_optset_free(&set);
  atr_log_set_stream(NULL);
  fclose(f);
  return buf;
}

static void a_deprecated_option_warns_only_when_set(void **state) {
  (void)state;
  char *log = log_of_resolving("token: t\n");
  assert_string_equal(log, "");
  free(log);
  log = log_of_resolving("token: t\nnickname: bob\n");
  const char *tail = "Z WARN  [config] atrium.yaml:2:11: nickname is "
                     "deprecated: Use http.address instead.\n";
  assert_int_equal(strlen(log), 23 + strlen(tail)); /* one line */
  assert_string_equal(log + 23, tail);              /* after the timestamp */
  free(log);
}

static void flags_are_collected_and_the_rest_is_left_alone(void **state) {
  (void)state;
  char *argv[] = {"atrium",
                  "server",
                  "--config",
                  "x.yaml",
                  "--http.address=0.0.0.0:1",
                  "--data_dir",
                  "/srv",
                  "--json",
                  "--htp.adress",
                  "v",
                  "--",
                  "--a.b=c"};
  atr_overrides_t flags;
  char **rest;
  int nrest;
  char *err = NULL;
  assert_int_equal(
      atr_overrides_from_argv(12, argv, &flags, &rest, &nrest, &err), 0);
  assert_int_equal(flags.n, 3);
  assert_string_equal(flags.items[0].key, "http.address");
  assert_string_equal(flags.items[0].value, "0.0.0.0:1");
  assert_string_equal(flags.items[1].key, "data_dir");
  assert_string_equal(flags.items[1].value, "/srv");
  const char *kept[] = {"atrium", "server", "--config", "x.yaml",
                        "--json", "--",     "--a.b=c"};
  assert_int_equal(nrest, 7);
  for (int i = 0; i < nrest; i++)
    assert_string_equal(rest[i], kept[i]);
  assert_null(rest[nrest]);
  free(rest);

  atr_optset_t set;
  resolve_ok(&set, "token: t\n", &flags);
  assert_string_equal(atr_optset_find(&set, "http.address")->v.s, "0.0.0.0:1");
  atr_optset_free(&set);
  assert_string_equal(atr_overrides_first_unused(&flags), "data_dir");
  flags.items[1].used = 1;
  assert_string_equal(atr_overrides_first_unused(&flags), "htp.adress");
  atr_overrides_free(&flags);

  char *dangling[] = {"atrium", "--http.address"};
  assert_int_equal(
      atr_overrides_from_argv(2, dangling, &flags, &rest, &nrest, &err),
      ATR_EINVAL);
  assert_string_equal(err, "flag --http.address needs a value: write "
                           "--http.address=VALUE or --http.address VALUE");
  free(err);
}
int main(void) {
#define T(name) cmocka_unit_test_setup(name, reset)
  const struct CMUnitTest tests[] = {
      T(sizes_take_decimal_and_binary_units),
      T(durations_take_one_or_more_units),
      T(sizes_and_durations_print_in_their_shortest_exact_form),
      T(integers_booleans_and_doubles),
      T(enums_accept_exactly_their_choices),
      T(bounds_name_the_allowed_range_in_the_option_s_units),
      T(env_names_follow_the_full_dotted_key),
      T(flags_beat_environment_beats_config_beats_default),
      T(a_plugin_section_uses_its_full_key_for_env_and_flags),
      T(the_core_section_skips_the_plugins_map),
      T(an_unknown_key_lists_the_valid_options),
      T(a_table_without_options_accepts_no_keys),
      T(a_missing_required_option_says_how_to_set_it),
      T(a_wrong_value_names_where_it_came_from),
      T(lists_come_from_yaml_sequences_or_comma_separated_text),
      T(a_null_value_falls_back_to_the_default),
      T(a_deprecated_option_warns_only_when_set),
      T(flags_are_collected_and_the_rest_is_left_alone),
      T(fill_writes_each_value_at_its_offset),
      T(to_json_shows_typed_values_and_redacts_secrets),
      T(write_yaml_nests_by_dots_and_comments_each_source),
      T(describe_json_lists_every_field_of_the_table),
      T(markdown_has_a_row_per_option),
      T(diff_reports_only_values_that_changed),
  };
#undef T
  return cmocka_run_group_tests(tests, NULL, NULL);
}
