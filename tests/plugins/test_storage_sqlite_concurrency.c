/* tests/plugins/test_storage_sqlite_concurrency.c — storage_sqlite
 * under concurrency: claims from several threads, an exhausted pool, a
 * writer in another process, and pub/sub delivery and unsubscribe while
 * callbacks run. Run by test_storage_sqlite.c's main. */
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

void test_claims_under_contention(void **state) {
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

void test_pool_exhaustion_is_busy_after_timeout(void **state) {
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
void test_writer_in_another_process_is_waited_for(void **state) {
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

void test_pubsub_order_channels_and_limits(void **state) {
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

void test_unsubscribe_waits_for_a_running_callback(void **state) {
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
void test_unsubscribe_from_own_callback_does_not_hang(void **state) {
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
