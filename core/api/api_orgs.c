/* core/api_orgs.c — organizations and their members: listing, creating and
 * reading organizations, adding and removing members, and setting a
 * member's organization roles. JSON shapes follow Coder's codersdk
 * (Organization, OrganizationMemberWithUserData, SlimRole).
 *
 * The router has resolved {organization} into r->org_id and authorized
 * the route; these handlers validate input and targets. Changes that
 * could leave an organization without an organization-admin run in a
 * serializable transaction, so two concurrent removals cannot both pass
 * the "not the last admin" check. */
#include "api_orgs.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"

#define ORG_ADMIN "organization-admin"

/* ---- helpers ---------------------------------------------------------- */

/* Organization names as Coder allows them: 1-32 of [a-z0-9-], no leading,
 * trailing or double hyphen; "new" and "create" would shadow routes. */
static const char *name_problem(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0)
    return "Required.";
  if (strcmp(s, "new") == 0 || strcmp(s, "create") == 0)
    return "\"new\" and \"create\" are reserved names.";
  bool ok = n <= 32 && s[0] != '-' && s[n - 1] != '-';
  for (size_t i = 0; ok && i < n; i++)
    ok = islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
         (s[i] == '-' && s[i + 1] != '-');
  return ok ? NULL
            : "Must be 1 to 32 lower-case letters, digits or single hyphens, "
              "not starting or ending with a hyphen.";
}

/* Display names as Coder's DisplayNameValid: at most 64 characters, no
 * leading or trailing white space; empty means "same as the name". */
static const char *display_name_problem(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n > 64)
    return "Must be at most 64 characters.";
  if (n > 0 &&
      (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1])))
    return "Must not start or end with white space.";
  return NULL;
}

static bool looks_like_uuid(const char *s) {
  if (strlen(s) != 36)
    return false;
  for (size_t i = 0; i < 36; i++) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
      return false;
  }
  return true;
}

/* ---- organizations -------------------------------------------------------- */

#define ORG_COLUMNS                                                            \
  "o.id, o.name, o.display_name, o.description, o.icon, o.created_at, "        \
  "o.updated_at, o.is_default"

static json_t *org_row(atr_db_t *db, atr_db_rows_t *rows) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:b}", "id",
                   atr_row_text(db, rows, 0), "name", atr_row_text(db, rows, 1),
                   "display_name", atr_row_text(db, rows, 2), "description",
                   atr_row_text(db, rows, 3), "icon", atr_row_text(db, rows, 4),
                   "created_at", atr_time_json(atr_db_get_time(db, rows, 5)),
                   "updated_at", atr_time_json(atr_db_get_time(db, rows, 6)),
                   "is_default", atr_db_get_bool(db, rows, 7));
}

static const atr_select_t orgs = {
    "SELECT " ORG_COLUMNS " FROM organizations o ", org_row, NULL};

int atr_api_orgs_list(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, INT64_MAX, &limit, &offset) != 0)
    return 0;
  /* Site roles that may read any organization see all of them (Coder
   * filters the list by the same authorization); others see their own. */
  bool all = atr_rbac_allowed(r->actor.roles, ATR_RES_ORGANIZATION,
                              ATR_ACT_READ, false);
  atr_value_t mine[] = {atr_v_text(r->actor.user_id), atr_v_int(limit),
                        atr_v_int(offset)};
  atr_db_t db;
  char *err = NULL;
  json_t *list = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0 && all)
    rc = atr_select_list(&db, &orgs,
                         "WHERE o.deleted = FALSE ORDER BY lower(o.name), "
                         "o.id LIMIT ? OFFSET ?",
                         mine + 1, 2, &list, &err);
  else if (rc == 0)
    rc = atr_select_list(&db, &orgs,
                         "JOIN organization_members m ON "
                         "m.organization_id = o.id WHERE o.deleted = FALSE "
                         "AND m.user_id = ? ORDER BY lower(o.name), o.id "
                         "LIMIT ? OFFSET ?",
                         mine, 3, &list, &err);
  atr_db_close(&db);
  if (rc != 0) {
    json_decref(list);
    atr_api_fail(r, rc, err);
  } else {
    atr_api_json(r, 200, list);
  }
  free(err);
  return 0;
}

