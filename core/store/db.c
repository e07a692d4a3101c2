/* core/db.c — see db.h. Thin, typed wrappers over the storage plugin. */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "atrium/error.h"
#include "log.h"
#include "stats.h"

static void set_err(char **err, const char *msg) {
  if (err)
    *err = strdup(msg);
}

int atr_store_find(const atr_loader_t *l, atr_store_t *out, char **err) {
  atr_handle_t *found[2] = {0};
  size_t n = 0;
  char names[512] = "";
  for (size_t i = 0; i < l->nplugins; i++) {
    atr_handle_t *h = l->plugins[i];
    if (h->state != ATR_PLUGIN_RUNNING || h->desc->kind != ATR_KIND_STORAGE)
      continue;
    if (n < 2)
      found[n] = h;
    n++;
    size_t used = strlen(names);
    snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
             h->name);
  }
  if (n == 1) {
    *out = (atr_store_t){
        .plugin = found[0], .ops = found[0]->desc->ops, .ctx = found[0]->ctx};
    return 0;
  }
  if (n == 0) {
    set_err(err, "no storage plugin is enabled; enable one of storage_sqlite "
                 "or storage_postgres under plugins: in the config");
  } else if (asprintf(err,
                      "%zu storage plugins are enabled (%s); enable "
                      "exactly one",
                      n, names) < 0) {
    *err = NULL;
  }
  return ATR_ECONFIG;
}

int atr_db_open(atr_store_t *store, atr_db_t *db, char **err) {
  *db = (atr_db_t){.store = store};
  return store->ops->get(store->ctx, &db->conn, err);
}

void atr_db_close(atr_db_t *db) {
  if (!db->conn)
    return;
  if (db->in_tx)
    atr_db_rollback(db);
  db->store->ops->put(db->store->ctx, db->conn);
  db->conn = NULL;
}

atr_value_t atr_v_null(void) {
  return (atr_value_t){.type = ATR_VAL_NULL};
}

atr_value_t atr_v_int(int64_t i) {
  return (atr_value_t){.type = ATR_VAL_INT, .v.i = i};
}

atr_value_t atr_v_double(double d) {
  return (atr_value_t){.type = ATR_VAL_DOUBLE, .v.d = d};
}

atr_value_t atr_v_bool(bool b) {
  return (atr_value_t){.type = ATR_VAL_BOOL, .v.b = b ? 1 : 0};
}

atr_value_t atr_v_text(const char *s) {
  return s ? atr_v_textn(s, strlen(s)) : atr_v_null();
}

atr_value_t atr_v_textn(const char *s, size_t len) {
  return (atr_value_t){.type = ATR_VAL_TEXT, .v.bytes = {s, len}};
}

atr_value_t atr_v_blob(const void *p, size_t len) {
  return (atr_value_t){.type = ATR_VAL_BLOB, .v.bytes = {p, len}};
}

atr_value_t atr_v_time(int64_t time_us) {
  return (atr_value_t){.type = ATR_VAL_TIME, .v.time_us = time_us};
}

atr_value_t atr_v_uuid_or_null(const char *s) {
  return atr_uuid_valid(s) ? atr_v_text(s) : atr_v_null();
}

static double mono_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int atr_db_exec(atr_db_t *db, const char *sql, const atr_value_t *params,
                size_t nparams, int64_t *changes, char **err) {
  double t0 = mono_seconds();
  int rc = db->store->ops->exec(db->conn, sql, params, nparams, changes, err);
  atr_stats_db_query(mono_seconds() - t0);
  return rc;
}

int atr_db_exec_script(atr_db_t *db, const char *sql, char **err) {
  return db->store->ops->exec_script(db->conn, sql, err);
}

/* Times the statement up to its first row (SQLite steps lazily; the
 * rest of the rows are the caller's reading). */
int atr_db_query(atr_db_t *db, const char *sql, const atr_value_t *params,
                 size_t nparams, atr_db_rows_t **rows, char **err) {
  double t0 = mono_seconds();
  int rc = db->store->ops->query(db->conn, sql, params, nparams, rows, err);
  atr_stats_db_query(mono_seconds() - t0);
  return rc;
}

int atr_db_next(atr_db_t *db, atr_db_rows_t *rows, char **err) {
  return db->store->ops->rows_next(rows, err);
}

static atr_value_t get(atr_db_t *db, atr_db_rows_t *rows, size_t col,
                       atr_value_type_t want) {
  atr_value_t v = {0};
  if (db->store->ops->rows_get(rows, col, want, &v) != 0)
    v.type = ATR_VAL_NULL;
  return v;
}

bool atr_db_is_null(atr_db_t *db, atr_db_rows_t *rows, size_t col) {
  /* A NULL column reads as ATR_VAL_NULL whatever is asked for; any other
   * column either converts or fails, both meaning "not NULL". */
  atr_value_t v = {0};
  return db->store->ops->rows_get(rows, col, ATR_VAL_TEXT, &v) == 0 &&
         v.type == ATR_VAL_NULL;
}

int64_t atr_db_get_int(atr_db_t *db, atr_db_rows_t *rows, size_t col) {
  atr_value_t v = get(db, rows, col, ATR_VAL_INT);
  return v.type == ATR_VAL_INT ? v.v.i : 0;
}

double atr_db_get_double(atr_db_t *db, atr_db_rows_t *rows, size_t col) {
  atr_value_t v = get(db, rows, col, ATR_VAL_DOUBLE);
  return v.type == ATR_VAL_DOUBLE ? v.v.d : 0.0;
}

