/* storage_sqlite: statements, cursors and transactions on one connection.
 *
 * Statements are compiled once per connection and kept in a small cache
 * keyed by the SQL text (the core's queries are a fixed set). A cached
 * statement that an open cursor is still reading is not handed out twice;
 * a second user gets a one-off statement instead.
 *
 * Locking: SQLite lets one writer at a time into a database. Writers in
 * this process first pass the writer gate (pool.c), which hands the
 * database over in arrival order instead of letting SQLite's busy handler
 * poll; a write transaction holds the gate from begin() to commit() or
 * rollback(), a write outside a transaction for the statement (for a
 * query(), until rows_close()). Writers in other processes are waited for
 * by SQLite's busy handler (busy_timeout), and any SQLITE_BUSY that still
 * comes back where a retry is safe (BEGIN, COMMIT, the first step of a
 * statement outside a transaction) is retried here until busy_timeout has
 * passed since the call began.
 *
 * Threads: a connection and its cursors belong to one thread at a time.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static uint64_t hash_sql(const char *s) {
  uint64_t h = UINT64_C(14695981039346656037); /* FNV-1a */
  for (; *s; s++)
    h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
  return h;
}

/* The SQL SQLite should see: the core's SKIP LOCKED marker removed (SQLite
 * has no row locks; BEGIN IMMEDIATE already serialises claimers). *out is
 * malloc'd when anything was removed, else NULL. */
static int translate(const char *sql, char **out) {
  static const char marker[] = ATR_DB_SQL_SKIP_LOCKED;
  *out = NULL;
  if (strstr(sql, marker) == NULL)
    return 0;
  char *copy = strdup(sql);
  if (copy == NULL)
    return ATR_ENOMEM;
  char *at;
  while ((at = strstr(copy, marker)) != NULL)
    memmove(at, at + sizeof marker - 1, strlen(at + sizeof marker - 1) + 1);
  *out = copy;
  return 0;
}

/* Refuse a second statement after the first: exec() and query() run one
 * (trailing whitespace, semicolons and comments are fine). */
static int check_tail(sqlite3 *db, const char *tail, char **err) {
  while (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r' ||
         *tail == ';')
    tail++;
  if (*tail == '\0')
    return 0;
  sqlite3_stmt *extra = NULL;
  int rc = sqlite3_prepare_v2(db, tail, -1, &extra, NULL);
  sqlite3_finalize(extra);
  if (rc == SQLITE_OK && extra == NULL)
    return 0;
  return ss_failf(err, ATR_EINVAL,
                  "sqlite: only one statement may be run at a time here; use "
                  "exec_script for several (the second begins \"%.40s\")",
                  tail);
}

static int compile(atr_db_conn_t *conn, const char *sql, unsigned flags,
                   sqlite3_stmt **st, char **err) {
  char *translated = NULL;
  int rc = translate(sql, &translated);
  if (rc != 0)
    return ss_failf(err, rc, "sqlite: out of memory translating a statement");
  const char *tail = NULL;
  rc = sqlite3_prepare_v3(conn->db, translated ? translated : sql, -1, flags,
                          st, &tail);
  if (rc != SQLITE_OK)
    rc = ss_fail_db(err, conn->db, rc, true, NULL);
  else if (*st == NULL)
    rc = ss_failf(err, ATR_EINVAL, "sqlite: the statement is empty");
  else
    rc = check_tail(conn->db, tail, err);
  free(translated);
  if (rc != 0) {
    sqlite3_finalize(*st);
    *st = NULL;
  }
  return rc;
}

static ss_stmt_entry_t *cache_slot(atr_db_conn_t *conn) {
  ss_stmt_entry_t *victim = NULL;
  for (size_t i = 0; i < SS_STMT_CACHE; i++) {
    ss_stmt_entry_t *e = &conn->cache[i];
    if (e->stmt == NULL)
      return e;
    if (!e->in_use && (victim == NULL || e->last_used < victim->last_used))
      victim = e;
  }
  if (victim != NULL) {
    sqlite3_finalize(victim->stmt);
    free(victim->sql);
    memset(victim, 0, sizeof *victim);
  }
  return victim;
}

