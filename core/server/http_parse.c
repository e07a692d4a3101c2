/* core/server/http_parse.c — bytes to one request with the nodejs
 * http-parser (libhttp-parser): a callback parser that hands over the raw
 * request target, so http_path.c checks the path as the client sent it.
 * Limits are enforced while parsing, before anything is buffered past
 * them: request line plus headers over max_header (431), a body over
 * max_body (413, from Content-Length before any of it is read). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http_internal.h"

static http_parse_t *of(http_parser *p) {
  return p->data;
}

static int fail(http_parse_t *ps, int status, const char *message,
                const char *detail) {
  if (ps->error_status == 0) {
    ps->error_status = status;
    ps->error_message = message;
    ps->error_detail = detail;
  }
  return -1;
}

static int too_large_headers(http_parse_t *ps) {
  return fail(ps, 431, "Request header fields too large.",
              "The request line and headers are larger than "
              "http.max_header_size.");
}

static int too_large_body(http_parse_t *ps) {
  return fail(ps, 413, "Request body too large.",
              "The request body is larger than http.max_body_size.");
}

/* Append to a growing string, counting against the header budget. */
static int append(http_parse_t *ps, char **s, size_t *len, const char *at,
                  size_t n) {
  ps->header_bytes += n;
  if (ps->header_bytes > ps->max_header)
    return too_large_headers(ps);
  char *grown = realloc(*s, *len + n + 1);
  if (!grown)
    return fail(ps, 500, "Internal error.", "out of memory");
  memcpy(grown + *len, at, n);
  *len += n;
  grown[*len] = '\0';
  *s = grown;
  return 0;
}

static int on_message_begin(http_parser *p) {
  http_parse_t *ps = of(p);
  if (!ps->req)
    ps->req = calloc(1, sizeof *ps->req);
  return ps->req ? 0 : fail(ps, 500, "Internal error.", "out of memory");
}

static int on_url(http_parser *p, const char *at, size_t n) {
  http_parse_t *ps = of(p);
  return append(ps, &ps->req->url, &ps->req->url_len, at, n);
}

static int on_header_field(http_parser *p, const char *at, size_t n) {
  http_parse_t *ps = of(p);
  http_req_t *r = ps->req;
  if (ps->in_value || r->nhdr == 0) {
    if (r->nhdr == HTTP_MAX_HEADERS)
      return too_large_headers(ps);
    r->nhdr++;
    ps->in_value = false;
    ps->header_bytes += 4; /* ": " and CRLF, as the limit always counted */
  }
  http_hdr_t *h = &r->hdr[r->nhdr - 1];
  return append(ps, &h->name, &h->name_len, at, n);
}

static int on_header_value(http_parser *p, const char *at, size_t n) {
  http_parse_t *ps = of(p);
  http_hdr_t *h = &ps->req->hdr[ps->req->nhdr - 1];
  ps->in_value = true;
  return append(ps, &h->value, &h->value_len, at, n);
}

static int on_headers_complete(http_parser *p) {
  http_parse_t *ps = of(p);
  http_req_t *r = ps->req;
  snprintf(r->method, sizeof r->method, "%s",
           http_method_str((enum http_method)p->method));
  r->head = p->method == HTTP_HEAD;
  /* HTTP/1.0 keep-alive would need its own answer header: close instead */
  r->keep_alive = http_should_keep_alive(p) && p->http_major == 1 &&
                  p->http_minor >= 1 && !p->upgrade;
  if (!r->url)
    return fail(ps, 400, "Bad request.", "The request has no target.");
  /* "/@" (apps): handed over now, the body left on the connection for a
   * tunnel to stream, whatever its size; one request per connection */
  if (r->url[0] == '/' && r->url[1] == '@') {
    r->body_unread = true;
    r->keep_alive = false;
    ps->early = true;
    ps->complete = true;
    ps->headers_done = true;
    http_parser_pause(p, 1);
    return 0;
  }
  /* ULLONG_MAX: no Content-Length (chunked, or no body) */
  if (p->content_length != ULLONG_MAX && p->content_length > ps->max_body)
    return too_large_body(ps);
  const char *expect = http_req_header(r, "Expect");
  ps->want_continue = expect && strcasecmp(expect, "100-continue") == 0 &&
                      p->content_length != 0;
  ps->headers_done = true;
  return 0;
}

