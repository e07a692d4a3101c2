/* core/agent/agent_conn.c — the agent's connection (agent_conn.h): dial
 * the access URL, ask for the session with an HTTP/1.1 upgrade (the token
 * in Atrium-Session-Token), check the 101 with http-parser, then hand the
 * socket to the session (agent_conn_session.c); PING every heartbeat,
 * and after any failure dial again after a full-jitter backoff
 * (agent_backoff.h).
 *
 * User callbacks may call back into the API (a request from a reply, a
 * stop from on_down): while one runs (c->busy), a stop is only noted and
 * done by settle() once the callback chain has returned, so no state is
 * torn down under a caller's feet. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "agent_conn_internal.h"
#include "atrium/error.h"
#include "ws_accept.h"

#define MAX_HANDSHAKE 16384 /* bytes of the upgrade's answer */
#define LIVED_MS 30000      /* a session this long resets the backoff */
#define REFUSED_MS 60000    /* the wait bound after a 401 */

/* One read's buffer, allocated for the read and freed after it: a
 * thread-local array would be static TLS in every thread of every program
 * linking core/agent (the server's too), and civetweb's small fixed
 * stacks lost 64 KiB to it. */
#define READ_BUF 65536

uint64_t ac_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t ac_now_ms(void) {
  return ac_now_us() / 1000u;
}

void ac_random(void *buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = getrandom((char *)buf + got, len - got, 0);
    if (n <= 0)
      break;
    got += (size_t)n;
  }
  /* getrandom cannot fail once the kernel is seeded; never leave zeros */
  uint64_t x = ac_now_us() | 1;
  for (; got < len; got++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    ((unsigned char *)buf)[got] = (unsigned char)x;
  }
}

static void dial(agent_conn_t *c);
static void do_stop(agent_conn_t *c);
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

/* ---- the end of every handle -------------------------------------------- */

/* Last in every close callback: done may free c. */
static void maybe_done(agent_conn_t *c) {
  if (!c->stopping || c->handles > 0 || c->gai_busy || !c->done)
    return;
  void (*done)(void *) = c->done;
  c->done = NULL;
  done(c->done_ud);
}

static void on_handle_closed(uv_handle_t *h) {
  agent_conn_t *c = h->data;
  if (h == (uv_handle_t *)&c->tcp)
    c->tcp_open = false;
  c->handles--;
  maybe_done(c);
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  agent_conn_t *c = req->data;
  if (!uv_is_closing((uv_handle_t *)&c->tcp))
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* Close the socket, after what is queued was written when it can be. */
static void close_tcp(agent_conn_t *c, bool graceful) {
  if (!c->tcp_open || uv_is_closing((uv_handle_t *)&c->tcp))
    return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->shutdown.data = c;
  if (graceful && c->writes > 0 &&
      uv_shutdown(&c->shutdown, (uv_stream_t *)&c->tcp, on_shutdown) == 0)
    return;
  uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
}

/* A stop asked for inside a callback chain is done once it returned. */
static void settle(agent_conn_t *c) {
  if (c->stopping && c->busy == 0 && c->state != AC_IDLE)
    do_stop(c);
}

/* ---- failures and reconnects ------------------------------------------------- */

static void on_retry(uv_timer_t *t) {
  dial(t->data);
}

static void lost(agent_conn_t *c, int http_status, const char *reason) {
  bool was_up = c->state == AC_UP;
  c->state = AC_CLOSING;
  uv_timer_stop(&c->beat);
  if (c->ws)
    ac_session_free(c); /* replies get status 0 */
  close_tcp(c, was_up);
  if (was_up && !c->stopping)
    c->drops++;
  if (was_up && ac_now_ms() - c->up_ms >= LIVED_MS)
    agent_backoff_reset(&c->backoff);
  if (http_status == 401)
    agent_backoff_raise(&c->backoff, REFUSED_MS);
  if (c->cbs.on_down) {
    c->busy++;
    c->cbs.on_down(c->ud, http_status, reason);
    c->busy--;
  }
  if (c->stopping) {
    c->state = AC_WAITING; /* so settle stops it */
    settle(c);
    return;
  }
  uint32_t r = 0;
  ac_random(&r, sizeof r);
  c->state = AC_WAITING;
  uv_timer_start(&c->retry, on_retry,
                 (uint64_t)agent_backoff_next(&c->backoff, r), 0);
}

static void lostf(agent_conn_t *c, int http_status, const char *fmt,
                  const char *arg) {
  char reason[160];
  snprintf(reason, sizeof reason, fmt, arg);
  lost(c, http_status, reason);
}

/* ---- writing ------------------------------------------------------------------ */

typedef struct write_req {
  uv_write_t req;
  agent_conn_t *c;
  char *data;
  size_t len;
} write_req_t;

static void on_write(uv_write_t *req, int status) {
  write_req_t *w = (write_req_t *)req;
  agent_conn_t *c = w->c;
  c->queued -= w->len;
  c->writes--;
  free(w->data);
  free(w);
  if (status == UV_ECANCELED)
    return;
  if (status < 0 && c->state == AC_UP)
    lostf(c, 0, "cannot write to the server: %s", uv_strerror(status));
  else if (c->state == AC_UP && c->queued < AC_PULL_MARK &&
           ac_session_flush(c) != 0)
    lost(c, 0, "the session failed");
  settle(c);
}

void ac_write(agent_conn_t *c, char *data, size_t len) {
  write_req_t *w = calloc(1, sizeof *w);
  if (!c->tcp_open || !w) {
    free(data);
    free(w);
    return;
  }
  *w = (write_req_t){.c = c, .data = data, .len = len};
  uv_buf_t buf = uv_buf_init(data, (unsigned)len);
  c->queued += len;
  c->writes++;
  if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
    c->queued -= len;
    c->writes--;
    free(data);
    free(w);
    c->failed = true; /* seen at the next heartbeat */
  }
}

