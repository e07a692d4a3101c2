/* core/api/api_agent_session.c — an agent's session: GET /me/rpc
 * upgrades the connection, the session keeps the agent's identity (its
 * ud), and the sessions this server holds are listed so their rows can be
 * refreshed every minute (atr_api_agent_heartbeats). See api_agent_me.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents.h"
#include "api_agent_internal.h"
#include "api_agent_me.h"
#include "atrium/error.h"
#include "http_exchange.h"
#include "log.h"

/* What a session keeps of its agent: the identity it was admitted with
 * (the request's borrowed fields replaced by copies that live as long as
 * the session), linked into the server's list. */
typedef struct agent_session {
  const atr_api_env_t *env;
  atr_actor_t actor;
  char ip[64];
  struct agent_session *prev, *next; /* sessions_lock */
} agent_session_t;

static pthread_mutex_t sessions_lock = PTHREAD_MUTEX_INITIALIZER;
static agent_session_t *sessions; /* sessions_lock */

static void link_session(agent_session_t *s) {
  pthread_mutex_lock(&sessions_lock);
  s->next = sessions;
  if (sessions)
    sessions->prev = s;
  sessions = s;
  pthread_mutex_unlock(&sessions_lock);
}

static void unlink_session(agent_session_t *s) {
  pthread_mutex_lock(&sessions_lock);
  if (s->prev)
    s->prev->next = s->next;
  else if (sessions == s)
    sessions = s->next;
  if (s->next)
    s->next->prev = s->prev;
  s->prev = s->next = NULL;
  pthread_mutex_unlock(&sessions_lock);
}

const atr_actor_t *atr__api_agent_session_actor(atr_api_req_t *r) {
  const agent_session_t *s = atr__http_session_ud(r->x);
  return s ? &s->actor : NULL;
}

/* Agents whose sessions ended once the server began to stop: their
 * disconnects are recorded after the HTTP server stopped
 * (atr_api_agent_record_drained), bounded, not one transaction each on
 * the agents lane while it stops (thousands of them outlast any grace). */
typedef struct drained {
  atr_actor_t actor;
  const atr_api_env_t *env;
  struct drained *next;
} drained_t;

static drained_t *drained_list; /* sessions_lock */
static atomic_bool stopping;

void atr_api_agent_sessions_stopping(void) {
  atomic_store(&stopping, true);
}

static void keep_drained(const agent_session_t *s) {
  drained_t *d = calloc(1, sizeof *d);
  if (!d)
    return; /* its row turns disconnected when no heartbeat refreshes it */
  d->actor = s->actor;
  d->actor.ip = NULL; /* the session's copy goes with it */
  d->env = s->env;
  pthread_mutex_lock(&sessions_lock);
  d->next = drained_list;
  drained_list = d;
  pthread_mutex_unlock(&sessions_lock);
}

int atr_api_agent_record_drained(int64_t budget_ms) {
  pthread_mutex_lock(&sessions_lock);
  drained_t *list = drained_list;
  drained_list = NULL;
  pthread_mutex_unlock(&sessions_lock);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int done = 0, left = 0;
  while (list) {
    drained_t *d = list;
    list = d->next;
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ms = (int64_t)(t.tv_sec - t0.tv_sec) * 1000 +
                 (t.tv_nsec - t0.tv_nsec) / 1000000;
    atr_fault_t f = {0};
    if (ms <= budget_ms &&
        atr_agent_disconnected(&d->env->dom, &d->actor, "draining", &f) == 0)
      done++;
    else
      left += ms > budget_ms;
    atr_fault_clear(&f);
    free(d);
  }
  if (left > 0)
    atr_log(ATR_LOG_WARN, "api",
            "stopping: %d agent disconnect(s) not recorded within %lldms; "
            "their rows turn disconnected when no heartbeat refreshes them",
            left, (long long)budget_ms);
  return done;
}

static void session_closed(void *ud, const char *reason) {
  agent_session_t *s = ud;
  atr_api_agent_connection_error(reason);
  /* A newer session of the agent replaced this one and may be up already
   * (this can run after its upgrade): recording a disconnect now would
   * show a connected agent as disconnected. */
  if (reason && strcmp(reason, "replaced") == 0)
    return;
  /* the server stops: closed by its drain, or by agents that left just
   * before (their callbacks still queued on the agents lane) */
  if (atomic_load(&stopping) || (reason && strcmp(reason, "draining") == 0)) {
    keep_drained(s);
    return;
  }
  atr_fault_t f = {0};
  int rc = atr_agent_disconnected(&s->env->dom, &s->actor, reason, &f);
  if (rc != 0 && rc != ATR_EACCES)
    atr_log(ATR_LOG_WARN, "api", "agent %s: recording its disconnect: %s",
            s->actor.agent_id, f.detail ? f.detail : atr_strerror(rc));
  atr_fault_clear(&f);
}

static void session_free(void *ud) {
  agent_session_t *s = ud;
  unlink_session(s);
  free(s);
}

static const atr_http_session_ops_t session_ops = {
    .struct_size = sizeof(atr_http_session_ops_t),
    .closed = session_closed,
    .free_ud = session_free,
};

