/* core/api_workspaces.c — workspaces and builds.
 *
 * Every build (the first one with the workspace) is written with its job
 * and parameter values in one transaction and announced after the
 * commit. Values are checked against the version's schema and the last
 * build's values first; a refused build writes nothing. */
#include "api_workspaces.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_jobs.h"
#include "api_policy.h"
#include "api_templates.h"
#include "atrium/error.h"
#include "audit.h"
#include "events.h"
#include "params.h"
#include "policy_hooks.h"
#include "queue.h"

#define MASKED "********"

/* ---- reading builds and workspaces --------------------------------------- */

#define BUILD_SELECT                                                           \
  "SELECT b.id, b.workspace_id, w.name, w.owner_id, ou.username, "             \
  "b.template_version_id, v.name, b.build_number, b.transition, b.reason, "    \
  "b.initiator_id, iu.username, b.created_at, "                                \
  "b.updated_at, " ATR_API_JOB_COLUMNS                                         \
  " FROM workspace_builds b JOIN workspaces w ON w.id = "                      \
  "b.workspace_id JOIN users ou ON ou.id = w.owner_id JOIN "                   \
  "template_versions v ON v.id = b.template_version_id LEFT JOIN users iu "    \
  "ON iu.id = b.initiator_id JOIN provisioner_jobs j ON j.id = b.job_id "
#define BUILD_NCOLS 14

static json_t *build_row(atr_db_t *db, atr_db_rows_t *rows) {
  json_t *job = atr_api_job_row(db, rows, BUILD_NCOLS);
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
      cur = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:[]}", "id",
                      atr_row_text(db, rows, 0), "job_id",
                      atr_row_text(db, rows, 1), "transition",
                      atr_row_text(db, rows, 2), "type",
                      atr_row_text(db, rows, 3), "name",
                      atr_row_text(db, rows, 4), "created_at",
                      atr_time_json(atr_db_get_time(db, rows, 5)), "metadata");
      json_array_append_new(list, cur);
    }
    if (atr_db_is_null(db, rows, 6))
      continue;
    bool sensitive = atr_db_get_bool(db, rows, 8);
    const char *value = atr_db_get_text(db, rows, 7);
    json_array_append_new(
        json_object_get(cur, "metadata"),
        json_pack("{s:s, s:o, s:b}", "key", atr_row_text(db, rows, 6), "value",
                  sensitive || !value ? json_null() : json_string(value),
                  "sensitive", sensitive));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static int complete_build(atr_db_t *db, json_t *b, char **err) {
  int rc = atr_api_job_add_tags(db, json_object_get(b, "job"), err);
  return rc == 0 ? add_resources(db, b, err) : rc;
}

