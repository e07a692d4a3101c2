/* core/agent/agent_tunnel.c — tunnels on the agent's side
 * (agent_tunnel.h): check an open event, make the local end (dial, or a
 * socketpair handed to a kind's handler), open the stream, splice.
 *
 * A tunnel lives until its stream is over and its local handle closed:
 *
 *   local bytes  -> agent_stream_write; reads stop at AGENT_STREAM_MARK
 *                   queued and go on at on_room
 *   local EOF    -> agent_stream_end (END_STREAM)
 *   answer bytes -> written to the local socket; consumed (the stream's
 *                   window opens again) once written, so at most one
 *                   window (64 KiB) waits here
 *   answer END   -> uv_shutdown of the local socket (after its writes)
 *   reset, a lost session, a local error -> the local socket is closed
 *
 * The tunnel's memory is freed in its handle's close callback (or at
 * once when it never had one), so write and shutdown callbacks, which
 * libuv runs before that, always find it. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_tunnel.h"
#include "atrium/error.h"
#include "log.h"
#include "uuid_text.h"

#define READ_SIZE 16384
#define APP_HOSTS_MAX 32
#define HOST_MAX 253
#define COMMAND_MAX 4096
#define TERM_MAX 1000
#define TUNNELS_PATH "/api/v2/workspaceagents/me/tunnels/"
#define DEFAULT_HOST "127.0.0.1"

typedef struct kind {
  char name[17];
  agent_tunnel_kind_fn fn;
  void *ud;
} kind_t;

typedef struct tunnel tunnel_t;

struct agent_tunnels {
  uv_loop_t *loop;
  agent_conn_t *conn;
  kind_t kinds[AGENT_TUNNEL_KINDS_MAX];
  size_t nkinds;
  char hosts[APP_HOSTS_MAX][HOST_MAX + 1]; /* lower case */
  size_t nhosts;
  tunnel_t *head;
  int count;
  bool closing;
  void (*done)(void *);
  void *done_ud;
  uint64_t to_user, from_user;
};

struct tunnel {
  tunnel_t *prev, *next;
  agent_tunnels_t *ts;
  agent_tunnel_open_t o;
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  bool handle_open; /* u was initialized; closed before the tunnel goes */
  bool dead;        /* torn down: freed once its handle closed */
  uv_getaddrinfo_t gai;
  bool gai_busy;
  struct addrinfo *ai, *ai_next; /* tcp: addresses left to try */
  int dial_err;
  uv_connect_t connect;
  uv_shutdown_t shut;
  agent_stream_t *s;
  bool reading, read_eof, shut_asked, shut_done;
  int writes;
};

/* ---- checks ---------------------------------------------------------- */

