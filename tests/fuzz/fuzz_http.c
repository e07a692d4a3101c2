/* tests/fuzz/fuzz_http.c — the HTTP request path before any handler: the
 * server's request parsing (http_parse_feed, as the event loop feeds a
 * connection, without sockets), the router over the route table
 * (atr_api_match, atr_api_param), query decoding (atr_api_query) and the
 * JSON body (atr_api_body).
 *
 * Input: the whole input is first fed to the parser as raw connection
 * bytes, in chunks whose size its first byte chooses; then it is read as
 * "METHOD /path?query\n" and the body. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const query_names[] = {"q",        "limit",   "offset",
                                          "after",    "follow",  "owner",
                                          "template", "deleted", ""};
static const char *const param_names[] = {
    "user",           "organization",    "template",
    "templatename",   "templateversion", "workspace",
    "workspacebuild", "workspacename",   "fileid",
    "keyid"};

static void route(const char *method, const char *path) {
  atr_api_req_t r;
  memset(&r, 0, sizeof r);
  bool mismatch;
  const atr_api_route_t *rt = atr_api_match(method, path, &r, &mismatch);
  if (!rt)
    return;
  for (size_t i = 0; i < sizeof param_names / sizeof *param_names; i++) {
    const char *v = atr_api_param(&r, param_names[i]);
    if (v && strlen(v) >= sizeof r.param_values[0])
      abort();
  }
  (void)atr_api_route_allows(rt, true, UINT32_MAX, true);
}

static void query(const char *q) {
  atr_api_req_t r;
  memset(&r, 0, sizeof r);
  r.query = q;
  char small[4], big[512];
  for (size_t i = 0; i < sizeof query_names / sizeof *query_names; i++) {
    const char *v = atr_api_query(&r, query_names[i], small, sizeof small);
    if (v && strlen(v) >= sizeof small)
      abort();
    (void)atr_api_query(&r, query_names[i], big, sizeof big);
  }
}

static void body(const char *text, size_t len) {
  atr_api_req_t r;
  memset(&r, 0, sizeof r);
  r.body = text;
  r.body_len = len;
  json_t *j = atr_api_body(&r);
  if (!j == !r.status) /* exactly one: an object, or a 400 answer */
    abort();
  json_decref(j);
  free(r.answer);
}

#define FUZZ_MAX_HEADER 1024
#define FUZZ_MAX_BODY 4096

static void check_request(const http_req_t *r) {
  if (!r->url || r->body_len > FUZZ_MAX_BODY || r->url_len > FUZZ_MAX_HEADER ||
      r->nhdr > HTTP_MAX_HEADERS)
    abort();
  (void)http_req_header(r, "Content-Type");
}

/* Raw bytes through the connection's parse step: requests come out
 * whole and within the limits, or the parse stops with an error status
 * the loop would answer. */
static void connection(const uint8_t *data, size_t size) {
  http_parse_t ps;
  http_parse_init(&ps, FUZZ_MAX_HEADER, FUZZ_MAX_BODY);
  size_t chunk = size ? (size_t)(data[0] % 16) + 1 : 1, at = 0;
  while (at < size && ps.error_status == 0) {
    size_t n = size - at < chunk ? size - at : chunk;
    size_t used = http_parse_feed(&ps, (const char *)data + at, n);
    if (used > n)
      abort();
    at += used;
    if (ps.complete) {
      http_req_t *r = http_parse_take(&ps);
      check_request(r);
      http_req_free(r);
    } else if (used < n && ps.error_status == 0) {
      abort(); /* bytes refused without a request or an error */
    }
  }
  if (ps.error_status != 0 && ps.error_status != 400 &&
      ps.error_status != 413 && ps.error_status != 431 &&
      ps.error_status != 501)
    abort();
  http_parse_free(&ps);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  connection(data, size);
  const uint8_t *nl = memchr(data, '\n', size);
  size_t head = nl ? (size_t)(nl - data) : size;
  char *line = strndup((const char *)data, head); /* stops at a NUL too */
  if (!line)
    return 0;
  char *sp = strchr(line, ' ');
  if (sp) {
    *sp = '\0';
    char *path = sp + 1;
    char *qm = strchr(path, '?');
    if (qm)
      *qm = '\0';
    route(line, path);
    if (qm)
      query(qm + 1);
  }
  free(line);
  if (nl)
    body((const char *)nl + 1, size - head - 1);
  return 0;
}
