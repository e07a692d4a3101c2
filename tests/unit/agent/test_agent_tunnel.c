/* tests/unit/agent/test_agent_tunnel.c — the agent's end of tunnels
 * (core/agent/agent_tunnel.c, agent_conn_stream.c; docs/design/
 * connect.md §1):
 *
 *  - the open event's checks, each refusal with its message;
 *  - the real transport (agent_conn.c) against a fake server written
 *    here: a WebSocket upgrade answered by hand, wslay (server side)
 *    carrying an nghttp2 server session that keeps the events stream
 *    open, sends open events on it and answers POST /me/tunnels/{id}
 *    with a 200 whose body it streams — so the bytes, the half-closes,
 *    the flow control and the refusals are the agent's real ones.
 *
 * Everything runs on one loop in the test's thread; every wait is a
 * bounded poll for a state, never a sleep. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <nghttp2/nghttp2.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>
#include <wslay/wslay.h>

#include <cmocka.h>

#include "agent_conn.h"
#include "agent_tunnel.h"
#include "atrium/error.h"
#include "ws_accept.h"

#define WAIT_MS 20000
#define ID_A "6f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2c"
#define ID_B "0a1b2c3d-4e5f-4a6b-9c7d-8e9f0a1b2c3d"
#define ID_C "11111111-2222-4333-8444-555555555555"
#define RECONNECT "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee"

/* ---- the checks --------------------------------------------------------- */

static int noop_kind(void *ud, int fd, const json_t *open, char **err) {
  (void)ud;
  (void)open;
  (void)err;
  close(fd);
  return 0;
}

static agent_tunnels_t *checker(uv_loop_t *loop) {
  agent_tunnels_t *t = agent_tunnels_new(loop, NULL);
  assert_non_null(t);
  return t;
}

/* The check's error for the event text, or NULL when it passed. */
static char *check_err(const agent_tunnels_t *t, const char *text,
                       agent_tunnel_open_t *o) {
  json_t *ev = json_loads(text, 0, NULL);
  assert_non_null(ev);
  char *err = NULL;
  int rc = agent_tunnels_check(t, ev, o, &err);
  json_decref(ev);
  assert_true((rc == 0) == (err == NULL));
  return err;
}

static void expect_err(const agent_tunnels_t *t, const char *text,
                       const char *want) {
  agent_tunnel_open_t o;
  char *err = check_err(t, text, &o);
  if (!err || strcmp(err, want) != 0)
    fail_msg("%s: got %s, want %s", text, err ? err : "(passed)", want);
  free(err);
}

static void test_check_id_and_kind(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  agent_tunnels_t *t = checker(&loop);
  agent_tunnel_open_t o;
  expect_err(t, "{\"type\":\"open\",\"kind\":\"tcp\",\"port\":80}",
             "\"id\" must be a UUID");
  expect_err(t, "{\"id\":\"not-a-uuid\",\"kind\":\"tcp\",\"port\":80}",
             "\"id\" must be a UUID");
  expect_err(t,
             "{\"id\":\"6f1c2b3a-0d4e-4f5a-8b6c-7d8e9f0a1b2cX\",\"kind\":"
             "\"tcp\",\"port\":80}",
             "\"id\" must be a UUID");
  expect_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"ftp\",\"port\":21}",
             "unknown tunnel kind \"ftp\" (tcp, ssh, pty)");
  expect_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"TCP\\nX\"}",
             "\"kind\" must be one of tcp, ssh, pty");
  expect_err(t, "{\"id\":\"" ID_A "\",\"kind\":7}",
             "\"kind\" must be one of tcp, ssh, pty");
  /* ssh and pty before their handlers exist (no manifest yet) */
  expect_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"ssh\"}",
             "this agent cannot serve ssh tunnels now");
  /* the id is kept when only a later field is wrong: the refusal can be
   * sent on the tunnel's own path */
  free(check_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"ftp\"}", &o));
  assert_string_equal(o.id, ID_A);
  assert_int_equal(agent_tunnels_register(t, "ssh", noop_kind, NULL), 0);
  char *err = check_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"ssh\"}", &o);
  assert_null(err);
  assert_string_equal(o.kind, "ssh");
  /* tcp is built in; names are bounded */
  assert_int_equal(agent_tunnels_register(t, "tcp", noop_kind, NULL),
                   ATR_EINVAL);
  assert_int_equal(
      agent_tunnels_register(t, "a-kind-name-too-long", noop_kind, NULL),
      ATR_EINVAL);
  agent_tunnels_free(t);
  uv_loop_close(&loop);
}