static bool is_kind_name(const char *s) {
  size_t n = strlen(s);
  return n >= 1 && n <= 16 &&
         strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* Host names and addresses (v6 without brackets): nothing that could
 * reach a header or a log line as anything else. */
static bool is_host(const char *s) {
  size_t n = strlen(s);
  return n >= 1 && n <= HOST_MAX &&
         strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789.-:") == n;
}

static const kind_t *find_kind(const agent_tunnels_t *t, const char *name) {
  for (size_t i = 0; i < t->nkinds; i++)
    if (strcmp(t->kinds[i].name, name) == 0)
      return &t->kinds[i];
  return NULL;
}

static bool host_allowed(const agent_tunnels_t *t, const char *host) {
  if (strcmp(host, DEFAULT_HOST) == 0)
    return true;
  for (size_t i = 0; i < t->nhosts; i++)
    if (strcasecmp(t->hosts[i], host) == 0)
      return true;
  return false;
}

static int failf(char **err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int failf(char **err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(err, fmt, ap) < 0)
    *err = NULL;
  va_end(ap);
  return ATR_EINVAL;
}

/* An integer field in [lo, hi]; the error names it and the bounds. */
static int int_field(const json_t *ev, const char *name, int lo, int hi,
                     int *out, char **err) {
  const json_t *v = json_object_get(ev, name);
  if (!json_is_integer(v))
    return failf(err, "\"%s\" must be an integer from %d to %d", name, lo, hi);
  json_int_t n = json_integer_value(v);
  if (n < lo || n > hi)
    return failf(err, "\"%s\" must be an integer from %d to %d, not %lld", name,
                 lo, hi, (long long)n);
  *out = (int)n;
  return 0;
}

static int check_tcp(const agent_tunnels_t *t, const json_t *ev,
                     agent_tunnel_open_t *out, char **err) {
  if (int_field(ev, "port", 1, 65535, &out->port, err) != 0)
    return ATR_EINVAL;
  const json_t *h = json_object_get(ev, "host");
  const char *host = json_string_value(h);
  if (!h || json_is_null(h))
    host = DEFAULT_HOST;
  else if (!host || !is_host(host))
    return failf(err, "\"host\" must be a host name or an IP address");
  if (!host_allowed(t, host))
    return failf(err,
                 "host \"%s\" is not allowed: a tcp tunnel reaches %s or a "
                 "host an app's url names",
                 host, DEFAULT_HOST);
  snprintf(out->host, sizeof out->host, "%s", host);
  return 0;
}

static int check_pty(const json_t *ev, char **err) {
  const char *rc = json_string_value(json_object_get(ev, "reconnect"));
  if (!rc || !atr_uuid_valid(rc))
    return failf(err, "\"reconnect\" must be a UUID");
  int n;
  if (int_field(ev, "width", 1, TERM_MAX, &n, err) != 0 ||
      int_field(ev, "height", 1, TERM_MAX, &n, err) != 0)
    return ATR_EINVAL;
  const json_t *cmd = json_object_get(ev, "command");
  if (cmd && !json_is_null(cmd) &&
      (!json_is_string(cmd) || json_string_length(cmd) > COMMAND_MAX ||
       strlen(json_string_value(cmd)) != json_string_length(cmd)))
    return failf(err, "\"command\" must be a string of at most %d bytes",
                 COMMAND_MAX);
  return 0;
}

int agent_tunnels_check(const agent_tunnels_t *t, const json_t *ev,
                        agent_tunnel_open_t *out, char **err) {
  *err = NULL;
  memset(out, 0, sizeof *out);
  const char *id = json_string_value(json_object_get(ev, "id"));
  if (!id || !atr_uuid_valid(id))
    return failf(err, "\"id\" must be a UUID");
  snprintf(out->id, sizeof out->id, "%s", id);
  const char *kind = json_string_value(json_object_get(ev, "kind"));
  if (!kind || !is_kind_name(kind))
    return failf(err, "\"kind\" must be one of tcp, ssh, pty");
  if (strcmp(kind, "tcp") != 0 && !find_kind(t, kind)) {
    if (strcmp(kind, "ssh") == 0 || strcmp(kind, "pty") == 0)
      return failf(err, "this agent cannot serve %s tunnels now", kind);
    return failf(err, "unknown tunnel kind \"%s\" (tcp, ssh, pty)", kind);
  }
  snprintf(out->kind, sizeof out->kind, "%s", kind);
  if (strcmp(kind, "tcp") == 0)
    return check_tcp(t, ev, out, err);
  if (strcmp(kind, "pty") == 0)
    return check_pty(ev, err);
  return 0;
}

/* ---- the set --------------------------------------------------------- */

agent_tunnels_t *agent_tunnels_new(uv_loop_t *loop, agent_conn_t *conn) {
  agent_tunnels_t *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->loop = loop;
  t->conn = conn;
  return t;
}

int agent_tunnels_register(agent_tunnels_t *t, const char *kind,
                           agent_tunnel_kind_fn fn, void *ud) {
  if (!kind || !is_kind_name(kind) || strcmp(kind, "tcp") == 0 || !fn)
    return ATR_EINVAL;
  kind_t *k = (kind_t *)find_kind(t, kind);
  if (!k) {
    if (t->nkinds == AGENT_TUNNEL_KINDS_MAX)
      return ATR_ERANGE;
    k = &t->kinds[t->nkinds++];
    snprintf(k->name, sizeof k->name, "%s", kind);
  }
  k->fn = fn;
  k->ud = ud;
  return 0;
}

/* The host of an http(s) URL, lower case; false when there is none. */
static bool url_host(const char *url, char *out, size_t size) {
  const char *p = NULL;
  if (strncasecmp(url, "http://", 7) == 0)
    p = url + 7;
  else if (strncasecmp(url, "https://", 8) == 0)
    p = url + 8;
  if (!p)
    return false;
  size_t alen = strcspn(p, "/?#");
  const char *at = memchr(p, '@', alen); /* userinfo: not part of the host */
  if (at) {
    alen -= (size_t)(at + 1 - p);
    p = at + 1;
  }
  size_t hlen;
  if (*p == '[') {
    const char *close = memchr(p, ']', alen);
    if (!close)
      return false;
    p++;
    hlen = (size_t)(close - p);
  } else {
    const char *colon = memchr(p, ':', alen);
    hlen = colon ? (size_t)(colon - p) : alen;
  }
  if (hlen == 0 || hlen >= size)
    return false;
  for (size_t i = 0; i < hlen; i++)
    out[i] = (char)tolower((unsigned char)p[i]);
  out[hlen] = '\0';
  return is_host(out);
}

void agent_tunnels_set_apps(agent_tunnels_t *t, const json_t *apps) {
  if (!t)
    return;
  t->nhosts = 0;
  size_t i;
  const json_t *app;
  json_array_foreach((json_t *)apps, i, app) {
    const char *url = json_string_value(json_object_get(app, "url"));
    char host[HOST_MAX + 1];
    if (!url || !url_host(url, host, sizeof host))
      continue;
    bool seen = false;
    for (size_t k = 0; k < t->nhosts && !seen; k++)
      seen = strcmp(t->hosts[k], host) == 0;
    if (!seen && t->nhosts < APP_HOSTS_MAX)
      memcpy(t->hosts[t->nhosts++], host, sizeof host);
  }
}

int agent_tunnels_count(const agent_tunnels_t *t) {
  return t ? t->count : 0;
}

void agent_tunnels_take_bytes(agent_tunnels_t *t, uint64_t *to_user,
                              uint64_t *from_user) {
  *to_user = t ? t->to_user : 0;
  *from_user = t ? t->from_user : 0;
  if (t)
    t->to_user = t->from_user = 0;
}

/* ---- a tunnel's end ---------------------------------------------------- */

static void tunnel_free(tunnel_t *t) {
  agent_tunnels_t *ts = t->ts;
  if (t->prev)
    t->prev->next = t->next;
  else
    ts->head = t->next;
  if (t->next)
    t->next->prev = t->prev;
  if (t->ai)
    uv_freeaddrinfo(t->ai);
  free(t);
  ts->count--;
  if (ts->closing && ts->count == 0 && ts->done) {
    void (*done)(void *) = ts->done;
    ts->done = NULL;
    done(ts->done_ud);
  }
}

static void connect_next(tunnel_t *t);

static void on_local_closed(uv_handle_t *h) {
  tunnel_t *t = h->data;
  t->handle_open = false;
  if (t->dead)
    tunnel_free(t);
  else
    connect_next(t); /* a dial failed: the next address */
}

/* End the tunnel now: reset the stream, close the local socket. */
static void teardown(tunnel_t *t) {
  if (t->dead)
    return; /* its handle is closing, or its resolve being cancelled */
  t->dead = true;
  if (t->s) {
    agent_stream_t *s = t->s;
    t->s = NULL;
    agent_stream_reset(s);
  }
  if (t->gai_busy) {
    uv_cancel((uv_req_t *)&t->gai); /* its callback frees */
  } else if (t->handle_open) {
    if (!uv_is_closing(&t->u.h))
      uv_close(&t->u.h, on_local_closed);
  } else {
    tunnel_free(t);
  }
}

/* One line for a header: printable ASCII, bounded. */
static void header_line(const char *msg, char *out, size_t size) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)msg; *p && n + 1 < size;
       p++)
    out[n++] = *p >= 0x20 && *p < 0x7f ? (char)*p : ' ';
  out[n] = '\0';
}

