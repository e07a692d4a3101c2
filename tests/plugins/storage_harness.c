/* tests/plugins/storage_harness.c — helpers both storage plugin tests use
 * (storage_harness.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "storage_harness.h"

const char *no_env(const char *name) {
  (void)name;
  return NULL;
}

uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void sleep_ms(unsigned ms) {
  struct timespec ts = {.tv_sec = ms / 1000,
                        .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

char *fmt(const char *f, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, f);
  if (vasprintf(&s, f, ap) < 0)
    s = NULL;
  va_end(ap);
  assert_non_null(s);
  return s;
}

atr_value_t v_null(void) {
  return (atr_value_t){.type = ATR_VAL_NULL};
}

atr_value_t v_int(int64_t i) {
  return (atr_value_t){.type = ATR_VAL_INT, .v.i = i};
}

atr_value_t v_double(double d) {
  return (atr_value_t){.type = ATR_VAL_DOUBLE, .v.d = d};
}

atr_value_t v_bool(int b) {
  return (atr_value_t){.type = ATR_VAL_BOOL, .v.b = b};
}

atr_value_t v_textn(const char *s, size_t n) {
  return (atr_value_t){.type = ATR_VAL_TEXT, .v.bytes = {s, n}};
}

atr_value_t v_text(const char *s) {
  return v_textn(s, strlen(s));
}

atr_value_t v_blob(const void *p, size_t n) {
  return (atr_value_t){.type = ATR_VAL_BLOB, .v.bytes = {p, n}};
}

atr_value_t v_time(int64_t us) {
  return (atr_value_t){.type = ATR_VAL_TIME, .v.time_us = us};
}