/* ---- the session's heartbeat ------------------------------------------------- */

static void on_beat(uv_timer_t *t) {
  agent_conn_t *c = t->data;
  if (c->state != AC_UP)
    return;
  if (c->failed) {
    lost(c, 0, "the session failed");
  } else if (ac_now_ms() - c->last_rx_ms >= 3 * (uint64_t)c->hb_ms) {
    lost(c, 0, "the server went silent (3 heartbeats)");
  } else {
    ac_session_ping(c);
    if (ac_session_flush(c) != 0)
      lost(c, 0, "the session failed");
  }
  settle(c);
}

static void on_dial_timeout(uv_timer_t *t) {
  agent_conn_t *c = t->data;
  lost(c, 0, "timed out dialing the server");
  settle(c);
}

/* ---- the session's bytes ----------------------------------------------------- */

static void session_bytes(agent_conn_t *c, const char *data, size_t len) {
  c->last_rx_ms = ac_now_ms();
  int rc = ac_session_feed(c, data, len);
  if (c->state != AC_UP)
    return; /* a callback stopped it */
  if (ac_session_flush(c) != 0 || rc != 0)
    lost(c, 0, "protocol error in the session");
  else if (ac_session_over(c))
    lost(c, 0, "the server ended the session");
}

static void session_up(agent_conn_t *c, const char *rest, size_t len) {
  uv_timer_stop(&c->beat);
  if (ac_session_open(c) != 0) {
    lost(c, 0, "cannot start the session: out of memory");
    return;
  }
  c->state = AC_UP;
  c->sessions++;
  c->up_ms = c->last_rx_ms = ac_now_ms();
  uv_timer_start(&c->beat, on_beat, (uint64_t)c->hb_ms, (uint64_t)c->hb_ms);
  if (c->cbs.on_up) {
    c->busy++;
    c->cbs.on_up(c->ud);
    c->busy--;
  }
  if (c->state != AC_UP)
    return;
  if (len > 0)
    session_bytes(c, rest, len);
  else if (ac_session_flush(c) != 0)
    lost(c, 0, "the session failed");
}

/* ---- the upgrade's answer ---------------------------------------------------- */

static int on_hfield(http_parser *p, const char *at, size_t n) {
  agent_conn_t *c = p->data;
  if (c->hvalue) {
    c->hname_len = 0;
    c->hvalue = false;
  }
  size_t room = sizeof c->hname - 1 - c->hname_len;
  size_t k = n < room ? n : room;
  memcpy(c->hname + c->hname_len, at, k);
  c->hname_len += k;
  c->hname[c->hname_len] = '\0';
  return 0;
}

static void append(char *dst, size_t size, const char *at, size_t n) {
  size_t len = strlen(dst);
  size_t k = n < size - 1 - len ? n : size - 1 - len;
  memcpy(dst + len, at, k);
  dst[len + k] = '\0';
}