/* Tell the server this tunnel will not be (headers with the error and
 * END_STREAM), so the user hears why at once instead of a timeout. */
static void send_error(agent_tunnels_t *ts, const char *id, const char *kind,
                       const char *msg) {
  atr_log(ATR_LOG_WARN, "agent", "tunnel %s (%s) refused: %s",
          id[0] ? id : "(no id)", kind[0] ? kind : "?", msg);
  if (!id[0] || !ts->conn)
    return;
  char line[256], path[96];
  header_line(msg, line, sizeof line);
  snprintf(path, sizeof path, TUNNELS_PATH "%s", id);
  agent_conn_header_t h = {AGENT_TUNNEL_ERROR_HEADER, line};
  if (agent_conn_stream_open(ts->conn, path, &h, 1, true, NULL, NULL, NULL) !=
      0)
    atr_log(ATR_LOG_WARN, "agent",
            "tunnel %s: the session is gone; the server times it out", id);
}

static void refusef(tunnel_t *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void refusef(tunnel_t *t, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  send_error(t->ts, t->o.id, t->o.kind, msg);
  teardown(t);
}

/* Both ways ended and the stream is over: close the local socket. */
static void maybe_over(tunnel_t *t) {
  if (!t->s && t->read_eof && t->shut_done && !t->dead) {
    atr_log(ATR_LOG_DEBUG, "agent", "tunnel %s (%s) closed", t->o.id,
            t->o.kind);
    teardown(t);
  }
}

/* ---- splicing ----------------------------------------------------------- */

typedef struct local_write {
  uv_write_t req;
  tunnel_t *t;
  size_t len;
  char data[];
} local_write_t;

static void on_local_write(uv_write_t *req, int status) {
  local_write_t *w = (local_write_t *)req;
  tunnel_t *t = w->t;
  size_t len = w->len;
  free(w);
  t->writes--;
  if (status == 0 && t->s)
    agent_stream_consume(t->s, len); /* the server may send as much more */
  else if (status < 0 && status != UV_ECANCELED)
    teardown(t);
}

static void on_s_data(void *ud, const char *data, size_t len) {
  tunnel_t *t = ud;
  t->ts->from_user += len;
  size_t done = 0;
  if (t->writes == 0) { /* nothing queued: try at once, saves a copy */
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write(&t->u.s, &b, 1);
    if (n < 0 && n != UV_EAGAIN) {
      teardown(t);
      return;
    }
    done = n > 0 ? (size_t)n : 0;
    if (done > 0)
      agent_stream_consume(t->s, done);
    if (done == len)
      return;
  }
  local_write_t *w = malloc(sizeof *w + (len - done));
  if (!w) {
    teardown(t);
    return;
  }
  w->t = t;
  w->len = len - done;
  memcpy(w->data, data + done, w->len);
  uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
  if (uv_write(&w->req, &t->u.s, &b, 1, on_local_write) != 0) {
    free(w);
    teardown(t);
    return;
  }
  t->writes++;
}

static void on_shutdown(uv_shutdown_t *req, int status) {
  tunnel_t *t = req->data;
  t->shut_done = true;
  if (status < 0 && status != UV_ECANCELED)
    teardown(t);
  else
    maybe_over(t);
}

static void on_s_end(void *ud) {
  tunnel_t *t = ud;
  if (t->shut_asked || t->dead)
    return;
  t->shut_asked = true;
  t->shut.data = t;
  /* libuv shuts down once the queued writes went out */
  if (uv_shutdown(&t->shut, &t->u.s, on_shutdown) != 0)
    teardown(t);
}

static void on_s_status(void *ud, int status) {
  tunnel_t *t = ud;
  if (status != 200) {
    atr_log(ATR_LOG_WARN, "agent", "tunnel %s: the server answered HTTP %d",
            t->o.id, status);
    teardown(t);
  }
}

static void on_s_close(void *ud, bool error) {
  tunnel_t *t = ud;
  t->s = NULL;
  if (error) {
    atr_log(ATR_LOG_DEBUG, "agent", "tunnel %s (%s) reset", t->o.id, t->o.kind);
    teardown(t);
  } else {
    maybe_over(t);
  }
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)h;
  (void)suggested;
  buf->base = malloc(READ_SIZE);
  buf->len = buf->base ? READ_SIZE : 0;
}

