/* core/server/http_handle.c — one request to one answer: request id, the
 * raw path check, the core's routes, the API, plugin routes, the access
 * log and metrics. Runs on whichever thread the loop chose (a worker, the
 * probe thread, or the loop itself for /healthz); the answer is
 * serialized into the exchange and handed to the loop to write. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "atrium/error.h"
#include "atrium/plugin.h"
#include "http_internal.h"
#include "http_path.h"
#include "log.h"
#include "routes.h"
#include "version.h"

uint64_t http_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *reason(int status) {
  static const struct {
    int code;
    const char *text;
  } known[] = {{100, "Continue"},
               {200, "OK"},
               {201, "Created"},
               {202, "Accepted"},
               {204, "No Content"},
               {301, "Moved Permanently"},
               {302, "Found"},
               {304, "Not Modified"},
               {400, "Bad Request"},
               {401, "Unauthorized"},
               {403, "Forbidden"},
               {404, "Not Found"},
               {405, "Method Not Allowed"},
               {409, "Conflict"},
               {410, "Gone"},
               {411, "Length Required"},
               {413, "Payload Too Large"},
               {415, "Unsupported Media Type"},
               {422, "Unprocessable Entity"},
               {429, "Too Many Requests"},
               {431, "Request Header Fields Too Large"},
               {500, "Internal Server Error"},
               {501, "Not Implemented"},
               {502, "Bad Gateway"},
               {503, "Service Unavailable"}};
  for (size_t i = 0; i < sizeof known / sizeof *known; i++)
    if (known[i].code == status)
      return known[i].text;
  return "Unknown";
}

static int put(atr_http_exchange_t *x, const char *data, size_t n) {
  if (x->out_len + n > x->out_cap) {
    size_t cap = x->out_cap ? x->out_cap : 1024;
    while (cap < x->out_len + n)
      cap *= 2;
    char *grown = realloc(x->out, cap);
    if (!grown)
      return ATR_ENOMEM;
    x->out = grown;
    x->out_cap = cap;
  }
  memcpy(x->out + x->out_len, data, n);
  x->out_len += n;
  return 0;
}

static int put_header(atr_http_exchange_t *x, const char *name,
                      const char *value) {
  /* a value that could end the header early is dropped, never sent */
  if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
    return 0;
  char line[1024];
  int n = snprintf(line, sizeof line, "%s: %s\r\n", name, value);
  if (n < 0 || (size_t)n >= sizeof line)
    return 0;
  return put(x, line, (size_t)n);
}

/* The status line and the headers every answer has. */
static int put_head(atr_http_exchange_t *x, int status,
                    const char *content_type, bool close) {
  char line[96];
  int n =
      snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, reason(status));
  int rc = put(x, line, (size_t)n);
  put_header(x, "Content-Type", content_type ? content_type : "text/plain");
  put_header(x, "X-Request-Id", x->request_id);
  put_header(x, "Cache-Control", "no-store");
  if (close)
    put_header(x, "Connection", "close");
  for (int i = 0; i < x->nextra; i++)
    put_header(x, x->extra[i][0], x->extra[i][1]);
  return rc;
}

bool http_closes(const atr_http_exchange_t *x) {
  return x->closing || !x->req || !x->req->keep_alive;
}

int atr__http_respond(atr_http_exchange_t *x, int status,
                      const char *content_type, const char *body,
                      size_t body_len) {
  if (!x || x->status != 0 || status < 100 || status > 599)
    return ATR_EINVAL;
  char len[32];
  snprintf(len, sizeof len, "%zu", body_len);
  int rc = put_head(x, status, content_type, http_closes(x));
  put_header(x, "Content-Length", len);
  put(x, "\r\n", 2);
  if (body_len > 0 && !(x->req && x->req->head))
    rc = put(x, body, body_len);
  x->status = status;
  return rc;
}

int atr__http_stream_begin(atr_http_exchange_t *x, int status,
                           const char *content_type) {
  /* inside a session only the transport keeps streams (the events one) */
  if (!x || x->status != 0 || status < 100 || status > 599 ||
      (x->req && x->req->stream_id != 0))
    return ATR_EINVAL;
  /* The body ends when the connection closes: no length, no chunking. */
  int rc = put_head(x, status, content_type, true);
  put_header(x, "X-Accel-Buffering", "no");
  put(x, "\r\n", 2);
  x->status = status;
  x->streaming = true;
  return rc;
}

int atr__http_stream_write(atr_http_exchange_t *x, const void *data,
                           size_t len) {
  if (!x || !x->streaming)
    return ATR_EINVAL;
  if (len == 0)
    return 0;
  if (!x->detached)
    return put(x, data, len); /* goes out when the handler returns */
  http_conn_t *c = x->conn;
  if (atomic_load(&c->gone) ||
      atomic_load(&c->queued) + len > HTTP_STREAM_QUEUE_CAP)
    return ATR_EIO;
  http_msg_t *m = calloc(1, sizeof *m);
  char *copy = malloc(len);
  if (!m || !copy) {
    free(m);
    free(copy);
    return ATR_ENOMEM;
  }
  memcpy(copy, data, len);
  *m =
      (http_msg_t){.kind = HTTP_MSG_WRITE, .conn = c, .data = copy, .len = len};
  atomic_fetch_add(&c->queued, len);
  http_post(x->srv, m);
  return 0;
}

