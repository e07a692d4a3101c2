/* core/server/http_tunnel.c — tunnels (docs/design/connect.md): a user's
 * connection spliced with a stream the agent opens in its session.
 *
 * A handler calls atr__http_tunnel(); the loop (http_tunnel_start) posts
 * the open event on the agent's events stream and waits for the agent's
 * POST .../me/tunnels/{id} (http_h2.c hands it here: http_tunnel_stream).
 * Then the user gets its 101 (RAW, WS) or nothing (HTTP) and the bytes
 * flow: the user's reads go to a buffer the stream's response pulls
 * (http_tunnel_pull), the request's DATA goes to the user's socket.
 *
 * Flow control: at most TUN_BUF bytes of one direction wait here. The
 * user's socket is not read while more than that waits for the agent; the
 * agent's stream window comes back (nghttp2_session_consume_stream) only
 * once less than that waits to be written to the user.
 *
 * Everything here runs on the loop thread, except atr__http_tunnel (a
 * worker) and ended() (a worker of the workers lane). A tunnel is freed
 * by finish(), which detaches it from its connection, its session and
 * its stream first; finish() is reached once. */
#include <ctype.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uuid/uuid.h>
#include <wslay/wslay.h>

#include "atrium/error.h"
#include "http_exchange.h"
#include "http_internal.h"

#define TUN_BUF ((size_t)64 * 1024) /* bytes of one direction held here */
#define MAX_PENDING 256             /* tunnels waiting for one agent */
#define OPEN_MAX 4096               /* the open event's fields */
#define PREFIX_MAX ((size_t)64 * 1024)
#define KEY_MAX 128
#define WS_FRAME_MAX ((uint64_t)1 << 20)
#define DEFAULT_OPEN_MS 10000

typedef enum { TUN_PENDING = 0, TUN_OPEN, TUN_DONE } tun_state_t;

/* HTTP mode: where the app's answer is. */
typedef enum {
  ANS_HEAD = 0, /* its head (or a 1xx's) is being read */
  ANS_BODY,     /* a final answer, Connection: close forced; raw after */
  ANS_UPGRADED, /* a 101: raw both ways */
} answer_t;

/* How finish() leaves the user's connection. */
typedef enum {
  LEAVE_CLOSE = 0, /* at once (an error, a reset, the session's end) */
  LEAVE_FLUSH,     /* once what is queued is written (both sides ended, or
                      a 502 was queued) */
} leave_t;

struct http_tunnel {
  atr_http_server_t *srv;
  http_conn_t *conn; /* holds a reference (the message's) */
  http_up_t *up;     /* the agent's session, while on its list */
  http_tunnel_t *prev, *next;
  char *key;
  char *fields; /* the open event's fields: a JSON object */
  char *head;   /* RAW, WS: the 101 */
  size_t head_len;
  void *ud;
  int64_t open_timeout_ms;
  uint64_t started_ms;
  /* user → agent, waiting for the stream to pull it */
  char *ua;
  size_t ua_len, ua_off, ua_cap;
  /* agent → user: taken from the stream, window not given back yet */
  size_t unconsumed;
  /* WS mode: a wslay server context on the user's connection */
  void *ws;
  const char *ws_in;
  size_t ws_in_len;
  char *wout;
  size_t wout_len, wout_cap;
  uint64_t to_agent, from_agent;
  atr_http_tunnel_ops_t ops;
  atr_http_tunnel_mode_t mode;
  tun_state_t state;
  int32_t sid;
  bool stream_live; /* the stream still knows this tunnel */
  bool user_eof;    /* END_STREAM once ua is drained */
  bool eof_sent;
  bool user_paused;
  bool agent_eof;
  uint8_t ws_frame_op;
  bool opened;
  /* HTTP mode (see "HTTP mode" below): the user's request is parsed to
   * find its end; the app's answer head is read whole before it goes */
  http_parser rq;
  bool req_over;    /* the request (head and body) went to the agent */
  bool held_paused; /* user reads stopped: held is full */
  answer_t answer;
  char *held; /* past the request of an upgrade, until the answer */
  size_t held_len, held_cap;
  char *ahead; /* the app's answer head so far */
  size_t ahead_len, ahead_cap;
  size_t ahead_seen; /* of it, scanned for the head's end already */
  char kind[16];
  char id[37];
};

/* ---- buffers ---------------------------------------------------------------- */

static int buf_put(char **buf, size_t *len, size_t *cap, const void *data,
                   size_t n) {
  if (n == 0)
    return 0;
  if (*len + n > *cap) {
    size_t c = *cap ? *cap : 4096;
    while (c < *len + n)
      c *= 2;
    char *grown = realloc(*buf, c);
    if (!grown)
      return -1;
    *buf = grown;
    *cap = c;
  }
  memcpy(*buf + *len, data, n);
  *len += n;
  return 0;
}

static size_t ua_pending(const http_tunnel_t *t) {
  return t->ua_len - t->ua_off;
}

static int ua_put(http_tunnel_t *t, const void *data, size_t n) {
  if (t->ua_off > 0 && t->ua_off == t->ua_len) {
    t->ua_off = t->ua_len = 0;
  } else if (t->ua_off >= TUN_BUF) {
    memmove(t->ua, t->ua + t->ua_off, t->ua_len - t->ua_off);
    t->ua_len -= t->ua_off;
    t->ua_off = 0;
  }
  return buf_put(&t->ua, &t->ua_len, &t->ua_cap, data, n);
}

