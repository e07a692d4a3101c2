/* core/api_query.c — rows of the store as JSON answers (api.h). */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "atrium/error.h"

const char *atr_api_col(atr_db_t *db, atr_db_rows_t *rows, size_t i) {
  const char *s = atr_db_get_text(db, rows, i);
  return s ? s : "";
}

int atr_api_query_list(atr_db_t *db, const atr_api_select_t *s,
                       const char *where, const atr_value_t *p, size_t n,
                       json_t **out, char **err) {
  char *sql = NULL;
  *out = NULL;
  if (asprintf(&sql, "%s%s", s->sql, where) < 0)
    return ATR_ENOMEM;
  atr_db_rows_t *rows = NULL;
  json_t *a = json_array();
  int rc = atr_db_query(db, sql, p, n, &rows, err);
  free(sql);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_array_append_new(a, s->row(db, rows));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  size_t i;
  json_t *item;
  json_array_foreach(a, i, item) {
    if (rc == 0 && s->complete)
      rc = s->complete(db, item, err);
  }
  if (rc < 0) {
    json_decref(a);
    return rc;
  }
  *out = a;
  return 0;
}

int atr_api_query_one(atr_db_t *db, const atr_api_select_t *s,
                      const char *where, const atr_value_t *p, size_t n,
                      json_t **out, char **err) {
  json_t *a = NULL;
  int rc = atr_api_query_list(db, s, where, p, n, &a, err);
  if (rc == 0 && json_array_size(a) == 0)
    rc = ATR_ENOENT;
  if (rc == 0)
    *out = json_incref(json_array_get(a, 0));
  json_decref(a);
  return rc;
}

int atr_api_query_object(atr_db_t *db, const char *sql, const atr_value_t *p,
                         size_t n, json_t *into, char **err) {
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, sql, p, n, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_object_set_new(into, atr_api_col(db, rows, 0),
                        json_string(atr_api_col(db, rows, 1)));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

json_t *atr_api_load(atr_api_req_t *r, const atr_api_select_t *s,
                     const char *where, const char *param,
                     const char *not_found) {
  const char *id = atr_api_param(r, param);
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  atr_db_t db;
  char *err = NULL;
  json_t *out = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_api_query_one(&db, s, where, p, 1, &out, &err);
    atr_db_close(&db);
  }
  if (rc == ATR_ENOENT)
    atr_api_error(r, 404, not_found, id);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  free(err);
  return rc == 0 ? out : NULL;
}

int atr_api_list_page(atr_api_req_t *r, const atr_api_select_t *s,
                      const char *where, const char *id, int64_t def) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, def, &limit, &offset) != 0)
    return 0;
  atr_value_t p[] = {atr_v_text(id), atr_v_int(limit), atr_v_int(offset)};
  atr_db_t db;
  char *err = NULL;
  json_t *a = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_api_query_list(&db, s, where, p, 3, &a, &err);
    atr_db_close(&db);
  }
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, 200, a);
  free(err);
  return 0;
}
