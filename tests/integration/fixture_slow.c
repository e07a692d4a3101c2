/* A test plugin: GET /fixture/slow sleeps `delay` and answers with the delay
 * it used; `delay` is reloadable; `token` is a secret. */
#include <atrium/atrium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct slow {
  int64_t delay_ms;
  const char *token;
  const atr_host_t *host;
  atr_handle_t *h;
} slow_t;

static const atr_option_t slow_options[] = {
    {ATR_OPT_DURATION, "delay", "1s", ATR_OPT_RELOADABLE,
     offsetof(slow_t, delay_ms), "How long /fixture/slow takes.", NULL, 0,
     60000},
    {ATR_OPT_SECRET, "token", NULL, 0, offsetof(slow_t, token),
     "A secret that must never be printed.", NULL, 0, 0},
    {0},
};

static int slow_route(void *ud, atr_http_exchange_t *x,
                      const atr_http_request_t *req) {
  slow_t *s = ud;
  (void)req;
  int64_t delay = s->delay_ms;
  /* a test waits for this line, not a guess, before it signals the server
   * mid-request */
  s->host->log(s->h, ATR_LOG_INFO, "slow request began, delay %lld ms",
               (long long)delay);
  struct timespec ts = {.tv_sec = delay / 1000,
                        .tv_nsec = (delay % 1000) * 1000000};
  nanosleep(&ts, NULL);
  char body[64];
  int n = snprintf(body, sizeof body, "slept %lld ms", (long long)delay);
  return s->host->http_respond(x, 200, "text/plain", body, (size_t)n);
}

static int slow_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                     char **err) {
  slow_t *s = ctx;
  (void)err;
  s->host = host;
  s->h = h;
  host->log(h, ATR_LOG_INFO, "ready, delay %lld ms", (long long)s->delay_ms);
  return host->route_add(h, "GET", "/fixture/slow", slow_route, s);
}

static void slow_fini(void *ctx) {
  (void)ctx;
}

static int slow_reload(void *ctx, char **err) {
  slow_t *s = ctx;
  (void)err;
  s->host->log(s->h, ATR_LOG_INFO, "reloaded, delay %lld ms",
               (long long)s->delay_ms);
  return 0;
}

static const atr_observer_ops_t slow_ops = {
    .struct_size = sizeof(atr_observer_ops_t),
};

static const atr_plugin_t slow_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_OBSERVER,
    .name = "fixture_slow",
    .version = "1.0.0",
    .description = "Test plugin with a slow route",
    .options = slow_options,
    .ctx_size = sizeof(slow_t),
    .init = slow_init,
    .fini = slow_fini,
    .reload = slow_reload,
    .ops = &slow_ops,
};

ATR_PLUGIN_DEFINE(slow_plugin)
