/* tests/abi/fixture_initfail.c — registers a route and a metric in init()
 * and then fails, so tests can check that the host rolls both back. With
 * `message: ""` it fails without a message (the host then uses the code). */
#include <stdlib.h>
#include <string.h>

#include "atrium/atrium.h"

typedef struct initfail_ctx {
  const char *message;
} initfail_ctx_t;

static const atr_option_t initfail_options[] = {
    {ATR_OPT_STRING, "message", "database unreachable", 0,
     offsetof(initfail_ctx_t, message), "What init() fails with.", NULL, 0, 0},
    {0},
};

static int noop(void *user_data, atr_http_exchange_t *x,
                const atr_http_request_t *req) {
  return ATR_ENOTSUP;
}

static int initfail_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                         char **err) {
  initfail_ctx_t *c = ctx;
  atr_metric_t *m = NULL;
  if (host->route_add(h, "GET", "/fixture_initfail", noop, NULL) != 0 ||
      host->metric_register(h, ATR_METRIC_GAUGE, "fixture_initfail_up", "Up.",
                            NULL, NULL, 0, &m) != 0) {
    *err = strdup("could not register (unexpected in the tests)");
    return ATR_EPLUGIN;
  }
  host->metric_set(m, NULL, 1);
  if (c->message != NULL && c->message[0] != '\0')
    *err = strdup(c->message);
  return ATR_EUNAVAIL;
}

static void initfail_fini(void *ctx) {
  abort(); /* never after a failed init */
}

static const atr_auth_ops_t initfail_ops = {
    .struct_size = sizeof(atr_auth_ops_t),
    .method = "fixture",
};

static const atr_plugin_t initfail_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_AUTH,
    .name = "fixture_initfail",
    .version = "1.0.0",
    .description = "Fails in init() after registering things.",
    .options = initfail_options,
    .ctx_size = sizeof(initfail_ctx_t),
    .init = initfail_init,
    .fini = initfail_fini,
    .ops = &initfail_ops,
};

ATR_PLUGIN_DEFINE(initfail_plugin)
