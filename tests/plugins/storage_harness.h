/* tests/plugins/storage_harness.h — what the storage plugins' own tests
 * (test_storage_sqlite, test_storage_postgres) share: the environment the
 * loader sees (none), a monotonic clock and sleep for the timing tests,
 * a formatter that fails the test when out of memory, and the
 * atr_value_t constructors both feed to the ops table.
 *
 * Ownership: fmt's result is the caller's; a value from v_text, v_textn
 * or v_blob borrows the bytes it was given.
 * Threads: all of these may be called from any thread.
 */
#ifndef ATRIUM_TESTS_STORAGE_HARNESS_H
#define ATRIUM_TESTS_STORAGE_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "atrium/host.h"
#include "atrium/storage.h"

/* The loader's getenv: no ATRIUM_* variable overrides the test's YAML. */
const char *no_env(const char *name);
uint64_t now_ms(void);
/* Sleeps the whole `ms`, even when a signal interrupts it. */
void sleep_ms(unsigned ms);
ATR_PRINTF(1, 2)
char *fmt(const char *f, ...);

atr_value_t v_null(void);
atr_value_t v_int(int64_t i);
atr_value_t v_double(double d);
atr_value_t v_bool(int b);
atr_value_t v_textn(const char *s, size_t n);
atr_value_t v_text(const char *s);
atr_value_t v_blob(const void *p, size_t n);
atr_value_t v_time(int64_t us);

#endif
