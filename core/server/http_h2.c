/* core/server/http_h2.c — a session's protocol, without sockets
 * (docs/design/agent.md §1.2–1.4): WebSocket frames (wslay, server side,
 * no buffering: binary chunks pass straight on) carry one HTTP/2
 * connection (nghttp2, server side, memory API). Each request stream
 * becomes an http_req_t, the same a plain connection's parser makes, and
 * leaves through on_request; its answer comes back serialized as
 * HTTP/1.1 (http_handle.c's format) and is sent as an h2 response. The
 * events stream is kept here: it stays open and carries the lines
 * http_up_event queues.
 *
 * Memory: nghttp2 allocates through a counting allocator, so what an idle
 * session costs is known (up->mem); header tables are kept at 1 KiB. */
#include <ctype.h>
#include <nghttp2/nghttp2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "http_internal.h"

/* tunnels are streams too (docs/design/connect.md); requests at the lane
 * stay capped by the session (http_session.c's LANE_CAP) */
#define MAX_STREAMS 256
#define TUNNEL_ID_MAX 64
#define TABLE_SIZE 1024
#define CONN_WINDOW (256 * 1024)
#define MAX_FRAME ((uint64_t)1 << 20)

typedef struct h2_stream {
  struct h2_stream *prev, *next; /* up->streams */
  http_req_t *req;               /* being received; NULL once handed on */
  char *answer; /* the serialized answer (owned), body at body_off */
  size_t answer_len, body_off;
  bool events;
  bool refused;       /* too large: the rest of its body is ignored */
  bool tunnel;        /* POST .../me/tunnels/{id}: never a request */
  http_tunnel_t *tun; /* its tunnel while both live */
} h2_stream_t;

/* ---- nghttp2's memory, counted ------------------------------------------ */

typedef struct mem_head {
  size_t size;
  size_t pad; /* keeps what follows 16-byte aligned */
} mem_head_t;

static void count(http_up_t *up, long long delta) {
  up->mem += (size_t)delta;
  if (up->mem_total)
    atomic_fetch_add(up->mem_total, delta);
}

static void *mem_malloc(size_t size, void *ud) {
  mem_head_t *h = malloc(sizeof *h + size);
  if (!h)
    return NULL;
  h->size = size;
  count(ud, (long long)size);
  return h + 1;
}

static void mem_free(void *ptr, void *ud) {
  if (!ptr)
    return;
  mem_head_t *h = (mem_head_t *)ptr - 1;
  count(ud, -(long long)h->size);
  free(h);
}

/* calloc itself: fresh memory it knows is zero stays untouched (the
 * stream map's table is mostly empty), which keeps an idle session's
 * resident size down. */
static void *mem_calloc(size_t n, size_t size, void *ud) {
  if (size && n > (SIZE_MAX - sizeof(mem_head_t)) / size)
    return NULL;
  mem_head_t *h = calloc(1, sizeof *h + n * size);
  if (!h)
    return NULL;
  h->size = n * size;
  count(ud, (long long)h->size);
  return h + 1;
}

static void *mem_realloc(void *ptr, size_t size, void *ud) {
  if (!ptr)
    return mem_malloc(size, ud);
  mem_head_t *h = (mem_head_t *)ptr - 1;
  size_t old = h->size;
  mem_head_t *grown = realloc(h, sizeof *h + size);
  if (!grown)
    return NULL;
  grown->size = size;
  count(ud, (long long)size - (long long)old);
  return grown + 1;
}

/* ---- the WebSocket side (wslay) ------------------------------------------ */

ssize_t http_ws_take(void *ctx, const char **in, size_t *in_len, uint8_t *buf,
                     size_t len) {
  if (*in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = *in_len < len ? *in_len : len;
  memcpy(buf, *in, n);
  *in += n;
  *in_len -= n;
  return (ssize_t)n;
}

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud) {
  (void)flags;
  http_up_t *up = ud;
  return http_ws_take(ctx, &up->in, &up->in_len, buf, len);
}

