/* tests/abi/fixture_health.c — an observer with a health callback, built
 * twice: as fixture_health (this SDK's descriptor), and as
 * fixture_health_old with FIX_OLD_DESC, whose struct_size stops before the
 * health field as a plugin built before it was appended would. The host
 * must never call the old one's callback: it answers "unhealthy", which
 * the loader test would notice. */
#include <stdlib.h>
#include <string.h>

#include "atrium/atrium.h"

static int health_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                       char **err) {
  return 0;
}

static void health_fini(void *ctx) {}

static int health_check(void *ctx, char **message) {
#ifdef FIX_OLD_DESC
  *message = strdup("called past the descriptor's struct_size");
  return ATR_HEALTH_UNHEALTHY;
#else
  *message = strdup("half the widgets are out");
  return ATR_HEALTH_DEGRADED;
#endif
}

static const atr_observer_ops_t health_ops = {
    .struct_size = sizeof(atr_observer_ops_t),
    .on_event = NULL,
};

static const atr_plugin_t health_plugin = {
    .abi_major = ATR_ABI_MAJOR,
    .abi_minor = ATR_ABI_MINOR,
#ifdef FIX_OLD_DESC
    .struct_size = offsetof(atr_plugin_t, health),
#else
    .struct_size = sizeof(atr_plugin_t),
#endif
    .kind = ATR_KIND_OBSERVER,
    .name = FIX_NAME,
    .version = "1.0.0",
    .description = "A health callback for the loader tests.",
    .options = NULL,
    .ctx_size = 8,
    .init = health_init,
    .fini = health_fini,
    .ops = &health_ops,
    .health = health_check,
};

ATR_PLUGIN_DEFINE(health_plugin)
