/* tests/abi/fixture_opts.c — an observer with an option of each kind the
 * loader's validation and reload must handle: required, bounded, duration,
 * enum, secret, reloadable. */
#include <stdint.h>

#include "atrium/atrium.h"
#include "fixture_marker.h"
#include "fixture_opts.h"

static const char *const modes[] = {"fast", "safe", NULL};

static const atr_option_t opts_options[] = {
    {ATR_OPT_STRING, "endpoint", NULL, ATR_OPT_REQUIRED,
     offsetof(fixture_opts_ctx_t, endpoint), "Where to send events.", NULL, 0,
     0},
    {ATR_OPT_INT, "workers", "4", 0, offsetof(fixture_opts_ctx_t, workers),
     "Worker threads.", NULL, 1, 64},
    {ATR_OPT_DURATION, "timeout", "30s", 0,
     offsetof(fixture_opts_ctx_t, timeout_ms), "Request timeout.", NULL, 0, 0},
    {ATR_OPT_ENUM, "mode", "safe", 0, offsetof(fixture_opts_ctx_t, mode),
     "Delivery mode.", modes, 0, 0},
    {ATR_OPT_SECRET, "token", NULL, ATR_OPT_RELOADABLE,
     offsetof(fixture_opts_ctx_t, token), "API token.", NULL, 0, 0},
    {ATR_OPT_INT, "batch", "10", ATR_OPT_RELOADABLE,
     offsetof(fixture_opts_ctx_t, batch), "Events per batch.", NULL, 1, 1000},
    {ATR_OPT_STRING, "marker", NULL, 0, offsetof(fixture_opts_ctx_t, marker),
     "File that fini() appends the plugin's name to.", NULL, 0, 0},
    {0},
};

static int opts_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                     char **err) {
  return 0;
}

static void opts_fini(void *ctx) {
  fixture_opts_ctx_t *c = ctx;
  fixture_mark(c->marker, "fixture_opts");
}

static int opts_reload(void *ctx, char **err) {
  fixture_opts_ctx_t *c = ctx;
  c->reloads++;
  c->batch_seen_by_reload = c->batch;
  return 0;
}

static const atr_observer_ops_t opts_ops = {
    .struct_size = sizeof(atr_observer_ops_t),
    .on_event = NULL,
};

static const atr_plugin_t opts_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_OBSERVER,
    .name = "fixture_opts",
    .version = "1.0.0",
    .description = "Options of every kind for the loader tests.",
    .options = opts_options,
    .ctx_size = sizeof(fixture_opts_ctx_t),
    .init = opts_init,
    .fini = opts_fini,
    .reload = opts_reload,
    .ops = &opts_ops,
};

ATR_PLUGIN_DEFINE(opts_plugin)
