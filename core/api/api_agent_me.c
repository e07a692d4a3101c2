/* core/api/api_agent_me.c — a workspace agent's routes and how it is
 * admitted to them (api_agent_me.h). Each handler bounds and checks its
 * body, naming the field that is wrong, calls one domain function
 * (agents.h) and answers; a token the domain no longer accepts is 401. */
#include "api_agent_me.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agents.h"
#include "api_agent_body.h"
#include "api_agent_internal.h"
#include "atrium/error.h"
#include "http_exchange.h"

static const char unauthorized_detail[] =
    "Send the workspace agent's token in the Atrium-Session-Token header "
    "(or Authorization: Bearer).";

/* ---- admission ------------------------------------------------------------- */

/* The token in Atrium-Session-Token or Authorization: Bearer (never a
 * cookie: agents have none), or NULL. */
static const char *agent_token(atr_api_req_t *r) {
  const char *h = atr__http_header(r->x, "Atrium-Session-Token");
  if (h && *h)
    return h;
  h = atr__http_header(r->x, "Authorization");
  if (h && strncasecmp(h, "Bearer ", 7) == 0 && h[7])
    return h + 7;
  return NULL;
}

static bool is_rpc(const atr_api_req_t *r) {
  return r->route->fn == atr_api_agent_rpc;
}

static int unauthorized(atr_api_req_t *r, const char *message) {
  if (is_rpc(r))
    atr_api_agent_connection_error("unauthorized");
  return atr_api_error(r, 401, message, unauthorized_detail);
}

/* Where the request came from, on the actor (as api.c's set_actor). */
static void place_actor(atr_api_req_t *r) {
  r->actor.ip = r->remote_ip;
  r->actor.user_agent = r->user_agent;
  r->actor.request_id = r->request_id;
  r->actor.org_id = NULL;
}

int atr__api_agent_admit(atr_api_req_t *r, char *who, size_t who_size) {
  const atr_actor_t *in_session = atr__api_agent_session_actor(r);
  if (in_session) {
    r->actor = *in_session;
  } else {
    const char *token = agent_token(r);
    if (!token) {
      unauthorized(r, "Agent token required.");
      return -1;
    }
    atr_fault_t f = {0};
    int rc = atr_agent_authenticate(&r->env->dom, token, &r->actor, &f);
    if (rc == ATR_EACCES || (rc == 0 && !r->actor.agent)) {
      atr_fault_clear(&f);
      r->actor = (atr_actor_t){0};
      unauthorized(r, "Agent token is not valid.");
      return -1;
    }
    if (rc != 0) {
      atr_api_fault(r, &f); /* the database could not say: not 401 */
      return -1;
    }
    atr_fault_clear(&f);
  }
  place_actor(r);
  snprintf(who, who_size, "agent:%s", r->actor.agent_id);
  return 0;
}

bool atr__api_agent_refused(atr_api_req_t *r) {
  const char *token = agent_token(r);
  bool agent = atr__http_session_ud(r->x) != NULL ||
               (token && strncmp(token, ATR_AGENT_TOKEN_PREFIX,
                                 strlen(ATR_AGENT_TOKEN_PREFIX)) == 0);
  if (agent)
    atr_api_error(r, 401, "Agent credentials are not valid here.",
                  "A workspace agent may call only the routes under "
                  "/api/v2/workspaceagents/me/; sign in as a user for this "
                  "one.");
  return agent;
}

int atr__api_agent_answer(atr_api_req_t *r, int rc, int status, json_t *body,
                          atr_fault_t *f) {
  if (rc == ATR_EACCES) {
    json_decref(body);
    atr_fault_clear(f);
    return atr_api_error(r, 401, "Agent token is not valid.",
                         unauthorized_detail);
  }
  if (rc == ATR_EAGAIN) { /* the agent writer's queue is full */
    json_decref(body);
    atr_api_header(r, "Retry-After", "1");
    int out = atr_api_error(r, 503, f->message ? f->message : "Busy.",
                            f->detail ? f->detail : "Retry shortly.");
    atr_fault_clear(f);
    return out;
  }
  return atr_api_answer(r, rc, status, body, f);
}

/* ---- reports --------------------------------------------------------------- */

int atr_api_agent_manifest(atr_api_req_t *r) {
  json_t *out = NULL;
  atr_fault_t f = {0};
  int rc = atr_agent_manifest(&r->env->dom, &r->actor, &out, &f);
  return atr__api_agent_answer(r, rc, 200, out, &f);
}

/* The body, checked by check(body, v); NULL when answered 400. */
static json_t *checked_body(atr_api_req_t *r,
                            void (*check)(const json_t *body, json_t *v)) {
  json_t *body = atr_api_body(r);
  if (!body)
    return NULL;
  json_t *v = json_array();
  check(body, v);
  if (json_array_size(v) == 0) {
    json_decref(v);
    return body;
  }
  json_decref(body);
  atr_api_validation(r, "Invalid request body.", v);
  return NULL;
}

int atr_api_agent_startup(atr_api_req_t *r) {
  json_t *body = checked_body(r, atr__agent_check_startup);
  if (!body)
    return 0;
  atr_fault_t f = {0};
  int rc = atr_agent_startup_report(&r->env->dom, &r->actor, body, &f);
  json_decref(body);
  return atr__api_agent_answer(r, rc, 204, NULL, &f);
}

/* When the agent began starting (its started_at, else created_at), read
 * as the server: the agent actor may not read agents. 0 when unknown. */