static const atr_select_t builds = {BUILD_SELECT, build_row, complete_build};

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
  int rc = atr_select_one(db, &builds,
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

static const atr_select_t workspaces = {WORKSPACE_SELECT, workspace_row,
                                        add_latest_build};

static int load_workspace(atr_store_t *store, const char *id, json_t **out,
                          char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  rc = atr_select_one(&db, &workspaces, "WHERE w.id = ?", p, 1, out, err);
  atr_db_close(&db);
  return rc;
}

/* May the actor `act` on w? Answers 403 when not. */
static bool may(atr_api_req_t *r, json_t *w, atr_action_t act) {
  bool self = strcmp(atr_json_str(w, "owner_id"), r->actor.user_id) == 0;
  return atr_api_authorize(r, atr_json_str(w, "organization_id"),
                           ATR_RES_WORKSPACE, act, self);
}

/* {workspace} → the workspace the actor may `act` on; NULL after
 * answering. */
static json_t *workspace_for(atr_api_req_t *r, atr_action_t act) {
  json_t *w = atr_api_load(r, &workspaces, "WHERE w.id = ?", "workspace",
                           "Workspace not found.");
  if (w && !may(r, w, act)) {
    json_decref(w);
    return NULL;
  }
  return w;
}

json_t *atr__api_workspace_for(atr_api_req_t *r, atr_action_t act) {
  return workspace_for(r, act);
}

/* ---- writing builds ------------------------------------------------------ */

typedef struct new_build {
  /* in */
  const char *workspace_id; /* "" for a new workspace: made here */
  const char *owner_id, *org_id, *template_id, *version_id;
  const char *ws_name;
  bool has_ttl;
  int64_t ttl;
  const char *transition;
  const char *initiator_id;
  json_t *values; /* name → value (borrowed) */
  bool orphan;
  /* out */
  char new_workspace_id[37];
  char build_id[37];
  char job_id[37];
  int64_t number;
  json_t *errors; /* validations when the values were refused */
  /* The Workspace (a new one) or WorkspaceBuild, read in the transaction:
   * its job as created, pending. */
  json_t *answer;
  const char *refused; /* a reason to answer 409/400 with */
  int refused_status;
  json_t *decision;  /* the policies' (atr_decision_to_json), when noteworthy */
  json_t *deny_body; /* the 403 answer of a policy's deny */
} new_build_t;

/* The last build's values (name → value) as a JSON object, or NULL for the
 * first build; *active whether its job is still pending or running. */
static int last_build(atr_db_t *db, new_build_t *nb, json_t **values,
                      bool *active, char **err) {
  atr_value_t k[] = {atr_v_text(nb->workspace_id)};
  atr_db_rows_t *rows = NULL;
  char id[37] = "";
  *values = NULL;
  *active = false;
  int rc = atr_db_query(db,
                        "SELECT b.id, b.build_number, j.completed_at FROM "
                        "workspace_builds b JOIN provisioner_jobs j ON j.id = "
                        "b.job_id WHERE b.workspace_id = ? ORDER BY "
                        "b.build_number DESC LIMIT 1",
                        k, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    snprintf(id, sizeof id, "%s", atr_row_text(db, rows, 0));
    nb->number = atr_db_get_int(db, rows, 1);
    *active = atr_db_is_null(db, rows, 2);
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  if (rc < 0 || !id[0])
    return rc < 0 ? rc : 0;
  *values = json_object();
  atr_value_t p[] = {atr_v_text(id)};
  return atr_select_object(db,
                           "SELECT name, value FROM "
                           "workspace_build_parameters WHERE "
                           "workspace_build_id = ?",
                           p, 1, *values, err);
}

/* The version's import job: its provisioner and tags. */
static int version_job(atr_db_t *db, const char *version_id, char prov[64],
                       json_t **tags, char **err) {
  atr_value_t k[] = {atr_v_text(version_id)};
  char *p = NULL;
  int rc = atr_db_query_text(db,
                             "SELECT j.provisioner FROM template_versions v "
                             "JOIN provisioner_jobs j ON j.id = v.job_id "
                             "WHERE v.id = ?",
                             k, 1, &p, err);
  if (rc != 0)
    return rc;
  snprintf(prov, 64, "%s", p);
  free(p);
  *tags = json_object();
  return atr_select_object(db,
                           "SELECT t.key, t.value FROM provisioner_job_tags "
                           "t JOIN template_versions v ON v.job_id = "
                           "t.job_id WHERE v.id = ?",
                           k, 1, *tags, err);
}

static int insert_workspace(atr_db_t *db, new_build_t *nb, char **err) {
  atr_db_new_uuid(nb->new_workspace_id);
  nb->workspace_id = nb->new_workspace_id;
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(nb->workspace_id),
                     atr_v_time(now),
                     atr_v_time(now),
                     atr_v_text(nb->owner_id),
                     atr_v_text(nb->org_id),
                     atr_v_text(nb->template_id),
                     atr_v_text(nb->ws_name),
                     nb->has_ttl ? atr_v_int(nb->ttl) : atr_v_null(),
                     atr_v_time(now)};
  return atr_db_exec(db,
                     "INSERT INTO workspaces (id, created_at, updated_at, "
                     "owner_id, organization_id, template_id, name, ttl, "
                     "last_used_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     p, 9, NULL, err);
}

static int insert_build(atr_db_t *db, new_build_t *nb, json_t *resolved,
                        char **err) {
  char prov[64];
  json_t *tags = NULL;
  int rc = version_job(db, nb->version_id, prov, &tags, err);
  atr_db_new_uuid(nb->build_id);
  json_t *input = json_pack("{s:s, s:b}", "workspace_build_id", nb->build_id,
                            "orphan", nb->orphan);
  char *input_text = json_dumps(input, JSON_COMPACT);
  json_decref(input);
  atr_job_new_t job = {.type = "workspace_build",
                       .provisioner = prov,
                       .organization_id = nb->org_id,
                       .initiator_id = nb->initiator_id,
                       .file_id = NULL,
                       .input = input_text,
                       .tags = tags};
  /* The job runs the version's archive. */
  char *file_id = NULL;
  atr_value_t k[] = {atr_v_text(nb->version_id)};
  if (rc == 0)
    rc = atr_db_query_text(db,
                           "SELECT j.file_id FROM template_versions v JOIN "
                           "provisioner_jobs j ON j.id = v.job_id WHERE "
                           "v.id = ?",
                           k, 1, &file_id, err);
  job.file_id = file_id;
  if (rc == 0)
    rc = atr_jobs_insert(db, &job, nb->job_id, err);
  free(input_text);
  free(file_id);
  json_decref(tags);
  nb->number++;
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(nb->build_id),
                     atr_v_time(now),
                     atr_v_time(now),
                     atr_v_text(nb->workspace_id),
                     atr_v_text(nb->version_id),
                     atr_v_int(nb->number),
                     atr_v_text(nb->transition),
                     atr_v_text(nb->initiator_id),
                     atr_v_text(nb->job_id)};
  if (rc == 0)
    rc = atr_db_exec(db,
                     "INSERT INTO workspace_builds (id, created_at, "
                     "updated_at, workspace_id, template_version_id, "
                     "build_number, transition, initiator_id, job_id) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     p, 9, NULL, err);
  const char *name;
  json_t *value;
  json_object_foreach(resolved, name, value) {
    if (rc != 0)
      break;
    atr_value_t q[] = {atr_v_text(nb->build_id), atr_v_text(name),
                       atr_v_text(json_string_value(value))};
    rc = atr_db_exec(db,
                     "INSERT INTO workspace_build_parameters "
                     "(workspace_build_id, name, value) VALUES (?, ?, ?)",
                     q, 3, NULL, err);
  }
  return rc;
}

/* Only a version whose import succeeded has a schema to build with. */
static int check_imported(atr_db_t *db, new_build_t *nb, char **err) {
  atr_value_t k[] = {atr_v_text(nb->version_id)};
  int64_t ok = 0;
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM template_versions v JOIN "
                            "provisioner_jobs j ON j.id = v.job_id WHERE v.id "
                            "= ? AND j.completed_at IS NOT NULL AND j.error "
                            "IS NULL AND j.canceled_at IS NULL",
                            k, 1, &ok, err);
  if (rc == 0 && ok == 0) {
    nb->errors =
        json_pack("[{s:s, s:s}]", "field", "template_version_id", "detail",
                  "The template version's import has not succeeded; "
                  "see its logs.");
    nb->refused = "The template version cannot be built.";
  }
  return rc;
}

static int read_answer(atr_db_t *db, new_build_t *nb, char **err) {
  json_decref(nb->answer);
  nb->answer = NULL;
  if (nb->new_workspace_id[0]) {
    atr_value_t p[] = {atr_v_text(nb->workspace_id)};
    return atr_select_one(db, &workspaces, "WHERE w.id = ?", p, 1, &nb->answer,
                          err);
  }
  atr_value_t p[] = {atr_v_text(nb->build_id)};
  return atr_select_one(db, &builds, "WHERE b.id = ?", p, 1, &nb->answer, err);
}

/* ---- policies ------------------------------------------------------------ */

static int policy_input(atr_db_t *db, const new_build_t *nb, json_t *previous,
                        json_t *resolved, json_t **out, char **err) {
  json_t *in = json_object();
  int rc = atr_policy_input_people(db, nb->initiator_id, nb->org_id, in, err);
  atr_value_t k[] = {atr_v_text(nb->template_id), atr_v_text(nb->version_id),
                     atr_v_text(nb->owner_id)};
  atr_db_rows_t *rows = NULL;
  if (rc == 0)
    rc = atr_db_query(db,
                      "SELECT t.name, v.name, u.username FROM templates t, "
                      "template_versions v, users u WHERE t.id = ? AND v.id "
                      "= ? AND u.id = ?",
                      k, 3, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_object_set_new(in, "template",
                        json_pack("{s:s, s:s}", "id", nb->template_id, "name",
                                  atr_row_text(db, rows, 0)));
    json_object_set_new(in, "version",
                        json_pack("{s:s, s:s}", "id", nb->version_id, "name",
                                  atr_row_text(db, rows, 1)));
    json_t *ws = json_pack("{s:s, s:s}", "name", nb->ws_name, "owner",
                           atr_row_text(db, rows, 2));
    if (!nb->new_workspace_id[0])
      json_object_set_new(ws, "id", json_string(nb->workspace_id));
    json_object_set_new(in, "workspace", ws);
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  json_object_set_new(in, "transition", json_string(nb->transition));
  json_object_set_new(
      in, "parameters",
      json_pack("{s:O?, s:O}", "old", previous, "new", resolved));
  *out = in;
  return rc < 0 ? rc : 0;
}

/* The template version's own policy (name and text), NULL when none. */
static int template_policy(atr_db_t *db, const char *version_id, char **name,
                           char **source, char **err) {
  atr_value_t k[] = {atr_v_text(version_id)};
  atr_db_rows_t *rows = NULL;
  *name = *source = NULL;
  int rc = atr_db_query(db,
                        "SELECT policy_name, policy_source FROM "
                        "template_versions WHERE id = ?",
                        k, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1 &&
      !atr_db_is_null(db, rows, 1)) {
    *name = strdup(atr_row_text(db, rows, 0));
    *source = strdup(atr_row_text(db, rows, 1));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

/* A deny: 403 with every message (api_policy.h). */
static void refuse_by_policy(new_build_t *nb, const atr_decision_t *d) {
  nb->refused = "Denied by policy.";
  nb->refused_status = 403;
  nb->deny_body = atr_api_policy_denied(d);
}

/* Values a policy set are checked against the schema like the caller's. */
static int take_sets(new_build_t *nb, const atr_manifest_t *m,
                     const atr_decision_t *d, json_t *previous,
                     json_t **resolved) {
  json_t *values = json_deep_copy(*resolved);
  for (size_t i = 0; i < d->nsets; i++)
    json_object_set_new(values, d->sets[i].name, json_string(d->sets[i].value));
  json_t *again = NULL, *errors = NULL;
  int rc = atr_manifest_check_values(m, values, previous, &again, &errors);
  json_decref(values);
  if (rc != 0) {
    nb->refused = "A policy set a parameter to a value the template does "
                  "not allow.";
    nb->refused_status = 403;
    nb->errors = errors;
    return 0;
  }
  json_decref(*resolved);
  *resolved = again;
  return 0;
}

/* workspace_create or build: the deployment's policies and the version's
 * own. A deny refuses the build; values a policy set replace the
 * caller's; warnings go back with the answer. */
static int apply_policies(atr_db_t *db, new_build_t *nb,
                          const atr_manifest_t *m, json_t *previous,
                          json_t **resolved, char **err) {
  json_t *input = NULL;
  char *name = NULL, *source = NULL;
  int rc = policy_input(db, nb, previous, *resolved, &input, err);
  if (rc == 0)
    rc = template_policy(db, nb->version_id, &name, &source, err);
  atr_decision_t d;
  atr_decision_init(&d);
  if (rc == 0)
    rc = atr_policy_hooks_eval(nb->new_workspace_id[0] ? "workspace_create"
                                                       : "build",
                               input, name, source, &d);
  if (rc == 0 && atr_policy_hooks_noteworthy(&d))
    nb->decision = atr_decision_to_json(&d);
  if (rc == 0 && atr_decision_denied(&d))
    refuse_by_policy(nb, &d);
  else if (rc == 0 && d.nsets > 0)
    rc = take_sets(nb, m, &d, previous, resolved);
  atr_decision_clear(&d);
  json_decref(input);
  free(name);
  free(source);
  return rc;
}

static int build_tx(atr_db_t *db, void *ud, char **err) {
  new_build_t *nb = ud;
  nb->number = 0;
  json_decref(nb->errors);
  nb->errors = NULL;
  nb->refused = NULL;
  json_decref(nb->decision);
  nb->decision = NULL;
  json_decref(nb->deny_body);
  nb->deny_body = NULL;
  json_t *previous = NULL;
  bool active = false;
  int rc = 0;
  if (nb->new_workspace_id[0])
    nb->workspace_id = ""; /* a retry: the first attempt rolled back */
  if (!nb->workspace_id[0])
    rc = insert_workspace(db, nb, err);
  else
    rc = last_build(db, nb, &previous, &active, err);
  if (rc == 0 && active) {
    nb->refused = "The workspace's latest build is still running; wait for "
                  "it or cancel it.";
    nb->refused_status = 409;
  }
  if (rc == 0 && !nb->refused)
    rc = check_imported(db, nb, err);
  atr_manifest_t m = {0};
  json_t *resolved = NULL;
  if (rc == 0 && !nb->refused)
    rc = atr_schema_load(db, nb->version_id, &m, err);
  if (rc == 0 && !nb->refused &&
      atr_manifest_check_values(&m, nb->values, previous, &resolved,
                                &nb->errors) != 0)
    nb->refused = "Invalid parameter values.";
  if (rc == 0 && !nb->refused)
    rc = apply_policies(db, nb, &m, previous, &resolved, err);
  if (rc == 0 && !nb->refused)
    rc = insert_build(db, nb, resolved, err);
  if (rc == 0 && !nb->refused)
    rc = read_answer(db, nb, err);
  atr_manifest_free(&m);
  json_decref(resolved);
  json_decref(previous);
  /* A refusal writes nothing: roll back (the workspace row too). */
  return rc == 0 && nb->refused ? ATR_ECANCELED : rc;
}

/* Run build_tx and answer a refusal or failure; 0 when the build was made
 * (nothing answered yet). The caller announces the job after making its
 * answer, so the answer shows the job as created: pending. */
static int make_build(atr_api_req_t *r, new_build_t *nb) {
  char *err = NULL;
  int rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, build_tx, nb, &err);
  if (rc == ATR_ECANCELED && nb->deny_body) {
    atr_api_json(r, 403, nb->deny_body);
    nb->deny_body = NULL;
  } else if (rc == ATR_ECANCELED && nb->refused_status == 403) {
    /* a value a policy set that the schema refuses */
    atr_api_json(r, 403,
                 json_pack("{s:s, s:s, s:O}", "message", nb->refused, "detail",
                           "", "validations", nb->errors));
  } else if (rc == ATR_ECANCELED && nb->errors) {
    atr_api_validation(r, nb->refused, nb->errors);
    nb->errors = NULL;
  } else if (rc == ATR_ECANCELED) {
    atr_api_error(r, nb->refused_status, nb->refused, "");
  } else if (atr_db_unique_violation(rc, err)) {
    atr_api_error(r, 409, "The owner already has a workspace with this name.",
                  nb->ws_name ? nb->ws_name : "");
  } else if (rc != 0) {
    atr_api_fail(r, rc, err);
  }
  free(err);
  json_decref(nb->errors);
  nb->errors = NULL;
  atr_api_policy_audit(r, nb->decision,
                       nb->new_workspace_id[0] ? NULL : nb->workspace_id,
                       nb->ws_name, nb->org_id, rc == 0 ? 201 : r->status);
  if (rc == 0 && nb->decision && nb->answer)
    json_object_set(nb->answer, "warnings",
                    json_object_get(nb->decision, "warnings"));
  json_decref(nb->deny_body);
  nb->deny_body = NULL;
  return rc;
}

/* rich_parameter_values: [{"name", "value"}] → {name: value}; NULL and a
 * validation when malformed. */
static json_t *read_values(json_t *body, json_t *v) {
  json_t *list = json_object_get(body, "rich_parameter_values");
  json_t *out = json_object();
  if (!list || json_is_null(list))
    return out;
  bool ok = json_is_array(list);
  size_t i;
  json_t *item;
  json_array_foreach(list, i, item) {
    const char *name = json_string_value(json_object_get(item, "name"));
    json_t *value = json_object_get(item, "value");
    if (!name || !*name || !json_is_string(value)) {
      ok = false;
      break;
    }
    json_object_set(out, name, value);
  }
  if (!ok) {
    atr_api_add_validation(
        v, "rich_parameter_values",
        "Must be a list of {\"name\": ..., \"value\": \"...\"} "
        "with string values.");
    json_decref(out);
    return NULL;
  }
  return out;
}

/* ---- handlers ------------------------------------------------------------ */

/* {user} → id into out; answers 404 itself. */
static int resolve_user(atr_api_req_t *r, char out[37]) {
  const char *who = atr_api_param(r, "user");
  if (strcmp(who, "me") == 0)
    who = r->actor.user_id;
  atr_db_t db;
  char *err = NULL;
  char *id = NULL;
  atr_value_t p[] = {atr_v_uuid_or_null(who), atr_v_text(who)};
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_db_query_text(&db,
                           "SELECT id FROM users WHERE deleted = FALSE AND "
                           "(id = ? OR lower(username) = lower(?))",
                           p, 2, &id, &err);
    atr_db_close(&db);
  }
  if (rc == ATR_ENOENT)
    atr_api_error(r, 404, "User not found.", who);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    snprintf(out, 37, "%s", id);
  free(id);
  free(err);
  return rc;
}

/* The template (and version) a new workspace is made from; validations
 * for what is wrong. */
static json_t *pick_template(atr_api_req_t *r, json_t *body, json_t *v,
                             const char **version_id) {
  const char *tid = atr_api_opt_string(body, "template_id", v);
  const char *vid = atr_api_opt_string(body, "template_version_id", v);
  atr_db_t db;
  char *err = NULL;
  json_t *t = NULL;
  char *vt = NULL;
  if (atr_db_open(r->env->dom.store, &db, &err) != 0) {
    atr_api_add_validation(v, "template_id", "The database is not reachable.");
    free(err);
    return NULL;
  }
  atr_value_t k[] = {atr_v_uuid_or_null(vid)};
  if (!tid && vid &&
      atr_db_query_text(&db,
                        "SELECT template_id FROM template_versions WHERE id "
                        "= ? AND template_id IS NOT NULL",
                        k, 1, &vt, &err) == 0)
    tid = vt;
  if (!tid || atr_api_load_template(&db, tid, &t, &err) != 0)
    atr_api_add_validation(
        v, vid && !tid ? "template_version_id" : "template_id",
        "Required: an existing template (template_id) or one of "
        "its versions (template_version_id).");
  char *check = NULL;
  atr_value_t q[] = {atr_v_uuid_or_null(vid), atr_v_text(tid)};
  if (t && vid &&
      atr_db_query_text(&db,
                        "SELECT id FROM template_versions WHERE id = ? AND "
                        "template_id = ?",
                        q, 2, &check, &err) != 0)
    atr_api_add_validation(v, "template_version_id",
                           "Not a version of the template.");
  atr_db_close(&db);
  free(check);
  free(vt);
  free(err);
  if (t)
    *version_id = vid ? vid : atr_json_str(t, "active_version_id");
  return t;
}

static bool is_member(atr_api_req_t *r, const char *org, const char *user) {
  atr_db_t db;
  char *err = NULL;
  int64_t one = 0;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  atr_value_t p[] = {atr_v_text(org), atr_v_text(user)};
  if (rc == 0) {
    rc = atr_db_query_int(&db,
                          "SELECT 1 FROM organization_members WHERE "
                          "organization_id = ? AND user_id = ?",
                          p, 2, &one, &err);
    atr_db_close(&db);
  }
  free(err);
  return rc == 0;
}

static bool read_ws_ttl(json_t *body, new_build_t *nb, json_t *v) {
  json_t *j = json_object_get(body, "ttl_ms");
  if (!j || json_is_null(j))
    return true;
  if (!json_is_integer(j) || json_integer_value(j) < 0) {
    atr_api_add_validation(v, "ttl_ms",
                           "Must be a whole number of milliseconds.");
    return false;
  }
  nb->has_ttl = true;
  nb->ttl = json_integer_value(j);
  return true;
}

int atr_api_workspace_create(atr_api_req_t *r) {
  char owner[37];
  if (resolve_user(r, owner) != 0)
    return 0;
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  new_build_t nb = {.workspace_id = "",
                    .owner_id = owner,
                    .transition = "start",
                    .initiator_id = r->actor.user_id};
  nb.ws_name = atr_api_opt_string(body, "name", v);
  const char *bad = atr_name_problem(nb.ws_name);
  if (bad)
    atr_api_add_validation(v, "name", bad);
  read_ws_ttl(body, &nb, v);
  json_t *t = pick_template(r, body, v, &nb.version_id);
  nb.values = read_values(body, v);
  if (t) {
    nb.template_id = atr_json_str(t, "id");
    nb.org_id = atr_json_str(t, "organization_id");
    if (r->org_id[0] && strcmp(r->org_id, nb.org_id) != 0)
      atr_api_add_validation(v, "template_id",
                             "The template belongs to another organization.");
    else if (!is_member(r, nb.org_id, owner))
      atr_api_add_validation(v, "template_id",
                             "The owner is not a member of the template's "
                             "organization.");
  }
  if (json_array_size(v) > 0) {
    atr_api_validation(r, "Invalid workspace.", v);
    v = NULL;
  } else if (make_build(r, &nb) == 0) {
    atr_api_json(r, 201, nb.answer);
    nb.answer = NULL;
    atr_events_job_posted(r->env->dom.events);
    atr_api_audit(r, "create", "workspace", nb.workspace_id, nb.ws_name,
                  nb.org_id, NULL);
  }
  json_decref(nb.values);
  json_decref(nb.answer);
  json_decref(nb.decision);
  json_decref(t);
  json_decref(v);
  json_decref(body);
  return 0;
}

int atr_api_workspaces_list(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, 100, &limit, &offset) != 0)
    return 0;
  char obuf[80], tbuf[80], dbuf[8];
  const char *owner = atr_api_query(r, "owner", obuf, sizeof obuf);
  const char *tmpl = atr_api_query(r, "template", tbuf, sizeof tbuf);
  const char *deleted = atr_api_query(r, "deleted", dbuf, sizeof dbuf);
  if (owner && strcmp(owner, "me") == 0)
    owner = r->actor.username;
  bool all =
      atr_rbac_allowed(r->actor.roles, ATR_RES_WORKSPACE, ATR_ACT_READ, false);
  /* Members see only their own, whatever they ask for. */
  atr_value_t p[] = {atr_v_bool(deleted && strcmp(deleted, "true") == 0),
                     atr_v_text(all ? "" : r->actor.user_id),
                     atr_v_text(owner ? owner : ""),
                     atr_v_text(tmpl ? tmpl : ""),
                     atr_v_int(limit),
                     atr_v_int(offset)};
  static const char where[] =
      "WHERE w.deleted = ? AND (? = '' OR CAST(w.owner_id AS TEXT) = ?) "
      "AND (? = '' OR lower(u.username) = lower(?)) AND (? = '' OR "
      "lower(t.name) = lower(?)) ORDER BY w.created_at DESC, w.id "
      "LIMIT ? OFFSET ?";
  atr_value_t q[] = {p[0], p[1], p[1], p[2], p[2], p[3], p[3], p[4], p[5]};
  atr_db_t db;
  char *err = NULL;
  json_t *a = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_select_list(&db, &workspaces, where, q, 9, &a, &err);
    atr_db_close(&db);
  }
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, 200,
                 json_pack("{s:o, s:I}", "workspaces", a, "count",
                           (json_int_t)json_array_size(a)));
  free(err);
  return 0;
}