static void on_local_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  tunnel_t *t = st->data;
  if (n > 0 && t->s) {
    t->ts->to_user += (uint64_t)n;
    if (agent_stream_write(t->s, buf->base, (size_t)n) != 0)
      teardown(t);
    else if (agent_stream_pending(t->s) >= AGENT_STREAM_MARK) {
      uv_read_stop(st); /* on_room reads again */
      t->reading = false;
    }
  } else if (n == UV_EOF) {
    uv_read_stop(st);
    t->reading = false;
    t->read_eof = true;
    if (t->s)
      agent_stream_end(t->s);
    maybe_over(t);
  } else if (n < 0) {
    teardown(t);
  }
  free(buf->base);
}

static void on_s_room(void *ud) {
  tunnel_t *t = ud;
  if (!t->reading && !t->read_eof && !t->dead &&
      uv_read_start(&t->u.s, alloc_cb, on_local_read) == 0)
    t->reading = true;
}

/* The local end is ready: open the stream and splice. */
static void ready(tunnel_t *t) {
  static const agent_stream_cbs_t cbs = {.on_status = on_s_status,
                                         .on_data = on_s_data,
                                         .on_end = on_s_end,
                                         .on_room = on_s_room,
                                         .on_close = on_s_close};
  char path[96];
  snprintf(path, sizeof path, TUNNELS_PATH "%s", t->o.id);
  int rc = t->ts->conn ? agent_conn_stream_open(t->ts->conn, path, NULL, 0,
                                                false, &cbs, t, &t->s)
                       : ATR_EAGAIN;
  if (rc != 0) {
    atr_log(ATR_LOG_WARN, "agent", "tunnel %s: cannot open its stream: %s",
            t->o.id, atr_strerror(rc));
    teardown(t);
    return;
  }
  atr_log(ATR_LOG_DEBUG, "agent", "tunnel %s (%s) open", t->o.id, t->o.kind);
  t->u.h.data = t;
  on_s_room(t);
}