static void test_check_tcp(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  agent_tunnels_t *t = checker(&loop);
  agent_tunnel_open_t o;
  expect_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"tcp\",\"port\":0}",
             "\"port\" must be an integer from 1 to 65535, not 0");
  expect_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"tcp\",\"port\":70000}",
             "\"port\" must be an integer from 1 to 65535, not 70000");
  expect_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"tcp\",\"port\":\"80\"}",
             "\"port\" must be an integer from 1 to 65535");
  expect_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"tcp\"}",
             "\"port\" must be an integer from 1 to 65535");
  expect_err(t,
             "{\"id\":\"" ID_A
             "\",\"kind\":\"tcp\",\"port\":80,\"host\":\"10.0.0.5\"}",
             "host \"10.0.0.5\" is not allowed: a tcp tunnel reaches "
             "127.0.0.1 or a host an app's url names");
  expect_err(
      t, "{\"id\":\"" ID_A "\",\"kind\":\"tcp\",\"port\":80,\"host\":\"a b\"}",
      "\"host\" must be a host name or an IP address");
  /* the default host */
  char *err =
      check_err(t, "{\"id\":\"" ID_A "\",\"kind\":\"tcp\",\"port\":8080}", &o);
  assert_null(err);
  assert_string_equal(o.host, "127.0.0.1");
  assert_int_equal(o.port, 8080);
  /* hosts the apps' urls name, and only those */
  json_t *apps =
      json_loads("[{\"slug\":\"code\",\"url\":\"http://Code.Internal:13337/\"},"
                 "{\"slug\":\"v6\",\"url\":\"http://[::1]:8000\"},"
                 "{\"slug\":\"auth\",\"url\":\"https://user:pw@db.local/x\"},"
                 "{\"slug\":\"none\"}]",
                 0, NULL);
  agent_tunnels_set_apps(t, apps);
  json_decref(apps);
  const char *ok[] = {"code.internal", "CODE.internal", "::1", "db.local"};
  for (size_t i = 0; i < 4; i++) {
    char text[256];
    snprintf(text, sizeof text,
             "{\"id\":\"" ID_A
             "\",\"kind\":\"tcp\",\"port\":80,\"host\":\"%s\"}",
             ok[i]);
    err = check_err(t, text, &o);
    if (err)
      fail_msg("%s: %s", ok[i], err);
    assert_string_equal(o.host, ok[i]);
  }
  expect_err(
      t, "{\"id\":\"" ID_A "\",\"kind\":\"tcp\",\"port\":80,\"host\":\"user\"}",
      "host \"user\" is not allowed: a tcp tunnel reaches "
      "127.0.0.1 or a host an app's url names");
  /* a new manifest replaces the list */
  agent_tunnels_set_apps(t, NULL);
  expect_err(t,
             "{\"id\":\"" ID_A
             "\",\"kind\":\"tcp\",\"port\":80,\"host\":\"db.local\"}",
             "host \"db.local\" is not allowed: a tcp tunnel reaches "
             "127.0.0.1 or a host an app's url names");
  agent_tunnels_free(t);
  uv_loop_close(&loop);
}

static void test_check_pty(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  agent_tunnels_t *t = checker(&loop);
  assert_int_equal(agent_tunnels_register(t, "pty", noop_kind, NULL), 0);
  agent_tunnel_open_t o;
  char *err = check_err(t,
                        "{\"id\":\"" ID_A "\",\"kind\":\"pty\",\"reconnect\":"
                        "\"" RECONNECT "\",\"width\":80,\"height\":24}",
                        &o);
  assert_null(err);
  expect_err(t,
             "{\"id\":\"" ID_A "\",\"kind\":\"pty\",\"reconnect\":\"x\","
             "\"width\":80,\"height\":24}",
             "\"reconnect\" must be a UUID");
  expect_err(t,
             "{\"id\":\"" ID_A "\",\"kind\":\"pty\",\"reconnect\":"
             "\"" RECONNECT "\",\"width\":0,\"height\":24}",
             "\"width\" must be an integer from 1 to 1000, not 0");
  expect_err(t,
             "{\"id\":\"" ID_A "\",\"kind\":\"pty\",\"reconnect\":"
             "\"" RECONNECT "\",\"width\":80,\"height\":1001}",
             "\"height\" must be an integer from 1 to 1000, not 1001");
  expect_err(t,
             "{\"id\":\"" ID_A "\",\"kind\":\"pty\",\"reconnect\":"
             "\"" RECONNECT "\",\"width\":80,\"height\":24,\"command\":5}",
             "\"command\" must be a string of at most 4096 bytes");
  char *big = malloc(5000);
  memset(big, 'x', 4999);
  big[4999] = '\0';
  json_t *ev =
      json_pack("{ss ss ss si si ss}", "id", ID_A, "kind", "pty", "reconnect",
                RECONNECT, "width", 80, "height", 24, "command", big);
  free(big);
  assert_int_equal(agent_tunnels_check(t, ev, &o, &err), ATR_EINVAL);
  assert_string_equal(err,
                      "\"command\" must be a string of at most 4096 bytes");
  free(err);
  json_decref(ev);
  agent_tunnels_free(t);
  uv_loop_close(&loop);
}

/* ---- a growable byte buffer -------------------------------------------------- */

typedef struct buf {
  char *p;
  size_t len, cap;
} buf_t;

static void buf_add(buf_t *b, const void *data, size_t len) {
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len)
      cap *= 2;
    b->p = realloc(b->p, cap);
    assert_non_null(b->p);
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, len);
  b->len += len;
}

static void buf_free(buf_t *b) {
  free(b->p);
  *b = (buf_t){0};
}

static void random_bytes(buf_t *b, size_t len, uint32_t seed) {
  uint32_t x = seed | 1;
  for (size_t i = 0; i < len; i++) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    char c = (char)(x >> 24);
    buf_add(b, &c, 1);
  }
}

/* ---- the fake server ------------------------------------------------------ */

#define MAX_STREAMS 32

typedef struct sstream {
  int32_t id;
  char path[256];
  char error[512]; /* atrium-tunnel-error */
  bool events, req_ended, ended_at_headers, closed;
  uint32_t close_code;
  buf_t in;       /* the request body: agent -> user */
  buf_t out;      /* the answer's body: user -> agent */
  size_t out_off; /* sent so far */
  bool out_eof;   /* end the answer once out is sent */
  bool deferred;  /* the provider waits */
  bool answered;  /* the response was submitted */
} sstream_t;

typedef struct fx fx_t;

