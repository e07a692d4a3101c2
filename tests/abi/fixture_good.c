/* tests/abi/fixture_good.c — a well-formed provisioner plugin.
 *
 * init() serves GET /fixture_good/ping and registers a counter, so tests can
 * see registrations survive; options of every scalar type let tests read
 * them through the host table. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/atrium.h"
#include "fixture_marker.h"

typedef struct good_ctx {
  const char *marker;
  const char *greeting;
  double ratio;
  bool verbose;
  uint64_t limit;
  const atr_host_t *host;
  atr_metric_t *inits;
} good_ctx_t;

static const atr_option_t good_options[] = {
    {ATR_OPT_STRING, "marker", NULL, 0, offsetof(good_ctx_t, marker),
     "File that fini() appends the plugin's name to.", NULL, 0, 0},
    {ATR_OPT_STRING, "greeting", "hello", 0, offsetof(good_ctx_t, greeting),
     "What /fixture_good/ping answers.", NULL, 0, 0},
    {ATR_OPT_DOUBLE, "ratio", "0.5", 0, offsetof(good_ctx_t, ratio),
     "A double.", NULL, 0, 1},
    {ATR_OPT_BOOL, "verbose", "false", 0, offsetof(good_ctx_t, verbose),
     "A bool.", NULL, 0, 0},
    {ATR_OPT_SIZE, "limit", "1KiB", 0, ATR_OPT_NO_OFFSET,
     "A size read through the host.", NULL, 0, 0},
    {0},
};

static int ping(void *user_data, atr_http_exchange_t *x,
                const atr_http_request_t *req) {
  good_ctx_t *c = user_data;
  return c->host->http_respond(x, 200, "text/plain", c->greeting,
                               strlen(c->greeting));
}

static int good_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                     char **err) {
  good_ctx_t *c = ctx;
  c->host = host;
  int rc = host->route_add(h, "GET", "/fixture_good/ping", ping, c);
  if (rc == 0)
    rc =
        host->metric_register(h, ATR_METRIC_COUNTER, "fixture_good_inits_total",
                              "Inits.", NULL, NULL, 0, &c->inits);
  if (rc != 0) {
    *err = strdup("registration failed");
    return rc;
  }
  host->metric_add(c->inits, NULL, 1);
  host->log(h, ATR_LOG_INFO, "ready, greeting %s", c->greeting);
  return 0;
}

static void good_fini(void *ctx) {
  good_ctx_t *c = ctx;
  fixture_mark(c->marker, "fixture_good");
}

static int prov_parse(void *ctx, const atr_prov_parse_request_t *req,
                      char **err) {
  return 0;
}

static int prov_apply(void *ctx, const atr_prov_apply_request_t *req,
                      atr_prov_apply_result_t *res, char **err) {
  return ATR_ENOTSUP;
}

static void prov_cancel(void *ctx, atr_prov_job_t *job) {}

static const atr_provisioner_ops_t good_ops = {
    .struct_size = sizeof(atr_provisioner_ops_t),
    .type = "fixture",
    .parse = prov_parse,
    .apply = prov_apply,
    .cancel = prov_cancel,
};

static const atr_plugin_t good_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_PROVISIONER,
    .name = "fixture_good",
    .version = "1.0.0",
    .description = "A well-formed provisioner for the loader tests.",
    .options = good_options,
    .ctx_size = sizeof(good_ctx_t),
    .init = good_init,
    .fini = good_fini,
    .ops = &good_ops,
};

ATR_PLUGIN_DEFINE(good_plugin)
