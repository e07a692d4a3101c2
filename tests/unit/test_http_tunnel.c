/* tests/unit/test_http_tunnel.c — tunnels end to end on loopback
 * (docs/design/connect.md): a real atr_http server whose dispatch plays
 * the API (it upgrades /me/rpc to a session and opens tunnels on /t/...
 * and /@...), a fake agent written here (wslay + nghttp2 client on its
 * own thread: the session, the events stream, POST /me/tunnels/{id}),
 * and users on blocking sockets in the test thread. Every wait is a
 * bounded poll for a state. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "http.h"
#include "http_exchange.h"
#include "http_internal.h"
#include "metrics.h"

#define TOKEN "atragt_test-token"
#define KEY "agent-1"
#define WAIT_MS 10000
#define MAX_BODY (1 << 20)

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap(void) {
  struct timespec ts = {0, 2000000L};
  nanosleep(&ts, NULL);
}

/* Poll cond (read under whatever lock it takes) for at most WAIT_MS. */
#define WAIT_UNTIL(cond)                                                       \
  do {                                                                         \
    uint64_t end_ = now_ms() + WAIT_MS;                                        \
    bool held_ = false;                                                        \
    while (!(held_ = (cond)) && now_ms() < end_)                               \
      nap();                                                                   \
    assert_true(held_);                                                        \
  } while (0)

/* ---- the fake agent ------------------------------------------------------------ */

typedef enum {
  AG_ECHO = 0, /* bytes back; its side ends after the user's */
  AG_REFUSE,   /* atrium-tunnel-error */
  AG_IGNORE,   /* never opens */
  AG_GREET,    /* "hello" and END_STREAM at once; keeps what comes */
} ag_mode_t;

typedef struct ag_stream {
  int32_t sid;
  char *out; /* agent → user */
  size_t out_len, out_off, out_cap;
  bool out_eof;
  size_t in_len; /* user → agent */
  size_t held;   /* received, window not given back (agent_t.hold) */
  char in_head[256];
  bool in_eof, closed;
  uint32_t close_code;
} ag_stream_t;

typedef struct agent {
  int fd;
  pthread_t thread;
  pthread_mutex_t mu;
  wslay_event_context_ptr ws;
  nghttp2_session *h2;
  const uint8_t *in;
  size_t in_len;
  char ev[8192];
  size_t ev_len;
  int32_t events_sid;
  bool events_up;
  ag_mode_t mode;
  bool hold; /* give no window back for tunnel bytes until released */
  ag_stream_t streams[8];
  int nstreams;
  int opens;
  char last_open[512];
  atomic_bool stop, kill;
  bool dead;
} agent_t;

static ag_stream_t *ag_stream_of(agent_t *a, int32_t sid) {
  for (int i = 0; i < a->nstreams; i++)
    if (a->streams[i].sid == sid)
      return &a->streams[i];
  return NULL;
}

static void ag_put(ag_stream_t *st, const void *data, size_t len) {
  if (st->out_len + len > st->out_cap) {
    size_t cap = st->out_cap ? st->out_cap * 2 : 65536;
    while (cap < st->out_len + len)
      cap *= 2;
    st->out = realloc(st->out, cap);
    st->out_cap = cap;
  }
  memcpy(st->out + st->out_len, data, len);
  st->out_len += len;
}

static ssize_t ag_read(nghttp2_session *s, int32_t sid, uint8_t *buf,
                       size_t len, uint32_t *flags, nghttp2_data_source *src,
                       void *ud) {
  (void)s, (void)sid, (void)ud;
  ag_stream_t *st = src->ptr;
  size_t left = st->out_len - st->out_off;
  size_t n = left < len ? left : len;
  if (n > 0)
    memcpy(buf, st->out + st->out_off, n);
  st->out_off += n;
  if (st->out_off == st->out_len && st->out_eof)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  else if (n == 0)
    return NGHTTP2_ERR_DEFERRED;
  return (ssize_t)n;
}

#define NV(n, v)                                                               \
  {                                                                            \
    (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v),                  \
        NGHTTP2_NV_FLAG_NONE                                                   \
  }

static void ag_open(agent_t *a, const char *id) {
  char path[160];
  snprintf(path, sizeof path, "/api/v2/workspaceagents/me/tunnels/%s", id);
  nghttp2_nv nv[] = {NV(":method", "POST"), NV(":scheme", "http"),
                     NV(":authority", "x"), NV(":path", path),
                     NV("atrium-tunnel-error", "port 1 refused")};
  if (a->mode == AG_REFUSE) {
    nghttp2_submit_request(a->h2, NULL, nv, 5, NULL, NULL);
    return;
  }
  ag_stream_t *st = &a->streams[a->nstreams++];
  memset(st, 0, sizeof *st);
  nghttp2_data_provider dp = {.source.ptr = st, .read_callback = ag_read};
  if (a->mode == AG_GREET) {
    ag_put(st, "hello", 5);
    st->out_eof = true;
  }
  st->sid = nghttp2_submit_request(a->h2, NULL, nv, 4, &dp, st);
}

/* NDJSON lines of the events stream: open events open streams. */
static void ag_events(agent_t *a) {
  char *nl;
  while ((nl = memchr(a->ev, '\n', a->ev_len)) != NULL) {
    *nl = '\0';
    json_t *obj = json_loads(a->ev, 0, NULL);
    const char *type = json_string_value(json_object_get(obj, "type"));
    const char *id = json_string_value(json_object_get(obj, "id"));
    if (type && strcmp(type, "open") == 0 && id) {
      a->opens++;
      snprintf(a->last_open, sizeof a->last_open, "%.*s",
               (int)(sizeof a->last_open - 1), a->ev);
      if (a->mode != AG_IGNORE && a->nstreams < 8)
        ag_open(a, id);
    }
    json_decref(obj);
    size_t used = (size_t)(nl - a->ev) + 1;
    memmove(a->ev, nl + 1, a->ev_len - used);
    a->ev_len -= used;
  }
}

