/* core/agent/agent_conn_session.c — the agent's session once the server
 * answered 101 (docs/design/agent.md §1): WebSocket frames (wslay, client
 * side: every frame masked with a key from getrandom) carrying an HTTP/2
 * client session (nghttp2, memory API). Each request is one stream with
 * a JSON body; the events stream stays open and its lines go to
 * on_event; streams (tunnels) are agent_conn_stream.c's. At most
 * AC_MAX_INFLIGHT requests are open; more wait in order.
 *
 * nghttp2 sends no WINDOW_UPDATE by itself here: requests and events
 * consume what they receive at once, streams once their caller wrote it
 * on (flow control per tunnel). */
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wslay/wslay.h>

#include "agent_conn_internal.h"
#include "atrium/error.h"

#define TABLE_SIZE 1024

/* ---- the WebSocket side ---------------------------------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud) {
  (void)flags;
  agent_conn_t *c = ud;
  if (c->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = c->in_len < len ? c->in_len : len;
  memcpy(buf, c->in, n);
  c->in += n;
  c->in_len -= n;
  return (ssize_t)n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud) {
  (void)flags;
  agent_conn_t *c = ud;
  if (c->out_len + len > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + len)
      cap *= 2;
    char *grown = realloc(c->out, cap);
    if (!grown) {
      wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
      return -1;
    }
    c->out = grown;
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, data, len);
  c->out_len += len;
  return (ssize_t)len;
}

static int ws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                      void *ud) {
  (void)ctx;
  (void)ud;
  ac_random(buf, len);
  return 0;
}

static void ws_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a,
                           void *ud) {
  (void)ctx;
  agent_conn_t *c = ud;
  c->frame_op = a->opcode;
  if (a->opcode != WSLAY_CONTINUATION_FRAME && !wslay_is_ctrl_frame(a->opcode))
    c->msg_op = a->opcode;
}

static void ws_chunk(wslay_event_context_ptr ctx,
                     const struct wslay_event_on_frame_recv_chunk_arg *a,
                     void *ud) {
  agent_conn_t *c = ud;
  if (wslay_is_ctrl_frame(c->frame_op) || c->failed)
    return;
  if (c->msg_op != WSLAY_BINARY_FRAME) {
    c->failed = true;
    wslay_event_queue_close(ctx, WSLAY_CODE_UNSUPPORTED_DATA, NULL, 0);
    return;
  }
  ssize_t n = nghttp2_session_mem_recv(c->h2, a->data, a->data_length);
  if (n < 0 || (size_t)n != a->data_length) {
    c->failed = true;
    wslay_event_queue_close(ctx, WSLAY_CODE_PROTOCOL_ERROR, NULL, 0);
  }
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .genmask_callback = ws_genmask,
    .on_frame_recv_start_callback = ws_frame_start,
    .on_frame_recv_chunk_callback = ws_chunk,
};

/* ---- requests ---------------------------------------------------------------- */

void ac_req_free(agent_req_t *r) {
  if (!r)
    return;
  free(r->method);
  free(r->path);
  free(r->body);
  free(r->answer);
  for (size_t i = 0; i < r->nhdrs; i++) {
    free((char *)r->hdrs[i].name);
    free((char *)r->hdrs[i].value);
  }
  free(r->hdrs);
  if (r->stream)
    free(r->stream->buf);
  free(r->stream);
  free(r);
}

static void live_remove(agent_conn_t *c, agent_req_t *r) {
  if (r->prev)
    r->prev->next = r->next;
  else if (c->live == r)
    c->live = r->next;
  if (r->next)
    r->next->prev = r->prev;
  r->prev = r->next = NULL;
}

static void finish(agent_conn_t *c, agent_req_t *r, int status) {
  c->busy++;
  if (r->reply)
    r->reply(r->reply_ud, status, r->answer ? r->answer : "",
             status ? r->answer_len : 0);
  c->busy--;
  ac_req_free(r);
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf,
                         size_t len, uint32_t *flags, nghttp2_data_source *src,
                         void *ud) {
  (void)s;
  (void)id;
  (void)ud;
  agent_req_t *r = src->ptr;
  if (r->stream)
    return ac_stream_read(r, buf, len, flags);
  size_t left = r->body_len - r->body_off;
  size_t n = left < len ? left : len;
  memcpy(buf, r->body + r->body_off, n);
  r->body_off += n;
  if (r->body_off == r->body_len)
    *flags |= NGHTTP2_DATA_FLAG_EOF;
  return (ssize_t)n;
}

