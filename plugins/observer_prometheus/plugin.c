/* observer_prometheus — every metric in atrium, for Prometheus to scrape.
 *
 * The plugin runs a small civetweb server of its own on `listen_address`
 * (default 127.0.0.1:2112, apart from the API so that the API's port,
 * load balancer and authentication stay out of the way) and answers
 * GET `path` (default /metrics) with the text exposition format 0.0.4:
 * every family the core and any plugin registered through the host, the
 * running plugins as atrium_plugin_info, and the process_* families it
 * reads from /proc/self itself (exposition.c, process.c). See README.md.
 *
 * This file holds the option table, the descriptor, init(), fini() and the
 * request handler. Threads: init() and fini() on the main thread; requests
 * on civetweb's worker threads (internal.h). Memory: the context owns the
 * civetweb context, stopped in fini(); a scrape frees its own buffer.
 */
#include "internal.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Scrapes are short and few (one per Prometheus replica and interval), and
 * without keep-alive no client holds a worker between them. */
#define OP_WORKERS "4"
#define OP_REQUEST_TIMEOUT_MS "10000"

static const atr_option_t prom_options[] = {
    {.type = ATR_OPT_STRING,
     .name = "listen_address",
     .default_value = "127.0.0.1:2112",
     .offset = offsetof(op_ctx_t, listen_address),
     .description = "host:port the metrics listener binds to ([::1]:2112 for "
                    "IPv6, port 0 for any free port); it has no "
                    "authentication, so keep it on a private address."},
    {.type = ATR_OPT_STRING,
     .name = "path",
     .default_value = "/metrics",
     .offset = offsetof(op_ctx_t, path),
     .description = "URL path that serves the metrics; every other path "
                    "answers 404."},
    {0},
};

static int failf(char **err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int failf(char **err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  *err = msg;
  return code;
}

static int reply(struct mg_connection *conn, int status, const char *type,
                 const char *body, size_t len, bool head, const char *allow) {
  char length[32];
  snprintf(length, sizeof length, "%zu", len);
  mg_response_header_start(conn, status);
  mg_response_header_add(conn, "Content-Type", type, -1);
  mg_response_header_add(conn, "Content-Length", length, -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  if (allow != NULL)
    mg_response_header_add(conn, "Allow", allow, -1);
  mg_response_header_send(conn);
  if (!head && len > 0)
    mg_write(conn, body, len);
  return status;
}

static int serve(struct mg_connection *conn, void *cbdata) {
  const op_ctx_t *c = cbdata;
  const struct mg_request_info *ri = mg_get_request_info(conn);
  const char *method = ri->request_method ? ri->request_method : "";
  bool head = strcmp(method, "HEAD") == 0;
  char msg[512];
  if (ri->local_uri == NULL || strcmp(ri->local_uri, c->path) != 0) {
    int n = snprintf(msg, sizeof msg, "Not found: the metrics are at %s\n",
                     c->path);
    return reply(conn, 404, "text/plain; charset=utf-8", msg,
                 n < (int)sizeof msg ? (size_t)n : sizeof msg - 1, head, NULL);
  }
  if (!head && strcmp(method, "GET") != 0) {
    int n = snprintf(msg, sizeof msg, "Method %s is not allowed on %s\n",
                     method, c->path);
    return reply(conn, 405, "text/plain; charset=utf-8", msg,
                 n < (int)sizeof msg ? (size_t)n : sizeof msg - 1, head,
                 "GET, HEAD");
  }
  op_buf_t b = {0};
  op_render(c, &b);
  int status;
  if (b.failed) {
    static const char oom[] = "Out of memory while rendering the metrics\n";
    status = reply(conn, 500, "text/plain; charset=utf-8", oom, sizeof oom - 1,
                   head, NULL);
  } else {
    status = reply(conn, 200, OP_CONTENT_TYPE, b.data, b.len, head, NULL);
  }
  op_buf_free(&b);
  return status;
}

static int log_message(const struct mg_connection *conn, const char *text) {
  const struct mg_context *mg = conn ? mg_get_context(conn) : NULL;
  const op_ctx_t *c = mg ? mg_get_user_data(mg) : NULL;
  if (c != NULL)
    c->host->log(c->h, ATR_LOG_WARN, "civetweb: %s", text);
  return 1;
}

/* "127.0.0.1:2112" → "127.0.0.1"; a bare port listens everywhere. */
static void host_part(const char *address, char *out, size_t size) {
  const char *colon = strrchr(address, ':');
  if (colon == NULL || (address[0] == '[' && colon[-1] != ']')) {
    snprintf(out, size, "0.0.0.0");
    return;
  }
  snprintf(out, size, "%.*s", (int)(colon - address), address);
}

static bool is_loopback(const char *host) {
  return strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 ||
         strcmp(host, "[::1]") == 0;
}

static int check_options(const op_ctx_t *c, char **err) {
  if (c->path == NULL || c->path[0] != '/' || strpbrk(c->path, "?# ") != NULL)
    return failf(err, ATR_ECONFIG,
                 "plugins.observer_prometheus.path: \"%s\" is not a URL "
                 "path; use one that starts with / such as /metrics",
                 c->path ? c->path : "");
  if (c->listen_address == NULL || c->listen_address[0] == '\0' ||
      strpbrk(c->listen_address, ", ") != NULL)
    return failf(err, ATR_ECONFIG,
                 "plugins.observer_prometheus.listen_address: \"%s\" is not "
                 "one host:port; use one address such as 127.0.0.1:2112",
                 c->listen_address ? c->listen_address : "");
  return 0;
}

static int start_listener(op_ctx_t *c, char **err) {
  const char *options[] = {
      "listening_ports",    c->listen_address,     "num_threads", OP_WORKERS,
      "request_timeout_ms", OP_REQUEST_TIMEOUT_MS, NULL};
  struct mg_callbacks callbacks = {.log_message = log_message};
  struct mg_init_data init = {.callbacks = &callbacks,
                              .user_data = c,
                              .configuration_options = options};
  char text[256] = "";
  unsigned code = 0;
  struct mg_error_data error = {
      .code = &code, .text = text, .text_buffer_size = sizeof text};
  mg_init_library(0);
  c->library_held = true;
  c->mg = mg_start2(&init, &error);
  if (c->mg == NULL)
    return failf(err, ATR_EIO,
                 "plugins.observer_prometheus.listen_address: cannot listen "
                 "on %s: %s; free the port or choose another address",
                 c->listen_address, text[0] ? text : "unknown error");
  mg_set_request_handler(c->mg, "/", serve, c);
  return 0;
}

/* The address fini() connects to: the listener's own, or loopback when it
 * listens on every address (or on a name). */
static void set_wake_addr(op_ctx_t *c, const char *host, int port) {
  struct sockaddr_in *v4 = (struct sockaddr_in *)&c->wake_addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&c->wake_addr;
  char bare[128];
  size_t n = strlen(host);
  if (host[0] == '[' && n >= 2 && n - 2 < sizeof bare) {
    snprintf(bare, sizeof bare, "%.*s", (int)(n - 2), host + 1);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)port);
    if (inet_pton(AF_INET6, bare, &v6->sin6_addr) != 1 ||
        IN6_IS_ADDR_UNSPECIFIED(&v6->sin6_addr))
      v6->sin6_addr = in6addr_loopback;
    c->wake_len = sizeof *v6;
    return;
  }
  v4->sin_family = AF_INET;
  v4->sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, host, &v4->sin_addr) != 1 ||
      v4->sin_addr.s_addr == htonl(INADDR_ANY))
    v4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  c->wake_len = sizeof *v4;
}

