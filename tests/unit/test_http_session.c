/* tests/unit/test_http_session.c — agent sessions end to end on loopback
 * (docs/design/agent.md §1): a real atr_http server with this test's
 * dispatch callback (it plays the API: upgrade on /me/rpc, answer on
 * /me/echo, hold on /me/hold) and the agent's own client (agent_conn.c)
 * on a loop in the test thread; raw sockets where a client must misbehave
 * (silent, early bytes). Every wait is a bounded poll for a state. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_conn.h"
#include "atrium/error.h"
#include "http.h"
#include "http_internal.h"
#include "metrics.h"
#include "ws_accept.h"

#define TOKEN "atragt_test-token"
#define KEY "agent-1"
#define WAIT_MS 10000

typedef struct fx {
  atr_http_server_t *srv;
  int port;
  int64_t heartbeat_ms, slow_ms;
  uv_loop_t loop;
  uv_timer_t tick;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* server side, under mu */
  int entered, released, echo_saw_session, closed_n, freed_n;
  char reasons[8][32];
  char upgrade_ip[64];
  int next_ud;
  /* client side, loop thread */
  int ups, downs, last_down_status, replies, last_status, events;
  char last_body[256], last_event[256];
  bool stopped;
} fx_t;

typedef struct sess_ud {
  fx_t *f;
  int id;
} sess_ud_t;

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the server's side ------------------------------------------------------ */

static void on_closed(void *ud, const char *reason) {
  sess_ud_t *s = ud;
  pthread_mutex_lock(&s->f->mu);
  if (s->f->closed_n < 8)
    snprintf(s->f->reasons[s->f->closed_n], 32, "%s", reason);
  s->f->closed_n++;
  pthread_mutex_unlock(&s->f->mu);
}

static void on_free_ud(void *ud) {
  sess_ud_t *s = ud;
  pthread_mutex_lock(&s->f->mu);
  s->f->freed_n++;
  pthread_mutex_unlock(&s->f->mu);
  free(s);
}

static const atr_http_session_ops_t ops = {
    .struct_size = sizeof ops, .closed = on_closed, .free_ud = on_free_ud};

static void upgrade(fx_t *f, atr_http_exchange_t *x) {
  const char *token = atr__http_header(x, "Atrium-Session-Token");
  if (!token || strcmp(token, TOKEN) != 0) {
    atr__http_respond(x, 401, "application/json", "{}", 2);
    return;
  }
  if (!atr__http_wants_upgrade(x)) {
    atr__http_respond(x, 426, "application/json", "{}", 2);
    return;
  }
  sess_ud_t *s = calloc(1, sizeof *s);
  s->f = f;
  pthread_mutex_lock(&f->mu);
  s->id = ++f->next_ud;
  pthread_mutex_unlock(&f->mu);
  if (atr__http_upgrade(x, KEY, &ops, s) != 0)
    atr__http_respond(x, 400, "application/json", "{}", 2);
}

static void hold(fx_t *f, atr_http_exchange_t *x) {
  pthread_mutex_lock(&f->mu);
  int me = f->entered++;
  pthread_cond_broadcast(&f->cv);
  while (f->released <= me)
    pthread_cond_wait(&f->cv, &f->mu);
  pthread_mutex_unlock(&f->mu);
  atr__http_respond(x, 200, "application/json", "{\"held\":true}", 13);
}