static int on_hvalue(http_parser *p, const char *at, size_t n) {
  agent_conn_t *c = p->data;
  if (!c->hvalue) {
    c->hvalue = true;
    c->hwhich = strcasecmp(c->hname, "Sec-WebSocket-Accept") == 0     ? 1
                : strcasecmp(c->hname, "Sec-WebSocket-Protocol") == 0 ? 2
                                                                      : 0;
  }
  if (c->hwhich == 1)
    append(c->accept, sizeof c->accept, at, n);
  else if (c->hwhich == 2)
    append(c->proto, sizeof c->proto, at, n);
  return 0;
}

static int on_hdone(http_parser *p) {
  agent_conn_t *c = p->data;
  c->status = p->status_code;
  c->hdone = true;
  return 0;
}

static const http_parser_settings answer_settings = {
    .on_header_field = on_hfield,
    .on_header_value = on_hvalue,
    .on_headers_complete = on_hdone,
};

static void handshake_bytes(agent_conn_t *c, const char *data, size_t len) {
  size_t used = http_parser_execute(&c->hp, &answer_settings, data, len);
  c->hbytes += used;
  enum http_errno e = HTTP_PARSER_ERRNO(&c->hp);
  if (e != HPE_OK && !c->hdone) {
    lostf(c, 0, "bad answer to the session request: %s",
          http_errno_description(e));
  } else if (!c->hdone) {
    if (c->hbytes > MAX_HANDSHAKE)
      lost(c, 0, "the answer to the session request is too large");
  } else if (c->status != 101) {
    char reason[96];
    snprintf(reason, sizeof reason, "the server refused the session: HTTP %d",
             c->status);
    lost(c, c->status, reason);
  } else if (strcmp(c->accept, c->expect) != 0 ||
             strcmp(c->proto, AC_PROTOCOL) != 0) {
    lost(c, 0, "the server's 101 does not match the request");
  } else {
    session_up(c, data + used, len - used);
  }
}

/* ---- dialing ------------------------------------------------------------------ */

static int send_upgrade(agent_conn_t *c) {
  unsigned char nonce[16];
  char key[25];
  ac_random(nonce, sizeof nonce);
  EVP_EncodeBlock((unsigned char *)key, nonce, sizeof nonce);
  atr_ws_accept(key, c->expect);
  char *req = NULL;
  int n =
      asprintf(&req,
               "GET %s/api/v2/workspaceagents/me/rpc?version=%s HTTP/1.1\r\n"
               "Host: %s\r\n"
               "Upgrade: websocket\r\n"
               "Connection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: %s\r\n"
               "Atrium-Session-Token: %s\r\n"
               "User-Agent: atrium-agent/%s\r\n\r\n",
               c->prefix, c->version, c->authority, key, AC_PROTOCOL, c->token,
               c->version);
  if (n < 0)
    return -1;
  http_parser_init(&c->hp, HTTP_RESPONSE);
  c->hp.data = c;
  c->hname_len = c->hbytes = 0;
  c->hname[0] = c->accept[0] = c->proto[0] = '\0';
  c->hvalue = c->hdone = false;
  c->status = 0;
  c->state = AC_UPGRADING;
  ac_write(c, req, (size_t)n); /* the token goes to the socket only */
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = malloc(READ_BUF);
  buf->len = buf->base ? READ_BUF : 0; /* 0: libuv reports UV_ENOBUFS */
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  agent_conn_t *c = s->data;
  if (n < 0 && (c->state == AC_UP || c->state == AC_UPGRADING))
    lostf(c, 0, "the connection to the server ended: %s",
          n == UV_EOF ? "closed by the server" : uv_strerror((int)n));
  else if (n > 0 && c->state == AC_UPGRADING)
    handshake_bytes(c, buf->base, (size_t)n);
  else if (n > 0 && c->state == AC_UP)
    session_bytes(c, buf->base, (size_t)n);
  free(buf->base);
  settle(c);
}

static void on_connected(uv_connect_t *req, int status) {
  agent_conn_t *c = req->data;
  if (status == UV_ECANCELED || c->state != AC_DIALING)
    return;
  if (status < 0)
    lostf(c, 0, "cannot connect to the server: %s", uv_strerror(status));
  else if (send_upgrade(c) != 0)
    lost(c, 0, "out of memory");
  else
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
  settle(c);
}