bool atr__http_stream_writable(const atr_http_exchange_t *x) {
  return x && x->conn && !atomic_load(&x->conn->gone) &&
         atomic_load(&x->conn->queued) < HTTP_STREAM_QUEUE_CAP / 2;
}

bool atr__http_draining(const atr_http_exchange_t *x) {
  return x && atomic_load(&x->srv->draining);
}

void atr__http_add_header(atr_http_exchange_t *x, const char *name,
                          const char *value) {
  if (!x || x->nextra == 8)
    return;
  x->extra[x->nextra][0] = strdup(name);
  x->extra[x->nextra][1] = strdup(value);
  x->nextra++;
}

const char *atr__http_header(atr_http_exchange_t *x, const char *name) {
  return x ? http_req_header(x->req, name) : NULL;
}

const char *atr__http_target(atr_http_exchange_t *x) {
  return x && x->req->url ? x->req->url : "/";
}

bool atr__http_header_at(atr_http_exchange_t *x, size_t i, const char **name,
                         const char **value) {
  if (!x || i >= (size_t)x->req->nhdr || !x->req->hdr[i].name)
    return false;
  *name = x->req->hdr[i].name;
  *value = x->req->hdr[i].value ? x->req->hdr[i].value : "";
  return true;
}

void http_respond_error(atr_http_exchange_t *x, int status, const char *message,
                        const char *detail) {
  json_t *obj = json_pack("{s:s, s:s}", "message", message, "detail",
                          detail ? detail : "");
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  if (!text) {
    atr__http_respond(x, 500, "text/plain", "out of memory\n", 14);
    return;
  }
  atr__http_respond(x, status, "application/json", text, strlen(text));
  free(text);
}

char *http_refuse(atr_http_server_t *srv, const http_parse_t *ps, size_t *len) {
  /* logged and counted like any request, under the route "rejected";
   * the method is known once the request line's target began */
  http_req_t req = {.keep_alive = false};
  snprintf(req.method, sizeof req.method, "%s",
           ps->req && ps->req->url
               ? http_method_str((enum http_method)ps->p.method)
               : "other");
  atr_http_exchange_t x = {.closing = true,
                           .req = &req,
                           .started_ns = http_now_ns(),
                           .route = "rejected"};
  uuid_t raw;
  uuid_generate_random(raw);
  uuid_unparse_lower(raw, x.request_id);
  http_respond_error(&x, ps->error_status, ps->error_message, ps->error_detail);
  if (srv)
    http_account(srv, &x);
  for (int i = 0; i < x.nextra; i++) {
    free(x.extra[i][0]);
    free(x.extra[i][1]);
  }
  *len = x.out_len;
  return x.out;
}

void http_exchange_free(atr_http_exchange_t *x) {
  if (!x)
    return;
  for (int i = 0; i < x->nextra; i++) {
    free(x->extra[i][0]);
    free(x->extra[i][1]);
  }
  http_upgrade_free(x->upgrade);
  http_req_free(x->req);
  free(x->out);
  free(x->path);
  free(x);
}

void http_account(atr_http_server_t *srv, atr_http_exchange_t *x) {
  char code[8];
  snprintf(code, sizeof code, "%d", x->status);
  double secs = (double)(http_now_ns() - x->started_ns) / 1e9;
  /* Methods a client made up would grow the series without bound. */
  static const char *const known[] = {"GET",    "POST",    "PUT",  "PATCH",
                                      "DELETE", "OPTIONS", "HEAD", NULL};
  const char *method = x->req ? x->req->method : "other";
  const char *m = "other";
  for (const char *const *k = known; *k; k++)
    if (strcmp(method, *k) == 0)
      m = *k;
  const char *route = x->route ? x->route : "unmatched";
  const char *labels[] = {m, route, code};
  atr_metric_add(srv->requests_total, labels, 1);
  atr_metric_observe(srv->request_seconds, labels, secs);
  atr_log(ATR_LOG_INFO, "http", "%s %s %d %.1fms user=%s request_id=%s", m,
          route, x->status, secs * 1000.0, x->who[0] ? x->who : "-",
          x->request_id);
}

/* Connection counters: a refusal is otherwise silent (the socket is
   closed before a byte is read), so an operator could not tell a cap from
   a network fault. */
