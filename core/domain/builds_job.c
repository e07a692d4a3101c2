/* core/domain/builds_job.c — what a build's job leaves and how it is
 * stopped (builds.h): its log, canceling it, and the provisioner state it
 * stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "builds.h"
#include "dbcrypt.h"
#include "workspaces_rows.h"

/* The build id (and its workspace when w is not NULL), when the actor may
 * `act` on its workspace. */
static int build_for(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *id, atr_action_t act, json_t **b, json_t **w,
                     atr_fault_t *fault) {
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = atr__build_for(&db, actor, id, act, b, w, fault);
  atr_db_close(&db);
  return rc;
}

static const char *job_of(json_t *b) {
  return atr_json_str(json_object_get(b, "job"), "id");
}

int atr_build_logs(const atr_domain_t *dom, const atr_actor_t *actor,
                   const char *id, int64_t after, char job_id[37],
                   atr_job_log_page_t *page, atr_fault_t *fault) {
  json_t *b = NULL;
  job_id[0] = '\0';
  page->lines = NULL;
  int rc = build_for(dom, actor, id, ATR_ACT_READ, &b, NULL, fault);
  if (rc == 0) {
    char *err = NULL;
    snprintf(job_id, 37, "%s", job_of(b));
    rc = atr_job_logs_page(dom, job_id, after, page, &err);
    if (rc != 0) {
      atr_fault_internal(fault, rc, err);
      atr_job_log_page_clear(page);
    }
    free(err);
  }
  json_decref(b);
  return rc;
}

int atr_build_cancel(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *id, atr_fault_t *fault) {
  json_t *b = NULL;
  int rc = build_for(dom, actor, id, ATR_ACT_UPDATE, &b, NULL, fault);
  if (rc == 0)
    rc = atr_job_cancel(dom, job_of(b), fault);
  if (rc == 0)
    atr_audit_record(dom->store, actor,
                     &(atr_audit_entry_t){.action = "write",
                                          .resource_type = "workspace_build",
                                          .resource_id = atr_json_str(b, "id"),
                                          .resource_target =
                                              atr_json_str(b, "workspace_name"),
                                          .status_code = 200});
  json_decref(b);
  return rc;
}

/* Who may change the workspace's templates may read its states. */
static int may_read_state(atr_db_t *db, const atr_actor_t *actor, json_t *w,
                          atr_fault_t *fault) {
  char *err = NULL;
  int rc = atr_actor_allowed(db, actor, atr_json_str(w, "organization_id"),
                             ATR_RES_TEMPLATE, ATR_ACT_UPDATE, false, &err);
  if (rc == ATR_EPERM)
    atr_fault_set(fault, rc, "Forbidden.", "%s", err ? err : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

static int read_state(atr_db_t *db, const char *build_id, void **data,
                      size_t *len, char **err) {
  atr_db_rows_t *rows = NULL;
  atr_value_t p[] = {atr_v_text(build_id)};
  int rc = atr_db_query(db,
                        "SELECT provisioner_state, provisioner_state_key_id "
                        "FROM workspace_builds WHERE id = ?",
                        p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    size_t n = 0;
    const void *blob = atr_db_get_blob(db, rows, 0, &n);
    char *plain = NULL;
    rc = atr_db_is_null(db, rows, 0)
             ? 0
             : atr_dbcrypt_read(db->store, ATR_DBCRYPT_STATE, blob ? blob : "",
                                n, atr_db_get_text(db, rows, 1), &plain, len,
                                err);
    *data = plain;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

int atr_build_state(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *id, void **data, size_t *len,
                    atr_fault_t *fault) {
  *data = NULL;
  *len = 0;
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  json_t *b = NULL, *w = NULL;
  rc = atr__build_for(&db, actor, id, ATR_ACT_READ, &b, &w, fault);
  if (rc == 0)
    rc = may_read_state(&db, actor, w, fault);
  if (rc == 0 &&
      (rc = read_state(&db, atr_json_str(b, "id"), data, len, &err)) != 0)
    atr_fault_internal(fault, rc, err);
  atr_db_close(&db);
  json_decref(b);
  json_decref(w);
  free(err);
  return rc;
}
