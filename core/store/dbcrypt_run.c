/* core/store/dbcrypt_run.c — `atrium db encrypt rotate|decrypt|delete`
 * (dbcrypt.h): every sealed column walked in small batches, each its own
 * short transaction, so that a running server keeps working meanwhile. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "dbcrypt.h"

/* A sealed column: its table's key (one or two columns), the value, the
 * column of its key id, and which values in clear are secrets. */
typedef struct column {
  const char *name;
  const char *table, *k1, *k2, *col, *key_col, *aad;
  bool blob;
  const char *clear; /* the secrets still in clear (rotate seals them) */
  const char *drop;  /* what delete does, with the key as parameters */
} column_t;

static const column_t columns[] = {
    {"sensitive parameter values", "workspace_build_parameters",
     "workspace_build_id", "name", "value", "value_key_id", ATR_DBCRYPT_PARAM,
     false,
     "value_key_id IS NULL AND value <> '' AND EXISTS (SELECT 1 FROM "
     "workspace_builds b JOIN template_version_parameters tp ON "
     "tp.template_version_id = b.template_version_id WHERE b.id = "
     "workspace_build_parameters.workspace_build_id AND tp.name = "
     "workspace_build_parameters.name AND tp.sensitive)",
     "DELETE FROM workspace_build_parameters WHERE workspace_build_id = ? "
     "AND name = ?"},
    {"provisioner states", "workspace_builds", "id", NULL, "provisioner_state",
     "provisioner_state_key_id", ATR_DBCRYPT_STATE, true,
     "provisioner_state_key_id IS NULL AND provisioner_state IS NOT NULL AND "
     "LENGTH(provisioner_state) > 0",
     "UPDATE workspace_builds SET provisioner_state = NULL, "
     "provisioner_state_key_id = NULL WHERE id = ?"},
    {"sensitive resource metadata", "workspace_resource_metadata",
     "workspace_resource_id", "key", "value", "value_key_id",
     ATR_DBCRYPT_METADATA, false,
     "value_key_id IS NULL AND sensitive AND value IS NOT NULL AND value <> ''",
     "UPDATE workspace_resource_metadata SET value = NULL, value_key_id = NULL "
     "WHERE workspace_resource_id = ? AND key = ?"},
    {"OAuth access tokens", "user_links", "user_id", "login_type",
     "oauth_access_token", "oauth_access_token_key_id",
     ATR_DBCRYPT_ACCESS_TOKEN, false,
     "oauth_access_token_key_id IS NULL AND oauth_access_token <> ''",
     "UPDATE user_links SET oauth_access_token = '', oauth_access_token_key_id "
     "= NULL WHERE user_id = ? AND login_type = ?"},
    {"OAuth refresh tokens", "user_links", "user_id", "login_type",
     "oauth_refresh_token", "oauth_refresh_token_key_id",
     ATR_DBCRYPT_REFRESH_TOKEN, false,
     "oauth_refresh_token_key_id IS NULL AND oauth_refresh_token <> ''",
     "UPDATE user_links SET oauth_refresh_token = '', "
     "oauth_refresh_token_key_id = NULL WHERE user_id = ? AND login_type = ?"},
    /* Deleted with its key lost, a workspace gets a new host key the next
     * time its agent fetches the manifest (users see a changed host). */
    {"workspace SSH host keys", "workspace_ssh_keys", "workspace_id", NULL,
     "private_key", "private_key_key_id", ATR_DBCRYPT_SSH_HOST_KEY, false,
     "private_key_key_id IS NULL",
     "DELETE FROM workspace_ssh_keys WHERE workspace_id = ?"},
};
#define NCOLUMNS (sizeof columns / sizeof columns[0])
_Static_assert(NCOLUMNS <= sizeof((atr_dbcrypt_counts_t *)0)->values /
                               sizeof(long long),
               "atr_dbcrypt_counts_t has a count for every sealed column");

/* One row of a batch, copied out of the result. */
typedef struct row {
  char *k1, *k2, *key_id;
  void *data;
  size_t len;
} row_t;