static int prom_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                     char **err) {
  op_ctx_t *c = ctx;
  c->h = h;
  c->host = host;
  int rc = check_options(c, err);
  if (rc == 0)
    rc = start_listener(c, err);
  if (rc != 0) {
    if (c->library_held)
      mg_exit_library();
    c->library_held = false;
    return rc;
  }
  struct mg_server_port port = {0};
  char where[256];
  host_part(c->listen_address, where, sizeof where);
  if (mg_get_server_ports(c->mg, 1, &port) != 1)
    port.port = 0;
  set_wake_addr(c, where, port.port);
  host->log(h, ATR_LOG_INFO, "serving metrics on http://%s:%d%s", where,
            port.port, c->path);
  if (!is_loopback(where))
    host->log(h, ATR_LOG_WARN,
              "the metrics listener on %s has no authentication; make sure "
              "only Prometheus can reach it",
              c->listen_address);
  return 0;
}

static void *stop_listener(void *arg) {
  op_ctx_t *c = arg;
  mg_stop(c->mg);
  atomic_store(&c->stopped, true);
  return NULL;
}

/* civetweb's accept loop looks at its stop flag only between polls (every
 * two seconds when idle), so mg_stop() runs on a helper thread while this
 * one connects to the listener until it has returned. */
static void prom_fini(void *ctx) {
  op_ctx_t *c = ctx;
  pthread_t stopper;
  if (c->mg != NULL) {
    if (c->wake_len > 0 &&
        pthread_create(&stopper, NULL, stop_listener, c) == 0) {
      while (!atomic_load(&c->stopped)) {
        int fd = socket(c->wake_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
        if (fd >= 0) {
          (void)connect(fd, (const struct sockaddr *)&c->wake_addr,
                        c->wake_len);
          close(fd);
        }
        nanosleep(&(struct timespec){.tv_nsec = 5000000L}, NULL);
      }
      pthread_join(stopper, NULL);
    } else {
      mg_stop(c->mg);
    }
  }
  c->mg = NULL;
  if (c->library_held)
    mg_exit_library();
  c->library_held = false;
}

static const atr_observer_ops_t prom_ops = {
    .struct_size = sizeof(atr_observer_ops_t),
    .on_event = NULL,
};

static const atr_plugin_t prom_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_OBSERVER,
    .name = "observer_prometheus",
    .version = "1.0.0",
    .description = "Prometheus metrics: the text exposition of every "
                   "registered metric plus process metrics, on a listener "
                   "of its own.",
    .options = prom_options,
    .ctx_size = sizeof(op_ctx_t),
    .init = prom_init,
    .fini = prom_fini,
    .ops = &prom_ops,
};

ATR_PLUGIN_DEFINE(prom_plugin)
