/* tests/plugins/test_storage_sqlite.c — what storage_sqlite promises beyond
 * the storage contract every backend shares.
 *
 * Each test loads the real storage_sqlite.so from the build's plugin
 * directory through the core loader (open, configure from YAML, start) with
 * a fresh data directory, calls the ops table directly, and shuts the
 * loader down. SQLite itself (linked here too) is used only to look at the
 * files the plugin wrote and to play a writer in another process.
 */
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

/* ---- harness */

typedef struct fx {
  char *dir; /* the data directory */
  atr_loader_t loader;
  atr_conf_node_t *conf;
  atr_handle_t *h;
  const atr_storage_ops_t *ops;
  void *ctx;
} fx_t;

static const char *no_env(const char *name) {
  (void)name;
  return NULL;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000,
                        .tv_nsec = (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

ATR_PRINTF(1, 2)
static char *fmt(const char *f, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, f);
  assert_true(vasprintf(&s, f, ap) >= 0);
  va_end(ap);
  return s;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

/* Start storage_sqlite with `options` (YAML lines under its section, each
 * indented by four spaces) and the data directory `dir` (made if NULL). */
static void fx_start_in(fx_t *f, const char *dir, const char *options) {
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

static void fx_start(fx_t *f, const char *options) {
  fx_start_in(f, NULL, options);
}

static void fx_stop(fx_t *f, bool remove_dir) {
  atr_loader_shutdown(&f->loader);
  atr_conf_free(f->conf);
  if (remove_dir)
    nftw(f->dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(f->dir);
  atr_host_set_data_dir(NULL);
}

static atr_db_conn_t *get_conn(fx_t *f) {
  atr_db_conn_t *c = NULL;
  char *err = NULL;
  int rc = f->ops->get(f->ctx, &c, &err);
  if (rc != 0)
    fail_msg("get: %s", err);
  return c;
}

static void exec_ok(fx_t *f, atr_db_conn_t *c, const char *sql,
                    const atr_value_t *params, size_t n) {
  char *err = NULL;
  int rc = f->ops->exec(c, sql, params, n, NULL, &err);
  if (rc != 0)
    fail_msg("exec %s: %s", sql, err);
}

static void script_ok(fx_t *f, atr_db_conn_t *c, const char *sql) {
  char *err = NULL;
  int rc = f->ops->exec_script(c, sql, &err);
  if (rc != 0)
    fail_msg("script: %s", err);
}

/* The first column of the only row, as `want`; text is copied into buf. */
static atr_value_t one(fx_t *f, atr_db_conn_t *c, const char *sql,
                       const atr_value_t *params, size_t n,
                       atr_value_type_t want, char *buf, size_t bufsize) {
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

static int64_t one_int(fx_t *f, atr_db_conn_t *c, const char *sql) {
  atr_value_t v = one(f, c, sql, NULL, 0, ATR_VAL_INT, NULL, 0);
  assert_int_equal(v.type, ATR_VAL_INT);
  return v.v.i;
}

static atr_value_t v_int(int64_t i) {
  return (atr_value_t){.type = ATR_VAL_INT, .v.i = i};
}

static atr_value_t v_text(const char *s) {
  return (atr_value_t){.type = ATR_VAL_TEXT,
                       .v.bytes = {.ptr = s, .len = strlen(s)}};
}

/* ---- connection set-up and options */

static void test_defaults_wal_and_file_in_data_dir(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_db_conn_t *c = get_conn(&f);
  char mode[32];
  one(&f, c, "PRAGMA journal_mode", NULL, 0, ATR_VAL_TEXT, mode, sizeof mode);
  assert_string_equal(mode, "wal");
  assert_int_equal(one_int(&f, c, "PRAGMA synchronous"), 1); /* NORMAL */
  assert_int_equal(one_int(&f, c, "PRAGMA foreign_keys"), 1);
  assert_int_equal(one_int(&f, c, "PRAGMA busy_timeout"), 5000);
  assert_int_equal(one_int(&f, c, "PRAGMA cache_size"), -16384); /* KiB */
  f.ops->put(f.ctx, c);

  char *file = fmt("%s/atrium.db", f.dir);
  struct stat st;
  assert_int_equal(stat(file, &st), 0);
  free(file);
  assert_string_equal(f.ops->dialect, "sqlite");
  assert_int_equal(f.ops->features, 0);
  fx_stop(&f, true);
}

static void test_options_synchronous_full_and_relative_path(void **state) {
  (void)state;
  char tmpl[] = "/tmp/atr-sqlite-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  char *sub = fmt("%s/state", tmpl);
  assert_int_equal(mkdir(sub, 0700), 0);
  fx_t f;
  fx_start_in(&f, tmpl,
              "    path: state/work.db\n    synchronous: FULL\n"
              "    cache_size: 2MiB\n    busy_timeout: 1500ms\n");
  atr_db_conn_t *c = get_conn(&f);
  assert_int_equal(one_int(&f, c, "PRAGMA synchronous"), 2); /* FULL */
  assert_int_equal(one_int(&f, c, "PRAGMA cache_size"), -2048);
  assert_int_equal(one_int(&f, c, "PRAGMA busy_timeout"), 1500);
  exec_ok(&f, c, "CREATE TABLE marker (x BIGINT)", NULL, 0);
  f.ops->put(f.ctx, c);
  fx_stop(&f, false);

  /* The file is where the data directory says, and holds what we wrote. */
  char *file = fmt("%s/work.db", sub);
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_exec(db, "SELECT x FROM marker", NULL, NULL, NULL),
                   SQLITE_OK);
  sqlite3_close(db);
  free(file);
  free(sub);
  nftw(tmpl, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_memory_path_is_refused(void **state) {
  (void)state;
  char tmpl[] = "/tmp/atr-sqlite-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  atr_host_set_data_dir(tmpl);
  atr_loader_t l;
  atr_handle_t *h = NULL;
  atr_conf_node_t *conf = NULL;
  char *err = NULL;
  const char *dirs[] = {ATR_TEST_PLUGIN_DIR};
  const char *text = "plugins:\n  storage_sqlite:\n    enabled: true\n"
                     "    path: \":memory:\"\n";
  assert_int_equal(atr_loader_init(&l, dirs, 1, &err), 0);
  assert_int_equal(atr_loader_open(&l, "storage_sqlite", NULL, &h, &err), 0);
  assert_int_equal(atr_conf_parse("t.yaml", text, strlen(text), &conf, &err),
                   0);
  assert_int_equal(atr_loader_configure(h, conf, NULL, no_env, &err), 0);
  assert_int_not_equal(atr_loader_start(h, &err), 0);
  assert_non_null(strstr(err, "\":memory:\" is not supported"));
  free(err);
  atr_loader_shutdown(&l);
  atr_conf_free(conf);
  atr_host_set_data_dir(NULL);
  rmdir(tmpl);
}

/* ---- values */

#define BIG_BLOB (10u * 1024 * 1024)
#define SOME_TIME INT64_C(1795675800123456) /* 2026-11-26T06:50:00.123456Z */

static void test_typed_values_round_trip(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_db_conn_t *c = get_conn(&f);
  exec_ok(&f, c,
          "CREATE TABLE v (i BIGINT, b BOOLEAN, s TEXT, bl BYTEA, "
          "t TIMESTAMPTZ, u UUID, d DOUBLE PRECISION, n TEXT)",
          NULL, 0);
  unsigned char *big = malloc(BIG_BLOB);
  assert_non_null(big);
  for (size_t i = 0; i < BIG_BLOB; i++)
    big[i] = (unsigned char)(i * 2654435761u >> 13);
  const char *uuid = "6f1c2a9e-3b1d-4c47-9a2e-0d5b8e7f1a23";
  atr_value_t p[] = {
      v_int(INT64_MIN),
      {.type = ATR_VAL_BOOL, .v.b = 1},
      {.type = ATR_VAL_TEXT, .v.bytes = {"h\xc3\xa9llo, w\xc3\xb6rld", 14}},
      {.type = ATR_VAL_BLOB, .v.bytes = {big, BIG_BLOB}},
      {.type = ATR_VAL_TIME, .v.time_us = SOME_TIME},
      v_text(uuid),
      {.type = ATR_VAL_DOUBLE, .v.d = -1.5e-300},
      {.type = ATR_VAL_NULL},
  };
  int64_t changes = -1;
  char *err = NULL;
  assert_int_equal(f.ops->exec(c, "INSERT INTO v VALUES (?,?,?,?,?,?,?,?)", p,
                               8, &changes, &err),
                   0);
  assert_int_equal(changes, 1);

  atr_db_rows_t *rows = NULL;
  assert_int_equal(f.ops->query(c, "SELECT i, b, s, bl, t, u, d, n FROM v",
                                NULL, 0, &rows, &err),
                   0);
  assert_int_equal(f.ops->rows_next(rows, &err), 1);
  assert_int_equal(f.ops->rows_ncols(rows), 8);
  atr_value_t v;
  assert_int_equal(f.ops->rows_get(rows, 0, ATR_VAL_INT, &v), 0);
  assert_true(v.type == ATR_VAL_INT && v.v.i == INT64_MIN);
  assert_int_equal(f.ops->rows_get(rows, 1, ATR_VAL_BOOL, &v), 0);
  assert_true(v.type == ATR_VAL_BOOL && v.v.b == 1);
  assert_int_equal(f.ops->rows_get(rows, 2, ATR_VAL_TEXT, &v), 0);
  assert_int_equal(v.v.bytes.len, 14);
  assert_string_equal(v.v.bytes.ptr, "h\xc3\xa9llo, w\xc3\xb6rld");
  assert_int_equal(f.ops->rows_get(rows, 3, ATR_VAL_BLOB, &v), 0);
  assert_int_equal(v.type, ATR_VAL_BLOB);
  assert_int_equal(v.v.bytes.len, BIG_BLOB);
  assert_memory_equal(v.v.bytes.ptr, big, BIG_BLOB);
  assert_int_equal(f.ops->rows_get(rows, 4, ATR_VAL_TIME, &v), 0);
  assert_int_equal(v.type, ATR_VAL_TIME);
  assert_int_equal(v.v.time_us, SOME_TIME);
  assert_int_equal(f.ops->rows_get(rows, 4, ATR_VAL_TEXT, &v), 0);
  assert_string_equal(v.v.bytes.ptr, "2026-11-26T06:50:00.123456Z");
  assert_int_equal(f.ops->rows_get(rows, 5, ATR_VAL_TEXT, &v), 0);
  assert_string_equal(v.v.bytes.ptr, uuid);
  assert_int_equal(f.ops->rows_get(rows, 6, ATR_VAL_DOUBLE, &v), 0);
  assert_true(v.type == ATR_VAL_DOUBLE && v.v.d == -1.5e-300);
  for (atr_value_type_t want = ATR_VAL_NULL; want <= ATR_VAL_TIME; want++) {
    assert_int_equal(f.ops->rows_get(rows, 7, want, &v), 0);
    assert_int_equal(v.type, ATR_VAL_NULL);
  }
  /* What does not convert is refused, not guessed. */
  assert_int_equal(f.ops->rows_get(rows, 2, ATR_VAL_INT, &v), ATR_EINVAL);
  assert_int_equal(f.ops->rows_get(rows, 2, ATR_VAL_TIME, &v), ATR_EINVAL);
  assert_int_equal(f.ops->rows_get(rows, 3, ATR_VAL_TEXT, &v), ATR_EINVAL);
  assert_int_equal(f.ops->rows_get(rows, 0, ATR_VAL_BOOL, &v), ATR_EINVAL);
  assert_int_equal(f.ops->rows_get(rows, 8, ATR_VAL_INT, &v), ATR_EINVAL);
  assert_int_equal(f.ops->rows_next(rows, &err), 0);
  assert_int_equal(f.ops->rows_get(rows, 0, ATR_VAL_INT, &v), ATR_EINVAL);
  f.ops->rows_close(rows);
  free(big);

  /* Empty text and blob stay empty values, not NULL. */
  atr_value_t empty[] = {{.type = ATR_VAL_TEXT, .v.bytes = {"", 0}},
                         {.type = ATR_VAL_BLOB, .v.bytes = {NULL, 0}}};
  exec_ok(&f, c, "INSERT INTO v (s, bl) VALUES (?, ?)", empty, 2);
  v = one(&f, c, "SELECT bl FROM v WHERE s = ''", NULL, 0, ATR_VAL_BLOB, NULL,
          0);
  assert_int_equal(v.type, ATR_VAL_BLOB);
  assert_int_equal(v.v.bytes.len, 0);
  f.ops->put(f.ctx, c);
  fx_stop(&f, true);
}

static void test_times_order_and_other_spellings(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_db_conn_t *c = get_conn(&f);
  exec_ok(&f, c, "CREATE TABLE e (t TIMESTAMPTZ)", NULL, 0);
  /* Stored out of order; spanning digits that sort wrongly as numbers. */
  int64_t times[] = {SOME_TIME,
                     0,
                     INT64_C(999999),
                     SOME_TIME - 1,
                     INT64_C(253402300799999999),
                     -INT64_C(1000000)};
  for (size_t i = 0; i < sizeof times / sizeof times[0]; i++) {
    atr_value_t p = {.type = ATR_VAL_TIME, .v.time_us = times[i]};
    exec_ok(&f, c, "INSERT INTO e VALUES (?)", &p, 1);
  }
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  assert_int_equal(
      f.ops->query(c, "SELECT t FROM e ORDER BY t", NULL, 0, &rows, &err), 0);
  int64_t prev = INT64_MIN;
  int n = 0;
  while (f.ops->rows_next(rows, &err) == 1) {
    atr_value_t v;
    assert_int_equal(f.ops->rows_get(rows, 0, ATR_VAL_TIME, &v), 0);
    assert_true(v.v.time_us > prev);
    prev = v.v.time_us;
    n++;
  }
  assert_int_equal(n, 6);
  f.ops->rows_close(rows);

  /* Times written by others: no fraction, +00:00, another zone. */
  const char *spellings[][2] = {
      {"2026-11-26T06:50:00Z", "1795675800000000"},
      {"2026-11-26T06:50:00.123456+00:00", "1795675800123456"},
      {"2026-11-26T07:50:00.5+01:00", "1795675800500000"},
      {"2026-11-26 06:50:00", "1795675800000000"},
  };
  for (size_t i = 0; i < 4; i++) {
    atr_value_t p = v_text(spellings[i][0]);
    atr_value_t v = one(&f, c, "SELECT ?", &p, 1, ATR_VAL_TIME, NULL, 0);
    assert_int_equal(v.type, ATR_VAL_TIME);
    assert_int_equal(v.v.time_us, strtoll(spellings[i][1], NULL, 10));
  }
  atr_value_t bad = v_text("2026-02-30T00:00:00Z");
  assert_int_equal(f.ops->query(c, "SELECT ?", &bad, 1, &rows, &err), 0);
  assert_int_equal(f.ops->rows_next(rows, &err), 1);
  atr_value_t v;
  assert_int_equal(f.ops->rows_get(rows, 0, ATR_VAL_TIME, &v), ATR_EINVAL);
  f.ops->rows_close(rows);
  f.ops->put(f.ctx, c);
  fx_stop(&f, true);
}

/* ---- errors */

static void test_errors_carry_sqlite_messages(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_db_conn_t *c = get_conn(&f);
  script_ok(
      &f, c,
      "CREATE TABLE users (id BIGINT PRIMARY KEY, email TEXT NOT NULL "
      "UNIQUE);\n"
      "CREATE TABLE keys (user_id BIGINT NOT NULL REFERENCES users(id));\n"
      "INSERT INTO users VALUES (1, 'a@example.com');");
  atr_value_t dup[] = {v_int(2), v_text("a@example.com")};
  char *err = NULL;
  assert_int_equal(
      f.ops->exec(c, "INSERT INTO users VALUES (?, ?)", dup, 2, NULL, &err),
      ATR_ECONSTRAINT);
  assert_string_equal(err, "sqlite: UNIQUE constraint failed: users.email "
                           "(SQLITE_CONSTRAINT_UNIQUE)");
  free(err);

  atr_value_t orphan = v_int(99);
  err = NULL;
  assert_int_equal(
      f.ops->exec(c, "INSERT INTO keys VALUES (?)", &orphan, 1, NULL, &err),
      ATR_ECONSTRAINT);
  assert_string_equal(err, "sqlite: FOREIGN KEY constraint failed "
                           "(SQLITE_CONSTRAINT_FOREIGNKEY)");
  free(err);

  /* A constraint failing in INSERT ... RETURNING shows in query() itself. */
  atr_db_rows_t *rows = NULL;
  err = NULL;
  assert_int_equal(f.ops->query(c,
                                "INSERT INTO users VALUES (?, ?) RETURNING id",
                                dup, 2, &rows, &err),
                   ATR_ECONSTRAINT);
  assert_null(rows);
  assert_non_null(strstr(err, "UNIQUE constraint failed"));
  free(err);

  err = NULL;
  assert_int_equal(f.ops->exec(c, "SELEC 1", NULL, 0, NULL, &err), ATR_EINVAL);
  assert_string_equal(err, "sqlite: near \"SELEC\": syntax error "
                           "(SQLITE_ERROR)");
  free(err);

  err = NULL;
  assert_int_equal(f.ops->exec(c, "SELECT ?, ?", dup, 1, NULL, &err),
                   ATR_EINVAL);
  assert_string_equal(err, "the statement has 2 parameters but 1 value was "
                           "given");
  free(err);

  err = NULL;
  assert_int_equal(f.ops->exec(c, "DELETE FROM keys; DELETE FROM users", NULL,
                               0, NULL, &err),
                   ATR_EINVAL);
  assert_non_null(strstr(err, "use exec_script"));
  free(err);
  assert_int_equal(one_int(&f, c, "SELECT count(*) FROM users"), 1);

  /* A deferred foreign key fails COMMIT; the transaction is gone after. */
  script_ok(&f, c,
            "CREATE TABLE notes (user_id BIGINT REFERENCES users(id) "
            "DEFERRABLE INITIALLY DEFERRED)");
  assert_int_equal(f.ops->begin(c, ATR_TX_WRITE, &err), 0);
  exec_ok(&f, c, "INSERT INTO notes VALUES (?)", &orphan, 1);
  err = NULL;
  assert_int_equal(f.ops->commit(c, &err), ATR_ECONSTRAINT);
  assert_non_null(strstr(err, "FOREIGN KEY constraint failed"));
  free(err);
  assert_int_equal(one_int(&f, c, "SELECT count(*) FROM notes"), 0);
  assert_int_equal(f.ops->begin(c, ATR_TX_WRITE, &err), 0);
  f.ops->rollback(c);
  f.ops->put(f.ctx, c);
  fx_stop(&f, true);
}

static void test_transactions_and_dialect(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_db_conn_t *c = get_conn(&f);
  char *err = NULL;
  exec_ok(&f, c, "CREATE TABLE q (id BIGINT PRIMARY KEY, done BOOLEAN)", NULL,
          0);
  exec_ok(&f, c, "INSERT INTO q VALUES (1, FALSE), (2, FALSE), (3, TRUE)", NULL,
          0);
  assert_int_equal(f.ops->begin(c, ATR_TX_WRITE, &err), 0);
  err = NULL;
  assert_int_equal(f.ops->begin(c, ATR_TX_READ, &err), ATR_EINVAL);
  free(err);
  int64_t changes = 0;
  assert_int_equal(f.ops->exec(c, "UPDATE q SET done = TRUE WHERE NOT done",
                               NULL, 0, &changes, &err),
                   0);
  assert_int_equal(changes, 2);
  f.ops->rollback(c);
  assert_int_equal(one_int(&f, c, "SELECT count(*) FROM q WHERE done"), 1);

  /* The SKIP LOCKED marker is accepted and means nothing here. */
  assert_int_equal(one_int(&f, c,
                           "SELECT id FROM q WHERE NOT done ORDER BY id "
                           "LIMIT 1 " ATR_DB_SQL_SKIP_LOCKED),
                   1);
  /* Statements that change nothing report 0, not the last DML's count. */
  assert_int_equal(
      f.ops->exec(c, "CREATE TABLE r (x BIGINT)", NULL, 0, &changes, &err), 0);
  assert_int_equal(changes, 0);

  /* A cursor left open when its connection goes back is closed by put():
   * its write lock does not outlive it. */
  atr_db_rows_t *rows = NULL;
  assert_int_equal(f.ops->query(c,
                                "INSERT INTO r VALUES (1), (2), (3) "
                                "RETURNING x",
                                NULL, 0, &rows, &err),
                   0);
  assert_int_equal(f.ops->rows_next(rows, &err), 1);
  f.ops->put(f.ctx, c);
  atr_db_conn_t *c2 = get_conn(&f);
  uint64_t start = now_ms();
  assert_int_equal(f.ops->begin(c2, ATR_TX_WRITE, &err), 0);
  assert_true(now_ms() - start < 100);
  assert_int_equal(one_int(&f, c2, "SELECT count(*) FROM r"), 3);
  assert_int_equal(f.ops->commit(c2, &err), 0);
  assert_int_equal(f.ops->rows_next(rows, &err), ATR_EINVAL);
  free(err);
  f.ops->rows_close(rows);
  f.ops->put(f.ctx, c2);
  fx_stop(&f, true);
}

/* ---- contention */

#define CLAIM_ROWS 10000
#define CLAIM_THREADS 4

typedef struct claimer {
  fx_t *f;
  int64_t who;
  int64_t *ids; /* CLAIM_ROWS / CLAIM_THREADS claimed ids */
  int failures;
  char *first_error;
} claimer_t;

static void *claim_main(void *arg) {
  claimer_t *cl = arg;
  const atr_storage_ops_t *ops = cl->f->ops;
  atr_db_conn_t *c = NULL;
  char *err = NULL;
  if (ops->get(cl->f->ctx, &c, &err) != 0) {
    cl->failures++;
    cl->first_error = err;
    return NULL;
  }
  atr_value_t who = v_int(cl->who);
  for (int i = 0; i < CLAIM_ROWS / CLAIM_THREADS; i++) {
    atr_db_rows_t *rows = NULL;
    atr_value_t id = {0};
    int rc = ops->begin(c, ATR_TX_WRITE, &err);
    if (rc == 0)
      rc = ops->query(c,
                      "UPDATE jobs SET claimed_by = ? WHERE id = (SELECT id "
                      "FROM jobs WHERE claimed_by IS NULL ORDER BY id LIMIT "
                      "1 " ATR_DB_SQL_SKIP_LOCKED ") RETURNING id",
                      &who, 1, &rows, &err);
    if (rc == 0 && (rc = ops->rows_next(rows, &err)) == 1)
      rc = ops->rows_get(rows, 0, ATR_VAL_INT, &id);
    else if (rc == 0)
      rc = -1000; /* no row left to claim */
    ops->rows_close(rows);
    if (rc == 0)
      rc = ops->commit(c, &err);
    if (rc != 0) {
      ops->rollback(c);
      if (cl->failures++ == 0)
        cl->first_error = err ? err : fmt("rc %d", rc);
      else
        free(err);
      err = NULL;
      continue;
    }
    cl->ids[i] = id.v.i;
  }
  ops->put(cl->f->ctx, c);
  return NULL;
}

static void test_claims_under_contention(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_db_conn_t *c = get_conn(&f);
  script_ok(&f, c,
            "CREATE TABLE jobs (id BIGINT PRIMARY KEY, claimed_by BIGINT);\n"
            "CREATE INDEX jobs_pending ON jobs (id) WHERE claimed_by IS NULL;\n"
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
            "WHERE i < 10000) INSERT INTO jobs SELECT i, NULL FROM n;");
  f.ops->put(f.ctx, c);

  claimer_t cl[CLAIM_THREADS];
  pthread_t th[CLAIM_THREADS];
  uint64_t start = now_ms();
  for (int i = 0; i < CLAIM_THREADS; i++) {
    cl[i] = (claimer_t){.f = &f, .who = i + 1};
    cl[i].ids = calloc(CLAIM_ROWS / CLAIM_THREADS, sizeof(int64_t));
    assert_int_equal(pthread_create(&th[i], NULL, claim_main, &cl[i]), 0);
  }
  for (int i = 0; i < CLAIM_THREADS; i++)
    pthread_join(th[i], NULL);
  print_message("    %d claims by %d threads in %" PRIu64 " ms\n", CLAIM_ROWS,
                CLAIM_THREADS, now_ms() - start);

  static unsigned char seen[CLAIM_ROWS + 1];
  memset(seen, 0, sizeof seen);
  for (int i = 0; i < CLAIM_THREADS; i++) {
    if (cl[i].failures != 0)
      fail_msg("thread %d: %d failures, first: %s", i, cl[i].failures,
               cl[i].first_error);
    for (int k = 0; k < CLAIM_ROWS / CLAIM_THREADS; k++) {
      int64_t id = cl[i].ids[k];
      if (id < 1 || id > CLAIM_ROWS)
        fail_msg("thread %d claimed id %" PRId64, i, id);
      else
        assert_int_equal(seen[id]++, 0); /* claimed exactly once */
    }
    free(cl[i].ids);
  }
  c = get_conn(&f);
  assert_int_equal(
      one_int(&f, c, "SELECT count(*) FROM jobs WHERE claimed_by IS NULL"), 0);
  for (int i = 0; i < CLAIM_THREADS; i++) {
    atr_value_t who = v_int(i + 1);
    atr_value_t v = one(&f, c, "SELECT count(*) FROM jobs WHERE claimed_by = ?",
                        &who, 1, ATR_VAL_INT, NULL, 0);
    assert_int_equal(v.v.i, CLAIM_ROWS / CLAIM_THREADS);
  }
  f.ops->put(f.ctx, c);
  fx_stop(&f, true);
}

typedef struct holder {
  fx_t *f;
  atr_db_conn_t *conn;
  unsigned after_ms;
} holder_t;

static void *put_later(void *arg) {
  holder_t *ho = arg;
  sleep_ms(ho->after_ms);
  ho->f->ops->put(ho->f->ctx, ho->conn);
  return NULL;
}

static void test_pool_exhaustion_is_busy_after_timeout(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, "    busy_timeout: 200ms\n    pool_size: 1\n");
  atr_db_conn_t *c = get_conn(&f), *c2 = NULL;
  char *err = NULL;
  uint64_t start = now_ms();
  assert_int_equal(f.ops->get(f.ctx, &c2, &err), ATR_EBUSY);
  uint64_t waited = now_ms() - start;
  assert_true(waited >= 190 && waited < 2000);
  assert_null(c2);
  assert_string_equal(err, "sqlite: all 1 connections of the pool are in use "
                           "and none came back within busy_timeout (200ms); "
                           "raise pool_size, or look for code that holds a "
                           "connection while it waits for another");
  free(err);

  /* A connection that comes back in time goes to the waiter. */
  holder_t ho = {.f = &f, .conn = c, .after_ms = 50};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, put_later, &ho), 0);
  assert_int_equal(f.ops->get(f.ctx, &c2, &err), 0);
  pthread_join(th, NULL);
  assert_ptr_equal(c2, c);
  f.ops->put(f.ctx, c2);
  fx_stop(&f, true);
}

typedef struct outsider {
  sqlite3 *db;
  unsigned hold_ms;
} outsider_t;

static void *commit_later(void *arg) {
  outsider_t *o = arg;
  sleep_ms(o->hold_ms);
  sqlite3_exec(o->db, "COMMIT", NULL, NULL, NULL);
  return NULL;
}

/* A writer outside the process is waited for up to busy_timeout. */
static void test_writer_in_another_process_is_waited_for(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, "    busy_timeout: 1s\n");
  atr_db_conn_t *c = get_conn(&f);
  exec_ok(&f, c, "CREATE TABLE w (x BIGINT)", NULL, 0);
  char *file = fmt("%s/atrium.db", f.dir);
  outsider_t o = {.hold_ms = 300};
  assert_int_equal(sqlite3_open(file, &o.db), SQLITE_OK);
  assert_int_equal(sqlite3_exec(o.db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                   SQLITE_OK);
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, commit_later, &o), 0);
  char *err = NULL;
  uint64_t start = now_ms();
  int rc = f.ops->begin(c, ATR_TX_WRITE, &err);
  if (rc != 0)
    fail_msg("begin: %s", err);
  assert_true(now_ms() - start >= 250);
  f.ops->rollback(c);
  pthread_join(th, NULL);

  /* Held for longer than busy_timeout: ATR_EBUSY with SQLite's words. */
  assert_int_equal(sqlite3_exec(o.db, "BEGIN IMMEDIATE", NULL, NULL, NULL),
                   SQLITE_OK);
  start = now_ms();
  assert_int_equal(f.ops->begin(c, ATR_TX_WRITE, &err), ATR_EBUSY);
  uint64_t waited = now_ms() - start;
  assert_true(waited >= 950 && waited < 5000);
  assert_non_null(strstr(err, "sqlite: database is locked (SQLITE_BUSY"));
  free(err);
  sqlite3_exec(o.db, "COMMIT", NULL, NULL, NULL);
  sqlite3_close(o.db);
  free(file);
  assert_int_equal(f.ops->begin(c, ATR_TX_WRITE, &err), 0);
  assert_int_equal(f.ops->commit(c, &err), 0);
  f.ops->put(f.ctx, c);
  fx_stop(&f, true);
}

/* ---- pub/sub */

#define NMSG 1000

typedef struct inbox {
  pthread_mutex_t lock;
  int n;
  char last[64];
  bool in_order;
  bool bad_flags; /* cmocka asserts only on the test's own thread */
  atomic_int running, finished;
  unsigned delay_ms;
} inbox_t;

static void collect(void *ud, const char *channel, const char *payload,
                    unsigned flags) {
  inbox_t *in = ud;
  (void)channel;
  atomic_fetch_add(&in->running, 1);
  if (in->delay_ms)
    sleep_ms(in->delay_ms);
  pthread_mutex_lock(&in->lock);
  if (atoi(payload) != in->n)
    in->in_order = false;
  if (flags != 0) /* nothing is ever missed in-process */
    in->bad_flags = true;
  in->n++;
  snprintf(in->last, sizeof in->last, "%s", payload);
  pthread_mutex_unlock(&in->lock);
  atomic_fetch_add(&in->finished, 1);
}

static void inbox_init(inbox_t *in) {
  memset(in, 0, sizeof *in);
  pthread_mutex_init(&in->lock, NULL);
  in->in_order = true;
}

static int inbox_count(inbox_t *in) {
  pthread_mutex_lock(&in->lock);
  int n = in->n;
  pthread_mutex_unlock(&in->lock);
  return n;
}

static void wait_for(inbox_t *in, int n) {
  uint64_t until = now_ms() + 10000;
  while (inbox_count(in) < n && now_ms() < until)
    sleep_ms(1);
  assert_int_equal(inbox_count(in), n);
}

static void publish_ok(fx_t *f, const char *channel, const char *payload) {
  char *err = NULL;
  int rc = f->ops->publish(f->ctx, channel, payload, &err);
  if (rc != 0)
    fail_msg("publish: %s", err);
}

static void test_pubsub_order_channels_and_limits(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  inbox_t jobs, logs;
  inbox_init(&jobs);
  inbox_init(&logs);
  atr_db_sub_t *s1 = NULL, *s2 = NULL;
  char *err = NULL;
  assert_int_equal(
      f.ops->subscribe(f.ctx, "job_posted", collect, &jobs, &s1, &err), 0);
  assert_int_equal(
      f.ops->subscribe(f.ctx, "job_logs_42", collect, &logs, &s2, &err), 0);
  char payload[16];
  for (int i = 0; i < NMSG; i++) {
    snprintf(payload, sizeof payload, "%d", i);
    publish_ok(&f, "job_posted", payload);
    if (i % 10 == 0) {
      snprintf(payload, sizeof payload, "%d", i / 10);
      publish_ok(&f, "job_logs_42", payload);
    }
  }
  publish_ok(&f, "nobody_listens", "x");
  wait_for(&jobs, NMSG);
  wait_for(&logs, NMSG / 10);
  assert_true(jobs.in_order);
  assert_true(logs.in_order);
  assert_false(jobs.bad_flags || logs.bad_flags);

  assert_int_equal(f.ops->publish(f.ctx, "Job-Posted", "x", &err), ATR_EINVAL);
  assert_string_equal(err, "sqlite: channel \"Job-Posted\" is not valid; use "
                           "1 to 63 characters of a-z, 0-9 and _");
  free(err);
  assert_int_equal(f.ops->publish(f.ctx, "", "x", &err), ATR_EINVAL);
  free(err);
  char longname[65];
  memset(longname, 'a', 64);
  longname[64] = '\0';
  assert_int_equal(f.ops->publish(f.ctx, longname, "x", &err), ATR_EINVAL);
  free(err);
  longname[63] = '\0';
  publish_ok(&f, longname, "x");

  char *big = malloc(8001);
  memset(big, 'p', 8000);
  big[8000] = '\0';
  assert_int_equal(f.ops->publish(f.ctx, "job_posted", big, &err), ATR_EINVAL);
  assert_non_null(strstr(err, "8000 bytes, more than the 7999 allowed"));
  free(err);
  big[7999] = '\0';
  /* 7999 bytes pass; they are not numbers, so "in order" goes false. */
  publish_ok(&f, "job_posted", big);
  wait_for(&jobs, NMSG + 1);
  pthread_mutex_lock(&jobs.lock);
  assert_int_equal(strlen(jobs.last), 63); /* truncated copy of the 7999 */
  pthread_mutex_unlock(&jobs.lock);
  free(big);

  f.ops->unsubscribe(f.ctx, s1);
  f.ops->unsubscribe(f.ctx, s2);
  fx_stop(&f, true);
}

static void test_unsubscribe_waits_for_a_running_callback(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  inbox_t slow, after;
  inbox_init(&slow);
  inbox_init(&after);
  slow.delay_ms = 200;
  atr_db_sub_t *s = NULL, *t = NULL;
  char *err = NULL;
  assert_int_equal(f.ops->subscribe(f.ctx, "slow", collect, &slow, &s, &err),
                   0);
  assert_int_equal(f.ops->subscribe(f.ctx, "after", collect, &after, &t, &err),
                   0);
  publish_ok(&f, "slow", "0");
  publish_ok(&f, "slow", "1");
  uint64_t until = now_ms() + 5000;
  while (atomic_load(&slow.running) == 0 && now_ms() < until)
    sleep_ms(1);
  assert_int_equal(atomic_load(&slow.running), 1);
  f.ops->unsubscribe(f.ctx, s);
  /* The first call had finished when unsubscribe returned ... */
  assert_int_equal(atomic_load(&slow.finished), 1);
  /* ... and the second message never reaches it: "after" is delivered
   * later than it would have been. */
  publish_ok(&f, "after", "0");
  wait_for(&after, 1);
  assert_int_equal(atomic_load(&slow.running), 1);
  assert_int_equal(inbox_count(&slow), 1);
  f.ops->unsubscribe(f.ctx, t);
  fx_stop(&f, true);
}

typedef struct self_remover {
  fx_t *f;
  atr_db_sub_t *sub;
  atomic_int calls;
} self_remover_t;

static void remove_self(void *ud, const char *channel, const char *payload,
                        unsigned flags) {
  (void)channel;
  (void)payload;
  (void)flags;
  self_remover_t *r = ud;
  atomic_fetch_add(&r->calls, 1);
  r->f->ops->unsubscribe(r->f->ctx, r->sub);
}

/* Not allowed by the contract, but it must not hang the dispatcher. */
static void test_unsubscribe_from_own_callback_does_not_hang(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  self_remover_t r = {.f = &f};
  inbox_t after;
  inbox_init(&after);
  atr_db_sub_t *t = NULL;
  char *err = NULL;
  assert_int_equal(
      f.ops->subscribe(f.ctx, "once", remove_self, &r, &r.sub, &err), 0);
  assert_int_equal(f.ops->subscribe(f.ctx, "after", collect, &after, &t, &err),
                   0);
  publish_ok(&f, "once", "a");
  publish_ok(&f, "once", "b");
  publish_ok(&f, "after", "0");
  wait_for(&after, 1);
  assert_int_equal(atomic_load(&r.calls), 1);
  f.ops->unsubscribe(f.ctx, t);
  fx_stop(&f, true);
}

/* ---- backup and restore */

static void test_backup_then_restore_brings_back_content(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_db_conn_t *c = get_conn(&f), *other = get_conn(&f);
  script_ok(&f, c,
            "CREATE TABLE t (k TEXT PRIMARY KEY, v BIGINT);"
            "INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3);");
  char *backup = fmt("%s/backup.db", f.dir);
  char *tmp = fmt("%s.tmp", backup);
  char *err = NULL;
  int rc = f.ops->backup(f.ctx, backup, &err);
  if (rc != 0)
    fail_msg("backup: %s", err);
  assert_int_equal(access(tmp, F_OK), -1);

  /* The backup is one self-contained database file. */
  sqlite3 *db = NULL;
  assert_int_equal(sqlite3_open_v2(backup, &db, SQLITE_OPEN_READONLY, NULL),
                   SQLITE_OK);
  sqlite3_stmt *st = NULL;
  assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL),
                   SQLITE_OK);
  assert_int_equal(sqlite3_step(st), SQLITE_ROW);
  assert_string_equal((const char *)sqlite3_column_text(st, 0), "delete");
  sqlite3_finalize(st);
  sqlite3_close(db);

  script_ok(&f, c,
            "DELETE FROM t WHERE k = 'a'; UPDATE t SET v = 20 WHERE k = 'b';"
            "INSERT INTO t VALUES ('d', 4); CREATE TABLE extra (x BIGINT);");
  assert_int_equal(one_int(&f, other, "SELECT sum(v) FROM t"), 27);

  rc = f.ops->restore(f.ctx, backup, &err);
  if (rc != 0)
    fail_msg("restore: %s", err);
  /* Every connection sees the earlier content, the open ones included. */
  assert_int_equal(one_int(&f, other, "SELECT sum(v) FROM t"), 6);
  assert_int_equal(one_int(&f, c, "SELECT count(*) FROM t"), 3);
  assert_int_equal(
      one_int(&f, c, "SELECT count(*) FROM sqlite_schema WHERE name='extra'"),
      0);
  char mode[16];
  one(&f, other, "PRAGMA journal_mode", NULL, 0, ATR_VAL_TEXT, mode,
      sizeof mode);
  assert_string_equal(mode, "wal");
  exec_ok(&f, other, "INSERT INTO t VALUES ('e', 5)", NULL, 0);
  f.ops->put(f.ctx, c);
  f.ops->put(f.ctx, other);

  /* A backup that cannot be written says where, and leaves nothing. */
  char *nowhere = fmt("%s/missing/dir/backup.db", f.dir);
  err = NULL;
  assert_int_not_equal(f.ops->backup(f.ctx, nowhere, &err), 0);
  char *want = fmt("backup to %s: ", nowhere);
  assert_non_null(err);
  assert_memory_equal(err, want, strlen(want));
  free(want);
  free(err);
  free(nowhere);
  free(backup);
  free(tmp);
  fx_stop(&f, true);
}