/* One pass walks the table in key order (after1, after2: the last key of
 * the batch before, NULL at the start), so a batch never scans the rows
 * done before it; passes repeat until one finds nothing, which also
 * catches a row a server changed between the read and the write. */
typedef struct batch {
  const column_t *col;
  atr_dbcrypt_op_t op;
  int limit;
  long long found, changed;
  char *after1, *after2, *last1, *last2;
} batch_t;

static void rows_free(row_t *r, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(r[i].k1);
    free(r[i].k2);
    free(r[i].key_id);
    free(r[i].data);
  }
  free(r);
}

static char *dup_text(atr_db_t *db, atr_db_rows_t *rows, size_t i) {
  const char *s = atr_db_get_text(db, rows, i);
  return s ? strdup(s) : NULL;
}

/* The batch's query, its parameters into p (at most 4) and *np. */
static char *batch_sql(const batch_t *b, const char *primary, atr_value_t *p,
                       size_t *np) {
  const column_t *c = b->col;
  bool rotate = b->op == ATR_DBCRYPT_ROTATE;
  /* Rotate: under another key than the primary, or a secret in clear. */
  char *where = NULL, *cursor = NULL, *sql = NULL;
  if ((rotate ? asprintf(&where, "(%s <> ?) OR (%s)", c->key_col, c->clear)
              : asprintf(&where, "%s IS NOT NULL", c->key_col)) < 0)
    where = NULL;
  *np = 0;
  if (rotate)
    p[(*np)++] = atr_v_text(primary);
  int clen = !b->after1 ? ((cursor = strdup("1 = 1")) ? 0 : -1)
             : c->k2 ? asprintf(&cursor, "%s > ? OR (%s = ? AND %s > ?)", c->k1,
                                c->k1, c->k2)
                     : asprintf(&cursor, "%s > ?", c->k1);
  if (clen < 0)
    cursor = NULL;
  if (b->after1) {
    p[(*np)++] = atr_v_text(b->after1);
    if (c->k2) {
      p[(*np)++] = atr_v_text(b->after1);
      p[(*np)++] = atr_v_text(b->after2);
    }
  }
  if (!where || !cursor ||
      asprintf(&sql,
               "SELECT %s, %s, %s, %s FROM %s WHERE (%s) AND (%s) ORDER BY "
               "%s%s%s LIMIT %d",
               c->k1, c->k2 ? c->k2 : "NULL", c->col, c->key_col, c->table,
               where, cursor, c->k1, c->k2 ? ", " : "", c->k2 ? c->k2 : "",
               b->limit) < 0)
    sql = NULL;
  free(where);
  free(cursor);
  return sql;
}

