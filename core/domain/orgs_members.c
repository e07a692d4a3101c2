/* core/domain/orgs_members.c — an organization's members and their
 * organization roles (see orgs.h). */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "orgs.h"
#include "rows.h"
#include "users_internal.h"

#define ORG_ADMIN "organization-admin"

#define MEMBER_SELECT                                                          \
  "SELECT m.user_id, u.username, u.email, u.name, m.organization_id, "         \
  "m.created_at, m.updated_at FROM organization_members m JOIN users u ON "    \
  "u.id = m.user_id WHERE m.organization_id = ? AND u.deleted = FALSE "

/* Members of org_id (one when user_id is set) with their organization
 * roles, appended to out as Coder's OrganizationMemberWithUserData. */
static int query_members(atr_db_t *db, const char *org_id, const char *user_id,
                         int64_t limit, int64_t offset, json_t *out,
                         char **err) {
  atr_value_t p[] = {atr_v_text(org_id),
                     user_id ? atr_v_text(user_id) : atr_v_int(limit),
                     atr_v_int(offset)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        user_id ? MEMBER_SELECT "AND m.user_id = ?"
                                : MEMBER_SELECT
                            "ORDER BY lower(u.username), m.user_id LIMIT ? "
                            "OFFSET ?",
                        p, user_id ? 2 : 3, &rows, err);
  json_t *by_user = json_object(); /* user id → roles array */
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_t *roles = json_array();
    json_object_set(by_user, atr_row_text(db, rows, 0), roles);
    json_array_append_new(
        out,
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "user_id",
                  atr_row_text(db, rows, 0), "username",
                  atr_row_text(db, rows, 1), "email", atr_row_text(db, rows, 2),
                  "name", atr_row_text(db, rows, 3), "organization_id",
                  atr_row_text(db, rows, 4), "created_at",
                  atr_time_json(atr_db_get_time(db, rows, 5)), "updated_at",
                  atr_time_json(atr_db_get_time(db, rows, 6)), "roles", roles));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  rows = NULL;
  if (rc == 0)
    rc = atr_db_query(db,
                      user_id ? "SELECT user_id, role FROM "
                                "organization_member_roles WHERE "
                                "organization_id = ? AND user_id = ? ORDER "
                                "BY role"
                              : "SELECT user_id, role FROM "
                                "organization_member_roles WHERE "
                                "organization_id = ? ORDER BY role",
                      p, user_id ? 2 : 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_t *roles = json_object_get(by_user, atr_row_text(db, rows, 0));
    if (roles)
      json_array_append_new(roles, json_pack("{s:s, s:s}", "name",
                                             atr_row_text(db, rows, 1),
                                             "organization_id", org_id));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  json_decref(by_user);
  return rc < 0 ? rc : 0;
}

int atr_org_members_list(const atr_domain_t *dom, const atr_actor_t *actor,
                         const char *org, int64_t limit, int64_t offset,
                         json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  char org_id[37], *err = NULL;
  int rc = atr__org_open(dom, actor, org, ATR_RES_ORGANIZATION_MEMBER,
                         ATR_ACT_READ, &db, org_id, fault);
  if (rc != 0)
    return rc;
  json_t *list = json_array();
  rc = query_members(&db, org_id, NULL, limit, offset, list, &err);
  atr_db_close(&db);
  if (rc == 0) {
    *out = list;
  } else {
    json_decref(list);
    atr_fault_internal(fault, rc, err);
  }
  free(err);
  return rc;
}

/* ---- one member's changes ---------------------------------------------------- */

/* One member change: who, in which organization, and what happened. */
typedef struct member_op {
  char org_id[37];
  char user_id[37];
  char username[65];
  uint32_t roles;      /* new roles: the new organization roles */
  char old_roles[256]; /* new roles: "a, b" before the change */
  bool member;         /* the user was a member when the transaction began */
  bool last_admin; /* refused: the change would leave no organization-admin */
  json_t *result;  /* the member after the change */
} member_op_t;

