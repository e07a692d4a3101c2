/* plugins/storage_sqlite/internal.h — what the files of storage_sqlite share.
 *
 * The plugin is split by concern: plugin.c (descriptor, options, init and
 * fini), pool.c (connections and the writer gate), exec.c (statements,
 * cursors, transactions), value.c (parameters and column conversion),
 * error.c (SQLite codes to ATR_E* and messages), pubsub.c (in-process
 * publish/subscribe) and backup.c (backup and restore).
 *
 * Threads: the context is shared by every thread. Its option fields are
 * written by the host before init() and only read afterwards. The pool is
 * owned by pool_lock, the writer gate by gate_lock, subscriptions by
 * subs_lock and the message queue by queue_lock. A connection (ss_conn_t)
 * belongs to the thread that got it until put(); its statement cache and
 * cursors are that thread's too.
 */
#ifndef STORAGE_SQLITE_INTERNAL_H
#define STORAGE_SQLITE_INTERNAL_H

#include <atrium/atrium.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SS_STMT_CACHE 64  /* prepared statements kept per connection */
#define SS_CHANNEL_MAX 63 /* longest pub/sub channel name */
#define SS_PAYLOAD_MAX 7999

typedef struct ss_gate_waiter ss_gate_waiter_t;
typedef struct ss_msg ss_msg_t;

/* One message waiting for the dispatcher. */
struct ss_msg {
  ss_msg_t *next;
  char channel[SS_CHANNEL_MAX + 1];
  char payload[]; /* NUL-terminated */
};

/* atr_db_sub_t: one subscription, on the context's list until
 * unsubscribe(). Ids grow in subscription order. */
struct atr_db_sub {
  struct atr_db_sub *next;
  uint64_t id;
  char channel[SS_CHANNEL_MAX + 1];
  atr_db_sub_fn fn;
  void *user_data;
  bool free_after_call; /* unsubscribed by its own callback */
};

typedef struct ss_ctx {
  /* Options, filled by the host before init(). */
  const char *path;
  int64_t busy_timeout_ms;
  const char *synchronous;
  int64_t pool_size;
  uint64_t cache_size;

  atr_handle_t *h;
  const atr_host_t *host;
  char *db_path; /* path resolved against the data directory */

  /* The pool: open connections, the idle ones on a stack. */
  pthread_mutex_t pool_lock;
  pthread_cond_t pool_cond; /* a connection came back or a slot freed */
  struct atr_db_conn **idle;
  size_t nidle;
  size_t nopen; /* open, or being opened, connections */

  /* The writer gate: one write transaction at a time in this process,
   * handed over in arrival order (see pool.c). */
  pthread_mutex_t gate_lock;
  pthread_cond_t gate_cond;
  bool gate_held;
  ss_gate_waiter_t *gate_head, *gate_tail;

  /* Pub/sub (pubsub.c). */
  pthread_mutex_t subs_lock;
  pthread_cond_t subs_idle;   /* the running callback returned */
  struct atr_db_sub *subs;    /* in subscription order */
  struct atr_db_sub *running; /* whose callback runs now, or NULL */
  uint64_t next_sub_id;
  pthread_mutex_t queue_lock;
  pthread_cond_t queue_cond; /* a message arrived, or stop */
  ss_msg_t *queue_head, *queue_tail;
  bool stopping;
  pthread_t dispatcher;
  bool dispatcher_started;
} ss_ctx_t;

typedef struct ss_stmt_entry {
  char *sql; /* the key: the SQL text as the core wrote it */
  uint64_t hash;
  sqlite3_stmt *stmt;
  uint64_t last_used;
  bool in_use; /* an open cursor is reading from it */
} ss_stmt_entry_t;

/* atr_db_conn_t: one pooled SQLite connection. */
struct atr_db_conn {
  ss_ctx_t *ctx;
  sqlite3 *db;
  bool holds_gate;
  struct atr_db_rows *cursors; /* open cursors, closed by put() if left */
  ss_stmt_entry_t cache[SS_STMT_CACHE];
  uint64_t use_clock;
};

/* atr_db_rows_t: a cursor over one statement. */
struct atr_db_rows {
  struct atr_db_conn *conn;
  sqlite3_stmt *stmt;
  ss_stmt_entry_t *entry; /* the cache entry, or NULL for a one-off */
  bool first_pending;     /* query() already stepped to the first result */
  bool has_row;
  bool gate_taken; /* an autocommit write: the gate is released at close */
  bool detached;   /* finished by put(); only rows_close() is left to do */
  struct atr_db_rows *next_cursor;
};