typedef struct fake_server {
  fx_t *f;
  uv_tcp_t listener, conn;
  int port;
  bool conn_open, upgraded, lost;
  buf_t hs;
  wslay_event_context_ptr ws;
  nghttp2_session *h2;
  const uint8_t *in;
  size_t in_len;
  buf_t wire;
  sstream_t st[MAX_STREAMS];
  int nst;
  sstream_t *events;
  bool hold_answers; /* don't answer tunnels until the test says */
} fake_server_t;

/* The local echo server: every byte back; EOF -> shutdown after them. */
typedef struct echo_conn {
  uv_tcp_t tcp;
  uv_shutdown_t shut;
  fx_t *f;
  bool eof;
} echo_conn_t;

struct fx {
  uv_loop_t loop;
  uv_timer_t tick;
  fake_server_t srv;
  uv_tcp_t echo;
  int echo_port;
  int echo_accepted, echo_eofs, echo_closed;
  size_t echo_bytes;
  agent_conn_t *conn;
  agent_tunnels_t *tunnels;
  int conn_stopped;
  /* the "hold" kind: the handler's fd, which the test reads when it likes */
  int held_fd;
  uv_pipe_t held;
  bool held_reading, held_eof, held_open;
  buf_t held_in;
  int tunnels_closed;
};

static void srv_flush(fake_server_t *s);

static sstream_t *stream_of(fake_server_t *s, int32_t id) {
  for (int i = 0; i < s->nst; i++)
    if (s->st[i].id == id)
      return &s->st[i];
  return NULL;
}

static sstream_t *stream_path(fake_server_t *s, const char *suffix) {
  for (int i = s->nst - 1; i >= 0; i--) {
    size_t n = strlen(s->st[i].path), k = strlen(suffix);
    if (n >= k && strcmp(s->st[i].path + n - k, suffix) == 0)
      return &s->st[i];
  }
  return NULL;
}

static ssize_t srv_ws_recv(wslay_event_context_ptr ctx, uint8_t *buf,
                           size_t len, int flags, void *ud) {
  (void)flags;
  fake_server_t *s = ud;
  if (s->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = s->in_len < len ? s->in_len : len;
  memcpy(buf, s->in, n);
  s->in += n;
  s->in_len -= n;
  return (ssize_t)n;
}

static ssize_t srv_ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                           size_t len, int flags, void *ud) {
  (void)ctx;
  (void)flags;
  fake_server_t *s = ud;
  buf_add(&s->wire, data, len);
  return (ssize_t)len;
}

static void srv_ws_chunk(wslay_event_context_ptr ctx,
                         const struct wslay_event_on_frame_recv_chunk_arg *a,
                         void *ud) {
  (void)ctx;
  fake_server_t *s = ud;
  ssize_t n = nghttp2_session_mem_recv(s->h2, a->data, a->data_length);
  assert_int_equal(n, (ssize_t)a->data_length);
}

static const struct wslay_event_callbacks srv_ws_cbs = {
    .recv_callback = srv_ws_recv,
    .send_callback = srv_ws_send,
    .on_frame_recv_chunk_callback = srv_ws_chunk,
};

static ssize_t srv_body(nghttp2_session *h2, int32_t id, uint8_t *buf,
                        size_t len, uint32_t *flags, nghttp2_data_source *src,
                        void *ud) {
  (void)h2;
  (void)id;
  (void)ud;
  sstream_t *st = src->ptr;
  size_t left = st->out.len - st->out_off;
  if (left == 0 && !st->out_eof) {
    st->deferred = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = left < len ? left : len;
  memcpy(buf, st->out.p + st->out_off, n);
  st->out_off += n;
  if (st->out_off == st->out.len && st->out_eof)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

static void srv_answer(fake_server_t *s, sstream_t *st, int status) {
  char code[4];
  snprintf(code, sizeof code, "%d", status);
  nghttp2_nv nv[] = {
      {(uint8_t *)":status", (uint8_t *)code, 7, 3, NGHTTP2_NV_FLAG_NONE}};
  nghttp2_data_provider dp = {.source.ptr = st, .read_callback = srv_body};
  assert_int_equal(
      nghttp2_submit_response(s->h2, st->id, nv, 1, status == 200 ? &dp : NULL),
      0);
  st->answered = true;
}

static int srv_begin(nghttp2_session *h2, const nghttp2_frame *f, void *ud) {
  (void)h2;
  fake_server_t *s = ud;
  if (f->hd.type == NGHTTP2_HEADERS && s->nst < MAX_STREAMS)
    s->st[s->nst++] = (sstream_t){.id = f->hd.stream_id};
  return 0;
}

static int srv_header(nghttp2_session *h2, const nghttp2_frame *f,
                      const uint8_t *name, size_t nlen, const uint8_t *value,
                      size_t vlen, uint8_t flags, void *ud) {
  (void)h2;
  (void)flags;
  sstream_t *st = stream_of(ud, f->hd.stream_id);
  if (!st)
    return 0;
  if (nlen == 5 && memcmp(name, ":path", 5) == 0)
    snprintf(st->path, sizeof st->path, "%.*s", (int)vlen, value);
  else if (nlen == strlen(AGENT_TUNNEL_ERROR_HEADER) &&
           memcmp(name, AGENT_TUNNEL_ERROR_HEADER, nlen) == 0)
    snprintf(st->error, sizeof st->error, "%.*s", (int)vlen, value);
  return 0;
}

static int srv_frame(nghttp2_session *h2, const nghttp2_frame *f, void *ud) {
  (void)h2;
  fake_server_t *s = ud;
  sstream_t *st = stream_of(s, f->hd.stream_id);
  if (!st || (f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA))
    return 0;
  bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (end) {
    st->req_ended = true;
    st->ended_at_headers = f->hd.type == NGHTTP2_HEADERS;
  }
  if (f->hd.type != NGHTTP2_HEADERS)
    return 0;
  if (strstr(st->path, "/me/events")) {
    st->events = true;
    s->events = st;
    srv_answer(s, st, 200);
  } else if (strstr(st->path, "/me/tunnels/") && st->error[0]) {
    srv_answer(s, st, 204);
  } else if (strstr(st->path, "/me/tunnels/") && !s->hold_answers) {
    srv_answer(s, st, 200);
  }
  return 0;
}

static int srv_data(nghttp2_session *h2, uint8_t flags, int32_t id,
                    const uint8_t *data, size_t len, void *ud) {
  (void)h2;
  (void)flags;
  sstream_t *st = stream_of(ud, id);
  if (st)
    buf_add(&st->in, data, len);
  return 0;
}

static int srv_close(nghttp2_session *h2, int32_t id, uint32_t code, void *ud) {
  (void)h2;
  sstream_t *st = stream_of(ud, id);
  if (st) {
    st->closed = true;
    st->close_code = code;
  }
  return 0;
}

/* The server's SETTINGS_MAX_CONCURRENT_STREAMS for the next session. */
static uint32_t srv_max_streams = 256;

static void srv_start_h2(fake_server_t *s) {
  assert_int_equal(wslay_event_context_server_init(&s->ws, &srv_ws_cbs, s), 0);
  wslay_event_config_set_no_buffering(s->ws, 1);
  nghttp2_session_callbacks *cb;
  nghttp2_session_callbacks_new(&cb);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, srv_begin);
  nghttp2_session_callbacks_set_on_header_callback(cb, srv_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, srv_frame);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, srv_data);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, srv_close);
  assert_int_equal(nghttp2_session_server_new(&s->h2, cb, s), 0);
  nghttp2_session_callbacks_del(cb);
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, srv_max_streams}};
  nghttp2_submit_settings(s->h2, NGHTTP2_FLAG_NONE, iv, 1);
}

