/* tests/plugins/sqlite_fixture.c — the storage_sqlite test's plugin and
 * statement helpers (sqlite_fixture.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, mkdtemp, realpath */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atrium/storage.h"
#include "conf.h"
#include "loader.h"
#include "sqlite_fixture.h"

/* ---- harness */

int rm_entry(const char *path, const struct stat *st, int flag,
             struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Start storage_sqlite with `options` (YAML lines under its section, each
 * indented by four spaces) and the data directory `dir` (made if NULL). */
void fx_start_in(fx_t *f, const char *dir, const char *options) {
  memset(f, 0, sizeof *f);
  if (dir == NULL) {
    char tmpl[] = "/tmp/atr-sqlite-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    f->dir = realpath(tmpl, NULL);
  } else {
    f->dir = strdup(dir);
  }
  assert_non_null(f->dir);
  atr_host_set_data_dir(f->dir);

  const char *dirs[] = {ATR_TEST_PLUGIN_DIR};
  char *err = NULL;
  assert_int_equal(atr_loader_init(&f->loader, dirs, 1, &err), 0);
  int rc = atr_loader_open(&f->loader, "storage_sqlite", NULL, &f->h, &err);
  if (rc != 0)
    fail_msg("open: %s", err);
  char *text = fmt("plugins:\n  storage_sqlite:\n    enabled: true\n%s",
                   options ? options : "");
  rc = atr_conf_parse("test.yaml", text, strlen(text), &f->conf, &err);
  free(text);
  if (rc != 0)
    fail_msg("yaml: %s", err);
  rc = atr_loader_configure(f->h, f->conf, NULL, no_env, &err);
  if (rc != 0)
    fail_msg("configure: %s", err);
  rc = atr_loader_start(f->h, &err);
  if (rc != 0)
    fail_msg("start: %s", err);
  f->ops = f->h->desc->ops;
  f->ctx = f->h->ctx;
}

void fx_start(fx_t *f, const char *options) {
  fx_start_in(f, NULL, options);
}

void fx_stop(fx_t *f, bool remove_dir) {
  atr_loader_shutdown(&f->loader);
  atr_conf_free(f->conf);
  if (remove_dir)
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(f->dir);
  atr_host_set_data_dir(NULL);
}

atr_db_conn_t *get_conn(fx_t *f) {
  atr_db_conn_t *c = NULL;
  char *err = NULL;
  int rc = f->ops->get(f->ctx, &c, &err);
  if (rc != 0)
    fail_msg("get: %s", err);
  return c;
}

void exec_ok(fx_t *f, atr_db_conn_t *c, const char *sql,
             const atr_value_t *params, size_t n) {
  char *err = NULL;
  int rc = f->ops->exec(c, sql, params, n, NULL, &err);
  if (rc != 0)
    fail_msg("exec %s: %s", sql, err);
}

void script_ok(fx_t *f, atr_db_conn_t *c, const char *sql) {
  char *err = NULL;
  int rc = f->ops->exec_script(c, sql, &err);
  if (rc != 0)
    fail_msg("script: %s", err);
}

/* The first column of the only row, as `want`; text is copied into buf. */
atr_value_t one(fx_t *f, atr_db_conn_t *c, const char *sql,
                const atr_value_t *params, size_t n, atr_value_type_t want,
                char *buf, size_t bufsize) {
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  int rc = f->ops->query(c, sql, params, n, &rows, &err);
  if (rc != 0)
    fail_msg("query %s: %s", sql, err);
  assert_int_equal(f->ops->rows_next(rows, &err), 1);
  atr_value_t v;
  assert_int_equal(f->ops->rows_get(rows, 0, want, &v), 0);
  if (buf != NULL && v.type == ATR_VAL_TEXT)
    snprintf(buf, bufsize, "%s", (const char *)v.v.bytes.ptr);
  assert_int_equal(f->ops->rows_next(rows, &err), 0);
  f->ops->rows_close(rows);
  return v;
}

int64_t one_int(fx_t *f, atr_db_conn_t *c, const char *sql) {
  atr_value_t v = one(f, c, sql, NULL, 0, ATR_VAL_INT, NULL, 0);
  assert_int_equal(v.type, ATR_VAL_INT);
  return v.v.i;
}