/* ---- making the local end ---------------------------------------------- */

static void on_connected(uv_connect_t *req, int status) {
  tunnel_t *t = req->data;
  if (t->dead || status == UV_ECANCELED)
    return;
  if (status == 0) {
    ready(t);
    return;
  }
  t->dial_err = status;
  uv_close(&t->u.h, on_local_closed); /* then the next address */
}

/* Dial the next address left, or refuse with the last error. */
static void connect_next(tunnel_t *t) {
  while (t->ai_next) {
    const struct addrinfo *ai = t->ai_next;
    t->ai_next = ai->ai_next;
    if (uv_tcp_init(t->ts->loop, &t->u.tcp) != 0)
      break;
    t->handle_open = true;
    t->u.h.data = t;
    uv_tcp_nodelay(&t->u.tcp, 1);
    t->connect.data = t;
    int rc = uv_tcp_connect(&t->connect, &t->u.tcp, ai->ai_addr, on_connected);
    if (rc == 0)
      return;
    t->dial_err = rc;
    uv_close(&t->u.h, on_local_closed);
    return;
  }
  refusef(t, "cannot connect to %s:%d: %s", t->o.host, t->o.port,
          uv_strerror(t->dial_err ? t->dial_err : UV_EADDRNOTAVAIL));
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  tunnel_t *t = req->data;
  t->gai_busy = false;
  if (t->dead) {
    uv_freeaddrinfo(res);
    tunnel_free(t);
    return;
  }
  if (status < 0) {
    uv_freeaddrinfo(res);
    refusef(t, "cannot resolve %s: %s", t->o.host, uv_strerror(status));
    return;
  }
  t->ai = t->ai_next = res;
  connect_next(t);
}