static int out_append(http_up_t *up, const void *data, size_t len) {
  if (up->out_len + len > up->out_cap) {
    size_t cap = up->out_cap ? up->out_cap : 4096;
    while (cap < up->out_len + len)
      cap *= 2;
    char *grown = realloc(up->out, cap);
    if (!grown)
      return -1;
    up->out = grown;
    up->out_cap = cap;
  }
  memcpy(up->out + up->out_len, data, len);
  up->out_len += len;
  return 0;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud) {
  (void)flags;
  if (out_append(ud, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static void ws_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a,
                           void *ud) {
  (void)ctx;
  http_up_t *up = ud;
  up->frame_op = a->opcode;
  if (a->opcode != WSLAY_CONTINUATION_FRAME && !wslay_is_ctrl_frame(a->opcode))
    up->msg_op = a->opcode;
}

/* Only binary data carries HTTP/2; text is a protocol error (1003). */
static void ws_chunk(wslay_event_context_ptr ctx,
                     const struct wslay_event_on_frame_recv_chunk_arg *a,
                     void *ud) {
  http_up_t *up = ud;
  if (wslay_is_ctrl_frame(up->frame_op) || up->failed)
    return;
  if (up->msg_op != WSLAY_BINARY_FRAME) {
    up->failed = true;
    wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
    return;
  }
  ssize_t n = nghttp2_session_mem_recv(up->h2, a->data, a->data_length);
  if (n < 0 || (size_t)n != a->data_length) {
    up->failed = true;
    wslay_event_queue_close(ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
  }
}

static void ws_msg(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *a, void *ud) {
  (void)ctx;
  (void)a;
  (void)ud; /* pings are answered and closes echoed by wslay itself */
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_frame_recv_start_callback = ws_frame_start,
    .on_frame_recv_chunk_callback = ws_chunk,
    .on_msg_recv_callback = ws_msg,
};

/* ---- requests (nghttp2 callbacks) ---------------------------------------- */

static h2_stream_t *stream_of(http_up_t *up, int32_t id) {
  return nghttp2_session_get_stream_user_data(up->h2, id);
}

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *f,
                            void *ud) {
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST)
    return 0;
  h2_stream_t *st = calloc(1, sizeof *st);
  http_req_t *req = calloc(1, sizeof *req);
  if (!st || !req) {
    free(st);
    free(req);
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  }
  req->stream_id = f->hd.stream_id;
  req->keep_alive = true;
  st->req = req;
  http_up_t *up = ud;
  st->next = up->streams;
  if (st->next)
    st->next->prev = st;
  up->streams = st;
  nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
  return 0;
}

void http_up_drop(http_up_t *up, http_req_t *r) {
  if (r)
    up->rx_body -= r->body_len;
  http_req_free(r);
}

static int add_header(http_req_t *r, const char *name, size_t nlen,
                      const uint8_t *value, size_t vlen) {
  if (r->nhdr == HTTP_MAX_HEADERS)
    return -1;
  http_hdr_t *h = &r->hdr[r->nhdr];
  h->name = strndup(name, nlen);
  h->value = strndup((const char *)value, vlen);
  if (!h->name || !h->value) {
    free(h->name);
    free(h->value);
    h->name = h->value = NULL;
    return -1;
  }
  h->name_len = nlen;
  h->value_len = vlen;
  r->nhdr++;
  return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *f,
                     const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen, uint8_t flags, void *ud) {
  (void)flags;
  http_up_t *up = ud;
  h2_stream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (!st || !st->req)
    return 0;
  http_req_t *r = st->req;
  r->hdr_bytes += nlen + vlen + 4;
  if (r->hdr_bytes > up->max_header)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  const char *n = (const char *)name;
  int rc = 0;
  if (nlen == 7 && memcmp(n, ":method", 7) == 0) {
    if (vlen >= sizeof r->method)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    memcpy(r->method, value, vlen);
    r->method[vlen] = '\0';
    r->head = strcmp(r->method, "HEAD") == 0;
  } else if (nlen == 5 && memcmp(n, ":path", 5) == 0) {
    free(r->url);
    r->url = strndup((const char *)value, vlen);
    r->url_len = vlen;
    rc = r->url ? 0 : -1;
  } else if (nlen == 10 && memcmp(n, ":authority", 10) == 0) {
    rc = add_header(r, "Host", 4, value, vlen);
  } else if (nlen > 0 && n[0] != ':') {
    rc = add_header(r, n, nlen, value, vlen);
  }
  return rc == 0 ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
}

static void answer_error(http_up_t *up, int32_t id, int status,
                         const char *message) {
  char *a = NULL;
  char body[160];
  int blen = snprintf(body, sizeof body, "{\"message\":\"%s\",\"detail\":\"\"}",
                      message);
  int n = asprintf(&a,
                   "HTTP/1.1 %d Error\r\nContent-Type: application/json\r\n"
                   "Content-Length: %d\r\n\r\n%s",
                   status, blen, body);
  if (n >= 0)
    http_up_answer(up, id, a, (size_t)n);
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                   const uint8_t *data, size_t len, void *ud) {
  (void)flags;
  http_up_t *up = ud;
  h2_stream_t *st = nghttp2_session_get_stream_user_data(s, id);
  if (st && st->tunnel) {
    /* the connection's window comes back at once, the stream's once the
     * user's side took the bytes: one slow user holds its own stream,
     * never the session */
    nghttp2_session_consume_connection(s, len);
    if (st->tun)
      http_tunnel_data(up, st->tun, data, len);
    else
      nghttp2_session_consume_stream(s, id, len);
    return 0;
  }
  /* no automatic window updates (for tunnels): a request's body is
   * buffered here, so its window comes back at once */
  nghttp2_session_consume(s, id, len);
  if (!st || !st->req || st->refused)
    return 0;
  http_req_t *r = st->req;
  /* one cap for the bodies of all the session's streams not yet at the
   * lane, so 16 streams cannot hold 16 times http.max_body_size */
  if (r->body_len + len > up->max_body || up->rx_body + len > up->max_body) {
    st->refused = true;
    answer_error(up, id, 413, "Request body too large.");
    return 0;
  }
  if (r->body_len + len > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap : 1024;
    while (cap < r->body_len + len)
      cap *= 2;
    char *grown = realloc(r->body, cap);
    if (!grown)
      return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    r->body = grown;
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, data, len);
  r->body_len += len;
  up->rx_body += len;
  return 0;
}

static bool is_events(const http_req_t *r) {
  static const char suffix[] = ATR_HTTP_SESSION_EVENTS_SUFFIX;
  size_t n = sizeof suffix - 1;
  if (strcmp(r->method, "GET") != 0 || !r->url)
    return false;
  const char *q = strchr(r->url, '?');
  size_t len = q ? (size_t)(q - r->url) : r->url_len;
  return len >= n && memcmp(r->url + len - n, suffix, n) == 0;
}

static ssize_t read_events(nghttp2_session *s, int32_t id, uint8_t *buf,
                           size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *ud) {
  (void)s;
  (void)id;
  (void)src;
  (void)flags;
  http_up_t *up = ud;
  size_t left = up->ev_len - up->ev_off;
  if (left == 0)
    return NGHTTP2_ERR_DEFERRED; /* resumed by http_up_event */
  size_t n = left < len ? left : len;
  memcpy(buf, up->ev + up->ev_off, n);
  up->ev_off += n;
  if (up->ev_off == up->ev_len) {
    free(up->ev);
    up->ev = NULL;
    up->ev_len = up->ev_off = 0;
  }
  return (ssize_t)n;
}

/* The events stream: answered here, open until the session ends. */
static void open_events(http_up_t *up, int32_t id, h2_stream_t *st) {
  if (up->events_id != 0) {
    answer_error(up, id, 409, "The events stream is already open.");
    return;
  }
  static const nghttp2_nv nv[] = {
      {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t *)"content-type", (uint8_t *)"application/x-ndjson", 12, 20,
       NGHTTP2_NV_FLAG_NONE},
      {(uint8_t *)"cache-control", (uint8_t *)"no-store", 13, 8,
       NGHTTP2_NV_FLAG_NONE}};
  nghttp2_data_provider dp = {.read_callback = read_events};
  st->events = true;
  if (nghttp2_submit_response(up->h2, id, nv, 3, &dp) == 0) {
    up->events_id = id;
    atomic_store(&up->events_open, true);
  }
}