static int dispatch(void *ud, atr_http_exchange_t *x,
                    const atr_http_request_t *req, const char *remote_ip,
                    const char *user_agent, const char **route_template,
                    char *who, size_t who_size) {
  (void)remote_ip, (void)user_agent, (void)who, (void)who_size;
  fx_t *f = ud;
  *route_template = req->path;
  if (strcmp(req->path, "/api/v2/workspaceagents/me/rpc") == 0) {
    pthread_mutex_lock(&f->mu);
    snprintf(f->upgrade_ip, sizeof f->upgrade_ip, "%s", remote_ip);
    pthread_mutex_unlock(&f->mu);
    upgrade(f, x);
  } else if (strcmp(req->path, "/api/v2/workspaceagents/me/echo") == 0) {
    sess_ud_t *s = atr__http_session_ud(x);
    char body[256];
    int n =
        snprintf(body, sizeof body, "{\"session\":%d,\"got\":%.*s}",
                 s ? s->id : 0, (int)req->body_len, req->body ? req->body : "");
    pthread_mutex_lock(&f->mu);
    f->echo_saw_session += s != NULL;
    pthread_mutex_unlock(&f->mu);
    atr__http_respond(x, 200, "application/json", body, (size_t)n);
  } else if (strcmp(req->path, "/api/v2/workspaceagents/me/hold") == 0) {
    hold(f, x);
  } else {
    return 0;
  }
  return 1;
}

static void server_start(fx_t *f, int port) {
  char address[64];
  snprintf(address, sizeof address, "127.0.0.1:%d", port);
  atr_http_config_t cfg = {.address = address,
                           .threads = 2,
                           .max_body_size = 1 << 20,
                           .max_header_size = 8192,
                           .dispatch = dispatch,
                           .dispatch_user_data = f,
                           .agent_threads = 10,
                           .session_heartbeat_ms = f->heartbeat_ms,
                           .session_slow_ms = f->slow_ms};
  char *err = NULL;
  assert_int_equal(atr_http_start(&cfg, &f->srv, &err), 0);
  struct sockaddr_in sin;
  int len = sizeof sin;
  assert_int_equal(
      uv_tcp_getsockname(&f->srv->listeners[0], (struct sockaddr *)&sin, &len),
      0);
  f->port = ntohs(sin.sin_port);
}

static int locked(fx_t *f, const int *field) {
  pthread_mutex_lock(&f->mu);
  int v = *field;
  pthread_mutex_unlock(&f->mu);
  return v;
}

/* ---- the client's side ------------------------------------------------------ */

static void on_tick(uv_timer_t *t) {
  (void)t; /* keeps UV_RUN_ONCE returning */
}

static void on_up(void *ud) {
  ((fx_t *)ud)->ups++;
}

static void on_down(void *ud, int status, const char *reason) {
  (void)reason;
  fx_t *f = ud;
  f->downs++;
  f->last_down_status = status;
}

static void on_event(void *ud, const char *line, size_t len) {
  fx_t *f = ud;
  f->events++;
  snprintf(f->last_event, sizeof f->last_event, "%.*s", (int)len, line);
}

static void on_reply(void *ud, int status, const char *body, size_t len) {
  fx_t *f = ud;
  f->replies++;
  f->last_status = status;
  snprintf(f->last_body, sizeof f->last_body, "%.*s", (int)len, body);
}

static void on_stopped(void *ud) {
  ((fx_t *)ud)->stopped = true;
}

static const agent_conn_cbs_t cbs = {on_up, on_down, on_event};

static void on_flag(void *flag) {
  *(bool *)flag = true;
}

static agent_conn_t *client_new(fx_t *f, const char *token) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
  agent_conn_opts_t o = {.url = url,
                         .token = token,
                         .heartbeat_ms = 1000,
                         .backoff_min_ms = 20,
                         .backoff_max_ms = 200};
  agent_conn_t *c = NULL;
  char *err = NULL;
  assert_int_equal(agent_conn_new(&f->loop, &o, &cbs, f, &c, &err), 0);
  agent_conn_start(c);
  return c;
}

/* Run the client's loop until cond holds (evaluated once per turn, never
 * again after it held: it may have effects), at most WAIT_MS. */
#define WAIT_UNTIL(f, cond)                                                    \
  do {                                                                         \
    uint64_t end_ = now_ms() + WAIT_MS;                                        \
    bool held_ = false;                                                        \
    while (!(held_ = (cond)) && now_ms() < end_)                               \
      uv_run(&(f)->loop, UV_RUN_ONCE);                                         \
    assert_true(held_);                                                        \
  } while (0)

static void client_stop(fx_t *f, agent_conn_t *c) {
  f->stopped = false;
  agent_conn_stop(c, on_stopped, f);
  WAIT_UNTIL(f, f->stopped);
  agent_conn_free(c);
}

