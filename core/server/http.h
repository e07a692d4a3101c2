/* core/server/http.h — the HTTP server and the core's own routes.
 *
 * An event loop thread owns every connection (no thread per connection);
 * complete requests go to http.threads workers, /healthz is answered on
 * the loop itself and /readyz on a probe thread of its own, so neither
 * waits behind busy workers; agents' requests and sessions have a lane of
 * their own (http.agent_threads); long streams are detached to a pump
 * (docs/architecture.md, "HTTP front and long-lived streams").
 *
 * Every request goes through one handler that assigns a request id, reads
 * the body (413 past http.max_body_size), dispatches to the core's routes
 * (/healthz, /readyz, /api/v2/buildinfo), then to routes plugins added, and answers
 * anything else with the JSON error shape (404, or 405 for a known path with
 * another method). Each request leaves an access-log line and updates the
 * core's HTTP metrics.
 *
 * Threads: start/stop from the main thread (stop may run on a helper thread
 * while the main loop waits); handlers run on the worker threads.
 */
#ifndef ATRIUM_CORE_HTTP_H
#define ATRIUM_CORE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "http_exchange.h"

typedef struct atr_http_server atr_http_server_t;

typedef struct atr_http_config {
  const char *address; /* "127.0.0.1:3000", "[::1]:3000" */
  int64_t threads;
  int64_t request_timeout_ms;
  uint64_t max_body_size;
  uint64_t max_header_size;  /* request line + headers; larger get 431 */
  int64_t header_timeout_ms; /* first byte to last header; per body read */
  int64_t idle_timeout_ms;   /* a kept-alive connection with no request */
  int64_t max_connections;   /* open at once; 0: no cap */
  int64_t max_connections_per_address; /* from one client address; 0: off */
  /* Block until something streams may want changed (a generation other
   * than `seen`) or timeout_ms passed; the generation now. Streams are
   * stepped after each change. NULL: streams only tick. */
  uint64_t (*wait_change)(void *user_data, uint64_t seen, int64_t timeout_ms);
  void *wait_change_user_data;
  /* GET /readyz: 0 when the server can do real work (its database
   * answers), else a negative ATR_E* with *err saying why (→ 503). */
  int (*ready)(void *user_data, char **err);
  void *ready_user_data;
  /* The layer above that answers /api/ paths (atr_api_dispatch, set by
   * whoever starts the server, so this layer never calls up): 1 when it
   * answered, 0 when the path is not its own. *route_template gets the
   * matched pattern for logs and metrics, who the signed-in username. NULL
   * serves no API routes. */
  int (*dispatch)(void *user_data, atr_http_exchange_t *x,
                  const atr_http_request_t *req, const char *remote_ip,
                  const char *user_agent, const char **route_template,
                  char *who, size_t who_size);
  void *dispatch_user_data;
  /* Threads of the agents lane: session upgrades, requests inside
   * sessions and plain requests under /api/v2/workspaceagents/me/, kept
   * apart from the API's workers. 0 takes 2. */
  int64_t agent_threads;
  /* A session sends an HTTP/2 PING this often and closes when nothing
   * arrived for 3 intervals. 0 takes 15 s. */
  int64_t session_heartbeat_ms;
  /* A session whose output stays blocked (the agent does not read) this
   * long is closed with reason too_slow; checked at each heartbeat tick.
   * 0 takes 30 s (tests set less). */
  int64_t session_slow_ms;
} atr_http_config_t;

/* Binds and starts serving. On failure *err says what could not be bound. */
int atr_http_start(const atr_http_config_t *cfg, atr_http_server_t **out,
                   char **err);
/* Start draining: from now on new requests get 503 with "Connection:
 * close", while requests already inside a handler go on. Any thread. */
void atr_http_drain(atr_http_server_t *srv);
/* Close the listeners and connections, join the threads, free. Answers
 * still being written are cut off, so drain and wait for
 * atr_http_in_flight() to reach 0 first. */
void atr_http_stop(atr_http_server_t *srv);
/* Requests being handled right now, detached streams included. */
int atr_http_in_flight(const atr_http_server_t *srv);

/* Sessions (upgraded connections, http_exchange.h). Write one line (a
 * newline is added) to the events stream of the session keyed by key, if
 * this server holds it: 1 when queued, 0 when there is no such session or
 * it has no events stream open. Any thread. */
int atr_http_session_post(atr_http_server_t *srv, const char *key,
                          const char *line);
/* Close the session keyed by key (its token was revoked): closed() gets
 * reason. 1 when there was one. Any thread. */
int atr_http_session_close(atr_http_server_t *srv, const char *key,
                           const char *reason);
/* Sessions open now. */
int64_t atr_http_sessions(const atr_http_server_t *srv);

#endif
