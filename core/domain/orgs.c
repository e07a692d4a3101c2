/* core/domain/orgs.c — organizations: names, listing, creating, reading
 * (see orgs.h; members are orgs_members.c). */
#include "orgs.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "rows.h"
#include "users_internal.h"

#define ORG_ADMIN "organization-admin"

/* ---- names ------------------------------------------------------------- */

/* Coder's rule; "new" and "create" would shadow routes. */
const char *atr_org_name_problem(const char *s) {
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

/* As Coder's DisplayNameValid. */
const char *atr_org_display_name_problem(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n > 64)
    return "Must be at most 64 characters.";
  if (n > 0 &&
      (isspace((unsigned char)s[0]) || isspace((unsigned char)s[n - 1])))
    return "Must not start or end with white space.";
  return NULL;
}

/* ---- finding one ------------------------------------------------------------ */

int atr__org_open(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *org, atr_resource_t res, atr_action_t act,
                  atr_db_t *db, char org_id[37], atr_fault_t *fault) {
  char *err = NULL, *id = NULL;
  int rc = atr_db_open(dom->store, db, &err);
  atr_value_t p[] = {atr_v_uuid_or_null(org), atr_v_text(org)};
  if (rc == 0)
    rc = atr_db_query_text(db,
                           "SELECT id FROM organizations WHERE deleted = "
                           "FALSE AND (id = ? OR lower(name) = lower(?))",
                           p, 2, &id, &err);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "Organization not found.", "%s", org ? org : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  if (rc == 0) {
    snprintf(org_id, 37, "%s", id);
    rc = atr__allowed(db, actor, org_id, res, act, false, fault);
  }
  if (rc != 0)
    atr_db_close(db);
  free(id);
  free(err);
  return rc;
}

/* ---- organizations ------------------------------------------------------------ */

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
    "SELECT o.id, o.name, o.display_name, o.description, o.icon, "
    "o.created_at, o.updated_at, o.is_default FROM organizations o ",
    org_row, NULL};

int atr_org_list(const atr_domain_t *dom, const atr_actor_t *actor,
                 int64_t limit, int64_t offset, json_t **out,
                 atr_fault_t *fault) {
  *out = NULL;
  if (!actor->system && !atr_actor_is_user(actor))
    return atr_fault_set(fault, ATR_EPERM, "Forbidden.",
                         "Your roles do not allow read on organization.");
  /* Site roles that may read any organization see all of them (Coder
   * filters the list by the same authorization); others see their own. */
  bool all =
      actor->system ||
      atr_rbac_allowed(actor->roles, ATR_RES_ORGANIZATION, ATR_ACT_READ, false);
  atr_value_t mine[] = {atr_v_text(actor->user_id), atr_v_int(limit),
                        atr_v_int(offset)};
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0 && all)
    rc = atr_select_list(&db, &orgs,
                         "WHERE o.deleted = FALSE ORDER BY lower(o.name), "
                         "o.id LIMIT ? OFFSET ?",
                         mine + 1, 2, out, &err);
  else if (rc == 0)
    rc = atr_select_list(&db, &orgs,
                         "JOIN organization_members m ON "
                         "m.organization_id = o.id WHERE o.deleted = FALSE "
                         "AND m.user_id = ? ORDER BY lower(o.name), o.id "
                         "LIMIT ? OFFSET ?",
                         mine, 3, out, &err);
  atr_db_close(&db);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
    atr_fault_internal(fault, rc, err);
  }
  free(err);
  return rc;
}

int atr_org_get(const atr_domain_t *dom, const atr_actor_t *actor,
                const char *org, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  char org_id[37], *err = NULL;
  int rc = atr__org_open(dom, actor, org, ATR_RES_ORGANIZATION, ATR_ACT_READ,
                         &db, org_id, fault);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(org_id)};
  rc = atr_select_one(&db, &orgs, "WHERE o.deleted = FALSE AND o.id = ?", p, 1,
                      out, &err);
  atr_db_close(&db);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "Organization not found.", "%s", org);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
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
  if (rc != 0 || !o->creator) /* the system belongs to no organization */
    return rc;
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

/* Permission, then each field's rule. */
static int check_new_org(const atr_domain_t *dom, const atr_actor_t *actor,
                         const atr_org_new_t *in, atr_fault_t *fault) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0)
    rc = atr__allowed(&db, actor, NULL, ATR_RES_ORGANIZATION, ATR_ACT_CREATE,
                      false, fault);
  else
    atr_fault_internal(fault, rc, err);
  atr_db_close(&db);
  free(err);
  const char *why;
  if (rc == 0 && (why = atr_org_name_problem(in->name)) != NULL)
    atr_fault_field(fault, "name", "%s", why);
  if (rc == 0 && (why = atr_org_display_name_problem(in->display_name)))
    atr_fault_field(fault, "display_name", "%s", why);
  if (rc == 0 && atr_fault_has_fields(fault))
    rc = atr_fault_set(fault, ATR_EINVAL, "Validation failed.", "%s", "");
  return rc;
}

int atr_org_create(const atr_domain_t *dom, const atr_actor_t *actor,
                   const atr_org_new_t *in, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  int rc = check_new_org(dom, actor, in, fault);
  if (rc != 0)
    return rc;
  new_org_t o = {.name = in->name,
                 .display_name = in->display_name && *in->display_name
                                     ? in->display_name
                                     : in->name,
                 .description = in->description ? in->description : "",
                 .icon = in->icon ? in->icon : "",
                 .creator = atr_actor_is_user(actor) ? actor->user_id : NULL,
                 .now = atr_db_now_us()};
  atr_db_new_uuid(o.id);
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_WRITE, insert_org, &o, &err);
  bool made = rc == 0 && !o.taken;
  if (o.taken || rc == ATR_ECONSTRAINT)
    rc = atr_fault_set(fault, ATR_ECONSTRAINT,
                       "An organization with this name already exists.", "%s",
                       o.name);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  else
    *out = new_org_json(&o);
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){
                       .action = "create",
                       .resource_type = "organization",
                       .resource_id = made ? o.id : NULL,
                       .resource_target = o.name,
                       .organization_id = made ? o.id : NULL,
                       .status_code = made ? 201 : atr_fault_status(fault)});
  free(err);
  return rc;
}