static int ag_on_data(nghttp2_session *s, uint8_t flags, int32_t sid,
                      const uint8_t *data, size_t len, void *ud) {
  (void)flags;
  agent_t *a = ud;
  ag_stream_t *st = ag_stream_of(a, sid);
  if (st && a->hold)
    st->held += len;
  else
    nghttp2_session_consume(s, sid, len);
  if (sid == a->events_sid) {
    if (a->ev_len + len <= sizeof a->ev) {
      memcpy(a->ev + a->ev_len, data, len);
      a->ev_len += len;
    }
    ag_events(a);
    return 0;
  }
  if (!st)
    return 0;
  if (st->in_len < sizeof st->in_head - 1) {
    size_t n = sizeof st->in_head - 1 - st->in_len;
    memcpy(st->in_head + st->in_len, data, len < n ? len : n);
  }
  st->in_len += len;
  if (a->mode == AG_ECHO) {
    ag_put(st, data, len);
    nghttp2_session_resume_data(s, sid);
  }
  return 0;
}

static int ag_on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  agent_t *a = ud;
  if (f->hd.stream_id == a->events_sid && f->hd.type == NGHTTP2_HEADERS)
    a->events_up = true;
  ag_stream_t *st = ag_stream_of(a, f->hd.stream_id);
  if (st && (f->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
      (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS)) {
    st->in_eof = true;
    if (a->mode == AG_ECHO) {
      st->out_eof = true;
      nghttp2_session_resume_data(s, st->sid);
    }
  }
  return 0;
}

static int ag_on_close(nghttp2_session *s, int32_t sid, uint32_t code,
                       void *ud) {
  (void)s;
  ag_stream_t *st = ag_stream_of(ud, sid);
  if (st) {
    st->closed = true;
    st->close_code = code;
  }
  return 0;
}

static ssize_t ag_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *ud) {
  (void)flags;
  agent_t *a = ud;
  if (a->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = a->in_len < len ? a->in_len : len;
  memcpy(buf, a->in, n);
  a->in += n;
  a->in_len -= n;
  return (ssize_t)n;
}

static ssize_t ag_ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *ud) {
  (void)ctx, (void)flags;
  agent_t *a = ud;
  size_t done = 0;
  while (done < len) {
    ssize_t n = send(a->fd, data + done, len - done, MSG_NOSIGNAL);
    if (n <= 0) {
      wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
      return -1;
    }
    done += (size_t)n;
  }
  return (ssize_t)len;
}

static int ag_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                      void *ud) {
  (void)ctx, (void)ud;
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)rand();
  return 0;
}

static void ag_ws_msg(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *m, void *ud) {
  (void)ctx;
  agent_t *a = ud;
  if (m->opcode == WSLAY_BINARY_FRAME)
    nghttp2_session_mem_recv(a->h2, m->msg, m->msg_length);
}

static const struct wslay_event_callbacks ag_ws_cbs = {
    .recv_callback = ag_ws_recv,
    .send_callback = ag_ws_send,
    .genmask_callback = ag_genmask,
    .on_msg_recv_callback = ag_ws_msg,
};

/* What nghttp2 has to send, framed and written (blocking). */
static void ag_pump(agent_t *a) {
  while (nghttp2_session_want_write(a->h2)) {
    const uint8_t *data = NULL;
    ssize_t n = nghttp2_session_mem_send(a->h2, &data);
    if (n <= 0)
      break;
    struct wslay_event_msg m = {WSLAY_BINARY_FRAME, data, (size_t)n};
    wslay_event_queue_msg(a->ws, &m);
    wslay_event_send(a->ws);
  }
  if (wslay_event_want_write(a->ws))
    wslay_event_send(a->ws);
}

