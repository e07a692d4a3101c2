/* tests/unit/options_fixture.h — the option table, fake environment and
 * helpers that test_options.c and test_options_output.c share. */
#ifndef ATRIUM_TEST_OPTIONS_FIXTURE_H
#define ATRIUM_TEST_OPTIONS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "conf.h"
#include "options.h"

typedef struct ctx {
  const char *address;
  int64_t threads;
  uint64_t max_body;
  bool verbose;
  double ratio;
  int64_t timeout_ms;
  const char *const *dirs;
  const char *mode;
  const char *token;
  const char *nickname;
  int64_t untouched;
} ctx_t;

extern const char *const modes[];
extern const atr_option_t table[];

#define VALID_OPTIONS                                                          \
  "http.address, http.threads, http.max_body_size, verbose, ratio, timeout, "  \
  "plugin_dirs, mode, token, nickname, no_offset"

/* The fake environment: set_env adds a variable, reset empties it. */
extern size_t env_n;
const char *fake_getenv(const char *name);
void set_env(const char *name, const char *value);
int reset(void **state);
atr_conf_node_t *yaml(const char *text);
/* Resolve `tbl` over `text` with the fake env and `flags` (may be NULL). */
int resolve(atr_optset_t *set, const atr_option_t *tbl, const char *section,
            const char *text, atr_overrides_t *flags, char **err);
void resolve_ok(atr_optset_t *set, const char *text, atr_overrides_t *flags);
void assert_resolve_error(const char *text, const char *expected);
/* What write(arg, f) writes, as a new string. */
char *capture(void (*write)(const void *, FILE *), const void *arg);

/* test_options_output.c */
void fill_writes_each_value_at_its_offset(void **state);
void to_json_shows_typed_values_and_redacts_secrets(void **state);
void write_yaml_nests_by_dots_and_comments_each_source(void **state);
void describe_json_lists_every_field_of_the_table(void **state);
void markdown_has_a_row_per_option(void **state);
void diff_reports_only_values_that_changed(void **state);

#endif
