/* core/domain/job_view.h — a provisioner job as the people who asked for
 * it see it: the ProvisionerJob object that template versions and
 * workspace builds carry, its log read page by page, and canceling it.
 *
 * These functions check no permission: the caller has already checked the
 * template version or workspace build the job belongs to (builds.h does so
 * for builds), and passes the job's id on.
 *
 * Threads: any; each call that takes the domain opens its own connection.
 * Memory: a page's lines are the caller's (atr_job_log_page_clear).
 */
#ifndef ATRIUM_CORE_JOB_VIEW_H
#define ATRIUM_CORE_JOB_VIEW_H

#include <jansson.h>
#include <stdint.h>

#include "db.h"
#include "domain.h"
#include "fault.h"

/* The columns atr_job_view_json reads, for "SELECT " ATR_JOB_COLUMNS
 * " FROM provisioner_jobs j ..." (ATR_JOB_NCOLUMNS columns from `first`). */
#define ATR_JOB_COLUMNS                                                        \
  "j.id, j.type, j.created_at, j.started_at, j.completed_at, "                 \
  "j.canceled_at, j.error, j.file_id, j.worker_id, j.provisioner, "            \
  "j.updated_at, j.logs_overflowed"
#define ATR_JOB_NCOLUMNS 12

/* A ProvisionerJob from the current row, columns from `first` on; its
 * "tags" are empty until atr_job_view_add_tags fills them. */
json_t *atr_job_view_json(atr_db_t *db, atr_db_rows_t *rows, size_t first);
/* The job's tags added to job (a ProvisionerJob object). */
int atr_job_view_add_tags(atr_db_t *db, json_t *job, char **err);

/* How many lines one page holds at most. */
#define ATR_JOB_LOG_PAGE 1000

typedef struct atr_job_log_page {
  json_t *lines;   /* ProvisionerJobLog objects after `after`, oldest first */
  char status[16]; /* the job's status, read before the lines: lines stored
                      before the job ended are all there once it has */
  char error[512]; /* the job's error, "" for none */
} atr_job_log_page_t;

/* The lines of job_id after line `after` (at most ATR_JOB_LOG_PAGE) and
 * the job's status; ATR_ENOENT when there is no such job. */
int atr_job_logs_page(const atr_domain_t *dom, const char *job_id,
                      int64_t after, atr_job_log_page_t *page, char **err);
void atr_job_log_page_clear(atr_job_log_page_t *page);

/* Cancel job_id: a pending job ends canceled at once (a build keeps the
 * state before it), a running one is marked canceling for its daemon;
 * both are announced. ATR_EINVAL (400, "The job has already ended or is
 * being canceled.") when there is nothing to cancel. */
int atr_job_cancel(const atr_domain_t *dom, const char *job_id,
                   atr_fault_t *fault);

#endif