/* A ready statement for sql: from the cache (*entry set, marked in use) or
 * a one-off (*entry NULL) when the cached one is busy or the cache is full
 * of busy ones. */
static int prepare(atr_db_conn_t *conn, const char *sql, sqlite3_stmt **st,
                   ss_stmt_entry_t **entry, char **err) {
  uint64_t h = hash_sql(sql);
  bool busy = false;
  *entry = NULL;
  for (size_t i = 0; i < SS_STMT_CACHE; i++) {
    ss_stmt_entry_t *e = &conn->cache[i];
    if (e->stmt == NULL || e->hash != h || strcmp(e->sql, sql) != 0)
      continue;
    if (e->in_use) {
      busy = true;
      break;
    }
    e->in_use = true;
    e->last_used = ++conn->use_clock;
    *st = e->stmt;
    *entry = e;
    return 0;
  }
  ss_stmt_entry_t *slot = busy ? NULL : cache_slot(conn);
  char *key = slot ? strdup(sql) : NULL;
  int rc = compile(conn, sql, key ? SQLITE_PREPARE_PERSISTENT : 0, st, err);
  if (rc != 0 || key == NULL) {
    free(key);
    return rc;
  }
  *slot = (ss_stmt_entry_t){.sql = key,
                            .hash = h,
                            .stmt = *st,
                            .last_used = ++conn->use_clock,
                            .in_use = true};
  *entry = slot;
  return 0;
}

static void release(sqlite3_stmt *st, ss_stmt_entry_t *entry) {
  if (entry == NULL) {
    sqlite3_finalize(st);
    return;
  }
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  entry->in_use = false;
}

void ss_cache_clear(atr_db_conn_t *conn) {
  for (size_t i = 0; i < SS_STMT_CACHE; i++) {
    sqlite3_finalize(conn->cache[i].stmt);
    free(conn->cache[i].sql);
    memset(&conn->cache[i], 0, sizeof conn->cache[i]);
  }
}

/* sqlite3_step, with SQLITE_BUSY retried (when `retry`) until the deadline. */
static int step_retry(sqlite3_stmt *st, bool retry, uint64_t deadline_ns) {
  for (uint64_t pause_ns = 100000;; pause_ns *= 2) {
    int rc = sqlite3_step(st);
    uint64_t now = ss_now_ns();
    if (!retry || !ss_is_busy(rc) || now >= deadline_ns)
      return rc;
    sqlite3_reset(st);
    if (pause_ns > 10000000)
      pause_ns = 10000000;
    ss_sleep_ns(pause_ns < deadline_ns - now ? pause_ns : deadline_ns - now);
  }
}

int ss_run(atr_db_conn_t *conn, const char *sql, bool retry,
           uint64_t deadline_ns, char **err) {
  sqlite3_stmt *st = NULL;
  ss_stmt_entry_t *entry = NULL;
  int rc = prepare(conn, sql, &st, &entry, err);
  if (rc != 0)
    return rc;
  rc = step_retry(st, retry, deadline_ns);
  while (rc == SQLITE_ROW)
    rc = sqlite3_step(st);
  rc = rc == SQLITE_DONE ? 0 : ss_fail_db(err, conn->db, rc, false, NULL);
  release(st, entry);
  return rc;
}

/* A write outside a transaction passes the writer gate for its duration. */
static int gate_for(atr_db_conn_t *conn, sqlite3_stmt *st, uint64_t deadline,
                    bool *taken, char **err) {
  *taken = false;
  if (!sqlite3_get_autocommit(conn->db) || sqlite3_stmt_readonly(st))
    return 0;
  int rc = ss_gate_acquire(conn->ctx, deadline, err);
  *taken = rc == 0;
  return rc;
}