/* ---- HTTP mode: the user's one request ----------------------------------------
 *
 * The user's connection is spliced raw, and a browser reuses a connection
 * whose answer did not say "Connection: close": its next request (say to
 * /api/v2/…, with the HttpOnly atrium_session cookie) would reach the app
 * as it is, the user's session with it. Two guards, both here in the
 * transport (docs/design/connect.md, "HTTP mode"):
 *  - the app's answer head gets "Connection: close" (below, the agent's
 *    side), so a browser never sends a second request on it;
 *  - the request's end is found with http-parser (Content-Length or
 *    chunked, over the handler's prefix and the body): bytes past it never
 *    reach the app, except after a 101 (a WebSocket, whose frames follow
 *    the upgrade request). A client that pipelines gets its later requests
 *    dropped, not sent to the app. */

static int rq_complete(http_parser *p) {
  http_tunnel_t *t = p->data;
  t->req_over = true;
  http_parser_pause(p, 1); /* what follows is not this request's */
  return 0;
}

static const http_parser_settings rq_settings = {.on_message_complete =
                                                     rq_complete};

/* Is held full (the user's reads stop until the app answers)? */
static bool held_full(const http_tunnel_t *t) {
  return t->held_len > TUN_BUF;
}

/* HTTP mode, user → agent: the request's bytes go on; past its end they
 * wait for a 101 (an upgrade request, bounded by TUN_BUF: reads stop) or
 * are dropped. -1: out of memory. */
static int http_user_put(http_tunnel_t *t, const char *data, size_t n) {
  if (t->answer == ANS_UPGRADED)
    return ua_put(t, data, n);
  size_t used = 0;
  if (!t->req_over) {
    used = http_parser_execute(&t->rq, &rq_settings, data, n);
    enum http_errno e = HTTP_PARSER_ERRNO(&t->rq);
    if (e != HPE_OK && e != HPE_PAUSED)
      t->req_over = true; /* malformed: what was valid went, no more */
    if (used > n)
      used = n;
    if (ua_put(t, data, used) != 0)
      return -1;
  }
  if (used == n)
    return 0;
  /* past the request: only an upgrade's answer may still open the way */
  if (!t->rq.upgrade || t->answer != ANS_HEAD)
    return 0;
  if (buf_put(&t->held, &t->held_len, &t->held_cap, data + used, n - used) != 0)
    return -1;
  if (held_full(t) && !t->held_paused) {
    t->held_paused = true;
    if (t->conn)
      http_conn_read(t->conn, false);
  }
  return 0;
}

/* The app answered (a final head or a 101): what was held goes on (101)
 * or is dropped, and the user's reads go on (to see its EOF). */
static int release_held(http_tunnel_t *t, bool upgraded) {
  int rc = 0;
  if (upgraded && t->held_len > 0)
    rc = ua_put(t, t->held, t->held_len);
  free(t->held);
  t->held = NULL;
  t->held_len = t->held_cap = 0;
  if (t->held_paused) {
    t->held_paused = false;
    if (t->conn && !t->user_paused && !t->user_eof)
      http_conn_read(t->conn, true);
  }
  return rc;
}

/* ---- metrics ------------------------------------------------------------------ */

int http_register_tunnel_metrics(atr_http_server_t *srv) {
  static const char *const open_labels[] = {"kind", NULL};
  static const char *const byte_labels[] = {"kind", "direction", NULL};
  static const char *const total_labels[] = {"kind", "result", NULL};
  srv->tunnels_open = atr_metrics_find("atrium_connections_open");
  if (!srv->tunnels_open &&
      atr_metrics_register("core", ATR_METRIC_GAUGE, "atrium_connections_open",
                           "Tunnels into workspaces (ssh, tcp, pty, app) "
                           "this server splices now.",
                           open_labels, NULL, 0, &srv->tunnels_open) != 0)
    return -1;
  srv->tunnel_bytes = atr_metrics_find("atrium_connection_bytes_total");
  if (!srv->tunnel_bytes &&
      atr_metrics_register("core", ATR_METRIC_COUNTER,
                           "atrium_connection_bytes_total",
                           "Bytes through tunnels, to_agent (from users) "
                           "and from_agent.",
                           byte_labels, NULL, 0, &srv->tunnel_bytes) != 0)
    return -1;
  srv->tunnels_total = atr_metrics_find("atrium_connections_total");
  if (!srv->tunnels_total &&
      atr_metrics_register("core", ATR_METRIC_COUNTER,
                           "atrium_connections_total",
                           "Tunnels ended, by kind and how (closed, refused, "
                           "timeout, agent_gone, draining, no_agent, "
                           "bad_answer).",
                           total_labels, NULL, 0, &srv->tunnels_total) != 0)
    return -1;
  return 0;
}

static void count_bytes(http_tunnel_t *t, const char *direction, size_t n) {
  const char *labels[] = {t->kind, direction};
  atr_metric_add(t->srv->tunnel_bytes, labels, (double)n);
}

/* ---- the handler's call (a worker) ---------------------------------------- */

