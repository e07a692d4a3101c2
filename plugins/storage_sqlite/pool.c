/* storage_sqlite: the connection pool and the writer gate.
 *
 * Pool: up to pool_size connections, opened on first need and kept open
 * until fini(). get() hands out an idle one, opens a new one while there
 * are fewer than pool_size, and otherwise waits for one to come back, up to
 * busy_timeout, then fails with ATR_EBUSY. put() rolls back a transaction
 * the caller left open and makes the connection idle again.
 *
 * Writer gate: SQLite admits one writer at a time. Left to itself, a writer
 * that finds the database locked sleeps and polls (busy_timeout), so under
 * steady contention the same thread tends to win again and again while
 * others time out. The gate queues this process's writers instead and hands
 * the database to them one after the other, in arrival order, as soon as
 * the previous one commits. A waiter gives up at its deadline (ATR_EBUSY).
 *
 * Threads: any. pool_lock owns idle/nidle/nopen; gate_lock owns the gate.
 * Neither is held while SQLite runs.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ss_gate_waiter {
  ss_gate_waiter_t *next;
  bool granted;
};

uint64_t ss_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t ss_deadline_ns(const ss_ctx_t *c) {
  return ss_now_ns() + (uint64_t)c->busy_timeout_ms * 1000000u;
}

void ss_sleep_ns(uint64_t ns) {
  struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
                        .tv_nsec = (long)(ns % 1000000000u)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static struct timespec monotonic_ts(uint64_t ns) {
  return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
                           .tv_nsec = (long)(ns % 1000000000u)};
}

/* ---- the writer gate */

int ss_gate_acquire(ss_ctx_t *c, uint64_t deadline_ns, char **err) {
  pthread_mutex_lock(&c->gate_lock);
  if (!c->gate_held && c->gate_head == NULL) {
    c->gate_held = true;
    pthread_mutex_unlock(&c->gate_lock);
    return 0;
  }
  /* The waiter lives on this stack only while it is queued: it leaves the
   * queue before this function returns, granted or timed out. */
  ss_gate_waiter_t me = {0};
  if (c->gate_tail != NULL)
    c->gate_tail->next = &me;
  else
    c->gate_head = &me; // cppcheck-suppress autoVariables
  c->gate_tail = &me;   // cppcheck-suppress autoVariables
  struct timespec until = monotonic_ts(deadline_ns);
  while (!me.granted) {
    if (pthread_cond_timedwait(&c->gate_cond, &c->gate_lock, &until) !=
            ETIMEDOUT ||
        me.granted)
      continue;
    ss_gate_waiter_t *prev = NULL;
    for (ss_gate_waiter_t *w = c->gate_head; w != &me; w = w->next)
      prev = w;
    if (prev != NULL)
      prev->next = me.next;
    else
      c->gate_head = me.next;
    if (c->gate_tail == &me)
      c->gate_tail = prev;
    pthread_mutex_unlock(&c->gate_lock);
    return ss_failf(err, ATR_EBUSY,
                    "sqlite: waited busy_timeout (%" PRId64
                    "ms) for another write transaction in this process to "
                    "finish; raise busy_timeout or keep write transactions "
                    "short",
                    c->busy_timeout_ms);
  }
  pthread_mutex_unlock(&c->gate_lock);
  return 0;
}

void ss_gate_release(ss_ctx_t *c) {
  pthread_mutex_lock(&c->gate_lock);
  ss_gate_waiter_t *next = c->gate_head;
  if (next != NULL) {
    c->gate_head = next->next;
    if (c->gate_head == NULL)
      c->gate_tail = NULL;
    next->granted = true; /* handed over: gate_held stays true */
    pthread_cond_broadcast(&c->gate_cond);
  } else {
    c->gate_held = false;
  }
  pthread_mutex_unlock(&c->gate_lock);
}

