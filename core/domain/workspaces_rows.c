/* core/domain/workspaces_rows.c — see workspaces_rows.h. */
#include "workspaces_rows.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "atrium/error.h"
#include "job_view.h"
#include "queue.h"

/* ---- builds ---------------------------------------------------------------- */

#define BUILD_SELECT                                                           \
  "SELECT b.id, b.workspace_id, w.name, w.owner_id, ou.username, "             \
  "b.template_version_id, v.name, b.build_number, b.transition, b.reason, "    \
  "b.initiator_id, iu.username, b.created_at, "                                \
  "b.updated_at, " ATR_JOB_COLUMNS                                             \
  " FROM workspace_builds b JOIN workspaces w ON w.id = "                      \
  "b.workspace_id JOIN users ou ON ou.id = w.owner_id JOIN "                   \
  "template_versions v ON v.id = b.template_version_id LEFT JOIN users iu "    \
  "ON iu.id = b.initiator_id JOIN provisioner_jobs j ON j.id = b.job_id "
#define BUILD_NCOLS 14

static json_t *build_row(atr_db_t *db, atr_db_rows_t *rows) {
  json_t *job = atr_job_view_json(db, rows, BUILD_NCOLS);
  const char *initiator_name = atr_db_get_text(db, rows, 11);
  json_t *b = json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:s, s:s, s:o, s:o, "
      "s:o, s:o, s:s, s:[]}",
      "id", atr_row_text(db, rows, 0), "workspace_id",
      atr_row_text(db, rows, 1), "workspace_name", atr_row_text(db, rows, 2),
      "workspace_owner_id", atr_row_text(db, rows, 3), "workspace_owner_name",
      atr_row_text(db, rows, 4), "template_version_id",
      atr_row_text(db, rows, 5), "template_version_name",
      atr_row_text(db, rows, 6), "build_number",
      (json_int_t)atr_db_get_int(db, rows, 7), "transition",
      atr_row_text(db, rows, 8), "reason", atr_row_text(db, rows, 9),
      "initiator_id", atr_row_text(db, rows, 10), "initiator_name",
      initiator_name ? json_string(initiator_name) : json_null(), "created_at",
      atr_time_json(atr_db_get_time(db, rows, 12)), "updated_at",
      atr_time_json(atr_db_get_time(db, rows, 13)), "job", job, "status",
      atr_workspace_status(atr_json_str(job, "status"),
                           atr_row_text(db, rows, 8)),
      "resources");
  return b;
}

/* One resource, its metadata to come. */
static json_t *resource_json(atr_db_t *db, atr_db_rows_t *rows) {
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:[]}", "id",
                   atr_row_text(db, rows, 0), "job_id",
                   atr_row_text(db, rows, 1), "transition",
                   atr_row_text(db, rows, 2), "type", atr_row_text(db, rows, 3),
                   "name", atr_row_text(db, rows, 4), "created_at",
                   atr_time_json(atr_db_get_time(db, rows, 5)), "metadata");
}

static int add_resources(atr_db_t *db, json_t *build, char **err) {
  const char *job_id = atr_json_str(json_object_get(build, "job"), "id");
  atr_value_t k[] = {atr_v_text(job_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT r.id, r.job_id, r.transition, r.type, "
                        "r.name, r.created_at, m.key, m.value, m.sensitive "
                        "FROM workspace_resources r LEFT JOIN "
                        "workspace_resource_metadata m ON "
                        "m.workspace_resource_id = r.id WHERE r.job_id = ? "
                        "ORDER BY r.type, r.name, r.id, m.key",
                        k, 1, &rows, err);
  json_t *list = json_object_get(build, "resources");
  json_t *cur = NULL;
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    if (!cur ||
        strcmp(atr_json_str(cur, "id"), atr_row_text(db, rows, 0)) != 0) {
      cur = resource_json(db, rows);
      json_array_append_new(list, cur);
    }
    if (atr_db_is_null(db, rows, 6))
      continue;
    /* A sensitive value is never shown, only that there is one. */
    bool sensitive = atr_db_get_bool(db, rows, 8);
    const char *value = atr_db_get_text(db, rows, 7);
    json_array_append_new(
        json_object_get(cur, "metadata"),
        json_pack("{s:s, s:o, s:b}", "key", atr_row_text(db, rows, 6), "value",
                  sensitive || !value ? json_null() : json_string(value),
                  "sensitive", sensitive));
  }
  atr_db_rows_close(db, rows);
  if (rc >= 0)
    rc = atr_agents_add_to_resources(db, list, err);
  return rc < 0 ? rc : 0;
}

static int complete_build(atr_db_t *db, json_t *b, char **err) {
  int rc = atr_job_view_add_tags(db, json_object_get(b, "job"), err);
  return rc == 0 ? add_resources(db, b, err) : rc;
}

const atr_select_t atr__builds = {BUILD_SELECT, build_row, complete_build};

/* ---- workspaces -------------------------------------------------------------- */