bool atr_db_get_bool(atr_db_t *db, atr_db_rows_t *rows, size_t col) {
  atr_value_t v = get(db, rows, col, ATR_VAL_BOOL);
  return v.type == ATR_VAL_BOOL && v.v.b;
}

int64_t atr_db_get_time(atr_db_t *db, atr_db_rows_t *rows, size_t col) {
  atr_value_t v = get(db, rows, col, ATR_VAL_TIME);
  return v.type == ATR_VAL_TIME ? v.v.time_us : 0;
}

const char *atr_db_get_text(atr_db_t *db, atr_db_rows_t *rows, size_t col) {
  atr_value_t v = get(db, rows, col, ATR_VAL_TEXT);
  return v.type == ATR_VAL_TEXT ? v.v.bytes.ptr : NULL;
}

const void *atr_db_get_blob(atr_db_t *db, atr_db_rows_t *rows, size_t col,
                            size_t *len) {
  atr_value_t v = get(db, rows, col, ATR_VAL_BLOB);
  *len = v.type == ATR_VAL_BLOB ? v.v.bytes.len : 0;
  return v.type == ATR_VAL_BLOB ? v.v.bytes.ptr : NULL;
}

void atr_db_rows_close(atr_db_t *db, atr_db_rows_t *rows) {
  if (rows)
    db->store->ops->rows_close(rows);
}

/* One row, one column, read as `want`. */
static int query_one(atr_db_t *db, const char *sql, const atr_value_t *params,
                     size_t nparams, atr_value_type_t want, atr_value_t *out,
                     char **owned, char **err) {
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, sql, params, nparams, &rows, err);
  if (rc != 0)
    return rc;
  rc = atr_db_next(db, rows, err);
  if (rc == 1) {
    *out = get(db, rows, 0, want);
    if (want == ATR_VAL_TEXT && out->type == ATR_VAL_TEXT)
      *owned = strndup(out->v.bytes.ptr, out->v.bytes.len);
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

int atr_db_query_int(atr_db_t *db, const char *sql, const atr_value_t *params,
                     size_t nparams, int64_t *out, char **err) {
  atr_value_t v = {0};
  int rc = query_one(db, sql, params, nparams, ATR_VAL_INT, &v, NULL, err);
  *out = rc == 0 && v.type == ATR_VAL_INT ? v.v.i : 0;
  return rc;
}

int atr_db_query_text(atr_db_t *db, const char *sql, const atr_value_t *params,
                      size_t nparams, char **out, char **err) {
  atr_value_t v = {0};
  *out = NULL;
  return query_one(db, sql, params, nparams, ATR_VAL_TEXT, &v, out, err);
}

int atr_db_begin(atr_db_t *db, atr_tx_mode_t mode, char **err) {
  int rc = db->store->ops->begin(db->conn, mode, err);
  db->in_tx = rc == 0;
  return rc;
}

int atr_db_commit(atr_db_t *db, char **err) {
  int rc = db->store->ops->commit(db->conn, err);
  if (rc != 0)
    db->store->ops->rollback(db->conn);
  db->in_tx = false;
  return rc;
}

void atr_db_rollback(atr_db_t *db) {
  db->store->ops->rollback(db->conn);
  db->in_tx = false;
}

static void backoff(int attempt) {
  struct timespec ts = {.tv_nsec = (long)(5 << attempt) * 1000000L};
  nanosleep(&ts, NULL);
}

static int tx_once(atr_db_t *db, atr_tx_mode_t mode, atr_db_tx_fn fn,
                   void *user_data, char **err) {
  int rc = atr_db_begin(db, mode, err);
  if (rc != 0)
    return rc;
  rc = fn(db, user_data, err);
  if (rc != 0) {
    atr_db_rollback(db);
    return rc;
  }
  return atr_db_commit(db, err);
}

int atr_db_tx(atr_store_t *store, atr_tx_mode_t mode, atr_db_tx_fn fn,
              void *user_data, char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  for (int attempt = 0;; attempt++) {
    char *why = NULL;
    rc = tx_once(&db, mode, fn, user_data, &why);
    bool retry = (rc == ATR_EBUSY || rc == ATR_EAGAIN) && attempt < 5;
    if (!retry) {
      if (err)
        *err = why;
      else
        free(why);
      break;
    }
    atr_log(ATR_LOG_DEBUG, "db", "retrying a transaction: %s",
            why ? why : atr_strerror(rc));
    free(why);
    backoff(attempt);
  }
  atr_db_close(&db);
  return rc;
}

int64_t atr_db_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void atr_db_new_uuid(char out[37]) {
  uuid_t raw;
  uuid_generate_random(raw);
  uuid_unparse_lower(raw, out);
}

int atr_db_publish(atr_store_t *store, const char *channel, const char *payload,
                   char **err) {
  if (!store->ops->publish)
    return ATR_ENOTSUP;
  return store->ops->publish(store->ctx, channel, payload, err);
}

int atr_db_subscribe(atr_store_t *store, const char *channel, atr_db_sub_fn fn,
                     void *user_data, atr_db_sub_t **out, char **err) {
  if (!store->ops->subscribe)
    return ATR_ENOTSUP;
  return store->ops->subscribe(store->ctx, channel, fn, user_data, out, err);
}

void atr_db_unsubscribe(atr_store_t *store, atr_db_sub_t *sub) {
  if (sub && store->ops->unsubscribe)
    store->ops->unsubscribe(store->ctx, sub);
}

bool atr_db_unique_violation(int rc, const char *err) {
  return (rc == ATR_ECONSTRAINT || rc == ATR_EEXIST) && err &&
         (strcasestr(err, "unique") || strcasestr(err, "duplicate key"));
}
