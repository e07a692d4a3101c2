/* core/api/api_jobs.h — what template versions and workspace builds share in
 * the API: a job's log answered as a page or followed as server-sent
 * events, and a cancel answered. The job itself (its JSON, its log rows,
 * canceling it) is the domain's (job_view.h).
 *
 * Threads: HTTP worker threads (the request's). */
#ifndef ATRIUM_CORE_API_JOBS_H
#define ATRIUM_CORE_API_JOBS_H

#include <jansson.h>
#include <stdbool.h>

#include "api.h"
#include "job_view.h"

/* ?after=N and ?follow=true of a log request; answers 400 and returns -1
 * on a bad value. */
int atr_api_job_logs_query(atr_api_req_t *r, int64_t *after, bool *follow);
/* Answer a log whose first page (after `after`) was read: that page, or,
 * when following, every line as it comes until the job ends. Takes the
 * page's lines. */
int atr_api_job_logs_answer(atr_api_req_t *r, const char *job_id, int64_t after,
                            bool follow, atr_job_log_page_t *first);

/* GET .../logs for a job whose owner the caller has checked: ?after=N,
 * ?follow=true. */
int atr_api_job_logs(atr_api_req_t *r, const char *job_id);
/* PATCH .../cancel for a job whose owner the caller has checked; answers
 * itself. */
int atr_api_job_cancel(atr_api_req_t *r, const char *job_id);

#endif