#define NV(n, v)                                                               \
  { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }

#define MAX_EXTRA_HEADERS 8

static int submit_now(agent_conn_t *c, agent_req_t *r) {
  char len[24];
  snprintf(len, sizeof len, "%zu", r->body_len);
  nghttp2_nv nv[6 + MAX_EXTRA_HEADERS] = {
      NV(":method", r->method), NV(":scheme", "http"),
      NV(":authority", c->authority), NV(":path", r->path)};
  size_t n = 4;
  bool body = r->body != NULL;
  if (r->stream) {
    body = !r->stream->eof;
    if (body)
      nv[n++] = (nghttp2_nv)NV("content-type", "application/octet-stream");
    for (size_t i = 0; i < r->nhdrs && i < MAX_EXTRA_HEADERS; i++)
      nv[n++] = (nghttp2_nv)NV(r->hdrs[i].name, r->hdrs[i].value);
  } else if (body) {
    nv[n++] = (nghttp2_nv)NV("content-type", "application/json");
    nv[n++] = (nghttp2_nv)NV("content-length", len);
  }
  nghttp2_data_provider dp = {.source.ptr = r, .read_callback = read_body};
  int32_t id = nghttp2_submit_request(c->h2, NULL, nv, n, body ? &dp : NULL, r);
  if (id < 0)
    return ATR_EIO;
  if (r->stream)
    r->stream->id = id;
  r->next = c->live;
  if (c->live)
    c->live->prev = r;
  c->live = r;
  if (!r->events && !r->stream)
    c->inflight++;
  return 0;
}

int ac_session_submit(agent_conn_t *c, agent_req_t *r) {
  if (c->inflight < AC_MAX_INFLIGHT || r->events || r->stream)
    return submit_now(c, r);
  if (c->wait_tail)
    c->wait_tail->next = r;
  else
    c->wait_head = r;
  c->wait_tail = r;
  return 0;
}

static void pump_waiting(agent_conn_t *c) {
  while (c->wait_head && c->inflight < AC_MAX_INFLIGHT) {
    agent_req_t *r = c->wait_head;
    c->wait_head = r->next;
    if (!c->wait_head)
      c->wait_tail = NULL;
    r->next = NULL;
    if (submit_now(c, r) != 0)
      finish(c, r, 0);
  }
}

/* ---- nghttp2 callbacks --------------------------------------------------------- */

static int on_header(nghttp2_session *s, const nghttp2_frame *f,
                     const uint8_t *name, size_t nlen, const uint8_t *value,
                     size_t vlen, uint8_t flags, void *ud) {
  (void)flags;
  (void)ud;
  agent_req_t *r = nghttp2_session_get_stream_user_data(s, f->hd.stream_id);
  if (r && nlen == 7 && memcmp(name, ":status", 7) == 0 && vlen == 3)
    r->status =
        (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
  return 0;
}

/* Room for one more byte of the current event line; false past
 * AC_MAX_LINE. The buffer grows as needed: thousands of agents in one
 * process (the bench) must not hold 64 KiB each. */
static bool line_room(agent_conn_t *c) {
  if (c->line_len + 2 <= c->line_cap)
    return true;
  size_t cap = c->line_cap ? c->line_cap * 2 : 256;
  if (cap > AC_MAX_LINE)
    return false;
  char *grown = realloc(c->line, cap);
  if (!grown)
    return false;
  c->line = grown;
  c->line_cap = cap;
  return true;
}

static void event_line(agent_conn_t *c) {
  if (!c->line_skip && c->cbs.on_event) {
    c->busy++;
    c->cbs.on_event(c->ud, c->line ? c->line : "", c->line_len);
    c->busy--;
  }
  c->line_len = 0;
  c->line_skip = false;
  if (c->line_cap > 4096) { /* a long line is rare: give it back */
    free(c->line);
    c->line = NULL;
    c->line_cap = 0;
  }
}

/* Events: split into lines, each handed up without its newline. */
static void event_bytes(agent_conn_t *c, const uint8_t *data, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (data[i] == '\n') {
      event_line(c);
    } else if (!c->line_skip && !line_room(c)) {
      c->line_skip = true; /* dropped up to its newline */
    } else if (!c->line_skip) {
      c->line[c->line_len++] = (char)data[i];
      c->line[c->line_len] = '\0';
    }
  }
}

