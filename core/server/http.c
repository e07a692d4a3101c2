/* core/http.c — civetweb glue: one handler for every request. */
#include "http.h"

#include <civetweb.h>
#include <jansson.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "atrium/error.h"
#include "atrium/plugin.h"
#include "host_http.h"
#include "http_exchange.h"
#include "http_path.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "version.h"

struct atr_http_server {
  struct mg_context *mg;
  uint64_t max_body_size;
  uint64_t max_header_size;
  atomic_int in_flight;
  atomic_bool draining;
  atr_metric_t *requests_total;
  atr_metric_t *request_seconds;
  int (*ready)(void *user_data, char **err);
  void *ready_user_data;
  int (*dispatch)(void *, atr_http_exchange_t *, const atr_http_request_t *,
                  const char *, const char *, const char **, char *, size_t);
  void *dispatch_user_data;
};

/* One request on its way through; the opaque atr_http_exchange_t. */
struct atr_http_exchange {
  struct mg_connection *conn;
  const char *request_id;
  bool closing; /* the server is draining: ask the client to reconnect */
  const atomic_bool *draining; /* the server's flag, read by long streams */
  int status;                  /* 0 until answered */
  char *extra[8][2]; /* queued response headers, name and value (owned) */
  int nextra;
};

static pthread_once_t library_once = PTHREAD_ONCE_INIT;