int atr_api_workspace_get(atr_api_req_t *r) {
  json_t *w = workspace_for(r, ATR_ACT_READ);
  return w ? atr_api_json(r, 200, w) : 0;
}

int atr_api_workspace_by_name(atr_api_req_t *r) {
  char owner[37];
  if (resolve_user(r, owner) != 0)
    return 0;
  const char *name = atr_api_param(r, "workspacename");
  atr_db_t db;
  char *err = NULL;
  json_t *w = NULL;
  atr_value_t p[] = {atr_v_text(owner), atr_v_text(name)};
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_select_one(&db, &workspaces,
                        "WHERE w.owner_id = ? AND lower(w.name) = lower(?) "
                        "AND w.deleted = FALSE",
                        p, 2, &w, &err);
    atr_db_close(&db);
  }
  if (rc == ATR_ENOENT)
    atr_api_error(r, 404, "Workspace not found.", name);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else if (may(r, w, ATR_ACT_READ))
    atr_api_json(r, 200, json_incref(w));
  json_decref(w);
  free(err);
  return 0;
}

static bool valid_transition(const char *t) {
  return t && (strcmp(t, "start") == 0 || strcmp(t, "stop") == 0 ||
               strcmp(t, "delete") == 0);
}

/* The version a build uses: the one asked for (of the workspace's
 * template), else the last build's. */