static void on_srv_write(uv_write_t *req, int status) {
  (void)status;
  free(req->data);
  free(req);
}

static void srv_write(fake_server_t *s, const char *data, size_t len) {
  if (!s->conn_open || s->lost)
    return;
  uv_write_t *w = malloc(sizeof *w);
  char *copy = malloc(len);
  memcpy(copy, data, len);
  w->data = copy;
  uv_buf_t b = uv_buf_init(copy, (unsigned)len);
  assert_int_equal(uv_write(w, (uv_stream_t *)&s->conn, &b, 1, on_srv_write),
                   0);
}

static void srv_flush(fake_server_t *s) {
  if (!s->upgraded || s->lost)
    return;
  while (nghttp2_session_want_write(s->h2)) {
    const uint8_t *data;
    ssize_t n = nghttp2_session_mem_send(s->h2, &data);
    assert_true(n >= 0);
    if (n == 0)
      break;
    struct wslay_event_msg m = {WSLAY_BINARY_FRAME, data, (size_t)n};
    assert_int_equal(wslay_event_queue_msg(s->ws, &m), 0);
    assert_int_equal(wslay_event_send(s->ws), 0);
  }
  if (s->wire.len > 0) {
    srv_write(s, s->wire.p, s->wire.len);
    s->wire.len = 0;
  }
}

static void srv_feed(fake_server_t *s, const char *data, size_t len) {
  s->in = (const uint8_t *)data;
  s->in_len = len;
  assert_int_equal(wslay_event_recv(s->ws), 0);
  s->in_len = 0;
  srv_flush(s);
}

static void srv_handshake(fake_server_t *s, const char *data, size_t len) {
  buf_add(&s->hs, data, len);
  char *end = memmem(s->hs.p, s->hs.len, "\r\n\r\n", 4);
  if (!end)
    return;
  size_t head = (size_t)(end + 4 - s->hs.p);
  char *text = strndup(s->hs.p, head);
  char *k = strcasestr(text, "\r\nSec-WebSocket-Key: ");
  assert_non_null(k);
  k += strlen("\r\nSec-WebSocket-Key: ");
  k[strcspn(k, "\r")] = '\0';
  char accept[29];
  atr_ws_accept(k, accept);
  free(text);
  char resp[256];
  int n = snprintf(resp, sizeof resp,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                   "Sec-WebSocket-Protocol: atrium-agent.h2\r\n\r\n",
                   accept);
  srv_write(s, resp, (size_t)n);
  s->upgraded = true;
  srv_start_h2(s);
  size_t rest = s->hs.len - head;
  if (rest > 0) {
    char *more = malloc(rest);
    memcpy(more, s->hs.p + head, rest);
    srv_feed(s, more, rest);
    free(more);
  } else {
    srv_flush(s);
  }
}

static void srv_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b) {
  (void)h;
  b->base = malloc(sz);
  b->len = sz;
}

static void on_srv_closed(uv_handle_t *h) {
  fake_server_t *s = h->data;
  s->conn_open = false;
}

/* The session is gone for good: the agent's redials find no listener. */
static void srv_lose(fake_server_t *s) {
  if (!s->conn_open || uv_is_closing((uv_handle_t *)&s->conn))
    return;
  s->lost = true;
  uv_close((uv_handle_t *)&s->conn, on_srv_closed);
  uv_close((uv_handle_t *)&s->listener, NULL);
}

