/* core/domain/users_common.c — see users_internal.h. */
#include "users_internal.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrium/error.h"
#include "rows.h"
#include "session.h"

/* ---- finding users ------------------------------------------------------ */

int atr__user_find(atr_db_t *db, const atr_actor_t *actor, const char *who,
                   atr__user_ref_t *t, char **err) {
  if (who && strcmp(who, "me") == 0)
    who = actor ? actor->user_id : "";
  atr_value_t p[] = {atr_v_uuid_or_null(who), atr_v_text(who)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT id, username, status FROM users WHERE "
                        "deleted = FALSE AND (id = ? OR lower(username) = "
                        "lower(?))",
                        p, 2, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    snprintf(t->id, sizeof t->id, "%s", atr_row_text(db, rows, 0));
    snprintf(t->username, sizeof t->username, "%s", atr_row_text(db, rows, 1));
    snprintf(t->status, sizeof t->status, "%s", atr_row_text(db, rows, 2));
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

int atr__user_target(atr_db_t *db, const atr_actor_t *actor, const char *who,
                     atr__user_ref_t *t, atr_fault_t *fault) {
  char *err = NULL;
  int rc = atr__user_find(db, actor, who, t, &err);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "User not found.", "%s",
                  who && strcmp(who, "me") == 0 && actor ? actor->user_id
                                                         : (who ? who : ""));
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

json_t *atr__role_names(uint32_t roles) {
  json_t *a = json_array();
  for (uint32_t bit = 1; bit <= ATR_ROLE_AUDITOR; bit <<= 1)
    if ((roles & bit) && atr_role_name(bit))
      json_array_append_new(a, json_string(atr_role_name(bit)));
  return a;
}

static json_t *roles_json(uint32_t roles) {
  json_t *a = json_array();
  for (uint32_t bit = 1; bit <= ATR_ROLE_AUDITOR; bit <<= 1)
    if ((roles & bit) && atr_role_name(bit))
      json_array_append_new(a, json_pack("{s:s}", "name", atr_role_name(bit)));
  return a;
}

static json_t *user_row(atr_db_t *db, atr_db_rows_t *rows) {
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s}", "id",
      atr_row_text(db, rows, 0), "username", atr_row_text(db, rows, 1), "email",
      atr_row_text(db, rows, 2), "name", atr_row_text(db, rows, 3),
      "created_at", atr_time_json(atr_db_get_time(db, rows, 4)), "updated_at",
      atr_time_json(atr_db_get_time(db, rows, 5)), "last_seen_at",
      atr_time_json(atr_db_get_time(db, rows, 6)), "status",
      atr_row_text(db, rows, 7), "login_type", atr_row_text(db, rows, 8),
      "avatar_url", atr_row_text(db, rows, 9));
}

static const atr_select_t users_select = {
    "SELECT id, username, email, name, created_at, updated_at, "
    "last_seen_at, status, login_type, avatar_url FROM users ",
    user_row, NULL};

int atr__user_json(atr_db_t *db, const char *user_id, json_t **out,
                   char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(user_id), atr_v_text(user_id)};
  uint32_t roles = 0;
  *out = NULL;
  int rc = atr_select_one(db, &users_select,
                          "WHERE deleted = FALSE AND (id = ? OR "
                          "lower(username) = lower(?))",
                          p, 2, out, err);
  if (rc == ATR_ENOENT && !*err)
    *err = strdup("no such user");
  if (rc == 0)
    rc = atr_user_roles(db, atr_json_str(*out, "id"), &roles, err);
  if (rc == 0) {
    json_object_set_new(*out, "roles", roles_json(roles));
  } else {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

/* ---- permission and faults ------------------------------------------------ */

int atr__allowed(atr_db_t *db, const atr_actor_t *actor, const char *org_id,
                 atr_resource_t res, atr_action_t act, bool self,
                 atr_fault_t *fault) {
  char *err = NULL;
  int rc = atr_actor_allowed(db, actor, org_id, res, act, self, &err);
  if (rc == ATR_EPERM)
    atr_fault_set(fault, rc, "Forbidden.", "%s", err ? err : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

/* Mirrors atr_api_fault() and atr_api_fail(): an answer with a message for
 * the user by its code, an internal error by the storage mapping. */
/* ---- passwords and names ---------------------------------------------------- */

const atr_auth_ops_t *atr__password_auth(const atr_domain_t *dom, void **ctx) {
  for (size_t i = 0; dom->loader && i < dom->loader->nplugins; i++) {
    atr_handle_t *h = dom->loader->plugins[i];
    if (h->state != ATR_PLUGIN_RUNNING || h->desc->kind != ATR_KIND_AUTH)
      continue;
    const atr_auth_ops_t *ops = h->desc->ops;
    if (strcmp(ops->method, "password") == 0 && ops->verify_secret) {
      *ctx = h->ctx;
      return ops;
    }
  }
  return NULL;
}

bool atr__username_valid(const char *s) {
  /* names that are also paths under /api/v2/users/ */
  static const char *const reserved[] = {"first",       "login", "logout",
                                         "authmethods", "me",    NULL};
  for (const char *const *r = reserved; s && *r; r++)
    if (strcasecmp(s, *r) == 0)
      return false;
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 32 || s[0] == '-' || s[n - 1] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '-') ||
        (s[i] == '-' && s[i + 1] == '-'))
      return false;
  return true;
}

void atr__secret_free(char *s) {
  if (s)
    OPENSSL_cleanse(s, strlen(s));
  free(s);
}
