/* core/ratelimit.h — token buckets keyed by a string (an IP, an email, a
 * user id): `per_minute` requests, refilled continuously, bursting up to
 * the same number.
 *
 * Threads: any; one mutex (buckets_lock) per limiter guards its table.
 * Memory: the table is bounded; idle full buckets are dropped when it
 * fills, and if every slot is busy the oldest bucket is recycled (a flood
 * of distinct keys cannot grow memory).
 */
#ifndef ATRIUM_CORE_RATELIMIT_H
#define ATRIUM_CORE_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct atr_ratelimit atr_ratelimit_t;

/* per_minute 0 creates a limiter that allows everything. */
atr_ratelimit_t *atr_ratelimit_new(int64_t per_minute, size_t max_keys);
void atr_ratelimit_free(atr_ratelimit_t *rl);
/* Take one token for key. false when none is left; *retry_after_s (may be
 * NULL) gets the whole seconds until one will be. now_ms: a monotonic
 * clock in milliseconds. */
bool atr_ratelimit_take(atr_ratelimit_t *rl, const char *key, int64_t now_ms,
                        int *retry_after_s);

#endif