/* The id of a tunnel stream's path (POST <anything>/me/tunnels/{id}),
 * copied into id; false when it is no tunnel stream. *bad: it is one,
 * with an id that cannot be. */
static bool tunnel_id(const http_req_t *r, char id[TUNNEL_ID_MAX + 1],
                      bool *bad) {
  static const char mark[] = "/me/tunnels/";
  *bad = false;
  if (strcmp(r->method, "POST") != 0 || !r->url)
    return false;
  const char *q = strchr(r->url, '?');
  size_t len = q ? (size_t)(q - r->url) : r->url_len;
  const char *found = NULL;
  for (const char *p = r->url; (p = memmem(p, len - (size_t)(p - r->url), mark,
                                           sizeof mark - 1)) != NULL;
       p++)
    found = p;
  if (!found)
    return false;
  const char *start = found + sizeof mark - 1;
  size_t n = len - (size_t)(start - r->url);
  *bad = n == 0 || n > TUNNEL_ID_MAX;
  for (size_t i = 0; i < n && !*bad; i++)
    *bad = !(isxdigit((unsigned char)start[i]) || start[i] == '-');
  if (!*bad) {
    memcpy(id, start, n);
    id[n] = '\0';
  }
  return true;
}

/* The agent opened a tunnel stream: session-native, matched with a
 * pending tunnel of this session or reset. */