static int http_register_conn_metrics(atr_http_server_t *srv) {
  static const char *const reason_labels[] = {"reason", NULL};
  srv->refused_total =
      atr_metrics_find("atrium_http_connections_refused_total");
  if (!srv->refused_total &&
      atr_metrics_register("core", ATR_METRIC_COUNTER,
                           "atrium_http_connections_refused_total",
                           "Connections closed unread because of "
                           "http.max_connections (reason max_connections) "
                           "or http.max_connections_per_address (reason "
                           "per_address).",
                           reason_labels, NULL, 0, &srv->refused_total) != 0)
    return -1;
  srv->open_conns = atr_metrics_find("atrium_http_connections_open");
  if (!srv->open_conns &&
      atr_metrics_register("core", ATR_METRIC_GAUGE,
                           "atrium_http_connections_open",
                           "Client connections the HTTP front holds open "
                           "(idle, in a request or streaming).",
                           NULL, NULL, 0, &srv->open_conns) != 0)
    return -1;
  return 0;
}

void http_note_open(atr_http_server_t *srv) {
  atr_metric_set(srv->open_conns, NULL, srv->nconns);
}

void http_note_sessions(atr_http_server_t *srv) {
  atr_metric_set(srv->sessions_open, NULL,
                 (double)atomic_load(&srv->nsessions));
  atr_metric_set(srv->session_bytes, NULL,
                 (double)atomic_load(&srv->session_mem));
}

/* Agent sessions (http_session.c): how many, and what their HTTP/2 state
   costs (the bench prints it beside the RSS it measures). */
static int http_register_session_metrics(atr_http_server_t *srv) {
  srv->sessions_open = atr_metrics_find("atrium_http_sessions_open");
  if (!srv->sessions_open &&
      atr_metrics_register("core", ATR_METRIC_GAUGE,
                           "atrium_http_sessions_open",
                           "Agent sessions (upgraded connections) this "
                           "server holds.",
                           NULL, NULL, 0, &srv->sessions_open) != 0)
    return -1;
  srv->session_bytes = atr_metrics_find("atrium_http_session_nghttp2_bytes");
  if (!srv->session_bytes &&
      atr_metrics_register("core", ATR_METRIC_GAUGE,
                           "atrium_http_session_nghttp2_bytes",
                           "Bytes the HTTP/2 state of all agent sessions "
                           "holds (nghttp2's allocations; each session also "
                           "holds about 10 KiB of WebSocket and connection "
                           "state).",
                           NULL, NULL, 0, &srv->session_bytes) != 0)
    return -1;
  return 0;
}

/* A client opening connections in a loop would otherwise write a log line
   per attempt: one warning per reason per 10 s, with the count since the
   last one. */
void http_note_refused(atr_http_server_t *srv, int reason, const char *ip) {
  static const char *const reasons[] = {"max_connections", "per_address"};
  const char *labels[] = {reasons[reason]};
  atr_metric_add(srv->refused_total, labels, 1);
  uint64_t now = http_now_ms();
  srv->refused[reason].since_log++;
  if (srv->refused[reason].last_log_ms != 0 &&
      now - srv->refused[reason].last_log_ms < 10000)
    return;
  uint64_t window = srv->refused[reason].last_log_ms == 0
                        ? 10
                        : (now - srv->refused[reason].last_log_ms) / 1000;
  if (reason == HTTP_REFUSED_MAX)
    atr_log(ATR_LOG_WARN, "http",
            "refused %llu connections over http.max_connections=%lld (the "
            "last from %s) in the last %llus",
            (unsigned long long)srv->refused[reason].since_log,
            (long long)srv->cfg.max_connections, ip,
            (unsigned long long)window);
  else
    atr_log(ATR_LOG_WARN, "http",
            "refused %llu connections over "
            "http.max_connections_per_address=%lld (the last from %s) in the "
            "last %llus",
            (unsigned long long)srv->refused[reason].since_log,
            (long long)srv->cfg.max_connections_per_address, ip,
            (unsigned long long)window);
  srv->refused[reason].since_log = 0;
  srv->refused[reason].last_log_ms = now;
}

int http_register_metrics(atr_http_server_t *srv) {
  static const char *const req_labels[] = {"method", "route", "code", NULL};
  static const char *const dur_labels[] = {"method", "route", NULL};
  srv->requests_total = atr_metrics_find("atrium_api_requests_total");
  if (!srv->requests_total &&
      atr_metrics_register("core", ATR_METRIC_COUNTER,
                           "atrium_api_requests_total",
                           "HTTP requests served, by method, route template "
                           "and status code.",
                           req_labels, NULL, 0, &srv->requests_total) != 0)
    return -1;
  srv->request_seconds =
      atr_metrics_find("atrium_api_request_duration_seconds");
  if (!srv->request_seconds &&
      atr_metrics_register("core", ATR_METRIC_HISTOGRAM,
                           "atrium_api_request_duration_seconds",
                           "Time to answer an HTTP request, by method and "
                           "route template (a followed log counts until it "
                           "ends).",
                           dur_labels, NULL, 0, &srv->request_seconds) != 0)
    return -1;
  if (http_register_session_metrics(srv) != 0 ||
      http_register_tunnel_metrics(srv) != 0)
    return -1;
  return http_register_conn_metrics(srv);
}
