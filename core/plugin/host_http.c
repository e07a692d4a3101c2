/* core/plugin/host_http.c — see host_http.h. */
#include "host_http.h"

#include <stdatomic.h>

#include "atrium/error.h"

static _Atomic(int (*)(atr_http_exchange_t *, int, const char *, const char *,
                       size_t)) bound_respond;
static _Atomic(const char *(*)(atr_http_exchange_t *,
                               const char *)) bound_header;

void atr_host_http_bind(const atr_host_http_t *fns) {
  atomic_store(&bound_respond, fns ? fns->respond : NULL);
  atomic_store(&bound_header, fns ? fns->header : NULL);
}

int atr__host_http_respond(atr_http_exchange_t *x, int status,
                           const char *content_type, const char *body,
                           size_t body_len) {
  int (*fn)(atr_http_exchange_t *, int, const char *, const char *, size_t) =
      atomic_load(&bound_respond);
  return fn ? fn(x, status, content_type, body, body_len) : ATR_ENOTSUP;
}

const char *atr__host_http_header(atr_http_exchange_t *x, const char *name) {
  const char *(*fn)(atr_http_exchange_t *, const char *) =
      atomic_load(&bound_header);
  return fn ? fn(x, name) : NULL;
}