/* A metrics label: [a-z0-9_-], short; anything else is "other". */
static void set_kind(char out[16], const char *kind) {
  size_t n = kind ? strlen(kind) : 0;
  bool ok = n > 0 && n < 16;
  for (size_t i = 0; ok && i < n; i++)
    ok = islower((unsigned char)kind[i]) || isdigit((unsigned char)kind[i]) ||
         kind[i] == '_' || kind[i] == '-';
  snprintf(out, 16, "%s", ok ? kind : "other");
}

/* The open event's fields: t->open parsed, "type" and "id" dropped (ours
 * come first), compact. NULL when it is no JSON object. */
static char *open_fields(const char *open) {
  if (!open || strlen(open) > OPEN_MAX)
    return NULL;
  json_t *obj = json_loads(open, JSON_REJECT_DUPLICATES, NULL);
  char *text = NULL;
  if (json_is_object(obj)) {
    json_object_del(obj, "type");
    json_object_del(obj, "id");
    text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
  }
  json_decref(obj);
  return text;
}

static void tunnel_free(http_tunnel_t *t) {
  if (!t)
    return;
  free(t->key);
  free(t->fields);
  free(t->head);
  free(t->ua);
  free(t->wout);
  free(t->held);
  free(t->ahead);
  if (t->ws)
    wslay_event_context_free(t->ws);
  free(t);
}

static bool valid_req(const atr_http_exchange_t *x,
                      const atr_http_tunnel_req_t *t,
                      const atr_http_tunnel_ops_t *ops) {
  if (!x || !t || !ops || t->struct_size < sizeof *t ||
      ops->struct_size < sizeof *ops || x->status != 0 || x->tunnel ||
      x->upgrade || x->streaming || !x->req || x->req->stream_id != 0)
    return false;
  if (!t->agent_key || !*t->agent_key || strlen(t->agent_key) > KEY_MAX)
    return false;
  if (t->mode != ATR_HTTP_TUNNEL_RAW && t->mode != ATR_HTTP_TUNNEL_WS &&
      t->mode != ATR_HTTP_TUNNEL_HTTP)
    return false;
  if (t->mode == ATR_HTTP_TUNNEL_HTTP &&
      (!t->prefix || t->prefix_len == 0 || t->prefix_len > PREFIX_MAX))
    return false;
  return t->open_timeout_ms >= 0;
}

/* The 101 the user gets when the splice begins. */
static char *make_head(atr_http_exchange_t *x, atr_http_tunnel_mode_t mode,
                       size_t *len) {
  char *head = NULL;
  int n = -1;
  char accept[29];
  if (mode == ATR_HTTP_TUNNEL_RAW) {
    n = asprintf(&head, "HTTP/1.1 101 Switching Protocols\r\n"
                        "Connection: Upgrade\r\n"
                        "Upgrade: atrium-tunnel\r\n\r\n");
  } else if (mode == ATR_HTTP_TUNNEL_WS) {
    if (!http_ws_accept_for(x, accept))
      return NULL;
    /* no subprotocol is chosen: a browser that offered some still
     * accepts an answer without one (RFC 6455 §4.1) */
    n = asprintf(&head,
                 "HTTP/1.1 101 Switching Protocols\r\n"
                 "Upgrade: websocket\r\n"
                 "Connection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: %s\r\n\r\n",
                 accept);
  }
  if (n < 0)
    return NULL;
  *len = (size_t)n;
  return head;
}

int atr__http_tunnel(atr_http_exchange_t *x, const atr_http_tunnel_req_t *t,
                     const atr_http_tunnel_ops_t *ops, void *ud) {
  if (!valid_req(x, t, ops))
    return ATR_EINVAL;
  http_tunnel_t *tun = calloc(1, sizeof *tun);
  if (!tun)
    return ATR_ENOMEM;
  tun->srv = x->srv;
  tun->mode = t->mode;
  tun->fields = open_fields(t->open);
  if (!tun->fields) {
    tunnel_free(tun);
    return ATR_EINVAL;
  }
  if (t->mode != ATR_HTTP_TUNNEL_HTTP) {
    tun->head = make_head(x, t->mode, &tun->head_len);
    if (!tun->head) {
      tunnel_free(tun);
      return ATR_EINVAL; /* WS mode without a valid handshake */
    }
  } else {
    /* the rewritten head, then what of the body was read already (a
     * request not under "/@" came whole); the parser finds its end */
    http_parser_init(&tun->rq, HTTP_REQUEST);
    tun->rq.data = tun;
    if (http_user_put(tun, t->prefix, t->prefix_len) != 0 ||
        (!x->req->body_unread &&
         http_user_put(tun, x->req->body, x->req->body_len) != 0)) {
      tunnel_free(tun);
      return ATR_ENOMEM;
    }
  }
  if (!http_session_here(x->srv, t->agent_key)) {
    tunnel_free(tun);
    return ATR_ENOENT;
  }
  tun->key = strdup(t->agent_key);
  if (!tun->key) {
    tunnel_free(tun);
    return ATR_ENOMEM;
  }
  set_kind(tun->kind, t->kind);
  tun->open_timeout_ms =
      t->open_timeout_ms > 0 ? t->open_timeout_ms : DEFAULT_OPEN_MS;
  tun->ops = *ops;
  tun->ud = ud;
  tun->started_ms = http_now_ms();
  x->tunnel = tun;
  x->status = 101; /* answered: by the loop, from now on */
  return 0;
}