static void on_srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  fake_server_t *s = st->data;
  if (n > 0 && !s->upgraded)
    srv_handshake(s, b->base, (size_t)n);
  else if (n > 0 && !s->lost)
    srv_feed(s, b->base, (size_t)n);
  else if (n < 0)
    srv_lose(s);
  free(b->base);
}

static void on_srv_conn(uv_stream_t *l, int status) {
  fake_server_t *s = l->data;
  assert_int_equal(status, 0);
  assert_false(s->conn_open); /* one agent session per test */
  uv_tcp_init(l->loop, &s->conn);
  s->conn.data = s;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&s->conn), 0);
  uv_tcp_nodelay(&s->conn, 1);
  s->conn_open = true;
  uv_read_start((uv_stream_t *)&s->conn, srv_alloc, on_srv_read);
}

static int listen_any(uv_loop_t *loop, uv_tcp_t *t, void *data,
                      uv_connection_cb cb) {
  struct sockaddr_in sa;
  uv_ip4_addr("127.0.0.1", 0, &sa);
  uv_tcp_init(loop, t);
  t->data = data;
  assert_int_equal(uv_tcp_bind(t, (struct sockaddr *)&sa, 0), 0);
  assert_int_equal(uv_listen((uv_stream_t *)t, 64, cb), 0);
  struct sockaddr_in got;
  int len = sizeof got;
  uv_tcp_getsockname(t, (struct sockaddr *)&got, &len);
  return ntohs(got.sin_port);
}

/* Queue bytes on a stream's answer (and maybe its end). */
static void srv_push(fake_server_t *s, sstream_t *st, const void *data,
                     size_t len, bool eof) {
  if (len)
    buf_add(&st->out, data, len);
  st->out_eof = st->out_eof || eof;
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(s->h2, st->id);
  }
  srv_flush(s);
}

static void srv_event(fake_server_t *s, const char *line) {
  srv_push(s, s->events, line, strlen(line), false);
  srv_push(s, s->events, "\n", 1, false);
}

/* ---- the echo server ------------------------------------------------------- */

static void on_echo_closed(uv_handle_t *h) {
  echo_conn_t *e = h->data;
  e->f->echo_closed++;
  free(e);
}

static void on_echo_write(uv_write_t *req, int status) {
  (void)status;
  free(req->data);
  free(req);
}

static void on_echo_shut(uv_shutdown_t *req, int status) {
  (void)status;
  echo_conn_t *e = req->data;
  uv_close((uv_handle_t *)&e->tcp, on_echo_closed);
}

static void on_echo_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b) {
  echo_conn_t *e = st->data;
  if (n > 0) {
    e->f->echo_bytes += (size_t)n;
    uv_write_t *w = malloc(sizeof *w);
    w->data = b->base;
    uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
    if (uv_write(w, st, &out, 1, on_echo_write) != 0) {
      free(w);
      free(b->base);
    }
    return;
  }
  free(b->base);
  if (n == UV_EOF) {
    e->eof = true;
    e->f->echo_eofs++;
    uv_read_stop(st);
    e->shut.data = e;
    if (uv_shutdown(&e->shut, st, on_echo_shut) != 0)
      uv_close((uv_handle_t *)&e->tcp, on_echo_closed);
  } else if (n < 0) {
    e->f->echo_eofs++;
    uv_close((uv_handle_t *)&e->tcp, on_echo_closed);
  }
}

static void on_echo_conn(uv_stream_t *l, int status) {
  fx_t *f = l->data;
  assert_int_equal(status, 0);
  echo_conn_t *e = calloc(1, sizeof *e);
  e->f = f;
  uv_tcp_init(l->loop, &e->tcp);
  e->tcp.data = e;
  assert_int_equal(uv_accept(l, (uv_stream_t *)&e->tcp), 0);
  f->echo_accepted++;
  uv_read_start((uv_stream_t *)&e->tcp, srv_alloc, on_echo_read);
}

/* ---- the agent's side --------------------------------------------------------- */

static void on_agent_event(void *ud, const char *line, size_t len) {
  fx_t *f = ud;
  json_t *j = json_loadb(line, len, 0, NULL);
  const char *type = json_string_value(json_object_get(j, "type"));
  if (type && strcmp(type, "open") == 0)
    agent_tunnels_open(f->tunnels, j);
  json_decref(j);
}

/* The test kind "hold": keeps its end for the test to read later. */
static int hold_kind(void *ud, int fd, const json_t *open, char **err) {
  (void)open;
  fx_t *f = ud;
  if (f->held_fd >= 0) {
    close(fd);
    *err = strdup("one held tunnel at a time");
    return -1;
  }
  f->held_fd = fd;
  return 0;
}

static int fail_kind(void *ud, int fd, const json_t *open, char **err) {
  (void)ud;
  (void)open;
  close(fd);
  *err = strdup("the host key is not usable");
  return -1;
}

static void on_tick(uv_timer_t *t) {
  (void)t;
}

static void fx_init(fx_t *f) {
  memset(f, 0, sizeof *f);
  f->held_fd = -1;
  assert_int_equal(uv_loop_init(&f->loop), 0);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, on_tick, 5, 5); /* polls never block for long */
  f->srv.f = f;
  f->srv.port = listen_any(&f->loop, &f->srv.listener, &f->srv, on_srv_conn);
  f->echo_port = listen_any(&f->loop, &f->echo, f, on_echo_conn);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", f->srv.port);
  agent_conn_opts_t o = {.url = url, .token = "atragt_test"};
  agent_conn_cbs_t cbs = {.on_event = on_agent_event};
  char *err = NULL;
  assert_int_equal(agent_conn_new(&f->loop, &o, &cbs, f, &f->conn, &err), 0);
  f->tunnels = agent_tunnels_new(&f->loop, f->conn);
  assert_non_null(f->tunnels);
  assert_int_equal(agent_tunnels_register(f->tunnels, "hold", hold_kind, f), 0);
  assert_int_equal(agent_tunnels_register(f->tunnels, "fail", fail_kind, f), 0);
  agent_conn_start(f->conn);
}

