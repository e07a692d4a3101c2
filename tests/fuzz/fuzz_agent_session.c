/* tests/fuzz/fuzz_agent_session.c — what an agent sends after its
 * session's 101: WebSocket frames (wslay) carrying HTTP/2 (nghttp2), fed
 * to an upgraded connection's protocol state (http_up_feed, http_h2.c) as
 * the loop feeds it, without sockets. Requests that come out are checked
 * against the limits and answered at once (the answer path runs too), an
 * event line is queued after every chunk, and the output is pulled and
 * dropped.
 *
 * Input: the first byte chooses the chunk size; the rest is the byte
 * stream from the agent. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX_HEADER 1024
#define FUZZ_MAX_BODY 4096

static http_req_t *got[32];
static int ngot;

static void on_request(http_up_t *up, http_req_t *req) {
  if (!req->url || req->stream_id <= 0 || req->body_len > FUZZ_MAX_BODY ||
      req->hdr_bytes > FUZZ_MAX_HEADER || req->nhdr > HTTP_MAX_HEADERS)
    abort();
  if (ngot < 32)
    got[ngot++] = req;
  else
    http_up_drop(up, req);
}

static void answer_all(http_up_t *up) {
  static const char answer[] = "HTTP/1.1 200 OK\r\n"
                               "Content-Type: application/json\r\n"
                               "Connection: close\r\n"
                               "Content-Length: 2\r\n\r\n{}";
  for (int i = 0; i < ngot; i++) {
    int32_t id = got[i]->stream_id;
    http_up_drop(up, got[i]);
    char *a = malloc(sizeof answer - 1);
    if (a) {
      memcpy(a, answer, sizeof answer - 1);
      http_up_answer(up, id, a, sizeof answer - 1);
    }
  }
  ngot = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  http_up_t *up = http_up_new(FUZZ_MAX_HEADER, FUZZ_MAX_BODY, NULL, on_request);
  if (!up)
    return 0;
  size_t chunk = size ? (size_t)(data[0] % 64) + 1 : 1;
  for (size_t at = 1; at < size; at += chunk) {
    size_t n = size - at < chunk ? size - at : chunk;
    int rc = http_up_feed(up, (const char *)data + at, n);
    answer_all(up);
    (void)http_up_event(up, "{\"type\":\"manifest\"}", 19);
    int pulled = http_up_pull(up, (size_t)1 << 16);
    free(up->out);
    up->out = NULL;
    up->out_len = up->out_cap = 0;
    if (rc != 0 || pulled != 0)
      break;
  }
  answer_all(up);
  http_up_free(up);
  return 0;
}