bool atr__http_body_unread(atr_http_exchange_t *x) {
  return x && x->req && x->req->body_unread;
}

/* ---- the end ---------------------------------------------------------------- */

typedef struct ended_job {
  atr_http_tunnel_ops_t ops;
  void *ud;
  atr_http_tunnel_end_t end;
  char reason[16];
  char *error;
} ended_job_t;

static void run_ended(void *arg) {
  ended_job_t *job = arg;
  job->end.reason = job->reason;
  job->end.error = job->error;
  if (job->ops.ended)
    job->ops.ended(job->ud, &job->end);
  if (job->ops.free_ud)
    job->ops.free_ud(job->ud);
  free(job->error);
  free(job);
}

/* ended() then free_ud on the workers lane (at once on this thread once
 * the lane stopped). */
static void report(http_tunnel_t *t, const char *reason, const char *error) {
  const char *labels[] = {t->kind, reason};
  atr_metric_add(t->srv->tunnels_total, labels, 1);
  ended_job_t *job = calloc(1, sizeof *job);
  if (!job)
    abort(); /* the layer above would never learn the tunnel ended */
  job->ops = t->ops;
  job->ud = t->ud;
  snprintf(job->reason, sizeof job->reason, "%s", reason);
  job->error = error ? strdup(error) : NULL;
  int64_t ms = (int64_t)(http_now_ms() - t->started_ms);
  job->end = (atr_http_tunnel_end_t){.struct_size = sizeof job->end,
                                     .opened = t->opened,
                                     .bytes_to_agent = t->to_agent,
                                     .bytes_from_agent = t->from_agent,
                                     .duration_ms = ms};
  http_lane_call(&t->srv->workers, run_ended, job);
}

static void unlink_up(http_tunnel_t *t) {
  http_up_t *up = t->up;
  if (!up)
    return;
  if (t->prev)
    t->prev->next = t->next;
  else
    up->tunnels = t->next;
  if (t->next)
    t->next->prev = t->prev;
  t->prev = t->next = NULL;
  if (t->state == TUN_PENDING)
    up->npending--;
  t->up = NULL;
}

/* The one end of a tunnel: off its session (its stream reset when it
 * still lives), off its connection (closed at once or after its queue),
 * reported, freed. The session is flushed last: t is gone by then. */
static void finish(http_tunnel_t *t, const char *reason, const char *error,
                   leave_t leave) {
  http_up_t *up = t->up;
  unlink_up(t);
  if (up && t->stream_live)
    http_up_tunnel_reset(up, t->sid, NGHTTP2_CANCEL);
  t->stream_live = false;
  if (t->state == TUN_OPEN) {
    const char *labels[] = {t->kind};
    atr_metric_add(t->srv->tunnels_open, labels, -1);
  }
  t->state = TUN_DONE;
  http_conn_t *c = t->conn;
  t->conn = NULL;
  if (c) {
    c->tun = NULL;
    if (c->state == HTTP_CONN_TUNNEL) {
      c->state = HTTP_CONN_BUSY; /* nothing of it is parsed any more */
      http_conn_read(c, false);
      uv_timer_stop(&c->timer);
      if (leave == LEAVE_CLOSE)
        http_conn_close(c);
      else
        http_conn_finish(c);
    }
  }
  report(t, reason, error);
  tunnel_free(t);
  if (c)
    http_conn_unref(c);
  if (up)
    http_session_kick(up);
}

/* ---- failing before the splice: the loop answers ---------------------------- */

static void html_escape(char *out, size_t size, const char *in) {
  size_t o = 0;
  for (const char *p = in; *p && o + 7 < size; p++) {
    const char *rep = NULL;
    switch (*p) {
    case '<':
      rep = "&lt;";
      break;
    case '>':
      rep = "&gt;";
      break;
    case '&':
      rep = "&amp;";
      break;
    case '"':
      rep = "&quot;";
      break;
    case '\'':
      rep = "&#39;";
      break;
    default:
      break;
    }
    if (rep) {
      size_t n = strlen(rep);
      memcpy(out + o, rep, n);
      o += n;
    } else {
      out[o++] = *p;
    }
  }
  out[o] = '\0';
}

static void why(const http_tunnel_t *t, const char *reason, const char *error,
                const char **message, char *detail, size_t size) {
  *message = "The tunnel to the workspace could not be opened.";
  snprintf(detail, size, "%s", error ? error : "");
  if (strcmp(reason, "no_agent") == 0) {
    *message = "The workspace agent is not connected.";
    snprintf(detail, size, "The agent has no session on this server.");
  } else if (strcmp(reason, "timeout") == 0) {
    *message = "The workspace agent did not answer in time.";
    snprintf(detail, size, "It did not open the tunnel within %lld ms.",
             (long long)t->open_timeout_ms);
  } else if (strcmp(reason, "refused") == 0) {
    *message = "The workspace agent refused the tunnel.";
  } else if (strcmp(reason, "agent_gone") == 0) {
    *message = "The workspace agent disconnected.";
    snprintf(detail, size, "Its session ended before the tunnel opened.");
  } else if (strcmp(reason, "bad_answer") == 0) {
    *message = "The app's answer could not be forwarded.";
  } else if (strcmp(reason, "draining") == 0) {
    *message = "The server is shutting down.";
    snprintf(detail, size, "Retry on another replica or after the restart.");
  }
}