int ss_exec(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
            size_t nparams, int64_t *changes, char **err) {
  if (conn == NULL || sql == NULL || (params == NULL && nparams > 0))
    return ss_failf(err, ATR_EINVAL, "sqlite: exec needs a connection and SQL");
  uint64_t deadline = ss_deadline_ns(conn->ctx);
  sqlite3_stmt *st = NULL;
  ss_stmt_entry_t *entry = NULL;
  bool gate = false;
  int rc = prepare(conn, sql, &st, &entry, err);
  if (rc != 0)
    return rc;
  rc = ss_bind(st, params, nparams, false, err);
  if (rc == 0)
    rc = gate_for(conn, st, deadline, &gate, err);
  if (rc == 0) {
    sqlite3_int64 before = sqlite3_total_changes64(conn->db);
    int src = step_retry(st, sqlite3_get_autocommit(conn->db), deadline);
    while (src == SQLITE_ROW) /* UPDATE ... RETURNING run for its effect */
      src = sqlite3_step(st);
    if (src != SQLITE_DONE)
      rc = ss_fail_db(err, conn->db, src, false, NULL);
    else if (changes != NULL)
      *changes = sqlite3_total_changes64(conn->db) == before
                     ? 0
                     : sqlite3_changes64(conn->db);
  }
  release(st, entry);
  if (gate)
    ss_gate_release(conn->ctx);
  ss_conn_settle(conn);
  return rc;
}

int ss_exec_script(atr_db_conn_t *conn, const char *sql, char **err) {
  if (conn == NULL || sql == NULL)
    return ss_failf(err, ATR_EINVAL,
                    "sqlite: exec_script needs a connection and SQL");
  char *translated = NULL, *msg = NULL;
  int rc = translate(sql, &translated);
  if (rc != 0)
    return ss_failf(err, rc, "sqlite: out of memory translating a script");
  rc = sqlite3_exec(conn->db, translated ? translated : sql, NULL, NULL, &msg);
  if (rc != SQLITE_OK)
    rc = ss_fail(err, rc, msg, true, NULL);
  sqlite3_free(msg);
  free(translated);
  ss_conn_settle(conn);
  return rc;
}

/* Give back what a cursor holds: its statement and the gate. */
static void rows_finish(atr_db_rows_t *rows) {
  if (rows->stmt != NULL)
    release(rows->stmt, rows->entry);
  rows->stmt = NULL;
  rows->has_row = rows->first_pending = false;
  if (rows->gate_taken)
    ss_gate_release(rows->conn->ctx);
  rows->gate_taken = false;
  ss_conn_settle(rows->conn);
}

size_t ss_cursors_finish(atr_db_conn_t *conn) {
  size_t n = 0;
  for (atr_db_rows_t *r = conn->cursors; r != NULL; r = r->next_cursor, n++) {
    rows_finish(r);
    r->detached = true;
  }
  conn->cursors = NULL;
  return n;
}

int ss_query(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
             size_t nparams, atr_db_rows_t **out, char **err) {
  if (out != NULL)
    *out = NULL;
  if (conn == NULL || sql == NULL || out == NULL ||
      (params == NULL && nparams > 0))
    return ss_failf(err, ATR_EINVAL,
                    "sqlite: query needs a connection, SQL and a cursor");
  uint64_t deadline = ss_deadline_ns(conn->ctx);
  atr_db_rows_t *rows = calloc(1, sizeof *rows);
  if (rows == NULL)
    return ss_failf(err, ATR_ENOMEM, "sqlite: out of memory for a cursor");
  rows->conn = conn;
  /* Text and blobs are copied: the cursor outlives the caller's params. */
  int rc = prepare(conn, sql, &rows->stmt, &rows->entry, err);
  if (rc == 0)
    rc = ss_bind(rows->stmt, params, nparams, true, err);
  if (rc == 0)
    rc = gate_for(conn, rows->stmt, deadline, &rows->gate_taken, err);
  if (rc == 0) {
    /* Step now, so that a statement's errors (a constraint in an
     * INSERT ... RETURNING) come back from query() itself. */
    int src =
        step_retry(rows->stmt, sqlite3_get_autocommit(conn->db), deadline);
    if (src == SQLITE_ROW || src == SQLITE_DONE) {
      rows->has_row = src == SQLITE_ROW;
      rows->first_pending = true;
      rows->next_cursor = conn->cursors;
      conn->cursors = rows;
      *out = rows;
      return 0;
    }
    rc = ss_fail_db(err, conn->db, src, false, NULL);
  }
  rows_finish(rows);
  free(rows);
  return rc;
}

