/* core/domain/builds_make.c — see builds_make.h. */
#include "builds_make.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "dbcrypt.h"
#include "events.h"
#include "params.h"
#include "policy_hooks.h"
#include "queue.h"
#include "rows.h"
#include "workspaces_rows.h"

/* A build's values (name → value, sensitive ones opened) into values. */
static int read_values(atr_db_t *db, const char *build_id, json_t *values,
                       char **err) {
  atr_value_t p[] = {atr_v_text(build_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT name, value, value_key_id FROM "
                        "workspace_build_parameters WHERE "
                        "workspace_build_id = ?",
                        p, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    const char *v = atr_row_text(db, rows, 1);
    char *plain = NULL;
    size_t len = 0;
    rc = atr_dbcrypt_read(db->store, ATR_DBCRYPT_PARAM, v, strlen(v),
                          atr_db_get_text(db, rows, 2), &plain, &len, err);
    if (rc == 0)
      json_object_set_new(values, atr_row_text(db, rows, 0),
                          json_stringn(plain, len));
    free(plain);
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

/* The last build's values (name → value) as a JSON object, or NULL for the
 * first build; *active whether its job is still pending or running. */
static int last_build(atr_db_t *db, atr__new_build_t *nb, json_t **values,
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
  return read_values(db, id, *values, err);
}

/* The version's import job: its provisioner, tags and archive, which the
 * build's job runs with. */
static int version_job(atr_db_t *db, const char *version_id, char prov[64],
                       char **file_id, json_t **tags, char **err) {
  atr_value_t k[] = {atr_v_text(version_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT j.provisioner, j.file_id FROM "
                        "template_versions v JOIN provisioner_jobs j ON j.id "
                        "= v.job_id WHERE v.id = ?",
                        k, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    snprintf(prov, 64, "%s", atr_row_text(db, rows, 0));
    *file_id = strdup(atr_row_text(db, rows, 1));
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  *tags = json_object();
  if (rc != 0)
    return rc;
  return atr_select_object(db,
                           "SELECT t.key, t.value FROM provisioner_job_tags "
                           "t JOIN template_versions v ON v.job_id = "
                           "t.job_id WHERE v.id = ?",
                           k, 1, *tags, err);
}

static int insert_workspace(atr_db_t *db, atr__new_build_t *nb, char **err) {
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

static int insert_job(atr_db_t *db, atr__new_build_t *nb, char **err) {
  char prov[64] = "";
  char *file_id = NULL;
  json_t *tags = NULL;
  int rc = version_job(db, nb->version_id, prov, &file_id, &tags, err);
  json_t *input = json_pack("{s:s, s:b}", "workspace_build_id", nb->build_id,
                            "orphan", nb->orphan);
  char *input_text = json_dumps(input, JSON_COMPACT);
  json_decref(input);
  atr_job_new_t job = {.type = "workspace_build",
                       .provisioner = prov,
                       .organization_id = nb->org_id,
                       .initiator_id = nb->initiator_id,
                       .file_id = file_id,
                       .input = input_text,
                       .tags = tags};
  if (rc == 0)
    rc = atr_jobs_insert(db, &job, nb->job_id, err);
  free(input_text);
  free(file_id);
  json_decref(tags);
  return rc;
}

static bool is_sensitive(const atr_manifest_t *m, const char *name) {
  for (size_t i = 0; i < m->nparams; i++)
    if (strcmp(m->params[i].name, name) == 0)
      return m->params[i].sensitive;
  return false;
}

/* Sensitive values are sealed when the deployment has a key (dbcrypt.h). */
static int insert_values(atr_db_t *db, const atr__new_build_t *nb,
                         const atr_manifest_t *m, json_t *resolved,
                         char **err) {
  const char *name;
  json_t *value;
  json_object_foreach(resolved, name, value) {
    atr_sealed_t v;
    int rc = atr_sealed_make(db->store, ATR_DBCRYPT_PARAM,
                             is_sensitive(m, name), json_string_value(value),
                             json_string_length(value), &v, err);
    atr_value_t q[] = {atr_v_text(nb->build_id), atr_v_text(name),
                       atr_sealed_text(&v), atr_sealed_key(&v)};
    if (rc == 0)
      rc = atr_db_exec(db,
                       "INSERT INTO workspace_build_parameters "
                       "(workspace_build_id, name, value, value_key_id) "
                       "VALUES (?, ?, ?, ?)",
                       q, 4, NULL, err);
    atr_sealed_free(&v);
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int insert_build(atr_db_t *db, atr__new_build_t *nb,
                        const atr_manifest_t *m, json_t *resolved, char **err) {
  atr_db_new_uuid(nb->build_id);
  int rc = insert_job(db, nb, err);
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
  return rc == 0 ? insert_values(db, nb, m, resolved, err) : rc;
}

/* Only a version whose import succeeded has a schema to build with. */
static int check_imported(atr_db_t *db, atr__new_build_t *nb, char **err) {
  atr_value_t k[] = {atr_v_text(nb->version_id)};
  int64_t ok = 0;
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM template_versions v JOIN "
                            "provisioner_jobs j ON j.id = v.job_id WHERE v.id "
                            "= ? AND j.completed_at IS NOT NULL AND j.error "
                            "IS NULL AND j.canceled_at IS NULL",
                            k, 1, &ok, err);
  if (rc == 0 && ok == 0) {
    atr_fault_set(&nb->refusal, ATR_EINVAL,
                  "The template version cannot be built.", "%s", "");
    atr_fault_field(&nb->refusal, "template_version_id",
                    "The template version's import has not succeeded; "
                    "see its logs.");
  }
  return rc;
}

static int read_answer(atr_db_t *db, atr__new_build_t *nb, char **err) {
  json_decref(nb->answer);
  nb->answer = NULL;
  if (nb->new_workspace_id[0]) {
    atr_value_t p[] = {atr_v_text(nb->workspace_id)};
    return atr_select_one(db, &atr__workspaces, "WHERE w.id = ?", p, 1,
                          &nb->answer, err);
  }
  atr_value_t p[] = {atr_v_text(nb->build_id)};
  return atr_select_one(db, &atr__builds, "WHERE b.id = ?", p, 1, &nb->answer,
                        err);
}

/* Where the build starts from: a new workspace, or the last build (which
 * must have ended). */
static int start_from(atr_db_t *db, atr__new_build_t *nb, json_t **previous,
                      char **err) {
  bool active = false;
  if (nb->new_workspace_id[0])
    nb->workspace_id = ""; /* a retry: the first attempt rolled back */
  if (!nb->workspace_id[0])
    return insert_workspace(db, nb, err);
  int rc = last_build(db, nb, previous, &active, err);
  if (rc == 0 && active)
    atr_fault_set(&nb->refusal, ATR_EBUSY,
                  "The workspace's latest build is still running; wait for "
                  "it or cancel it.",
                  "%s", "");
  return rc;
}

#define GOING(rc, nb) ((rc) == 0 && (nb)->refusal.code == 0)

static int build_tx(atr_db_t *db, void *ud, char **err) {
  atr__new_build_t *nb = ud;
  nb->number = 0;
  atr_fault_clear(&nb->refusal);
  json_decref(nb->decision);
  nb->decision = NULL;
  json_t *previous = NULL, *resolved = NULL, *errors = NULL;
  int rc = start_from(db, nb, &previous, err);
  if (GOING(rc, nb))
    rc = check_imported(db, nb, err);
  atr_manifest_t m = {0};
  if (GOING(rc, nb))
    rc = atr_schema_load(db, nb->version_id, &m, err);
  if (GOING(rc, nb) && atr_manifest_check_values(&m, nb->values, previous,
                                                 &resolved, &errors) != 0) {
    atr_fault_set(&nb->refusal, ATR_EINVAL, "Invalid parameter values.", "%s",
                  "");
    nb->refusal.validations = errors;
    errors = NULL;
  }
  if (GOING(rc, nb))
    rc = atr__build_policies(db, nb, &m, previous, &resolved, err);
  if (GOING(rc, nb))
    rc = insert_build(db, nb, &m, resolved, err);
  if (GOING(rc, nb))
    rc = read_answer(db, nb, err);
  atr_manifest_free(&m);
  json_decref(errors);
  json_decref(resolved);
  json_decref(previous);
  /* A refusal writes nothing: roll back (the workspace row too). */
  return rc == 0 && nb->refusal.code ? ATR_ECANCELED : rc;
}

/* The status an answer to code has (api.c's mapping), for the audit log. */
static int status_of(int code) {
  switch (code) {
  case 0:
    return 201;
  case ATR_ENOENT:
    return 404;
  case ATR_EPERM:
    return 403;
  case ATR_EEXIST:
  case ATR_ECONSTRAINT:
  case ATR_EBUSY:
    return 409;
  case ATR_EINVAL:
    return 400;
  case ATR_EUNAVAIL:
    return 503;
  default:
    return 500;
  }
}

/* Move the tx's outcome into fault. */
static int explain(atr__new_build_t *nb, int rc, const char *err,
                   atr_fault_t *fault) {
  if (rc == ATR_ECANCELED && nb->refusal.code) {
    rc = nb->refusal.code;
    if (fault && fault->code == 0) {
      atr_fault_clear(fault);
      *fault = nb->refusal;
      memset(&nb->refusal, 0, sizeof nb->refusal);
    }
  } else if (atr_db_unique_violation(rc, err)) {
    rc = atr_fault_set(fault, ATR_EEXIST,
                       "The owner already has a workspace with this name.",
                       "%s", nb->ws_name ? nb->ws_name : "");
  } else if (rc != 0) {
    atr_fault_internal(fault, rc, err);
  }
  atr_fault_clear(&nb->refusal);
  return rc;
}

int atr__build_make(const atr_domain_t *dom, const atr_actor_t *actor,
                    atr__new_build_t *nb, atr_fault_t *fault) {
  char *err = NULL;
  int rc = atr_db_tx(dom->store, ATR_TX_WRITE, build_tx, nb, &err);
  rc = explain(nb, rc, err, fault);
  free(err);
  atr_policy_audit(dom->store, actor, nb->decision,
                   nb->new_workspace_id[0] ? NULL : nb->workspace_id,
                   nb->ws_name, nb->org_id, status_of(rc));
  if (rc != 0) {
    json_decref(nb->answer);
    nb->answer = NULL;
    return rc;
  }
  if (nb->decision)
    json_object_set(nb->answer, "warnings",
                    json_object_get(nb->decision, "warnings"));
  /* After the answer was read: it shows the job as created, pending. */
  atr_events_job_posted(dom->events);
  return 0;
}