static void *ag_main(void *arg) {
  agent_t *a = arg;
  static uint8_t buf[65536];
  while (!atomic_load(&a->stop)) {
    if (atomic_load(&a->kill)) {
      pthread_mutex_lock(&a->mu);
      shutdown(a->fd, SHUT_RDWR);
      a->dead = true;
      pthread_mutex_unlock(&a->mu);
      break;
    }
    pthread_mutex_lock(&a->mu);
    ag_pump(a);
    pthread_mutex_unlock(&a->mu);
    struct pollfd p = {.fd = a->fd, .events = POLLIN};
    if (poll(&p, 1, 5) <= 0)
      continue;
    ssize_t n = recv(a->fd, buf, sizeof buf, 0);
    pthread_mutex_lock(&a->mu);
    if (n <= 0) {
      a->dead = true;
      pthread_mutex_unlock(&a->mu);
      break;
    }
    a->in = buf;
    a->in_len = (size_t)n;
    wslay_event_recv(a->ws);
    pthread_mutex_unlock(&a->mu);
  }
  return NULL;
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  struct timeval tv = {WAIT_MS / 1000, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  int one = 1; /* wslay writes a frame's header and payload apart */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void send_all(int fd, const void *data, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = send(fd, (const char *)data + done, len - done, MSG_NOSIGNAL);
    assert_true(n > 0);
    done += (size_t)n;
  }
}

/* The answer's head, byte by byte (nothing past it is read). */
static void read_head(int fd, char *head, size_t size) {
  size_t got = 0;
  while (got < size - 1 &&
         (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0))
    assert_int_equal(read(fd, head + got++, 1), 1);
  head[got] = '\0';
}

static int ag_nghttp2_cbs(nghttp2_session_callbacks **cb) {
  nghttp2_session_callbacks_new(cb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(*cb, ag_on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(*cb, ag_on_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(*cb, ag_on_close);
  return 0;
}

static agent_t *agent_start(int port, ag_mode_t mode) {
  agent_t *a = calloc(1, sizeof *a);
  a->mode = mode;
  pthread_mutex_init(&a->mu, NULL);
  a->fd = dial(port);
  static const char req[] = "GET /api/v2/workspaceagents/me/rpc HTTP/1.1\r\n"
                            "Host: x\r\nUpgrade: websocket\r\n"
                            "Connection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n"
                            "Sec-WebSocket-Protocol: atrium-agent.h2\r\n"
                            "Atrium-Session-Token: " TOKEN "\r\n\r\n";
  send_all(a->fd, req, sizeof req - 1);
  char head[1024];
  read_head(a->fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_int_equal(wslay_event_context_client_init(&a->ws, &ag_ws_cbs, a), 0);
  nghttp2_session_callbacks *cb = NULL;
  ag_nghttp2_cbs(&cb);
  nghttp2_option *opt = NULL;
  nghttp2_option_new(&opt);
  nghttp2_option_set_no_auto_window_update(opt, 1); /* for agent_t.hold */
  assert_int_equal(nghttp2_session_client_new2(&a->h2, cb, a, opt), 0);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  nghttp2_submit_settings(a->h2, NGHTTP2_FLAG_NONE, NULL, 0);
  nghttp2_nv nv[] = {NV(":method", "GET"), NV(":scheme", "http"),
                     NV(":authority", "x"),
                     NV(":path", "/api/v2/workspaceagents/me/events")};
  a->events_sid = nghttp2_submit_request(a->h2, NULL, nv, 4, NULL, NULL);
  assert_int_equal(pthread_create(&a->thread, NULL, ag_main, a), 0);
  return a;
}

static bool ag_is(agent_t *a, bool *field) {
  pthread_mutex_lock(&a->mu);
  bool v = *field;
  pthread_mutex_unlock(&a->mu);
  return v;
}

static int ag_int(agent_t *a, const int *field) {
  pthread_mutex_lock(&a->mu);
  int v = *field;
  pthread_mutex_unlock(&a->mu);
  return v;
}

/* Give back the window of what was held: the server may send on. */
static void ag_release(agent_t *a) {
  pthread_mutex_lock(&a->mu);
  a->hold = false;
  for (int i = 0; i < a->nstreams; i++) {
    nghttp2_session_consume(a->h2, a->streams[i].sid, a->streams[i].held);
    a->streams[i].held = 0;
  }
  pthread_mutex_unlock(&a->mu);
}

static size_t ag_in_len(agent_t *a) {
  pthread_mutex_lock(&a->mu);
  size_t n = a->nstreams > 0 ? a->streams[0].in_len : 0;
  pthread_mutex_unlock(&a->mu);
  return n;
}

static void agent_stop(agent_t *a) {
  atomic_store(&a->stop, true);
  pthread_join(a->thread, NULL);
  close(a->fd);
  nghttp2_session_del(a->h2);
  wslay_event_context_free(a->ws);
  for (int i = 0; i < a->nstreams; i++)
    free(a->streams[i].out);
  pthread_mutex_destroy(&a->mu);
  free(a);
}

/* ---- the server and its dispatch (the API's part) ---------------------------- */

typedef struct fx {
  atr_http_server_t *srv;
  int port;
  pthread_mutex_t mu;
  int ended_n, freed_n, tunnel_rc;
  char reason[32], error[256];
  bool opened;
  uint64_t to_agent, from_agent;
  int64_t duration_ms;
  bool body_unread_seen;
} fx_t;

static void sess_closed(void *ud, const char *reason) {
  (void)ud, (void)reason;
}

static const atr_http_session_ops_t sess_ops = {.struct_size = sizeof sess_ops,
                                                .closed = sess_closed};

static void tun_ended(void *ud, const atr_http_tunnel_end_t *end) {
  fx_t *f = ud;
  pthread_mutex_lock(&f->mu);
  f->ended_n++;
  snprintf(f->reason, sizeof f->reason, "%s", end->reason);
  snprintf(f->error, sizeof f->error, "%s", end->error ? end->error : "");
  f->opened = end->opened;
  f->to_agent = end->bytes_to_agent;
  f->from_agent = end->bytes_from_agent;
  f->duration_ms = end->duration_ms;
  pthread_mutex_unlock(&f->mu);
}

static void tun_free(void *ud) {
  fx_t *f = ud;
  pthread_mutex_lock(&f->mu);
  f->freed_n++;
  pthread_mutex_unlock(&f->mu);
}

static const atr_http_tunnel_ops_t tun_ops = {
    .struct_size = sizeof tun_ops, .ended = tun_ended, .free_ud = tun_free};

static void open_tunnel(fx_t *f, atr_http_exchange_t *x,
                        const atr_http_request_t *req) {
  static const char prefix[] =
      "PREFIX /x HTTP/1.1\r\nConnection: close\r\n\r\n";
  atr_http_tunnel_req_t t = {.struct_size = sizeof t,
                             .agent_key = KEY,
                             .kind = "tcp",
                             .open = "{\"kind\":\"tcp\",\"port\":8080}",
                             .mode = ATR_HTTP_TUNNEL_RAW};
  if (strcmp(req->path, "/t/ws") == 0)
    t.mode = ATR_HTTP_TUNNEL_WS;
  if (strcmp(req->path, "/t/ssh") == 0) {
    t.kind = "ssh";
    t.open = "{\"kind\":\"ssh\"}";
  }
  if (strcmp(req->path, "/t/nobody") == 0)
    t.agent_key = "agent-2";
  if (strncmp(req->path, "/@", 2) == 0) {
    t.mode = ATR_HTTP_TUNNEL_HTTP;
    t.kind = "app";
    t.prefix = prefix;
    t.prefix_len = sizeof prefix - 1;
  }
  if (req->query && strncmp(req->query, "timeout=", 8) == 0)
    t.open_timeout_ms = atoll(req->query + 8);
  int rc = atr__http_tunnel(x, &t, &tun_ops, f);
  pthread_mutex_lock(&f->mu);
  f->tunnel_rc = rc;
  pthread_mutex_unlock(&f->mu);
  if (rc == ATR_ENOENT)
    atr__http_respond(x, 404, "application/json", "{\"no\":\"agent\"}", 14);
  else if (rc != 0)
    atr__http_respond(x, 400, "application/json", "{}", 2);
}

static int dispatch(void *ud, atr_http_exchange_t *x,
                    const atr_http_request_t *req, const char *remote_ip,
                    const char *user_agent, const char **route_template,
                    char *who, size_t who_size) {
  (void)remote_ip, (void)user_agent, (void)who, (void)who_size;
  fx_t *f = ud;
  *route_template = req->path;
  if (strcmp(req->path, "/api/v2/workspaceagents/me/rpc") == 0) {
    if (atr__http_upgrade(x, KEY, &sess_ops, NULL) != 0)
      atr__http_respond(x, 400, "application/json", "{}", 2);
    return 1;
  }
  if (strncmp(req->path, "/@", 2) == 0) {
    pthread_mutex_lock(&f->mu);
    f->body_unread_seen = atr__http_body_unread(x);
    pthread_mutex_unlock(&f->mu);
    if (atr__http_header(x, "X-Deny")) {
      atr__http_respond(x, 403, "application/json", "{\"denied\":1}", 12);
      return 1;
    }
  }
  if (strncmp(req->path, "/t/", 3) == 0 || strncmp(req->path, "/@", 2) == 0) {
    open_tunnel(f, x, req);
    return 1;
  }
  return 0;
}

static fx_t *fx_new(void) {
  fx_t *f = calloc(1, sizeof *f);
  pthread_mutex_init(&f->mu, NULL);
  atr_http_config_t cfg = {.address = "127.0.0.1:0",
                           .threads = 2,
                           .max_body_size = MAX_BODY,
                           .max_header_size = 8192,
                           .dispatch = dispatch,
                           .dispatch_user_data = f,
                           .agent_threads = 2};
  char *err = NULL;
  assert_int_equal(atr_http_start(&cfg, &f->srv, &err), 0);
  struct sockaddr_in sin;
  int len = sizeof sin;
  assert_int_equal(
      uv_tcp_getsockname(&f->srv->listeners[0], (struct sockaddr *)&sin, &len),
      0);
  f->port = ntohs(sin.sin_port);
  return f;
}

static void fx_free(fx_t *f) {
  atr_http_stop(f->srv);
  pthread_mutex_destroy(&f->mu);
  free(f);
}

static int fx_int(fx_t *f, const int *field) {
  pthread_mutex_lock(&f->mu);
  int v = *field;
  pthread_mutex_unlock(&f->mu);
  return v;
}

/* An agent with its events stream open, registered on the server. */
static agent_t *agent_ready(fx_t *f, ag_mode_t mode) {
  agent_t *a = agent_start(f->port, mode);
  WAIT_UNTIL(ag_is(a, &a->events_up) && atr_http_sessions(f->srv) == 1);
  return a;
}

/* ---- users ------------------------------------------------------------------------ */

static int raw_user(fx_t *f, const char *path) {
  int fd = dial(f->port);
  char req[512];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                   "Upgrade: atrium-tunnel\r\n\r\n",
                   path);
  send_all(fd, req, (size_t)n);
  return fd;
}

static void read_n(int fd, char *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    assert_true(r > 0);
    got += (size_t)r;
  }
}

/* Read until EOF (or a reset); how many bytes came. */
static size_t read_to_end(int fd, char *buf, size_t size) {
  size_t got = 0;
  for (;;) {
    ssize_t r = read(fd, buf + got, size - 1 - got);
    if (r <= 0)
      break;
    got += (size_t)r;
    if (got == size - 1)
      break;
  }
  buf[got] = '\0';
  return got;
}

typedef struct writer {
  int fd;
  const char *data;
  size_t len;
  bool shut; /* shutdown(SHUT_WR) after */
} writer_t;

static void *write_main(void *arg) {
  writer_t *w = arg;
  send_all(w->fd, w->data, w->len);
  if (w->shut)
    shutdown(w->fd, SHUT_WR);
  return NULL;
}

static char *pattern(size_t n) {
  char *p = malloc(n);
  for (size_t i = 0; i < n; i++)
    p[i] = (char)(i * 7 + i / 251);
  return p;
}

/* ---- metrics ------------------------------------------------------------------------ */

typedef struct metric_q {
  const char *name;
  const char *labels[2];
  double value;
} metric_q_t;

static void visit(void *ud, const atr_metric_family_t *fam,
                  const atr_metric_sample_t *samples, size_t n) {
  metric_q_t *q = ud;
  if (strcmp(fam->name, q->name) != 0)
    return;
  for (size_t i = 0; i < n; i++) {
    const atr_metric_sample_t *s = atr_metric_sample_at(samples, i);
    bool match = true;
    for (size_t l = 0; l < fam->nlabels && l < 2; l++)
      match = match && strcmp(s->label_values[l], q->labels[l]) == 0;
    if (match)
      q->value = s->value;
  }
}

static double metric(const char *name, const char *l0, const char *l1) {
  metric_q_t q = {.name = name, .labels = {l0, l1}};
  atr_metrics_collect(visit, &q);
  return q.value;
}

/* ---- the tests ------------------------------------------------------------------------ */

static void raw_echo_of_a_mebibyte_both_ways(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = raw_user(f, "/t/raw");
  char head[1024];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101 Switching Protocols\r\n"));
  assert_non_null(strstr(head, "Upgrade: atrium-tunnel\r\n"));
  pthread_mutex_lock(&a->mu);
  json_t *ev = json_loads(a->last_open, 0, NULL);
  pthread_mutex_unlock(&a->mu);
  assert_string_equal(json_string_value(json_object_get(ev, "kind")), "tcp");
  assert_int_equal(json_integer_value(json_object_get(ev, "port")), 8080);
  assert_int_equal(strlen(json_string_value(json_object_get(ev, "id"))), 36);
  json_decref(ev);
  size_t n = (size_t)1 << 20;
  char *data = pattern(n);
  writer_t w = {fd, data, n, true};
  pthread_t wt;
  pthread_create(&wt, NULL, write_main, &w);
  char *back = malloc(n + 16);
  read_n(fd, back, n);
  assert_memory_equal(back, data, n);
  /* the user's EOF went to the agent, whose side then ended: EOF here */
  assert_int_equal(read(fd, back, 16), 0);
  pthread_join(wt, NULL);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->reason, "closed");
  assert_true(f->opened);
  assert_int_equal(f->to_agent, n);
  assert_int_equal(f->from_agent, n);
  assert_true(f->duration_ms >= 0);
  pthread_mutex_unlock(&f->mu);
  assert_int_equal(fx_int(f, &f->ended_n), 1);
  free(back);
  free(data);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

/* The agent ends its side first: the user reads EOF yet may still send,
 * and the tunnel is over once the user ends too. */
static void half_close_both_ways(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_GREET);
  int fd = raw_user(f, "/t/raw");
  char head[1024], buf[64];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  read_n(fd, buf, 5);
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(read(fd, buf, sizeof buf), 0); /* the agent's EOF */
  send_all(fd, "still here", 10);
  WAIT_UNTIL(ag_in_len(a) == 10);
  assert_int_equal(fx_int(f, &f->ended_n), 0); /* one side is still open */
  shutdown(fd, SHUT_WR);
  /* the server is done once its END_STREAM is sent, before the agent
   * read it: both are waited for */
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1 && ag_is(a, &a->streams[0].in_eof));
  pthread_mutex_lock(&a->mu);
  assert_memory_equal(a->streams[0].in_head, "still here", 10);
  pthread_mutex_unlock(&a->mu);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->reason, "closed");
  assert_int_equal(f->to_agent, 10);
  assert_int_equal(f->from_agent, 5);
  pthread_mutex_unlock(&f->mu);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

static void refused_tunnel_answers_502_with_the_agents_reason(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_REFUSE);
  int fd = raw_user(f, "/t/raw");
  char answer[4096];
  read_to_end(fd, answer, sizeof answer);
  assert_non_null(strstr(answer, "HTTP/1.1 502 Bad Gateway\r\n"));
  assert_non_null(strstr(answer, "application/json"));
  char *body = strstr(answer, "\r\n\r\n");
  assert_non_null(body);
  json_t *obj = json_loads(body + 4, 0, NULL);
  assert_string_equal(json_string_value(json_object_get(obj, "message")),
                      "The workspace agent refused the tunnel.");
  assert_string_equal(json_string_value(json_object_get(obj, "detail")),
                      "port 1 refused");
  json_decref(obj);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->reason, "refused");
  assert_string_equal(f->error, "port 1 refused");
  assert_false(f->opened);
  pthread_mutex_unlock(&f->mu);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

