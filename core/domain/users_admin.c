/* core/domain/users_admin.c — changing users: status, deletion, passwords
 * and site roles (see users.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "session.h"
#include "users.h"
#include "users_internal.h"

/* ---- status and deletion ------------------------------------------------ */

typedef struct change {
  const char *sql;        /* the UPDATE, given (updated_at, id) */
  const char *new_status; /* NULL for a deletion */
  const char *action;     /* the audit action */
  atr_action_t act;       /* what the permission table is asked */
} change_t;

/* The rules before a change: not oneself, and an owner only by an owner. */
static int may_change(atr_db_t *db, const atr_actor_t *actor,
                      const atr__user_ref_t *t, atr_fault_t *fault) {
  if (strcmp(t->id, actor->user_id) == 0)
    return atr_fault_set(fault, ATR_EINVAL, "You cannot do this to yourself.",
                         "Ask another administrator.");
  uint32_t target_roles = 0;
  char *err = NULL;
  atr_user_roles(db, t->id, &target_roles, &err);
  free(err);
  if ((target_roles & ATR_ROLE_OWNER) && !(actor->roles & ATR_ROLE_OWNER))
    return atr_fault_set(fault, ATR_EPERM,
                         "Only an owner may do this to an owner.", "%s",
                         t->username);
  return 0;
}

static int apply_change(atr_db_t *db, const change_t *c,
                        const atr__user_ref_t *t, char **err) {
  atr_value_t p[] = {atr_v_time(atr_db_now_us()), atr_v_text(t->id)};
  int rc = atr_db_exec(db, c->sql, p, 2, NULL, err);
  if (rc == 0 && !c->new_status) {
    atr_value_t k[] = {atr_v_text(t->id)};
    rc = atr_db_exec(db, "DELETE FROM api_keys WHERE user_id = ?", k, 1, NULL,
                     err);
  }
  return rc;
}

static int change_user(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *who, const change_t *c, json_t **out,
                       atr_fault_t *fault) {
  atr_db_t db;
  char *err = NULL;
  atr__user_ref_t t;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_USER, c->act, false, fault);
  if (rc == 0)
    rc = atr__user_target(&db, actor, who, &t, fault);
  if (rc == 0)
    rc = may_change(&db, actor, &t, fault);
  if (rc != 0) {
    atr_db_close(&db);
    free(err);
    return rc;
  }
  rc = apply_change(&db, c, &t, &err);
  if (rc == 0 && out)
    rc = atr__user_json(&db, t.id, out, &err);
  atr_db_close(&db);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  json_t *diff = NULL;
  if (c->new_status)
    atr_audit_diff_add(&diff, "status", t.status, c->new_status, false);
  atr_audit_record(
      dom->store, actor,
      &(atr_audit_entry_t){.action = c->action,
                           .resource_type = "user",
                           .resource_id = t.id,
                           .resource_target = t.username,
                           .diff = diff,
                           .status_code = rc != 0 ? atr_fault_status(fault)
                                          : out   ? 200
                                                  : 204});
  json_decref(diff);
  free(err);
  return rc;
}

int atr_user_delete(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *who, atr_fault_t *fault) {
  static const change_t c = {"UPDATE users SET deleted = TRUE, updated_at = ? "
                             "WHERE id = ?",
                             NULL, "delete", ATR_ACT_DELETE};
  return change_user(dom, actor, who, &c, NULL, fault);
}

int atr_user_suspend(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *who, json_t **out, atr_fault_t *fault) {
  static const change_t c = {"UPDATE users SET status = 'suspended', "
                             "updated_at = ? WHERE id = ?",
                             "suspended", "write", ATR_ACT_UPDATE};
  *out = NULL;
  return change_user(dom, actor, who, &c, out, fault);
}

int atr_user_activate(const atr_domain_t *dom, const atr_actor_t *actor,
                      const char *who, json_t **out, atr_fault_t *fault) {
  static const change_t c = {"UPDATE users SET status = 'active', "
                             "updated_at = ? WHERE id = ?",
                             "active", "write", ATR_ACT_UPDATE};
  *out = NULL;
  return change_user(dom, actor, who, &c, out, fault);
}

/* ---- passwords ------------------------------------------------------------ */