static void open_tunnel(http_up_t *up, int32_t sid, h2_stream_t *st,
                        const char *id) {
  http_req_t *r = st->req;
  st->req = NULL;
  st->tunnel = true;
  char error[256];
  const char *e = http_req_header(r, "atrium-tunnel-error");
  if (e) {
    /* one bounded line for logs and the user's 502 */
    size_t n = strnlen(e, sizeof error - 1);
    for (size_t i = 0; i < n; i++)
      error[i] = (unsigned char)e[i] < 0x20 || e[i] == 0x7f ? ' ' : e[i];
    error[n] = '\0';
  }
  http_up_drop(up, r);
  st->tun = http_tunnel_stream(up, sid, id, e ? error : NULL);
  if (!st->tun)
    nghttp2_submit_rst_stream(up->h2, NGHTTP2_FLAG_NONE, sid,
                              e ? NGHTTP2_NO_ERROR : NGHTTP2_REFUSED_STREAM);
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  http_up_t *up = ud;
  h2_stream_t *st = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  char id[TUNNEL_ID_MAX + 1];
  bool bad = false;
  /* nghttp2 acks the peer's PINGs itself: an ACK is always for ours */
  if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK)) {
    http_session_pong(up);
    return 0;
  }
  if (f->hd.type == NGHTTP2_HEADERS && st && st->req &&
      f->headers.cat == NGHTTP2_HCAT_REQUEST && st->req->method[0] &&
      tunnel_id(st->req, id, &bad)) {
    if (bad) {
      http_up_drop(up, st->req);
      st->req = NULL;
      st->tunnel = true;
      nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id,
                                NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    open_tunnel(up, f->hd.stream_id, st, id);
    /* an error comes with END_STREAM: the tunnel is already over */
    return 0;
  }
  if ((f->hd.type != NGHTTP2_HEADERS && f->hd.type != NGHTTP2_DATA) ||
      !(f->hd.flags & NGHTTP2_FLAG_END_STREAM))
    return 0;
  if (st && st->tun) {
    http_tunnel_agent_eof(up, st->tun);
    return 0;
  }
  if (!st || !st->req || st->refused)
    return 0;
  http_req_t *r = st->req;
  st->req = NULL;
  if (!r->url || !r->method[0]) {
    http_up_drop(up, r);
    answer_error(up, f->hd.stream_id, 400, "Bad request.");
  } else if (is_events(r)) {
    http_up_drop(up, r);
    open_events(up, f->hd.stream_id, st);
  } else {
    up->on_request(up, r);
  }
  return 0;
}