/* The user named by who: "me", an id or a username (not deleted). */
static int find_user(atr_db_t *db, const atr_actor_t *actor, const char *who,
                     member_op_t *op, char **err) {
  char id[37];
  if (strcmp(who, "me") == 0)
    who = actor->user_id;
  bool by_id = atr_uuid_valid(who);
  if (by_id) { /* the core writes ids lower-case */
    for (size_t i = 0; i < sizeof id; i++)
      id[i] = (char)tolower((unsigned char)who[i]);
    who = id;
  }
  /* Comparing a non-UUID with the id column fails on PostgreSQL, so the
   * shape of the value picks the column. */
  atr_value_t p[] = {atr_v_text(who)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        by_id ? "SELECT id, username FROM users WHERE deleted "
                                "= FALSE AND id = ?"
                              : "SELECT id, username FROM users WHERE deleted "
                                "= FALSE AND lower(username) = lower(?)",
                        p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    snprintf(op->user_id, sizeof op->user_id, "%s", atr_row_text(db, rows, 0));
    snprintf(op->username, sizeof op->username, "%s",
             atr_row_text(db, rows, 1));
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

/* The organization (and act on its members allowed), then the user. */
static int member_target(const atr_domain_t *dom, const atr_actor_t *actor,
                         const char *org, const char *who, atr_action_t act,
                         member_op_t *op, atr_fault_t *fault) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr__org_open(dom, actor, org, ATR_RES_ORGANIZATION_MEMBER, act, &db,
                         op->org_id, fault);
  if (rc != 0)
    return rc;
  rc = find_user(&db, actor, who, op, &err);
  atr_db_close(&db);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "User not found.", "%s", who);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

static int is_member(atr_db_t *db, member_op_t *op, char **err) {
  int64_t n = 0;
  atr_value_t p[] = {atr_v_text(op->org_id), atr_v_text(op->user_id)};
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM organization_members WHERE "
                            "organization_id = ? AND user_id = ?",
                            p, 2, &n, err);
  op->member = rc == 0 && n > 0;
  return rc;
}

/* The member after a change, into op->result. */
static int reload_member(atr_db_t *db, member_op_t *op, char **err) {
  json_t *list = json_array();
  int rc = query_members(db, op->org_id, op->user_id, 1, 0, list, err);
  op->result = json_incref(json_array_get(list, 0));
  json_decref(list);
  if (rc == 0 && !op->result) {
    rc = ATR_ENOENT;
    *err = strdup("the member disappeared during the change");
  }
  return rc;
}

/* Would taking organization-admin away from op's user leave the
 * organization without one? Admins who are deleted users do not count. */
static int check_last_admin(atr_db_t *db, member_op_t *op, char **err) {
  atr_value_t p[] = {atr_v_text(op->org_id), atr_v_text(op->user_id)};
  int64_t mine = 0, others = 0;
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM organization_member_roles "
                            "WHERE organization_id = ? AND user_id = ? AND "
                            "role = '" ORG_ADMIN "'",
                            p, 2, &mine, err);
  if (rc == 0 && mine > 0)
    rc = atr_db_query_int(db,
                          "SELECT COUNT(*) FROM organization_member_roles r "
                          "JOIN users u ON u.id = r.user_id WHERE "
                          "r.organization_id = ? AND r.user_id <> ? AND "
                          "r.role = '" ORG_ADMIN "' AND u.deleted = FALSE",
                          p, 2, &others, err);
  op->last_admin = rc == 0 && mine > 0 && others == 0;
  return rc;
}

/* The outcome of a change that may hit "not a member" or "the last
 * admin", as the fault; 0 when it went through. */
