/* tests/unit/test_options_output.c — what option sets write out: values
 * filled by offset, JSON with secrets redacted, YAML, the table described
 * as JSON and Markdown, and reload diffs (test_options.c runs them). */
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

/* ---- using and showing a resolved set ----------------------------------- */

void fill_writes_each_value_at_its_offset(void **state) {
  (void)state;
  atr_optset_t set;
  set_env("ATRIUM_TOKEN", "s3cret");
  resolve_ok(&set,
             "http:\n  max_body_size: 64MiB\nverbose: yes\n"
             "timeout: 45m\nplugin_dirs: [/a]\nmode: fast\n"
             "ratio: 0.25\n",
             NULL);
  ctx_t ctx;
  memset(&ctx, 0xff, sizeof ctx); /* unset fields must be overwritten */
  ctx.untouched = 99;
  atr_optset_fill(&set, &ctx);
  assert_string_equal(ctx.address, "127.0.0.1:3000");
  assert_int_equal(ctx.threads, 4);
  assert_int_equal(ctx.max_body, 67108864);
  assert_true(ctx.verbose);
  assert_true(ctx.ratio == 0.25);
  assert_int_equal(ctx.timeout_ms, 2700000);
  assert_string_equal(ctx.dirs[0], "/a");
  assert_null(ctx.dirs[1]);
  assert_string_equal(ctx.mode, "fast");
  assert_string_equal(ctx.token, "s3cret");
  assert_null(ctx.nickname); /* optional, unset */
  assert_int_equal(ctx.untouched, 99);
  atr_optset_free(&set);
}

void to_json_shows_typed_values_and_redacts_secrets(void **state) {
  (void)state;
  atr_optset_t set;
  set_env("ATRIUM_TOKEN", "s3cret");
  resolve_ok(&set, "http:\n  threads: 8\n", NULL);
  json_t *j = atr_optset_to_json(&set);
  char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(
      s, "{\"http.address\":{\"source\":\"default\",\"value\":\"127.0.0.1:"
         "3000\"},\"http.max_body_size\":{\"source\":\"default\",\"value\":"
         "1048576},\"http.threads\":{\"source\":\"atrium.yaml:2:12\","
         "\"value\":8},\"mode\":{\"source\":\"default\",\"value\":\"safe\"},"
         "\"nickname\":{\"source\":null,\"value\":null},\"no_offset\":{"
         "\"source\":\"default\",\"value\":7},\"plugin_dirs\":{\"source\":"
         "\"default\",\"value\":[]},\"ratio\":{\"source\":\"default\","
         "\"value\":0.5},\"timeout\":{\"source\":\"default\",\"value\":30000},"
         "\"token\":{\"source\":\"environment ATRIUM_TOKEN\",\"value\":\"("
         "redacted)\"},\"verbose\":{\"source\":\"default\",\"value\":false}}");
  assert_null(strstr(s, "s3cret"));
  free(s);
  json_decref(j);
  assert_string_equal(atr_optval_display(atr_optset_find(&set, "token")),
                      "(redacted)");
  assert_string_equal(atr_optval_display(atr_optset_find(&set, "timeout")),
                      "30s");
  assert_string_equal(atr_optval_display(atr_optset_find(&set, "nickname")),
                      "(unset)");
  atr_optset_free(&set);
}

static void write_set_yaml(const void *set, FILE *out) {
  atr_optset_write_yaml(set, 2, out);
}

void write_yaml_nests_by_dots_and_comments_each_source(void **state) {
  (void)state;
  atr_optset_t set;
  set_env("ATRIUM_TOKEN", "s3cret");
  resolve_ok(&set, "http:\n  threads: 8\nplugin_dirs: [/a, 'b c', '#x']\n",
             NULL);
  char *out = capture(write_set_yaml, &set);
  assert_string_equal(out,
                      "  http:\n"
                      "    address: 127.0.0.1:3000  # default\n"
                      "    threads: 8  # atrium.yaml:2:12\n"
                      "    max_body_size: 1MiB  # default\n"
                      "  verbose: false  # default\n"
                      "  ratio: 0.5  # default\n"
                      "  timeout: 30s  # default\n"
                      "  plugin_dirs: [/a, b c, \"#x\"]  # atrium.yaml:3:14\n"
                      "  mode: safe  # default\n"
                      "  token: (redacted)  # environment ATRIUM_TOKEN\n"
                      "  nickname: ~  # not set\n"
                      "  no_offset: 7  # default\n");
  free(out);
  atr_optset_free(&set);
}