/* The organization with this id as JSON; ATR_ENOENT when it is gone. */
static int load_org(atr_db_t *db, const char *org_id, json_t **out,
                    char **err) {
  atr_value_t p[] = {atr_v_text(org_id)};
  *out = NULL;
  int rc = atr_select_one(db, &orgs, "WHERE o.deleted = FALSE AND o.id = ?", p,
                          1, out, err);
  if (rc == ATR_ENOENT)
    *err = strdup("no such organization");
  return rc;
}

int atr_api_org_get(atr_api_req_t *r) {
  atr_db_t db;
  char *err = NULL;
  json_t *org = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0)
    rc = load_org(&db, r->org_id, &org, &err);
  atr_db_close(&db);
  if (rc == ATR_ENOENT)
    atr_api_error(r, 404, "Organization not found.",
                  atr_api_param(r, "organization"));
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, 200, org);
  free(err);
  return 0;
}

typedef struct new_org {
  char id[37];
  const char *name, *display_name, *description, *icon, *creator;
  int64_t now;
  bool taken;
} new_org_t;

static int insert_org(atr_db_t *db, void *ud, char **err) {
  new_org_t *o = ud;
  int64_t n = 0;
  atr_value_t q[] = {atr_v_text(o->name)};
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM organizations WHERE "
                            "lower(name) = lower(?) AND deleted = FALSE",
                            q, 1, &n, err);
  if (rc != 0 || (o->taken = n > 0))
    return rc;
  atr_value_t org[] = {atr_v_text(o->id),           atr_v_text(o->name),
                       atr_v_text(o->display_name), atr_v_text(o->description),
                       atr_v_text(o->icon),         atr_v_time(o->now),
                       atr_v_time(o->now)};
  atr_value_t mem[] = {atr_v_text(o->creator), atr_v_text(o->id),
                       atr_v_time(o->now), atr_v_time(o->now)};
  atr_value_t role[] = {atr_v_text(o->creator), atr_v_text(o->id)};
  rc = atr_db_exec(db,
                   "INSERT INTO organizations (id, name, display_name, "
                   "description, icon, created_at, updated_at, is_default) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, FALSE)",
                   org, 7, NULL, err);
  if (rc == 0)
    rc = atr_db_exec(db,
                     "INSERT INTO organization_members (user_id, "
                     "organization_id, created_at, updated_at) VALUES (?, ?, "
                     "?, ?)",
                     mem, 4, NULL, err);
  if (rc == 0)
    rc = atr_db_exec(db,
                     "INSERT INTO organization_member_roles (user_id, "
                     "organization_id, role) VALUES (?, ?, '" ORG_ADMIN "')",
                     role, 2, NULL, err);
  return rc;
}

static json_t *new_org_json(const new_org_t *o) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:b}", "id", o->id,
                   "name", o->name, "display_name", o->display_name,
                   "description", o->description, "icon", o->icon, "created_at",
                   atr_time_json(o->now), "updated_at", atr_time_json(o->now),
                   "is_default", 0);
}