static void stream_free(http_up_t *up, h2_stream_t *st) {
  if (st->prev)
    st->prev->next = st->next;
  else
    up->streams = st->next;
  if (st->next)
    st->next->prev = st->prev;
  http_up_drop(up, st->req);
  free(st->answer);
  free(st);
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  http_up_t *up = ud;
  h2_stream_t *st = nghttp2_session_get_stream_user_data(s, id);
  if (id == up->events_id) {
    up->events_id = 0;
    atomic_store(&up->events_open, false);
  }
  if (!st)
    return 0;
  if (st->tun) {
    http_tunnel_t *t = st->tun;
    st->tun = NULL;
    http_tunnel_stream_closed(up, t, code);
  }
  nghttp2_session_set_stream_user_data(s, id, NULL);
  stream_free(up, st);
  return 0;
}

static nghttp2_session_callbacks *h2_callbacks;

static void make_callbacks(void) {
  if (nghttp2_session_callbacks_new(&h2_callbacks) != 0)
    return;
  nghttp2_session_callbacks *cb = h2_callbacks;
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
}

/* ---- answers -------------------------------------------------------------- */

static ssize_t read_answer(nghttp2_session *s, int32_t id, uint8_t *buf,
                           size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *ud) {
  (void)s;
  (void)id;
  (void)ud;
  h2_stream_t *st = src->ptr;
  size_t left = st->answer_len - st->body_off;
  size_t n = left < len ? left : len;
  memcpy(buf, st->answer + st->body_off, n);
  st->body_off += n;
  if (st->body_off == st->answer_len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

/* Hop-by-hop headers mean nothing in HTTP/2 (RFC 9113 §8.2.2). */
static bool hop_by_hop(const char *name) {
  static const char *const hop[] = {"connection", "keep-alive",
                                    "transfer-encoding", "upgrade",
                                    "proxy-connection"};
  for (size_t i = 0; i < sizeof hop / sizeof *hop; i++)
    if (strcmp(name, hop[i]) == 0)
      return true;
  return false;
}

/* Our own fixed format back to a status and lowercase headers (in place);
 * the number of entries in nv, or -1. */
static int read_head(char *a, size_t head_len, nghttp2_nv *nv, int max,
                     char status[4]) {
  char *line_end = strstr(a, "\r\n");
  if (strncmp(a, "HTTP/1.1 ", 9) != 0 || !line_end || line_end - a < 12)
    return -1;
  memcpy(status, a + 9, 3);
  status[3] = '\0';
  nv[0] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status, 7, 3, 0};
  int n = 1;
  for (char *p = line_end + 2; p < a + head_len && n < max;) {
    char *end = strstr(p, "\r\n");
    char *colon = end ? memchr(p, ':', (size_t)(end - p)) : NULL;
    if (!end || end == p)
      break;
    if (colon) {
      *colon = '\0';
      *end = '\0';
      for (char *c = p; *c; c++)
        *c = (char)tolower((unsigned char)*c);
      char *v = colon + 1;
      while (*v == ' ')
        v++;
      if (!hop_by_hop(p))
        nv[n++] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)v, strlen(p), strlen(v),
                               NGHTTP2_NV_FLAG_NONE};
    }
    p = end + 2;
  }
  return n;
}

void http_up_answer(http_up_t *up, int32_t id, char *bytes, size_t len) {
  h2_stream_t *st = stream_of(up, id);
  char *split = bytes ? memmem(bytes, len, "\r\n\r\n", 4) : NULL;
  if (!st || st->answer || !split) {
    free(bytes); /* the stream was reset meanwhile, or answered */
    return;
  }
  size_t head_len = (size_t)(split - bytes) + 2;
  split[2] = '\0';
  nghttp2_nv nv[24];
  char status[4];
  int n = read_head(bytes, head_len, nv, 24, status);
  if (n < 0) {
    free(bytes);
    nghttp2_submit_rst_stream(up->h2, NGHTTP2_FLAG_NONE, id,
                              NGHTTP2_INTERNAL_ERROR);
    return;
  }
  st->answer = bytes;
  st->answer_len = len;
  st->body_off = head_len + 2;
  nghttp2_data_provider dp = {.source.ptr = st, .read_callback = read_answer};
  bool body = st->body_off < len;
  if (nghttp2_submit_response(up->h2, id, nv, (size_t)n, body ? &dp : NULL) !=
      0)
    nghttp2_submit_rst_stream(up->h2, NGHTTP2_FLAG_NONE, id,
                              NGHTTP2_INTERNAL_ERROR);
}