static int on_data(nghttp2_session *s, uint8_t flags, int32_t id,
                   const uint8_t *data, size_t len, void *ud) {
  (void)flags;
  agent_conn_t *c = ud;
  agent_req_t *r = nghttp2_session_get_stream_user_data(s, id);
  if (r && r->stream) {
    ac_stream_data(c, r, data, len);
    return 0;
  }
  (void)nghttp2_session_consume(s, id, len); /* taken at once */
  if (!r)
    return 0;
  if (r->events) {
    event_bytes(c, data, len);
    return 0;
  }
  if (r->too_large || r->answer_len + len > AC_MAX_ANSWER) {
    r->too_large = true;
    return 0;
  }
  if (r->answer_len + len + 1 > r->answer_cap) {
    size_t cap = r->answer_cap ? r->answer_cap : 1024;
    while (cap < r->answer_len + len + 1)
      cap *= 2;
    char *grown = realloc(r->answer, cap);
    if (!grown) {
      r->too_large = true;
      return 0;
    }
    r->answer = grown;
    r->answer_cap = cap;
  }
  memcpy(r->answer + r->answer_len, data, len);
  r->answer_len += len;
  r->answer[r->answer_len] = '\0';
  return 0;
}

static int on_frame(nghttp2_session *s, const nghttp2_frame *f, void *ud) {
  agent_conn_t *c = ud;
  agent_req_t *r =
      f->hd.type == NGHTTP2_HEADERS || f->hd.type == NGHTTP2_DATA
          ? nghttp2_session_get_stream_user_data(s, f->hd.stream_id)
          : NULL;
  if (r && r->stream) {
    if (f->hd.type == NGHTTP2_HEADERS &&
        f->headers.cat == NGHTTP2_HCAT_RESPONSE)
      ac_stream_status(c, r);
    if (f->hd.flags & NGHTTP2_FLAG_END_STREAM)
      ac_stream_end(c, r);
  }
  if (f->hd.type == NGHTTP2_PING && (f->hd.flags & NGHTTP2_FLAG_ACK) &&
      c->ping_sent_us) {
    c->ping_us = (int64_t)(ac_now_us() - c->ping_sent_us);
    c->ping_sent_us = 0;
  }
  return 0;
}

static int on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud) {
  agent_conn_t *c = ud;
  agent_req_t *r = nghttp2_session_get_stream_user_data(s, id);
  if (!r)
    return 0;
  nghttp2_session_set_stream_user_data(s, id, NULL);
  live_remove(c, r);
  if (r->stream) {
    ac_stream_closed(c, r, code != NGHTTP2_NO_ERROR);
    return 0;
  }
  if (r->events) {
    c->events = NULL;
    ac_req_free(r);
    return 0;
  }
  c->inflight--;
  finish(c, r, code == NGHTTP2_NO_ERROR && !r->too_large ? r->status : 0);
  pump_waiting(c);
  return 0;
}

/* ---- the session ------------------------------------------------------------------ */

static int start_h2(agent_conn_t *c) {
  nghttp2_session_callbacks *cb = NULL;
  if (nghttp2_session_callbacks_new(&cb) != 0)
    return -1;
  nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
  nghttp2_option *opt = NULL;
  nghttp2_session *h2 = NULL;
  int rc = nghttp2_option_new(&opt);
  if (rc == 0) {
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, TABLE_SIZE);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    rc = nghttp2_session_client_new2(&h2, cb, c, opt);
  }
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cb);
  if (rc != 0)
    return -1;
  c->h2 = h2;
  const nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, TABLE_SIZE}};
  if (nghttp2_submit_settings(h2, NGHTTP2_FLAG_NONE, iv, 2) != 0)
    return -1;
  return nghttp2_session_set_local_window_size(h2, NGHTTP2_FLAG_NONE, 0,
                                               AC_CONN_WINDOW) == 0
             ? 0
             : -1;
}

