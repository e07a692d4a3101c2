/* core/api/api_agents.c — users' reads of workspace agents (api_agents.h).
 * A followed log is a detached stream, as a build's is (api_follow.h),
 * that ends once the agent's lines are all sent and it writes no more. */
#include "api_agents.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "api_follow.h"
#include "atrium/error.h"

/* Agents' lines announce no event the pump waits on: poll. */
#define FOLLOW_POLL_MS 500
#define PAGE_MAX 1000

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

/* A followed agent log (api_follow.h) reads pages as the user who asked. */
typedef struct agent_src {
  const atr_api_env_t *env;
  atr_actor_t actor; /* the request's fields cleared: they die with it */
  char agent_id[37];
} agent_src_t;

static void agent_end(const agent_src_t *src, atr_api_follow_page_t *page) {
  if (page->final)
    page->end = json_pack("{s:s}", "agent_id", src->agent_id);
}

static int agent_read(void *ud, int64_t after, atr_api_follow_page_t *page) {
  agent_src_t *src = ud;
  atr_fault_t fault = {0};
  int rc = atr_agent_logs(&src->env->dom, &src->actor, src->agent_id, after,
                          PAGE_MAX, &page->lines, &page->final, &fault);
  atr_fault_clear(&fault);
  if (rc == 0)
    agent_end(src, page);
  return rc; /* not 0: the database went, or access did */
}

static int follow_logs(atr_api_req_t *r, const logs_query_t *q, json_t *first,
                       bool final) {
  atr_api_follow_page_t page = {.lines = first, .final = final};
  agent_src_t *src = calloc(1, sizeof *src);
  if (!src) {
    atr_api_follow_page_clear(&page);
    if (atr_api_stream_begin(r, "text/event-stream") != 0)
      return atr_api_error(r, 500, "Internal error.", "cannot stream");
    return 0; /* the stream closes with nothing sent */
  }
  *src = (agent_src_t){.env = r->env, .actor = r->actor};
  src->actor.ip = src->actor.user_agent = src->actor.request_id = NULL;
  src->actor.org_id = NULL;
  snprintf(src->agent_id, sizeof src->agent_id, "%s", agent_param(r));
  agent_end(src, &page);
  atr_api_follow_src_t how = {.read = agent_read,
                              .free_fn = free,
                              .ud = src,
                              .page_max = PAGE_MAX,
                              .poll_ms = FOLLOW_POLL_MS,
                              .end_on_drain = true};
  return atr_api_follow(r, q->after, &page, &how);
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