int atr_api_org_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  new_org_t o = {.creator = r->actor.user_id, .now = atr_db_now_us()};
  o.name = atr_api_opt_string(body, "name", v);
  /* a value of the wrong type already has its validation */
  json_t *name = json_object_get(body, "name");
  const char *why = !name || json_is_string(name) || json_is_null(name)
                        ? name_problem(o.name)
                        : NULL;
  if (why)
    atr_api_add_validation(v, "name", why);
  o.display_name = atr_api_opt_string(body, "display_name", v);
  if ((why = display_name_problem(o.display_name)) != NULL)
    atr_api_add_validation(v, "display_name", why);
  o.description = atr_api_opt_string(body, "description", v);
  o.icon = atr_api_opt_string(body, "icon", v);
  if (json_array_size(v) > 0) {
    json_decref(body);
    return atr_api_validation(r, "Validation failed.", v);
  }
  json_decref(v);
  if (!o.display_name || !*o.display_name)
    o.display_name = o.name; /* Coder: defaults to the name */
  if (!o.description)
    o.description = "";
  if (!o.icon)
    o.icon = "";
  atr_db_new_uuid(o.id);
  char *err = NULL;
  int rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, insert_org, &o, &err);
  bool made = rc == 0 && !o.taken;
  if (o.taken || rc == ATR_ECONSTRAINT)
    atr_api_error(r, 409, "An organization with this name already exists.",
                  o.name);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, 201, new_org_json(&o));
  atr_api_audit(r, "create", "organization", made ? o.id : NULL, o.name,
                made ? o.id : NULL, NULL);
  free(err);
  json_decref(body);
  return 0;
}

/* ---- members ---------------------------------------------------------------- */

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

int atr_api_org_members_list(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, INT64_MAX, &limit, &offset) != 0)
    return 0;
  atr_db_t db;
  char *err = NULL;
  json_t *list = json_array();
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0)
    rc = query_members(&db, r->org_id, NULL, limit, offset, list, &err);
  atr_db_close(&db);
  if (rc != 0) {
    json_decref(list);
    atr_api_fail(r, rc, err);
  } else {
    atr_api_json(r, 200, list);
  }
  free(err);
  return 0;
}

/* One member change: who, in which organization, and what happened. */
typedef struct member_op {
  const char *org_id;
  char user_id[37];
  char username[65];
  uint32_t roles;      /* PUT roles: the new organization roles */
  char old_roles[256]; /* PUT roles: "a, b" before the change */
  bool found;          /* the user exists */
  bool member;         /* the user was a member when the transaction began */
  bool last_admin; /* refused: the change would leave no organization-admin */
  json_t *result;  /* the member after the change */
} member_op_t;

/* The user named by {user}: "me", an id or a username (not deleted). */
static int find_user(atr_api_req_t *r, atr_db_t *db, member_op_t *op,
                     char **err) {
  const char *who = atr_api_param(r, "user");
  char id[37];
  if (strcmp(who, "me") == 0)
    who = r->actor.user_id;
  bool by_id = looks_like_uuid(who);
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
    op->found = true;
    snprintf(op->user_id, sizeof op->user_id, "%s", atr_row_text(db, rows, 0));
    snprintf(op->username, sizeof op->username, "%s",
             atr_row_text(db, rows, 1));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

/* Look up {user}; answers 404 (or the storage error) and returns -1 when
 * there is no such user. */
static int resolve_user(atr_api_req_t *r, member_op_t *op) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0)
    rc = find_user(r, &db, op, &err);
  atr_db_close(&db);
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else if (!op->found)
    atr_api_error(r, 404, "User not found.", atr_api_param(r, "user"));
  free(err);
  return rc == 0 && op->found ? 0 : -1;
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

static int last_admin_refused(atr_api_req_t *r, const member_op_t *op) {
  char detail[200];
  snprintf(detail, sizeof detail,
           "%s is the only organization-admin; give another member the "
           "organization-admin role first.",
           op->username);
  return atr_api_error(
      r, 400, "Cannot remove the last organization-admin of an organization.",
      detail);
}

static int not_a_member(atr_api_req_t *r, const member_op_t *op) {
  return atr_api_error(r, 404, "User is not a member of this organization.",
                       op->username);
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

int atr_api_org_member_add(atr_api_req_t *r) {
  member_op_t op = {.org_id = r->org_id};
  if (resolve_user(r, &op) != 0)
    return 0;
  char *err = NULL;
  int rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, add_member, &op, &err);
  if (op.member || rc == ATR_ECONSTRAINT)
    atr_api_error(r, 409, "User is already a member of this organization.",
                  op.username);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, 201, json_incref(op.result));
  atr_api_audit(r, "create", "organization_member", op.user_id, op.username,
                r->org_id, NULL);
  json_decref(op.result);
  free(err);
  return 0;
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

