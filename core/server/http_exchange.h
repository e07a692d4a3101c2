/* core/http_exchange.h — the two HTTP functions of the host table.
 *
 * host.c points host->http_respond and host->http_header at these; the HTTP
 * layer (core/http.c) defines them, because only it knows what an
 * atr_http_exchange_t is. Kept in their own header so host.c needs nothing
 * else from http.c.
 *
 * Threads: called by route handlers on the HTTP worker thread that serves
 * the exchange; the exchange is valid only during the handler's call.
 */
#ifndef ATRIUM_CORE_HTTP_EXCHANGE_H
#define ATRIUM_CORE_HTTP_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "atrium/host.h"

/* Send the whole response (body copied). 0, or ATR_EINVAL when the exchange
 * was already answered. */
int atr__http_respond(atr_http_exchange_t *x, int status,
                      const char *content_type, const char *body,
                      size_t body_len);
/* A streamed answer (server-sent events): the headers now, with
 * Connection: close and no length; then any number of writes. Write
 * fails with ATR_EIO once the client has gone. */
int atr__http_stream_begin(atr_http_exchange_t *x, int status,
                           const char *content_type);
int atr__http_stream_write(atr_http_exchange_t *x, const void *data,
                           size_t len);
/* The server is draining for shutdown: long streams should end. */
bool atr__http_draining(const atr_http_exchange_t *x);
/* A request header's value by case-insensitive name, or NULL. */
const char *atr__http_header(atr_http_exchange_t *x, const char *name);
/* Queue a response header for the next atr__http_respond (at most 8; the
 * strings are copied). */
void atr__http_add_header(atr_http_exchange_t *x, const char *name,
                          const char *value);

#endif
