/* core/server/http.c — start, drain and stop the HTTP front (see http.h
 * and http_internal.h for the pieces). */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "atrium/error.h"
#include "host_http.h"
#include "http_internal.h"
#include "log.h"

/* Thousands of connections need thousands of descriptors; the soft limit
 * is often 1024 while the hard one is far higher. */
static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max)
    return;
  rlim_t before = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
    atr_log(ATR_LOG_DEBUG, "http", "open file limit raised from %llu to %llu",
            (unsigned long long)before, (unsigned long long)rl.rlim_cur);
}

static void destroy(atr_http_server_t *srv) {
  http_pump_stop(srv);
  http_lane_stop(&srv->workers);
  http_lane_stop(&srv->probe);
  http_lane_stop(&srv->agents);
  http_loop_stop(srv);
  http_lane_free(&srv->workers);
  http_lane_free(&srv->probe);
  http_lane_free(&srv->agents);
  http_pump_free(srv);
  http_loop_free(srv);
  http_sessions_free(srv);
  free(srv->address);
  free(srv);
}

static atr_http_server_t *server_new(const atr_http_config_t *cfg) {
  atr_http_server_t *srv = calloc(1, sizeof *srv);
  if (!srv)
    return NULL;
  srv->cfg = *cfg;
  srv->address = strdup(cfg->address ? cfg->address : "127.0.0.1:3000");
  if (srv->cfg.header_timeout_ms <= 0)
    srv->cfg.header_timeout_ms = 10000;
  if (srv->cfg.idle_timeout_ms <= 0)
    srv->cfg.idle_timeout_ms = 60000;
  if (srv->cfg.request_timeout_ms <= 0)
    srv->cfg.request_timeout_ms = 30000;
  if (srv->cfg.threads <= 0)
    srv->cfg.threads = 16;
  if (srv->cfg.agent_threads <= 0)
    srv->cfg.agent_threads = 2;
  if (srv->cfg.session_heartbeat_ms <= 0)
    srv->cfg.session_heartbeat_ms = 15000;
  if (srv->cfg.session_slow_ms <= 0)
    srv->cfg.session_slow_ms = 30000;
  if (!srv->address || http_register_metrics(srv) != 0 ||
      http_sessions_init(srv) != 0) {
    http_sessions_free(srv);
    free(srv->address);
    free(srv);
    return NULL;
  }
  return srv;
}

int atr_http_start(const atr_http_config_t *cfg, atr_http_server_t **out,
                   char **err) {
  atr_host_http_bind(&(atr_host_http_t){.respond = atr__http_respond,
                                        .header = atr__http_header});
  raise_nofile();
  atr_http_server_t *srv = server_new(cfg);
  if (!srv) {
    *err = strdup("cannot set up the HTTP server: out of memory");
    return ATR_ENOMEM;
  }
  *err = NULL;
  int rc = http_loop_start(srv, err);
  if (rc != 0) {
    if (!*err && asprintf(err, "http.address: cannot listen on %s: %s",
                          srv->address, uv_strerror(rc)) < 0)
      *err = NULL;
    http_loop_free(srv);
    http_sessions_free(srv);
    free(srv->address);
    free(srv);
    return ATR_EIO;
  }
  if (http_pump_start(srv) != 0 ||
      http_lane_start(&srv->workers, srv, (int)srv->cfg.threads) != 0 ||
      http_lane_start(&srv->probe, srv, 1) != 0 ||
      http_lane_start(&srv->agents, srv, (int)srv->cfg.agent_threads) != 0) {
    destroy(srv);
    *err = strdup("cannot start the HTTP server's threads");
    return ATR_EIO;
  }
  *out = srv;
  return 0;
}

void atr_http_drain(atr_http_server_t *srv) {
  atomic_store(&srv->draining, true);
  http_stream_wake_all(srv); /* streams end at their next step */
  /* sessions get GOAWAY and a close 1001: their agents reconnect */
  http_msg_t *m = calloc(1, sizeof *m);
  if (m) {
    *m = (http_msg_t){.kind = HTTP_MSG_SESSION, .op = HTTP_SESSION_DRAIN};
    http_post(srv, m);
  }
}

void atr_http_stop(atr_http_server_t *srv) {
  if (srv)
    destroy(srv);
}

int atr_http_in_flight(const atr_http_server_t *srv) {
  return atomic_load(&srv->in_flight);
}