/* ---- error.c */

/* *err = "<prefix>sqlite: <message> (<SQLITE_CODE_NAME>)"; returns the
 * ATR_E* for `rc` (see error.c for the mapping). `prepare` says the error
 * came from compiling SQL, which makes SQLITE_ERROR an ATR_EINVAL. */
int ss_fail(char **err, int rc, const char *msg, bool prepare,
            const char *prefix);
/* The same with the connection's current message. */
int ss_fail_db(char **err, sqlite3 *db, int rc, bool prepare,
               const char *prefix);
/* *err = a formatted message (when err is not NULL); returns code. */
int ss_failf(char **err, int code, const char *fmt, ...) ATR_PRINTF(3, 4);
const char *ss_code_name(int rc);
bool ss_is_busy(int rc);

/* ---- value.c */

/* Bind params to st; `copy` makes SQLite copy text and blobs (needed when
 * the statement outlives the call). */
int ss_bind(sqlite3_stmt *st, const atr_value_t *params, size_t nparams,
            bool copy, char **err);
int ss_column(sqlite3_stmt *st, size_t col, atr_value_type_t want,
              atr_value_t *out);
/* RFC 3339 UTC with microseconds: 27 characters and a NUL. */
#define SS_TIME_LEN 28
int ss_time_format(int64_t time_us, char out[SS_TIME_LEN]);
int ss_time_parse(const char *s, size_t len, int64_t *time_us);

/* ---- pool.c */

uint64_t ss_now_ns(void);
uint64_t ss_deadline_ns(const ss_ctx_t *c); /* now + busy_timeout */
void ss_sleep_ns(uint64_t ns);
int ss_pool_init(ss_ctx_t *c, char **err);
void ss_pool_fini(ss_ctx_t *c);
int ss_get(void *ctx, atr_db_conn_t **out, char **err);
void ss_put(void *ctx, atr_db_conn_t *conn);
int ss_gate_acquire(ss_ctx_t *c, uint64_t deadline_ns, char **err);
void ss_gate_release(ss_ctx_t *c);
/* Release the gate if the connection holds it but is no longer inside a
 * transaction (it committed or SQLite rolled back on its own). */
void ss_conn_settle(atr_db_conn_t *conn);

/* ---- exec.c */

/* Run one statement whose rows nobody wants (BEGIN, COMMIT, PRAGMA ...),
 * with SQLITE_BUSY retried until the deadline when `retry`. */
int ss_run(atr_db_conn_t *conn, const char *sql, bool retry,
           uint64_t deadline_ns, char **err);
void ss_cache_clear(atr_db_conn_t *conn);
int ss_exec(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
            size_t nparams, int64_t *changes, char **err);
int ss_exec_script(atr_db_conn_t *conn, const char *sql, char **err);
int ss_query(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
             size_t nparams, atr_db_rows_t **out, char **err);
int ss_rows_next(atr_db_rows_t *rows, char **err);
size_t ss_rows_ncols(atr_db_rows_t *rows);
int ss_rows_get(atr_db_rows_t *rows, size_t col, atr_value_type_t want,
                atr_value_t *out);
void ss_rows_close(atr_db_rows_t *rows);
/* Finish every cursor still open on conn (put() does this, so a forgotten
 * cursor cannot keep a read snapshot or the writer gate); returns how many
 * there were. */
size_t ss_cursors_finish(atr_db_conn_t *conn);
int ss_begin(atr_db_conn_t *conn, atr_tx_mode_t mode, char **err);
int ss_commit(atr_db_conn_t *conn, char **err);
void ss_rollback(atr_db_conn_t *conn);

/* ---- pubsub.c */

int ss_pubsub_init(ss_ctx_t *c, char **err);
void ss_pubsub_fini(ss_ctx_t *c);
int ss_publish(void *ctx, const char *channel, const char *payload, char **err);
int ss_subscribe(void *ctx, const char *channel, atr_db_sub_fn fn,
                 void *user_data, atr_db_sub_t **out, char **err);
void ss_unsubscribe(void *ctx, atr_db_sub_t *sub);

/* ---- backup.c */

int ss_backup(void *ctx, const char *path, char **err);
int ss_restore(void *ctx, const char *path, char **err);

#endif
