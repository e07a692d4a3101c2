/* core/routes.h — HTTP routes added by plugins (host->route_add).
 *
 * The core's own routes (/healthz, /api/v2/...) are dispatched by http.c
 * first; this table holds exact method+path routes that plugins add during
 * init(), each remembering its owner for rollback.
 *
 * Threads: add/remove on the main thread before or after serving; lookups
 * from HTTP worker threads take routes_lock for reading.
 */
#ifndef ATRIUM_CORE_ROUTES_H
#define ATRIUM_CORE_ROUTES_H

#include <stddef.h>

#include "atrium/host.h"

/* ATR_EEXIST if method+path is taken (or reserved by the core: every path
 * under /api/, /healthz and /readyz), ATR_EINVAL for a path not starting with '/'. */
int atr_routes_add(const char *owner, const char *method, const char *path,
                   atr_route_fn fn, void *user_data);
/* Copies the handler out under the lock; 0 when found, ATR_ENOENT if the
 * path is unknown, ATR_EPERM if the path exists with another method. */
int atr_routes_lookup(const char *method, const char *path, atr_route_fn *fn,
                      void **user_data);
size_t atr_routes_remove_owner(const char *owner);
size_t atr_routes_count(void);
void atr_routes_reset(void);

#endif