static fx_t *fx_new_slow(int64_t heartbeat_ms, int64_t slow_ms) {
  fx_t *f = calloc(1, sizeof *f);
  f->heartbeat_ms = heartbeat_ms;
  f->slow_ms = slow_ms;
  pthread_mutex_init(&f->mu, NULL);
  pthread_cond_init(&f->cv, NULL);
  uv_loop_init(&f->loop);
  uv_timer_init(&f->loop, &f->tick);
  uv_timer_start(&f->tick, on_tick, 2, 2);
  server_start(f, 0);
  return f;
}

static fx_t *fx_new(int64_t heartbeat_ms) {
  return fx_new_slow(heartbeat_ms, 0);
}

static void fx_free(fx_t *f) {
  if (f->srv)
    atr_http_stop(f->srv);
  uv_close((uv_handle_t *)&f->tick, NULL);
  uv_run(&f->loop, UV_RUN_DEFAULT);
  uv_loop_close(&f->loop);
  pthread_mutex_destroy(&f->mu);
  pthread_cond_destroy(&f->cv);
  free(f);
}

/* ---- raw sockets for clients that misbehave --------------------------------- */

/* Dial, send the upgrade request (and extra bytes right behind it, before
 * any answer), read the answer's head. */
static int raw_upgrade(fx_t *f, const void *extra, size_t extra_len) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)f->port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  char req[1024];
  int n = snprintf(req, sizeof req,
                   "GET /api/v2/workspaceagents/me/rpc HTTP/1.1\r\n"
                   "Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "Sec-WebSocket-Protocol: atrium-agent.h2\r\n"
                   "Atrium-Session-Token: " TOKEN "\r\n\r\n");
  if (extra_len > 0)
    memcpy(req + n, extra, extra_len);
  assert_int_equal(write(fd, req, (size_t)n + extra_len),
                   (ssize_t)((size_t)n + extra_len));
  char head[1024];
  size_t got = 0;
  while (got < sizeof head - 1 &&
         (got < 4 || memcmp(head + got - 4, "\r\n\r\n", 4) != 0))
    assert_int_equal(read(fd, head + got++, 1), 1);
  head[got] = '\0';
  assert_non_null(strstr(head, "HTTP/1.1 101"));
  assert_non_null(strstr(head, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
  return fd;
}

/* A masked binary frame (payload < 126 bytes). */
static size_t ws_frame(uint8_t *out, const uint8_t *payload, size_t len) {
  static const uint8_t mask[4] = {1, 2, 3, 4};
  out[0] = 0x82;
  out[1] = (uint8_t)(0x80 | len);
  memcpy(out + 2, mask, 4);
  for (size_t i = 0; i < len; i++)
    out[6 + i] = payload[i] ^ mask[i % 4];
  return 6 + len;
}

static bool reason_seen(fx_t *f, const char *reason) {
  bool seen = false;
  pthread_mutex_lock(&f->mu);
  for (int i = 0; i < f->closed_n && i < 8; i++)
    seen = seen || strcmp(f->reasons[i], reason) == 0;
  pthread_mutex_unlock(&f->mu);
  return seen;
}

/* ---- metrics ---------------------------------------------------------------------- */

typedef struct hist_q {
  const char *name;
  uint64_t count;
  double sum;
  bool found;
} hist_q_t;

static void visit(void *ud, const atr_metric_family_t *fam,
                  const atr_metric_sample_t *samples, size_t n) {
  hist_q_t *q = ud;
  if (strcmp(fam->name, q->name) != 0)
    return;
  q->found = fam->type == ATR_METRIC_HISTOGRAM;
  if (n == 0) /* no observation yet */
    return;
  q->count = atr_metric_sample_at(samples, 0)->count;
  q->sum = atr_metric_sample_at(samples, 0)->sum;
}

static hist_q_t histogram(const char *name) {
  hist_q_t q = {.name = name};
  atr_metrics_collect(visit, &q);
  return q;
}

/* ---- the tests ------------------------------------------------------------------ */

static void accept_key_follows_rfc6455(void **state) {
  (void)state;
  char out[29];
  atr_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", out);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void request_in_session_reaches_dispatch_and_returns(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  agent_conn_t *c = client_new(f, TOKEN);
  WAIT_UNTIL(f, agent_conn_up(c));
  assert_int_equal(atr_http_sessions(f->srv), 1);
  assert_int_equal(agent_conn_request(c, "POST",
                                      "/api/v2/workspaceagents/me/echo",
                                      "{\"a\":1}", on_reply, f),
                   0);
  WAIT_UNTIL(f, f->replies == 1);
  assert_int_equal(f->last_status, 200);
  assert_string_equal(f->last_body, "{\"session\":1,\"got\":{\"a\":1}}");
  assert_int_equal(locked(f, &f->echo_saw_session), 1);
  client_stop(f, c);
  /* the agent said goodbye: closed() once, then free_ud() */
  WAIT_UNTIL(f, locked(f, &f->freed_n) == 1);
  assert_true(reason_seen(f, "closed"));
  assert_int_equal(locked(f, &f->closed_n), 1);
  fx_free(f);
}

static void posted_line_reaches_the_events_stream(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  agent_conn_t *c = client_new(f, TOKEN);
  /* posting works once the agent opened its events stream */
  WAIT_UNTIL(f, atr_http_session_post(f->srv, KEY, "{\"type\":\"shutdown\"}"));
  WAIT_UNTIL(f, f->events == 1);
  assert_string_equal(f->last_event, "{\"type\":\"shutdown\"}");
  assert_int_equal(atr_http_session_post(f->srv, "nobody", "{}"), 0);
  client_stop(f, c);
  fx_free(f);
}

static void refused_upgrade_reaches_on_down_with_401(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  agent_conn_t *c = client_new(f, "atragt_wrong");
  WAIT_UNTIL(f, f->downs >= 1);
  assert_int_equal(f->last_down_status, 401);
  assert_int_equal(f->ups, 0);
  assert_false(agent_conn_up(c));
  assert_int_equal(agent_conn_request(c, "GET", "/x", NULL, on_reply, f),
                   ATR_EAGAIN);
  client_stop(f, c);
  assert_int_equal(locked(f, &f->closed_n), 0);
  fx_free(f);
}

static void ninth_request_waits_for_a_free_lane_slot(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  agent_conn_t *c = client_new(f, TOKEN);
  WAIT_UNTIL(f, agent_conn_up(c));
  for (int i = 0; i < 9; i++)
    assert_int_equal(agent_conn_request(c, "POST",
                                        "/api/v2/workspaceagents/me/hold", "{}",
                                        on_reply, f),
                     0);
  /* 8 handlers hold their requests; the session stopped being read */
  WAIT_UNTIL(f, locked(f, &f->entered) == 8 &&
                    atomic_load(&f->srv->session_pauses) >= 1);
  assert_int_equal(locked(f, &f->entered), 8);
  pthread_mutex_lock(&f->mu);
  f->released = 1;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
  WAIT_UNTIL(f, locked(f, &f->entered) == 9);
  pthread_mutex_lock(&f->mu);
  f->released = 9;
  pthread_cond_broadcast(&f->cv);
  pthread_mutex_unlock(&f->mu);
  WAIT_UNTIL(f, f->replies == 9);
  assert_int_equal(f->last_status, 200);
  client_stop(f, c);
  fx_free(f);
}

static void silent_session_closes_with_timeout(void **state) {
  (void)state;
  fx_t *f = fx_new(50);
  int fd = raw_upgrade(f, NULL, 0);
  WAIT_UNTIL(f, locked(f, &f->freed_n) == 1);
  assert_int_equal(locked(f, &f->closed_n), 1);
  assert_true(reason_seen(f, "timeout"));
  assert_int_equal(atr_http_sessions(f->srv), 0);
  close(fd);
  fx_free(f);
}

/* The client's first h2 bytes ride right behind the upgrade request: the
 * server must see them (it acks their SETTINGS), not drop them. */
static void bytes_after_the_upgrade_request_are_kept(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  uint8_t h2[64], frame[80];
  memcpy(h2, preface, 24);
  memset(h2 + 24, 0, 9);
  h2[27] = 4; /* an empty SETTINGS frame */
  size_t n = ws_frame(frame, h2, 33);
  int fd = raw_upgrade(f, frame, n);
  static const uint8_t ack[9] = {0, 0, 0, 4, 1, 0, 0, 0, 0};
  uint8_t buf[4096];
  size_t got = 0;
  bool acked = false;
  uint64_t end = now_ms() + WAIT_MS;
  while (!acked && got < sizeof buf && now_ms() < end) {
    ssize_t r = recv(fd, buf + got, sizeof buf - got, 0);
    assert_true(r > 0);
    got += (size_t)r;
    acked = memmem(buf, got, ack, sizeof ack) != NULL;
  }
  assert_true(acked);
  close(fd);
  fx_free(f);
}

static void text_frame_ends_the_session_as_protocol_error(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  int fd = raw_upgrade(f, NULL, 0);
  uint8_t frame[16];
  size_t n = ws_frame(frame, (const uint8_t *)"hello", 5);
  frame[0] = 0x81; /* text: the session carries binary HTTP/2 only */
  assert_int_equal(write(fd, frame, n), (ssize_t)n);
  WAIT_UNTIL(f, locked(f, &f->freed_n) == 1);
  assert_true(reason_seen(f, "protocol"));
  close(fd);
  fx_free(f);
}

static void second_session_with_the_same_key_replaces_the_first(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  int fd = raw_upgrade(f, NULL, 0);
  WAIT_UNTIL(f, atr_http_sessions(f->srv) == 1);
  agent_conn_t *c = client_new(f, TOKEN);
  WAIT_UNTIL(f, agent_conn_up(c) && reason_seen(f, "replaced"));
  assert_int_equal(locked(f, &f->closed_n), 1);
  assert_int_equal(atr_http_sessions(f->srv), 1);
  /* the newer one is the one that answers */
  assert_int_equal(agent_conn_request(c, "POST",
                                      "/api/v2/workspaceagents/me/echo", "{}",
                                      on_reply, f),
                   0);
  WAIT_UNTIL(f, f->replies == 1);
  assert_string_equal(f->last_body, "{\"session\":2,\"got\":{}}");
  close(fd);
  client_stop(f, c);
  fx_free(f);
}

static void drained_server_sends_agents_to_reconnect(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  agent_conn_t *c = client_new(f, TOKEN);
  WAIT_UNTIL(f, agent_conn_up(c));
  atr_http_drain(f->srv);
  WAIT_UNTIL(f, f->downs >= 1 && reason_seen(f, "draining"));
  WAIT_UNTIL(f, atr_http_in_flight(f->srv) == 0);
  atr_http_stop(f->srv);
  f->srv = NULL;
  server_start(f, f->port); /* the replacement, on the same address */
  WAIT_UNTIL(f, agent_conn_up(c) && agent_conn_sessions(c) == 2);
  assert_int_equal(agent_conn_drops(c), 1);
  assert_int_equal(atr_http_sessions(f->srv), 1);
  client_stop(f, c);
  fx_free(f);
}

static void body_over_the_cap_in_a_session_gets_413(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  agent_conn_t *c = client_new(f, TOKEN);
  WAIT_UNTIL(f, agent_conn_up(c));
  size_t n = (1 << 20) + 16; /* the test server's max_body_size + 16 */
  char *big = malloc(n + 1);
  memset(big, ' ', n);
  big[0] = '{';
  big[n - 1] = '}';
  big[n] = '\0';
  assert_int_equal(agent_conn_request(c, "POST",
                                      "/api/v2/workspaceagents/me/echo", big,
                                      on_reply, f),
                   0);
  free(big);
  WAIT_UNTIL(f, f->replies == 1);
  assert_int_equal(f->last_status, 413);
  assert_int_equal(locked(f, &f->echo_saw_session), 0);
  /* the session goes on */
  assert_int_equal(agent_conn_request(c, "POST",
                                      "/api/v2/workspaceagents/me/echo", "{}",
                                      on_reply, f),
                   0);
  WAIT_UNTIL(f, f->replies == 2);
  assert_int_equal(f->last_status, 200);
  client_stop(f, c);
  fx_free(f);
}

static void closed_by_the_server_with_a_reason(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  agent_conn_t *c = client_new(f, TOKEN);
  WAIT_UNTIL(f, agent_conn_up(c));
  assert_int_equal(atr_http_session_close(f->srv, KEY, "revoked"), 1);
  WAIT_UNTIL(f, f->downs >= 1 && reason_seen(f, "revoked"));
  assert_int_equal(atr_http_session_close(f->srv, "nobody", "revoked"), 0);
  client_stop(f, c);
  fx_free(f);
}

/* Agents' plain HTTP/1.1 requests take their lane too, without a
 * session. */
static void plain_request_under_me_is_served_without_a_session(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)f->port)};
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof sin), 0);
  static const char req[] = "POST /api/v2/workspaceagents/me/echo HTTP/1.1\r\n"
                            "Host: x\r\nContent-Length: 2\r\n"
                            "Connection: close\r\n\r\n{}";
  assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
  char answer[2048];
  size_t got = 0;
  ssize_t r;
  while (got < sizeof answer - 1 &&
         (r = read(fd, answer + got, sizeof answer - 1 - got)) > 0)
    got += (size_t)r;
  answer[got] = '\0';
  assert_non_null(strstr(answer, "HTTP/1.1 200"));
  assert_non_null(strstr(answer, "{\"session\":0,\"got\":{}}"));
  close(fd);
  fx_free(f);
}