static void agent_that_never_opens_times_out(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_IGNORE);
  int fd = raw_user(f, "/t/raw?timeout=100");
  char answer[4096];
  read_to_end(fd, answer, sizeof answer);
  assert_non_null(strstr(answer, "HTTP/1.1 502"));
  assert_non_null(strstr(answer, "did not answer in time"));
  assert_int_equal(ag_int(a, &a->opens), 1);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->reason, "timeout");
  assert_false(f->opened);
  assert_true(f->duration_ms >= 100);
  pthread_mutex_unlock(&f->mu);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

static void agent_not_here_is_enoent_for_the_handler(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = raw_user(f, "/t/nobody");
  char answer[4096];
  read_to_end(fd, answer, sizeof answer);
  assert_non_null(strstr(answer, "HTTP/1.1 404"));
  assert_int_equal(fx_int(f, &f->tunnel_rc), ATR_ENOENT);
  assert_int_equal(fx_int(f, &f->ended_n), 0); /* nothing was taken */
  close(fd);
  agent_stop(a);
  fx_free(f);
}

static void agent_gone_mid_tunnel_closes_the_user(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = raw_user(f, "/t/raw");
  char head[1024], buf[64];
  read_head(fd, head, sizeof head);
  send_all(fd, "ping", 4);
  read_n(fd, buf, 4);
  assert_memory_equal(buf, "ping", 4);
  atomic_store(&a->kill, true);
  assert_true(read(fd, buf, sizeof buf) <= 0); /* closed by the server */
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->reason, "agent_gone");
  assert_true(f->opened);
  pthread_mutex_unlock(&f->mu);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