int atr_api_agent_heartbeats(const atr_api_env_t *env) {
  pthread_mutex_lock(&sessions_lock);
  size_t n = 0;
  for (const agent_session_t *s = sessions; s; s = s->next)
    n += s->env == env;
  atr_actor_t *actors = n ? calloc(n, sizeof *actors) : NULL;
  size_t i = 0;
  for (const agent_session_t *s = sessions; actors && s; s = s->next)
    if (s->env == env)
      actors[i++] = s->actor; /* copies: a session may end meanwhile */
  pthread_mutex_unlock(&sessions_lock);
  int done = 0;
  for (size_t k = 0; k < i; k++) {
    atr_fault_t f = {0};
    actors[k].ip = NULL;
    /* a revoked agent (ATR_EACCES) is being closed by its event */
    done += atr_agent_heartbeat(&env->dom, &actors[k], &f) == 0;
    atr_fault_clear(&f);
  }
  free(actors);
  return done;
}

/* ---- GET /me/rpc ------------------------------------------------------------ */

/* The major of "1.0" (or "1"); -1 when it is not a version. */
static long version_major(const char *v) {
  char *end = NULL;
  errno = 0;
  long major = strtol(v, &end, 10);
  if (end == v || errno != 0 || major < 0 || (*end && *end != '.'))
    return -1;
  return major;
}

/* ?version= must name our major; 0 or answered 400. */
static int check_version(atr_api_req_t *r) {
  char buf[40];
  const char *v = atr_api_query(r, "version", buf, sizeof buf);
  if (v && version_major(v) == version_major(ATR_API_AGENT_VERSION))
    return 0;
  char detail[200];
  if (v)
    snprintf(detail, sizeof detail,
             "The agent speaks API version %.32s; this server speaks %s. "
             "Use the agent from this server (/bin/atrium-agent-*).",
             v, ATR_API_AGENT_VERSION);
  else
    snprintf(detail, sizeof detail,
             "Required: the agent API version the agent speaks (this server "
             "speaks %s).",
             ATR_API_AGENT_VERSION);
  atr_api_agent_connection_error("version");
  json_t *val = json_array();
  atr_api_add_validation(val, "version", detail);
  atr_api_validation(r, "Unsupported agent API version.", val);
  return -1;
}

static agent_session_t *new_session(const atr_api_req_t *r) {
  agent_session_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->env = r->env;
  s->actor = r->actor;
  snprintf(s->ip, sizeof s->ip, "%s", r->remote_ip ? r->remote_ip : "");
  s->actor.ip = s->ip;
  s->actor.user_agent = s->actor.request_id = s->actor.org_id = NULL;
  return s;
}

/* Connected, then upgraded; undone when the upgrade fails. */
static int open_session(atr_api_req_t *r) {
  agent_session_t *s = new_session(r);
  if (!s)
    return atr_api_fail(r, ATR_ENOMEM, "out of memory");
  atr_fault_t f = {0};
  /* No version: the agent's User-Agent names the API version it speaks,
   * not its own; its startup report says that, once, and a reconnect
   * must not overwrite it. */
  int rc = atr_agent_connected(&r->env->dom, &r->actor, NULL, &f);
  if (rc != 0) {
    free(s);
    if (rc == ATR_EACCES)
      atr_api_agent_connection_error("unauthorized");
    return atr__api_agent_answer(r, rc, 200, NULL, &f);
  }
  atr_actor_t actor = r->actor; /* s belongs to the session from here on */
  link_session(s);
  if (atr__http_upgrade(r->x, actor.agent_id, &session_ops, s) != 0) {
    atr_api_agent_connection_error("handshake");
    atr_agent_disconnected(&r->env->dom, &actor, "handshake", &f);
    atr_fault_clear(&f);
    return atr_api_error(
        r, 400, "Invalid WebSocket handshake.",
        "Send Sec-WebSocket-Version: 13, a Sec-WebSocket-Key "
        "and Sec-WebSocket-Protocol: " ATR_HTTP_SESSION_PROTOCOL ".");
  }
  r->status = 101; /* answered by the upgrade */
  return 0;
}

int atr_api_agent_rpc(atr_api_req_t *r) {
  if (atr__http_session_ud(r->x))
    return atr_api_error(r, 400, "Already in a session.",
                         "GET /me/rpc opens a session; this request came "
                         "inside one.");
  if (check_version(r) != 0)
    return 0;
  if (!atr__http_wants_upgrade(r->x)) {
    atr_api_agent_connection_error("handshake");
    atr_api_header(r, "Upgrade", "websocket");
    return atr_api_error(r, 426, "Upgrade required.",
                         "Open this route as a WebSocket (Upgrade: websocket, "
                         "subprotocol " ATR_HTTP_SESSION_PROTOCOL ").");
  }
  return open_session(r);
}

int atr_api_agent_events(atr_api_req_t *r) {
  return atr_api_error(r, 400, "Events come only inside a session.",
                       "Open GET /api/v2/workspaceagents/me/rpc as a "
                       "WebSocket; its HTTP/2 session serves /me/events.");
}
