/* core/server/http_loop.c — the event loop thread: it owns every socket.
 * It accepts (within http.max_connections and
 * http.max_connections_per_address), reads and parses, runs the
 * per-connection timers (idle, header, body), hands complete requests to
 * a lane, and writes what other threads post to its inbox. Nothing here
 * waits for a handler, a database or a slow client. An upgraded
 * connection's bytes go to its session (http_session.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_internal.h"

struct http_addr_count {
  http_addr_count_t *next;
  int n;
  char ip[64];
};

typedef struct write_req {
  uv_write_t req;
  http_conn_t *conn;
  char *data;
  size_t counted; /* what it adds to conn->queued */
} write_req_t;

static void conn_close(http_conn_t *c);
static void conn_parse(http_conn_t *c, const char *data, size_t len);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

uint64_t http_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- connections per client address ------------------------------------- */

static http_addr_count_t **addr_slot(atr_http_server_t *srv, const char *ip) {
  uint64_t h = 1469598103934665603u;
  for (const char *p = ip; *p; p++)
    h = (h ^ (unsigned char)*p) * 1099511628211u;
  http_addr_count_t **slot = &srv->by_addr[h % srv->by_addr_buckets];
  while (*slot && strcmp((*slot)->ip, ip) != 0)
    slot = &(*slot)->next;
  return slot;
}

/* One more connection from ip; false when that is over the cap. */
static bool addr_take(atr_http_server_t *srv, const char *ip) {
  http_addr_count_t **slot = addr_slot(srv, ip);
  int64_t cap = srv->cfg.max_connections_per_address;
  if (*slot && cap > 0 && (*slot)->n >= cap)
    return false;
  if (!*slot) {
    *slot = calloc(1, sizeof **slot);
    if (!*slot)
      return false;
    snprintf((*slot)->ip, sizeof(*slot)->ip, "%s", ip);
  }
  (*slot)->n++;
  return true;
}

static void addr_give(atr_http_server_t *srv, const char *ip) {
  http_addr_count_t **slot = addr_slot(srv, ip);
  if (*slot && --(*slot)->n == 0) {
    http_addr_count_t *gone = *slot;
    *slot = gone->next;
    free(gone);
  }
}

/* ---- lifetime ------------------------------------------------------------- */

static void conn_maybe_free(http_conn_t *c) {
  if (c->open_handles > 0 || c->refs > 0)
    return;
  if (c->up)
    http_session_free(c);
  http_parse_free(&c->parse);
  free(c->leftover);
  free(c);
}

static void conn_unref(http_conn_t *c) {
  c->refs--;
  conn_maybe_free(c);
}

static void on_handle_closed(uv_handle_t *h) {
  http_conn_t *c = h->data;
  c->open_handles--;
  conn_maybe_free(c);
}

static void conn_close(http_conn_t *c) {
  if (c->state == HTTP_CONN_CLOSED)
    return;
  atr_http_server_t *srv = c->srv;
  if (c->up)
    http_session_closing(c);
  c->state = HTTP_CONN_CLOSED;
  atomic_store(&c->gone, true);
  if (c->prev)
    c->prev->next = c->next;
  else
    srv->conns = c->next;
  if (c->next)
    c->next->prev = c->prev;
  srv->nconns--;
  http_note_open(srv);
  addr_give(srv, c->ip);
  uv_close((uv_handle_t *)&c->timer, on_handle_closed);
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
  if (c->stream)
    http_stream_wake(srv, c->stream); /* it sees the client gone and ends */
  if (c->tun)
    http_tunnel_user_closed(c); /* the agent's stream is reset */
}

/* ---- timers ----------------------------------------------------------------- */

static void on_timer(uv_timer_t *t) {
  conn_close(t->data);
}

static void arm(http_conn_t *c, int64_t ms) {
  if (ms <= 0)
    ms = 1;
  uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
}

