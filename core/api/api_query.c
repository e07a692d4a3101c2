/* core/api/api_query.c — a row or a page of rows answered (api.h). */
#include <stdio.h>
#include <stdlib.h>

#include "api.h"
#include "atrium/error.h"

json_t *atr_api_load(atr_api_req_t *r, const atr_select_t *s, const char *where,
                     const char *param, const char *not_found) {
  const char *id = atr_api_param(r, param);
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  atr_db_t db;
  char *err = NULL;
  json_t *out = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_select_one(&db, s, where, p, 1, &out, &err);
    atr_db_close(&db);
  }
  if (rc == ATR_ENOENT)
    atr_api_error(r, 404, not_found, id);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  free(err);
  return rc == 0 ? out : NULL;
}

int atr_api_list_page(atr_api_req_t *r, const atr_select_t *s,
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
    rc = atr_select_list(&db, s, where, p, 3, &a, &err);
    atr_db_close(&db);
  }
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, 200, a);
  free(err);
  return 0;
}
