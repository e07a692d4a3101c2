/* storage_postgres.h — what the files of the PostgreSQL storage plugin share.
 *
 * The plugin (atrium/storage.h) talks to PostgreSQL through libpq:
 *   postgres.c  descriptor, options, init and fini
 *   pool.c      connection parameters, the connection pool, safe messages
 *   sql.c       statements: `?` translation, parameters, results, errors
 *   convert.c   value conversions (times, numbers, bytea)
 *   pubsub.c    publish, and LISTEN on one connection with its own thread
 *   backup.c    pg_dump / pg_restore in child processes
 *
 * Ownership and threads: the context belongs to the host; everything hung
 * off it is created in init() (or lazily, the listener) and freed in fini().
 * A pooled connection belongs to the thread between get() and put(); the
 * pool's bookkeeping is guarded by pool_lock. The listener has its own locks
 * (pubsub.c). `where` and `password` are written in init() only.
 */
#ifndef STORAGE_POSTGRES_H
#define STORAGE_POSTGRES_H

#include <atrium/atrium.h>

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SPG_NAME "storage_postgres"

/* Type OIDs (pg_type.dat); stable across PostgreSQL versions. */
enum {
  SPG_OID_BOOL = 16,
  SPG_OID_BYTEA = 17,
  SPG_OID_INT8 = 20,
  SPG_OID_INT2 = 21,
  SPG_OID_INT4 = 23,
  SPG_OID_TEXT = 25,
  SPG_OID_FLOAT4 = 700,
  SPG_OID_FLOAT8 = 701,
  SPG_OID_TIMESTAMP = 1114,
  SPG_OID_TIMESTAMPTZ = 1184,
  SPG_OID_NUMERIC = 1700,
};

typedef struct spg_listener spg_listener_t;
typedef struct spg_ctx spg_ctx_t;

/* One pooled connection. pg is NULL until first used. */
struct atr_db_conn {
  spg_ctx_t *ctx;
  PGconn *pg;
  bool in_use; /* pool_lock */
  bool broken; /* owner thread: reset before the next use */
};

struct spg_ctx {
  /* Filled by the host from the option table before init(). */
  const char *dsn;
  int64_t pool_size;
  int64_t connect_timeout_ms;
  bool keepalives;
  int64_t keepalives_idle_ms;
  int64_t keepalives_interval_ms;
  int64_t keepalives_count;
  int64_t acquire_timeout_ms;
  const char *pg_bin_dir;

  /* Set in init(), read-only afterwards. */
  atr_handle_t *h;
  const atr_host_t *host;
  char *where;    /* "host:port/dbname": what messages name, never the dsn */
  char *password; /* from the dsn, to scrub from messages; NULL if none */
  const char *conn_keys[9]; /* PQconnectdbParams keywords, NULL-terminated */
  const char *conn_vals[9];
  char conn_num[5][24]; /* storage for the numeric values above */

  /* The pool. */
  pthread_mutex_t pool_lock; /* protects slots[].in_use */
  pthread_cond_t pool_freed; /* signalled when a connection is put back */
  atr_db_conn_t *slots;
  size_t nslots;
  atomic_bool reachable; /* last connection attempt worked (for logging) */

  /* Pub/sub, created on the first subscribe. */
  pthread_mutex_t listener_lock; /* protects listener (the pointer) */
  spg_listener_t *listener;
};

/* pool.c */
int spg_pool_init(spg_ctx_t *c, char **err);
void spg_pool_fini(spg_ctx_t *c);
int spg_get(void *ctx, atr_db_conn_t **out, char **err);
void spg_put(void *ctx, atr_db_conn_t *conn);
/* A new connection with the session set up, or NULL with *err set. */
PGconn *spg_connect(spg_ctx_t *c, char **err);
/* After a (re)connect: time zone, date style, application name. */
int spg_session_setup(spg_ctx_t *c, PGconn *pg, char **err);
/* libpq's message for `pg` as one line, without the password. malloc'd. */
char *spg_conn_message(const spg_ctx_t *c, const PGconn *pg);
/* Replace every occurrence of the password in s (in place, same length
 * kept by masking). */
void spg_scrub(const spg_ctx_t *c, char *s);

/* sql.c */
int spg_exec(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
             size_t nparams, int64_t *changes, char **err);
int spg_exec_script(atr_db_conn_t *conn, const char *sql, char **err);
int spg_query(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
              size_t nparams, atr_db_rows_t **out, char **err);
int spg_rows_next(atr_db_rows_t *rows, char **err);
size_t spg_rows_ncols(atr_db_rows_t *rows);
int spg_rows_get(atr_db_rows_t *rows, size_t col, atr_value_type_t want,
                 atr_value_t *out);
void spg_rows_close(atr_db_rows_t *rows);
int spg_begin(atr_db_conn_t *conn, atr_tx_mode_t mode, char **err);
int spg_commit(atr_db_conn_t *conn, char **err);
void spg_rollback(atr_db_conn_t *conn);
/* `?` → `$n` outside quotes and comments, ATR_DB_SQL_SKIP_LOCKED → "FOR
 * UPDATE SKIP LOCKED". malloc'd; *nplaceholders gets the count. NULL when
 * out of memory. */
char *spg_translate(const char *sql, size_t *nplaceholders);
/* The ATR_E* code and message for a failed result (res may be NULL). */
int spg_result_error(atr_db_conn_t *conn, const PGresult *res, char **err);

/* convert.c */
/* "2026-11-26T06:50:00.123456Z" into buf (at least 40 bytes). */
void spg_format_time(int64_t time_us, char *buf, size_t size);
/* PostgreSQL's timestamptz/timestamp text (ISO style) or RFC 3339 →
 * microseconds since the epoch; ATR_EINVAL when it is not one. */
int spg_parse_time(const char *text, int64_t *out);
int spg_parse_int(const char *text, int64_t *out);
int spg_parse_double(const char *text, double *out);
int spg_parse_bool(Oid type, const char *text, int *out);
/* bytea text output ("\x0a0b" or the escape format) → malloc'd bytes with
 * a NUL after them; NULL when out of memory or malformed. */
unsigned char *spg_decode_bytea(const char *text, size_t text_len, size_t *len);

/* pubsub.c */
int spg_publish(void *ctx, const char *channel, const char *payload,
                char **err);
int spg_subscribe(void *ctx, const char *channel, atr_db_sub_fn fn,
                  void *user_data, atr_db_sub_t **out, char **err);
void spg_unsubscribe(void *ctx, atr_db_sub_t *sub);
void spg_pubsub_fini(spg_ctx_t *c);

/* backup.c */
int spg_backup(void *ctx, const char *path, char **err);
int spg_restore(void *ctx, const char *path, char **err);

/* postgres.c */
/* *err = "postgres: ..." (malloc'd), when err is not NULL. */
void spg_set_err(char **err, const char *fmt, ...) ATR_PRINTF(2, 3);

#endif