/* ---- tunnel streams ------------------------------------------------------------ */

static ssize_t read_tunnel(nghttp2_session *s, int32_t id, uint8_t *buf,
                           size_t len, uint32_t *flags,
                           nghttp2_data_source *src, void *ud) {
  (void)src;
  http_up_t *up = ud;
  h2_stream_t *st = nghttp2_session_get_stream_user_data(s, id);
  if (!st || !st->tun)
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
  bool eof = false;
  size_t n = http_tunnel_pull(up, st->tun, buf, len, &eof);
  if (eof)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  else if (n == 0)
    return NGHTTP2_ERR_DEFERRED; /* resumed by http_up_tunnel_resume */
  return (ssize_t)n;
}

int http_up_tunnel_accept(http_up_t *up, int32_t sid) {
  static const nghttp2_nv nv[] = {
      {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
      {(uint8_t *)"content-type", (uint8_t *)"application/octet-stream", 12, 24,
       NGHTTP2_NV_FLAG_NONE}};
  nghttp2_data_provider dp = {.read_callback = read_tunnel};
  return nghttp2_submit_response(up->h2, sid, nv, 2, &dp) == 0 ? 0 : -1;
}

void http_up_tunnel_resume(http_up_t *up, int32_t sid) {
  (void)nghttp2_session_resume_data(up->h2, sid);
}

void http_up_tunnel_consume(http_up_t *up, int32_t sid, size_t n) {
  if (n > 0)
    (void)nghttp2_session_consume_stream(up->h2, sid, n);
}

void http_up_tunnel_reset(http_up_t *up, int32_t sid, uint32_t code) {
  h2_stream_t *st = stream_of(up, sid);
  if (st)
    st->tun = NULL;
  if (!up->closing)
    (void)nghttp2_submit_rst_stream(up->h2, NGHTTP2_FLAG_NONE, sid, code);
}

void http_up_refuse(http_up_t *up, int32_t sid) {
  (void)nghttp2_submit_rst_stream(up->h2, NGHTTP2_FLAG_NONE, sid,
                                  NGHTTP2_REFUSED_STREAM);
}

/* ---- the session ------------------------------------------------------------ */

static int start_h2(http_up_t *up) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, make_callbacks);
  if (!h2_callbacks)
    return -1;
  nghttp2_mem mem = {up, mem_malloc, mem_free, mem_calloc, mem_realloc};
  nghttp2_option *opt = NULL;
  if (nghttp2_option_new(&opt) != 0)
    return -1;
  nghttp2_option_set_max_deflate_dynamic_table_size(opt, TABLE_SIZE);
  /* tunnels give window back once the user's side took the bytes (on_data
   * consumes everything else at once) */
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_session *h2 = NULL;
  int rc = nghttp2_session_server_new3(&h2, h2_callbacks, up, opt, &mem);
  nghttp2_option_del(opt);
  if (rc != 0)
    return -1;
  up->h2 = h2;
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_STREAMS},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, TABLE_SIZE},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 65535}};
  if (nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, iv, 3) != 0 ||
      nghttp2_session_set_local_window_size(h2, NGHTTP2_FLAG_NONE, 0,
                                            CONN_WINDOW) != 0)
    return -1;
  return 0;
}

