/* tests/plugins/test_storage_postgres.c — what storage_postgres promises
 * beyond the storage contract every backend shares (tests/storage).
 *
 * The real storage_postgres.so is loaded from the build's plugin directory
 * through the core loader (open, configure from YAML, start) and its ops
 * are called directly. The database is the throwaway cluster of the ctest
 * fixture `postgres` (scripts/dev/postgres.sh, DSN in ATR_TEST_PG_DIR/dsn),
 * in a database of its own so the shared suite can run at the same time.
 * The outage tests stop and start a second, private cluster, so they never
 * pull the shared one from under another test. libpq is linked here only to
 * create and drop that database.
 *
 * Every DSN the plugin gets carries a password the server ignores (trust
 * authentication); no error message or log line may ever show it.
 *
 *   test_storage_postgres                   run the tests
 *   test_storage_postgres --publish-child   (internal) the other process of
 *                                           the cross-process pub/sub test
 *
 * One program: this file holds main, the test list and the value, error,
 * backup, pool and log tests; test_storage_postgres_concurrency.c the
 * rest, postgres_fixture.c and storage_harness.c the helpers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, pipe2 */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
#include <pthread.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atrium/storage.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "postgres_fixture.h"

/* ---- tests */

/* The descriptor says what the core relies on. */
void test_dialect_and_features(void **state) {
  (void)state;
  assert_string_equal(db.ops->dialect, "postgres");
  assert_int_equal(db.ops->features, ATR_DB_FEATURE_SKIP_LOCKED |
                                         ATR_DB_FEATURE_SHARED |
                                         ATR_DB_FEATURE_PUBSUB_REMOTE);
  char *tz = query_text(&db, "SHOW TimeZone");
  assert_string_equal(tz, "UTC");
  free(tz);
  char *app = query_text(&db, "SHOW application_name");
  assert_string_equal(app, "atrium");
  free(app);
}

/* `?` is a parameter only outside strings, identifiers and comments. */
void test_placeholders(void **state) {
  (void)state;
  atr_db_conn_t *conn = get_conn(&db);
  atr_value_t p[] = {v_text("first"), v_int(41)};
  atr_db_rows_t *rows = query_row(
      &db, conn,
      "SELECT ?::text AS \"who?\", 'why?' AS lit, E'it\\'s ?' AS esc, "
      "$$dollar ?$$ AS dq, $tag$ '? $tag$ AS tagged, "
      "'/*atrium:skip_locked*/' AS marker, "
      "?::bigint + 1 /* a ? in a /* nested */ comment */ -- and ? here\n",
      p, 2);
  const char *want[] = {"first",    "why?", "it's ?",
                        "dollar ?", " '? ", "/*atrium:skip_locked*/"};
  for (size_t i = 0; i < 6; i++) {
    atr_value_t v;
    assert_int_equal(db.ops->rows_get(rows, i, ATR_VAL_TEXT, &v), 0);
    assert_string_equal(v.v.bytes.ptr, want[i]);
  }
  atr_value_t v;
  assert_int_equal(db.ops->rows_get(rows, 6, ATR_VAL_INT, &v), 0);
  assert_int_equal(v.v.i, 42);
  char *err = NULL;
  assert_int_equal(db.ops->rows_next(rows, &err), 0);
  db.ops->rows_close(rows);

  /* Counting is exact, so a mismatch is caught before the server sees it. */
  rows = NULL;
  expect_err(
      db.ops->query(conn, "SELECT ?, '?'", p, 2, &rows, &err), ATR_EINVAL,
      "the statement has 1 ? placeholders but 2 parameters were given", &err);
  assert_null(rows);
  db.ops->put(db.ctx, conn);
}