void ss_conn_settle(atr_db_conn_t *conn) {
  if (conn->holds_gate && sqlite3_get_autocommit(conn->db)) {
    conn->holds_gate = false;
    ss_gate_release(conn->ctx);
  }
}

/* ---- connections */

static void conn_close(atr_db_conn_t *conn) {
  if (conn == NULL)
    return;
  ss_cache_clear(conn);
  if (sqlite3_close(conn->db) == SQLITE_BUSY) {
    /* Cursors the caller never closed: finalize what is left. */
    sqlite3_stmt *st;
    while ((st = sqlite3_next_stmt(conn->db, NULL)) != NULL)
      sqlite3_finalize(st);
    sqlite3_close(conn->db);
  }
  free(conn);
}

/* `sql` must give one row of one text column equal to `want`. */
static int pragma_expect(atr_db_conn_t *conn, const char *sql, const char *want,
                         char **err) {
  atr_db_rows_t *rows = NULL;
  atr_value_t v;
  int rc = ss_query(conn, sql, NULL, 0, &rows, err);
  if (rc == 0 && (rc = ss_rows_next(rows, err)) == 1 &&
      ss_rows_get(rows, 0, ATR_VAL_TEXT, &v) == 0 && v.type == ATR_VAL_TEXT &&
      strcmp(v.v.bytes.ptr, want) == 0)
    rc = 0;
  else if (rc >= 0)
    rc = ss_failf(err, ATR_EIO,
                  "cannot use %s: \"%s\" did not give \"%s\"; is the data "
                  "directory on a network file system? SQLite's WAL mode "
                  "needs a local disk",
                  conn->ctx->db_path, sql, want);
  ss_rows_close(rows);
  return rc;
}

static int conn_setup(atr_db_conn_t *conn, char **err) {
  ss_ctx_t *c = conn->ctx;
  uint64_t deadline = ss_deadline_ns(c);
  char sql[96];
  sqlite3_extended_result_codes(conn->db, 1);
  sqlite3_busy_timeout(conn->db, (int)c->busy_timeout_ms);
  int rc = pragma_expect(conn, "PRAGMA journal_mode=WAL", "wal", err);
  if (rc == 0) {
    snprintf(sql, sizeof sql, "PRAGMA synchronous=%s", c->synchronous);
    rc = ss_run(conn, sql, true, deadline, err);
  }
  if (rc == 0)
    rc = ss_run(conn, "PRAGMA foreign_keys=ON", true, deadline, err);
  if (rc == 0) {
    /* A negative cache_size is KiB rather than pages. */
    snprintf(sql, sizeof sql, "PRAGMA cache_size=-%" PRIu64,
             c->cache_size / 1024 ? c->cache_size / 1024 : 1);
    rc = ss_run(conn, sql, true, deadline, err);
  }
  return rc;
}

static int conn_open(ss_ctx_t *c, atr_db_conn_t **out, char **err) {
  *out = NULL;
  atr_db_conn_t *conn = calloc(1, sizeof *conn);
  if (conn == NULL)
    return ss_failf(err, ATR_ENOMEM, "sqlite: out of memory for a connection");
  conn->ctx = c;
  char prefix[64 + 4096];
  snprintf(prefix, sizeof prefix, "cannot open %s: ", c->db_path);
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(c->db_path, &conn->db, flags, NULL);
  if (rc != SQLITE_OK) {
    rc = ss_fail_db(err, conn->db, rc, false, prefix);
    sqlite3_close(conn->db);
    free(conn);
    return rc == ATR_EBUSY ? rc : ATR_EUNAVAIL;
  }
  char *setup_err = NULL;
  rc = conn_setup(conn, &setup_err);
  if (rc != 0) {
    ss_failf(err, rc, "%s%s", prefix, setup_err ? setup_err : "");
    free(setup_err);
    conn_close(conn);
    return rc;
  }
  *out = conn;
  return 0;
}

