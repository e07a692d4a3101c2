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

/* ATR_TEST_PLUGIN_DIR, ATR_TEST_PG_DIR, ATR_TEST_PG_PRIVATE_DIR and
 * ATR_TEST_PG_SCRIPT come from tests/plugins/postgres.cmake. */

#define SECRET "Pw-never-shown-5c1d"
#define TEST_DB "atrium_plugin_test"
#define NJOBS 10000
#define NCLAIMERS 16

extern char **environ;

/* ---- harness */

typedef struct instance {
  atr_loader_t loader;
  atr_conf_node_t *conf;
  atr_handle_t *h;
  const atr_storage_ops_t *ops;
  void *ctx;
} instance_t;

static instance_t db;     /* the plugin on TEST_DB, for most tests */
static char *fixture_dsn; /* the cluster's own DSN, database atrium */
static char *test_dsn;    /* TEST_DB, with the password */
static FILE *log_file;    /* everything the core and plugins logged */

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
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

ATR_PRINTF(1, 2)
static char *fmt(const char *f, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, f);
  if (vasprintf(&s, f, ap) < 0)
    s = NULL;
  va_end(ap);
  assert_non_null(s);
  return s;
}

/* A file's text without trailing whitespace. */
static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL) {
    fail_msg("cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  char buf[4096];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  return strdup(buf);
}

/* No message may show the password (or, by extension, the DSN). */
static void no_secret(const char *s) {
  if (s != NULL && strstr(s, SECRET) != NULL)
    fail_msg("the DSN's password leaked into: %s", s);
}

/* Fails with the plugin's message unless rc is 0; frees *err. */
static void must(int rc, char **err) {
  no_secret(*err);
  if (rc != 0)
    fail_msg("%s (%s)", *err ? *err : "no message", atr_err_name(rc));
  free(*err);
  *err = NULL;
}

/* Expects rc and a message containing `part`; frees *err. */
static void expect_err(int rc, int want, const char *part, char **err) {
  no_secret(*err);
  if (rc != want)
    fail_msg("got %s (%s), want %s", atr_err_name(rc),
             *err ? *err : "no message", atr_err_name(want));
  assert_non_null(*err);
  if (strstr(*err, part) == NULL)
    fail_msg("message \"%s\" lacks \"%s\"", *err, part);
  free(*err);
  *err = NULL;
}

static int instance_start(instance_t *in, const char *dsn, const char *extra,
                          char **err) {
  memset(in, 0, sizeof *in);
  const char *dirs[] = {ATR_TEST_PLUGIN_DIR};
  int rc = atr_loader_init(&in->loader, dirs, 1, err);
  if (rc != 0)
    return rc;
  char *yaml = fmt("plugins:\n  storage_postgres:\n    enabled: true\n"
                   "    dsn: \"%s\"\n%s",
                   dsn, extra ? extra : "");
  rc = atr_conf_parse("test.yaml", yaml, strlen(yaml), &in->conf, err);
  free(yaml);
  if (rc == 0)
    rc = atr_loader_open(&in->loader, "storage_postgres", NULL, &in->h, err);
  if (rc == 0)
    rc = atr_loader_configure(in->h, in->conf, NULL, no_env, err);
  if (rc == 0)
    rc = atr_loader_start(in->h, err);
  if (rc == 0) {
    in->ops = in->h->desc->ops;
    in->ctx = in->h->ctx;
  }
  return rc;
}

static void instance_stop(instance_t *in) {
  atr_loader_shutdown(&in->loader);
  atr_conf_free(in->conf);
  memset(in, 0, sizeof *in);
}

/* Run statements over plain libpq on the cluster's own database. */
static void admin(const char *sql) {
  PGconn *pg = PQconnectdb(fixture_dsn);
  if (PQstatus(pg) != CONNECTION_OK)
    fail_msg("cannot reach the fixture cluster: %s", PQerrorMessage(pg));
  PGresult *res = PQexec(pg, sql);
  if (PQresultStatus(res) != PGRES_COMMAND_OK)
    fail_msg("%s: %s", sql, PQerrorMessage(pg));
  PQclear(res);
  PQfinish(pg);
}

/* scripts/dev/postgres.sh ACTION DIR; its exit status. */
static int pg_script(const char *action, const char *dir) {
  char *argv[] = {"bash", ATR_TEST_PG_SCRIPT, (char *)action, (char *)dir,
                  NULL};
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/bash", NULL, NULL, argv, environ);
  if (rc != 0)
    fail_msg("cannot run %s: %s", ATR_TEST_PG_SCRIPT, strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static atr_value_t v_null(void) {
  return (atr_value_t){.type = ATR_VAL_NULL};
}
static atr_value_t v_int(int64_t i) {
  return (atr_value_t){.type = ATR_VAL_INT, .v.i = i};
}
static atr_value_t v_double(double d) {
  return (atr_value_t){.type = ATR_VAL_DOUBLE, .v.d = d};
}
static atr_value_t v_bool(int b) {
  return (atr_value_t){.type = ATR_VAL_BOOL, .v.b = b};
}
static atr_value_t v_textn(const char *s, size_t n) {
  return (atr_value_t){.type = ATR_VAL_TEXT, .v.bytes = {s, n}};
}
static atr_value_t v_text(const char *s) {
  return v_textn(s, strlen(s));
}
static atr_value_t v_blob(const void *p, size_t n) {
  return (atr_value_t){.type = ATR_VAL_BLOB, .v.bytes = {p, n}};
}
static atr_value_t v_time(int64_t us) {
  return (atr_value_t){.type = ATR_VAL_TIME, .v.time_us = us};
}

static atr_db_conn_t *get_conn(instance_t *in) {
  atr_db_conn_t *conn = NULL;
  char *err = NULL;
  must(in->ops->get(in->ctx, &conn, &err), &err);
  return conn;
}

static void script(instance_t *in, const char *sql) {
  atr_db_conn_t *conn = get_conn(in);
  char *err = NULL;
  must(in->ops->exec_script(conn, sql, &err), &err);
  in->ops->put(in->ctx, conn);
}

/* One row's worth of a query, the rows left open for rows_get. */
static atr_db_rows_t *query_row(instance_t *in, atr_db_conn_t *conn,
                                const char *sql, const atr_value_t *params,
                                size_t n) {
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  must(in->ops->query(conn, sql, params, n, &rows, &err), &err);
  assert_int_equal(in->ops->rows_next(rows, &err), 1);
  return rows;
}

static int64_t query_int(instance_t *in, const char *sql) {
  atr_db_conn_t *conn = get_conn(in);
  atr_db_rows_t *rows = query_row(in, conn, sql, NULL, 0);
  atr_value_t v;
  assert_int_equal(in->ops->rows_get(rows, 0, ATR_VAL_INT, &v), 0);
  assert_int_equal(v.type, ATR_VAL_INT);
  in->ops->rows_close(rows);
  in->ops->put(in->ctx, conn);
  return v.v.i;
}

static char *query_text(instance_t *in, const char *sql) {
  atr_db_conn_t *conn = get_conn(in);
  atr_db_rows_t *rows = query_row(in, conn, sql, NULL, 0);
  atr_value_t v;
  assert_int_equal(in->ops->rows_get(rows, 0, ATR_VAL_TEXT, &v), 0);
  char *s = v.type == ATR_VAL_TEXT ? strdup(v.v.bytes.ptr) : NULL;
  in->ops->rows_close(rows);
  in->ops->put(in->ctx, conn);
  return s;
}

/* ---- pub/sub inbox */

#define INBOX_MAX 64

typedef struct inbox {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  size_t n;
  char *payload[INBOX_MAX]; /* NULL for a MISSED notice */
  char *channel[INBOX_MAX];
  unsigned flags[INBOX_MAX];
} inbox_t;

static void inbox_init(inbox_t *b) {
  memset(b, 0, sizeof *b);
  pthread_mutex_init(&b->lock, NULL);
  pthread_cond_init(&b->cond, NULL);
}

static void inbox_free(inbox_t *b) {
  for (size_t i = 0; i < b->n; i++) {
    free(b->payload[i]);
    free(b->channel[i]);
  }
  pthread_mutex_destroy(&b->lock);
  pthread_cond_destroy(&b->cond);
}

static void on_message(void *user_data, const char *channel,
                       const char *payload, unsigned flags) {
  inbox_t *b = user_data;
  pthread_mutex_lock(&b->lock);
  if (b->n < INBOX_MAX) {
    b->payload[b->n] = payload ? strdup(payload) : NULL;
    b->channel[b->n] = strdup(channel);
    b->flags[b->n] = flags;
    b->n++;
  }
  pthread_cond_broadcast(&b->cond);
  pthread_mutex_unlock(&b->lock);
}

/* Wait until the inbox holds n entries; how many it holds then. */
static size_t inbox_wait(inbox_t *b, size_t n, unsigned timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += timeout_ms / 1000;
  deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
  if (deadline.tv_nsec >= 1000000000L) {
    deadline.tv_sec++;
    deadline.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&b->lock);
  while (b->n < n && pthread_cond_timedwait(&b->cond, &b->lock, &deadline) == 0)
    ;
  size_t got = b->n;
  pthread_mutex_unlock(&b->lock);
  return got;
}

/* ---- group set-up: a database of our own, the plugin on it */

static int group_setup(void **state) {
  (void)state;
  char *path = fmt("%s/dsn", ATR_TEST_PG_DIR);
  fixture_dsn = read_text(path);
  free(path);
  admin("DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
  admin("CREATE DATABASE " TEST_DB);
  test_dsn = fmt("%s dbname=" TEST_DB " password=" SECRET, fixture_dsn);

  log_file = tmpfile();
  assert_non_null(log_file);
  atr_log_set_stream(log_file);
  char *err = NULL;
  must(instance_start(&db, test_dsn,
                      "    pool_size: 20\n    acquire_timeout: 10s\n", &err),
       &err);
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  instance_stop(&db);
  atr_log_set_stream(NULL);
  if (log_file != NULL)
    fclose(log_file);
  admin("DROP DATABASE IF EXISTS " TEST_DB " WITH (FORCE)");
  free(test_dsn);
  free(fixture_dsn);
  return 0;
}

/* ---- tests */

/* The descriptor says what the core relies on. */
static void test_dialect_and_features(void **state) {
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
static void test_placeholders(void **state) {
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

static void test_round_trips(void **state) {
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
static void test_big_blob(void **state) {
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
static void test_errors(void **state) {
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
static void test_retryable_errors(void **state) {
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

typedef struct claimer {
  int id;
  atomic_int *claims; /* per job id: how often it was claimed */
  int count;
  int rc;
  char *err;
} claimer_t;

static void *claim_main(void *arg) {
  claimer_t *cl = arg;
  atr_db_conn_t *conn = NULL;
  cl->rc = db.ops->get(db.ctx, &conn, &cl->err);
  if (cl->rc != 0)
    return NULL;
  char who[32];
  snprintf(who, sizeof who, "worker-%d", cl->id);
  atr_value_t p = v_text(who);
  for (;;) {
    atr_db_rows_t *rows = NULL;
    cl->rc = db.ops->query(conn,
                           "UPDATE jobs SET claimed_by=? WHERE id = (SELECT "
                           "id FROM jobs WHERE claimed_by IS NULL ORDER BY id "
                           "LIMIT 1 " ATR_DB_SQL_SKIP_LOCKED ") RETURNING id",
                           &p, 1, &rows, &cl->err);
    if (cl->rc != 0)
      break;
    int more = db.ops->rows_next(rows, &cl->err);
    if (more == 1) {
      atr_value_t v;
      cl->rc = db.ops->rows_get(rows, 0, ATR_VAL_INT, &v);
      if (cl->rc == 0 && v.v.i >= 1 && v.v.i <= NJOBS) {
        atomic_fetch_add(&cl->claims[v.v.i], 1);
        cl->count++;
      } else if (cl->rc == 0) {
        cl->rc = ATR_ERANGE;
      }
    }
    db.ops->rows_close(rows);
    if (more != 1 || cl->rc != 0)
      break;
  }
  db.ops->put(db.ctx, conn);
  return NULL;
}

/* 16 workers drain a queue of 10,000 jobs: each claimed exactly once. */
static void test_skip_locked_queue(void **state) {
  (void)state;
  /* The partial index is what a real queue has: without it every claim
   * walks past all the rows claimed before it. */
  script(&db, "CREATE TABLE jobs (id bigserial PRIMARY KEY, claimed_by "
              "text); CREATE INDEX jobs_pending ON jobs (id) WHERE "
              "claimed_by IS NULL; INSERT INTO jobs (claimed_by) SELECT NULL "
              "FROM generate_series(1, 10000)");
  atomic_int *claims = calloc(NJOBS + 1, sizeof *claims);
  assert_non_null(claims);
  claimer_t cl[NCLAIMERS];
  pthread_t th[NCLAIMERS];
  uint64_t t0 = now_ms();
  for (int i = 0; i < NCLAIMERS; i++) {
    cl[i] = (claimer_t){.id = i, .claims = claims};
    assert_int_equal(pthread_create(&th[i], NULL, claim_main, &cl[i]), 0);
  }
  int total = 0, busy = 0;
  for (int i = 0; i < NCLAIMERS; i++) {
    pthread_join(th[i], NULL);
    if (cl[i].rc != 0)
      fail_msg("worker %d: %s (%s)", i, cl[i].err ? cl[i].err : "",
               atr_err_name(cl[i].rc));
    total += cl[i].count;
    busy += cl[i].count > 0;
  }
  printf("# %d claims by %d workers (%d got work): %" PRIu64 " ms\n", total,
         NCLAIMERS, busy, now_ms() - t0);
  for (int id = 1; id <= NJOBS; id++)
    if (atomic_load(&claims[id]) != 1)
      fail_msg("job %d was claimed %d times", id, atomic_load(&claims[id]));
  assert_int_equal(total, NJOBS);
  assert_true(busy > 1); /* they really ran side by side */
  assert_int_equal(
      query_int(&db, "SELECT count(*) FROM jobs WHERE claimed_by IS NULL"), 0);
  free(claims);
}

/* Local delivery by channel; after unsubscribe nothing arrives. */
static void test_pubsub_local(void **state) {
  (void)state;
  inbox_t a1, a2, b1;
  inbox_init(&a1);
  inbox_init(&a2);
  inbox_init(&b1);
  atr_db_sub_t *s1 = NULL, *s2 = NULL, *s3 = NULL;
  char *err = NULL;
  must(db.ops->subscribe(db.ctx, "chan_a", on_message, &a1, &s1, &err), &err);
  must(db.ops->subscribe(db.ctx, "chan_a", on_message, &a2, &s2, &err), &err);
  must(db.ops->subscribe(db.ctx, "chan_b", on_message, &b1, &s3, &err), &err);
  must(db.ops->publish(db.ctx, "chan_a", "one", &err), &err);
  assert_int_equal(inbox_wait(&a1, 1, 5000), 1);
  assert_int_equal(inbox_wait(&a2, 1, 5000), 1);
  assert_string_equal(a1.payload[0], "one");
  assert_string_equal(a1.channel[0], "chan_a");
  assert_int_equal(a1.flags[0], 0);

  db.ops->unsubscribe(db.ctx, s1);
  must(db.ops->publish(db.ctx, "chan_a", "two", &err), &err);
  must(db.ops->publish(db.ctx, "chan_b", "three", &err), &err);
  assert_int_equal(inbox_wait(&a2, 2, 5000), 2);
  assert_string_equal(a2.payload[1], "two");
  assert_int_equal(inbox_wait(&b1, 1, 5000), 1);
  assert_string_equal(b1.payload[0], "three");
  db.ops->unsubscribe(db.ctx, s2);
  db.ops->unsubscribe(db.ctx, s3);
  must(db.ops->publish(db.ctx, "chan_a", "four", &err), &err);
  sleep_ms(300);
  assert_int_equal(a1.n, 1);
  assert_int_equal(a2.n, 2);

  /* What the contract allows, and no more. */
  atr_db_sub_t *bad = NULL;
  expect_err(db.ops->subscribe(db.ctx, "Bad-Name", on_message, &a1, &bad, &err),
             ATR_EINVAL, "a channel is 1 to 63 of a-z, 0-9 and _", &err);
  char *big = malloc(8001);
  assert_non_null(big);
  memset(big, 'x', 8000);
  big[8000] = '\0';
  expect_err(db.ops->publish(db.ctx, "chan_a", big, &err), ATR_EINVAL,
             "a payload is at most 7999 bytes", &err);
  big[7999] = '\0';
  must(db.ops->publish(db.ctx, "chan_a", big, &err), &err);
  free(big);
  inbox_free(&a1);
  inbox_free(&a2);
  inbox_free(&b1);
}

/* The other process of test_pubsub_cross_process: loads the plugin on the
 * DSN in its environment and publishes three messages. */
static int publish_child(void) {
  const char *dsn = getenv("ATR_PG_CHILD_DSN");
  const char *channel = getenv("ATR_PG_CHILD_CHANNEL");
  if (dsn == NULL || channel == NULL)
    return 2;
  instance_t in;
  char *err = NULL;
  int rc = instance_start(&in, dsn, NULL, &err);
  for (int i = 0; rc == 0 && i < 3; i++) {
    char payload[64];
    snprintf(payload, sizeof payload, "from %d #%d", (int)getpid(), i);
    rc = in.ops->publish(in.ctx, channel, payload, &err);
  }
  if (rc != 0)
    fprintf(stderr, "publish child: %s\n", err ? err : atr_err_name(rc));
  free(err);
  instance_stop(&in);
  return rc == 0 ? 0 : 1;
}

/* NOTIFY reaches every process on the database: a child process with its
 * own copy of the plugin publishes, this one receives. */
static void test_pubsub_cross_process(void **state) {
  (void)state;
  inbox_t box;
  inbox_init(&box);
  char channel[64];
  snprintf(channel, sizeof channel, "xproc_%d", (int)getpid());
  atr_db_sub_t *sub = NULL;
  char *err = NULL;
  must(db.ops->subscribe(db.ctx, channel, on_message, &box, &sub, &err), &err);

  /* The DSN travels in the environment, not on a command line. */
  size_t n = 0;
  while (environ[n] != NULL)
    n++;
  char **envp = calloc(n + 3, sizeof *envp);
  assert_non_null(envp);
  memcpy(envp, environ, n * sizeof *envp);
  char *e1 = fmt("ATR_PG_CHILD_DSN=%s", test_dsn);
  char *e2 = fmt("ATR_PG_CHILD_CHANNEL=%s", channel);
  envp[n] = e1;
  envp[n + 1] = e2;
  char *argv[] = {"test_storage_postgres", "--publish-child", NULL};
  pid_t pid;
  assert_int_equal(posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, envp),
                   0);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  free(e1);
  free(e2);
  free(envp);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);

  assert_int_equal(inbox_wait(&box, 3, 10000), 3);
  for (int i = 0; i < 3; i++) {
    char *want = fmt("from %d #%d", (int)pid, i);
    assert_string_equal(box.payload[i], want);
    free(want);
  }
  assert_int_not_equal(pid, getpid());
  db.ops->unsubscribe(db.ctx, sub);
  inbox_free(&box);
}

/* The last MISSED notice's index in the inbox at or after `from`, or -1. */
static int find_missed(inbox_t *b, size_t from) {
  pthread_mutex_lock(&b->lock);
  int at = -1;
  for (size_t i = from; i < b->n && at < 0; i++)
    if ((b->flags[i] & ATR_DB_SUB_MISSED) && b->payload[i] == NULL)
      at = (int)i;
  pthread_mutex_unlock(&b->lock);
  return at;
}

static int wait_missed(inbox_t *b, size_t from, unsigned timeout_ms) {
  uint64_t end = now_ms() + timeout_ms;
  int at;
  while ((at = find_missed(b, from)) < 0 && now_ms() < end)
    sleep_ms(20);
  return at;
}

/* Publish and wait for exactly that payload to arrive. */
static void round_trip(instance_t *in, inbox_t *box, const char *payload) {
  char *err = NULL;
  size_t before = box->n;
  must(in->ops->publish(in->ctx, "restart_chan", payload, &err), &err);
  assert_true(inbox_wait(box, before + 1, 10000) > before);
  assert_non_null(box->payload[before]);
  assert_string_equal(box->payload[before], payload);
}

/* The database goes away and comes back: calls during the outage fail as
 * unavailable, later ones work without any help, and subscribers hear
 * that they may have missed messages before new ones arrive. */
static void test_outage_and_restart(void **state) {
  (void)state;
  const char *dir = ATR_TEST_PG_PRIVATE_DIR;
  assert_int_equal(pg_script("start", dir), 0);
  char *path = fmt("%s/dsn", dir);
  char *base = read_text(path);
  free(path);
  char *dsn = fmt("%s password=%s", base, SECRET);
  free(base);
  instance_t in;
  char *err = NULL;
  must(instance_start(&in, dsn, NULL, &err), &err);
  inbox_t box;
  inbox_init(&box);
  atr_db_sub_t *sub = NULL;
  must(in.ops->subscribe(in.ctx, "restart_chan", on_message, &box, &sub, &err),
       &err);
  round_trip(&in, &box, "before");

  /* Down: a statement on a connection held across the outage, a new
   * connection and a publish all fail as unavailable. */
  atr_db_conn_t *held = get_conn(&in);
  assert_int_equal(pg_script("stop", dir), 0);
  uint64_t down_at = now_ms();
  expect_err(in.ops->exec(held, "SELECT 1", NULL, 0, NULL, &err), ATR_EUNAVAIL,
             "postgres: lost the connection to the database at ", &err);
  in.ops->put(in.ctx, held);
  atr_db_conn_t *conn = NULL;
  expect_err(in.ops->get(in.ctx, &conn, &err), ATR_EUNAVAIL,
             "postgres: cannot reach the database at ", &err);
  assert_null(conn);
  expect_err(in.ops->publish(in.ctx, "restart_chan", "lost", &err),
             ATR_EUNAVAIL, "cannot reach the database", &err);

  /* Up again: the first call works. */
  size_t mark = box.n;
  assert_int_equal(pg_script("start", dir), 0);
  uint64_t up_at = now_ms();
  assert_int_equal(query_int(&in, "SELECT 7"), 7);
  int missed = wait_missed(&box, mark, 15000);
  if (missed < 0)
    fail_msg("no MISSED notice after the outage");
  assert_string_equal(box.channel[missed], "restart_chan");
  printf("# outage %" PRIu64 " ms; MISSED %" PRIu64 " ms after the start\n",
         up_at - down_at, now_ms() - up_at);
  round_trip(&in, &box, "after");

  /* postgres.sh restart while subscribed: the same again. */
  mark = box.n;
  assert_int_equal(pg_script("restart", dir), 0);
  assert_int_equal(query_int(&in, "SELECT 8"), 8);
  if (wait_missed(&box, mark, 15000) < 0)
    fail_msg("no MISSED notice after the restart");
  round_trip(&in, &box, "again");

  in.ops->unsubscribe(in.ctx, sub);
  instance_stop(&in);
  inbox_free(&box);
  free(dsn);
  assert_int_equal(pg_script("stop", dir), 0);
}

/* backup → change → restore brings the earlier content back. */
static void test_backup_restore(void **state) {
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
static void test_pool(void **state) {
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
static void test_bad_dsn(void **state) {
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
static void test_log_has_no_dsn(void **state) {
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
