/* core/base/json_bounds.h — how deep and how many: a JSON text measured
 * before anything parses it.
 *
 * jansson parses recursively and builds a node per value, so a small body
 * nested deeply enough overflows a worker thread's stack, and a body of
 * many tiny arrays grows into hundreds of megabytes. atr_json_measure()
 * scans the bytes once, with no allocation and no recursion, so a caller
 * can refuse such a text, naming the limit, before jansson sees it. It
 * does not validate: a text it passes may still be invalid JSON, which
 * the parser then reports.
 *
 * Threads: pure; any thread.
 */
#ifndef ATRIUM_CORE_JSON_BOUNDS_H
#define ATRIUM_CORE_JSON_BOUNDS_H

#include <stddef.h>

typedef struct atr_json_bounds {
  size_t max_depth;  /* arrays and objects inside each other */
  size_t max_values; /* every value, containers included */
} atr_json_bounds_t;

/* 0 when buf is within b; otherwise ATR_ERANGE and why (e.g. "nested
 * deeper than 64 levels") written to why. */
int atr_json_measure(const char *buf, size_t len, const atr_json_bounds_t *b,
                     char *why, size_t why_size);

#endif
