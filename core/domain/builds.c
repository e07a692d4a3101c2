/* core/domain/builds.c — see builds.h. */
#include "builds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "builds_make.h"
#include "workspaces_rows.h"

#define MASKED "********"
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

static bool valid_transition(const char *t) {
  return t && (strcmp(t, "start") == 0 || strcmp(t, "stop") == 0 ||
               strcmp(t, "delete") == 0);
}

/* ---- create -------------------------------------------------------------------- */

/* The version a build uses: the one asked for (of the workspace's
 * template), else the last build's. */
static void pick_version(atr_db_t *db, json_t *w, const char *vid, char out[37],
                         atr_fault_t *v) {
  json_t *latest = json_object_get(w, "latest_build");
  if (!vid) {
    snprintf(out, 37, "%s", atr_json_str(latest, "template_version_id"));
    return;
  }
  char *err = NULL, *check = NULL;
  atr_value_t q[] = {atr_v_uuid_or_null(vid),
                     atr_v_text(atr_json_str(w, "template_id"))};
  if (atr_db_query_text(db,
                        "SELECT id FROM template_versions WHERE id = ? AND "
                        "template_id = ?",
                        q, 2, &check, &err) != 0)
    atr_fault_field(v, "template_version_id",
                    "Not a version of the workspace's template.");
  snprintf(out, 37, "%s", vid);
  free(check);
  free(err);
}

/* The workspace, when the build may be tried on it; version[] gets the
 * version it builds. */
static int check_build(atr_db_t *db, const atr_actor_t *actor,
                       const atr_build_new_t *in, json_t **w, char version[37],
                       atr_fault_t *fault) {
  bool del = strcmp(in->transition, "delete") == 0;
  int rc = atr__workspace_for(db, actor, in->workspace_id,
                              del ? ATR_ACT_DELETE : ATR_ACT_UPDATE, w, fault);
  if (rc != 0)
    return rc;
  atr_fault_t v = {0};
  if (in->problems)
    v.validations = json_deep_copy(in->problems);
  if (in->orphan && !del)
    atr_fault_field(&v, "orphan", "Only a delete can be an orphan delete.");
  pick_version(db, *w, in->template_version_id, version, &v);
  if (json_is_true(json_object_get(*w, "deleted"))) {
    rc = atr_fault_set(fault, ATR_EINVAL, "The workspace is deleted.", "%s",
                       atr_json_str(*w, "name"));
  } else if (atr_fault_has_fields(&v)) {
    rc = atr_fault_set(fault, ATR_EINVAL, "Invalid build.", "%s", "");
    fault->validations = v.validations;
    v.validations = NULL;
  }
  atr_fault_clear(&v);
  return rc;
}

static void audit_build(const atr_domain_t *dom, const atr_actor_t *actor,
                        const atr__new_build_t *nb) {
  json_t *diff = NULL;
  atr_audit_diff_add(&diff, "transition", NULL, nb->transition, false);
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){.action = "write",
                                        .resource_type = "workspace",
                                        .resource_id = nb->workspace_id,
                                        .resource_target = nb->ws_name,
                                        .organization_id = nb->org_id,
                                        .diff = diff,
                                        .status_code = 201});
  json_decref(diff);
}

int atr_build_create(const atr_domain_t *dom, const atr_actor_t *actor,
                     const atr_build_new_t *in, json_t **out,
                     atr_fault_t *fault) {
  *out = NULL;
  if (!valid_transition(in->transition)) {
    atr_fault_set(fault, ATR_EINVAL, "Invalid build.", "%s", "");
    atr_fault_field(fault, "transition", "Must be start, stop or delete.");
    return ATR_EINVAL;
  }
  atr_db_t db;
  int rc = open_db(dom, &db, fault);
  if (rc != 0)
    return rc;
  json_t *w = NULL;
  char version[37] = "";
  rc = check_build(&db, actor, in, &w, version, fault);
  atr_db_close(&db);
  json_t *none = json_object();
  atr__new_build_t nb = {.workspace_id = atr_json_str(w, "id"),
                         .owner_id = atr_json_str(w, "owner_id"),
                         .org_id = atr_json_str(w, "organization_id"),
                         .template_id = atr_json_str(w, "template_id"),
                         .version_id = version,
                         .ws_name = atr_json_str(w, "name"),
                         .transition = in->transition,
                         .initiator_id = atr_actor_is_user(actor)
                                             ? actor->user_id
                                             : SYSTEM_INITIATOR,
                         .values = in->values ? in->values : none,
                         .orphan = in->orphan};
  if (rc == 0)
    rc = atr__build_make(dom, actor, &nb, fault);
  if (rc == 0) {
    *out = nb.answer;
    audit_build(dom, actor, &nb);
  }
  json_decref(nb.decision);
  json_decref(none);
  json_decref(w);
  return rc;
}