static int select_batch(atr_db_t *db, batch_t *b, row_t **out, size_t *n,
                        char **err) {
  const column_t *c = b->col;
  atr_value_t p[4];
  size_t np = 0;
  char *sql = batch_sql(b, atr_dbcrypt_key_id(db->store->crypt, 0), p, &np);
  if (!sql)
    return ATR_ENOMEM;
  atr_db_rows_t *rows = NULL;
  row_t *r = calloc((size_t)b->limit, sizeof *r);
  int rc = r ? atr_db_query(db, sql, p, np, &rows, err) : ATR_ENOMEM;
  size_t i = 0;
  while (rc == 0 && i < (size_t)b->limit &&
         (rc = atr_db_next(db, rows, err)) == 1) {
    const void *d = c->blob ? atr_db_get_blob(db, rows, 2, &r[i].len)
                            : atr_db_get_text(db, rows, 2);
    if (d && !c->blob)
      r[i].len = strlen(d);
    r[i].k1 = dup_text(db, rows, 0);
    r[i].k2 = dup_text(db, rows, 1);
    r[i].key_id = dup_text(db, rows, 3);
    r[i].data = malloc(r[i].len + 1);
    if (r[i].data && d)
      memcpy(r[i].data, d, r[i].len);
    i++;
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  free(sql);
  *out = r;
  *n = i;
  return rc < 0 ? rc : 0;
}

/* The row's new value: sealed under the primary key (rotate) or in clear
 * (decrypt). */
static int rewrite(atr_db_t *db, const batch_t *b, const row_t *r,
                   int64_t *changes, char **err) {
  const column_t *c = b->col;
  char *plain = NULL;
  size_t len = 0;
  atr_sealed_t s = {0};
  int rc = atr_dbcrypt_read(db->store, c->aad, r->data, r->len, r->key_id,
                            &plain, &len, err);
  if (rc == 0)
    rc = atr_sealed_make(db->store, c->aad, b->op == ATR_DBCRYPT_ROTATE, plain,
                         len, &s, err);
  char *sql = NULL;
  /* Only if nobody wrote the row since it was read. */
  if (rc == 0 &&
      asprintf(&sql,
               "UPDATE %s SET %s = ?, %s = ? WHERE %s = ?%s%s%s AND %s = ?",
               c->table, c->col, c->key_col, c->k1, c->k2 ? " AND " : "",
               c->k2 ? c->k2 : "", c->k2 ? " = ?" : "", c->col) < 0)
    rc = ATR_ENOMEM;
  atr_value_t old =
      c->blob ? atr_v_blob(r->data, r->len) : atr_v_textn(r->data, r->len);
  atr_value_t p[] = {c->blob ? atr_sealed_blob(&s) : atr_sealed_text(&s),
                     atr_sealed_key(&s), atr_v_text(r->k1),
                     c->k2 ? atr_v_text(r->k2) : old, old};
  if (rc == 0)
    rc = atr_db_exec(db, sql, p, c->k2 ? 5 : 4, changes, err);
  free(sql);
  atr_sealed_free(&s);
  free(plain);
  return rc;
}

static int drop(atr_db_t *db, const batch_t *b, const row_t *r,
                int64_t *changes, char **err) {
  atr_value_t p[] = {atr_v_text(r->k1), atr_v_text(r->k2)};
  return atr_db_exec(db, b->col->drop, p, b->col->k2 ? 2 : 1, changes, err);
}

static int batch_tx(atr_db_t *db, void *ud, char **err) {
  batch_t *b = ud;
  row_t *r = NULL;
  size_t n = 0;
  b->found = b->changed = 0;
  int rc = select_batch(db, b, &r, &n, err);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    int64_t changes = 0;
    if (!r[i].data)
      rc = ATR_ENOMEM;
    else if (b->op == ATR_DBCRYPT_DELETE)
      rc = drop(db, b, &r[i], &changes, err);
    else
      rc = rewrite(db, b, &r[i], &changes, err);
    b->changed += changes;
  }
  b->found = (long long)n;
  free(b->last1);
  free(b->last2);
  b->last1 = n ? r[n - 1].k1 : NULL;
  b->last2 = n ? r[n - 1].k2 : NULL;
  if (n)
    r[n - 1].k1 = r[n - 1].k2 = NULL;
  rows_free(r, n);
  return rc;
}

/* The next batch starts after the last row of this one (NULL: the next
 * pass starts at the beginning). */
static void advance(batch_t *b) {
  free(b->after1);
  free(b->after2);
  b->after1 = b->last1;
  b->after2 = b->last2;
  b->last1 = b->last2 = NULL;
}

/* Passes of batches over one column, until a pass finds nothing. */
static int run_column(atr_store_t *store, batch_t *b, long long *count,
                      char **err) {
  long long in_pass = 0;
  int rc = 0;
  for (int passes = 0; rc == 0;) {
    rc = atr_db_tx(store, ATR_TX_WRITE, batch_tx, b, err);
    if (rc != 0)
      break;
    *count += b->changed;
    in_pass += b->found;
    advance(b);
    if (b->found > 0)
      continue;
    if (in_pass == 0)
      break;
    in_pass = 0;
    /* Each pass after the first redoes only rows a server changed
     * meanwhile: a few are a busy server, a hundred passes a bug. */
    if (++passes > 100) {
      if (asprintf(err, "the %s of %s keep changing; try again", b->col->col,
                   b->col->table) < 0)
        *err = NULL;
      rc = ATR_EAGAIN;
    }
  }
  free(b->after1);
  free(b->after2);
  free(b->last1);
  free(b->last2);
  return rc;
}