static int bind_local(agent_conn_t *c) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (uv_ip4_addr(c->bind_ip, 0, (struct sockaddr_in *)&ss) != 0 &&
      uv_ip6_addr(c->bind_ip, 0, (struct sockaddr_in6 *)&ss) != 0)
    return UV_EINVAL;
  return uv_tcp_bind(&c->tcp, (struct sockaddr *)&ss, 0);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  agent_conn_t *c = req->data;
  c->gai_busy = false;
  if (c->stopping || status < 0) {
    uv_freeaddrinfo(res);
    if (c->stopping)
      maybe_done(c); /* last: may free c */
    else
      lostf(c, 0, "cannot resolve the server's host: %s", uv_strerror(status));
    return;
  }
  uv_tcp_init(c->loop, &c->tcp);
  /* Small frames (PINGs, reports) must not wait for the peer's delayed
   * ACK: without this an idle PING took 40 ms. */
  uv_tcp_nodelay(&c->tcp, 1);
  c->tcp.data = c;
  c->tcp_open = true;
  c->handles++;
  c->connect.data = c;
  c->state = AC_DIALING;
  int rc = c->bind_ip ? bind_local(c) : 0;
  if (rc == 0)
    rc = uv_tcp_connect(&c->connect, &c->tcp, res->ai_addr, on_connected);
  uv_freeaddrinfo(res);
  if (rc != 0) {
    lostf(c, 0, "cannot connect to the server: %s", uv_strerror(rc));
    return;
  }
  uint64_t limit = 3 * (uint64_t)c->hb_ms;
  uv_timer_start(&c->beat, on_dial_timeout, limit < 10000 ? 10000 : limit, 0);
}

static void dial(agent_conn_t *c) {
  if (c->stopping)
    return;
  if (c->tcp_open) { /* the last socket is still closing */
    uv_timer_start(&c->retry, on_retry, 10, 0);
    return;
  }
  c->state = AC_RESOLVING;
  c->gai.data = c;
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  int rc =
      uv_getaddrinfo(c->loop, &c->gai, on_resolved, c->host, c->port, &hints);
  if (rc != 0)
    lostf(c, 0, "cannot resolve the server's host: %s", uv_strerror(rc));
  else
    c->gai_busy = true;
}

/* ---- the access URL -------------------------------------------------------------- */

static int parse_url(agent_conn_t *c, const char *url, char **err) {
  if (strncasecmp(url, "https://", 8) == 0) {
    *err = strdup("https access URLs are not supported by the agent yet");
    return ATR_ENOTSUP;
  }
  const char *p = strncasecmp(url, "http://", 7) == 0 ? url + 7 : NULL;
  size_t hlen = p ? strcspn(p, "/?#") : 0;
  const char *port = NULL;
  if (p && *p == '[') { /* [v6]:port */
    const char *close = memchr(p, ']', hlen);
    port = close && close + 1 < p + hlen && close[1] == ':' ? close + 2 : NULL;
    if (close)
      snprintf(c->host, sizeof c->host, "%.*s", (int)(close - p - 1), p + 1);
  } else if (p) {
    const char *colon = memchr(p, ':', hlen);
    port = colon ? colon + 1 : NULL;
    snprintf(c->host, sizeof c->host, "%.*s",
             (int)(colon ? (size_t)(colon - p) : hlen), p);
  }
  size_t plen = port ? (size_t)(p + hlen - port) : 0;
  if (!p || !c->host[0] || hlen >= sizeof c->host || plen >= sizeof c->port ||
      (port && (plen == 0 || strspn(port, "0123456789") < plen))) {
    if (asprintf(err, "the access URL %s is not http://host[:port][/path]",
                 url) < 0)
      *err = NULL;
    return ATR_EINVAL;
  }
  snprintf(c->port, sizeof c->port, "%.*s", (int)plen, port ? port : "");
  if (!port)
    snprintf(c->port, sizeof c->port, "80");
  snprintf(c->authority, sizeof c->authority, "%.*s", (int)hlen, p);
  const char *path = p + hlen;
  size_t path_len = strcspn(path, "?#");
  while (path_len > 0 && path[path_len - 1] == '/')
    path_len--;
  c->prefix = strndup(path, path_len);
  return c->prefix ? 0 : ATR_ENOMEM;
}

/* ---- the API ------------------------------------------------------------------ */

/* Goes into a request header: no way to end it early. */
static bool header_safe(const char *s) {
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p <= ' ' || *p >= 127)
      return false;
  return true;
}