/* A masked client frame (payload < 126 bytes). */
static size_t ws_frame(uint8_t *out, uint8_t op, const char *payload,
                       size_t len) {
  static const uint8_t mask[4] = {9, 8, 7, 6};
  out[0] = (uint8_t)(0x80 | op);
  out[1] = (uint8_t)(0x80 | len);
  memcpy(out + 2, mask, 4);
  for (size_t i = 0; i < len; i++)
    out[6 + i] = (uint8_t)payload[i] ^ mask[i % 4];
  return 6 + len;
}

/* One server frame (unmasked; payload at most cap): its opcode. */
static int ws_read_frame_cap(int fd, char *payload, size_t cap, size_t *len) {
  uint8_t h[10];
  read_n(fd, (char *)h, 2);
  assert_int_equal(h[1] & 0x80, 0); /* a server never masks */
  *len = h[1];
  if (h[1] == 126) {
    read_n(fd, (char *)h + 2, 2);
    *len = (size_t)h[2] << 8 | h[3];
  } else if (h[1] == 127) {
    read_n(fd, (char *)h + 2, 8);
    *len = 0;
    for (int i = 2; i < 10; i++)
      *len = *len << 8 | h[i];
  }
  assert_true(*len <= cap);
  read_n(fd, payload, *len);
  return h[0];
}

