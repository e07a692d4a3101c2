/* tests/plugins/test_storage_sqlite.c — what storage_sqlite promises beyond
 * the storage contract every backend shares.
 *
 * Each test loads the real storage_sqlite.so from the build's plugin
 * directory through the core loader (open, configure from YAML, start) with
 * a fresh data directory, calls the ops table directly, and shuts the
 * loader down. SQLite itself (linked here too) is used only to look at the
 * files the plugin wrote and to play a writer in another process.
 *
 * One program: this file holds main, the test list and the option, value,
 * error and backup tests; test_storage_sqlite_concurrency.c the rest,
 * sqlite_fixture.c and storage_harness.c the helpers.
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
#include "sqlite_fixture.h"

/* ---- connection set-up and options */

void test_defaults_wal_and_file_in_data_dir(void **state) {
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

void test_options_synchronous_full_and_relative_path(void **state) {
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

void test_memory_path_is_refused(void **state) {
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

void test_typed_values_round_trip(void **state) {
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

void test_times_order_and_other_spellings(void **state) {
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

void test_errors_carry_sqlite_messages(void **state) {
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

void test_transactions_and_dialect(void **state) {
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

/* ---- backup and restore */

void test_backup_then_restore_brings_back_content(void **state) {
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

void test_restore_refuses_what_is_not_a_database(void **state) {
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
