/* core/main_server.c — `atrium server`: the main loop, and where every layer
 * is put together. */
#include "main_server.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "agent_writer.h"
#include "api.h"
#include "api_agent_me.h"
#include "atrium/error.h"
#include "events.h"
#include "http.h"
#include "integrity.h"
#include "log.h"
#include "metrics.h"
#include "policy_hooks.h"
#include "provd.h"
#include "ratelimit.h"
#include "stats.h"
#include "version.h"

typedef struct server {
  atr_app_t *app;
  uv_loop_t loop;
  uv_signal_t sigterm, sigint, sighup;
  uv_timer_t tick;
  uv_timer_t grace;
  uv_timer_t drain_poll;
  uv_async_t drained;
  uv_thread_t stopper;
  bool stopper_started;
  atr_http_server_t *http;
  atr_metric_t *in_flight;
  atr_api_env_t api;
  atr_events_t *events;
  atr_provd_t *provd;
  /* What agent events reach (on the store's pub/sub thread): the server
   * while it serves, NULL from the moment it stops. */
  pthread_mutex_t hook_lock;
  atr_http_server_t *hook_http; /* hook_lock */
  uv_timer_t agent_heartbeat;
  uv_work_t heartbeat_work;
  bool heartbeat_busy;
  unsigned agent_ticks; /* heartbeat_work's own */
  int exit_code;
  bool stopping;
} server_t;

/* How often SQLite's quick_check runs after the one at start: it reads
 * every page, so not often; an hour bounds how long damage goes unseen. */
#define INTEGRITY_INTERVAL_MS INT64_C(3600000) /* an hour */