static int64_t start_of(const atr_api_req_t *r, char *before, size_t size) {
  atr_actor_t sys = atr_actor_system("agent-metrics");
  json_t *a = NULL;
  atr_fault_t f = {0};
  int64_t us = 0;
  before[0] = '\0';
  if (atr_agent_get(&r->env->dom, &sys, r->actor.agent_id, &a, &f) == 0) {
    const char *state =
        json_string_value(json_object_get(a, "lifecycle_state"));
    snprintf(before, size, "%s", state ? state : "");
    const char *t = json_string_value(json_object_get(a, "started_at"));
    if (!t)
      t = json_string_value(json_object_get(a, "created_at"));
    if (t && atr__agent_parse_time(t, &us) != 0)
      us = 0;
  }
  atr_fault_clear(&f);
  json_decref(a);
  return us;
}

static bool ends_startup(atr_agent_lifecycle_t s) {
  return s == ATR_LIFECYCLE_READY || s == ATR_LIFECYCLE_START_ERROR ||
         s == ATR_LIFECYCLE_START_TIMEOUT;
}

int atr_api_agent_lifecycle(atr_api_req_t *r) {
  json_t *body = checked_body(r, atr__agent_check_lifecycle);
  if (!body)
    return 0;
  const char *name = json_string_value(json_object_get(body, "state"));
  atr_agent_lifecycle_t state = atr_agent_lifecycle_parse(name);
  int64_t changed = 0;
  const char *at = json_string_value(json_object_get(body, "changed_at"));
  if (at)
    atr__agent_parse_time(at, &changed);
  char before[32] = "";
  int64_t began = ends_startup(state) ? start_of(r, before, sizeof before) : 0;
  atr_fault_t f = {0};
  const json_t *code = json_object_get(body, "startup_script_exit_code");
  int rc = atr_agent_lifecycle_report_code(
      &r->env->dom, &r->actor, state, changed,
      json_is_integer(code) ? (int)json_integer_value(code) : -1, &f);
  /* once per start: a resent report (same state again) is not counted */
  if (rc == 0 && began > 0 && strcmp(before, name) != 0) {
    int64_t end = changed ? changed : atr_db_now_us();
    atr_api_agent_startup_observed(name, (double)(end - began) / 1e6);
  }
  json_decref(body);
  return atr__api_agent_answer(r, rc, 204, NULL, &f);
}

int atr_api_agent_logs_patch(atr_api_req_t *r) {
  json_t *body = checked_body(r, atr__agent_check_logs);
  if (!body)
    return 0;
  json_t *logs = json_object_get(body, "logs");
  size_t n = json_array_size(logs);
  atr_agent_log_line_t *lines = calloc(n ? n : 1, sizeof *lines);
  if (!lines) {
    json_decref(body);
    return atr_api_fail(r, ATR_ENOMEM, "out of memory");
  }
  atr__agent_log_lines(logs, lines);
  int64_t acked = 0;
  atr_fault_t f = {0};
  int rc = atr_agent_logs_append(
      &r->env->dom, &r->actor,
      json_string_value(json_object_get(body, "log_source_id")), lines, n,
      &acked, &f);
  free(lines);
  json_decref(body);
  json_t *out =
      rc == 0 ? json_pack("{s:I}", "acked_seq", (json_int_t)acked) : NULL;
  return atr__api_agent_answer(r, rc, 200, out, &f);
}

int atr_api_agent_logs_state(atr_api_req_t *r) {
  json_t *out = NULL;
  atr_fault_t f = {0};
  int rc = atr_agent_logs_state(&r->env->dom, &r->actor, &out, &f);
  return atr__api_agent_answer(r, rc, 200, out, &f);
}

/* A report whose body check(body) bounds and report(dom, actor, body, f)
 * stores; 204. */
typedef int (*report_fn)(const atr_domain_t *dom, const atr_actor_t *actor,
                         const json_t *body, atr_fault_t *f);

static int report(atr_api_req_t *r, void (*check)(const json_t *, json_t *),
                  report_fn fn) {
  json_t *body = checked_body(r, check);
  if (!body)
    return 0;
  atr_fault_t f = {0};
  int rc = fn(&r->env->dom, &r->actor, body, &f);
  json_decref(body);
  return atr__api_agent_answer(r, rc, 204, NULL, &f);
}

int atr_api_agent_metadata_post(atr_api_req_t *r) {
  return report(r, atr__agent_check_metadata, atr_agent_metadata_report);
}

int atr_api_agent_app_health(atr_api_req_t *r) {
  return report(r, atr__agent_check_app_health, atr_agent_app_health_report);
}

int atr_api_agent_ports_post(atr_api_req_t *r) {
  return report(r, atr__agent_check_ports, atr_agent_ports_report);
}

int atr_api_agent_stats(atr_api_req_t *r) {
  json_t *body = checked_body(r, atr__agent_check_stats);
  if (!body)
    return 0;
  int64_t interval_ms = 0;
  atr_fault_t f = {0};
  int rc =
      atr_agent_stats_report(&r->env->dom, &r->actor, body, &interval_ms, &f);
  json_decref(body);
  /* Coder's Go duration: nanoseconds */
  json_t *out = rc == 0 ? json_pack("{s:I}", "report_interval",
                                    (json_int_t)interval_ms * 1000000)
                        : NULL;
  return atr__api_agent_answer(r, rc, 200, out, &f);
}