typedef bool (*cond_fn)(fx_t *f);

static void wait_for(fx_t *f, cond_fn cond, const char *what) {
  uint64_t until = uv_now(&f->loop) + WAIT_MS;
  while (!cond(f)) {
    if (uv_now(&f->loop) > until)
      fail_msg("timed out waiting for %s", what);
    uv_run(&f->loop, UV_RUN_ONCE);
  }
}

static bool session_ready(fx_t *f) {
  return agent_conn_up(f->conn) && f->srv.events && f->srv.events->answered;
}

static void fx_up(fx_t *f) {
  fx_init(f);
  wait_for(f, session_ready, "the session and its events stream");
}

static void on_conn_stopped(void *ud) {
  fx_t *f = ud;
  f->conn_stopped = 1;
}

static void on_tunnels_closed(void *ud) {
  fx_t *f = ud;
  f->tunnels_closed = 1;
}

static void close_if(uv_handle_t *h) {
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

static void fx_done(fx_t *f) {
  agent_tunnels_close(f->tunnels, on_tunnels_closed, f);
  agent_conn_stop(f->conn, on_conn_stopped, f);
  if (f->held_open)
    close_if((uv_handle_t *)&f->held);
  else if (f->held_fd >= 0)
    close(f->held_fd);
  close_if((uv_handle_t *)&f->tick);
  close_if((uv_handle_t *)&f->srv.listener);
  close_if((uv_handle_t *)&f->echo);
  if (f->srv.conn_open)
    close_if((uv_handle_t *)&f->srv.conn);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  assert_true(f->conn_stopped);
  assert_true(f->tunnels_closed);
  assert_int_equal(uv_loop_close(&f->loop), 0);
  agent_tunnels_free(f->tunnels);
  agent_conn_free(f->conn);
  if (f->srv.h2)
    nghttp2_session_del(f->srv.h2);
  if (f->srv.ws)
    wslay_event_context_free(f->srv.ws);
  for (int i = 0; i < f->srv.nst; i++) {
    buf_free(&f->srv.st[i].in);
    buf_free(&f->srv.st[i].out);
  }
  buf_free(&f->srv.hs);
  buf_free(&f->srv.wire);
  buf_free(&f->held_in);
}

static void open_event(fx_t *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void open_event(fx_t *f, const char *fmt, ...) {
  char line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  srv_event(&f->srv, line);
}

/* ---- conditions ------------------------------------------------------------- */

static const char *want_path; /* the stream a condition looks at */

static sstream_t *want(fx_t *f) {
  return stream_path(&f->srv, want_path);
}

static bool tunnel_posted(fx_t *f) {
  return want(f) != NULL;
}

static bool tunnel_req_ended(fx_t *f) {
  return want(f) && want(f)->req_ended;
}

static bool tunnel_closed(fx_t *f) {
  return want(f) && want(f)->closed;
}

static size_t want_in_len;

static bool tunnel_got_bytes(fx_t *f) {
  return want(f) && want(f)->in.len >= want_in_len;
}

static bool no_tunnels(fx_t *f) {
  return agent_tunnels_count(f->tunnels) == 0;
}

static int want_echo_eofs;

static bool echo_eofs(fx_t *f) {
  return f->echo_eofs >= want_echo_eofs && f->echo_closed >= want_echo_eofs;
}

/* ---- a tcp tunnel: 1 MiB through an echo server, half-closes ----------------- */

static void test_tcp_echo_mib(void **state) {
  (void)state;
  fx_t f;
  fx_up(&f);
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d}",
             ID_A, f.echo_port);
  want_path = "/me/tunnels/" ID_A;
  wait_for(&f, tunnel_posted, "POST /me/tunnels/" ID_A);
  sstream_t *st = want(&f);
  assert_string_equal(st->path, "/api/v2/workspaceagents/me/tunnels/" ID_A);
  assert_string_equal(st->error, "");
  buf_t sent = {0};
  random_bytes(&sent, (size_t)1 << 20, 7);
  /* user -> agent -> echo -> agent -> user; then the user's EOF */
  srv_push(&f.srv, st, sent.p, sent.len, true);
  want_in_len = sent.len;
  wait_for(&f, tunnel_got_bytes, "1 MiB back through the tunnel");
  /* the user's END_STREAM reached the echo server as an EOF, whose own
   * EOF came back as the request's END_STREAM */
  wait_for(&f, tunnel_req_ended, "the request's END_STREAM");
  assert_int_equal(st->in.len, sent.len);
  assert_memory_equal(st->in.p, sent.p, sent.len);
  assert_int_equal(f.echo_eofs, 1);
  assert_false(st->ended_at_headers);
  wait_for(&f, tunnel_closed, "the stream's close");
  assert_int_equal(st->close_code, NGHTTP2_NO_ERROR);
  wait_for(&f, no_tunnels, "the tunnel's end");
  buf_free(&sent);
  fx_done(&f);
}

/* ---- refusals -------------------------------------------------------------------- */

static int closed_port(void) {
  /* a port nothing listens on: bound by us, then closed */
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  socklen_t len = sizeof sa;
  getsockname(fd, (struct sockaddr *)&sa, &len);
  close(fd);
  return ntohs(sa.sin_port);
}