static const char *build_version(atr_api_req_t *r, json_t *w, json_t *body,
                                 json_t *v, char out[37]) {
  const char *vid = atr_api_opt_string(body, "template_version_id", v);
  json_t *latest = json_object_get(w, "latest_build");
  if (!vid) {
    snprintf(out, 37, "%s", atr_json_str(latest, "template_version_id"));
    return out;
  }
  atr_db_t db;
  char *err = NULL;
  char *check = NULL;
  atr_value_t q[] = {atr_v_uuid_or_null(vid),
                     atr_v_text(atr_json_str(w, "template_id"))};
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_db_query_text(&db,
                           "SELECT id FROM template_versions WHERE id = ? AND "
                           "template_id = ?",
                           q, 2, &check, &err);
    atr_db_close(&db);
  }
  if (rc != 0)
    atr_api_add_validation(v, "template_version_id",
                           "Not a version of the workspace's template.");
  snprintf(out, 37, "%s", vid);
  free(check);
  free(err);
  return out;
}

int atr_api_workspace_build_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  const char *transition = atr_api_opt_string(body, "transition", v);
  json_t *w = NULL;
  if (!valid_transition(transition))
    atr_api_add_validation(v, "transition", "Must be start, stop or delete.");
  else
    w = workspace_for(r, strcmp(transition, "delete") == 0 ? ATR_ACT_DELETE
                                                           : ATR_ACT_UPDATE);
  if (!w && r->status != 0) {
    json_decref(v);
    json_decref(body);
    return 0;
  }
  json_t *orphan = json_object_get(body, "orphan");
  bool is_orphan = json_is_true(orphan);
  if (orphan && !json_is_boolean(orphan))
    atr_api_add_validation(v, "orphan", "Must be true or false.");
  if (is_orphan && transition && strcmp(transition, "delete") != 0)
    atr_api_add_validation(v, "orphan",
                           "Only a delete can be an orphan delete.");
  char version[37] = "";
  new_build_t nb = {.transition = transition,
                    .initiator_id = r->actor.user_id,
                    .orphan = is_orphan,
                    .values = read_values(body, v)};
  if (w) {
    nb.workspace_id = atr_json_str(w, "id");
    nb.owner_id = atr_json_str(w, "owner_id");
    nb.org_id = atr_json_str(w, "organization_id");
    nb.template_id = atr_json_str(w, "template_id");
    nb.ws_name = atr_json_str(w, "name");
    nb.version_id = build_version(r, w, body, v, version);
  }
  if (w && json_is_true(json_object_get(w, "deleted")))
    atr_api_error(r, 400, "The workspace is deleted.", atr_json_str(w, "name"));
  else if (json_array_size(v) > 0) {
    atr_api_validation(r, "Invalid build.", v);
    v = NULL;
  } else if (make_build(r, &nb) == 0) {
    atr_api_json(r, 201, nb.answer);
    nb.answer = NULL;
    atr_events_job_posted(r->env->dom.events);
    json_t *diff = NULL;
    atr_audit_diff_add(&diff, "transition", NULL, transition, false);
    atr_api_audit(r, "write", "workspace", nb.workspace_id, nb.ws_name,
                  nb.org_id, diff);
    json_decref(diff);
  }
  json_decref(nb.values);
  json_decref(nb.answer);
  json_decref(nb.decision);
  json_decref(w);
  json_decref(v);
  json_decref(body);
  return 0;
}

