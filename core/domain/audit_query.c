/* core/domain/audit_query.c — reading the audit log (see audit_query.h). */
#include "audit_query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "rows.h"
#include "users_internal.h"

#define NIL_UUID "00000000-0000-0000-0000-000000000000"
#define VALUE_MAX 64 /* longest filter value */

#define MAX_PARAMS 12

typedef struct where {
  char sql[600];
  atr_value_t p[MAX_PARAMS];
  size_t n;
  char like[VALUE_MAX * 2 + 32];
} where_t;

static void add(where_t *w, const char *clause, atr_value_t v) {
  size_t used = strlen(w->sql);
  snprintf(w->sql + used, sizeof w->sql - used, "%s%s",
           w->n ? " AND " : " WHERE ", clause);
  w->p[w->n++] = v;
}

/* additional_fields is written compact by audit.c: {"resource_id":"..."}.
 * '!' escapes LIKE's '_' (the only wildcard a plain id can hold). */
static void add_plain_resource_id(where_t *w, const char *id) {
  add(w, "a.resource_id = ?", atr_v_text(NIL_UUID));
  size_t o = (size_t)snprintf(w->like, sizeof w->like, "%%\"resource_id\":\"");
  for (const char *c = id; *c && o + 4 < sizeof w->like; c++) {
    if (*c == '_' || *c == '%' || *c == '!')
      w->like[o++] = '!';
    w->like[o++] = *c;
  }
  snprintf(w->like + o, sizeof w->like - o, "\"%%");
  size_t used = strlen(w->sql);
  snprintf(w->sql + used, sizeof w->sql - used,
           " AND a.additional_fields LIKE ? ESCAPE '!'");
  w->p[w->n++] = atr_v_text(w->like);
}

static void build_where(const atr_audit_filter_t *f, where_t *w) {
  w->sql[0] = '\0';
  w->n = 0;
  if (f->action[0])
    add(w, "a.action = ?", atr_v_text(f->action));
  if (f->resource_type[0])
    add(w, "a.resource_type = ?", atr_v_text(f->resource_type));
  if (f->resource_id[0] && atr_uuid_valid(f->resource_id))
    add(w, "a.resource_id = ?", atr_v_text(f->resource_id));
  else if (f->resource_id[0])
    add_plain_resource_id(w, f->resource_id);
  if (f->username[0])
    add(w, "lower(u.username) = lower(?)", atr_v_text(f->username));
  if (f->status_code)
    add(w, "a.status_code = ?", atr_v_int(f->status_code));
  if (f->has_since)
    add(w, "a.time >= ?", atr_v_time(f->since_us));
  if (f->has_until)
    add(w, "a.time <= ?", atr_v_time(f->until_us));
}

static json_t *text_json(const char *s) {
  return s ? json_string(s) : json_null();
}

/* A stored JSON object; {} if it does not parse (never expected). */
static json_t *object_json(const char *s) {
  json_t *j = s ? json_loads(s, 0, NULL) : NULL;
  if (json_is_object(j))
    return j;
  json_decref(j);
  return json_object();
}

enum {
  C_ID,
  C_TIME,
  C_USER_ID,
  C_USERNAME,
  C_ORG,
  C_IP,
  C_AGENT,
  C_RTYPE,
  C_RID,
  C_RTARGET,
  C_ACTION,
  C_DIFF,
  C_STATUS,
  C_EXTRA,
  C_REQUEST
};