void describe_json_lists_every_field_of_the_table(void **state) {
  (void)state;
  json_t *a = atr_options_describe_json(table, "plugins.x");
  assert_int_equal(json_array_size(a), 11);
  char *s = json_dumps(json_array_get(a, 1), JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(
      s, "{\"default\":\"4\",\"deprecated\":false,\"description\":\"Worker "
         "threads.\",\"env\":\"ATRIUM_PLUGINS_X_HTTP_THREADS\",\"max\":64,"
         "\"min\":1,\"name\":\"http.threads\",\"reloadable\":false,"
         "\"required\":false,\"secret\":false,\"type\":\"int\"}");
  free(s);
  s = json_dumps(json_array_get(a, 7), JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(
      s, "{\"choices\":[\"fast\",\"safe\",\"off\"],\"default\":\"safe\","
         "\"deprecated\":false,\"description\":\"How to run.\",\"env\":"
         "\"ATRIUM_PLUGINS_X_MODE\",\"name\":\"mode\",\"reloadable\":false,"
         "\"required\":false,\"secret\":false,\"type\":\"enum\"}");
  free(s);
  s = json_dumps(json_array_get(a, 8), JSON_COMPACT | JSON_SORT_KEYS);
  assert_string_equal(
      s, "{\"default\":null,\"deprecated\":false,\"description\":\"Shared "
         "secret.\",\"env\":\"ATRIUM_PLUGINS_X_TOKEN\",\"name\":\"token\","
         "\"reloadable\":false,\"required\":true,\"secret\":true,\"type\":"
         "\"secret\"}");
  free(s);
  json_decref(a);
}

static void write_table_markdown(const void *tbl, FILE *out) {
  atr_options_write_markdown(tbl, "", out);
}

void markdown_has_a_row_per_option(void **state) {
  (void)state;
  static const atr_option_t secret_default[] = {
      {ATR_OPT_SECRET, "dev_token", "letmein", ATR_OPT_DEPRECATED,
       ATR_OPT_NO_OFFSET, "Token | for dev.", NULL, 0, 0},
      {0}};
  static const char header[] = "| Option | Type | Default | Env | Description "
                               "|\n| --- | --- | --- | --- | --- |\n";
  char *md = capture(write_table_markdown, table);
  assert_memory_equal(md, header, sizeof header - 1);
  assert_non_null(strstr(md, "| `http.threads` | int | `4` | "
                             "`ATRIUM_HTTP_THREADS` | Worker threads. Between "
                             "1 and 64. |\n"));
  assert_non_null(strstr(md, "| `http.address` | string | `127.0.0.1:3000` | "
                             "`ATRIUM_HTTP_ADDRESS` | Where the API listens. "
                             "*reloadable* |\n"));
  assert_non_null(strstr(md, "| `mode` | enum | `safe` | `ATRIUM_MODE` | How "
                             "to run. One of: `fast`, `safe`, `off`. |\n"));
  assert_non_null(strstr(md, "| `token` | secret |  | `ATRIUM_TOKEN` | Shared "
                             "secret. *required* |\n"));
  assert_non_null(strstr(md, "| `plugin_dirs` | list | `[]` | "
                             "`ATRIUM_PLUGIN_DIRS` | Where plugins are. |\n"));
  assert_non_null(strstr(md, "| `timeout` | duration | `30s` | "
                             "`ATRIUM_TIMEOUT` | How long to wait. Between 1s "
                             "and 1h. |\n"));
  free(md);
  md = capture(write_table_markdown, secret_default);
  assert_non_null(strstr(md, "| `dev_token` | secret | (secret) | "
                             "`ATRIUM_DEV_TOKEN` | Token \\| for dev. "
                             "*deprecated* |\n"));
  assert_null(strstr(md, "letmein"));
  free(md);
}

typedef struct changes {
  char names[256];
  char values[256];
} changes_t;

static void record_change(void *ud, const atr_optval_t *old_val,
                          const atr_optval_t *new_val) {
  changes_t *c = ud;
  strcat(c->names, new_val->opt->name);
  strcat(c->names, ";");
  strcat(c->values, atr_optval_display(old_val));
  strcat(c->values, "->");
  strcat(c->values, atr_optval_display(new_val));
  strcat(c->values, ";");
}

void diff_reports_only_values_that_changed(void **state) {
  (void)state;
  atr_optset_t old_set, new_set;
  atr_log_level_t level = atr_log_get_level();
  atr_log_set_level(ATR_LOG_ERROR); /* nickname's deprecation is not news */
  resolve_ok(&old_set, "token: a\nhttp:\n  threads: 8\n", NULL);
  /* the address moves from default to the file, but keeps its value */
  resolve_ok(&new_set,
             "token: b\nhttp:\n  threads: 9\n  address: "
             "127.0.0.1:3000\nnickname: n\n",
             NULL);
  atr_log_set_level(level);
  changes_t c = {{0}, {0}};
  atr_optset_diff(&old_set, &new_set, record_change, &c);
  assert_string_equal(c.names, "http.threads;token;nickname;");
  assert_string_equal(c.values, "8->9;(redacted)->(redacted);(unset)->n;");
  atr_optset_free(&old_set);
  atr_optset_free(&new_set);
}
