/* core/api_jobs.h — what template versions and workspace builds share:
 * their provisioner job as JSON, its log (read or followed as server-sent
 * events), and canceling it. */
#ifndef ATRIUM_CORE_API_JOBS_H
#define ATRIUM_CORE_API_JOBS_H

#include <jansson.h>

#include "api.h"

/* The columns atr_api_job_row reads, for "SELECT " ATR_API_JOB_COLUMNS
 * " FROM provisioner_jobs j ..." (12 columns, from `first`). */
#define ATR_API_JOB_COLUMNS                                                    \
  "j.id, j.type, j.created_at, j.started_at, j.completed_at, "                 \
  "j.canceled_at, j.error, j.file_id, j.worker_id, j.provisioner, "            \
  "j.updated_at, j.logs_overflowed"
#define ATR_API_JOB_NCOLUMNS 12

/* A ProvisionerJob from the current row, columns from `first` on. */
json_t *atr_api_job_row(atr_db_t *db, atr_db_rows_t *rows, size_t first);
/* The job's tags added to job (a ProvisionerJob object). */
int atr_api_job_add_tags(atr_db_t *db, json_t *job, char **err);

/* GET .../logs for the job: ?after=N, ?follow=true. */
int atr_api_job_logs(atr_api_req_t *r, const char *job_id);
/* PATCH .../cancel; answers itself. */
int atr_api_job_cancel(atr_api_req_t *r, const char *job_id);

#endif