static void enter_idle(http_conn_t *c) {
  c->state = HTTP_CONN_IDLE;
  arm(c, c->srv->cfg.idle_timeout_ms);
}

/* ---- writing --------------------------------------------------------------- */

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)req;
  (void)status;
}

/* Answered with "Connection: close": stop sending, but read and drop what
 * the client still sends for a moment, so closing does not reset the
 * connection before the client has read its answer (a 413 arrives while
 * the client is still sending its body). */
static void linger(http_conn_t *c) {
  if (c->srv->stopping) {
    conn_close(c);
    return;
  }
  c->state = HTTP_CONN_LINGER;
  if (uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
    conn_close(c);
    return;
  }
  (void)uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
  arm(c, c->srv->cfg.header_timeout_ms < 2000 ? c->srv->cfg.header_timeout_ms
                                              : 2000);
}

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  http_conn_t *c = w->conn;
  free(w->data);
  size_t left = atomic_fetch_sub(&c->queued, w->counted) - w->counted;
  free(w);
  c->writes--;
  if (status < 0) {
    conn_close(c);
  } else if (c->state != HTTP_CONN_CLOSED) {
    if (c->stream && left < HTTP_STREAM_QUEUE_CAP / 2)
      http_stream_wake(c->srv, c->stream);
    if (c->up && c->state == HTTP_CONN_UPGRADED)
      http_session_drained(c);
    if (c->tun)
      http_tunnel_user_drained(c);
    if (c->writes == 0 && c->close_after_write && c->state != HTTP_CONN_LINGER)
      linger(c);
  }
  conn_unref(c);
}

/* Write data (taken); counted is what the poster added to queued. */
static void conn_write(http_conn_t *c, char *data, size_t len, size_t counted) {
  if (c->state == HTTP_CONN_CLOSED || len == 0) {
    free(data);
    atomic_fetch_sub(&c->queued, counted);
    return;
  }
  write_req_t *w = calloc(1, sizeof *w);
  if (!w) {
    free(data);
    atomic_fetch_sub(&c->queued, counted);
    conn_close(c);
    return;
  }
  *w = (write_req_t){.conn = c, .data = data, .counted = counted};
  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  c->writes++;
  c->refs++;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
    free(data);
    free(w);
    atomic_fetch_sub(&c->queued, counted);
    c->writes--;
    c->refs--;
    conn_close(c);
  }
}

static void finish_then_close(http_conn_t *c) {
  c->close_after_write = true;
  uv_timer_stop(&c->timer);
  if (c->writes == 0)
    linger(c);
  else if (c->srv->stopping)
    arm(c, 1000); /* a moment to write what was answered, no more */
  else
    arm(c, c->srv->cfg.request_timeout_ms); /* a client that never reads */
}

/* ---- requests ---------------------------------------------------------------- */

static bool is_path(const http_req_t *r, const char *path) {
  size_t n = strlen(path);
  return strncmp(r->url, path, n) == 0 &&
         (r->url[n] == '\0' || r->url[n] == '?');
}

/* Agents' requests (their session's upgrade, /me/rpc, among them) have a
 * lane of their own, so API load never queues in front of them, nor they
 * in front of the API. Users' upgrades (tunnels) are API requests. */
static bool for_agents(const http_req_t *r) {
  static const char prefix[] = "/api/v2/workspaceagents/me/";
  return strncmp(r->url, prefix, sizeof prefix - 1) == 0;
}

/* A whole request: /healthz here and now, /readyz to the probe lane,
 * agents' requests to theirs, the rest to the workers. The lane holds a
 * reference until its DONE. */
static void dispatch(http_conn_t *c, http_req_t *req) {
  atr_http_server_t *srv = c->srv;
  c->state = HTTP_CONN_BUSY;
  uv_timer_stop(&c->timer);
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->refs++;
  if (is_path(req, "/healthz"))
    http_handle(srv, req, c, c->ip);
  else if (is_path(req, "/readyz"))
    http_lane_push(&srv->probe, req, c);
  else if (for_agents(req))
    http_lane_push(&srv->agents, req, c);
  else
    http_lane_push(&srv->workers, req, c);
}