static json_t *row_json(atr_db_t *db, atr_db_rows_t *rows) {
#define TEXT(c) atr_db_get_text(db, rows, (c))
  json_t *user = TEXT(C_USERNAME)
                     ? json_pack("{s:s, s:s}", "id", TEXT(C_USER_ID),
                                 "username", TEXT(C_USERNAME))
                     : json_null();
  return json_pack(
      "{s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:s, s:s, s:s, s:o, s:I, s:o, "
      "s:s}",
      "id", TEXT(C_ID), "time",
      atr_time_json(atr_db_get_time(db, rows, C_TIME)), "user", user,
      "organization_id", text_json(TEXT(C_ORG)), "ip", text_json(TEXT(C_IP)),
      "user_agent", text_json(TEXT(C_AGENT)), "resource_type", TEXT(C_RTYPE),
      "resource_id", TEXT(C_RID), "resource_target", TEXT(C_RTARGET), "action",
      TEXT(C_ACTION), "diff", object_json(TEXT(C_DIFF)), "status_code",
      (json_int_t)atr_db_get_int(db, rows, C_STATUS), "additional_fields",
      object_json(TEXT(C_EXTRA)), "request_id", TEXT(C_REQUEST));
#undef TEXT
}

static int read_page(atr_db_t *db, const where_t *w,
                     const atr_audit_filter_t *f, json_t *list, char **err) {
  char sql[1200];
  snprintf(sql, sizeof sql,
           "SELECT a.id, a.time, a.user_id, u.username, a.organization_id, "
           "a.ip, a.user_agent, a.resource_type, a.resource_id, "
           "a.resource_target, a.action, a.diff, a.status_code, "
           "a.additional_fields, a.request_id "
           "FROM audit_logs a LEFT JOIN users u ON u.id = a.user_id%s "
           "ORDER BY a.time DESC, a.id DESC LIMIT ? OFFSET ?",
           w->sql);
  atr_value_t p[MAX_PARAMS + 2];
  memcpy(p, w->p, w->n * sizeof p[0]);
  p[w->n] = atr_v_int(f->limit > ATR_AUDIT_MAX_LIMIT ? ATR_AUDIT_MAX_LIMIT
                                                     : f->limit);
  p[w->n + 1] = atr_v_int(f->offset > 0 ? f->offset : 0);
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, sql, p, w->n + 2, &rows, err);
  if (rc != 0)
    return rc;
  while ((rc = atr_db_next(db, rows, err)) == 1) {
    json_t *row = row_json(db, rows);
    if (!row) {
      *err = strdup("an audit_logs row has a NULL in a NOT NULL column");
      rc = ATR_EIO;
      break;
    }
    json_array_append_new(list, row);
  }
  atr_db_rows_close(db, rows);
  return rc;
}

static int run_query(atr_store_t *store, const atr_audit_filter_t *f,
                     json_t **out, char **err) {
  where_t w;
  build_where(f, &w);
  char count_sql[800];
  snprintf(count_sql, sizeof count_sql,
           "SELECT COUNT(*) FROM audit_logs a LEFT JOIN users u "
           "ON u.id = a.user_id%s",
           w.sql);
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  int64_t count = 0;
  json_t *list = json_array();
  rc = atr_db_begin(&db, ATR_TX_READ, err);
  if (rc == 0)
    rc = atr_db_query_int(&db, count_sql, w.p, w.n, &count, err);
  if (rc == 0 && f->limit > 0)
    rc = read_page(&db, &w, f, list, err);
  atr_db_close(&db); /* only read: rolling back is committing */
  if (rc != 0) {
    json_decref(list);
    return rc;
  }
  *out =
      json_pack("{s:o, s:I}", "audit_logs", list, "count", (json_int_t)count);
  return 0;
}

static int may_read(const atr_domain_t *dom, const atr_actor_t *actor,
                    atr_fault_t *fault) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_AUDIT_LOG, ATR_ACT_READ, false,
                      fault);
  else
    atr_fault_internal(fault, rc, err);
  atr_db_close(&db);
  free(err);
  return rc;
}

int atr_audit_list(const atr_domain_t *dom, const atr_actor_t *actor,
                   const atr_audit_filter_t *f, json_t **out,
                   atr_fault_t *fault) {
  *out = NULL;
  int rc = may_read(dom, actor, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = run_query(dom->store, f, out, &err);
  /* ATR_EINVAL from storage is a bad query of ours, not the caller's */
  if (rc != 0)
    atr_fault_internal(fault, rc == ATR_EINVAL ? ATR_EIO : rc, err);
  free(err);
  return rc == ATR_EINVAL ? ATR_EIO : rc;
}
