/* core/db.h — the core's side of storage: one enabled storage plugin,
 * connections borrowed per unit of work, typed statements, transactions
 * with retry, and pub/sub.
 *
 * Every query the core runs is written once, in the portable SQL described
 * in atrium/storage.h (`?` parameters, ATR_DB_SQL_SKIP_LOCKED), and goes
 * through these functions. Handlers never see the plugin's types.
 *
 * Threads: an atr_store_t is shared by all threads. An atr_db_t (one
 * borrowed connection) belongs to the thread that opened it until
 * atr_db_close(). Errors are 0 / negative ATR_E* with *err malloc'd.
 */
#ifndef ATRIUM_CORE_DB_H
#define ATRIUM_CORE_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atrium/storage.h"
#include "loader.h"
#include "uuid_text.h" /* atr_uuid_valid, for the callers of atr_v_uuid_or_null */

typedef struct atr_store {
  atr_handle_t *plugin;
  const atr_storage_ops_t *ops;
  void *ctx;
  /* The database encryption keys (dbcrypt.h); NULL writes in clear. */
  struct atr_dbcrypt *crypt;
} atr_store_t;

/* The one running storage plugin of the loader. Errors:
 *   "no storage plugin is enabled; enable one of storage_sqlite or
 *    storage_postgres under plugins: in the config"
 *   "2 storage plugins are enabled (storage_postgres, storage_sqlite);
 *    enable exactly one" */
int atr_store_find(const atr_loader_t *l, atr_store_t *out, char **err);

typedef struct atr_db {
  atr_store_t *store;
  atr_db_conn_t *conn;
  bool in_tx;
} atr_db_t;

int atr_db_open(atr_store_t *store, atr_db_t *db, char **err);
/* Rolls back an open transaction, returns the connection. */
void atr_db_close(atr_db_t *db);

/* Value constructors (borrow their arguments). */
atr_value_t atr_v_null(void);
atr_value_t atr_v_int(int64_t i);
atr_value_t atr_v_double(double d);
atr_value_t atr_v_bool(bool b);
atr_value_t atr_v_text(const char *s); /* NULL gives a NULL value */
atr_value_t atr_v_textn(const char *s, size_t len);
atr_value_t atr_v_blob(const void *p, size_t len);
atr_value_t atr_v_time(int64_t time_us);
/* s as a UUID parameter when it is one, else NULL: PostgreSQL refuses to
 * compare a UUID column with text that is not a UUID, so a lookup by "id
 * or name" passes the name through this for the id side. */
atr_value_t atr_v_uuid_or_null(const char *s);

int atr_db_exec(atr_db_t *db, const char *sql, const atr_value_t *params,
                size_t nparams, int64_t *changes, char **err);
int atr_db_exec_script(atr_db_t *db, const char *sql, char **err);
int atr_db_query(atr_db_t *db, const char *sql, const atr_value_t *params,
                 size_t nparams, atr_db_rows_t **rows, char **err);
/* 1 row ready, 0 end, negative error. */
int atr_db_next(atr_db_t *db, atr_db_rows_t *rows, char **err);
/* Typed reads of the current row; NULL reads as 0 / false / NULL. */
bool atr_db_is_null(atr_db_t *db, atr_db_rows_t *rows, size_t col);
int64_t atr_db_get_int(atr_db_t *db, atr_db_rows_t *rows, size_t col);
double atr_db_get_double(atr_db_t *db, atr_db_rows_t *rows, size_t col);
bool atr_db_get_bool(atr_db_t *db, atr_db_rows_t *rows, size_t col);
int64_t atr_db_get_time(atr_db_t *db, atr_db_rows_t *rows, size_t col);
/* Borrowed until the next atr_db_next/close; NULL for NULL. */
const char *atr_db_get_text(atr_db_t *db, atr_db_rows_t *rows, size_t col);
const void *atr_db_get_blob(atr_db_t *db, atr_db_rows_t *rows, size_t col,
                            size_t *len);
void atr_db_rows_close(atr_db_t *db, atr_db_rows_t *rows);

/* Run a query expected to give at most one row with one integer/text
 * column: ATR_ENOENT when no row. *out text is malloc'd. */
int atr_db_query_int(atr_db_t *db, const char *sql, const atr_value_t *params,
                     size_t nparams, int64_t *out, char **err);
int atr_db_query_text(atr_db_t *db, const char *sql, const atr_value_t *params,
                      size_t nparams, char **out, char **err);

int atr_db_begin(atr_db_t *db, atr_tx_mode_t mode, char **err);
int atr_db_commit(atr_db_t *db, char **err);
void atr_db_rollback(atr_db_t *db);

/* Open a connection, run fn inside a transaction of `mode`, commit; on
 * ATR_EBUSY or a serialization failure (ATR_EAGAIN) roll back and retry
 * (up to 5 times, with a short backoff). fn returns 0 or negative ATR_E*
 * with *err set; a negative return rolls back. */
typedef int (*atr_db_tx_fn)(atr_db_t *db, void *user_data, char **err);
int atr_db_tx(atr_store_t *store, atr_tx_mode_t mode, atr_db_tx_fn fn,
              void *user_data, char **err);

/* Whether a failed statement broke a unique constraint (a name taken),
 * rather than another constraint: both plugins map every constraint to
 * ATR_ECONSTRAINT, and only their messages tell which. */
bool atr_db_unique_violation(int rc, const char *err);

/* Pub/sub through the storage plugin (see atrium/storage.h): in process
 * for SQLite, across servers for PostgreSQL. ATR_ENOTSUP when the plugin
 * has none. */
int atr_db_publish(atr_store_t *store, const char *channel, const char *payload,
                   char **err);
int atr_db_subscribe(atr_store_t *store, const char *channel, atr_db_sub_fn fn,
                     void *user_data, atr_db_sub_t **out, char **err);
void atr_db_unsubscribe(atr_store_t *store, atr_db_sub_t *sub);

/* Now, in microseconds since the epoch (what the core writes as times). */
int64_t atr_db_now_us(void);
/* A new random UUID (v4) as 36 lower-case characters plus NUL. */
void atr_db_new_uuid(char out[37]);

#endif