static void agent_pings_every_heartbeat(void **state) {
  (void)state;
  fx_t *f = fx_new(0);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", f->port);
  agent_conn_opts_t o = {
      .url = url, .token = TOKEN, .heartbeat_ms = 20, .bind_ip = "127.0.0.2"};
  agent_conn_t *c = NULL;
  char *err = NULL;
  assert_int_equal(agent_conn_new(&f->loop, &o, &cbs, f, &c, &err), 0);
  agent_conn_start(c);
  WAIT_UNTIL(f, agent_conn_ping_us(c) > 0);
  assert_int_equal(agent_conn_sessions(c), 1);
  pthread_mutex_lock(&f->mu);
  assert_string_equal(f->upgrade_ip, "127.0.0.2"); /* bound as asked */
  pthread_mutex_unlock(&f->mu);
  assert_int_equal(agent_conn_drops(c), 0);
  client_stop(f, c);
  fx_free(f);
}

/* The server's own PINGs (every heartbeat) are acked by the agent's
 * nghttp2; each round trip lands in atrium_agent_ping_seconds. */
static void server_ping_round_trip_is_a_metric(void **state) {
  (void)state;
  uint64_t before = histogram("atrium_agent_ping_seconds").count;
  fx_t *f = fx_new(20);
  assert_true(histogram("atrium_agent_ping_seconds").found);
  agent_conn_t *c = client_new(f, TOKEN);
  WAIT_UNTIL(f, agent_conn_up(c));
  WAIT_UNTIL(f, histogram("atrium_agent_ping_seconds").count >= before + 2);
  hist_q_t q = histogram("atrium_agent_ping_seconds");
  assert_true(q.sum > 0 && q.sum < 60.0 * (double)q.count);
  client_stop(f, c);
  fx_free(f);
}