/* ---- read ---------------------------------------------------------------------- */

int atr_builds_list(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *workspace_id, int64_t limit, int64_t offset,
                    json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = open_db(dom, &db, fault);
  if (rc != 0)
    return rc;
  json_t *w = NULL;
  char *err = NULL;
  rc = atr__workspace_for(&db, actor, workspace_id, ATR_ACT_READ, &w, fault);
  atr_value_t p[] = {atr_v_text(atr_json_str(w, "id")), atr_v_int(limit),
                     atr_v_int(offset)};
  if (rc == 0 && (rc = atr_select_list(&db, &atr__builds,
                                       "WHERE b.workspace_id = ? ORDER BY "
                                       "b.build_number DESC LIMIT ? OFFSET ?",
                                       p, 3, out, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  atr_db_close(&db);
  json_decref(w);
  free(err);
  return rc;
}

/* The build id, when the actor may `act` on its workspace. */
static int build_for(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *id, atr_action_t act, json_t **out, json_t **w,
                     atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = open_db(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = atr__build_for(&db, actor, id, act, out, w, fault);
  atr_db_close(&db);
  return rc;
}

int atr_build_get(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *id, json_t **out, atr_fault_t *fault) {
  return build_for(dom, actor, id, ATR_ACT_READ, out, NULL, fault);
}

int atr_build_resources(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *id, json_t **out, atr_fault_t *fault) {
  json_t *b = NULL;
  int rc = build_for(dom, actor, id, ATR_ACT_READ, &b, NULL, fault);
  *out = rc == 0 ? json_incref(json_object_get(b, "resources")) : NULL;
  json_decref(b);
  return rc;
}

static int read_parameters(atr_db_t *db, json_t *b, json_t *a, char **err) {
  atr_db_rows_t *rows = NULL;
  atr_value_t p[] = {atr_v_text(atr_json_str(b, "template_version_id")),
                     atr_v_text(atr_json_str(b, "id"))};
  int rc = atr_db_query(db,
                        "SELECT p.name, p.value, tp.sensitive, "
                        "p.value_key_id FROM "
                        "workspace_build_parameters p LEFT JOIN "
                        "template_version_parameters tp ON "
                        "tp.template_version_id = ? AND tp.name = p.name "
                        "WHERE p.workspace_build_id = ? ORDER BY "
                        "tp.display_order, p.name",
                        p, 2, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_array_append_new(
        a,
        json_pack("{s:s, s:s}", "name", atr_row_text(db, rows, 0), "value",
                  atr_db_get_bool(db, rows, 2) || !atr_db_is_null(db, rows, 3)
                      ? MASKED
                      : atr_row_text(db, rows, 1)));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

int atr_build_parameters(const atr_domain_t *dom, const atr_actor_t *actor,
                         const char *id, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = open_db(dom, &db, fault);
  if (rc != 0)
    return rc;
  json_t *b = NULL, *a = json_array();
  char *err = NULL;
  rc = atr__build_for(&db, actor, id, ATR_ACT_READ, &b, NULL, fault);
  if (rc == 0 && (rc = read_parameters(&db, b, a, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  atr_db_close(&db);
  if (rc == 0)
    *out = json_incref(a);
  json_decref(a);
  json_decref(b);
  free(err);
  return rc;
}