static void test_restore_refuses_what_is_not_a_database(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_db_conn_t *c = get_conn(&f);
  exec_ok(&f, c, "CREATE TABLE keep (x BIGINT)", NULL, 0);
  exec_ok(&f, c, "INSERT INTO keep VALUES (7)", NULL, 0);

  char *junk = fmt("%s/notes.txt", f.dir);
  FILE *fp = fopen(junk, "w");
  assert_non_null(fp);
  fputs("these are not the pages you are looking for\n", fp);
  fclose(fp);
  char *err = NULL;
  assert_int_equal(f.ops->restore(f.ctx, junk, &err), ATR_EINVAL);
  char *want = fmt("restore from %s: %s is not an SQLite database (it does "
                   "not begin with the SQLite header); nothing was changed",
                   junk, junk);
  assert_string_equal(err, want);
  free(want);
  free(err);

  /* An empty file would read as an empty database: refused as well. */
  char *empty = fmt("%s/empty.db", f.dir);
  fp = fopen(empty, "w");
  fclose(fp);
  assert_int_equal(f.ops->restore(f.ctx, empty, &err), ATR_EINVAL);
  assert_non_null(strstr(err, empty));
  free(err);

  char *missing = fmt("%s/nope.db", f.dir);
  assert_int_equal(f.ops->restore(f.ctx, missing, &err), ATR_ENOENT);
  assert_non_null(strstr(err, missing));
  free(err);

  assert_int_equal(one_int(&f, c, "SELECT x FROM keep"), 7);
  f.ops->put(f.ctx, c);
  free(junk);
  free(empty);
  free(missing);
  fx_stop(&f, true);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_defaults_wal_and_file_in_data_dir),
      cmocka_unit_test(test_options_synchronous_full_and_relative_path),
      cmocka_unit_test(test_memory_path_is_refused),
      cmocka_unit_test(test_typed_values_round_trip),
      cmocka_unit_test(test_times_order_and_other_spellings),
      cmocka_unit_test(test_errors_carry_sqlite_messages),
      cmocka_unit_test(test_transactions_and_dialect),
      cmocka_unit_test(test_claims_under_contention),
      cmocka_unit_test(test_pool_exhaustion_is_busy_after_timeout),
      cmocka_unit_test(test_writer_in_another_process_is_waited_for),
      cmocka_unit_test(test_pubsub_order_channels_and_limits),
      cmocka_unit_test(test_unsubscribe_waits_for_a_running_callback),
      cmocka_unit_test(test_unsubscribe_from_own_callback_does_not_hang),
      cmocka_unit_test(test_backup_then_restore_brings_back_content),
      cmocka_unit_test(test_restore_refuses_what_is_not_a_database),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
