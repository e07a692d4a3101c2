/* core/server/http_route.c — which code answers a request: what is
 * refused before any route (a bad raw path, draining), the core's own
 * routes, the API, then plugin routes; the answer goes to the loop. */
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
#include "routes.h"
#include "version.h"

static void respond_json(atr_http_exchange_t *x, int status, json_t *obj) {
  char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;
  json_decref(obj);
  if (!text) {
    atr__http_respond(x, 500, "text/plain", "out of memory\n", 14);
    return;
  }
  atr__http_respond(x, status, "application/json", text, strlen(text));
  free(text);
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
  int rc = srv->cfg.ready ? srv->cfg.ready(srv->cfg.ready_user_data, &err) : 0;
  if (rc == 0)
    atr__http_respond(x, 200, "text/plain", "OK", 2);
  else
    http_respond_error(x, 503, "The server is not ready.",
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
  http_respond_error(x, 405, "Method not allowed.", detail);
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
    http_respond_error(x, 404, "Route not found.", detail);
    return;
  }
  rc = fn(ud, x, req);
  if (x->status == 0 && rc == ATR_EUNAVAIL)
    http_respond_error(x, 503, "Service unavailable.",
                       "A backend (such as the database) cannot be reached; "
                       "retry shortly.");
  else if (x->status == 0)
    http_respond_error(x, 500, "Internal error.",
                       rc < 0 ? atr_strerror(rc)
                              : "The handler sent no response.");
}

/* A request the core does not answer itself: the API, else a plugin's
 * route. The route template for logs and metrics. */
static const char *dispatch_rest(atr_http_server_t *srv, atr_http_exchange_t *x,
                                 const char *path, const char *query) {
  const char *route = NULL;
  http_req_t *hr = x->req;
  atr_http_request_t req = {.struct_size = sizeof req,
                            .method = hr->method,
                            .path = path,
                            .query = query,
                            .body = hr->body_len ? hr->body : NULL,
                            .body_len = hr->body_len,
                            .request_id = x->request_id};
  if (!srv->cfg.dispatch ||
      !srv->cfg.dispatch(srv->cfg.dispatch_user_data, x, &req, x->ip,
                         http_req_header(hr, "User-Agent"), &route, x->who,
                         sizeof x->who))
    dispatch_plugin(x, &req);
  /* Unknown paths are one label value, so scanners cannot grow the
   * metric's cardinality. */
  if (route)
    return route;
  return x->status == 404 ? "unmatched" : NULL;
}

/* The path (malloc'd, raw) and query (into target) of a request target;
 * the absolute form "http://host/p" counts from its path. */
static char *split_target(char *target, const char **query) {
  char *t = target;
  if (strncmp(t, "http://", 7) == 0 || strncmp(t, "https://", 8) == 0) {
    char *slash = strchr(strstr(t, "//") + 2, '/');
    t = slash ? slash : (char *)"/";
  }
  char *q = strchr(t, '?');
  *query = q ? q + 1 : NULL;
  return q ? strndup(t, (size_t)(q - t)) : strdup(t);
}

/* Bad path, draining: answered; the route label, or NULL to go on. */
static const char *refuse_early(atr_http_exchange_t *x, const char *decoded,
                                const char *why) {
  if (!decoded) {
    http_respond_error(x, 400, "Invalid request path.", why);
    return "rejected";
  }
  if (x->closing) {
    http_respond_error(x, 503, "Server is shutting down.",
                       "Retry the request on another replica or after "
                       "restart.");
    return "draining";
  }
  return NULL;
}

static void route(atr_http_server_t *srv, atr_http_exchange_t *x) {
  const char *query = NULL;
  char *raw = split_target(x->req->url, &query);
  const char *why = NULL;
  char *decoded = raw ? atr_http_path_decode(raw, &why) : NULL;
  free(raw);
  const char *path = decoded ? decoded : "/";
  const char *method = x->req->method;
  const char *label = refuse_early(x, decoded, why);
  if (!label)
    label = dispatch_core(srv, x, method, path);
  if (label && x->status == 0)
    method_not_allowed(x, method, path);
  if (!label)
    label = dispatch_rest(srv, x, path, query);
  if (!label) {
    snprintf(x->route_buf, sizeof x->route_buf, "%s", path);
    label = x->route_buf;
  }
  x->route = label;
  x->path = decoded;
}

/* The answer to the loop: a detached stream goes to the pump, anything
 * else is finished here. */
static void hand_over(atr_http_server_t *srv, atr_http_exchange_t *x) {
  http_msg_t *m = calloc(1, sizeof *m);
  if (!m)
    abort(); /* the connection's reference could not go back */
  *m = (http_msg_t){.conn = x->conn, .data = x->out, .len = x->out_len};
  x->out = NULL;
  x->out_len = x->out_cap = 0;
  if (x->upgrade && x->status == 101) {
    m->kind = HTTP_MSG_UPGRADE; /* the 101, then the session */
    m->upgrade = x->upgrade;
    x->upgrade = NULL;
    http_account(srv, x);
    http_post(srv, m);
    http_exchange_free(x);
    atomic_fetch_sub(&srv->in_flight, 1);
    return;
  }
  if (x->tunnel) {
    m->kind = HTTP_MSG_TUNNEL; /* the loop owns the connection now */
    m->tunnel = x->tunnel;
    x->tunnel = NULL;
    free(m->data);
    m->data = NULL;
    m->len = 0;
    http_account(srv, x);
    http_post(srv, m);
    http_exchange_free(x);
    atomic_fetch_sub(&srv->in_flight, 1);
    return;
  }
  if (x->detached) {
    m->kind = HTTP_MSG_STREAM;
    m->x = x;
    atomic_fetch_add(&x->conn->queued, m->len);
    http_post(srv, m);
    http_stream_schedule(srv, x);
    return;
  }
  m->kind = HTTP_MSG_DONE;
  m->stream_id = x->req->stream_id;
  m->close = x->streaming || http_closes(x);
  http_account(srv, x);
  http_post(srv, m);
  http_exchange_free(x);
  atomic_fetch_sub(&srv->in_flight, 1);
}

void http_handle(atr_http_server_t *srv, http_req_t *req, http_conn_t *conn,
                 const char *ip) {
  atr_http_exchange_t *x = calloc(1, sizeof *x);
  if (!x)
    abort();
  atomic_fetch_add(&srv->in_flight, 1);
  /* in_flight goes up before draining is read: a request the drain does
   * not see in in_flight is sure to see draining and get a 503. */
  x->srv = srv;
  x->conn = conn;
  x->req = req;
  x->started_ns = http_now_ns();
  x->closing = atomic_load(&srv->draining);
  snprintf(x->ip, sizeof x->ip, "%s", ip);
  uuid_t raw;
  uuid_generate_random(raw);
  uuid_unparse_lower(raw, x->request_id);
  route(srv, x);
  if (x->status == 0)
    http_respond_error(x, 500, "Internal error.", "No response was sent.");
  hand_over(srv, x);
}
