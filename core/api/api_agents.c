/* core/api/api_agents.c — users' reads of workspace agents (api_agents.h).
 * A followed log is a detached stream, like a build's (api_jobs.c): the
 * worker returns at once and a pump steps the follower until the agent's
 * lines are all sent and it will write no more. */
#include "api_agents.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "atrium/error.h"
#include "http_exchange.h"

#define KEEPALIVE_MS 15000
/* Agents' lines announce no event the pump waits on: poll. */
#define FOLLOW_POLL_MS 500
#define PAGE_MAX 1000
/* Pages one step sends before letting other streams have the pump. */
#define FOLLOW_PAGES_PER_STEP 4

static const char *agent_param(atr_api_req_t *r) {
  return atr_api_param(r, "workspaceagent");
}

int atr_api_workspace_agent_get(atr_api_req_t *r) {
  json_t *out = NULL;
  atr_fault_t f = {0};
  int rc = atr_agent_get(&r->env->dom, &r->actor, agent_param(r), &out, &f);
  return atr_api_answer(r, rc, 200, out, &f);
}

int atr_api_workspace_agent_ports(atr_api_req_t *r) {
  json_t *out = NULL;
  atr_fault_t f = {0};
  int rc = atr_agent_ports(&r->env->dom, &r->actor, agent_param(r), &out, &f);
  return atr_api_answer(r, rc, 200, out, &f);
}

int atr_api_workspace_agent_metadata(atr_api_req_t *r) {
  json_t *out = NULL;
  atr_fault_t f = {0};
  int rc =
      atr_agent_metadata(&r->env->dom, &r->actor, agent_param(r), &out, &f);
  return atr_api_answer(r, rc, 200, out, &f);
}

/* ---- logs ------------------------------------------------------------------- */

typedef struct logs_query {
  int64_t after, limit;
  bool follow;
} logs_query_t;

/* ?name= as a whole number in [min, max] (absent: stays as is); false
 * after adding a validation. */
static bool query_number(atr_api_req_t *r, const char *name, int64_t min,
                         int64_t max, int64_t *out, json_t *v) {
  char buf[32], *end = NULL;
  const char *s = atr_api_query(r, name, buf, sizeof buf);
  if (!s)
    return true;
  errno = 0;
  long long n = strtoll(s, &end, 10);
  if (*s && !*end && errno == 0 && n >= min && n <= max) {
    *out = n;
    return true;
  }
  char detail[80];
  snprintf(detail, sizeof detail, "Must be a whole number from %lld to %lld.",
           (long long)min, (long long)max);
  atr_api_add_validation(v, name, detail);
  return false;
}

static int read_query(atr_api_req_t *r, logs_query_t *q) {
  *q = (logs_query_t){0};
  json_t *v = json_array();
  query_number(r, "after", 0, INT64_MAX, &q->after, v);
  query_number(r, "limit", 0, PAGE_MAX, &q->limit, v);
  char fbuf[8];
  const char *f = atr_api_query(r, "follow", fbuf, sizeof fbuf);
  q->follow = f && (strcmp(f, "true") == 0 || strcmp(f, "1") == 0);
  if (f && !q->follow && strcmp(f, "false") != 0 && strcmp(f, "0") != 0)
    atr_api_add_validation(v, "follow", "Must be true or false.");
  if (json_array_size(v) == 0) {
    json_decref(v);
    return 0;
  }
  atr_api_validation(r, "Invalid query parameters.", v);
  return -1;
}

typedef struct follow {
  const atr_api_env_t *env;
  atr_actor_t actor; /* the request's fields cleared: they die with it */
  char agent_id[37];
  int64_t after;
  int64_t last_write;
} follow_t;

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

/* Send a page and, when it is the last of an agent that writes no more,
 * the end event: DONE when the stream is over, AGAIN when a full page
 * says more lines wait, else WAIT. Steals lines. */
static int send_page(atr_http_exchange_t *x, follow_t *f, json_t *lines,
                     bool final) {
  int rc = 0;
  size_t i;
  json_t *line;
  json_array_foreach(lines, i, line) {
    if (rc == 0)
      rc = send_event(x, "log", line);
    f->after = json_integer_value(json_object_get(line, "id"));
    f->last_write = now_ms();
  }
  bool more = json_array_size(lines) == PAGE_MAX;
  json_decref(lines);
  if (rc == 0 && !more && final) {
    json_t *end = json_pack("{s:s}", "agent_id", f->agent_id);
    send_event(x, "end", end);
    json_decref(end);
  }
  if (rc != 0 || (!more && final))
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
    json_t *lines = NULL;
    bool final = false;
    atr_fault_t fault = {0};
    int rc = atr_agent_logs(&f->env->dom, &f->actor, f->agent_id, f->after,
                            PAGE_MAX, &lines, &final, &fault);
    atr_fault_clear(&fault);
    if (rc != 0) {
      json_decref(lines);
      return ATR_HTTP_STEP_DONE; /* the database went, or access did */
    }
    state = send_page(x, f, lines, final);
  }
  if (state == ATR_HTTP_STEP_WAIT && now_ms() - f->last_write >= KEEPALIVE_MS) {
    if (atr__http_stream_write(x, ": keepalive\n\n", 13) != 0)
      return ATR_HTTP_STEP_DONE;
    f->last_write = now_ms();
  }
  if (state == ATR_HTTP_STEP_WAIT && atr__http_draining(x))
    return ATR_HTTP_STEP_DONE;
  return state;
}

static int follow_logs(atr_api_req_t *r, const logs_query_t *q, json_t *first,
                       bool final) {
  if (atr_api_stream_begin(r, "text/event-stream") != 0) {
    json_decref(first);
    return atr_api_error(r, 500, "Internal error.", "cannot stream");
  }
  follow_t *f = calloc(1, sizeof *f);
  if (!f) {
    json_decref(first);
    return 0; /* the stream closes with nothing sent */
  }
  *f = (follow_t){.env = r->env,
                  .actor = r->actor,
                  .after = q->after,
                  .last_write = now_ms()};
  f->actor.ip = f->actor.user_agent = f->actor.request_id = NULL;
  f->actor.org_id = NULL;
  snprintf(f->agent_id, sizeof f->agent_id, "%s", agent_param(r));
  if (send_page(r->x, f, first, final) == ATR_HTTP_STEP_DONE ||
      atr_api_stream_detach(r, follow_step, free, f, FOLLOW_POLL_MS) != 0)
    free(f);
  return 0;
}

int atr_api_workspace_agent_logs(atr_api_req_t *r) {
  logs_query_t q;
  if (read_query(r, &q) != 0)
    return 0;
  json_t *lines = NULL;
  bool final = false;
  atr_fault_t f = {0};
  /* a follower reads whole pages: its limit is the page */
  int rc = atr_agent_logs(&r->env->dom, &r->actor, agent_param(r), q.after,
                          q.follow ? PAGE_MAX : q.limit, &lines, &final, &f);
  if (rc != 0 || !q.follow)
    return atr_api_answer(r, rc, 200, lines, &f);
  atr_fault_clear(&f);
  return follow_logs(r, &q, lines, final);
}
