/* core/api_jobs.c — see api_jobs.h. */
#include "api_jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_follow.h"
#include "atrium/error.h"
#include "queue.h"

#define FOLLOW_POLL_MS 1000

int atr_api_job_logs_query(atr_api_req_t *r, int64_t *after, bool *follow) {
  char buf[32], *end = NULL;
  const char *a = atr_api_query(r, "after", buf, sizeof buf);
  *after = 0;
  if (a) {
    errno = 0;
    long long n = strtoll(a, &end, 10);
    if (!*a || *end || errno != 0 || n < 0) {
      atr_api_validation(r, "Invalid query parameters.",
                         json_pack("[{s:s, s:s}]", "field", "after", "detail",
                                   "Must be a line number, 0 or more."));
      return -1;
    }
    *after = n;
  }
  char fbuf[8];
  const char *f = atr_api_query(r, "follow", fbuf, sizeof fbuf);
  *follow = f && (strcmp(f, "true") == 0 || strcmp(f, "1") == 0);
  return 0;
}

/* A followed build log (api_follow.h) reads pages of the job's lines; the
 * server's watcher wakes the stream when the job changed. */
typedef struct job_src {
  const atr_api_env_t *env;
  char *job_id;
} job_src_t;

/* A page of the job's lines into the follower's page, the end event's
 * data with it once the job has ended. Clears from. */
static void job_page(atr_job_log_page_t *from, atr_api_follow_page_t *to) {
  to->lines = from->lines;
  from->lines = NULL;
  to->final = atr_job_status_ended(from->status);
  if (to->final)
    to->end =
        json_pack("{s:s, s:s}", "status", from->status, "error", from->error);
  atr_job_log_page_clear(from);
}

static int job_read(void *ud, int64_t after, atr_api_follow_page_t *page) {
  job_src_t *src = ud;
  atr_job_log_page_t p = {0};
  char *err = NULL;
  int rc = atr_job_logs_page(&src->env->dom, src->job_id, after, &p, &err);
  free(err);
  job_page(&p, page); /* on error: empty; the stream ends (the database went) */
  return rc;
}

static void job_src_free(void *ud) {
  job_src_t *src = ud;
  if (src)
    free(src->job_id);
  free(src);
}

int atr_api_job_logs_answer(atr_api_req_t *r, const char *job_id, int64_t after,
                            bool follow_it, atr_job_log_page_t *first) {
  if (!follow_it) {
    atr_api_json(r, 200, first->lines);
    first->lines = NULL;
    return 0;
  }
  atr_api_follow_page_t page = {0};
  job_page(first, &page);
  job_src_t *src = calloc(1, sizeof *src);
  char *id = strdup(job_id);
  if (!src || !id) {
    free(src);
    free(id);
    atr_api_follow_page_clear(&page);
    if (atr_api_stream_begin(r, "text/event-stream") != 0)
      return atr_api_error(r, 500, "Internal error.", "cannot stream");
    return 0; /* the stream closes with nothing sent */
  }
  *src = (job_src_t){.env = r->env, .job_id = id};
  atr_api_follow_src_t how = {.read = job_read,
                              .free_fn = job_src_free,
                              .ud = src,
                              .page_max = ATR_JOB_LOG_PAGE,
                              .poll_ms = FOLLOW_POLL_MS};
  return atr_api_follow(r, after, &page, &how);
}

int atr_api_job_logs(atr_api_req_t *r, const char *job_id) {
  int64_t after = 0;
  bool follow_it = false;
  if (atr_api_job_logs_query(r, &after, &follow_it) != 0)
    return 0;
  atr_job_log_page_t page = {0};
  char *err = NULL;
  int rc = atr_job_logs_page(&r->env->dom, job_id, after, &page, &err);
  if (rc != 0) {
    atr_job_log_page_clear(&page);
    atr_api_fail(r, rc, err);
  } else {
    atr_api_job_logs_answer(r, job_id, after, follow_it, &page);
  }
  free(err);
  return 0;
}

int atr_api_job_cancel(atr_api_req_t *r, const char *job_id) {
  atr_fault_t fault = {0};
  if (atr_job_cancel(&r->env->dom, job_id, &fault) != 0)
    return atr_api_fault(r, &fault);
  return atr_api_json(r, 200, json_pack("{s:s}", "message", "Job canceled."));
}
