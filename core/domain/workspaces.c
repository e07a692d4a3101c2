/* core/domain/workspaces.c — see workspaces.h. */
#include "workspaces.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "builds_make.h"
#include "workspaces_rows.h"

/* Initiators are users, or the nil UUID for the server (the column has
 * no foreign key, as in Coder). */
#define SYSTEM_INITIATOR "00000000-0000-0000-0000-000000000000"

static int open_db(const atr_domain_t *dom, atr_db_t *db, atr_fault_t *fault) {
  char *err = NULL;
  int rc = atr_db_open(dom->store, db, &err);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

/* A user's id or username → their id; ENOENT "User not found.". */
static int resolve_user(atr_db_t *db, const char *who, char out[37],
                        atr_fault_t *fault) {
  char *err = NULL, *id = NULL;
  atr_value_t p[] = {atr_v_uuid_or_null(who), atr_v_text(who)};
  int rc = atr_db_query_text(db,
                             "SELECT id FROM users WHERE deleted = FALSE AND "
                             "(id = ? OR lower(username) = lower(?))",
                             p, 2, &id, &err);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "User not found.", "%s", who ? who : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  else
    snprintf(out, 37, "%s", id);
  free(id);
  free(err);
  return rc;
}

/* ---- create -------------------------------------------------------------------- */

/* The template a new workspace is made from. */
typedef struct picked {
  char id[37], org_id[37], version_id[37];
  bool found;
} picked_t;

static int load_template(atr_db_t *db, const char *id, picked_t *t,
                         char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT id, organization_id, active_version_id FROM "
                        "templates WHERE deleted = FALSE AND id = ?",
                        p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    snprintf(t->id, sizeof t->id, "%s", atr_row_text(db, rows, 0));
    snprintf(t->org_id, sizeof t->org_id, "%s", atr_row_text(db, rows, 1));
    snprintf(t->version_id, sizeof t->version_id, "%s",
             atr_row_text(db, rows, 2));
    t->found = true;
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

/* The template (and version) asked for; validations in v for what is
 * wrong. */
static void pick_template(atr_db_t *db, const atr_workspace_new_t *in,
                          picked_t *t, atr_fault_t *v) {
  const char *tid = in->template_id, *vid = in->template_version_id;
  char *err = NULL, *vt = NULL, *check = NULL;
  atr_value_t k[] = {atr_v_uuid_or_null(vid)};
  if (!tid && vid &&
      atr_db_query_text(db,
                        "SELECT template_id FROM template_versions WHERE id "
                        "= ? AND template_id IS NOT NULL",
                        k, 1, &vt, &err) == 0)
    tid = vt;
  if (!tid || load_template(db, tid, t, &err) != 0)
    atr_fault_field(v, vid && !tid ? "template_version_id" : "template_id",
                    "Required: an existing template (template_id) or one of "
                    "its versions (template_version_id).");
  atr_value_t q[] = {atr_v_uuid_or_null(vid), atr_v_text(t->id)};
  if (t->found && vid &&
      atr_db_query_text(db,
                        "SELECT id FROM template_versions WHERE id = ? AND "
                        "template_id = ?",
                        q, 2, &check, &err) != 0)
    atr_fault_field(v, "template_version_id", "Not a version of the template.");
  if (t->found && vid)
    snprintf(t->version_id, sizeof t->version_id, "%s", vid);
  free(check);
  free(vt);
  free(err);
}

static bool is_member(atr_db_t *db, const char *org, const char *user) {
  char *err = NULL;
  int64_t one = 0;
  atr_value_t p[] = {atr_v_text(org), atr_v_text(user)};
  int rc = atr_db_query_int(db,
                            "SELECT 1 FROM organization_members WHERE "
                            "organization_id = ? AND user_id = ?",
                            p, 2, &one, &err);
  free(err);
  return rc == 0;
}

/* May the actor create a workspace for owner in org? */
static int may_create(atr_db_t *db, const atr_actor_t *actor, const char *org,
                      const char *owner, atr_fault_t *fault) {
  bool self = atr_actor_is_user(actor) && strcmp(owner, actor->user_id) == 0;
  char *err = NULL;
  int rc = atr_actor_allowed(db, actor, org, ATR_RES_WORKSPACE, ATR_ACT_CREATE,
                             self, &err);
  if (rc == ATR_EPERM)
    atr_fault_set(fault, rc, "Forbidden.", "%s", err ? err : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

/* Everything a create needs checked before its build is tried. */
static int check_new(atr_db_t *db, const atr_actor_t *actor,
                     const atr_workspace_new_t *in, const char *owner,
                     picked_t *t, atr_fault_t *fault) {
  atr_fault_t v = {0};
  if (in->problems)
    v.validations = json_deep_copy(in->problems);
  const char *bad = atr_name_problem(in->name);
  if (bad)
    atr_fault_field(&v, "name", "%s", bad);
  pick_template(db, in, t, &v);
  int rc = may_create(db, actor, t->found ? t->org_id : NULL, owner, fault);
  if (rc == 0 && t->found) {
    if (in->org_id && *in->org_id && strcmp(in->org_id, t->org_id) != 0)
      atr_fault_field(&v, "template_id",
                      "The template belongs to another organization.");
    else if (!is_member(db, t->org_id, owner))
      atr_fault_field(&v, "template_id",
                      "The owner is not a member of the template's "
                      "organization.");
  }
  if (rc == 0 && atr_fault_has_fields(&v)) {
    rc = atr_fault_set(fault, ATR_EINVAL, "Invalid workspace.", "%s", "");
    fault->validations = v.validations;
    v.validations = NULL;
  }
  atr_fault_clear(&v);
  return rc;
}

static const char *initiator(const atr_actor_t *actor) {
  return atr_actor_is_user(actor) ? actor->user_id : SYSTEM_INITIATOR;
}

int atr_workspace_create(const atr_domain_t *dom, const atr_actor_t *actor,
                         const atr_workspace_new_t *in, json_t **out,
                         atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = open_db(dom, &db, fault);
  if (rc != 0)
    return rc;
  char owner[37] = "";
  picked_t t = {0};
  rc = resolve_user(&db, in->owner, owner, fault);
  if (rc == 0)
    rc = check_new(&db, actor, in, owner, &t, fault);
  atr_db_close(&db);
  if (rc != 0)
    return rc;
  json_t *none = json_object();
  atr__new_build_t nb = {.workspace_id = "",
                         .owner_id = owner,
                         .org_id = t.org_id,
                         .template_id = t.id,
                         .version_id = t.version_id,
                         .ws_name = in->name,
                         .has_ttl = in->has_ttl,
                         .ttl = in->ttl_ms,
                         .transition = "start",
                         .initiator_id = initiator(actor),
                         .values = in->values ? in->values : none};
  rc = atr__build_make(dom, actor, &nb, fault);
  json_decref(none);
  json_decref(nb.decision);
  if (rc != 0)
    return rc;
  *out = nb.answer;
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){.action = "create",
                                        .resource_type = "workspace",
                                        .resource_id = nb.workspace_id,
                                        .resource_target = nb.ws_name,
                                        .organization_id = nb.org_id,
                                        .status_code = 201});
  return 0;
}

/* ---- read ---------------------------------------------------------------------- */

int atr_workspaces_list(const atr_domain_t *dom, const atr_actor_t *actor,
                        const atr_workspace_filter_t *f, json_t **out,
                        atr_fault_t *fault) {
  *out = NULL;
  /* Only users have workspaces of their own; an agent or an anonymous
   * caller would match every owner below. */
  if (!actor->system && !atr_actor_is_user(actor))
    return atr_fault_set(fault, ATR_EPERM, "Forbidden.",
                         "Your roles do not allow read on workspace.");
  /* Members see only their own, whatever they ask for. */
  bool all =
      atr_rbac_allowed(actor->roles, ATR_RES_WORKSPACE, ATR_ACT_READ, false);
  atr_value_t p[] = {atr_v_bool(f->deleted),
                     atr_v_text(all ? "" : actor->user_id),
                     atr_v_text(f->owner ? f->owner : ""),
                     atr_v_text(f->template ? f->template : ""),
                     atr_v_int(f->limit),
                     atr_v_int(f->offset)};
  static const char where[] =
      "WHERE w.deleted = ? AND (? = '' OR CAST(w.owner_id AS TEXT) = ?) "
      "AND (? = '' OR lower(u.username) = lower(?)) AND (? = '' OR "
      "lower(t.name) = lower(?)) ORDER BY w.created_at DESC, w.id "
      "LIMIT ? OFFSET ?";
  atr_value_t q[] = {p[0], p[1], p[1], p[2], p[2], p[3], p[3], p[4], p[5]};
  atr_db_t db;
  char *err = NULL;
  int rc = open_db(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = atr_select_list(&db, &atr__workspaces, where, q, 9, out, &err);
  atr_db_close(&db);
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

int atr_workspace_get(const atr_domain_t *dom, const atr_actor_t *actor,
                      const char *id, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = open_db(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = atr__workspace_for(&db, actor, id, ATR_ACT_READ, out, fault);
  atr_db_close(&db);
  return rc;
}

int atr_workspace_get_by_name(const atr_domain_t *dom, const atr_actor_t *actor,
                              const char *owner, const char *name, json_t **out,
                              atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = open_db(dom, &db, fault);
  if (rc != 0)
    return rc;
  char id[37] = "";
  char *err = NULL;
  rc = resolve_user(&db, owner, id, fault);
  atr_value_t p[] = {atr_v_text(id), atr_v_text(name)};
  if (rc == 0)
    rc = atr_select_one(&db, &atr__workspaces,
                        "WHERE w.owner_id = ? AND lower(w.name) = lower(?) "
                        "AND w.deleted = FALSE",
                        p, 2, out, &err);
  if (rc == ATR_ENOENT && fault && !fault->code)
    atr_fault_set(fault, rc, "Workspace not found.", "%s", name ? name : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  if (rc == 0)
    rc = atr__workspace_allowed(&db, actor, *out, ATR_ACT_READ, fault);
  atr_db_close(&db);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
  }
  free(err);
  return rc;
}
