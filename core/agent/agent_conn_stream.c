/* core/agent/agent_conn_stream.c — streams in the agent's session
 * (agent_conn.h): a POST whose body is fed as it comes and whose answer
 * is handed up as it comes, for tunnels (docs/design/connect.md §1).
 *
 * The session runs without nghttp2's automatic WINDOW_UPDATEs
 * (agent_conn_session.c): a stream's window opens again only as its
 * caller consumes what it was given, so the server holds what the local
 * socket cannot take yet. Bytes handed up and not consumed when a stream
 * closes are consumed for the connection here, or the session's window
 * would shrink for good. */
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>

#include "agent_conn_internal.h"
#include "atrium/error.h"

int agent_conn_stream_open(agent_conn_t *c, const char *path,
                           const agent_conn_header_t *hdrs, size_t nhdrs,
                           bool end, const agent_stream_cbs_t *cbs, void *ud,
                           agent_stream_t **out) {
  if (out)
    *out = NULL;
  if (!agent_conn_up(c))
    return ATR_EAGAIN;
  agent_req_t *r = calloc(1, sizeof *r);
  agent_stream_t *s = calloc(1, sizeof *s);
  if (!r || !s) {
    free(r);
    free(s);
    return ATR_ENOMEM;
  }
  r->stream = s;
  s->c = c;
  s->eof = s->eof_sent = end;
  s->detached = end; /* nobody listens to a stream that only says no */
  if (cbs && !end)
    s->cbs = *cbs;
  s->ud = ud;
  r->method = strdup("POST");
  if (asprintf(&r->path, "%s%s", c->prefix, path) < 0)
    r->path = NULL;
  r->hdrs = nhdrs ? calloc(nhdrs, sizeof *r->hdrs) : NULL;
  bool ok = r->method && r->path && (nhdrs == 0 || r->hdrs);
  for (size_t i = 0; ok && i < nhdrs; i++) {
    r->hdrs[i].name = strdup(hdrs[i].name);
    r->hdrs[i].value = strdup(hdrs[i].value);
    r->nhdrs = i + 1;
    ok = r->hdrs[i].name && r->hdrs[i].value;
  }
  if (!ok || ac_session_submit(c, r) != 0) {
    ac_req_free(r);
    return ATR_ENOMEM;
  }
  if (out && !end)
    *out = s;
  ac_kick(c);
  return 0;
}

int32_t agent_conn_stream_limit(const agent_conn_t *c) {
  if (!c->h2)
    return INT32_MAX;
  uint32_t max = nghttp2_session_get_remote_settings(
      c->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  uint32_t others = 1 + AC_MAX_INFLIGHT;
  if (max <= others)
    return 0;
  return max - others > INT32_MAX ? INT32_MAX : (int32_t)(max - others);
}

/* The data provider: the queued body, END_STREAM after the caller's end. */
ssize_t ac_stream_read(agent_req_t *r, uint8_t *buf, size_t len,
                       uint32_t *flags) {
  agent_stream_t *s = r->stream;
  size_t avail = s->len - s->off;
  if (avail == 0 && !s->eof) {
    s->deferred = true; /* agent_stream_write resumes it */
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = avail < len ? avail : len;
  if (n > 0)
    memcpy(buf, s->buf + s->off, n);
  s->off += n;
  if (s->off == s->len) {
    s->off = s->len = 0;
    if (s->eof) {
      *flags |= NGHTTP2_DATA_FLAG_EOF;
      s->eof_sent = true;
    }
  }
  if (s->full && s->len - s->off < AGENT_STREAM_MARK) {
    s->full = false;
    if (!s->detached && s->cbs.on_room)
      s->cbs.on_room(s->ud); /* it only starts reading again */
  }
  return (ssize_t)n;
}

static void resume(agent_stream_t *s) {
  if (!s->deferred || !s->c->h2)
    return;
  s->deferred = false;
  (void)nghttp2_session_resume_data(s->c->h2, s->id);
  ac_kick(s->c);
}

int agent_stream_write(agent_stream_t *s, const char *data, size_t len) {
  if (s->eof || s->detached)
    return ATR_EINVAL;
  if (s->len + len > s->cap && s->off > 0) { /* slide what waits down */
    memmove(s->buf, s->buf + s->off, s->len - s->off);
    s->len -= s->off;
    s->off = 0;
  }
  if (s->len + len > s->cap) {
    size_t cap = s->cap ? s->cap : 16384;
    while (cap < s->len + len)
      cap *= 2;
    char *grown = realloc(s->buf, cap);
    if (!grown)
      return ATR_ENOMEM;
    s->buf = grown;
    s->cap = cap;
  }
  memcpy(s->buf + s->len, data, len);
  s->len += len;
  if (s->len - s->off >= AGENT_STREAM_MARK)
    s->full = true;
  resume(s);
  return 0;
}

size_t agent_stream_pending(const agent_stream_t *s) {
  return s->len - s->off;
}

void agent_stream_end(agent_stream_t *s) {
  if (s->eof || s->detached)
    return;
  s->eof = true;
  resume(s);
}

void agent_stream_consume(agent_stream_t *s, size_t n) {
  if (n > s->unconsumed)
    n = s->unconsumed;
  if (n == 0 || !s->c->h2)
    return;
  s->unconsumed -= n;
  (void)nghttp2_session_consume(s->c->h2, s->id, n);
  ac_kick(s->c);
}

void agent_stream_reset(agent_stream_t *s) {
  if (s->detached)
    return;
  s->detached = true;
  free(s->buf);
  s->buf = NULL;
  s->off = s->len = s->cap = 0;
  s->eof = true; /* the provider has nothing more to give */
  if (!s->c->h2)
    return;
  if (s->unconsumed > 0) { /* nobody will consume these now */
    (void)nghttp2_session_consume(s->c->h2, s->id, s->unconsumed);
    s->unconsumed = 0;
  }
  (void)nghttp2_submit_rst_stream(s->c->h2, NGHTTP2_FLAG_NONE, s->id,
                                  NGHTTP2_CANCEL);
  ac_kick(s->c);
}

void ac_stream_data(agent_conn_t *c, agent_req_t *r, const uint8_t *data,
                    size_t len) {
  agent_stream_t *s = r->stream;
  if (s->detached || !s->cbs.on_data) {
    (void)nghttp2_session_consume(c->h2, s->id, len);
    return;
  }
  s->unconsumed += len;
  c->busy++;
  s->cbs.on_data(s->ud, (const char *)data, len);
  c->busy--;
}

void ac_stream_status(agent_conn_t *c, agent_req_t *r) {
  agent_stream_t *s = r->stream;
  if (s->detached || !s->cbs.on_status)
    return;
  c->busy++;
  s->cbs.on_status(s->ud, r->status);
  c->busy--;
}

void ac_stream_end(agent_conn_t *c, agent_req_t *r) {
  agent_stream_t *s = r->stream;
  s->end_rcvd = true;
  if (s->detached || !s->cbs.on_end)
    return;
  c->busy++;
  s->cbs.on_end(s->ud);
  c->busy--;
}

void ac_stream_closed(agent_conn_t *c, agent_req_t *r, bool error) {
  agent_stream_t *s = r->stream;
  if (c->h2 && s->unconsumed > 0)
    (void)nghttp2_session_consume_connection(c->h2, s->unconsumed);
  s->unconsumed = 0;
  if (!s->detached && s->cbs.on_close) {
    s->detached = true;
    c->busy++;
    s->cbs.on_close(s->ud, error || !s->eof_sent || !s->end_rcvd);
    c->busy--;
  }
  ac_req_free(r);
}
