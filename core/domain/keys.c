/* core/domain/keys.c — API tokens (see keys.h). */
#include "keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "rows.h"
#include "session.h"
#include "users_internal.h"

/* Open a connection, find the user and check act on their keys; on
 * failure the connection is closed and the fault says why. */
static int open_owner(const atr_domain_t *dom, const atr_actor_t *actor,
                      const char *who, atr_action_t act, atr_db_t *db,
                      atr__user_ref_t *t, atr_fault_t *fault) {
  char *err = NULL;
  int rc = atr_db_open(dom->store, db, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  if (rc == 0)
    rc = atr__user_target(db, actor, who, t, fault);
  if (rc == 0)
    rc = atr__allowed(db, actor, NULL, ATR_RES_API_KEY, act,
                      strcmp(t->id, actor->user_id) == 0, fault);
  if (rc != 0)
    atr_db_close(db);
  return rc;
}

/* The lifetime in ms, or a validation (the name's comes first). */
static int64_t token_lifetime_ms(const atr_domain_t *dom, const char *name,
                                 int64_t lifetime_s, atr_fault_t *fault) {
  int64_t max_ms = dom->token_max_lifetime_ms, max_s = max_ms / 1000;
  bool given = lifetime_s != ATR_TOKEN_LIFETIME_DEFAULT;
  /* compare in seconds first: a huge value must not overflow the ms */
  int64_t secs = given ? lifetime_s : max_s;
  int64_t ms = secs > 0 && secs <= max_s ? secs * 1000 : -1;
  if (!name || !atr__username_valid(name))
    atr_fault_field(fault, "token_name",
                    "Required: 1 to 32 letters, digits or single hyphens.");
  if (!given && max_s > 0)
    ms = max_ms;
  if (given && ms <= 0)
    atr_fault_field(fault, "lifetime",
                    "Must be a whole number of seconds between 1 and %lld.",
                    (long long)max_s);
  if (atr_fault_has_fields(fault))
    atr_fault_set(fault, ATR_EINVAL, "Validation failed.", "%s", "");
  return ms;
}

int atr_token_create(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *who, const char *name, int64_t lifetime_s,
                     char **key, atr_fault_t *fault) {
  *key = NULL;
  int64_t ms = token_lifetime_ms(dom, name, lifetime_s, fault);
  if (atr_fault_code(fault))
    return atr_fault_code(fault);
  atr_db_t db;
  atr__user_ref_t t;
  int rc = open_owner(dom, actor, who, ATR_ACT_CREATE, &db, &t, fault);
  if (rc != 0)
    return rc;
  atr_db_close(&db);
  if (strcmp(t.id, actor->user_id) != 0)
    return atr_fault_set(fault, ATR_EPERM,
                         "Tokens can only be created by their user.", "%s",
                         t.username);
  char *err = NULL;
  rc = atr_session_create(dom->store, t.id, name, ms, actor->ip, key, &err);
  if (rc == ATR_ECONSTRAINT)
    atr_fault_set(fault, rc, "A token with this name already exists.", "%s",
                  name);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  char key_id[ATR_KEY_ID_LEN + 1] = "";
  if (*key)
    snprintf(key_id, sizeof key_id, "%.*s", ATR_KEY_ID_LEN, *key);
  atr_audit_record(
      dom->store, actor,
      &(atr_audit_entry_t){.action = "create",
                           .resource_type = "api_key",
                           .resource_id = key_id,
                           .resource_target = name,
                           .status_code = rc ? atr_fault_status(fault) : 201});
  free(err);
  return rc;
}

static json_t *token_row(atr_db_t *db, atr_db_rows_t *rows) {
  return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:I}", "id",
                   atr_row_text(db, rows, 0), "user_id",
                   atr_row_text(db, rows, 1), "token_name",
                   atr_row_text(db, rows, 2), "created_at",
                   atr_time_json(atr_db_get_time(db, rows, 3)), "expires_at",
                   atr_time_json(atr_db_get_time(db, rows, 4)), "last_used",
                   atr_time_json(atr_db_get_time(db, rows, 5)),
                   "lifetime_seconds", (json_int_t)atr_db_get_int(db, rows, 6));
}

static const atr_select_t tokens_select = {
    "SELECT id, user_id, token_name, created_at, expires_at, last_used, "
    "lifetime_seconds FROM api_keys ",
    token_row, NULL};

int atr_token_list(const atr_domain_t *dom, const atr_actor_t *actor,
                   const char *who, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  atr__user_ref_t t;
  int rc = open_owner(dom, actor, who, ATR_ACT_READ, &db, &t, fault);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(t.id)};
  char *err = NULL;
  rc = atr_select_list(&db, &tokens_select,
                       "WHERE user_id = ? AND token_name <> '' ORDER BY "
                       "created_at",
                       p, 1, out, &err);
  atr_db_close(&db);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
    atr_fault_internal(fault, rc, err);
  }
  free(err);
  return rc;
}

int atr_token_delete(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *who, const char *key, atr_fault_t *fault) {
  atr_db_t db;
  atr__user_ref_t t;
  int rc = open_owner(dom, actor, who, ATR_ACT_DELETE, &db, &t, fault);
  if (rc != 0)
    return rc;
  /* key is a key's id or a token's name */
  atr_value_t q[] = {atr_v_text(key), atr_v_text(key), atr_v_text(t.id)};
  char *err = NULL, *name = NULL;
  int64_t changed = 0;
  rc = atr_db_query_text(&db,
                         "SELECT token_name FROM api_keys WHERE (id = ? OR "
                         "token_name = ?) AND user_id = ? AND token_name <> ''",
                         q, 3, &name, &err);
  if (rc == 0)
    rc = atr_db_exec(&db,
                     "DELETE FROM api_keys WHERE (id = ? OR token_name = ?) "
                     "AND user_id = ? AND token_name <> ''",
                     q, 3, &changed, &err);
  atr_db_close(&db);
  if (rc == ATR_ENOENT || (rc == 0 && changed == 0))
    rc = atr_fault_set(fault, ATR_ENOENT, "Token not found.", "%s", key);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  atr_audit_record(
      dom->store, actor,
      &(atr_audit_entry_t){.action = "delete",
                           .resource_type = "api_key",
                           .resource_id = key,
                           .resource_target = name,
                           .status_code = rc ? atr_fault_status(fault) : 204});
  free(name);
  free(err);
  return rc;
}