/* ---- revocation ------------------------------------------------------------ */

int atr__dbcrypt_uses(atr_db_t *db, const char *id, int64_t *total,
                      char **err) {
  *total = 0;
  atr_value_t p[] = {atr_v_text(id)};
  for (size_t i = 0; i < NCOLUMNS; i++) {
    char *sql = NULL;
    int64_t n = 0;
    if (asprintf(&sql, "SELECT COUNT(*) FROM %s WHERE %s = ?", columns[i].table,
                 columns[i].key_col) < 0)
      return ATR_ENOMEM;
    int rc = atr_db_query_int(db, sql, p, 1, &n, err);
    free(sql);
    if (rc != 0)
      return rc;
    *total += n;
  }
  return 0;
}

typedef struct revoke {
  const char *keep; /* the primary after a rotation, else NULL */
  atr_dbcrypt_counts_t *counts;
} revoke_t;

static int revoke_tx(atr_db_t *db, void *ud, char **err) {
  revoke_t *v = ud;
  char ids[ATR_DBCRYPT_MAX_KEYS * 4][ATR_DBCRYPT_KEY_ID_LEN + 1];
  size_t n = 0;
  atr_db_rows_t *rows = NULL;
  v->counts->nrevoked = 0;
  int rc =
      atr_db_query(db, "SELECT key_id FROM dbcrypt_keys WHERE state = 'active'",
                   NULL, 0, &rows, err);
  while (rc == 0 && n < sizeof ids / sizeof ids[0] &&
         (rc = atr_db_next(db, rows, err)) == 1) {
    snprintf(ids[n++], sizeof ids[0], "%.7s", atr_db_get_text(db, rows, 0));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  for (size_t i = 0; rc >= 0 && i < n; i++) {
    int64_t total = 0;
    if (v->keep && strcmp(ids[i], v->keep) == 0)
      continue;
    rc = atr__dbcrypt_uses(db, ids[i], &total, err);
    atr_value_t p[] = {atr_v_time(atr_db_now_us()), atr_v_text(ids[i])};
    if (rc == 0 && total == 0)
      rc = atr_db_exec(db,
                       "UPDATE dbcrypt_keys SET state = 'revoked', revoked_at "
                       "= ? WHERE key_id = ?",
                       p, 2, NULL, err);
    if (rc == 0 && total == 0 && v->counts->nrevoked < ATR_DBCRYPT_MAX_KEYS)
      snprintf(v->counts->revoked[v->counts->nrevoked++],
               sizeof v->counts->revoked[0], "%.7s", ids[i]);
  }
  return rc < 0 ? rc : 0;
}

int atr_dbcrypt_run(atr_store_t *store, atr_dbcrypt_op_t op, int batch,
                    atr_dbcrypt_counts_t *counts, char **err) {
  *counts = (atr_dbcrypt_counts_t){.n = NCOLUMNS};
  if (op != ATR_DBCRYPT_DELETE && !store->crypt) {
    if (asprintf(err, "no database encryption key is configured (%s)",
                 "database.encryption_keys, database.encryption_key_file") < 0)
      *err = NULL;
    return ATR_ECONFIG;
  }
  for (size_t i = 0; i < NCOLUMNS; i++) {
    counts->names[i] = columns[i].name;
    batch_t b = {
        .col = &columns[i], .op = op, .limit = batch > 0 ? batch : 100};
    int rc = run_column(store, &b, &counts->values[i], err);
    if (rc != 0)
      return rc;
  }
  revoke_t v = {op == ATR_DBCRYPT_ROTATE ? atr_dbcrypt_key_id(store->crypt, 0)
                                         : NULL,
                counts};
  return atr_db_tx(store, ATR_TX_WRITE, revoke_tx, &v, err);
}