static void test_refusals(void **state) {
  (void)state;
  fx_t f;
  fx_up(&f);
  /* a refused dial */
  int port = closed_port();
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d}",
             ID_A, port);
  want_path = "/me/tunnels/" ID_A;
  wait_for(&f, tunnel_closed, "the refusal of " ID_A);
  char expect[128];
  snprintf(expect, sizeof expect,
           "cannot connect to 127.0.0.1:%d: connection refused", port);
  assert_string_equal(want(&f)->error, expect);
  assert_true(want(&f)->ended_at_headers); /* headers and END_STREAM */
  assert_int_equal(want(&f)->in.len, 0);
  /* a host no app names */
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d,"
             "\"host\":\"192.0.2.1\"}",
             ID_B, f.echo_port);
  want_path = "/me/tunnels/" ID_B;
  wait_for(&f, tunnel_closed, "the refusal of " ID_B);
  assert_string_equal(want(&f)->error,
                      "host \"192.0.2.1\" is not allowed: a tcp tunnel "
                      "reaches 127.0.0.1 or a host an app's url names");
  assert_true(want(&f)->ended_at_headers);
  /* a kind whose handler fails: its one-line reason */
  open_event(&f, "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"fail\"}", ID_C);
  want_path = "/me/tunnels/" ID_C;
  wait_for(&f, tunnel_closed, "the refusal of " ID_C);
  assert_string_equal(want(&f)->error, "the host key is not usable");
  /* an unknown kind */
  open_event(&f, "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"gopher\"}",
             RECONNECT);
  want_path = "/me/tunnels/" RECONNECT;
  wait_for(&f, tunnel_closed, "the refusal of an unknown kind");
  assert_string_equal(want(&f)->error,
                      "unknown tunnel kind \"gopher\" (tcp, ssh, pty)");
  assert_int_equal(f.echo_accepted, 0);
  assert_int_equal(agent_tunnels_count(f.tunnels), 0);
  fx_done(&f);
}

/* ---- flow control: a local end that does not read ------------------------------ */

static int32_t held_window(fx_t *f) {
  want_path = "/me/tunnels/" ID_A;
  sstream_t *st = want(f);
  return st ? nghttp2_session_get_stream_remote_window_size(f->srv.h2, st->id)
            : -1;
}

/* While the held socket is not read: what the agent consumed (the
 * WINDOW_UPDATEs the server got: window = 65535 + updates - sent) is
 * never more than what it wrote to that socket (all still queued in it,
 * FIONREAD), checked on every loop turn. Done when the server is stuck
 * (window 0, nothing more sent for 20 turns) or has sent everything
 * (which only an agent that consumes too early lets it do). */
static size_t held_total, held_last_off;
static int held_quiet;

static bool held_stalled(fx_t *f) {
  want_path = "/me/tunnels/" ID_A;
  sstream_t *st = want(f);
  if (!st)
    return false;
  int32_t window = held_window(f);
  int queued = 0;
  assert_int_equal(ioctl(f->held_fd, FIONREAD, &queued), 0);
  size_t updates = st->out_off + (size_t)window - 65535;
  if (updates > (size_t)queued)
    fail_msg("the agent consumed %zu bytes; only %d reached its socket",
             updates, queued);
  held_quiet = window == 0 && st->out_off == held_last_off ? held_quiet + 1 : 0;
  held_last_off = st->out_off;
  return held_quiet >= 20 || st->out_off == held_total;
}

static void on_held_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  fx_t *f = s->data;
  if (n > 0)
    buf_add(&f->held_in, b->base, (size_t)n);
  else if (n < 0) {
    f->held_eof = true;
    uv_read_stop(s);
  }
  free(b->base);
}

static bool held_eof(fx_t *f) {
  return f->held_eof;
}

static void test_flow_control_and_half_close(void **state) {
  (void)state;
  fx_t f;
  fx_up(&f);
  open_event(&f, "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"hold\"}", ID_A);
  want_path = "/me/tunnels/" ID_A;
  wait_for(&f, tunnel_posted, "the held tunnel's POST");
  assert_true(f.held_fd >= 0);
  sstream_t *a = want(&f);
  buf_t sent = {0};
  random_bytes(&sent, (size_t)2 << 20, 11);
  srv_push(&f.srv, a, sent.p, sent.len, false);
  /* Nobody reads the held socket: the agent writes what the kernel
   * takes, then keeps one window and stops consuming. */
  held_total = sent.len;
  held_last_off = 0;
  held_quiet = 0;
  wait_for(&f, held_stalled, "the held stream's window to close");
  assert_true(a->out_off < sent.len);
  assert_int_equal(held_window(&f), 0);
  /* Another tunnel is not held up by this one (the session's window). */
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d}",
             ID_B, f.echo_port);
  want_path = "/me/tunnels/" ID_B;
  wait_for(&f, tunnel_posted, "the second tunnel's POST");
  sstream_t *b = want(&f);
  buf_t other = {0};
  random_bytes(&other, (size_t)256 << 10, 13);
  srv_push(&f.srv, b, other.p, other.len, true);
  want_in_len = other.len;
  wait_for(&f, tunnel_got_bytes, "the second tunnel's bytes");
  assert_memory_equal(b->in.p, other.p, other.len);
  wait_for(&f, tunnel_closed, "the second tunnel's close");
  assert_int_equal(b->close_code, NGHTTP2_NO_ERROR);
  /* The local end's EOF first: END_STREAM while the answer goes on. */
  assert_int_equal(shutdown(f.held_fd, SHUT_WR), 0);
  want_path = "/me/tunnels/" ID_A;
  wait_for(&f, tunnel_req_ended, "the held tunnel's END_STREAM");
  assert_int_equal(a->in.len, 0);
  assert_false(a->closed);
  /* Now read: everything arrives in order, then the user's EOF. */
  uv_pipe_init(&f.loop, &f.held, 0);
  f.held.data = &f;
  assert_int_equal(uv_pipe_open(&f.held, f.held_fd), 0);
  f.held_open = true;
  uv_read_start((uv_stream_t *)&f.held, srv_alloc, on_held_read);
  char tail[] = "the end";
  buf_add(&sent, tail, sizeof tail);
  srv_push(&f.srv, a, tail, sizeof tail, true);
  wait_for(&f, held_eof, "the held socket's EOF");
  assert_int_equal(f.held_in.len, sent.len);
  assert_memory_equal(f.held_in.p, sent.p, sent.len);
  wait_for(&f, tunnel_closed, "the held tunnel's close");
  assert_int_equal(a->close_code, NGHTTP2_NO_ERROR);
  wait_for(&f, no_tunnels, "both tunnels' ends");
  buf_free(&sent);
  buf_free(&other);
  fx_done(&f);
}

