/* tests/unit/options_fixture.c — see options_fixture.h. */
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

/* ---- the table under test ---------------------------------------------- */

const char *const modes[] = {"fast", "safe", "off", NULL};

const atr_option_t table[] = {
    {ATR_OPT_STRING, "http.address", "127.0.0.1:3000", ATR_OPT_RELOADABLE,
     offsetof(ctx_t, address), "Where the API listens.", NULL, 0, 0},
    {ATR_OPT_INT, "http.threads", "4", 0, offsetof(ctx_t, threads),
     "Worker threads.", NULL, 1, 64},
    {ATR_OPT_SIZE, "http.max_body_size", "1MiB", 0, offsetof(ctx_t, max_body),
     "Largest request body.", NULL, 1024, 1073741824.0},
    {ATR_OPT_BOOL, "verbose", "false", 0, offsetof(ctx_t, verbose), "Log more.",
     NULL, 0, 0},
    {ATR_OPT_DOUBLE, "ratio", "0.5", 0, offsetof(ctx_t, ratio),
     "Share of work.", NULL, 0, 1},
    {ATR_OPT_DURATION, "timeout", "30s", 0, offsetof(ctx_t, timeout_ms),
     "How long to wait.", NULL, 1000, 3600000},
    {ATR_OPT_LIST, "plugin_dirs", "", 0, offsetof(ctx_t, dirs),
     "Where plugins are.", NULL, 0, 0},
    {ATR_OPT_ENUM, "mode", "safe", 0, offsetof(ctx_t, mode), "How to run.",
     modes, 0, 0},
    {ATR_OPT_SECRET, "token", NULL, ATR_OPT_REQUIRED, offsetof(ctx_t, token),
     "Shared secret.", NULL, 0, 0},
    {ATR_OPT_STRING, "nickname", NULL, ATR_OPT_DEPRECATED,
     offsetof(ctx_t, nickname), "Use http.address instead.", NULL, 0, 0},
    {ATR_OPT_INT, "no_offset", "7", 0, ATR_OPT_NO_OFFSET, "Read via host.",
     NULL, 0, 0},
    {0},
};

/* ---- a fake environment ------------------------------------------------- */

static const char *env_names[8], *env_values[8];
size_t env_n;

const char *fake_getenv(const char *name) {
  for (size_t i = 0; i < env_n; i++)
    if (!strcmp(env_names[i], name))
      return env_values[i];
  return NULL;
}

void set_env(const char *name, const char *value) {
  env_names[env_n] = name;
  env_values[env_n++] = value;
}

int reset(void **state) {
  (void)state;
  env_n = 0;
  return 0;
}

/* ---- helpers ----------------------------------------------------------- */

atr_conf_node_t *yaml(const char *text) {
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  if (atr_conf_parse("atrium.yaml", text, strlen(text), &root, &err))
    fail_msg("bad test YAML: %s", err);
  return root;
}

/* Resolve `table` over `text` with the fake env and `flags` (may be NULL). */
int resolve(atr_optset_t *set, const atr_option_t *tbl, const char *section,
            const char *text, atr_overrides_t *flags, char **err) {
  atr_conf_node_t *root = text ? yaml(text) : NULL;
  *err = NULL;
  int rc = atr_optset_resolve(set, tbl, section, root, NULL, NULL, flags,
                              fake_getenv, err);
  atr_conf_free(root);
  return rc;
}

void resolve_ok(atr_optset_t *set, const char *text, atr_overrides_t *flags) {
  char *err = NULL;
  if (resolve(set, table, "", text, flags, &err))
    fail_msg("unexpected error: %s", err);
}

void assert_resolve_error(const char *text, const char *expected) {
  atr_optset_t set;
  char *err = NULL;
  assert_int_equal(resolve(&set, table, "", text, NULL, &err), ATR_ECONFIG);
  assert_non_null(err);
  assert_string_equal(err, expected);
  free(err);
}

char *capture(void (*write)(const void *, FILE *), const void *arg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  write(arg, f);
  fclose(f);
  return buf;
}