http_up_t *http_up_new(uint64_t max_header, uint64_t max_body,
                       atomic_llong *mem_total,
                       void (*on_request)(http_up_t *, http_req_t *)) {
  http_up_t *up = calloc(1, sizeof *up);
  if (!up)
    return NULL;
  up->max_header = max_header ? max_header : 8192;
  up->max_body = max_body ? max_body : (16u << 20);
  up->mem_total = mem_total;
  up->on_request = on_request;
  wslay_event_context_ptr ws = NULL;
  if (wslay_event_context_server_init(&ws, &ws_callbacks, up) != 0) {
    free(up);
    return NULL;
  }
  up->ws = ws;
  wslay_event_config_set_no_buffering(ws, 1);
  wslay_event_config_set_max_recv_msg_length(ws, MAX_FRAME);
  if (start_h2(up) != 0) {
    http_up_free(up);
    return NULL;
  }
  return up;
}

int http_up_feed(http_up_t *up, const char *data, size_t len) {
  up->in = data;
  up->in_len = len;
  up->in_feed = true;
  if (!up->failed && wslay_event_recv(up->ws) != 0)
    up->failed = true;
  up->in_feed = false;
  /* a bad frame (wslay queued 1002) or one over the cap (1009) */
  if (!wslay_event_get_read_enabled(up->ws) &&
      !wslay_event_get_close_received(up->ws))
    up->failed = true;
  up->in = NULL;
  up->in_len = 0;
  return up->failed ? -1 : 0;
}

int http_up_pull(http_up_t *up, size_t budget) {
  while (!up->closing && up->out_len < budget &&
         nghttp2_session_want_write(up->h2)) {
    const uint8_t *data = NULL;
    up->in_pull = true;
    ssize_t n = nghttp2_session_mem_send(up->h2, &data);
    up->in_pull = false;
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    struct wslay_event_msg m = {WSLAY_BINARY_FRAME, data, (size_t)n};
    if (wslay_event_queue_msg(up->ws, &m) != 0 || wslay_event_send(up->ws) != 0)
      return -1;
  }
  if (wslay_event_want_write(up->ws) && wslay_event_send(up->ws) != 0)
    return -1;
  return 0;
}

int http_up_event(http_up_t *up, const char *line, size_t len) {
  if (up->events_id == 0 || up->closing ||
      up->ev_len - up->ev_off + len + 1 > HTTP_STREAM_QUEUE_CAP)
    return -1;
  char *grown = realloc(up->ev, up->ev_len + len + 1);
  if (!grown)
    return -1;
  memcpy(grown + up->ev_len, line, len);
  grown[up->ev_len + len] = '\n';
  up->ev = grown;
  up->ev_len += len + 1;
  nghttp2_session_resume_data(up->h2, up->events_id);
  return 0;
}

void http_up_ping(http_up_t *up) {
  if (!up->closing)
    nghttp2_submit_ping(up->h2, NGHTTP2_FLAG_NONE, NULL);
}

void http_up_close(http_up_t *up, uint16_t code, const char *why) {
  if (up->closing)
    return;
  nghttp2_submit_goaway(up->h2, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(up->h2),
                        NGHTTP2_NO_ERROR, NULL, 0);
  (void)http_up_pull(up, SIZE_MAX);
  up->closing = true;
  size_t n = why ? strlen(why) : 0;
  wslay_event_queue_close(up->ws, code, (const uint8_t *)why, n < 120 ? n : 0);
  (void)http_up_pull(up, 0);
}

bool http_up_finished(const http_up_t *up) {
  /* wslay stops reading after a close, a bad frame (it queues 1002) or
   * one over the frame cap (1009) */
  return wslay_event_get_close_received(up->ws) ||
         !wslay_event_get_read_enabled(up->ws) ||
         (!nghttp2_session_want_read(up->h2) &&
          !nghttp2_session_want_write(up->h2));
}

void http_up_free(http_up_t *up) {
  if (!up)
    return;
  if (up->h2)
    nghttp2_session_del(up->h2); /* without calling on_close */
  h2_stream_t *st = up->streams;
  up->streams = NULL;
  while (st) {
    h2_stream_t *next = st->next;
    st->prev = st->next = NULL;
    stream_free(up, st);
    st = next;
  }
  if (up->ws)
    wslay_event_context_free(up->ws);
  for (int i = 0; i < up->nheld; i++)
    http_req_free(up->held[i]);
  free(up->ev);
  free(up->out);
  free(up);
}