/* The 502: JSON (RAW, WS) or a small page (HTTP, apps in a browser). */
static char *bad_gateway(const http_tunnel_t *t, const char *reason,
                         const char *error, size_t *len) {
  const char *message = NULL;
  char detail[320];
  why(t, reason, error, &message, detail, sizeof detail);
  char *body = NULL;
  const char *type = "application/json";
  if (t->mode == ATR_HTTP_TUNNEL_HTTP) {
    char esc_m[512], esc_d[2048];
    html_escape(esc_m, sizeof esc_m, message);
    html_escape(esc_d, sizeof esc_d, detail);
    type = "text/html; charset=utf-8";
    if (asprintf(&body,
                 "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                 "<title>Bad gateway</title></head>\n<body><h1>Bad "
                 "gateway</h1>\n<p>%s</p>\n<p>%s</p>\n</body></html>\n",
                 esc_m, esc_d) < 0)
      body = NULL;
  } else {
    json_t *obj = json_pack("{s:s, s:s}", "message", message, "detail", detail);
    body = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
    json_decref(obj);
  }
  if (!body)
    return NULL;
  char *out = NULL;
  int n = asprintf(&out,
                   "HTTP/1.1 502 Bad Gateway\r\nContent-Type: %s\r\n"
                   "Content-Length: %zu\r\nCache-Control: no-store\r\n"
                   "Connection: close\r\n\r\n%s",
                   type, strlen(body), body);
  free(body);
  if (n < 0)
    return NULL;
  *len = (size_t)n;
  return out;
}

static void user_write(http_tunnel_t *t, char *data, size_t len) {
  atomic_fetch_add(&t->conn->queued, len);
  http_conn_write(t->conn, data, len, len);
}

/* Before the splice: the user gets a 502, then its connection closes. */
static void fail(http_tunnel_t *t, const char *reason, const char *error) {
  http_conn_t *c = t->conn;
  if (c && c->state == HTTP_CONN_TUNNEL) {
    size_t len = 0;
    char *answer = bad_gateway(t, reason, error, &len);
    if (answer)
      user_write(t, answer, len);
  }
  finish(t, reason, error, LEAVE_FLUSH);
}

void http_tunnel_discard(http_tunnel_t *t) {
  report(t, "draining", NULL);
  tunnel_free(t);
}

/* ---- waiting for the agent ------------------------------------------------ */

static void on_open_timeout(uv_timer_t *timer) {
  http_conn_t *c = timer->data;
  if (c->tun && c->tun->state == TUN_PENDING)
    fail(c->tun, "timeout", NULL);
}

/* {"type":"open","id":"<id>",<fields>}; NULL when out of memory. */
static char *open_line(const http_tunnel_t *t, size_t *len) {
  const char *rest = t->fields + 1; /* past its '{' */
  char *line = NULL;
  int n = asprintf(&line, "{\"type\":\"open\",\"id\":\"%s\"%s%s", t->id,
                   *rest == '}' ? "" : ",", rest);
  if (n < 0)
    return NULL;
  *len = (size_t)n;
  return line;
}

void http_tunnel_start(http_conn_t *c, http_tunnel_t *t) {
  atr_http_server_t *srv = c->srv;
  t->conn = c;
  uuid_t raw;
  uuid_generate_random(raw);
  uuid_unparse_lower(raw, t->id);
  if (c->state == HTTP_CONN_CLOSED) {
    finish(t, "closed", NULL, LEAVE_CLOSE); /* the user left meanwhile */
    return;
  }
  c->tun = t;
  c->state = HTTP_CONN_TUNNEL;
  http_conn_read(c, false); /* nothing more is read until the splice */
  http_up_t *up = srv->stopping ? NULL : http_session_find(srv, t->key);
  if (!up || up->closing || up->conn->state != HTTP_CONN_UPGRADED) {
    fail(t, srv->stopping ? "draining" : "no_agent", NULL);
    return;
  }
  if (up->npending >= MAX_PENDING) {
    fail(t, "refused", "Too many tunnels to this agent are being opened.");
    return;
  }
  size_t len = 0;
  char *line = open_line(t, &len);
  int rc = line ? http_up_event(up, line, len) : -1;
  free(line);
  if (rc != 0) {
    fail(t, "no_agent", NULL); /* no events stream (yet), or it is stuck */
    return;
  }
  t->up = up;
  t->next = up->tunnels;
  if (t->next)
    t->next->prev = t;
  up->tunnels = t;
  up->npending++;
  c->timer.data = c;
  uv_timer_start(&c->timer, on_open_timeout, (uint64_t)t->open_timeout_ms, 0);
  http_session_kick(up);
}

/* ---- the user's side ---------------------------------------------------------- */