int ss_rows_next(atr_db_rows_t *rows, char **err) {
  if (rows == NULL || rows->detached)
    return ss_failf(err, ATR_EINVAL,
                    rows ? "sqlite: this cursor was closed when its "
                           "connection went back to the pool"
                         : "sqlite: rows_next needs a cursor");
  if (rows->first_pending) {
    rows->first_pending = false;
    return rows->has_row ? 1 : 0;
  }
  if (!rows->has_row)
    return 0; /* stepping a finished statement would run it again */
  int rc = sqlite3_step(rows->stmt);
  rows->has_row = rc == SQLITE_ROW;
  if (rc == SQLITE_ROW || rc == SQLITE_DONE)
    return rows->has_row ? 1 : 0;
  return ss_fail_db(err, rows->conn->db, rc, false, NULL);
}

size_t ss_rows_ncols(atr_db_rows_t *rows) {
  return rows ? (size_t)sqlite3_column_count(rows->stmt) : 0;
}

int ss_rows_get(atr_db_rows_t *rows, size_t col, atr_value_type_t want,
                atr_value_t *out) {
  if (rows == NULL || out == NULL || rows->first_pending || !rows->has_row)
    return ATR_EINVAL; /* no current row */
  return ss_column(rows->stmt, col, want, out);
}

void ss_rows_close(atr_db_rows_t *rows) {
  if (rows == NULL)
    return;
  if (!rows->detached) {
    atr_db_rows_t **p = &rows->conn->cursors;
    while (*p != NULL && *p != rows)
      p = &(*p)->next_cursor;
    if (*p == rows)
      *p = rows->next_cursor;
    rows_finish(rows);
  }
  free(rows);
}

int ss_begin(atr_db_conn_t *conn, atr_tx_mode_t mode, char **err) {
  if (conn == NULL)
    return ss_failf(err, ATR_EINVAL, "sqlite: begin needs a connection");
  if (!sqlite3_get_autocommit(conn->db))
    return ss_failf(err, ATR_EINVAL,
                    "sqlite: a transaction is already open on this "
                    "connection; commit or roll it back first");
  bool write = mode == ATR_TX_WRITE || mode == ATR_TX_SERIALIZABLE;
  if (!write && mode != ATR_TX_READ)
    return ss_failf(err, ATR_EINVAL,
                    "sqlite: unknown transaction mode %d; expected "
                    "ATR_TX_READ, ATR_TX_WRITE or ATR_TX_SERIALIZABLE",
                    (int)mode);
  uint64_t deadline = ss_deadline_ns(conn->ctx);
  if (write) {
    int rc = ss_gate_acquire(conn->ctx, deadline, err);
    if (rc != 0)
      return rc;
    conn->holds_gate = true;
  }
  /* IMMEDIATE takes SQLite's write lock now, so no write later in the
   * transaction can fail to upgrade a read lock with SQLITE_BUSY. */
  int rc = ss_run(conn, write ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED", true,
                  deadline, err);
  ss_conn_settle(conn);
  return rc;
}

int ss_commit(atr_db_conn_t *conn, char **err) {
  if (conn == NULL)
    return ss_failf(err, ATR_EINVAL, "sqlite: commit needs a connection");
  if (sqlite3_get_autocommit(conn->db))
    return ss_failf(err, ATR_EINVAL,
                    "sqlite: no transaction is open on this connection");
  int rc = ss_run(conn, "COMMIT", true, ss_deadline_ns(conn->ctx), err);
  /* A failed COMMIT (a deferred foreign key, a full disk) can leave the
   * transaction open; end it, so the connection is clean either way. */
  if (rc != 0 && !sqlite3_get_autocommit(conn->db))
    ss_run(conn, "ROLLBACK", false, 0, NULL);
  ss_conn_settle(conn);
  return rc;
}

void ss_rollback(atr_db_conn_t *conn) {
  if (conn == NULL)
    return;
  if (!sqlite3_get_autocommit(conn->db))
    ss_run(conn, "ROLLBACK", false, 0, NULL);
  ss_conn_settle(conn);
}