int atr_api_workspace_builds_list(atr_api_req_t *r) {
  json_t *w = workspace_for(r, ATR_ACT_READ);
  if (!w)
    return 0;
  atr_api_list_page(r, &builds,
                    "WHERE b.workspace_id = ? ORDER BY b.build_number DESC "
                    "LIMIT ? OFFSET ?",
                    atr_json_str(w, "id"), 25);
  json_decref(w);
  return 0;
}

/* {workspacebuild} → the build, with the actor allowed to `act` on its
 * workspace; NULL after answering. */
static json_t *build_for(atr_api_req_t *r, atr_action_t act) {
  const char *id = atr_api_param(r, "workspacebuild");
  atr_db_t db;
  char *err = NULL;
  json_t *b = NULL;
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_select_one(&db, &builds, "WHERE b.id = ?", p, 1, &b, &err);
    atr_db_close(&db);
  }
  free(err);
  err = NULL;
  json_t *w = NULL;
  if (rc == 0)
    rc = load_workspace(r->env->dom.store, atr_json_str(b, "workspace_id"), &w,
                        &err);
  if (rc == ATR_ENOENT)
    atr_api_error(r, 404, "Workspace build not found.", id);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  free(err);
  bool ok = rc == 0 && may(r, w, act);
  json_decref(w);
  if (!ok) {
    json_decref(b);
    return NULL;
  }
  return b;
}