/* A request the parser refused (400, 413, 431, 501): answered here. */
static void refuse(http_conn_t *c) {
  size_t len = 0;
  char *bytes = http_refuse(c->srv, &c->parse, &len);
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->state = HTTP_CONN_BUSY;
  conn_write(c, bytes, len, 0);
  finish_then_close(c);
}

static void on_request_begun(http_conn_t *c) {
  if (c->state == HTTP_CONN_IDLE && c->parse.req) {
    c->state = HTTP_CONN_HEADERS;
    arm(c, c->srv->cfg.header_timeout_ms);
  }
  if (c->state == HTTP_CONN_HEADERS && c->parse.headers_done) {
    c->state = HTTP_CONN_BODY;
    c->body_deadline = http_now_ms() + (uint64_t)c->srv->cfg.request_timeout_ms;
  }
  if (c->state == HTTP_CONN_BODY) {
    /* each read must come within header_timeout, the whole body within
     * request_timeout */
    int64_t left = (int64_t)(c->body_deadline - http_now_ms());
    int64_t each = c->srv->cfg.header_timeout_ms;
    arm(c, left < each ? left : each);
  }
  if (c->parse.want_continue) {
    c->parse.want_continue = false;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    conn_write(c, strdup(cont), sizeof cont - 1, 0);
  }
}