int agent_conn_new(uv_loop_t *loop, const agent_conn_opts_t *opts,
                   const agent_conn_cbs_t *cbs, void *ud, agent_conn_t **out,
                   char **err) {
  *err = NULL;
  *out = NULL;
  if (!opts->url || !opts->token || !*opts->token) {
    *err = strdup("the agent needs an access URL and a token");
    return ATR_EINVAL;
  }
  if (!header_safe(opts->token) ||
      (opts->version && !header_safe(opts->version)) ||
      (opts->version &&
       strcspn(opts->version, " ?&#%") != strlen(opts->version))) {
    *err = strdup("the agent token and version must be printable ASCII "
                  "without spaces");
    return ATR_EINVAL;
  }
  agent_conn_t *c = calloc(1, sizeof *c);
  if (!c)
    return ATR_ENOMEM;
  int rc = parse_url(c, opts->url, err);
  c->url = strdup(opts->url);
  c->token = strdup(opts->token);
  c->version = strdup(opts->version && *opts->version ? opts->version : "1.0");
  c->bind_ip = opts->bind_ip ? strdup(opts->bind_ip) : NULL;
  if (rc == 0 &&
      (!c->url || !c->token || !c->version || (opts->bind_ip && !c->bind_ip)))
    rc = ATR_ENOMEM;
  if (rc != 0) {
    agent_conn_free(c);
    return rc;
  }
  c->loop = loop;
  if (cbs)
    c->cbs = *cbs;
  c->ud = ud;
  c->hb_ms = opts->heartbeat_ms > 0 ? opts->heartbeat_ms : 15000;
  agent_backoff_init(&c->backoff,
                     opts->backoff_min_ms > 0 ? opts->backoff_min_ms : 500,
                     opts->backoff_max_ms > 0 ? opts->backoff_max_ms : 10000);
  uv_timer_init(loop, &c->retry);
  uv_timer_init(loop, &c->beat);
  c->retry.data = c->beat.data = c;
  c->handles = 2;
  *out = c;
  return 0;
}

void agent_conn_start(agent_conn_t *c) {
  if (c->started || c->stopping)
    return;
  c->started = true;
  dial(c);
}

bool agent_conn_up(const agent_conn_t *c) {
  return c->state == AC_UP && !c->stopping;
}

int agent_conn_request(agent_conn_t *c, const char *method, const char *path,
                       const char *json_body, agent_conn_reply_fn reply,
                       void *reply_ud) {
  if (!agent_conn_up(c))
    return ATR_EAGAIN;
  agent_req_t *r = calloc(1, sizeof *r);
  if (!r)
    return ATR_ENOMEM;
  r->reply = reply;
  r->reply_ud = reply_ud;
  r->method = strdup(method);
  r->body = json_body ? strdup(json_body) : NULL;
  r->body_len = json_body ? strlen(json_body) : 0;
  if (asprintf(&r->path, "%s%s", c->prefix, path) < 0)
    r->path = NULL;
  if (!r->method || !r->path || (json_body && !r->body) ||
      ac_session_submit(c, r) != 0) {
    ac_req_free(r);
    return ATR_ENOMEM;
  }
  ac_kick(c);
  return 0;
}

void ac_kick(agent_conn_t *c) {
  if (c->state == AC_UP && c->busy == 0 && ac_session_flush(c) != 0)
    c->failed = true; /* the heartbeat ends the session */
}

static void do_stop(agent_conn_t *c) {
  int was = c->state;
  c->state = AC_IDLE;
  uv_timer_stop(&c->retry);
  uv_timer_stop(&c->beat);
  if (c->gai_busy)
    uv_cancel((uv_req_t *)&c->gai);
  if (was == AC_UP) {
    ac_session_close(c);
    (void)ac_session_flush(c);
  }
  if (c->ws)
    ac_session_free(c); /* replies get status 0 */
  close_tcp(c, was == AC_UP);
  uv_close((uv_handle_t *)&c->retry, on_handle_closed);
  uv_close((uv_handle_t *)&c->beat, on_handle_closed);
}

void agent_conn_stop(agent_conn_t *c, void (*done)(void *), void *ud) {
  if (c->stopping)
    return;
  c->stopping = true;
  c->done = done;
  c->done_ud = ud;
  if (c->state == AC_IDLE)
    c->state = AC_WAITING; /* never started: settle closes the timers */
  settle(c);
}

void agent_conn_free(agent_conn_t *c) {
  if (!c)
    return;
  free(c->url);
  free(c->token);
  free(c->version);
  free(c->bind_ip);
  free(c->prefix);
  free(c);
}

int64_t agent_conn_ping_us(const agent_conn_t *c) {
  return c->ping_us;
}

uint64_t agent_conn_sessions(const agent_conn_t *c) {
  return c->sessions;
}

uint64_t agent_conn_drops(const agent_conn_t *c) {
  return c->drops;
}
