/* core/api_jobs.c — see api_jobs.h. */
#include "api_jobs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "events.h"
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

static int send_event(atr_api_req_t *r, const char *event, json_t *data) {
  char *text = json_dumps(data, JSON_COMPACT);
  char *frame = NULL;
  int n = text ? asprintf(&frame, "event: %s\ndata: %s\n\n", event, text) : -1;
  free(text);
  if (n < 0)
    return ATR_ENOMEM;
  int rc = atr_api_stream_write(r, frame, (size_t)n);
  free(frame);
  return rc;
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Send a page's lines; *after moves past them. 0, or the write's error
 * (the client went). */
static int send_page(atr_api_req_t *r, const atr_job_log_page_t *page,
                     int64_t *after, int64_t *last_write) {
  int rc = 0;
  size_t i;
  json_t *line;
  json_array_foreach(page->lines, i, line) {
    if (rc == 0)
      rc = send_event(r, "log", line);
    *after = json_integer_value(json_object_get(line, "id"));
    *last_write = now_ms();
  }
  return rc;
}

/* Wait for the next change; false when the stream should end. */
static bool wait_more(atr_api_req_t *r, uint64_t seen, int64_t *last_write) {
  atr_events_t *ev = r->env->dom.events;
  if (atr_api_draining(r))
    return false;
  if (now_ms() - *last_write >= KEEPALIVE_MS) {
    if (atr_api_stream_write(r, ": keepalive\n\n", 13) != 0)
      return false;
    *last_write = now_ms();
  }
  if (ev)
    atr_events_wait(ev, ATR_EVENT_CHANGED, seen, FOLLOW_POLL_MS);
  else
    nanosleep(&(struct timespec){0, 200000000L}, NULL);
  return true;
}

/* Send lines as they come until the job ends, the client goes, or the
 * server stops. page holds the lines read before (the first page). */
static void follow(atr_api_req_t *r, const char *job_id, int64_t after,
                   atr_job_log_page_t *page) {
  atr_events_t *ev = r->env->dom.events;
  int64_t last_write = now_ms();
  /* The first page was read before anything was seen: read once more
   * before waiting, so a line written in between waits for no poll. */
  uint64_t seen = 0;
  bool fresh = false; /* the page was read after `seen` was taken */
  int rc = 0;
  for (;;) {
    rc = send_page(r, page, &after, &last_write);
    bool more = json_array_size(page->lines) == ATR_JOB_LOG_PAGE;
    bool ended = atr_job_status_ended(page->status);
    if (rc == 0 && !more && ended) {
      json_t *end =
          json_pack("{s:s, s:s}", "status", page->status, "error", page->error);
      send_event(r, "end", end);
      json_decref(end);
    }
    atr_job_log_page_clear(page);
    if (rc != 0 || (!more && ended))
      return; /* the client went, or the job ended */
    if (!more && fresh && !wait_more(r, seen, &last_write))
      return;
    fresh = true;
    seen = ev ? atr_events_gen(ev, ATR_EVENT_CHANGED) : 0;
    char *err = NULL;
    rc = atr_job_logs_page(&r->env->dom, job_id, after, page, &err);
    free(err);
    if (rc != 0) {
      atr_job_log_page_clear(page);
      return; /* the database went */
    }
  }
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
  follow(r, job_id, after, first);
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