int atr_api_org_member_remove(atr_api_req_t *r) {
  member_op_t op = {.org_id = r->org_id};
  if (resolve_user(r, &op) != 0)
    return 0;
  char *err = NULL;
  int rc = atr_db_tx(r->env->dom.store, ATR_TX_SERIALIZABLE, remove_member, &op,
                     &err);
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else if (!op.member)
    not_a_member(r, &op);
  else if (op.last_admin)
    last_admin_refused(r, &op);
  else
    atr_api_no_content(r);
  atr_api_audit(r, "delete", "organization_member", op.user_id, op.username,
                r->org_id, NULL);
  free(err);
  return 0;
}

/* The roles of the body: organization roles that may be assigned. Each
 * bad entry is one validation naming it. */
static uint32_t parse_roles(json_t *body, json_t *v) {
  json_t *list = json_object_get(body, "roles");
  if (!json_is_array(list)) {
    atr_api_add_validation(
        v, "roles",
        "Required: a list of organization role names, such as "
        "[\"" ORG_ADMIN "\"] (or [] for none).");
    return 0;
  }
  uint32_t roles = 0;
  size_t i;
  json_t *item;
  json_array_foreach(list, i, item) {
    const char *name = json_string_value(item);
    uint32_t role = atr_role_parse(name, true);
    char detail[300];
    if (!name)
      snprintf(detail, sizeof detail, "Entry %zu is not a string.", i);
    else if (role && atr_role_assignable(role, true))
      roles |= role;
    else if (role)
      snprintf(detail, sizeof detail,
               "\"%.100s\" is implied for every member and cannot be "
               "assigned.",
               name);
    else if (atr_role_parse(name, false))
      snprintf(detail, sizeof detail,
               "\"%.100s\" is a site role, not an organization role.", name);
    else
      snprintf(detail, sizeof detail,
               "Unknown organization role \"%.100s\"; the assignable one is "
               "\"" ORG_ADMIN "\".",
               name);
    if (!name || !role || !atr_role_assignable(role, true))
      atr_api_add_validation(v, "roles", detail);
  }
  return roles;
}

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
  atr_value_t p[] = {atr_v_text(op->org_id), atr_v_text(op->user_id)};
  rc = atr_db_exec(db,
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
  return rc == 0 ? reload_member(db, op, err) : rc;
}

int atr_api_org_member_roles(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  member_op_t op = {.org_id = r->org_id, .roles = parse_roles(body, v)};
  json_decref(body);
  if (json_array_size(v) > 0)
    return atr_api_validation(r, "Validation failed.", v);
  json_decref(v);
  if (resolve_user(r, &op) != 0)
    return 0;
  char *err = NULL;
  int rc =
      atr_db_tx(r->env->dom.store, ATR_TX_SERIALIZABLE, set_roles, &op, &err);
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else if (!op.member)
    not_a_member(r, &op);
  else if (op.last_admin)
    last_admin_refused(r, &op);
  else
    atr_api_json(r, 200, json_incref(op.result));
  char new_roles[200];
  format_roles(op.roles, new_roles, sizeof new_roles);
  json_t *diff = NULL;
  if (rc == 0 && op.member && !op.last_admin &&
      strcmp(op.old_roles, new_roles) != 0)
    atr_audit_diff_add(&diff, "roles", op.old_roles, new_roles, false);
  atr_api_audit(r, "write", "organization_member", op.user_id, op.username,
                r->org_id, diff);
  json_decref(diff);
  json_decref(op.result);
  free(err);
  return 0;
}