int atr_api_build_get(atr_api_req_t *r) {
  json_t *b = build_for(r, ATR_ACT_READ);
  return b ? atr_api_json(r, 200, b) : 0;
}

int atr_api_build_logs(atr_api_req_t *r) {
  json_t *b = build_for(r, ATR_ACT_READ);
  if (b)
    atr_api_job_logs(r, atr_json_str(json_object_get(b, "job"), "id"));
  json_decref(b);
  return 0;
}

int atr_api_build_cancel(atr_api_req_t *r) {
  json_t *b = build_for(r, ATR_ACT_UPDATE);
  if (!b)
    return 0;
  atr_api_job_cancel(r, atr_json_str(json_object_get(b, "job"), "id"));
  if (r->status == 200)
    atr_api_audit(r, "write", "workspace_build", atr_json_str(b, "id"),
                  atr_json_str(b, "workspace_name"), NULL, NULL);
  json_decref(b);
  return 0;
}

int atr_api_build_resources(atr_api_req_t *r) {
  json_t *b = build_for(r, ATR_ACT_READ);
  if (b)
    atr_api_json(r, 200, json_incref(json_object_get(b, "resources")));
  json_decref(b);
  return 0;
}

int atr_api_build_params(atr_api_req_t *r) {
  json_t *b = build_for(r, ATR_ACT_READ);
  if (!b)
    return 0;
  atr_db_t db;
  char *err = NULL;
  atr_db_rows_t *rows = NULL;
  atr_value_t p[] = {atr_v_text(atr_json_str(b, "template_version_id")),
                     atr_v_text(atr_json_str(b, "id"))};
  json_t *a = json_array();
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0) {
    rc = atr_db_query(&db,
                      "SELECT p.name, p.value, tp.sensitive FROM "
                      "workspace_build_parameters p LEFT JOIN "
                      "template_version_parameters tp ON "
                      "tp.template_version_id = ? AND tp.name = p.name WHERE "
                      "p.workspace_build_id = ? ORDER BY tp.display_order, "
                      "p.name",
                      p, 2, &rows, &err);
    while (rc == 0 && (rc = atr_db_next(&db, rows, &err)) == 1) {
      json_array_append_new(a, json_pack("{s:s, s:s}", "name",
                                         atr_row_text(&db, rows, 0), "value",
                                         atr_db_get_bool(&db, rows, 2)
                                             ? MASKED
                                             : atr_row_text(&db, rows, 1)));
      rc = 0;
    }
    atr_db_rows_close(&db, rows);
    atr_db_close(&db);
  }
  if (rc < 0) {
    json_decref(a);
    atr_api_fail(r, rc, err);
  } else {
    atr_api_json(r, 200, a);
  }
  json_decref(b);
  free(err);
  return 0;
}