static void conn_parse(http_conn_t *c, const char *data, size_t len) {
  size_t used = http_parse_feed(&c->parse, data, len);
  if (c->parse.error_status != 0) {
    refuse(c);
    return;
  }
  if (!c->parse.complete) {
    on_request_begun(c);
    return;
  }
  if (used < len) {
    char *rest = malloc(len - used);
    if (!rest) {
      conn_close(c);
      return;
    }
    memcpy(rest, data + used, len - used);
    c->leftover = rest;
    c->leftover_len = len - used;
  }
  dispatch(c, http_parse_take(&c->parse));
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  http_conn_t *c = h->data;
  *buf = uv_buf_init(c->srv->readbuf, sizeof c->srv->readbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  http_conn_t *c = s->data;
  if (n == UV_EOF && c->state == HTTP_CONN_TUNNEL) {
    http_tunnel_user_eof(c); /* half-closed: the agent's side may go on */
    return;
  }
  if (n < 0) {
    conn_close(c);
    return;
  }
  if (n == 0 || c->state == HTTP_CONN_LINGER)
    return;
  if (c->state == HTTP_CONN_TUNNEL) {
    http_tunnel_user_read(c, buf->base, (size_t)n);
    return;
  }
  if (c->state == HTTP_CONN_UPGRADED) {
    http_session_read(c, buf->base, (size_t)n);
    return;
  }
  if (c->state == HTTP_CONN_STREAM)
    return; /* a stream's client has nothing more to say; dropped */
  conn_parse(c, buf->base, (size_t)n);
}

/* Back from a handler with keep-alive: the next pipelined request, else
 * read on. */
static void next_request(http_conn_t *c) {
  enter_idle(c);
  char *rest = c->leftover;
  size_t len = c->leftover_len;
  c->leftover = NULL;
  c->leftover_len = 0;
  if (rest) {
    conn_parse(c, rest, len);
    free(rest);
  }
  if (c->state == HTTP_CONN_IDLE || c->state == HTTP_CONN_HEADERS ||
      c->state == HTTP_CONN_BODY)
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

/* ---- for sessions (http_session.c) --------------------------------------- */

void http_conn_write(http_conn_t *c, char *data, size_t len, size_t counted) {
  conn_write(c, data, len, counted);
}

void http_conn_close(http_conn_t *c) {
  conn_close(c);
}

void http_conn_finish(http_conn_t *c) {
  if (c->state != HTTP_CONN_CLOSED && !c->close_after_write)
    finish_then_close(c);
}

void http_conn_unref(http_conn_t *c) {
  conn_unref(c);
}

void http_conn_shutdown(http_conn_t *c) {
  if (c->state != HTTP_CONN_CLOSED &&
      uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) != 0)
    conn_close(c);
}

void http_conn_read(http_conn_t *c, bool on) {
  if (c->state == HTTP_CONN_CLOSED)
    return;
  if (on)
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
  else
    uv_read_stop((uv_stream_t *)&c->tcp);
}

/* ---- the inbox -------------------------------------------------------------- */

void http_post(atr_http_server_t *srv, http_msg_t *msg) {
  msg->next = NULL;
  pthread_mutex_lock(&srv->inbox_mu);
  if (srv->inbox_tail)
    srv->inbox_tail->next = msg;
  else
    srv->inbox_head = msg;
  srv->inbox_tail = msg;
  pthread_mutex_unlock(&srv->inbox_mu);
  uv_async_send(&srv->inbox_async);
}

/* The answer to a request inside a session, or a connection turning
 * into one: both return the lane's reference. */
static void handle_session_msg(http_msg_t *m) {
  http_conn_t *c = m->conn;
  if (m->kind == HTTP_MSG_UPGRADE) {
    http_session_start(c, m->upgrade, m->data, m->len);
  } else {
    http_session_answer(c, m);
  }
  conn_unref(c);
  free(m);
}

static void handle_msg(atr_http_server_t *srv, http_msg_t *m) {
  http_conn_t *c = m->conn;
  if (m->kind == HTTP_MSG_SESSION) {
    http_session_msg(srv, m);
    return;
  }
  if (m->kind == HTTP_MSG_TUNNEL) {
    http_tunnel_start(c, m->tunnel); /* the reference goes with it */
    free(m);
    return;
  }
  if (m->kind == HTTP_MSG_UPGRADE ||
      (m->kind == HTTP_MSG_DONE && m->stream_id != 0)) {
    handle_session_msg(m);
    return;
  }
  size_t counted = m->kind == HTTP_MSG_DONE ? 0 : m->len;
  conn_write(c, m->data, m->len, counted);
  if (m->kind == HTTP_MSG_DONE) {
    if (c->state != HTTP_CONN_CLOSED) {
      if (m->close)
        finish_then_close(c);
      else
        next_request(c);
    }
    conn_unref(c);
  } else if (m->kind == HTTP_MSG_STREAM) {
    c->stream = m->x;
    if (c->state == HTTP_CONN_CLOSED) {
      http_stream_wake(c->srv, m->x);
    } else {
      c->state = HTTP_CONN_STREAM;
      /* reading again only to see the client leave */
      uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
    }
  } else if (m->kind == HTTP_MSG_END) {
    c->stream = NULL;
    http_exchange_free(m->x);
    if (c->state != HTTP_CONN_CLOSED)
      finish_then_close(c);
    conn_unref(c);
  }
  free(m);
}

static http_msg_t *take_inbox(atr_http_server_t *srv) {
  pthread_mutex_lock(&srv->inbox_mu);
  http_msg_t *m = srv->inbox_head;
  srv->inbox_head = srv->inbox_tail = NULL;
  pthread_mutex_unlock(&srv->inbox_mu);
  return m;
}

static void on_inbox(uv_async_t *a) {
  atr_http_server_t *srv = a->data;
  for (http_msg_t *m = take_inbox(srv), *next; m; m = next) {
    next = m->next;
    handle_msg(srv, m);
  }
}

/* ---- accepting --------------------------------------------------------------- */

static void peer_ip(uv_tcp_t *tcp, char *out, size_t size) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  snprintf(out, size, "-");
  if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) != 0)
    return;
  if (ss.ss_family == AF_INET6)
    uv_ip6_name((struct sockaddr_in6 *)&ss, out, size);
  else
    uv_ip4_name((struct sockaddr_in *)&ss, out, size);
}