static void library_init(void) {
  mg_init_library(0);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int atr__http_respond(atr_http_exchange_t *x, int status,
                      const char *content_type, const char *body,
                      size_t body_len) {
  if (!x || x->status != 0 || status < 100 || status > 599)
    return ATR_EINVAL;
  char len[32];
  snprintf(len, sizeof len, "%zu", body_len);
  mg_response_header_start(x->conn, status);
  mg_response_header_add(x->conn, "Content-Type",
                         content_type ? content_type : "text/plain", -1);
  mg_response_header_add(x->conn, "Content-Length", len, -1);
  mg_response_header_add(x->conn, "X-Request-Id", x->request_id, -1);
  mg_response_header_add(x->conn, "Cache-Control", "no-store", -1);
  if (x->closing)
    mg_response_header_add(x->conn, "Connection", "close", -1);
  for (int i = 0; i < x->nextra; i++)
    mg_response_header_add(x->conn, x->extra[i][0], x->extra[i][1], -1);
  mg_response_header_send(x->conn);
  if (body_len > 0)
    mg_write(x->conn, body, body_len);
  x->status = status;
  return 0;
}

int atr__http_stream_begin(atr_http_exchange_t *x, int status,
                           const char *content_type) {
  if (!x || x->status != 0 || status < 100 || status > 599)
    return ATR_EINVAL;
  mg_response_header_start(x->conn, status);
  mg_response_header_add(x->conn, "Content-Type", content_type, -1);
  mg_response_header_add(x->conn, "X-Request-Id", x->request_id, -1);
  mg_response_header_add(x->conn, "Cache-Control", "no-store", -1);
  /* The body ends when the connection closes: no length, no chunking. */
  mg_response_header_add(x->conn, "Connection", "close", -1);
  mg_response_header_add(x->conn, "X-Accel-Buffering", "no", -1);
  for (int i = 0; i < x->nextra; i++)
    mg_response_header_add(x->conn, x->extra[i][0], x->extra[i][1], -1);
  mg_response_header_send(x->conn);
  x->status = status;
  return 0;
}

int atr__http_stream_write(atr_http_exchange_t *x, const void *data,
                           size_t len) {
  if (!x || x->status == 0)
    return ATR_EINVAL;
  if (len == 0)
    return 0;
  return mg_write(x->conn, data, len) == (int)len ? 0 : ATR_EIO;
}

bool atr__http_draining(const atr_http_exchange_t *x) {
  return x && x->draining && atomic_load(x->draining);
}

void atr__http_add_header(atr_http_exchange_t *x, const char *name,
                          const char *value) {
  if (!x || x->nextra == 8)
    return;
  x->extra[x->nextra][0] = strdup(name);
  x->extra[x->nextra][1] = strdup(value);
  x->nextra++;
}

static void free_extra_headers(atr_http_exchange_t *x) {
  for (int i = 0; i < x->nextra; i++) {
    free(x->extra[i][0]);
    free(x->extra[i][1]);
  }
  x->nextra = 0;
}

const char *atr__http_header(atr_http_exchange_t *x, const char *name) {
  return x ? mg_get_header(x->conn, name) : NULL;
}

static void respond_json(atr_http_exchange_t *x, int status, json_t *obj) {
  char *text = json_dumps(obj, JSON_COMPACT);
  json_decref(obj);
  if (!text) {
    atr__http_respond(x, 500, "text/plain", "out of memory\n", 14);
    return;
  }
  atr__http_respond(x, status, "application/json", text, strlen(text));
  free(text);
}

/* The error shape of ARCHITECTURE.md: {"message", "detail"}. */
static void respond_error(atr_http_exchange_t *x, int status,
                          const char *message, const char *detail) {
  respond_json(x, status,
               json_pack("{s:s, s:s}", "message", message, "detail",
                         detail ? detail : ""));
}

static void handle_buildinfo(atr_http_exchange_t *x) {
  char abi[32];
  snprintf(abi, sizeof abi, "%d.%d", ATR_ABI_MAJOR, ATR_ABI_MINOR);
  respond_json(x, 200,
               json_pack("{s:s, s:s, s:s}", "version", ATR_VERSION, "commit",
                         ATR_COMMIT, "plugin_abi", abi));
}

/* Liveness (/healthz) says the process serves; readiness says it can do
 * real work, which for now means its database answers. */
static void handle_readyz(atr_http_server_t *srv, atr_http_exchange_t *x) {
  char *err = NULL;
  int rc = srv->ready ? srv->ready(srv->ready_user_data, &err) : 0;
  if (rc == 0)
    atr__http_respond(x, 200, "text/plain", "OK", 2);
  else
    respond_error(x, 503, "The server is not ready.",
                  err ? err : atr_strerror(rc));
  free(err);
}

/* The core's own routes. Returns the route template it served, or NULL. */
static const char *dispatch_core(atr_http_server_t *srv, atr_http_exchange_t *x,
                                 const char *method, const char *path) {
  int get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
  if (strcmp(path, "/healthz") == 0) {
    if (get)
      atr__http_respond(x, 200, "text/plain", "OK", 2);
    return "/healthz";
  }
  if (strcmp(path, "/readyz") == 0) {
    if (get)
      handle_readyz(srv, x);
    return "/readyz";
  }
  if (strcmp(path, "/api/v2/buildinfo") == 0) {
    if (get)
      handle_buildinfo(x);
    return "/api/v2/buildinfo";
  }
  return NULL;
}

static void method_not_allowed(atr_http_exchange_t *x, const char *method,
                               const char *path) {
  char detail[512];
  snprintf(detail, sizeof detail, "%s is not allowed on %s.", method, path);
  respond_error(x, 405, "Method not allowed.", detail);
}

static void dispatch_plugin(atr_http_exchange_t *x,
                            const atr_http_request_t *req) {
  atr_route_fn fn = NULL;
  void *ud = NULL;
  int rc = atr_routes_lookup(req->method, req->path, &fn, &ud);
  if (rc == ATR_EPERM) {
    method_not_allowed(x, req->method, req->path);
    return;
  }
  if (rc != 0) {
    char detail[512];
    snprintf(detail, sizeof detail, "No route for %s %s.", req->method,
             req->path);
    respond_error(x, 404, "Route not found.", detail);
    return;
  }
  rc = fn(ud, x, req);
  if (x->status == 0 && rc == ATR_EUNAVAIL)
    respond_error(x, 503, "Service unavailable.",
                  "A backend (such as the database) cannot be reached; "
                  "retry shortly.");
  else if (x->status == 0)
    respond_error(x, 500, "Internal error.",
                  rc < 0 ? atr_strerror(rc) : "The handler sent no response.");
}

/* Reads the whole body into *out (NULL when empty). 413 when too large. */
static int read_body(atr_http_exchange_t *x, uint64_t cap, char **out,
                     size_t *len) {
  const struct mg_request_info *ri = mg_get_request_info(x->conn);
  *out = NULL;
  *len = 0;
  if (ri->content_length > 0 && (uint64_t)ri->content_length > cap) {
    respond_error(x, 413, "Request body too large.",
                  "The request body is larger than http.max_body_size.");
    return -1;
  }
  size_t size = 0, used = 0;
  char *buf = NULL, chunk[8192];
  int n;
  while ((n = mg_read(x->conn, chunk, sizeof chunk)) > 0) {
    if (used + (size_t)n > cap) {
      free(buf);
      respond_error(x, 413, "Request body too large.",
                    "The request body is larger than http.max_body_size.");
      return -1;
    }
    if (used + (size_t)n > size) {
      size = (used + (size_t)n) * 2;
      char *grown = realloc(buf, size);
      if (!grown) {
        free(buf);
        respond_error(x, 500, "Internal error.", "out of memory");
        return -1;
      }
      buf = grown;
    }
    memcpy(buf + used, chunk, (size_t)n);
    used += (size_t)n;
  }
  *out = buf;
  *len = used;
  return 0;
}

static void account(atr_http_server_t *srv, const atr_http_exchange_t *x,
                    const char *method, const char *route, const char *who,
                    uint64_t started) {
  int status = x->status;
  char code[8];
  snprintf(code, sizeof code, "%d", status);
  double secs = (double)(now_ns() - started) / 1e9;
  /* Methods a client made up would grow the series without bound. */
  static const char *const known[] = {"GET",    "POST",    "PUT",  "PATCH",
                                      "DELETE", "OPTIONS", "HEAD", NULL};
  const char *m = "other";
  for (const char *const *k = known; *k; k++)
    if (strcmp(method, *k) == 0)
      m = *k;
  const char *labels[] = {m, route, code};
  atr_metric_add(srv->requests_total, labels, 1);
  atr_metric_observe(srv->request_seconds, labels, secs);
  atr_log(ATR_LOG_INFO, "http", "%s %s %d %.1fms user=%s request_id=%s", method,
          route, status, secs * 1000.0, who[0] ? who : "-", x->request_id);
}

static bool headers_too_large(const struct mg_request_info *ri, uint64_t cap) {
  uint64_t total = strlen(ri->request_uri ? ri->request_uri : "") +
                   (ri->query_string ? strlen(ri->query_string) : 0);
  for (int i = 0; i < ri->num_headers; i++)
    total += strlen(ri->http_headers[i].name) +
             strlen(ri->http_headers[i].value) + 4;
  return total > cap;
}

/* A request the core does not answer itself: read its body, then the API,
 * else a plugin's route. The route template for logs and metrics. */
static const char *dispatch_rest(atr_http_server_t *srv, atr_http_exchange_t *x,
                                 const struct mg_request_info *ri,
                                 const char *path, char *who, size_t who_size) {
  const char *route = NULL;
  char *body = NULL;
  size_t body_len = 0;
  if (read_body(x, srv->max_body_size, &body, &body_len) == 0) {
    atr_http_request_t req = {.struct_size = sizeof req,
                              .method = ri->request_method,
                              .path = path,
                              .query = ri->query_string,
                              .body = body,
                              .body_len = body_len,
                              .request_id = x->request_id};
    if (!srv->dispatch ||
        !srv->dispatch(srv->dispatch_user_data, x, &req, ri->remote_addr,
                       mg_get_header(x->conn, "User-Agent"), &route, who,
                       who_size))
      dispatch_plugin(x, &req);
  }
  free(body);
  /* Unknown paths are one label value, so scanners cannot grow the
   * metric's cardinality. */
  return route ? route : x->status == 404 ? "unmatched" : path;
}

/* What is refused before any route runs (a bad path, oversized headers,
 * draining), answered; the route label, or NULL to go on. */
static const char *refuse_early(atr_http_server_t *srv, atr_http_exchange_t *x,
                                const struct mg_request_info *ri,
                                const char *decoded, const char *why) {
  if (!decoded) {
    respond_error(x, 400, "Invalid request path.", why);
    return "rejected";
  }
  if (headers_too_large(ri, srv->max_header_size)) {
    respond_error(x, 431, "Request header fields too large.",
                  "The request line and headers are larger than "
                  "http.max_header_size.");
    return "rejected";
  }
  if (x->closing) {
    respond_error(x, 503, "Server is shutting down.",
                  "Retry the request on another replica or after restart.");
    return "draining";
  }
  return NULL;
}

static int handle_request(struct mg_connection *conn, void *cbdata) {
  atr_http_server_t *srv = cbdata;
  uint64_t started = now_ns();
  atomic_fetch_add(&srv->in_flight, 1);
  const struct mg_request_info *ri = mg_get_request_info(conn);
  uuid_t raw;
  char rid[37];
  uuid_generate_random(raw);
  uuid_unparse_lower(raw, rid);
  /* in_flight goes up before draining is read: a request the drain does
   * not see in in_flight is sure to see draining and get a 503. */
  atr_http_exchange_t x = {.conn = conn,
                           .request_id = rid,
                           .closing = atomic_load(&srv->draining),
                           .draining = &srv->draining};
  const char *method = ri->request_method;
  const char *why = NULL;
  char *decoded =
      atr_http_path_decode(ri->local_uri ? ri->local_uri : "/", &why);
  const char *path = decoded ? decoded : "/";
  char who[65] = "";
  const char *route = refuse_early(srv, &x, ri, decoded, why);
  if (!route)
    route = dispatch_core(srv, &x, method, path);
  if (route && x.status == 0)
    method_not_allowed(&x, method, path);
  if (!route)
    route = dispatch_rest(srv, &x, ri, path, who, sizeof who);
  free_extra_headers(&x);
  account(srv, &x, method, route, who, started);
  free(decoded);
  atomic_fetch_sub(&srv->in_flight, 1);
  return x.status;
}

static int log_message(const struct mg_connection *conn, const char *msg) {
  (void)conn;
  atr_log(ATR_LOG_WARN, "http", "%s", msg);
  return 1;
}

static int register_metrics(atr_http_server_t *srv) {
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
  return 0;
}

int atr_http_start(const atr_http_config_t *cfg, atr_http_server_t **out,
                   char **err) {
  pthread_once(&library_once, library_init);
  atr_host_http_bind(&(atr_host_http_t){.respond = atr__http_respond,
                                        .header = atr__http_header});
  atr_http_server_t *srv = calloc(1, sizeof *srv);
  if (!srv || register_metrics(srv) != 0) {
    free(srv);
    *err = strdup("cannot set up the HTTP server: out of memory");
    return ATR_ENOMEM;
  }
  srv->max_body_size = cfg->max_body_size;
  srv->max_header_size = cfg->max_header_size;
  srv->ready = cfg->ready;
  srv->ready_user_data = cfg->ready_user_data;
  srv->dispatch = cfg->dispatch;
  srv->dispatch_user_data = cfg->dispatch_user_data;
  char threads[32], timeout[32], request_size[32];
  snprintf(threads, sizeof threads, "%lld", (long long)cfg->threads);
  /* civetweb answers a bare 400 past its own limit, so it gets room to
   * spare and the 431 comes from handle_request (headers_too_large). */
  snprintf(request_size, sizeof request_size, "%llu",
           (unsigned long long)(cfg->max_header_size * 2 > 16384
                                    ? cfg->max_header_size * 2
                                    : 16384));
  snprintf(timeout, sizeof timeout, "%lld", (long long)cfg->request_timeout_ms);
  const char *options[] = {"listening_ports", cfg->address, "num_threads",
                           threads, "request_timeout_ms", timeout,
                           "enable_keep_alive", "yes",
                           /* raw paths: http_path.c decodes and checks */
                           "decode_url", "no",
                           /* no CORS grants: the API is same-origin */
                           "access_control_allow_origin", "", NULL};
  struct mg_callbacks callbacks = {.log_message = log_message};
  struct mg_init_data init = {.callbacks = &callbacks,
                              .configuration_options = options};
  char text[256] = "";
  unsigned code = 0;
  struct mg_error_data error = {
      .code = &code, .text = text, .text_buffer_size = sizeof text};
  srv->mg = mg_start2(&init, &error);
  if (!srv->mg) {
    if (asprintf(err, "http.address: cannot listen on %s: %s", cfg->address,
                 text[0] ? text : "unknown error") < 0)
      *err = NULL;
    free(srv);
    return ATR_EIO;
  }
  mg_set_request_handler(srv->mg, "/", handle_request, srv);
  *out = srv;
  return 0;
}

/* One listener entry "host:port" / "[v6]:port" / "port" → a connect and
 * hang-up. Wildcard hosts are reached on loopback. */
static void wake_one(const char *entry) {
  char host[128] = "127.0.0.1", port[16];
  const char *colon = strrchr(entry, ':');
  if (!colon) {
    snprintf(port, sizeof port, "%s", entry);
  } else {
    size_t n = (size_t)(colon - entry);
    if (entry[0] == '[' && n >= 2)
      snprintf(host, sizeof host, "%.*s", (int)(n - 2), entry + 1);
    else if (n > 0)
      snprintf(host, sizeof host, "%.*s", (int)n, entry);
    snprintf(port, sizeof port, "%s", colon + 1);
  }
  if (strcmp(host, "0.0.0.0") == 0)
    snprintf(host, sizeof host, "127.0.0.1");
  else if (strcmp(host, "::") == 0)
    snprintf(host, sizeof host, "::1");
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                           .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV};
  struct addrinfo *ai = NULL;
  if (getaddrinfo(host, port, &hints, &ai) != 0)
    return;
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd >= 0) {
    (void)connect(fd, ai->ai_addr, ai->ai_addrlen);
    close(fd);
  }
  freeaddrinfo(ai);
}

void atr_http_wake(const char *address) {
  char copy[256];
  snprintf(copy, sizeof copy, "%s", address);
  char *save = NULL;
  for (char *e = strtok_r(copy, ",", &save); e; e = strtok_r(NULL, ",", &save))
    wake_one(e);
}

void atr_http_drain(atr_http_server_t *srv) {
  atomic_store(&srv->draining, true);
}

void atr_http_stop(atr_http_server_t *srv) {
  if (!srv)
    return;
  mg_stop(srv->mg);
  free(srv);
}

int atr_http_in_flight(const atr_http_server_t *srv) {
  return atomic_load(&srv->in_flight);
}