static void ws_flush(http_tunnel_t *t) {
  if (t->ws && wslay_event_want_write(t->ws))
    (void)wslay_event_send(t->ws);
  if (t->wout_len == 0 || !t->conn)
    return;
  char *data = t->wout;
  size_t len = t->wout_len;
  t->wout = NULL;
  t->wout_len = t->wout_cap = 0;
  user_write(t, data, len);
}

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud) {
  (void)flags;
  http_tunnel_t *t = ud;
  return http_ws_take(ctx, &t->ws_in, &t->ws_in_len, buf, len);
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud) {
  (void)flags;
  http_tunnel_t *t = ud;
  if (buf_put(&t->wout, &t->wout_len, &t->wout_cap, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static void ws_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a,
                           void *ud) {
  (void)ctx;
  ((http_tunnel_t *)ud)->ws_frame_op = a->opcode;
}

/* Text or binary, the payload goes to the agent as it is. */
static void ws_chunk(wslay_event_context_ptr ctx,
                     const struct wslay_event_on_frame_recv_chunk_arg *a,
                     void *ud) {
  http_tunnel_t *t = ud;
  if (wslay_is_ctrl_frame(t->ws_frame_op))
    return;
  if (ua_put(t, a->data, a->data_length) != 0)
    wslay_event_queue_close(ctx, WSLAY_CODE_INTERNAL_SERVER_ERROR, NULL, 0);
}

static void ws_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *a, void *ud) {
  (void)ctx, (void)a, (void)ud; /* wslay answers pings and echoes closes */
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_frame_recv_start_callback = ws_frame_start,
    .on_frame_recv_chunk_callback = ws_chunk,
    .on_msg_recv_callback = ws_msg,
};

/* After user bytes: pause past TUN_BUF, let the stream pull, flush. */
static void user_took(http_tunnel_t *t) {
  if (!t->user_paused && ua_pending(t) > TUN_BUF) {
    t->user_paused = true;
    atomic_fetch_add(&t->srv->tunnel_pauses, 1);
    http_conn_read(t->conn, false);
  }
  http_up_t *up = t->up;
  http_up_tunnel_resume(up, t->sid);
  http_session_kick(up); /* last: it may end this tunnel */
}

void http_tunnel_user_read(http_conn_t *c, const char *data, size_t len) {
  http_tunnel_t *t = c->tun;
  if (!t || t->state != TUN_OPEN || t->user_eof)
    return;
  if (t->mode != ATR_HTTP_TUNNEL_WS) {
    int rc = t->mode == ATR_HTTP_TUNNEL_HTTP ? http_user_put(t, data, len)
                                             : ua_put(t, data, len);
    if (rc != 0) {
      finish(t, "closed", "out of memory", LEAVE_CLOSE);
      return;
    }
    user_took(t);
    return;
  }
  t->ws_in = data;
  t->ws_in_len = len;
  int rc = wslay_event_recv(t->ws);
  t->ws_in = NULL;
  t->ws_in_len = 0;
  ws_flush(t); /* pongs, the close's echo */
  if (wslay_event_get_close_received(t->ws)) {
    /* the user's close: the agent's side ends after what is buffered */
    t->user_eof = true;
    http_conn_read(c, false);
  } else if (rc != 0 || !wslay_event_get_read_enabled(t->ws)) {
    finish(t, "closed", "WebSocket protocol error", LEAVE_FLUSH);
    return;
  }
  user_took(t);
}

void http_tunnel_user_eof(http_conn_t *c) {
  http_tunnel_t *t = c->tun;
  http_conn_read(c, false);
  if (!t || t->state != TUN_OPEN || t->user_eof)
    return;
  if (t->mode == ATR_HTTP_TUNNEL_WS) {
    finish(t, "closed", NULL, LEAVE_CLOSE); /* gone without a close */
    return;
  }
  t->user_eof = true;
  http_up_t *up = t->up;
  http_up_tunnel_resume(up, t->sid);
  http_session_kick(up);
}

/* Give the agent's stream its window back once the user's queue is low. */
static void give_back(http_tunnel_t *t) {
  if (t->unconsumed == 0 || !t->stream_live ||
      atomic_load(&t->conn->queued) > TUN_BUF)
    return;
  http_up_tunnel_consume(t->up, t->sid, t->unconsumed);
  t->unconsumed = 0;
}

void http_tunnel_user_drained(http_conn_t *c) {
  http_tunnel_t *t = c->tun;
  if (!t || t->state != TUN_OPEN || t->unconsumed == 0)
    return;
  give_back(t);
  http_session_kick(t->up);
}

void http_tunnel_user_closed(http_conn_t *c) {
  http_tunnel_t *t = c->tun;
  if (t)
    finish(t, "closed", NULL, LEAVE_CLOSE);
}

/* ---- the agent's side (inside the session's feed or pull) ------------------ */

http_tunnel_t *http_tunnel_stream(http_up_t *up, int32_t sid, const char *id,
                                  const char *error) {
  http_tunnel_t *t = up->tunnels;
  while (t && (t->state != TUN_PENDING || strcmp(t->id, id) != 0))
    t = t->next;
  if (!t)
    return NULL; /* unknown, another session's, or already over */
  if (error) {
    fail(t, "refused", error);
    return NULL;
  }
  if (t->mode == ATR_HTTP_TUNNEL_WS) {
    wslay_event_context_ptr ws = NULL;
    if (wslay_event_context_server_init(&ws, &ws_callbacks, t) != 0) {
      fail(t, "closed", "out of memory");
      return NULL;
    }
    t->ws = ws;
    wslay_event_config_set_no_buffering(ws, 1);
    wslay_event_config_set_max_recv_msg_length(ws, WS_FRAME_MAX);
  }
  http_conn_t *c = t->conn;
  /* what the client sent past the head: RAW and HTTP carry it on (a
   * WebSocket client may send nothing before the 101) */
  int rc = 0;
  if (c->leftover && t->mode == ATR_HTTP_TUNNEL_RAW)
    rc = ua_put(t, c->leftover, c->leftover_len);
  else if (c->leftover && t->mode == ATR_HTTP_TUNNEL_HTTP)
    rc = http_user_put(t, c->leftover, c->leftover_len);
  if (rc != 0) {
    fail(t, "closed", "out of memory");
    return NULL;
  }
  free(c->leftover);
  c->leftover = NULL;
  c->leftover_len = 0;
  if (http_up_tunnel_accept(up, sid) != 0) {
    fail(t, "closed", "the agent's stream could not be answered");
    return NULL;
  }
  up->npending--;
  t->state = TUN_OPEN;
  t->sid = sid;
  t->stream_live = true;
  t->opened = true;
  const char *labels[] = {t->kind};
  atr_metric_add(t->srv->tunnels_open, labels, 1);
  uv_timer_stop(&c->timer);
  /* no idle timeout on a tunnel (a shell may sit idle for hours), but a
   * user whose host vanished is noticed */
  (void)uv_tcp_keepalive(&c->tcp, 1, 60);
  if (t->head) {
    user_write(t, t->head, t->head_len);
    t->head = NULL;
  }
  if (ua_pending(t) > TUN_BUF)
    t->user_paused = true;
  if (held_full(t))
    t->held_paused = true;
  if (!t->user_paused && !t->held_paused)
    http_conn_read(c, true);
  return t;
}

/* HTTP mode, agent → user: the app's answer head. */

/* Where the head at p[0..len) ends (past its empty line), 0: not yet;
 * from "from" on (what an earlier scan saw, less the 2 bytes a line's
 * end may span): an app sending a byte per frame costs no quadratic
 * rescans. */
static size_t head_end(const char *p, size_t len, size_t from) {
  for (size_t i = from > 2 ? from - 2 : 0; i < len; i++) {
    if (p[i] != '\n')
      continue;
    size_t j = i + 1;
    if (j < len && p[j] == '\r')
      j++;
    if (j < len && p[j] == '\n')
      return j + 1;
  }
  return 0;
}

/* "HTTP/1.x NNN …": its status, or -1. */
static int answer_status(const char *p, size_t len) {
  if (len < 12 || memcmp(p, "HTTP/1.", 7) != 0 ||
      !isdigit((unsigned char)p[7]) || p[8] != ' ')
    return -1;
  for (int i = 9; i < 12; i++)
    if (!isdigit((unsigned char)p[i]))
      return -1;
  if (len > 12 && p[12] != ' ' && p[12] != '\r' && p[12] != '\n')
    return -1;
  return (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
}

/* Is the header line at p (up to its ':') named name? */
static bool line_named(const char *p, size_t len, const char *name) {
  size_t n = strlen(name);
  if (len <= n || strncasecmp(p, name, n) != 0)
    return false;
  size_t i = n;
  while (i < len && (p[i] == ' ' || p[i] == '\t'))
    i++; /* "Name :" is invalid, but a lenient browser might take it */
  return i < len && p[i] == ':';
}

/* The final head h[0..len) with its Connection and Keep-Alive headers
 * (and their folded lines) dropped and "Connection: close" before the
 * empty line; every other byte as the app sent it. */
static char *close_head(const char *h, size_t len, size_t *out_len) {
  char *out = malloc(len + 32); /* + "Connection: close\r\n" */
  if (!out)
    return NULL;
  size_t o = 0, i = 0;
  bool first = true, dropping = false;
  while (i < len) {
    const char *nl = memchr(h + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - h) + 1 : len;
    const char *line = h + i;
    size_t n = end - i;
    bool empty = n == 1 || (n == 2 && line[0] == '\r');
    if (empty) {
      static const char close_line[] = "Connection: close\r\n";
      memcpy(out + o, close_line, sizeof close_line - 1);
      o += sizeof close_line - 1;
      memcpy(out + o, line, len - i); /* the empty line (the head's end) */
      o += len - i;
      break;
    }
    if (!first && (line[0] == ' ' || line[0] == '\t')) {
      /* obs-fold: part of the header above */
    } else {
      dropping = !first && (line_named(line, n, "Connection") ||
                            line_named(line, n, "Keep-Alive"));
    }
    if (!dropping) {
      memcpy(out + o, line, n);
      o += n;
    }
    first = false;
    i = end;
  }
  *out_len = o;
  return out;
}

/* 502 to the user (nothing of the answer went yet) and the end. */
static void bad_answer(http_tunnel_t *t, const char *error) {
  fail(t, "bad_answer", error);
}

static int user_copy(http_tunnel_t *t, const char *data, size_t len) {
  if (len == 0)
    return 0;
  char *copy = malloc(len);
  if (!copy)
    return -1;
  memcpy(copy, data, len);
  user_write(t, copy, len);
  return 0;
}

/* The heads in t->ahead: 1xx as they are (the next head follows), a 101
 * to an upgrade as it is, a final one with Connection: close; then what
 * follows it goes raw. false: the tunnel ended. */
static bool answer_heads(http_tunnel_t *t) {
  while (t->answer == ANS_HEAD) {
    size_t scan = t->ahead_len < PREFIX_MAX ? t->ahead_len : PREFIX_MAX;
    size_t end = head_end(t->ahead, scan, t->ahead_seen);
    t->ahead_seen = scan;
    if (end == 0) {
      if (t->ahead_len >= PREFIX_MAX) {
        bad_answer(t, "The app's answer head is larger than 64 KiB.");
        return false;
      }
      return true; /* more to come */
    }
    int status = answer_status(t->ahead, end);
    if (status < 100) {
      bad_answer(t, "The app's answer is not HTTP/1.x.");
      return false;
    }
    if (status == 101 && !t->rq.upgrade) {
      bad_answer(t, "The app switched protocols unasked.");
      return false;
    }
    int rc = 0;
    if (status == 101 || status >= 200) {
      if (status == 101) {
        rc = user_copy(t, t->ahead, end);
      } else {
        size_t n = 0;
        char *head = close_head(t->ahead, end, &n);
        if (head)
          user_write(t, head, n);
        rc = head ? 0 : -1;
      }
      t->answer = status == 101 ? ANS_UPGRADED : ANS_BODY;
      if (rc == 0)
        rc = release_held(t, status == 101);
      if (status == 101 && t->up)
        http_up_tunnel_resume(t->up, t->sid); /* what was held */
    } else {
      rc = user_copy(t, t->ahead, end); /* 100 Continue, 103 Early Hints */
    }
    if (rc != 0) {
      finish(t, "closed", "out of memory", LEAVE_CLOSE);
      return false;
    }
    memmove(t->ahead, t->ahead + end, t->ahead_len - end);
    t->ahead_len -= end;
    t->ahead_seen = 0;
  }
  if (user_copy(t, t->ahead, t->ahead_len) != 0) { /* the body's start */
    finish(t, "closed", "out of memory", LEAVE_CLOSE);
    return false;
  }
  free(t->ahead);
  t->ahead = NULL;
  t->ahead_len = t->ahead_cap = 0;
  return true;
}

void http_tunnel_data(http_up_t *up, http_tunnel_t *t, const uint8_t *data,
                      size_t len) {
  (void)up;
  t->from_agent += len;
  count_bytes(t, "from_agent", len);
  t->unconsumed += len;
  if (t->mode == ATR_HTTP_TUNNEL_HTTP && t->answer == ANS_HEAD) {
    if (buf_put(&t->ahead, &t->ahead_len, &t->ahead_cap, data, len) != 0) {
      finish(t, "closed", "out of memory", LEAVE_CLOSE);
      return;
    }
    if (answer_heads(t))
      give_back(t);
    return;
  }
  if (t->mode == ATR_HTTP_TUNNEL_WS) {
    struct wslay_event_msg m = {WSLAY_BINARY_FRAME, data, len};
    if (!wslay_event_get_close_sent(t->ws))
      (void)wslay_event_queue_msg(t->ws, &m); /* copied */
    ws_flush(t);
  } else {
    char *copy = malloc(len);
    if (!copy) {
      finish(t, "closed", "out of memory", LEAVE_CLOSE);
      return;
    }
    memcpy(copy, data, len);
    user_write(t, copy, len);
  }
  give_back(t);
}

void http_tunnel_agent_eof(http_up_t *up, http_tunnel_t *t) {
  (void)up;
  t->agent_eof = true;
  if (t->mode == ATR_HTTP_TUNNEL_HTTP && t->answer == ANS_HEAD) {
    bad_answer(t, "The app closed the connection before its answer's head "
                  "ended.");
    return;
  }
  if (t->mode == ATR_HTTP_TUNNEL_WS) {
    if (!wslay_event_get_close_sent(t->ws))
      (void)wslay_event_queue_close(t->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
    ws_flush(t);
  } else {
    http_conn_shutdown(t->conn); /* after what is queued */
  }
}

void http_tunnel_stream_closed(http_up_t *up, http_tunnel_t *t, uint32_t code) {
  (void)up;
  t->stream_live = false; /* nghttp2 forgets the stream: no reset */
  bool both = code == NGHTTP2_NO_ERROR && t->agent_eof && t->eof_sent;
  finish(t, "closed", both ? NULL : "the agent's stream was reset",
         both ? LEAVE_FLUSH : LEAVE_CLOSE);
}

size_t http_tunnel_pull(http_up_t *up, http_tunnel_t *t, uint8_t *buf,
                        size_t len, bool *eof) {
  (void)up;
  size_t left = ua_pending(t);
  size_t n = left < len ? left : len;
  if (n > 0) {
    memcpy(buf, t->ua + t->ua_off, n);
    t->ua_off += n;
    t->to_agent += n;
    count_bytes(t, "to_agent", n);
  }
  if (ua_pending(t) == 0 && t->user_eof) {
    *eof = true;
    t->eof_sent = true;
  }
  if (t->user_paused && !t->user_eof && ua_pending(t) <= TUN_BUF &&
      !t->held_paused) {
    t->user_paused = false;
    http_conn_read(t->conn, true);
  }
  return n;
}

void http_tunnels_end(http_up_t *up, const char *reason) {
  up->ending = true;
  http_tunnel_t *next = up->tunnels;
  up->tunnels = NULL; /* taken whole: each is ended once */
  while (next) {
    http_tunnel_t *t = next;
    next = t->next;
    t->prev = t->next = NULL;
    if (t->state == TUN_PENDING)
      fail(t, reason, NULL);
    else
      finish(t, reason, NULL, LEAVE_CLOSE);
  }
  up->ending = false;
}
