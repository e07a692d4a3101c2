/* core/plugin/host_http.h — the host table's two HTTP functions
 * (http_respond, http_header), bound to the HTTP listener at start.
 *
 * Only the listener (core/server/http.c) knows what an atr_http_exchange_t
 * is, and it sits above this layer; so the host table points at the
 * functions here, which call what the listener bound with
 * atr_host_http_bind(). Before a bind (the CLI, unit tests) they answer
 * ATR_ENOTSUP and NULL: no plugin route can run without a listener anyway.
 *
 * Threads: bind once from the main thread before the listener starts;
 * the calls come from HTTP worker threads.
 */
#ifndef ATRIUM_CORE_HOST_HTTP_H
#define ATRIUM_CORE_HOST_HTTP_H

#include <stddef.h>

#include "atrium/host.h"

typedef struct atr_host_http {
  int (*respond)(atr_http_exchange_t *x, int status, const char *content_type,
                 const char *body, size_t body_len);
  const char *(*header)(atr_http_exchange_t *x, const char *name);
} atr_host_http_t;

/* fns is copied. */
void atr_host_http_bind(const atr_host_http_t *fns);

int atr__host_http_respond(atr_http_exchange_t *x, int status,
                           const char *content_type, const char *body,
                           size_t body_len);
const char *atr__host_http_header(atr_http_exchange_t *x, const char *name);

#endif