/* ---- resets: RST_STREAM and a lost session close the local socket --------------- */

static void test_reset_and_session_loss(void **state) {
  (void)state;
  fx_t f;
  fx_up(&f);
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d}",
             ID_A, f.echo_port);
  want_path = "/me/tunnels/" ID_A;
  wait_for(&f, tunnel_posted, "the first tunnel");
  srv_push(&f.srv, want(&f), "ping", 4, false);
  want_in_len = 4;
  wait_for(&f, tunnel_got_bytes, "the echo");
  nghttp2_submit_rst_stream(f.srv.h2, NGHTTP2_FLAG_NONE, want(&f)->id,
                            NGHTTP2_CANCEL);
  srv_flush(&f.srv);
  want_echo_eofs = 1;
  wait_for(&f, echo_eofs, "the local socket closed after RST_STREAM");
  wait_for(&f, no_tunnels, "the first tunnel's end");
  /* a second tunnel, then the whole session goes */
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d}",
             ID_B, f.echo_port);
  want_path = "/me/tunnels/" ID_B;
  wait_for(&f, tunnel_posted, "the second tunnel");
  srv_push(&f.srv, want(&f), "pong", 4, false);
  want_in_len = 4;
  wait_for(&f, tunnel_got_bytes, "the second echo");
  srv_lose(&f.srv);
  want_echo_eofs = 2;
  wait_for(&f, echo_eofs, "the local socket closed with the session");
  wait_for(&f, no_tunnels, "the second tunnel's end");
  fx_done(&f);
}

/* ---- a host an app's url names: dialed, every address tried --------------------- */

static void test_app_host(void **state) {
  (void)state;
  fx_t f;
  fx_up(&f);
  char apps[128];
  snprintf(apps, sizeof apps, "[{\"url\":\"http://localhost:%d/\"}]",
           f.echo_port);
  json_t *j = json_loads(apps, 0, NULL);
  agent_tunnels_set_apps(f.tunnels, j);
  json_decref(j);
  /* the echo server listens on 127.0.0.1 only: when localhost is ::1
   * first, the dial goes on to the next address */
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d,"
             "\"host\":\"localhost\"}",
             ID_A, f.echo_port);
  want_path = "/me/tunnels/" ID_A;
  wait_for(&f, tunnel_posted, "the tunnel to localhost");
  assert_string_equal(want(&f)->error, "");
  srv_push(&f.srv, want(&f), "app", 3, true);
  want_in_len = 3;
  wait_for(&f, tunnel_got_bytes, "the echo through localhost");
  assert_memory_equal(want(&f)->in.p, "app", 3);
  wait_for(&f, tunnel_closed, "the tunnel's close");
  assert_int_equal(want(&f)->close_code, NGHTTP2_NO_ERROR);
  fx_done(&f);
}

/* ---- the bound: the server's stream limit less the agent's requests ----------- */

static bool two_echoes(fx_t *f) {
  return f->echo_accepted >= 2 && stream_path(&f->srv, "/me/tunnels/" ID_B);
}

static void test_tunnel_limit(void **state) {
  (void)state;
  srv_max_streams = 19; /* the events stream, 16 requests, 2 tunnels */
  fx_t f;
  fx_up(&f);
  srv_max_streams = 256;
  assert_int_equal(agent_conn_stream_limit(f.conn), 2);
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d}",
             ID_A, f.echo_port);
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d}",
             ID_B, f.echo_port);
  wait_for(&f, two_echoes, "two tunnels open");
  open_event(&f,
             "{\"type\":\"open\",\"id\":\"%s\",\"kind\":\"tcp\",\"port\":%d}",
             ID_C, f.echo_port);
  want_path = "/me/tunnels/" ID_C;
  wait_for(&f, tunnel_closed, "the third tunnel's refusal");
  assert_string_equal(want(&f)->error, "too many tunnels open (at most 2)");
  assert_int_equal(f.echo_accepted, 2);
  assert_int_equal(agent_tunnels_count(f.tunnels), 2);
  fx_done(&f);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_check_id_and_kind),
      cmocka_unit_test(test_check_tcp),
      cmocka_unit_test(test_check_pty),
      cmocka_unit_test(test_tcp_echo_mib),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_flow_control_and_half_close),
      cmocka_unit_test(test_reset_and_session_loss),
      cmocka_unit_test(test_app_host),
      cmocka_unit_test(test_tunnel_limit),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