static void on_refused_closed(uv_handle_t *h) {
  free(h);
}

static void on_connection(uv_stream_t *server, int status) {
  atr_http_server_t *srv = server->data;
  if (status < 0)
    return; /* out of descriptors: libuv sheds the connection */
  http_conn_t *c = calloc(1, sizeof *c);
  if (!c)
    return;
  uv_tcp_init(&srv->loop, &c->tcp);
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    uv_close((uv_handle_t *)&c->tcp, on_refused_closed);
    return;
  }
  peer_ip(&c->tcp, c->ip, sizeof c->ip);
  bool full =
      srv->cfg.max_connections > 0 && srv->nconns >= srv->cfg.max_connections;
  if (full || !addr_take(srv, c->ip)) {
    http_note_refused(srv, full ? HTTP_REFUSED_MAX : HTTP_REFUSED_PER_ADDRESS,
                      c->ip);
    uv_close((uv_handle_t *)&c->tcp, on_refused_closed); /* c is first */
    return;
  }
  c->srv = srv;
  c->tcp.data = c;
  uv_timer_init(&srv->loop, &c->timer);
  c->timer.data = c;
  c->open_handles = 2;
  uv_tcp_nodelay(&c->tcp, 1);
  http_parse_init(&c->parse, srv->cfg.max_header_size, srv->cfg.max_body_size);
  c->next = srv->conns;
  if (srv->conns)
    srv->conns->prev = c;
  srv->conns = c;
  srv->nconns++;
  http_note_open(srv);
  enter_idle(c);
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
}

/* ---- listening -------------------------------------------------------------- */

/* "host:port", "[v6]:port" or "port" to a socket address. */
static int parse_entry(const char *entry, struct sockaddr_storage *ss) {
  char host[128] = "0.0.0.0";
  const char *colon = strrchr(entry, ':');
  const char *port = colon ? colon + 1 : entry;
  if (colon) {
    size_t n = (size_t)(colon - entry);
    if (entry[0] == '[' && n >= 2 && entry[n - 1] == ']')
      snprintf(host, sizeof host, "%.*s", (int)(n - 2), entry + 1);
    else if (n > 0 && n < sizeof host)
      snprintf(host, sizeof host, "%.*s", (int)n, entry);
    else
      return UV_EINVAL;
  }
  char *end = NULL;
  long p = strtol(port, &end, 10);
  if (!*port || *end || p < 0 || p > 65535)
    return UV_EINVAL;
  if (strchr(host, ':'))
    return uv_ip6_addr(host, (int)p, (struct sockaddr_in6 *)ss);
  return uv_ip4_addr(host, (int)p, (struct sockaddr_in *)ss);
}

static int listen_one(atr_http_server_t *srv, const char *entry) {
  if (srv->nlisteners == (int)(sizeof srv->listeners / sizeof *srv->listeners))
    return UV_EINVAL;
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  int rc = parse_entry(entry, &ss);
  if (rc != 0)
    return rc;
  uv_tcp_t *l = &srv->listeners[srv->nlisteners];
  uv_tcp_init(&srv->loop, l);
  l->data = srv;
  srv->nlisteners++;
  rc = uv_tcp_bind(l, (struct sockaddr *)&ss, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)l, 4096, on_connection);
  return rc;
}

static int listen_all(atr_http_server_t *srv, char **err) {
  char *copy = strdup(srv->address);
  char *save = NULL;
  int rc = copy ? 0 : UV_ENOMEM;
  for (char *e = copy ? strtok_r(copy, ",", &save) : NULL; e && rc == 0;
       e = strtok_r(NULL, ",", &save)) {
    while (*e == ' ')
      e++;
    rc = listen_one(srv, e);
    if (rc != 0 && asprintf(err, "http.address: cannot listen on %s: %s", e,
                            uv_strerror(rc)) < 0)
      *err = NULL;
  }
  free(copy);
  return rc;
}