static int member_outcome(int rc, const char *err, const member_op_t *op,
                          atr_fault_t *fault) {
  if (rc != 0)
    return atr_fault_internal(fault, rc, err);
  if (!op->member)
    return atr_fault_set(fault, ATR_ENOENT,
                         "User is not a member of this organization.", "%s",
                         op->username);
  if (op->last_admin)
    return atr_fault_set(
        fault, ATR_EINVAL,
        "Cannot remove the last organization-admin of an organization.",
        "%s is the only organization-admin; give another member the "
        "organization-admin role first.",
        op->username);
  return 0;
}

static void record_member(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *action, const member_op_t *op,
                          json_t *diff, int status) {
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){.action = action,
                                        .resource_type = "organization_member",
                                        .resource_id = op->user_id,
                                        .resource_target = op->username,
                                        .organization_id = op->org_id,
                                        .diff = diff,
                                        .status_code = status});
}

/* A transaction function may run again after a busy or serialization
 * failure: forget what the last attempt found. */
static void op_reset(member_op_t *op) {
  op->member = op->last_admin = false;
  json_decref(op->result);
  op->result = NULL;
}

static int add_member(atr_db_t *db, void *ud, char **err) {
  member_op_t *op = ud;
  op_reset(op);
  int rc = is_member(db, op, err);
  if (rc != 0 || op->member)
    return rc;
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(op->user_id), atr_v_text(op->org_id),
                     atr_v_time(now), atr_v_time(now)};
  rc = atr_db_exec(db,
                   "INSERT INTO organization_members (user_id, "
                   "organization_id, created_at, updated_at) VALUES (?, ?, ?, "
                   "?)",
                   p, 4, NULL, err);
  return rc == 0 ? reload_member(db, op, err) : rc;
}

int atr_org_member_add(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *org, const char *who, json_t **out,
                       atr_fault_t *fault) {
  *out = NULL;
  member_op_t op = {0};
  int rc = member_target(dom, actor, org, who, ATR_ACT_CREATE, &op, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_WRITE, add_member, &op, &err);
  if (op.member || rc == ATR_ECONSTRAINT)
    rc = atr_fault_set(fault, ATR_ECONSTRAINT,
                       "User is already a member of this organization.", "%s",
                       op.username);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  else
    *out = json_incref(op.result);
  record_member(dom, actor, "create", &op, NULL,
                rc ? atr_fault_status(fault) : 201);
  json_decref(op.result);
  free(err);
  return rc;
}

static int remove_member(atr_db_t *db, void *ud, char **err) {
  member_op_t *op = ud;
  op_reset(op);
  int rc = is_member(db, op, err);
  if (rc == 0 && op->member)
    rc = check_last_admin(db, op, err);
  if (rc != 0 || !op->member || op->last_admin)
    return rc;
  /* organization_member_roles and group_members go by FK cascade */
  atr_value_t p[] = {atr_v_text(op->org_id), atr_v_text(op->user_id)};
  return atr_db_exec(db,
                     "DELETE FROM organization_members WHERE organization_id "
                     "= ? AND user_id = ?",
                     p, 2, NULL, err);
}

int atr_org_member_remove(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *org, const char *who,
                          atr_fault_t *fault) {
  member_op_t op = {0};
  int rc = member_target(dom, actor, org, who, ATR_ACT_DELETE, &op, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_SERIALIZABLE, remove_member, &op, &err);
  rc = member_outcome(rc, err, &op, fault);
  record_member(dom, actor, "delete", &op, NULL,
                rc ? atr_fault_status(fault) : 204);
  free(err);
  return rc;
}

/* ---- organization roles --------------------------------------------------------- */

/* Append ", name" (or "name" to an empty list) within size. */
static void append_role(char *buf, size_t size, const char *name) {
  size_t len = strlen(buf);
  if (len < size)
    snprintf(buf + len, size - len, "%s%s", len ? ", " : "", name);
}

