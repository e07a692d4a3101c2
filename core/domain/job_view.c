/* core/domain/job_view.c — see job_view.h. */
#include "job_view.h"

#include <stdio.h>
#include <stdlib.h>

#include "atrium/error.h"
#include "events.h"
#include "queue.h"
#include "rows.h"

json_t *atr_job_view_json(atr_db_t *db, atr_db_rows_t *rows, size_t first) {
  size_t c = first;
  bool started = !atr_db_is_null(db, rows, c + 3);
  bool completed = !atr_db_is_null(db, rows, c + 4);
  bool canceled = !atr_db_is_null(db, rows, c + 5);
  bool failed = !atr_db_is_null(db, rows, c + 6);
  const char *worker = atr_db_get_text(db, rows, c + 8);
  return json_pack(
      "{s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:s, s:s, s:o, s:s, s:o, s:b, "
      "s:{}}",
      "id", atr_row_text(db, rows, c), "type", atr_row_text(db, rows, c + 1),
      "status", atr_job_status(started, completed, canceled, failed),
      "created_at", atr_time_json(atr_db_get_time(db, rows, c + 2)),
      "started_at", atr_time_json(atr_db_get_time(db, rows, c + 3)),
      "completed_at", atr_time_json(atr_db_get_time(db, rows, c + 4)),
      "canceled_at", atr_time_json(atr_db_get_time(db, rows, c + 5)), "error",
      atr_row_text(db, rows, c + 6), "file_id", atr_row_text(db, rows, c + 7),
      "worker_id", worker ? json_string(worker) : json_null(), "provisioner",
      atr_row_text(db, rows, c + 9), "updated_at",
      atr_time_json(atr_db_get_time(db, rows, c + 10)), "logs_overflowed",
      atr_db_get_bool(db, rows, c + 11), "tags");
}

int atr_job_view_add_tags(atr_db_t *db, json_t *job, char **err) {
  atr_value_t k[] = {atr_v_text(json_string_value(json_object_get(job, "id")))};
  return atr_select_object(db,
                           "SELECT key, value FROM provisioner_job_tags "
                           "WHERE job_id = ? ORDER BY key",
                           k, 1, json_object_get(job, "tags"), err);
}

/* ---- logs ---------------------------------------------------------------- */

static int read_status(atr_db_t *db, const char *job_id,
                       atr_job_log_page_t *page, char **err) {
  atr_value_t k[] = {atr_v_text(job_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT started_at, completed_at, canceled_at, error "
                        "FROM provisioner_jobs WHERE id = ?",
                        k, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    snprintf(page->status, sizeof page->status, "%s",
             atr_job_status(
                 !atr_db_is_null(db, rows, 0), !atr_db_is_null(db, rows, 1),
                 !atr_db_is_null(db, rows, 2), !atr_db_is_null(db, rows, 3)));
    snprintf(page->error, sizeof page->error, "%s", atr_row_text(db, rows, 3));
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

static json_t *log_line(atr_db_t *db, atr_db_rows_t *rows) {
  return json_pack(
      "{s:I, s:o, s:s, s:s, s:s, s:s}", "id",
      (json_int_t)atr_db_get_int(db, rows, 0), "created_at",
      atr_time_json(atr_db_get_time(db, rows, 1)), "log_source",
      atr_row_text(db, rows, 2), "log_level", atr_row_text(db, rows, 3),
      "stage", atr_row_text(db, rows, 4), "output", atr_row_text(db, rows, 5));
}

int atr_job_logs_page(const atr_domain_t *dom, const char *job_id,
                      int64_t after, atr_job_log_page_t *page, char **err) {
  page->lines = json_array();
  page->status[0] = page->error[0] = '\0';
  atr_db_t db;
  int rc = atr_db_open(dom->store, &db, err);
  if (rc != 0)
    return rc;
  /* The status first: lines stored before the job ended are all there
   * when a later read sees it ended. */
  rc = read_status(&db, job_id, page, err);
  atr_value_t p[] = {atr_v_text(job_id), atr_v_int(after),
                     atr_v_int(ATR_JOB_LOG_PAGE)};
  atr_db_rows_t *rows = NULL;
  if (rc == 0)
    rc = atr_db_query(&db,
                      "SELECT id, created_at, source, level, stage, output "
                      "FROM provisioner_job_logs WHERE job_id = ? AND id > ? "
                      "ORDER BY id LIMIT ?",
                      p, 3, &rows, err);
  while (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    json_array_append_new(page->lines, log_line(&db, rows));
    rc = 0;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  return rc < 0 ? rc : 0;
}

void atr_job_log_page_clear(atr_job_log_page_t *page) {
  json_decref(page->lines);
  page->lines = NULL;
}

/* ---- cancel -------------------------------------------------------------- */

typedef struct cancel {
  const char *job_id;
  bool ended;
} cancel_t;

static int cancel_tx(atr_db_t *db, void *ud, char **err) {
  cancel_t *c = ud;
  int rc = atr_jobs_cancel(db, c->job_id, &c->ended, err);
  if (rc == 0 && c->ended) {
    /* A pending build that never ran keeps the state before it. */
    rc = atr_jobs_keep_previous_state(db, c->job_id, err);
  }
  return rc;
}

int atr_job_cancel(const atr_domain_t *dom, const char *job_id,
                   atr_fault_t *fault) {
  cancel_t c = {job_id, false};
  char *err = NULL;
  int rc = atr_db_tx(dom->store, ATR_TX_WRITE, cancel_tx, &c, &err);
  if (rc == ATR_EINVAL)
    atr_fault_set(fault, rc, "The job has already ended or is being canceled.",
                  "%s", err ? err : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  else if (c.ended)
    atr_events_job_changed(dom->events, job_id);
  else
    atr_events_job_cancel(dom->events, job_id);
  free(err);
  return rc;
}
