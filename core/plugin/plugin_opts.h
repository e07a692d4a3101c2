/* core/plugin_opts.h — reading a plugin's options while a reload may run.
 *
 * host->option_get_* may be called from any plugin thread, and a reload
 * (main thread, loader.c) swaps new values into the handle's option set. One
 * rwlock in loader.c, opts_lock, orders the two: readers copy the value out
 * under it. A copy's strings stay valid until the plugin's fini(), because a
 * reload keeps replaced values alive in the handle's old_opts.
 */
#ifndef ATRIUM_CORE_PLUGIN_OPTS_H
#define ATRIUM_CORE_PLUGIN_OPTS_H

#include "loader.h"

/* A shallow copy of option `name` of plugin `h`: 0, ATR_ENOENT when the
 * table has no such option or it is unset, ATR_EINVAL for bad arguments. */
int atr__plugin_option(atr_handle_t *h, const char *name, atr_optval_t *out);

#endif