/* ---- the thread ---------------------------------------------------------------- */

static void on_stop(uv_async_t *a) {
  atr_http_server_t *srv = a->data;
  srv->stopping = true;
  on_inbox(&srv->inbox_async);
  for (int i = 0; i < srv->nlisteners; i++)
    uv_close((uv_handle_t *)&srv->listeners[i], NULL);
  /* answers still being written get a moment (finish_then_close) */
  for (http_conn_t *c = srv->conns, *next; c; c = next) {
    next = c->next;
    if (c->writes > 0 && c->state != HTTP_CONN_CLOSED)
      finish_then_close(c);
    else
      conn_close(c);
  }
  uv_close((uv_handle_t *)&srv->inbox_async, NULL);
  uv_close((uv_handle_t *)&srv->stop_async, NULL);
}

static void *loop_main(void *arg) {
  atr_http_server_t *srv = arg;
  uv_run(&srv->loop, UV_RUN_DEFAULT);
  return NULL;
}

static void close_quietly(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

int http_loop_start(atr_http_server_t *srv, char **err) {
  srv->by_addr_buckets = 4096;
  srv->by_addr = calloc(srv->by_addr_buckets, sizeof *srv->by_addr);
  if (!srv->by_addr || uv_loop_init(&srv->loop) != 0)
    return UV_ENOMEM;
  pthread_mutex_init(&srv->inbox_mu, NULL);
  uv_async_init(&srv->loop, &srv->inbox_async, on_inbox);
  uv_async_init(&srv->loop, &srv->stop_async, on_stop);
  srv->inbox_async.data = srv->stop_async.data = srv;
  int rc = listen_all(srv, err);
  if (rc == 0 && pthread_create(&srv->loop_thread, NULL, loop_main, srv) != 0)
    rc = UV_EAGAIN;
  if (rc != 0) {
    uv_walk(&srv->loop, close_quietly, NULL);
    uv_run(&srv->loop, UV_RUN_DEFAULT);
    uv_loop_close(&srv->loop);
    return rc;
  }
  srv->loop_started = true;
  return 0;
}

void http_loop_stop(atr_http_server_t *srv) {
  if (!srv->loop_started)
    return;
  uv_async_send(&srv->stop_async);
  pthread_join(srv->loop_thread, NULL);
  /* what the lanes handed back after the loop's last look */
  for (http_msg_t *m = take_inbox(srv), *next; m; m = next) {
    next = m->next;
    free(m->data);
    free(m->key);
    free(m->reason);
    http_upgrade_free(m->upgrade);
    if (m->kind == HTTP_MSG_TUNNEL)
      http_tunnel_discard(m->tunnel);
    if (m->kind == HTTP_MSG_END)
      http_exchange_free(m->x);
    if (m->kind == HTTP_MSG_DONE || m->kind == HTTP_MSG_END ||
        m->kind == HTTP_MSG_UPGRADE || m->kind == HTTP_MSG_TUNNEL)
      conn_unref(m->conn);
    free(m);
  }
  uv_walk(&srv->loop, close_quietly, NULL);
  uv_run(&srv->loop, UV_RUN_DEFAULT);
  uv_loop_close(&srv->loop);
  srv->loop_started = false;
}

void http_loop_free(atr_http_server_t *srv) {
  for (size_t i = 0; srv->by_addr && i < srv->by_addr_buckets; i++)
    while (srv->by_addr[i]) {
      http_addr_count_t *next = srv->by_addr[i]->next;
      free(srv->by_addr[i]);
      srv->by_addr[i] = next;
    }
  free(srv->by_addr);
  pthread_mutex_destroy(&srv->inbox_mu);
}