#define WORKSPACE_SELECT                                                       \
  "SELECT w.id, w.name, w.owner_id, u.username, w.organization_id, "           \
  "w.template_id, t.name, t.active_version_id, w.created_at, w.updated_at, "   \
  "w.ttl, w.deleted, w.autostart_schedule FROM workspaces w JOIN users u "     \
  "ON u.id = w.owner_id JOIN templates t ON t.id = w.template_id "

static json_t *workspace_row(atr_db_t *db, atr_db_rows_t *rows) {
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:o}", "id",
      atr_row_text(db, rows, 0), "name", atr_row_text(db, rows, 1), "owner_id",
      atr_row_text(db, rows, 2), "owner_name", atr_row_text(db, rows, 3),
      "organization_id", atr_row_text(db, rows, 4), "template_id",
      atr_row_text(db, rows, 5), "template_name", atr_row_text(db, rows, 6),
      "template_active_version_id", atr_row_text(db, rows, 7), "created_at",
      atr_time_json(atr_db_get_time(db, rows, 8)), "updated_at",
      atr_time_json(atr_db_get_time(db, rows, 9)), "ttl_ms",
      atr_db_is_null(db, rows, 10)
          ? json_null()
          : json_integer((json_int_t)atr_db_get_int(db, rows, 10)),
      "deleted", atr_db_get_bool(db, rows, 11), "autostart_schedule",
      atr_db_is_null(db, rows, 12) ? json_null()
                                   : json_string(atr_row_text(db, rows, 12)));
}

static int add_latest_build(atr_db_t *db, json_t *w, char **err) {
  atr_value_t p[] = {atr_v_text(atr_json_str(w, "id"))};
  json_t *b = NULL;
  int rc = atr_select_one(db, &atr__builds,
                          "WHERE b.workspace_id = ? ORDER BY "
                          "b.build_number DESC LIMIT 1",
                          p, 1, &b, err);
  if (rc == ATR_ENOENT) {
    json_object_set_new(w, "latest_build", json_null());
    return 0;
  }
  if (rc != 0)
    return rc;
  json_object_set_new(
      w, "outdated",
      json_boolean(strcmp(atr_json_str(b, "template_version_id"),
                          atr_json_str(w, "template_active_version_id")) != 0));
  json_object_set_new(w, "latest_build", b);
  return 0;
}

const atr_select_t atr__workspaces = {WORKSPACE_SELECT, workspace_row,
                                      add_latest_build};

/* ---- the one the actor may act on ----------------------------------------------- */

int atr__workspace_allowed(atr_db_t *db, const atr_actor_t *actor,
                           const json_t *w, atr_action_t act,
                           atr_fault_t *fault) {
  bool self = atr_actor_is_user(actor) &&
              strcmp(atr_json_str(w, "owner_id"), actor->user_id) == 0;
  char *err = NULL;
  int rc = atr_actor_allowed(db, actor, atr_json_str(w, "organization_id"),
                             ATR_RES_WORKSPACE, act, self, &err);
  if (rc == ATR_EPERM)
    atr_fault_set(fault, rc, "Forbidden.", "%s", err ? err : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

/* One row of s whose id is `id`; not_found (404, the id as detail). */
static int load_one(atr_db_t *db, const atr_select_t *s, const char *where,
                    const char *id, const char *not_found, json_t **out,
                    atr_fault_t *fault) {
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  char *err = NULL;
  *out = NULL;
  int rc = atr_select_one(db, s, where, p, 1, out, &err);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, not_found, "%s", id ? id : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

int atr__workspace_for(atr_db_t *db, const atr_actor_t *actor, const char *id,
                       atr_action_t act, json_t **out, atr_fault_t *fault) {
  int rc = load_one(db, &atr__workspaces, "WHERE w.id = ?", id,
                    "Workspace not found.", out, fault);
  if (rc == 0)
    rc = atr__workspace_allowed(db, actor, *out, act, fault);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

int atr__build_for(atr_db_t *db, const atr_actor_t *actor, const char *id,
                   atr_action_t act, json_t **out, json_t **w,
                   atr_fault_t *fault) {
  static const char not_found[] = "Workspace build not found.";
  json_t *ws = NULL;
  int rc =
      load_one(db, &atr__builds, "WHERE b.id = ?", id, not_found, out, fault);
  if (rc == 0) {
    atr_fault_t lost = {0}; /* the workspace went: the build did too */
    rc = load_one(db, &atr__workspaces, "WHERE w.id = ?",
                  atr_json_str(*out, "workspace_id"), not_found, &ws, &lost);
    if (rc == ATR_ENOENT)
      atr_fault_set(fault, rc, not_found, "%s", id ? id : "");
    else if (rc != 0)
      atr_fault_internal(fault, rc, lost.detail);
    atr_fault_clear(&lost);
  }
  if (rc == 0)
    rc = atr__workspace_allowed(db, actor, ws, act, fault);
  if (rc != 0) {
    json_decref(*out);
    *out = NULL;
  }
  if (rc == 0 && w)
    *w = ws;
  else
    json_decref(ws);
  return rc;
}