/* An agent that stops reading while events keep coming: its events stream
 * and then its socket fill, the session's output stays blocked past
 * session_slow_ms and the server closes it with too_slow. The heartbeat
 * (1 s: a silent peer is cut only after 3 s) leaves the slow rule, checked
 * at the ticks, the first word. */
static void blocked_session_closes_as_too_slow(void **state) {
  (void)state;
  fx_t *f = fx_new_slow(1000, 1);
  agent_conn_t *c = client_new(f, TOKEN);
  WAIT_UNTIL(f, atr_http_session_post(f->srv, KEY, "{\"type\":\"hello\"}"));
  WAIT_UNTIL(f, f->events == 1);
  /* from here the client's loop is not run: nothing is read */
  size_t n = 16 * 1024;
  char *line = malloc(n + 1);
  memset(line, 'x', n);
  line[n] = '\0';
  uint64_t end = now_ms() + WAIT_MS;
  int posts = 0;
  struct timespec pace = {0, 1000000};
  while (!reason_seen(f, "too_slow") && now_ms() < end) {
    /* 0 once the session is gone; paced so the loop drops what is over
     * the queue's cap instead of the test piling up memory */
    if (atr_http_session_post(f->srv, KEY, line))
      posts++;
    nanosleep(&pace, NULL);
  }
  free(line);
  assert_true(reason_seen(f, "too_slow"));
  assert_false(reason_seen(f, "timeout"));
  assert_true(posts > 32); /* more than the agent could have taken in */
  WAIT_UNTIL(f, locked(f, &f->freed_n) == 1);
  assert_int_equal(atr_http_sessions(f->srv), 0);
  client_stop(f, c);
  fx_free(f);
}