static int ws_read_frame(int fd, char *payload, size_t *len) {
  return ws_read_frame_cap(fd, payload, 125, len);
}

/* A masked client frame of any size (127: a 64-bit length). */
static char *ws_big_frame(uint8_t op, const char *payload, size_t len,
                          size_t *out_len) {
  static const uint8_t mask[4] = {1, 3, 5, 7};
  char *out = malloc(len + 14);
  out[0] = (char)(0x80 | op);
  out[1] = (char)(0x80 | 127);
  for (int i = 0; i < 8; i++)
    out[2 + i] = (char)(len >> (8 * (7 - i)));
  memcpy(out + 10, mask, 4);
  for (size_t i = 0; i < len; i++)
    out[14 + i] = (char)(payload[i] ^ mask[i % 4]);
  *out_len = len + 14;
  return out;
}

static void ws_mode_carries_text_and_binary_and_answers_pings(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = dial(f->port);
  static const char req[] = "GET /t/ws HTTP/1.1\r\nHost: x\r\n"
                            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n";
  send_all(fd, req, sizeof req - 1);
  char head[1024];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_non_null(strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  assert_null(strstr(head, "Sec-WebSocket-Protocol"));
  uint8_t frames[256];
  size_t n = ws_frame(frames, 0x1, "{\"data\":\"ls\"}", 13);
  n += ws_frame(frames + n, 0x2, "\x01\x02", 2);
  send_all(fd, frames, n);
  char got[64], payload[128];
  size_t have = 0, len = 0;
  while (have < 15) {
    assert_int_equal(ws_read_frame(fd, payload, &len), 0x82); /* binary */
    memcpy(got + have, payload, len);
    have += len;
  }
  assert_memory_equal(got, "{\"data\":\"ls\"}\x01\x02", 15);
  n = ws_frame(frames, 0x9, "p", 1); /* a ping */
  send_all(fd, frames, n);
  assert_int_equal(ws_read_frame(fd, payload, &len), 0x8A); /* its pong */
  assert_int_equal(len, 1);
  n = ws_frame(frames, 0x8, "\x03\xe8", 2); /* close 1000 */
  send_all(fd, frames, n);
  /* the echo of the close; then the agent's side ends too */
  int op = ws_read_frame(fd, payload, &len);
  assert_int_equal(op, 0x88);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->reason, "closed");
  assert_int_equal(f->to_agent, 15);
  assert_int_equal(f->from_agent, 15);
  pthread_mutex_unlock(&f->mu);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

/* A message larger than one window goes to the agent whole; the agent's
 * bytes come back as binary messages however they were cut. */
static void ws_mode_carries_a_large_message(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = dial(f->port);
  static const char req[] = "GET /t/ws HTTP/1.1\r\nHost: x\r\n"
                            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Protocol: tty\r\n"
                            "Sec-WebSocket-Version: 13\r\n\r\n";
  send_all(fd, req, sizeof req - 1);
  char head[1024];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_null(strstr(head, "Sec-WebSocket-Protocol")); /* none chosen */
  size_t n = (size_t)300 * 1024, flen = 0;
  char *data = pattern(n);
  char *frame = ws_big_frame(0x2, data, n, &flen);
  writer_t w = {fd, frame, flen, false};
  pthread_t wt;
  pthread_create(&wt, NULL, write_main, &w);
  char *back = malloc(n);
  size_t have = 0, len = 0;
  while (have < n) {
    assert_int_equal(ws_read_frame_cap(fd, back + have, n - have, &len), 0x82);
    have += len;
  }
  assert_memory_equal(back, data, n);
  pthread_join(wt, NULL);
  close(fd); /* gone without a close frame: the tunnel ends */
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_int_equal(f->to_agent, n);
  assert_int_equal(f->from_agent, n);
  pthread_mutex_unlock(&f->mu);
  free(back);
  free(frame);
  free(data);
  agent_stop(a);
  fx_free(f);
}

/* Bytes a RAW client sends right behind its request, before the 101, are
 * the tunnel's first bytes. */
static void bytes_behind_the_request_reach_the_agent(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = dial(f->port);
  static const char req[] = "GET /t/raw HTTP/1.1\r\nHost: x\r\n"
                            "Connection: Upgrade\r\nUpgrade: atrium-tunnel"
                            "\r\n\r\nSSH-2.0-early\r\n";
  send_all(fd, req, sizeof req - 1);
  char head[1024], buf[32];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  read_n(fd, buf, 15);
  assert_memory_equal(buf, "SSH-2.0-early\r\n", 15);
  shutdown(fd, SHUT_WR);
  assert_int_equal(read(fd, buf, sizeof buf), 0);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

static void ws_mode_without_a_handshake_is_einval(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = raw_user(f, "/t/ws"); /* Upgrade: atrium-tunnel, no key */
  char answer[4096];
  read_to_end(fd, answer, sizeof answer);
  assert_non_null(strstr(answer, "HTTP/1.1 400"));
  assert_int_equal(fx_int(f, &f->tunnel_rc), ATR_EINVAL);
  assert_int_equal(ag_int(a, &a->opens), 0);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

/* An app request's body larger than http.max_body_size streams through:
 * the handler's prefix first, then the body as the client sends it. */
static void
http_mode_streams_a_body_over_the_cap_after_the_prefix(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = dial(f->port);
  size_t n = MAX_BODY + MAX_BODY / 2;
  char *body = pattern(n);
  char head[256];
  int hn = snprintf(head, sizeof head,
                    "POST /@me/ws/apps/code/x HTTP/1.1\r\nHost: x\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    n);
  /* the head and the body's first bytes in one write: those bytes are
   * read with the head and must still reach the agent */
  char *first = malloc((size_t)hn + 1000);
  memcpy(first, head, (size_t)hn);
  memcpy(first + hn, body, 1000);
  send_all(fd, first, (size_t)hn + 1000);
  free(first);
  writer_t w = {fd, body + 1000, n - 1000, true};
  pthread_t wt;
  pthread_create(&wt, NULL, write_main, &w);
  static const char prefix[] =
      "PREFIX /x HTTP/1.1\r\nConnection: close\r\n\r\n";
  size_t pl = sizeof prefix - 1;
  char *back = malloc(pl + n);
  read_n(fd, back, pl + n);
  assert_memory_equal(back, prefix, pl);
  assert_memory_equal(back + pl, body, n);
  char tail[8];
  assert_int_equal(read(fd, tail, sizeof tail), 0);
  pthread_join(wt, NULL);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_true(f->body_unread_seen);
  assert_string_equal(f->reason, "closed");
  assert_int_equal(f->to_agent, pl + n);
  pthread_mutex_unlock(&f->mu);
  free(back);
  free(body);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

static void app_answered_by_its_handler_closes_the_connection(void **state) {
  (void)state;
  fx_t *f = fx_new();
  int fd = dial(f->port);
  /* 100 MB announced, a little sent: the 403 comes at the head's end */
  static const char req[] = "POST /@me/ws/apps/code/ HTTP/1.1\r\nHost: x\r\n"
                            "X-Deny: 1\r\nContent-Length: 100000000\r\n\r\n"
                            "some of the body";
  send_all(fd, req, sizeof req - 1);
  char answer[4096];
  read_to_end(fd, answer, sizeof answer);
  assert_non_null(strstr(answer, "HTTP/1.1 403"));
  assert_non_null(strstr(answer, "Connection: close\r\n"));
  assert_non_null(strstr(answer, "{\"denied\":1}"));
  pthread_mutex_lock(&f->mu);
  assert_true(f->body_unread_seen);
  pthread_mutex_unlock(&f->mu);
  close(fd);
  fx_free(f);
}

/* An app tunnel that fails is a page, not JSON. */
static void http_mode_failure_is_an_html_page(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_REFUSE);
  int fd = dial(f->port);
  static const char req[] =
      "GET /@me/ws/apps/code/ HTTP/1.1\r\nHost: x\r\n\r\n";
  send_all(fd, req, sizeof req - 1);
  char answer[4096];
  read_to_end(fd, answer, sizeof answer);
  assert_non_null(strstr(answer, "HTTP/1.1 502"));
  assert_non_null(strstr(answer, "text/html"));
  assert_non_null(strstr(answer, "port 1 refused"));
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

static void metrics_count_a_tunnel(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  double to0 = metric("atrium_connection_bytes_total", "ssh", "to_agent");
  double from0 = metric("atrium_connection_bytes_total", "ssh", "from_agent");
  double total0 = metric("atrium_connections_total", "ssh", "closed");
  int fd = raw_user(f, "/t/ssh");
  char head[1024], buf[1000];
  read_head(fd, head, sizeof head);
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_int_equal(metric("atrium_connections_open", "ssh", NULL), 1);
  memset(buf, 'x', sizeof buf);
  send_all(fd, buf, sizeof buf);
  read_n(fd, buf, sizeof buf);
  shutdown(fd, SHUT_WR);
  assert_int_equal(read(fd, buf, sizeof buf), 0);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  assert_int_equal(metric("atrium_connections_open", "ssh", NULL), 0);
  assert_int_equal(
      metric("atrium_connection_bytes_total", "ssh", "to_agent") - to0, 1000);
  assert_int_equal(
      metric("atrium_connection_bytes_total", "ssh", "from_agent") - from0,
      1000);
  assert_int_equal(metric("atrium_connections_total", "ssh", "closed") - total0,
                   1);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

/* Another session's (or a made-up) tunnel id is reset, never matched. */
static void unknown_tunnel_id_is_reset(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  pthread_mutex_lock(&a->mu);
  ag_open(a, "00000000-0000-0000-0000-000000000000");
  pthread_mutex_unlock(&a->mu);
  WAIT_UNTIL(ag_int(a, &a->nstreams) == 1 && ag_is(a, &a->streams[0].closed));
  pthread_mutex_lock(&a->mu);
  assert_int_equal(a->streams[0].close_code, NGHTTP2_REFUSED_STREAM);
  pthread_mutex_unlock(&a->mu);
  assert_int_equal(atr_http_sessions(f->srv), 1); /* the session goes on */
  agent_stop(a);
  fx_free(f);
}

/* An agent that takes nothing: the server holds one window of the user's
 * bytes, stops reading the user, and goes on once the agent takes them. */
static void slow_agent_stops_the_users_reads(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_GREET); /* keeps what comes, echoes none */
  pthread_mutex_lock(&a->mu);
  a->hold = true;
  pthread_mutex_unlock(&a->mu);
  int fd = raw_user(f, "/t/raw");
  char head[1024], buf[8];
  read_head(fd, head, sizeof head);
  read_n(fd, buf, 5); /* "hello" */
  uint64_t pauses = atomic_load(&f->srv->tunnel_pauses);
  size_t n = (size_t)8 << 20;
  char *data = pattern(n);
  writer_t w = {fd, data, n, true};
  pthread_t wt;
  pthread_create(&wt, NULL, write_main, &w);
  WAIT_UNTIL(atomic_load(&f->srv->tunnel_pauses) > pauses);
  /* no more than the stream's window reached the agent */
  assert_true(ag_in_len(a) <= 65535);
  ag_release(a);
  WAIT_UNTIL(ag_in_len(a) == n);
  pthread_join(wt, NULL);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_int_equal(f->to_agent, n);
  assert_string_equal(f->reason, "closed");
  pthread_mutex_unlock(&f->mu);
  free(data);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

/* A tunnel waiting for an agent whose session ends: 502, agent_gone. */
static void session_end_fails_a_waiting_tunnel(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_IGNORE);
  int fd = raw_user(f, "/t/raw");
  WAIT_UNTIL(ag_int(a, &a->opens) == 1);
  atomic_store(&a->kill, true);
  char answer[4096];
  read_to_end(fd, answer, sizeof answer);
  assert_non_null(strstr(answer, "HTTP/1.1 502"));
  assert_non_null(strstr(answer, "The workspace agent disconnected."));
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->reason, "agent_gone");
  assert_false(f->opened);
  pthread_mutex_unlock(&f->mu);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

/* Draining ends open tunnels (their agents reconnect elsewhere). */
static void drain_ends_open_tunnels(void **state) {
  (void)state;
  fx_t *f = fx_new();
  agent_t *a = agent_ready(f, AG_ECHO);
  int fd = raw_user(f, "/t/raw");
  char head[1024], buf[64];
  read_head(fd, head, sizeof head);
  send_all(fd, "x", 1);
  read_n(fd, buf, 1);
  atr_http_drain(f->srv);
  assert_true(read(fd, buf, sizeof buf) <= 0);
  WAIT_UNTIL(fx_int(f, &f->freed_n) == 1);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->reason, "draining");
  pthread_mutex_unlock(&f->mu);
  close(fd);
  agent_stop(a);
  fx_free(f);
}

/* The parser hands "/@" requests over at the end of their head, whatever
 * the body's announced size; the body's bytes are left unused. */
static void parser_stops_app_requests_at_the_head(void **state) {
  (void)state;
  static const char req[] = "POST /@me/ws/apps/code/ HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 99999999\r\n\r\nhello";
  http_parse_t ps;
  http_parse_init(&ps, 8192, MAX_BODY);
  size_t used = http_parse_feed(&ps, req, sizeof req - 1);
  assert_int_equal(ps.error_status, 0);
  assert_true(ps.complete);
  assert_int_equal(used, sizeof req - 1 - 5);
  http_req_t *r = http_parse_take(&ps);
  assert_true(r->body_unread);
  assert_false(r->keep_alive);
  assert_int_equal(r->body_len, 0);
  http_req_free(r);
  /* anything fed after it starts a new request */
  used = http_parse_feed(&ps, "GET / HTTP/1.1\r\n\r\n", 18);
  assert_int_equal(used, 18);
  assert_true(ps.complete);
  http_req_free(http_parse_take(&ps));
  http_parse_free(&ps);
  /* elsewhere the announced size is refused before the body is read */
  static const char big[] = "POST /api/x HTTP/1.1\r\nHost: x\r\n"
                            "Content-Length: 99999999\r\n\r\nhello";
  http_parse_init(&ps, 8192, MAX_BODY);
  (void)http_parse_feed(&ps, big, sizeof big - 1);
  assert_int_equal(ps.error_status, 413);
  http_parse_free(&ps);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(parser_stops_app_requests_at_the_head),
      cmocka_unit_test(raw_echo_of_a_mebibyte_both_ways),
      cmocka_unit_test(half_close_both_ways),
      cmocka_unit_test(refused_tunnel_answers_502_with_the_agents_reason),
      cmocka_unit_test(agent_that_never_opens_times_out),
      cmocka_unit_test(agent_not_here_is_enoent_for_the_handler),
      cmocka_unit_test(agent_gone_mid_tunnel_closes_the_user),
      cmocka_unit_test(ws_mode_carries_text_and_binary_and_answers_pings),
      cmocka_unit_test(ws_mode_carries_a_large_message),
      cmocka_unit_test(bytes_behind_the_request_reach_the_agent),
      cmocka_unit_test(ws_mode_without_a_handshake_is_einval),
      cmocka_unit_test(http_mode_streams_a_body_over_the_cap_after_the_prefix),
      cmocka_unit_test(app_answered_by_its_handler_closes_the_connection),
      cmocka_unit_test(http_mode_failure_is_an_html_page),
      cmocka_unit_test(metrics_count_a_tunnel),
      cmocka_unit_test(unknown_tunnel_id_is_reset),
      cmocka_unit_test(slow_agent_stops_the_users_reads),
      cmocka_unit_test(session_end_fails_a_waiting_tunnel),
      cmocka_unit_test(drain_ends_open_tunnels),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