/* The member's stored roles as "a, b" ("" for none), into op->old_roles. */
static int read_roles(atr_db_t *db, member_op_t *op, char **err) {
  atr_value_t p[] = {atr_v_text(op->org_id), atr_v_text(op->user_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT role FROM organization_member_roles WHERE "
                        "organization_id = ? AND user_id = ? ORDER BY role",
                        p, 2, &rows, err);
  op->old_roles[0] = '\0';
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    append_role(op->old_roles, sizeof op->old_roles, atr_row_text(db, rows, 0));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

/* The new roles in the same "a, b" form. */
static void format_roles(uint32_t roles, char *buf, size_t size) {
  buf[0] = '\0';
  for (uint32_t bit = 1; bit && bit <= ATR_ROLE_ORG_MEMBER; bit <<= 1)
    if ((roles & bit) && atr_role_name(bit))
      append_role(buf, size, atr_role_name(bit));
}

static int write_roles(atr_db_t *db, member_op_t *op, char **err) {
  atr_value_t p[] = {atr_v_text(op->org_id), atr_v_text(op->user_id)};
  int rc = atr_db_exec(db,
                       "DELETE FROM organization_member_roles WHERE "
                       "organization_id = ? AND user_id = ?",
                       p, 2, NULL, err);
  for (uint32_t bit = 1; rc == 0 && bit && bit <= ATR_ROLE_ORG_MEMBER;
       bit <<= 1) {
    if (!(op->roles & bit))
      continue;
    atr_value_t q[] = {atr_v_text(op->user_id), atr_v_text(op->org_id),
                       atr_v_text(atr_role_name(bit))};
    rc = atr_db_exec(db,
                     "INSERT INTO organization_member_roles (user_id, "
                     "organization_id, role) VALUES (?, ?, ?)",
                     q, 3, NULL, err);
  }
  atr_value_t u[] = {atr_v_time(atr_db_now_us()), atr_v_text(op->org_id),
                     atr_v_text(op->user_id)};
  if (rc == 0)
    rc = atr_db_exec(db,
                     "UPDATE organization_members SET updated_at = ? WHERE "
                     "organization_id = ? AND user_id = ?",
                     u, 3, NULL, err);
  return rc;
}

static int set_roles(atr_db_t *db, void *ud, char **err) {
  member_op_t *op = ud;
  op_reset(op);
  int rc = is_member(db, op, err);
  if (rc == 0 && op->member)
    rc = read_roles(db, op, err);
  if (rc == 0 && op->member && !(op->roles & ATR_ROLE_ORG_ADMIN))
    rc = check_last_admin(db, op, err);
  if (rc != 0 || !op->member || op->last_admin)
    return rc;
  rc = write_roles(db, op, err);
  return rc == 0 ? reload_member(db, op, err) : rc;
}

int atr_org_member_roles_set(const atr_domain_t *dom, const atr_actor_t *actor,
                             const char *org, const char *who, uint32_t roles,
                             json_t **out, atr_fault_t *fault) {
  *out = NULL;
  for (uint32_t bit = 1; bit; bit <<= 1)
    if ((roles & bit) && !atr_role_assignable(bit, true))
      atr_fault_field(fault, "roles", "\"%s\" cannot be assigned.",
                      atr_role_name(bit) ? atr_role_name(bit) : "?");
  if (atr_fault_has_fields(fault))
    return atr_fault_set(fault, ATR_EINVAL, "Validation failed.", "%s", "");
  member_op_t op = {.roles = roles};
  int rc = member_target(dom, actor, org, who, ATR_ACT_UPDATE, &op, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_SERIALIZABLE, set_roles, &op, &err);
  rc = member_outcome(rc, err, &op, fault);
  if (rc == 0)
    *out = json_incref(op.result);
  char new_roles[200];
  format_roles(op.roles, new_roles, sizeof new_roles);
  json_t *diff = NULL;
  if (rc == 0 && strcmp(op.old_roles, new_roles) != 0)
    atr_audit_diff_add(&diff, "roles", op.old_roles, new_roles, false);
  record_member(dom, actor, "write", &op, diff,
                rc ? atr_fault_status(fault) : 200);
  json_decref(diff);
  json_decref(op.result);
  free(err);
  return rc;
}
