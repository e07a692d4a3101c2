/* observer_prometheus/buf.c — the growing buffer a scrape is written into. */
#include "internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(op_buf_t *b, size_t more) {
  if (b->failed)
    return false;
  if (b->len + more + 1 <= b->cap)
    return true;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + more + 1)
    cap *= 2;
  char *grown = realloc(b->data, cap);
  if (grown == NULL) {
    b->failed = true;
    return false;
  }
  b->data = grown;
  b->cap = cap;
  return true;
}

void op_buf_put(op_buf_t *b, const char *s, size_t n) {
  if (!reserve(b, n))
    return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void op_buf_puts(op_buf_t *b, const char *s) {
  op_buf_put(b, s, strlen(s));
}

void op_buf_printf(op_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  /* clang-analyzer 14 reports ap as uninitialized here after va_start. */
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = true;
    return;
  }
  if (!reserve(b, (size_t)n))
    return;
  va_start(ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void op_buf_free(op_buf_t *b) {
  free(b->data);
  memset(b, 0, sizeof(*b));
}

void op_format_double(double v, char out[32]) {
  if (isnan(v) || isinf(v)) {
    snprintf(out, 32, "%s", isnan(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf");
    return;
  }
  /* 15 digits reads back exactly for most values and looks as written
   * (0.1, not 0.10000000000000001); 17 always does. */
  snprintf(out, 32, "%.15g", v);
  if (strtod(out, NULL) != v)
    snprintf(out, 32, "%.17g", v);
}
