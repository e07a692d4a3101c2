/* tests/plugins/test_storage_postgres_concurrency.c — storage_postgres
 * under concurrency and outage: a SKIP LOCKED queue, pub/sub in one
 * process and across two, and a cluster stopped and started under the
 * plugin. Run by test_storage_postgres.c's main. */
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
void test_skip_locked_queue(void **state) {
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
void test_pubsub_local(void **state) {
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
int publish_child(void) {
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
void test_pubsub_cross_process(void **state) {
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
void test_outage_and_restart(void **state) {
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
