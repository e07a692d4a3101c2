/* tests/integration/http_client.h — API calls against a harness server:
 * any method, an optional JSON body and an optional session token, and
 * the answer parsed as JSON.
 *
 * Threads: each call uses its own curl handle; any thread. */
#ifndef ATRIUM_TEST_HTTP_CLIENT_H
#define ATRIUM_TEST_HTTP_CLIENT_H

#include <jansson.h>

#include "harness.h"

/* `method` path with `body` (a JSON text, or NULL for none) sent as
 * application/json, and `token` (NULL for none) in Atrium-Session-Token.
 * status 0 when the connection failed. */
atr_response_t atr_http_call(const atr_harness_t *h, const char *method,
                             const char *path, const char *token,
                             const char *body);

/* The same, with the answer's body parsed: *json is the parsed body, or
 * NULL when it is empty or not JSON (caller decrefs). Returns the status. */
long atr_http_json(const atr_harness_t *h, const char *method, const char *path,
                   const char *token, const char *body, json_t **json);

#endif
