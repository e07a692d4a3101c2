/* atrium/storage.h — the storage kind (a SQL backend).
 *
 * Exactly one storage plugin is enabled. The core owns the schema, the
 * migrations and every query, written once in portable SQL; the plugin
 * supplies connections, typed execution, transactions, dialect facts,
 * publish/subscribe, and backup/restore.
 *
 * SQL the core sends:
 *   - parameters are written `?` and numbered by position; a plugin whose
 *     backend wants `$1` rewrites them (never inside quotes or comments);
 *   - ATR_DB_SQL_SKIP_LOCKED in a statement is replaced by the plugin with
 *     its row-locking clause for a work queue ("FOR UPDATE SKIP LOCKED" on
 *     PostgreSQL, "" on SQLite, where BEGIN IMMEDIATE serialises writers);
 *   - types: BIGINT, BOOLEAN, TEXT, BYTEA (blobs), TIMESTAMPTZ, UUID,
 *     DOUBLE PRECISION. Values cross the boundary as atr_value_t; the plugin
 *     converts to and from what its backend stores.
 *
 * Connections: get() hands out a connection for the calling thread's
 * exclusive use until put(); a pool may block up to its timeout. A
 * connection is never used by two threads at once. Everything else in this
 * table may be called from any thread.
 *
 * Errors: functions return 0 or a negative ATR_E* code and set *err to a
 * malloc'd message that includes the backend's own text:
 *   ATR_ECONSTRAINT  a unique, foreign-key, check or not-null violation
 *   ATR_EUNAVAIL     the database cannot be reached right now (the API
 *                    answers 503); a later call may succeed
 *   ATR_EBUSY        lock contention outlasted the plugin's busy timeout
 *   ATR_EINVAL       bad SQL or a parameter of the wrong type
 *   ATR_EIO          anything else the backend reported
 *
 * Memory: parameters are borrowed for the call. Values read from a row are
 * borrowed until the next rows_next() or rows_close().
 */
#ifndef ATRIUM_STORAGE_H
#define ATRIUM_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "atrium/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATR_DB_SQL_SKIP_LOCKED "/*atrium:skip_locked*/"

typedef struct atr_db_conn atr_db_conn_t; /* a plugin's connection */
typedef struct atr_db_rows atr_db_rows_t; /* a plugin's result cursor */
typedef struct atr_db_sub atr_db_sub_t;   /* a subscription */

typedef enum atr_value_type {
  ATR_VAL_NULL = 0,
  ATR_VAL_INT = 1,    /* int64_t */
  ATR_VAL_DOUBLE = 2, /* double */
  ATR_VAL_BOOL = 3,   /* 0 or 1 */
  ATR_VAL_TEXT = 4,   /* UTF-8 without NUL; ptr+len, NUL-terminated on read */
  ATR_VAL_BLOB = 5,   /* bytes; ptr+len */
  ATR_VAL_TIME = 6,   /* microseconds since the Unix epoch, UTC */
} atr_value_type_t;

typedef struct atr_value {
  atr_value_type_t type;
  union {
    int64_t i;
    double d;
    int b;
    int64_t time_us;
    struct {
      const void *ptr;
      size_t len;
    } bytes; /* TEXT and BLOB */
  } v;
} atr_value_t;

typedef enum atr_tx_mode {
  ATR_TX_READ = 1,         /* reads only (SQLite: BEGIN DEFERRED) */
  ATR_TX_WRITE = 2,        /* will write: SQLite BEGIN IMMEDIATE; PostgreSQL
                       READ COMMITTED */
  ATR_TX_SERIALIZABLE = 3, /* PostgreSQL SERIALIZABLE; SQLite IMMEDIATE */
} atr_tx_mode_t;

enum atr_db_feature {
  ATR_DB_FEATURE_SKIP_LOCKED = 1u << 0,   /* concurrent claimers don't wait */
  ATR_DB_FEATURE_SHARED = 1u << 1,        /* several servers may share it */
  ATR_DB_FEATURE_PUBSUB_REMOTE = 1u << 2, /* messages cross processes */
};

/* A subscriber's callback. Runs on a plugin thread; must not block and must
 * not call unsubscribe. flags & ATR_DB_SUB_MISSED: the plugin lost its
 * connection and re-subscribed, so messages may have been missed (channel
 * set, payload NULL): reread whatever state you cache. */
enum atr_db_sub_flag { ATR_DB_SUB_MISSED = 1u << 0 };
typedef void (*atr_db_sub_fn)(void *user_data, const char *channel,
                              const char *payload, unsigned flags);

typedef struct atr_storage_ops {
  uint32_t struct_size;
  const char *dialect; /* "sqlite", "postgres" */
  uint32_t features;   /* enum atr_db_feature */

  /* Connections. */
  int (*get)(void *ctx, atr_db_conn_t **out, char **err);
  void (*put)(void *ctx, atr_db_conn_t *conn);

  /* One statement with parameters; *changes (may be NULL) gets the number
   * of rows it changed. */
  int (*exec)(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
              size_t nparams, int64_t *changes, char **err);
  /* Several statements without parameters (migrations). */
  int (*exec_script)(atr_db_conn_t *conn, const char *sql, char **err);
  /* One statement that returns rows. */
  int (*query)(atr_db_conn_t *conn, const char *sql, const atr_value_t *params,
               size_t nparams, atr_db_rows_t **out, char **err);
  /* 1 when a row is ready, 0 at the end, negative on error. */
  int (*rows_next)(atr_db_rows_t *rows, char **err);
  size_t (*rows_ncols)(atr_db_rows_t *rows);
  /* Column `col` of the current row converted to `want` (ATR_VAL_NULL
   * when the column is NULL, whatever `want` is). ATR_EINVAL when it cannot
   * be converted. */
  int (*rows_get)(atr_db_rows_t *rows, size_t col, atr_value_type_t want,
                  atr_value_t *out);
  void (*rows_close)(atr_db_rows_t *rows);

  /* Transactions on one connection. rollback never fails visibly. */
  int (*begin)(atr_db_conn_t *conn, atr_tx_mode_t mode, char **err);
  int (*commit)(atr_db_conn_t *conn, char **err);
  void (*rollback)(atr_db_conn_t *conn);

  /* Publish/subscribe. publish() delivers to subscribers of `channel` in
   * this process and, with ATR_DB_FEATURE_PUBSUB_REMOTE, in every process
   * on the same database. Channel: [a-z0-9_]{1,63}. Payload: text up to
   * 7999 bytes. */
  int (*publish)(void *ctx, const char *channel, const char *payload,
                 char **err);
  int (*subscribe)(void *ctx, const char *channel, atr_db_sub_fn fn,
                   void *user_data, atr_db_sub_t **out, char **err);
  /* After it returns, fn is not running and will not be called again. */
  void (*unsubscribe)(void *ctx, atr_db_sub_t *sub);

  /* Whole-database copies to and from a file (a consistent snapshot while
   * in use). restore() brings every object in the backup back to its
   * backed-up content, atomically where the backend can; objects created
   * after the backup may remain (PostgreSQL's pg_restore --clean). */
  int (*backup)(void *ctx, const char *path, char **err);
  int (*restore)(void *ctx, const char *path, char **err);
} atr_storage_ops_t;

#define ATR_STORAGE_OPS_MIN_SIZE                                               \
  (offsetof(atr_storage_ops_t, restore) + sizeof(void (*)(void)))

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_STORAGE_H */
