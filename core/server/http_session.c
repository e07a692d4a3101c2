/* core/server/http_session.c — sessions on the loop thread
 * (docs/design/agent.md §1.2–1.5): a connection becomes one when the 101
 * of atr__http_upgrade reaches the loop; from then on its bytes go to its
 * protocol state (http_h2.c), its requests to the agents lane (at most
 * LANE_CAP at once: past that the socket is not read), their answers
 * back onto their streams, and its timer sends PINGs and ends a silent
 * session. The registry finds a session by key for other threads
 * (atr_http_session_post, _close) and for a newer session of the same
 * agent, which replaces the older. When a session's connection is freed
 * (no request of it is left at the lane), closed() and free_ud() run on
 * the agents lane. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

#define PULL_MARK ((size_t)256 * 1024) /* stop pulling from nghttp2 */
#define LANE_CAP 8                     /* requests of one session at once */
#define SLOW_MS 30000                  /* blocked this long: too_slow */

/* ---- the registry ---------------------------------------------------------- */

static http_up_t **slot_of(atr_http_server_t *srv, const char *key) {
  uint64_t h = 1469598103934665603u;
  for (const char *p = key; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211u;
  http_up_t **slot = &srv->sessions[h % HTTP_SESSION_BUCKETS];
  while (*slot && strcmp((*slot)->info.key, key) != 0)
    slot = &(*slot)->reg_next;
  return slot;
}

/* Register up; the session it replaces (same key), or NULL. */
static http_up_t *reg_put(atr_http_server_t *srv, http_up_t *up) {
  pthread_mutex_lock(&srv->sessions_mu);
  http_up_t **slot = slot_of(srv, up->info.key);
  http_up_t *old = *slot;
  if (old) {
    *slot = old->reg_next;
    old->registered = false;
    atomic_fetch_sub(&srv->nsessions, 1);
  }
  up->reg_next = *slot;
  *slot = up;
  up->registered = true;
  atomic_fetch_add(&srv->nsessions, 1);
  pthread_mutex_unlock(&srv->sessions_mu);
  http_note_sessions(srv);
  return old;
}

static void reg_remove(atr_http_server_t *srv, http_up_t *up) {
  if (!up->registered)
    return;
  pthread_mutex_lock(&srv->sessions_mu);
  http_up_t **slot = slot_of(srv, up->info.key);
  if (*slot == up) {
    *slot = up->reg_next;
    atomic_fetch_sub(&srv->nsessions, 1);
  }
  up->registered = false;
  pthread_mutex_unlock(&srv->sessions_mu);
  http_note_sessions(srv);
}

int http_sessions_init(atr_http_server_t *srv) {
  pthread_mutex_init(&srv->sessions_mu, NULL);
  srv->sessions = calloc(HTTP_SESSION_BUCKETS, sizeof *srv->sessions);
  return srv->sessions ? 0 : -1;
}

void http_sessions_free(atr_http_server_t *srv) {
  free(srv->sessions);
  srv->sessions = NULL;
  pthread_mutex_destroy(&srv->sessions_mu);
}

/* ---- the end of a session ------------------------------------------------- */

typedef struct closed_job {
  atr_http_session_ops_t ops;
  void *ud;
  char reason[32];
} closed_job_t;

static void run_closed(void *arg) {
  closed_job_t *job = arg;
  if (job->ops.closed)
    job->ops.closed(job->ud, job->reason);
  if (job->ops.free_ud)
    job->ops.free_ud(job->ud);
  free(job);
}

/* closed(reason) then free_ud on the agents lane; info is used up. */
static void end_later(atr_http_server_t *srv, http_upgrade_t *info,
                      const char *reason) {
  closed_job_t *job = calloc(1, sizeof *job);
  if (!job)
    abort(); /* the layer above would never learn the session ended */
  job->ops = info->ops;
  job->ud = info->ud;
  snprintf(job->reason, sizeof job->reason, "%s", reason);
  info->ops.free_ud = NULL;
  http_upgrade_free(info);
  http_lane_call(&srv->agents, run_closed, job);
}

static void set_reason(http_up_t *up, const char *reason) {
  if (up->reason)
    return;
  snprintf(up->reason_buf, sizeof up->reason_buf, "%s", reason);
  up->reason = up->reason_buf;
}

/* The reason a session's tunnels end with. */
static const char *tunnels_reason(const http_up_t *up) {
  return up->reason && strcmp(up->reason, "draining") == 0 ? "draining"
                                                           : "agent_gone";
}

/* conn_close: off the registry at once, so a reconnect is not replaced;
 * its tunnels end. */
void http_session_closing(http_conn_t *c) {
  set_reason(c->up, c->srv->stopping ? "draining" : "closed");
  reg_remove(c->srv, c->up);
  http_tunnels_end(c->up, tunnels_reason(c->up));
}

/* conn_maybe_free: no handler holds the session's ud any more. */
void http_session_free(http_conn_t *c) {
  http_up_t *up = c->up;
  c->up = NULL;
  http_upgrade_t *info = malloc(sizeof *info);
  if (!info)
    abort();
  *info = up->info;
  up->info.key = NULL;
  set_reason(up, "closed");
  end_later(c->srv, info, up->reason);
  http_up_free(up);
  http_note_sessions(c->srv);
}

/* ---- writing ----------------------------------------------------------------- */

/* Frame what the session has to send, while the socket's queue is below
 * PULL_MARK, and write it. */
static void flush(http_up_t *up) {
  http_conn_t *c = up->conn;
  if (c->state == HTTP_CONN_CLOSED)
    return;
  size_t queued = atomic_load(&c->queued);
  size_t budget = queued < PULL_MARK ? PULL_MARK - queued : 0;
  if (http_up_pull(up, budget) != 0) {
    set_reason(up, "protocol");
    http_conn_close(c);
    return;
  }
  if (up->out_len == 0)
    return;
  char *data = up->out;
  size_t len = up->out_len;
  up->out = NULL;
  up->out_len = up->out_cap = 0;
  atomic_fetch_add(&c->queued, len);
  http_conn_write(c, data, len, len);
}

/* End the session from this side: GOAWAY, WebSocket close, then the
 * connection once that is written. */
static void end_session(http_up_t *up, const char *reason, uint16_t code) {
  http_conn_t *c = up->conn;
  set_reason(up, reason);
  reg_remove(c->srv, up);
  if (!up->in_feed) /* else the connection's close ends them */
    http_tunnels_end(up, tunnels_reason(up));
  if (c->state != HTTP_CONN_UPGRADED || up->closing)
    return;
  http_up_close(up, code, reason);
  flush(up);
  http_conn_finish(c);
}

/* After the peer's bytes or an answer: send, then see whether it ended
 * or must stop being read. */
static void after_io(http_up_t *up) {
  http_conn_t *c = up->conn;
  flush(up);
  if (c->state != HTTP_CONN_UPGRADED || up->closing)
    return;
  if (up->failed) {
    set_reason(up, "protocol");
    up->closing = true; /* wslay queued its close (1002/1003) */
    flush(up);
    http_conn_finish(c);
    return;
  }
  if (http_up_finished(up)) {
    end_session(up, "closed", 1000);
    return;
  }
  if (!up->paused && up->inflight >= LANE_CAP) {
    up->paused = true;
    atomic_fetch_add(&c->srv->session_pauses, 1);
    http_conn_read(c, false);
  }
}

void http_session_kick(http_up_t *up) {
  if (up && !up->in_feed && !up->in_pull && !up->ending && up->conn &&
      up->conn->state == HTTP_CONN_UPGRADED && !up->closing)
    after_io(up);
}

void http_session_drained(http_conn_t *c) {
  if (!c->up->closing && atomic_load(&c->queued) < PULL_MARK)
    flush(c->up);
}

/* ---- requests ------------------------------------------------------------------ */

static void to_lane(http_up_t *up, http_req_t *req) {
  up->rx_body -= req->body_len; /* the lane's cap bounds it from now on */
  up->inflight++;
  up->conn->refs++;
  http_lane_push(&up->conn->srv->agents, req, up->conn);
}

/* A whole request from the peer (inside http_up_feed). */
static void on_request(http_up_t *up, http_req_t *req) {
  req->session_ud = up->info.ud;
  if (up->inflight < LANE_CAP && !up->closing) {
    to_lane(up, req);
    return;
  }
  if (up->nheld < (int)(sizeof up->held / sizeof *up->held) && !up->closing) {
    up->held[up->nheld++] = req;
    return;
  }
  /* more requests at once than the lane cap and the queue hold (up to
   * MAX_CONCURRENT_STREAMS may be open, for tunnels): the agent retries */
  int32_t sid = req->stream_id;
  http_up_drop(up, req);
  if (!up->closing)
    http_up_refuse(up, sid);
}

void http_session_answer(http_conn_t *c, http_msg_t *m) {
  http_up_t *up = c->up;
  up->inflight--;
  if (c->state == HTTP_CONN_UPGRADED && !up->closing)
    http_up_answer(up, m->stream_id, m->data, m->len);
  else
    free(m->data);
  m->data = NULL;
  while (c->state == HTTP_CONN_UPGRADED && up->inflight < LANE_CAP &&
         up->nheld > 0) {
    http_req_t *next = up->held[0];
    memmove(up->held, up->held + 1, (size_t)--up->nheld * sizeof *up->held);
    to_lane(up, next);
  }
  if (c->state != HTTP_CONN_UPGRADED)
    return;
  if (up->paused && up->inflight < LANE_CAP) {
    up->paused = false;
    up->last_rx_ms = http_now_ms(); /* we were the ones not reading */
    http_conn_read(c, true);
  }
  after_io(up);
}

void http_session_read(http_conn_t *c, const char *data, size_t len) {
  http_up_t *up = c->up;
  up->last_rx_ms = http_now_ms();
  (void)http_up_feed(up, data, len);
  after_io(up);
}

/* ---- heartbeats ------------------------------------------------------------------- */

static void on_tick(uv_timer_t *t) {
  http_conn_t *c = t->data;
  http_up_t *up = c->up;
  if (!up || c->state != HTTP_CONN_UPGRADED || up->closing)
    return;
  uint64_t now = http_now_ms();
  uint64_t hb = (uint64_t)c->srv->cfg.session_heartbeat_ms;
  if (!up->paused && now - up->last_rx_ms >= 3 * hb) {
    set_reason(up, "timeout"); /* the peer is gone: no close handshake */
    http_conn_close(c);
    return;
  }
  /* blocked: the socket's queue stays at the mark (nothing more is pulled,
   * so it never grows past it) or event lines pile up unsent */
  if (atomic_load(&c->queued) >= PULL_MARK ||
      up->ev_len - up->ev_off >= HTTP_STREAM_QUEUE_CAP / 2) {
    if (up->slow_since_ms == 0)
      up->slow_since_ms = now;
    if (now - up->slow_since_ms >= SLOW_MS) {
      set_reason(up, "too_slow");
      http_conn_close(c);
      return;
    }
  } else {
    up->slow_since_ms = 0;
  }
  http_up_ping(up);
  flush(up);
}

/* ---- becoming a session ------------------------------------------------------ */

void http_session_start(http_conn_t *c, http_upgrade_t *info, char *reply,
                        size_t len) {
  atr_http_server_t *srv = c->srv;
  http_up_t *up = NULL;
  if (c->state != HTTP_CONN_CLOSED && !srv->stopping)
    up = http_up_new(srv->cfg.max_header_size, srv->cfg.max_body_size,
                     &srv->session_mem, on_request);
  if (!up) {
    free(reply);
    end_later(srv, info, "closed");
    http_conn_close(c);
    return;
  }
  up->conn = c;
  up->info = *info;
  free(info);
  c->up = up;
  /* registered before the 101 goes out: an agent that read it is found */
  http_up_t *old = reg_put(srv, up);
  if (old)
    end_session(old, "replaced", 4000);
  http_conn_write(c, reply, len, 0);
  http_parse_free(&c->parse); /* nothing more is HTTP/1.1 */
  c->state = HTTP_CONN_UPGRADED;
  up->last_rx_ms = http_now_ms();
  uint64_t hb = (uint64_t)srv->cfg.session_heartbeat_ms;
  uv_timer_start(&c->timer, on_tick, hb, hb);
  char *rest = c->leftover;
  size_t rest_len = c->leftover_len;
  c->leftover = NULL;
  c->leftover_len = 0;
  if (rest)
    http_session_read(c, rest, rest_len); /* sent before the 101 was read */
  else
    after_io(up);
  free(rest);
  if (c->state == HTTP_CONN_UPGRADED && !up->paused)
    http_conn_read(c, true);
}

/* ---- lookups ---------------------------------------------------------------------- */

bool http_session_here(atr_http_server_t *srv, const char *key) {
  pthread_mutex_lock(&srv->sessions_mu);
  bool here = *slot_of(srv, key) != NULL;
  pthread_mutex_unlock(&srv->sessions_mu);
  return here;
}

/* The loop is the registry's only writer: it reads without the lock. */
http_up_t *http_session_find(atr_http_server_t *srv, const char *key) {
  return *slot_of(srv, key);
}

/* ---- from other threads ------------------------------------------------------ */

void http_session_msg(atr_http_server_t *srv, http_msg_t *m) {
  http_up_t *up = m->key ? *slot_of(srv, m->key) : NULL;
  if (m->op == HTTP_SESSION_EVENT && up &&
      up->conn->state == HTTP_CONN_UPGRADED &&
      http_up_event(up, m->data, m->len) == 0)
    flush(up);
  else if (m->op == HTTP_SESSION_CLOSE && up)
    end_session(up, m->reason, 1008);
  else if (m->op == HTTP_SESSION_DRAIN)
    for (http_conn_t *c = srv->conns, *next; c; c = next) {
      next = c->next;
      if (c->up && c->state == HTTP_CONN_UPGRADED)
        end_session(c->up, "draining", 1001);
    }
  free(m->key);
  free(m->reason);
  free(m->data);
  free(m);
}

/* Post to the session of key if it is here; under the lock only to look. */
static int post(atr_http_server_t *srv, int op, const char *key,
                const char *line, const char *reason) {
  if (!srv || !key)
    return 0;
  pthread_mutex_lock(&srv->sessions_mu);
  http_up_t *up = *slot_of(srv, key);
  bool ok = up && (op != HTTP_SESSION_EVENT || atomic_load(&up->events_open));
  pthread_mutex_unlock(&srv->sessions_mu);
  if (!ok)
    return 0;
  http_msg_t *m = calloc(1, sizeof *m);
  if (!m)
    return 0;
  *m = (http_msg_t){.kind = HTTP_MSG_SESSION,
                    .op = op,
                    .key = strdup(key),
                    .data = line ? strdup(line) : NULL,
                    .len = line ? strlen(line) : 0,
                    .reason = reason ? strdup(reason) : NULL};
  if (!m->key || (line && !m->data) || (reason && !m->reason)) {
    free(m->key);
    free(m->data);
    free(m->reason);
    free(m);
    return 0;
  }
  http_post(srv, m);
  return 1;
}

int atr_http_session_post(atr_http_server_t *srv, const char *key,
                          const char *line) {
  return line ? post(srv, HTTP_SESSION_EVENT, key, line, NULL) : 0;
}

int atr_http_session_close(atr_http_server_t *srv, const char *key,
                           const char *reason) {
  return post(srv, HTTP_SESSION_CLOSE, key, NULL, reason ? reason : "closed");
}

int64_t atr_http_sessions(const atr_http_server_t *srv) {
  return atomic_load(&srv->nsessions);
}