static int read_hash(atr_db_t *db, const char *user_id, char **hash,
                     char **err) {
  atr_value_t p[] = {atr_v_text(user_id)};
  atr_db_rows_t *rows = NULL;
  *hash = NULL;
  int rc = atr_db_query(db, "SELECT hashed_password FROM users WHERE id = ?", p,
                        1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    size_t len = 0;
    const char *h = atr_db_get_blob(db, rows, 0, &len);
    *hash = h ? strndup(h, len) : NULL;
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

/* A user changing their own password proves the old one. */
static bool old_password_ok(atr_db_t *db, const atr_auth_ops_t *ops, void *ctx,
                            bool own, const atr__user_ref_t *t,
                            const char *old) {
  if (!own)
    return true;
  char *hash = NULL, *err = NULL;
  bool ok = old && read_hash(db, t->id, &hash, &err) == 0 && hash &&
            ops->verify_secret(ctx, old, strlen(old), hash, NULL, &err) == 0;
  free(hash);
  free(err);
  return ok;
}

static bool password_check(atr_db_t *db, const atr_auth_ops_t *ops, void *ctx,
                           bool own, const atr__user_ref_t *t, const char *old,
                           const char *password, atr_fault_t *fault) {
  char *why = NULL;
  if (!old_password_ok(db, ops, ctx, own, t, old))
    atr_fault_field(fault, "old_password", "Incorrect or missing.");
  if (!password || !*password)
    atr_fault_field(fault, "password", "Required.");
  else if (ops->check_secret_policy &&
           ops->check_secret_policy(ctx, password, strlen(password),
                                    t->username, NULL, &why) != 0)
    atr_fault_field(fault, "password", "%s", why ? why : "Not accepted.");
  free(why);
  if (!atr_fault_has_fields(fault))
    return true;
  atr_fault_set(fault, ATR_EINVAL, "Validation failed.", "%s", "");
  return false;
}

static int store_password(atr_db_t *db, const atr_actor_t *actor,
                          const char *user_id, const char *hash, char **err) {
  atr_value_t p[] = {atr_v_blob(hash, strlen(hash)),
                     atr_v_time(atr_db_now_us()), atr_v_text(user_id)};
  int rc = atr_db_exec(db,
                       "UPDATE users SET hashed_password = ?, updated_at = ? "
                       "WHERE id = ?",
                       p, 3, NULL, err);
  /* Other sign-in sessions end; long-lived tokens stay. */
  atr_value_t k[] = {atr_v_text(user_id), atr_v_text(actor->key_id)};
  if (rc == 0)
    rc = atr_db_exec(db,
                     "DELETE FROM api_keys WHERE user_id = ? AND token_name "
                     "= '' AND id <> ?",
                     k, 2, NULL, err);
  return rc;
}

int atr_user_password_set(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *who, const char *old_password,
                          const char *password, atr_fault_t *fault) {
  void *ctx = NULL;
  const atr_auth_ops_t *ops = atr__password_auth(dom, &ctx);
  if (!ops)
    return atr_auth_password_require(dom, fault);
  atr_db_t db;
  char *err = NULL, *hash = NULL;
  atr__user_ref_t t;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  if (rc == 0)
    rc = atr__user_target(&db, actor, who, &t, fault);
  bool own = rc == 0 && strcmp(t.id, actor->user_id) == 0;
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_USER_SECRET, ATR_ACT_UPDATE,
                      own, fault);
  if (rc == 0 &&
      !password_check(&db, ops, ctx, own, &t, old_password, password, fault))
    rc = ATR_EINVAL;
  if (rc != 0)
    goto done;
  rc = ops->hash_secret(ctx, password, strlen(password), &hash, &err);
  if (rc == 0)
    rc = store_password(&db, actor, t.id, hash, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  json_t *diff = NULL;
  atr_audit_diff_add(&diff, "password", NULL, NULL, true);
  atr_audit_record(
      dom->store, actor,
      &(atr_audit_entry_t){.action = "write",
                           .resource_type = "user",
                           .resource_id = t.id,
                           .resource_target = t.username,
                           .diff = diff,
                           .status_code = rc ? atr_fault_status(fault) : 204});
  json_decref(diff);
done:
  atr_db_close(&db);
  atr__secret_free(hash);
  free(err);
  return rc;
}

/* ---- site roles -------------------------------------------------------------- */

typedef struct role_change {
  const char *user_id;
  uint32_t roles;
  bool last_owner;
} role_change_t;

static int replace_roles(atr_db_t *db, void *ud, char **err) {
  role_change_t *c = ud;
  atr_value_t u[] = {atr_v_text(c->user_id)};
  int64_t other_owners = 0;
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM user_roles r JOIN users u "
                            "ON u.id = r.user_id WHERE r.role = 'owner' AND "
                            "u.deleted = FALSE AND r.user_id <> ?",
                            u, 1, &other_owners, err);
  c->last_owner = rc == 0 && other_owners == 0 && !(c->roles & ATR_ROLE_OWNER);
  if (rc != 0 || c->last_owner)
    return rc;
  rc = atr_db_exec(db, "DELETE FROM user_roles WHERE user_id = ?", u, 1, NULL,
                   err);
  for (uint32_t bit = 1; rc == 0 && bit <= ATR_ROLE_AUDITOR; bit <<= 1) {
    if (!(c->roles & bit))
      continue;
    atr_value_t p[] = {atr_v_text(c->user_id), atr_v_text(atr_role_name(bit))};
    rc = atr_db_exec(db, "INSERT INTO user_roles (user_id, role) VALUES (?, ?)",
                     p, 2, NULL, err);
  }
  return rc;
}

/* Roles that are not assignable site roles, one validation each. */
static bool roles_assignable(uint32_t roles, atr_fault_t *fault) {
  for (uint32_t bit = 1; bit; bit <<= 1)
    if ((roles & bit) && !atr_role_assignable(bit, false))
      atr_fault_field(fault, "roles",
                      "\"%s\" is not a site role; use owner, user-admin, "
                      "template-admin or auditor.",
                      atr_role_name(bit) ? atr_role_name(bit) : "?");
  if (!atr_fault_has_fields(fault))
    return true;
  atr_fault_set(fault, ATR_EINVAL, "Validation failed.", "%s", "");
  return false;
}

/* Who the change is about and their roles before it. */
static int roles_target(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *who, uint32_t roles, atr__user_ref_t *t,
                        uint32_t *before, atr_fault_t *fault) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_ROLE_ASSIGNMENT, ATR_ACT_UPDATE,
                      false, fault);
  if (rc == 0 && !roles_assignable(roles, fault))
    rc = ATR_EINVAL;
  if (rc == 0)
    rc = atr__user_target(&db, actor, who, t, fault);
  if (rc == 0 && (rc = atr_user_roles(&db, t->id, before, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  atr_db_close(&db);
  free(err);
  return rc;
}

static void record_roles(const atr_domain_t *dom, const atr_actor_t *actor,
                         const atr__user_ref_t *t, uint32_t before,
                         uint32_t after, int status) {
  json_t *diff = NULL;
  json_t *old_j = atr__role_names(before), *new_j = atr__role_names(after);
  char *old_s = json_dumps(old_j, JSON_COMPACT);
  char *new_s = json_dumps(new_j, JSON_COMPACT);
  json_decref(old_j);
  json_decref(new_j);
  atr_audit_diff_add(&diff, "roles", old_s, new_s, false);
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){.action = "write",
                                        .resource_type = "user",
                                        .resource_id = t->id,
                                        .resource_target = t->username,
                                        .diff = diff,
                                        .status_code = status});
  json_decref(diff);
  free(old_s);
  free(new_s);
}