int ss_pool_init(ss_ctx_t *c, char **err) {
  c->idle = calloc((size_t)c->pool_size, sizeof *c->idle);
  if (c->idle == NULL)
    return ss_failf(err, ATR_ENOMEM, "sqlite: out of memory for the pool");
  /* The first connection now: a bad path or a file that is not a database
   * fails start-up rather than the first request. */
  atr_db_conn_t *first = NULL;
  int rc = conn_open(c, &first, err);
  if (rc != 0) {
    free(c->idle);
    c->idle = NULL;
    return rc;
  }
  c->idle[c->nidle++] = first;
  c->nopen = 1;
  return 0;
}

void ss_pool_fini(ss_ctx_t *c) {
  pthread_mutex_lock(&c->pool_lock);
  while (c->nidle < c->nopen) {
    uint64_t deadline = ss_now_ns() + UINT64_C(5000000000);
    struct timespec until = monotonic_ts(deadline);
    if (pthread_cond_timedwait(&c->pool_cond, &c->pool_lock, &until) ==
        ETIMEDOUT)
      c->host->log(c->h, ATR_LOG_WARN,
                   "shutdown waits for %zu connection(s) still in use",
                   c->nopen - c->nidle);
  }
  for (size_t i = 0; i < c->nidle; i++)
    conn_close(c->idle[i]);
  c->nidle = c->nopen = 0;
  pthread_mutex_unlock(&c->pool_lock);
  free(c->idle);
  c->idle = NULL;
}

int ss_get(void *ctx, atr_db_conn_t **out, char **err) {
  ss_ctx_t *c = ctx;
  if (c == NULL || out == NULL)
    return ss_failf(err, ATR_EINVAL, "sqlite: get needs a context and *out");
  *out = NULL;
  struct timespec until = monotonic_ts(ss_deadline_ns(c));
  bool timed_out = false;
  pthread_mutex_lock(&c->pool_lock);
  for (;;) {
    if (c->nidle > 0) {
      *out = c->idle[--c->nidle];
      pthread_mutex_unlock(&c->pool_lock);
      return 0;
    }
    if (c->nopen < (size_t)c->pool_size) {
      c->nopen++; /* the slot is ours while we open, without the lock */
      pthread_mutex_unlock(&c->pool_lock);
      int rc = conn_open(c, out, err);
      if (rc != 0) {
        pthread_mutex_lock(&c->pool_lock);
        c->nopen--;
        pthread_cond_signal(&c->pool_cond);
        pthread_mutex_unlock(&c->pool_lock);
      }
      return rc;
    }
    if (timed_out)
      break;
    timed_out = pthread_cond_timedwait(&c->pool_cond, &c->pool_lock, &until) ==
                ETIMEDOUT;
  }
  pthread_mutex_unlock(&c->pool_lock);
  return ss_failf(err, ATR_EBUSY,
                  "sqlite: all %" PRId64 " connections of the pool are in "
                  "use and none came back within busy_timeout (%" PRId64
                  "ms); raise pool_size, or look for code that holds a "
                  "connection while it waits for another",
                  c->pool_size, c->busy_timeout_ms);
}

void ss_put(void *ctx, atr_db_conn_t *conn) {
  ss_ctx_t *c = ctx;
  if (c == NULL || conn == NULL)
    return;
  size_t left = ss_cursors_finish(conn);
  if (left > 0)
    c->host->log(c->h, ATR_LOG_WARN,
                 "a connection came back with %zu cursor(s) still open; "
                 "they were closed (a caller forgot rows_close)",
                 left);
  ss_rollback(conn); /* a transaction left open ends here */
  pthread_mutex_lock(&c->pool_lock);
  if (c->nidle < c->nopen) /* else it was put twice: ignore the second */
    c->idle[c->nidle++] = conn;
  pthread_cond_signal(&c->pool_cond);
  pthread_mutex_unlock(&c->pool_lock);
}