/* The provisioner state the build stored, as it is (Coder's
 * /workspacebuilds/{id}/state). States can hold secrets (Terraform keeps
 * sensitive values in plain text), so only those who may change the
 * workspace's template get it. */
int atr_api_build_state(atr_api_req_t *r) {
  json_t *b = build_for(r, ATR_ACT_READ);
  if (!b)
    return 0;
  json_t *w = NULL;
  char *err = NULL;
  int rc = load_workspace(r->env->dom.store, atr_json_str(b, "workspace_id"),
                          &w, &err);
  if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else if (atr_api_authorize(r, atr_json_str(w, "organization_id"),
                               ATR_RES_TEMPLATE, ATR_ACT_UPDATE, false)) {
    atr_db_t db;
    atr_db_rows_t *rows = NULL;
    atr_value_t p[] = {atr_v_text(atr_json_str(b, "id"))};
    rc = atr_db_open(r->env->dom.store, &db, &err);
    if (rc == 0) {
      rc = atr_db_query(&db,
                        "SELECT provisioner_state FROM workspace_builds "
                        "WHERE id = ?",
                        p, 1, &rows, &err);
      if (rc == 0 && (rc = atr_db_next(&db, rows, &err)) == 1) {
        size_t len = 0;
        const void *data = atr_db_get_blob(&db, rows, 0, &len);
        rc = 0;
        if (atr_db_is_null(&db, rows, 0))
          atr_api_no_content(r);
        else
          atr_api_raw(r, 200, "application/octet-stream", data, len);
      }
      atr_db_rows_close(&db, rows);
      atr_db_close(&db);
    }
    if (rc < 0)
      atr_api_fail(r, rc, err);
  }
  json_decref(w);
  json_decref(b);
  free(err);
  return 0;
}