int atr_user_roles_set(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *who, uint32_t roles, json_t **out,
                       atr_fault_t *fault) {
  *out = NULL;
  atr__user_ref_t t = {0};
  uint32_t before = 0;
  int rc = roles_target(dom, actor, who, roles, &t, &before, fault);
  if (rc != 0 && !t.id[0]) /* refused before there was a user to change */
    return rc;
  uint32_t changed = (before ^ roles) & ~(uint32_t)ATR_ROLE_MEMBER;
  if (rc == 0 && (changed & (ATR_ROLE_OWNER | ATR_ROLE_USER_ADMIN)) &&
      !(actor->roles & ATR_ROLE_OWNER))
    return atr_fault_set(fault, ATR_EPERM,
                         "Only an owner may grant or take away the owner "
                         "and user-admin roles.",
                         "%s", "");
  role_change_t c = {t.id, roles, false};
  char *err = NULL;
  if (rc == 0 &&
      (rc = atr_db_tx(dom->store, ATR_TX_WRITE, replace_roles, &c, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  else if (rc == 0 && c.last_owner)
    rc = atr_fault_set(fault, ATR_EINVAL,
                       "The last owner cannot lose the owner role.",
                       "Make another user an owner first.");
  atr_db_t db;
  if (rc == 0 && (rc = atr_db_open(dom->store, &db, &err)) == 0) {
    rc = atr__user_json(&db, t.id, out, &err);
    atr_db_close(&db);
  }
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  record_roles(dom, actor, &t, before, roles,
               rc ? atr_fault_status(fault) : 200);
  free(err);
  return rc;
}
