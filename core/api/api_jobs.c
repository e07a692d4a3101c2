/* core/api_jobs.c — see api_jobs.h. */
#include "api_jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "http_exchange.h"
#include "queue.h"

#define KEEPALIVE_MS 15000
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

/* A followed log is a detached stream (http_exchange.h): the request's
 * worker returns at once, and a pump steps the follower when a job
 * changed (the server's watcher wakes it), when its output drained, and
 * at least every FOLLOW_POLL_MS, in case an event was lost. */
typedef struct follow {
  const atr_api_env_t *env;
  char *job_id;
  int64_t after;
  int64_t last_write;
} follow_t;

/* Pages one step sends before letting other streams have the pump. */
#define FOLLOW_PAGES_PER_STEP 4

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int send_event(atr_http_exchange_t *x, const char *event, json_t *data) {
  char *text = json_dumps(data, JSON_COMPACT);
  char *frame = NULL;
  int n = text ? asprintf(&frame, "event: %s\ndata: %s\n\n", event, text) : -1;
  free(text);
  if (n < 0)
    return ATR_ENOMEM;
  int rc = atr__http_stream_write(x, frame, (size_t)n);
  free(frame);
  return rc;
}

/* Send a page's lines and, when it is the last of an ended job, the end
 * event; DONE when the stream is over (the job ended or the client
 * went), AGAIN when a full page says more lines wait, else WAIT. */
static int send_page(atr_http_exchange_t *x, follow_t *f,
                     atr_job_log_page_t *page) {
  int rc = 0;
  size_t i;
  json_t *line;
  json_array_foreach(page->lines, i, line) {
    if (rc == 0)
      rc = send_event(x, "log", line);
    f->after = json_integer_value(json_object_get(line, "id"));
    f->last_write = now_ms();
  }
  bool more = json_array_size(page->lines) == ATR_JOB_LOG_PAGE;
  bool ended = atr_job_status_ended(page->status);
  if (rc == 0 && !more && ended) {
    json_t *end =
        json_pack("{s:s, s:s}", "status", page->status, "error", page->error);
    send_event(x, "end", end);
    json_decref(end);
  }
  atr_job_log_page_clear(page);
  if (rc != 0 || (!more && ended))
    return ATR_HTTP_STEP_DONE;
  return more ? ATR_HTTP_STEP_AGAIN : ATR_HTTP_STEP_WAIT;
}

static int follow_step(atr_http_exchange_t *x, void *ud) {
  follow_t *f = ud;
  int state = ATR_HTTP_STEP_AGAIN;
  for (int i = 0; i < FOLLOW_PAGES_PER_STEP && state == ATR_HTTP_STEP_AGAIN;
       i++) {
    if (!atr__http_stream_writable(x))
      return ATR_HTTP_STEP_WAIT; /* woken again once the client has read */
    atr_job_log_page_t page = {0};
    char *err = NULL;
    int rc = atr_job_logs_page(&f->env->dom, f->job_id, f->after, &page, &err);
    free(err);
    if (rc != 0) {
      atr_job_log_page_clear(&page);
      return ATR_HTTP_STEP_DONE; /* the database went */
    }
    state = send_page(x, f, &page);
  }
  if (state == ATR_HTTP_STEP_WAIT && now_ms() - f->last_write >= KEEPALIVE_MS) {
    if (atr__http_stream_write(x, ": keepalive\n\n", 13) != 0)
      return ATR_HTTP_STEP_DONE;
    f->last_write = now_ms();
  }
  return state;
}

static void follow_free(void *ud) {
  follow_t *f = ud;
  free(f->job_id);
  free(f);
}

int atr_api_job_logs_answer(atr_api_req_t *r, const char *job_id, int64_t after,
                            bool follow_it, atr_job_log_page_t *first) {
  if (!follow_it) {
    atr_api_json(r, 200, first->lines);
    first->lines = NULL;
    return 0;
  }
  if (atr_api_stream_begin(r, "text/event-stream") != 0) {
    atr_job_log_page_clear(first);
    return atr_api_error(r, 500, "Internal error.", "cannot stream");
  }
  follow_t *f = calloc(1, sizeof *f);
  char *id = strdup(job_id);
  if (!f || !id) {
    free(f);
    free(id);
    atr_job_log_page_clear(first);
    return 0; /* the stream closes with what was sent */
  }
  *f = (follow_t){
      .env = r->env, .job_id = id, .after = after, .last_write = now_ms()};
  /* The first page was read before the stream began; the first step
   * reads again at once, so a line written in between waits for no
   * event. */
  if (send_page(r->x, f, first) == ATR_HTTP_STEP_DONE ||
      atr_api_stream_detach(r, follow_step, follow_free, f, FOLLOW_POLL_MS) !=
          0)
    follow_free(f);
  return 0;
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