static void close_handle(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

/* The daemons first (their jobs are canceled through the plugins and end
 * failed, with the state the plugins returned), then the event hub. */
static void stop_jobs(server_t *s) {
  /* the HTTP server stopped: no report is queued any more; what is
   * queued is committed (bounded by 5 s) while the store is open */
  atr_agent_writer_stop();
  atr_provd_stop(s->provd);
  s->provd = NULL;
  atr_events_stop(s->events);
  atr_integrity_stop();
  atr_stats_fini();
  atr_api_agent_metrics_fini();
}

/* How long the disconnects of the sessions the drain closed may take to
 * record after the HTTP server stopped (thousands of agents: one
 * transaction each). */
#define DRAINED_DISCONNECTS_MS 3000

static void on_drained(uv_async_t *async) {
  server_t *s = async->data;
  uv_timer_stop(&s->drain_poll);
  uv_thread_join(&s->stopper);
  s->stopper_started = false;
  s->http = NULL;
  atr_api_agent_record_drained(DRAINED_DISCONNECTS_MS);
  stop_jobs(s);
  atr_log(ATR_LOG_INFO, "server", "stopped serving; exiting");
  uv_walk(&s->loop, close_handle, NULL);
}

static void on_grace_expired(uv_timer_t *t) {
  server_t *s = t->data;
  atr_log(ATR_LOG_ERROR, "server",
          "%d request(s) still running after shutdown_grace (%lldms); "
          "exiting without waiting for them",
          s->http ? atr_http_in_flight(s->http) : 0,
          (long long)s->app->core.shutdown_grace_ms);
  /* Worker threads are still inside handlers: leave without running
   * atexit handlers or plugin fini() under their feet. */
  _exit(1);
}

static void stop_http(void *arg) {
  server_t *s = arg;
  pthread_mutex_lock(&s->hook_lock);
  s->hook_http = NULL; /* no agent event reaches a stopped server */
  pthread_mutex_unlock(&s->hook_lock);
  atr_http_stop(s->http);
  uv_async_send(&s->drained);
}

/* Stopping the HTTP server cuts off answers still being written, so the
 * server first drains (new requests get 503, streams end) until nothing
 * is in flight, then stops it on a helper thread while the loop keeps the
 * grace timer running. */
static void on_drain_poll(uv_timer_t *t) {
  server_t *s = t->data;
  if (s->stopper_started)
    return; /* stopping; on_drained follows */
  if (atr_http_in_flight(s->http) > 0)
    return;
  if (uv_thread_create(&s->stopper, stop_http, s) == 0) {
    s->stopper_started = true;
    return;
  }
  stop_http(s); /* no thread: stop here, blocking the loop */
}

static void begin_shutdown(server_t *s, const char *why) {
  if (s->stopping)
    return;
  s->stopping = true;
  atr_api_agent_sessions_stopping();
  atr_http_drain(s->http);
  atr_log(ATR_LOG_INFO, "server",
          "%s: finishing %d in-flight request(s), then exiting", why,
          atr_http_in_flight(s->http));
  uv_timer_stop(&s->tick);
  uv_timer_stop(&s->agent_heartbeat);
  uv_timer_start(&s->grace, on_grace_expired,
                 (uint64_t)s->app->core.shutdown_grace_ms, 0);
  uv_timer_start(&s->drain_poll, on_drain_poll, 0, 10);
}

static atr_policy_limits_t policy_limits(const atr_core_config_t *c) {
  return (atr_policy_limits_t){.instructions = (uint64_t)c->policy_instructions,
                               .time_ms = c->policy_time_ms,
                               .memory = c->policy_memory};
}

static void on_signal(uv_signal_t *h, int signum) {
  server_t *s = h->data;
  if (signum == SIGHUP) {
    atr_log(ATR_LOG_INFO, "server", "SIGHUP: reloading the configuration");
    atr_app_reload(s->app);
    atr_policy_limits_t lim = policy_limits(&s->app->core);
    atr_policy_hooks_reload(s->app->core.policy_files, &lim);
    return;
  }
  begin_shutdown(s, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void on_tick(uv_timer_t *t) {
  server_t *s = t->data;
  atr_metric_set(s->in_flight, NULL, atr_http_in_flight(s->http));
  atr_api_agent_sessions_set(atr_http_sessions(s->http));
}

static void register_core_metrics(server_t *s) {
  static const char *const info_labels[] = {"version", "commit", NULL};
  atr_metric_t *info = NULL;
  if (atr_metrics_register("core", ATR_METRIC_GAUGE, "atrium_build_info",
                           "Always 1; labels carry the build's version.",
                           info_labels, NULL, 0, &info) == 0) {
    const char *values[] = {ATR_VERSION, ATR_COMMIT};
    atr_metric_set(info, values, 1);
  }
  atr_metrics_register("core", ATR_METRIC_GAUGE,
                       "atrium_http_in_flight_requests",
                       "HTTP requests being handled, sampled every second.",
                       NULL, NULL, 0, &s->in_flight);
  atr_api_agent_metrics_init();
}

static void init_loop(server_t *s) {
  uv_loop_init(&s->loop);
  uv_signal_t *sigs[] = {&s->sigterm, &s->sigint, &s->sighup};
  int nums[] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; i++) {
    uv_signal_init(&s->loop, sigs[i]);
    sigs[i]->data = s;
    uv_signal_start(sigs[i], on_signal, nums[i]);
  }
  uv_timer_init(&s->loop, &s->tick);
  uv_timer_init(&s->loop, &s->grace);
  uv_timer_init(&s->loop, &s->drain_poll);
  uv_timer_init(&s->loop, &s->agent_heartbeat);
  s->tick.data = s->grace.data = s->drain_poll.data = s;
  s->agent_heartbeat.data = s->heartbeat_work.data = s;
  uv_async_init(&s->loop, &s->drained, on_drained);
  s->drained.data = s;
}

/* /readyz: the database answers a trivial query, and its last integrity
 * check found no damage. */
static int database_ready(void *ud, char **err) {
  server_t *s = ud;
  atr_db_t db;
  int rc = atr_db_open(&s->app->store, &db, err);
  if (rc != 0)
    return rc;
  int64_t one = 0;
  rc = atr_db_query_int(&db, "SELECT 1", NULL, 0, &one, err);
  atr_db_close(&db);
  char *found = NULL;
  if (rc == 0 && atr_integrity_last(&found, NULL) == ATR_INTEGRITY_DAMAGED) {
    rc = ATR_EIO;
    if (asprintf(err, "the database integrity check failed: %s",
                 found ? found : "(no detail)") < 0)
      *err = NULL;
  }
  free(found);
  return rc;
}

/* Followed logs are stepped when a job changes (http.h wait_change). */
static uint64_t job_changes(void *user_data, uint64_t seen,
                            int64_t timeout_ms) {
  return atr_events_wait(user_data, ATR_EVENT_CHANGED, seen, timeout_ms);
}

/* An agent event (store pub/sub thread; must not block): a stop or delete
 * build asks the agent to shut down, a revoked token ends its session.
 * Only the server holding the session has it; the others find none. */
static void on_agent_event(void *ud, const char *agent_id, const char *what) {
  server_t *s = ud;
  pthread_mutex_lock(&s->hook_lock);
  if (s->hook_http && strcmp(what, "shutdown") == 0)
    atr_http_session_post(s->hook_http, agent_id, "{\"type\":\"shutdown\"}");
  else if (s->hook_http && strcmp(what, "revoked") == 0)
    atr_http_session_close(s->hook_http, agent_id, "revoked");
  pthread_mutex_unlock(&s->hook_lock);
}

/* Off the loop, every AGENT_TICK_MS: the agent gauges sampled from the
 * database; every AGENT_HEARTBEAT_TICKS-th time also the rows of the
 * agents whose sessions this server holds refreshed (agents.h,
 * heartbeat: every minute). */
#define AGENT_TICK_MS 15000
#define AGENT_HEARTBEAT_TICKS 4

static void heartbeat_work(uv_work_t *w) {
  server_t *s = w->data;
  atr_api_agents_sample(s->api.dom.store);
  if (++s->agent_ticks % AGENT_HEARTBEAT_TICKS == 0)
    atr_api_agent_heartbeats(&s->api);
}

static void heartbeat_done(uv_work_t *w, int status) {
  server_t *s = w->data;
  (void)status;
  s->heartbeat_busy = false;
}

static void on_agent_heartbeat(uv_timer_t *t) {
  server_t *s = t->data;
  if (s->heartbeat_busy || s->stopping)
    return;
  if (uv_queue_work(&s->loop, &s->heartbeat_work, heartbeat_work,
                    heartbeat_done) == 0)
    s->heartbeat_busy = true;
}

/* The API answers /api/ paths for the HTTP listener (http.h). */
static int api_dispatch(void *user_data, atr_http_exchange_t *x,
                        const atr_http_request_t *req, const char *remote_ip,
                        const char *user_agent, const char **route_template,
                        char *who, size_t who_size) {
  return atr_api_dispatch(user_data, x, req, remote_ip, user_agent,
                          route_template, who, who_size);
}

static int start_serving(server_t *s, char **err) {
  const atr_core_config_t *c = &s->app->core;
  int rc = atr_app_load_plugins(s->app, true, NULL, err);
  if (rc == 0)
    rc = atr_app_check_flags(s->app, err);
  if (rc == 0)
    rc = atr_app_open_store(s->app, true, err);
  if (rc != 0)
    return rc;
  rc = atr_integrity_start(&s->app->store, INTEGRITY_INTERVAL_MS, err);
  if (rc != 0)
    return rc;
  register_core_metrics(s);
  atr_stats_init();
  atr_policy_limits_t lim = policy_limits(c);
  rc = atr_policy_hooks_configure(c->policy_files, &lim, err);
  if (rc != 0)
    return rc;
  rc = atr_events_start(&s->app->store, &s->events, err);
  if (rc != 0)
    return rc;
  s->api =
      (atr_api_env_t){.dom = {.store = &s->app->store,
                              .events = s->events,
                              .loader = &s->app->loader,
                              .session_lifetime_ms = c->session_lifetime_ms,
                              .token_max_lifetime_ms = c->token_max_lifetime_ms,
                              .file_max_size = c->file_max_size,
                              .file_max_unpacked = c->file_max_unpacked,
                              .file_max_entries = c->file_max_entries},
                      .login_by_ip = atr_ratelimit_new(c->login_rate, 4096),
                      .api_by_user = atr_ratelimit_new(c->api_rate, 1024),
                      .secure_cookies = c->secure_cookies,
                      .app = s->app};
  atr_provd_config_t pc = {
      .store = &s->app->store,
      .events = s->events,
      .loader = &s->app->loader,
      .data_dir = c->data_dir,
      .daemons = c->prov_daemons,
      .tags = c->prov_tags,
      .poll_ms = c->prov_poll_ms,
      .heartbeat_ms = c->prov_heartbeat_ms,
      .hung_ms = c->prov_hung_ms,
      .pending_ms = c->prov_pending_ms,
      .reaper_ms = c->prov_reaper_ms,
      .max_log = c->prov_max_log,
      .archive_limits = {c->file_max_unpacked, (uint64_t)c->file_max_entries},
      .run_as = c->prov_run_as,
      .agent_bundle_dir = c->agent_bundle_dir};
  char *access_url = atr_app_access_url(s->app); /* provd copies it */
  pc.access_url = access_url;
  rc = atr_provd_start(&pc, &s->provd, err);
  free(access_url);
  if (rc != 0)
    return rc;
  atr_http_config_t hc = {.address = c->http_address,
                          .threads = c->http_threads,
                          .request_timeout_ms = c->http_request_timeout_ms,
                          .max_body_size = c->http_max_body_size,
                          .max_header_size = c->http_max_header_size,
                          .header_timeout_ms = c->http_header_timeout_ms,
                          .idle_timeout_ms = c->http_idle_timeout_ms,
                          .max_connections = c->http_max_connections,
                          .max_connections_per_address =
                              c->http_max_connections_per_address,
                          .wait_change = job_changes,
                          .wait_change_user_data = s->events,
                          .ready = database_ready,
                          .ready_user_data = s,
                          .dispatch = api_dispatch,
                          .dispatch_user_data = &s->api,
                          .agent_threads = c->http_agent_threads,
                          .session_heartbeat_ms = c->agent_heartbeat_ms};
  rc = atr_agent_writer_start(&s->api.dom, NULL, err);
  if (rc != 0)
    return rc;
  rc = atr_http_start(&hc, &s->http, err);
  if (rc != 0)
    return rc;
  pthread_mutex_lock(&s->hook_lock);
  s->hook_http = s->http;
  pthread_mutex_unlock(&s->hook_lock);
  atr_events_on_agent(s->events, on_agent_event, s);
  return 0;
}

static void free_limits(server_t *s) {
  if (s->events)
    atr_events_on_agent(s->events, NULL, NULL);
  stop_jobs(s);
  atr_policy_hooks_free();
  atr_events_free(s->events);
  s->events = NULL;
  atr_ratelimit_free(s->api.login_by_ip);
  atr_ratelimit_free(s->api.api_by_user);
}

int atr_server_run(atr_app_t *app) {
  server_t s = {.app = app};
  pthread_mutex_init(&s.hook_lock, NULL);
  char *err = NULL;
  signal(SIGPIPE, SIG_IGN);
  /* Before any thread: the health report's access_url check uses libcurl
   * on HTTP worker threads. */
  curl_global_init(CURL_GLOBAL_DEFAULT);
  init_loop(&s); /* first, so a signal during start-up is not lost */
  int rc = start_serving(&s, &err);
  if (rc != 0) {
    atr_log(ATR_LOG_ERROR, "server", "cannot start: %s",
            err ? err : atr_strerror(rc));
    free(err);
    uv_walk(&s.loop, close_handle, NULL);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    uv_loop_close(&s.loop);
    free_limits(&s);
    pthread_mutex_destroy(&s.hook_lock);
    curl_global_cleanup();
    return 1;
  }
  uv_timer_start(&s.tick, on_tick, 0, 1000);
  uv_timer_start(&s.agent_heartbeat, on_agent_heartbeat, 0, AGENT_TICK_MS);
  atr_log(ATR_LOG_INFO, "server", "atrium %s (%s) listening on http://%s",
          ATR_VERSION, ATR_COMMIT, app->core.http_address);
  uv_run(&s.loop, UV_RUN_DEFAULT);
  uv_loop_close(&s.loop);
  free_limits(&s);
  pthread_mutex_destroy(&s.hook_lock);
  curl_global_cleanup();
  return s.exit_code;
}