static void dial_tcp(tunnel_t *t) {
  char port[8];
  snprintf(port, sizeof port, "%d", t->o.port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC,
                           .ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICSERV};
  t->gai.data = t;
  int rc = uv_getaddrinfo(t->ts->loop, &t->gai, on_resolved, t->o.host, port,
                          &hints);
  if (rc != 0)
    refusef(t, "cannot resolve %s: %s", t->o.host, uv_strerror(rc));
  else
    t->gai_busy = true;
}

/* ssh, pty, ...: one end of a socketpair to the handler, ours spliced. */
static void serve_kind(tunnel_t *t, const kind_t *k, const json_t *ev) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    refusef(t, "cannot make a socket pair: %s", strerror(errno));
    return;
  }
  char *err = NULL;
  if (k->fn(k->ud, sv[0], ev, &err) != 0) { /* it took sv[0] */
    close(sv[1]);
    refusef(t, "%s", err ? err : "the agent could not serve it");
    free(err);
    return;
  }
  free(err);
  uv_pipe_init(t->ts->loop, &t->u.pipe, 0);
  t->handle_open = true;
  t->u.h.data = t;
  int rc = uv_pipe_open(&t->u.pipe, sv[1]);
  if (rc != 0) {
    close(sv[1]);
    refusef(t, "cannot use its socket: %s", uv_strerror(rc));
    return;
  }
  ready(t);
}

void agent_tunnels_open(agent_tunnels_t *ts, const json_t *ev) {
  if (!ts || ts->closing)
    return;
  agent_tunnel_open_t o;
  char *err = NULL;
  int rc = agent_tunnels_check(ts, ev, &o, &err);
  /* every tunnel is a stream: past the server's stream limit (less the
   * agent's own requests) a new one would make its reports wait */
  int32_t limit = ts->conn ? agent_conn_stream_limit(ts->conn) : INT32_MAX;
  if (limit > AGENT_TUNNELS_MAX)
    limit = AGENT_TUNNELS_MAX;
  if (rc == 0 && ts->count >= limit &&
      asprintf(&err, "too many tunnels open (at most %d)", (int)limit) < 0)
    err = NULL;
  if (rc != 0 || err) {
    send_error(ts, o.id, o.kind, err ? err : "out of memory");
    free(err);
    return;
  }
  for (const tunnel_t *x = ts->head; x; x = x->next)
    if (strcmp(x->o.id, o.id) == 0) { /* a repeated event: already ours */
      atr_log(ATR_LOG_WARN, "agent", "tunnel %s: opened already", o.id);
      return;
    }
  tunnel_t *t = calloc(1, sizeof *t);
  if (!t) {
    send_error(ts, o.id, o.kind, "out of memory");
    return;
  }
  t->ts = ts;
  t->o = o;
  t->next = ts->head;
  if (ts->head)
    ts->head->prev = t;
  ts->head = t;
  ts->count++;
  if (strcmp(o.kind, "tcp") == 0)
    dial_tcp(t);
  else
    serve_kind(t, find_kind(ts, o.kind), ev);
}

void agent_tunnels_close(agent_tunnels_t *ts, void (*done)(void *), void *ud) {
  if (!ts) {
    if (done)
      done(ud);
    return;
  }
  ts->closing = true;
  ts->done = done;
  ts->done_ud = ud;
  tunnel_t *t = ts->head;
  while (t) {
    tunnel_t *next = t->next;
    if (!t->dead)
      teardown(t); /* may free t */
    t = next;
  }
  if (ts->count == 0 && ts->done) {
    ts->done = NULL;
    if (done)
      done(ud);
  }
}

void agent_tunnels_free(agent_tunnels_t *ts) {
  free(ts);
}