static void access_url_must_be_plain_http(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  static const struct {
    const char *url;
    int rc;
    const char *err;
  } cases[] = {
      {"https://atrium.example.com", ATR_ENOTSUP,
       "https access URLs are not supported by the agent yet"},
      {"ftp://x", ATR_EINVAL,
       "the access URL ftp://x is not http://host[:port][/path]"},
      {"http://host:99999999/", ATR_EINVAL,
       "the access URL http://host:99999999/ is not "
       "http://host[:port][/path]"},
      {"http://host:8080/prefix/", 0, NULL},
      {"http://[::1]:3000", 0, NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    agent_conn_opts_t o = {.url = cases[i].url, .token = TOKEN};
    agent_conn_t *c = NULL;
    char *err = NULL;
    assert_int_equal(agent_conn_new(&loop, &o, &cbs, NULL, &c, &err),
                     cases[i].rc);
    if (cases[i].err) {
      assert_string_equal(err, cases[i].err);
      assert_null(c);
    } else {
      bool stopped = false;
      agent_conn_stop(c, on_flag, &stopped);
      uv_run(&loop, UV_RUN_DEFAULT);
      assert_true(stopped);
      agent_conn_free(c);
    }
    free(err);
  }
  /* a token that could end its header early is refused */
  agent_conn_opts_t o = {.url = "http://x", .token = "a\r\nX-Evil: 1"};
  agent_conn_t *c = NULL;
  char *err = NULL;
  assert_int_equal(agent_conn_new(&loop, &o, &cbs, NULL, &c, &err), ATR_EINVAL);
  free(err);
  uv_loop_close(&loop);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN); /* as the server and the agent do */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(accept_key_follows_rfc6455),
      cmocka_unit_test(request_in_session_reaches_dispatch_and_returns),
      cmocka_unit_test(posted_line_reaches_the_events_stream),
      cmocka_unit_test(refused_upgrade_reaches_on_down_with_401),
      cmocka_unit_test(ninth_request_waits_for_a_free_lane_slot),
      cmocka_unit_test(silent_session_closes_with_timeout),
      cmocka_unit_test(bytes_after_the_upgrade_request_are_kept),
      cmocka_unit_test(text_frame_ends_the_session_as_protocol_error),
      cmocka_unit_test(second_session_with_the_same_key_replaces_the_first),
      cmocka_unit_test(drained_server_sends_agents_to_reconnect),
      cmocka_unit_test(body_over_the_cap_in_a_session_gets_413),
      cmocka_unit_test(closed_by_the_server_with_a_reason),
      cmocka_unit_test(plain_request_under_me_is_served_without_a_session),
      cmocka_unit_test(agent_pings_every_heartbeat),
      cmocka_unit_test(server_ping_round_trip_is_a_metric),
      cmocka_unit_test(blocked_session_closes_as_too_slow),
      cmocka_unit_test(access_url_must_be_plain_http),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