void test_round_trips(void **state) {
  (void)state;
  script(&db, "CREATE TABLE vals (id bigint PRIMARY KEY, i bigint, "
              "d double precision, b boolean, t text, bl bytea, "
              "at timestamptz, u uuid)");
  const int64_t ints[] = {0, -1, INT64_MAX, INT64_MIN, 1795675800123456};
  const double doubles[] = {0.1, -2.5e-300, DBL_MAX, 5e-324, M_PI};
  const int64_t times[] = {1795675800123456,    /* 2026-11-26 06:50:00.123456 */
                           0,                   /* the epoch */
                           -1,                  /* 1969-12-31 23:59:59.999999 */
                           -62135596800000000,  /* 0001-01-01 */
                           253402300799999999}; /* 9999-12-31 23:59:59.999999 */
  const char *texts[] = {"", "héllo ✓ 日本", "it's \"quoted\"", "x", "a\\b"};
  static const unsigned char bytes[] = {0, 1, 2, 0xff, 0, '\\', 'x'};
  atr_db_conn_t *conn = get_conn(&db);
  char *err = NULL;
  for (int k = 0; k < 5; k++) {
    atr_value_t p[] = {v_int(k),
                       v_int(ints[k]),
                       v_double(doubles[k]),
                       v_bool(k % 2),
                       v_text(texts[k]),
                       v_blob(bytes, (size_t)k),
                       v_time(times[k]),
                       v_text("6c1a3e4f-0d7b-4f8e-9a51-2b3c4d5e6f70")};
    int64_t changes = -1;
    must(db.ops->exec(conn, "INSERT INTO vals VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      p, 8, &changes, &err),
         &err);
    assert_int_equal(changes, 1);
  }
  atr_value_t nulls[] = {v_int(99), v_null(), v_null(), v_null(),
                         v_null(),  v_null(), v_null(), v_null()};
  must(db.ops->exec(conn, "INSERT INTO vals VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    nulls, 8, NULL, &err),
       &err);

  atr_db_rows_t *rows = NULL;
  must(db.ops->query(conn,
                     "SELECT id, i, d, b, t, bl, at, u FROM vals "
                     "ORDER BY id",
                     NULL, 0, &rows, &err),
       &err);
  assert_int_equal(db.ops->rows_ncols(rows), 8);
  for (int k = 0; k < 5; k++) {
    assert_int_equal(db.ops->rows_next(rows, &err), 1);
    atr_value_t v;
    assert_int_equal(db.ops->rows_get(rows, 1, ATR_VAL_INT, &v), 0);
    assert_true(v.v.i == ints[k]);
    assert_int_equal(db.ops->rows_get(rows, 2, ATR_VAL_DOUBLE, &v), 0);
    assert_true(v.v.d == doubles[k]); /* exact: %.17g out, shortest back */
    assert_int_equal(db.ops->rows_get(rows, 3, ATR_VAL_BOOL, &v), 0);
    assert_int_equal(v.v.b, k % 2);
    assert_int_equal(db.ops->rows_get(rows, 4, ATR_VAL_TEXT, &v), 0);
    assert_int_equal(v.v.bytes.len, strlen(texts[k]));
    assert_string_equal(v.v.bytes.ptr, texts[k]);
    assert_int_equal(db.ops->rows_get(rows, 5, ATR_VAL_BLOB, &v), 0);
    assert_int_equal(v.type, ATR_VAL_BLOB);
    assert_int_equal(v.v.bytes.len, (size_t)k);
    assert_memory_equal(v.v.bytes.ptr, bytes, (size_t)k);
    assert_int_equal(db.ops->rows_get(rows, 6, ATR_VAL_TIME, &v), 0);
    if (v.v.time_us != times[k])
      fail_msg("time %d: got %" PRId64 ", want %" PRId64, k, v.v.time_us,
               times[k]);
    assert_int_equal(db.ops->rows_get(rows, 7, ATR_VAL_TEXT, &v), 0);
    assert_string_equal(v.v.bytes.ptr, "6c1a3e4f-0d7b-4f8e-9a51-2b3c4d5e6f70");
    /* A conversion that cannot work says so. */
    assert_int_equal(db.ops->rows_get(rows, 7, ATR_VAL_INT, &v), ATR_EINVAL);
  }
  assert_int_equal(db.ops->rows_next(rows, &err), 1); /* the NULL row */
  for (size_t col = 1; col < 8; col++) {
    atr_value_t v = v_int(7);
    assert_int_equal(db.ops->rows_get(rows, col, ATR_VAL_TEXT, &v), 0);
    assert_int_equal(v.type, ATR_VAL_NULL);
  }
  assert_int_equal(db.ops->rows_next(rows, &err), 0);
  db.ops->rows_close(rows);

  /* Sessions are in UTC, and times keep their microseconds both ways. */
  atr_value_t t = v_time(1795675800123456);
  rows = query_row(&db, conn,
                   "SELECT ?::timestamptz::text, "
                   "?::timestamptz = '2026-11-26 07:50:00.123456+01'",
                   (atr_value_t[]){t, t}, 2);
  atr_value_t v;
  assert_int_equal(db.ops->rows_get(rows, 0, ATR_VAL_TEXT, &v), 0);
  assert_string_equal(v.v.bytes.ptr, "2026-11-26 06:50:00.123456+00");
  assert_int_equal(db.ops->rows_get(rows, 1, ATR_VAL_BOOL, &v), 0);
  assert_int_equal(v.v.b, 1);
  db.ops->rows_close(rows);

  /* NaN and infinities survive too; a text's length is honoured. */
  atr_value_t special[] = {v_double(NAN), v_double(-INFINITY),
                           v_textn("hello world", 5)};
  rows = query_row(&db, conn,
                   "SELECT ?::double precision, ?::double precision, ?::text",
                   special, 3);
  assert_int_equal(db.ops->rows_get(rows, 0, ATR_VAL_DOUBLE, &v), 0);
  assert_true(isnan(v.v.d));
  assert_int_equal(db.ops->rows_get(rows, 1, ATR_VAL_DOUBLE, &v), 0);
  assert_true(isinf(v.v.d) && v.v.d < 0);
  assert_int_equal(db.ops->rows_get(rows, 2, ATR_VAL_TEXT, &v), 0);
  assert_string_equal(v.v.bytes.ptr, "hello");
  db.ops->rows_close(rows);
  db.ops->put(db.ctx, conn);
}

/* A 10 MiB blob goes in as binary and comes back byte for byte. */
void test_big_blob(void **state) {
  (void)state;
  const size_t n = 10u * 1024u * 1024u;
  unsigned char *blob = malloc(n);
  assert_non_null(blob);
  uint32_t x = 2463534242u;
  for (size_t i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    blob[i] = (unsigned char)(i % 4096 == 0 ? 0 : x);
  }
  script(&db, "CREATE TABLE blobs (id bigint PRIMARY KEY, b bytea)");
  atr_db_conn_t *conn = get_conn(&db);
  char *err = NULL;
  atr_value_t p[] = {v_int(1), v_blob(blob, n)};
  uint64_t t0 = now_ms();
  must(db.ops->exec(conn, "INSERT INTO blobs VALUES (?, ?)", p, 2, NULL, &err),
       &err);
  atr_db_rows_t *rows =
      query_row(&db, conn, "SELECT b, length(b) FROM blobs WHERE id = ?",
                (atr_value_t[]){v_int(1)}, 1);
  atr_value_t v;
  assert_int_equal(db.ops->rows_get(rows, 0, ATR_VAL_BLOB, &v), 0);
  assert_int_equal(v.v.bytes.len, n);
  assert_memory_equal(v.v.bytes.ptr, blob, n);
  assert_int_equal(db.ops->rows_get(rows, 1, ATR_VAL_INT, &v), 0);
  assert_int_equal(v.v.i, (int64_t)n);
  db.ops->rows_close(rows);
  db.ops->put(db.ctx, conn);
  printf("# 10 MiB blob round trip: %" PRIu64 " ms\n", now_ms() - t0);
  free(blob);
}

/* SQLSTATEs become the contract's codes, with PostgreSQL's own words. */
void test_errors(void **state) {
  (void)state;
  script(&db, "CREATE TABLE people (id bigint PRIMARY KEY, name text NOT "
              "NULL, n int CHECK (n >= 0))");
  atr_db_conn_t *conn = get_conn(&db);
  char *err = NULL;
  atr_value_t p[] = {v_int(1), v_text("ada")};
  must(db.ops->exec(conn, "INSERT INTO people (id, name) VALUES (?, ?)", p, 2,
                    NULL, &err),
       &err);
  expect_err(db.ops->exec(conn, "INSERT INTO people (id, name) VALUES (?, ?)",
                          p, 2, NULL, &err),
             ATR_ECONSTRAINT,
             "postgres: duplicate key value violates unique constraint "
             "\"people_pkey\" (SQLSTATE 23505). DETAIL: Key (id)=(1) "
             "already exists.",
             &err);
  atr_value_t q[] = {v_int(2), v_null()};
  expect_err(db.ops->exec(conn, "INSERT INTO people (id, name) VALUES (?, ?)",
                          q, 2, NULL, &err),
             ATR_ECONSTRAINT, "(SQLSTATE 23502)", &err);
  expect_err(
      db.ops->exec(conn, "UPDATE people SET n = -1", NULL, 0, NULL, &err),
      ATR_ECONSTRAINT, "(SQLSTATE 23514)", &err);
  expect_err(db.ops->exec(conn, "SELEC 1", NULL, 0, NULL, &err), ATR_EINVAL,
             "postgres: syntax error at or near \"SELEC\" (SQLSTATE 42601)",
             &err);
  expect_err(db.ops->exec(conn, "SELECT * FROM nowhere", NULL, 0, NULL, &err),
             ATR_EINVAL, "relation \"nowhere\" does not exist", &err);
  expect_err(db.ops->exec(conn, "SELECT ?::bigint",
                          (atr_value_t[]){v_text("x")}, 1, NULL, &err),
             ATR_EINVAL, "(SQLSTATE 22P02)", &err);

  /* A failed statement dooms its transaction, and COMMIT says so. */
  must(db.ops->begin(conn, ATR_TX_WRITE, &err), &err);
  expect_err(db.ops->exec(conn, "INSERT INTO people (id, name) VALUES (?, ?)",
                          p, 2, NULL, &err),
             ATR_ECONSTRAINT, "23505", &err);
  expect_err(db.ops->commit(conn, &err), ATR_EIO,
             "the transaction was rolled back", &err);
  /* The connection is usable afterwards. */
  assert_int_equal(query_int(&db, "SELECT count(*) FROM people"), 1);
  db.ops->put(db.ctx, conn);
}

/* Serialization failures ask for a retry; NOWAIT lock conflicts are busy. */
void test_retryable_errors(void **state) {
  (void)state;
  script(&db, "CREATE TABLE counters (id bigint PRIMARY KEY, v bigint); "
              "INSERT INTO counters VALUES (1, 0)");
  atr_db_conn_t *a = get_conn(&db), *b = get_conn(&db);
  char *err = NULL;
  must(db.ops->begin(a, ATR_TX_SERIALIZABLE, &err), &err);
  atr_db_rows_t *rows =
      query_row(&db, a, "SELECT v FROM counters WHERE id = 1", NULL, 0);
  db.ops->rows_close(rows);
  must(db.ops->exec(b, "UPDATE counters SET v = v + 1 WHERE id = 1", NULL, 0,
                    NULL, &err),
       &err);
  expect_err(db.ops->exec(a, "UPDATE counters SET v = v + 1 WHERE id = 1", NULL,
                          0, NULL, &err),
             ATR_EAGAIN, "(SQLSTATE 40001)", &err);
  db.ops->rollback(a);

  must(db.ops->begin(a, ATR_TX_WRITE, &err), &err);
  must(db.ops->exec(a, "SELECT v FROM counters WHERE id = 1 FOR UPDATE", NULL,
                    0, NULL, &err),
       &err);
  expect_err(db.ops->exec(b,
                          "SELECT v FROM counters WHERE id = 1 FOR UPDATE "
                          "NOWAIT",
                          NULL, 0, NULL, &err),
             ATR_EBUSY, "(SQLSTATE 55P03)", &err);
  db.ops->rollback(a);
  db.ops->put(db.ctx, a);
  db.ops->put(db.ctx, b);
}

void test_backup_restore(void **state) {
  (void)state;
  char dir[] = "/tmp/atrium-pg-backup-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *file = fmt("%s/atrium.dump", dir);
  char *tmp = fmt("%s.tmp", file);
  script(&db, "CREATE TABLE kv (k text PRIMARY KEY, v text); "
              "INSERT INTO kv VALUES ('a', 'one')");
  char *err = NULL;
  uint64_t t0 = now_ms();
  must(db.ops->backup(db.ctx, file, &err), &err);
  struct stat st;
  assert_int_equal(stat(file, &st), 0);
  assert_true(st.st_size > 0);
  assert_int_not_equal(access(tmp, F_OK), 0);

  script(&db, "UPDATE kv SET v = 'two'; INSERT INTO kv VALUES ('b', 'new'); "
              "DROP TABLE vals");
  must(db.ops->restore(db.ctx, file, &err), &err);
  printf("# backup + restore: %" PRIu64 " ms\n", now_ms() - t0);
  char *all = query_text(&db, "SELECT string_agg(k || '=' || v, ',' ORDER "
                              "BY k) FROM kv");
  assert_string_equal(all, "a=one");
  free(all);
  assert_int_equal(query_int(&db, "SELECT count(*) FROM vals"), 6);

  /* Failures carry the tool's own words. */
  expect_err(db.ops->backup(db.ctx, "/nonexistent-dir/x.dump", &err), ATR_EIO,
             "pg_dump failed (exit status 1): ", &err);
  FILE *f = fopen(tmp, "w");
  assert_non_null(f);
  fputs("not a dump\n", f);
  fclose(f);
  expect_err(db.ops->restore(db.ctx, tmp, &err), ATR_EIO,
             "pg_restore failed (exit status 1): ", &err);
  unlink(tmp);
  expect_err(db.ops->restore(db.ctx, "/nonexistent-dir/x.dump", &err),
             ATR_EINVAL, "cannot read the backup /nonexistent-dir/x.dump",
             &err);
  unlink(file);
  rmdir(dir);
  free(file);
  free(tmp);
}

/* A full pool makes callers wait acquire_timeout, then fail as busy; a
 * connection put back inside a transaction comes back without it. */
void test_pool(void **state) {
  (void)state;
  instance_t in;
  char *err = NULL;
  must(instance_start(&in, test_dsn,
                      "    pool_size: 1\n    acquire_timeout: 200ms\n", &err),
       &err);
  atr_db_conn_t *conn = get_conn(&in), *other = NULL;
  uint64_t t0 = now_ms();
  expect_err(in.ops->get(in.ctx, &other, &err), ATR_EBUSY,
             "postgres: no free database connection within 200 ms (all 1 in "
             "use); raise pool_size or acquire_timeout",
             &err);
  assert_true(now_ms() - t0 >= 190);
  assert_null(other);

  must(in.ops->exec_script(conn, "CREATE TABLE pooled (n int)", &err), &err);
  must(in.ops->begin(conn, ATR_TX_WRITE, &err), &err);
  must(in.ops->exec(conn, "INSERT INTO pooled VALUES (1)", NULL, 0, NULL, &err),
       &err);
  in.ops->put(in.ctx, conn);
  assert_int_equal(query_int(&in, "SELECT count(*) FROM pooled"), 0);
  instance_stop(&in);
}

/* A DSN that is wrong or unreachable is reported without showing it. */
void test_bad_dsn(void **state) {
  (void)state;
  instance_t in;
  char *err = NULL;
  int rc = instance_start(&in, "host=localhost password=" SECRET " oops", NULL,
                          &err);
  assert_int_not_equal(rc, 0);
  no_secret(err);
  assert_non_null(strstr(err, "the dsn option is not a valid libpq "
                              "connection string"));
  assert_null(strstr(err, "oops"));
  free(err);
  err = NULL;
  instance_stop(&in);

  /* Unreachable at start is not fatal: requests fail until it is there. */
  must(instance_start(&in,
                      "host=127.0.0.1 port=1 dbname=nowhere user=atrium "
                      "password=" SECRET,
                      NULL, &err),
       &err);
  atr_db_conn_t *conn = NULL;
  expect_err(
      in.ops->get(in.ctx, &conn, &err), ATR_EUNAVAIL,
      "postgres: cannot reach the database at 127.0.0.1:1/nowhere: ", &err);
  instance_stop(&in);
}

/* Nothing logged in this whole run shows a password or a DSN. */
void test_log_has_no_dsn(void **state) {
  (void)state;
  fflush(log_file);
  long size = ftell(log_file);
  assert_true(size > 0);
  char *text = calloc(1, (size_t)size + 1);
  assert_non_null(text);
  rewind(log_file);
  assert_int_equal(fread(text, 1, (size_t)size, log_file), (size_t)size);
  fseek(log_file, 0, SEEK_END);
  no_secret(text);
  assert_null(strstr(text, "password="));
  assert_null(strstr(text, "dbname="));
  /* It does name the database, the safe way. */
  assert_non_null(strstr(text, "[storage_postgres] connected to "));
  assert_non_null(strstr(text, "/" TEST_DB " (PostgreSQL "));
  assert_non_null(strstr(text, "pub/sub: lost the LISTEN connection"));
  free(text);
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--publish-child") == 0)
    return publish_child();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_dialect_and_features),
      cmocka_unit_test(test_placeholders),
      cmocka_unit_test(test_round_trips),
      cmocka_unit_test(test_big_blob),
      cmocka_unit_test(test_errors),
      cmocka_unit_test(test_retryable_errors),
      cmocka_unit_test(test_skip_locked_queue),
      cmocka_unit_test(test_pubsub_local),
      cmocka_unit_test(test_pubsub_cross_process),
      cmocka_unit_test(test_outage_and_restart),
      cmocka_unit_test(test_backup_restore),
      cmocka_unit_test(test_pool),
      cmocka_unit_test(test_bad_dsn),
      cmocka_unit_test(test_log_has_no_dsn),
  };
  return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
