/* tests/abi/fixture_bad.c — one broken descriptor per build.
 *
 * CMakeLists.txt compiles this file once per refusal the loader must make,
 * each time with one FIX_* definition that breaks one thing; FIX_NAME is the
 * plugin's (and the file's) name. Nothing here may ever run past the entry:
 * init() aborts. */
#include <stdlib.h>

#include "atrium/atrium.h"

#ifndef FIX_ABI_MAJOR
#define FIX_ABI_MAJOR ATR_ABI_MAJOR
#endif
#ifndef FIX_ABI_MINOR
#define FIX_ABI_MINOR ATR_ABI_MINOR
#endif
#ifndef FIX_STRUCT_SIZE
#define FIX_STRUCT_SIZE sizeof(atr_plugin_t)
#endif
#ifndef FIX_KIND
#define FIX_KIND ATR_KIND_STORAGE
#endif
#ifndef FIX_OPS_SIZE
#define FIX_OPS_SIZE sizeof(atr_storage_ops_t)
#endif
#ifndef FIX_DECLARED_NAME
#define FIX_DECLARED_NAME FIX_NAME
#endif
#ifndef FIX_OFFSET
#define FIX_OFFSET 0
#endif
#ifndef FIX_OPTION_SIZE
#define FIX_OPTION_SIZE sizeof(atr_option_t)
#endif

typedef struct bad_ctx {
  int64_t value;
} bad_ctx_t;

static const atr_option_t bad_options[] = {
    {ATR_OPT_INT, "value", "1", 0, FIX_OFFSET, "An int.", NULL, 0, 0},
    {0},
};

static int bad_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                    char **err) {
  abort();
}

/* storage and provisioner ops share the leading struct_size, and the
 * loader reads no further than the size when it refuses. */
static const atr_provisioner_ops_t bad_ops = {.struct_size = FIX_OPS_SIZE};

static const atr_plugin_t bad_plugin = {
    .abi_major = FIX_ABI_MAJOR,
    .abi_minor = FIX_ABI_MINOR,
    .struct_size = FIX_STRUCT_SIZE,
    .kind = FIX_KIND,
    .name = FIX_DECLARED_NAME,
    .version = "0.0.1",
    .description = "A broken descriptor.",
    .options = bad_options,
    .ctx_size = sizeof(bad_ctx_t),
    .init = bad_init,
    .ops = &bad_ops,
    .option_size = FIX_OPTION_SIZE,
};

#ifdef FIX_NULL_DESC
ATR_EXPORT const atr_plugin_t *atrium_plugin_entry(void);
ATR_EXPORT const atr_plugin_t *atrium_plugin_entry(void) {
  return bad_plugin.name ? NULL : &bad_plugin;
}
#else
ATR_PLUGIN_DEFINE(bad_plugin)
#endif