static int on_body(http_parser *p, const char *at, size_t n) {
  http_parse_t *ps = of(p);
  http_req_t *r = ps->req;
  ps->want_continue = false; /* the client sent it anyway */
  if (r->body_len + n > ps->max_body)
    return too_large_body(ps); /* chunked: no length to check up front */
  if (r->body_len + n > r->body_cap) {
    size_t cap = r->body_cap ? r->body_cap : 4096;
    while (cap < r->body_len + n)
      cap *= 2;
    if (p->content_length != ULLONG_MAX &&
        cap > r->body_len + n + p->content_length)
      cap = r->body_len + n + p->content_length; /* what is announced */
    char *grown = realloc(r->body, cap);
    if (!grown)
      return fail(ps, 500, "Internal error.", "out of memory");
    r->body = grown;
    r->body_cap = cap;
  }
  memcpy(r->body + r->body_len, at, n);
  r->body_len += n;
  return 0;
}

static int on_message_complete(http_parser *p) {
  http_parse_t *ps = of(p);
  ps->complete = true;
  /* one request at a time: the next one's bytes wait until this is
   * answered */
  http_parser_pause(p, 1);
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_parse_init(http_parse_t *ps, uint64_t max_header, uint64_t max_body) {
  memset(ps, 0, sizeof *ps);
  http_parser_init(&ps->p, HTTP_REQUEST);
  ps->p.data = ps;
  ps->max_header = max_header;
  ps->max_body = max_body;
}

/* What the parser's own errors mean to the client. */
static void parser_error(http_parse_t *ps) {
  enum http_errno e = HTTP_PARSER_ERRNO(&ps->p);
  if (e == HPE_HEADER_OVERFLOW)
    too_large_headers(ps);
  else if (e == HPE_INVALID_METHOD)
    fail(ps, 501, "Not implemented.", "The request method is not known.");
  else
    fail(ps, 400, "Bad request.", http_errno_description(e));
}

size_t http_parse_feed(http_parse_t *ps, const char *data, size_t len) {
  if (ps->complete || ps->error_status != 0 || len == 0)
    return 0;
  size_t used = http_parser_execute(&ps->p, &settings, data, len);
  enum http_errno e = HTTP_PARSER_ERRNO(&ps->p);
  if (e == HPE_PAUSED) {
    http_parser_pause(&ps->p, 0);
    /* paused at the head's end, the parser stops before its last LF */
    if (ps->early && used < len && data[used] == '\n')
      used++;
  } else if (e != HPE_OK) {
    if (ps->error_status == 0)
      parser_error(ps);
  }
  /* After an upgrade request the rest is the new protocol's (an agent may
   * send its first frames before it read the 101): it stays unused, and
   * the loop keeps it for the session. */
  return used;
}

http_req_t *http_parse_take(http_parse_t *ps) {
  if (!ps->complete)
    return NULL;
  http_req_t *r = ps->req;
  uint64_t mh = ps->max_header, mb = ps->max_body;
  bool early = ps->early;
  http_parser saved = ps->p;
  memset(ps, 0, sizeof *ps);
  ps->p = saved; /* the parser goes on with the connection's next request */
  /* an early request's body is not the parser's: whatever is fed after
   * it (the loop feeds nothing) starts from a fresh request */
  if (early)
    http_parser_init(&ps->p, HTTP_REQUEST);
  ps->max_header = mh;
  ps->max_body = mb;
  ps->p.data = ps;
  return r;
}

void http_req_free(http_req_t *r) {
  if (!r)
    return;
  for (int i = 0; i < r->nhdr; i++) {
    free(r->hdr[i].name);
    free(r->hdr[i].value);
  }
  free(r->url);
  free(r->body);
  free(r);
}

void http_parse_free(http_parse_t *ps) {
  http_req_free(ps->req);
  ps->req = NULL;
}

const char *http_req_header(const http_req_t *r, const char *name) {
  for (int i = 0; r && i < r->nhdr; i++)
    if (r->hdr[i].name && strcasecmp(r->hdr[i].name, name) == 0)
      return r->hdr[i].value ? r->hdr[i].value : "";
  return NULL;
}