static int open_events(agent_conn_t *c) {
  agent_req_t *r = calloc(1, sizeof *r);
  if (!r)
    return -1;
  r->events = true;
  r->method = strdup("GET");
  if (asprintf(&r->path, "%s/api/v2/workspaceagents/me/events", c->prefix) <
          0 ||
      !r->method) {
    r->path = NULL;
    ac_req_free(r);
    return -1;
  }
  if (submit_now(c, r) != 0) {
    ac_req_free(r);
    return -1;
  }
  c->events = r;
  return 0;
}

int ac_session_open(agent_conn_t *c) {
  wslay_event_context_ptr ws = NULL;
  if (wslay_event_context_client_init(&ws, &ws_callbacks, c) != 0)
    return -1;
  c->ws = ws;
  c->failed = false;
  c->line_len = 0;
  c->line_skip = false;
  wslay_event_config_set_no_buffering(ws, 1);
  wslay_event_config_set_max_recv_msg_length(ws, (uint64_t)1 << 20);
  if (start_h2(c) != 0 || open_events(c) != 0)
    return -1;
  return 0;
}

int ac_session_feed(agent_conn_t *c, const char *data, size_t len) {
  c->in = data;
  c->in_len = len;
  c->busy++;
  if (!c->failed && wslay_event_recv(c->ws) != 0)
    c->failed = true;
  c->busy--;
  c->in = NULL;
  c->in_len = 0;
  return c->failed ? -1 : 0;
}

int ac_session_flush(agent_conn_t *c) {
  wslay_event_context_ptr ws = c->ws;
  while (c->queued + c->out_len < AC_PULL_MARK &&
         nghttp2_session_want_write(c->h2) && !wslay_event_get_close_sent(ws)) {
    const uint8_t *data = NULL;
    ssize_t n = nghttp2_session_mem_send(c->h2, &data);
    if (n < 0)
      return -1;
    if (n == 0)
      break;
    struct wslay_event_msg m = {WSLAY_BINARY_FRAME, data, (size_t)n};
    if (wslay_event_queue_msg(ws, &m) != 0 || wslay_event_send(ws) != 0)
      return -1;
  }
  if (wslay_event_want_write(ws) && wslay_event_send(ws) != 0)
    return -1;
  if (c->out_len > 0) {
    char *out = c->out;
    size_t len = c->out_len;
    c->out = NULL;
    c->out_len = c->out_cap = 0;
    ac_write(c, out, len);
  }
  return 0;
}

void ac_session_close(agent_conn_t *c) {
  if (!c->ws || wslay_event_get_close_sent(c->ws))
    return;
  nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, 0, NGHTTP2_NO_ERROR, NULL, 0);
  (void)ac_session_flush(c);
  wslay_event_queue_close(c->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
}

bool ac_session_over(agent_conn_t *c) {
  return wslay_event_get_close_received(c->ws) ||
         (!nghttp2_session_want_read(c->h2) &&
          !nghttp2_session_want_write(c->h2));
}

void ac_session_ping(agent_conn_t *c) {
  if (nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) == 0 &&
      !c->ping_sent_us)
    c->ping_sent_us = ac_now_us();
}

void ac_session_free(agent_conn_t *c) {
  if (c->h2)
    nghttp2_session_del(c->h2); /* without on_close: ours end below */
  if (c->ws)
    wslay_event_context_free(c->ws);
  c->h2 = c->ws = NULL;
  if (c->events) {
    live_remove(c, c->events);
    ac_req_free(c->events);
    c->events = NULL;
  }
  agent_req_t *live = c->live;
  c->live = NULL;
  while (live) {
    agent_req_t *r = live;
    live = r->next;
    if (r->stream)
      ac_stream_closed(c, r, true);
    else
      finish(c, r, 0);
  }
  c->inflight = 0;
  while (c->wait_head) {
    agent_req_t *r = c->wait_head;
    c->wait_head = r->next;
    finish(c, r, 0);
  }
  c->wait_tail = NULL;
  free(c->line);
  c->line = NULL;
  c->line_cap = 0;
  free(c->out);
  c->out = NULL;
  c->out_len = c->out_cap = 0;
  c->ping_sent_us = 0;
}
