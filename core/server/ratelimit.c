/* core/ratelimit.c — see ratelimit.h. A flat array searched linearly is
 * enough for the few thousand keys a limiter holds and keeps the code
 * obviously right; a hash table is the next step if it ever shows up in a
 * profile. */
#include "ratelimit.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct bucket {
  char key[128];
  double tokens;
  int64_t updated_ms;
  bool used;
} bucket_t;

struct atr_ratelimit {
  pthread_mutex_t buckets_lock;
  double per_ms;
  double capacity;
  bucket_t *buckets;
  size_t n;
};

atr_ratelimit_t *atr_ratelimit_new(int64_t per_minute, size_t max_keys) {
  atr_ratelimit_t *rl = calloc(1, sizeof *rl);
  if (!rl)
    return NULL;
  rl->capacity = (double)per_minute;
  rl->per_ms = (double)per_minute / 60000.0;
  rl->n = per_minute > 0 ? max_keys : 0;
  rl->buckets = rl->n ? calloc(rl->n, sizeof *rl->buckets) : NULL;
  if (rl->n && !rl->buckets) {
    free(rl);
    return NULL;
  }
  pthread_mutex_init(&rl->buckets_lock, NULL);
  return rl;
}

void atr_ratelimit_free(atr_ratelimit_t *rl) {
  if (!rl)
    return;
  pthread_mutex_destroy(&rl->buckets_lock);
  free(rl->buckets);
  free(rl);
}

static void refill(atr_ratelimit_t *rl, bucket_t *b, int64_t now_ms) {
  double t = b->tokens + (double)(now_ms - b->updated_ms) * rl->per_ms;
  b->tokens = t > rl->capacity ? rl->capacity : t;
  b->updated_ms = now_ms;
}

/* The key's bucket; a new one in a free (or full-and-idle, or else the
 * least recently touched) slot. */
static bucket_t *find(atr_ratelimit_t *rl, const char *key, int64_t now_ms) {
  bucket_t *free_slot = NULL, *oldest = NULL;
  for (size_t i = 0; i < rl->n; i++) {
    bucket_t *b = &rl->buckets[i];
    if (b->used && strcmp(b->key, key) == 0)
      return b;
    if (b->used) {
      refill(rl, b, now_ms);
      if (b->tokens >= rl->capacity)
        b->used = false; /* full again: nothing to remember */
    }
    if (!b->used && !free_slot)
      free_slot = b;
    if (b->used && (!oldest || b->updated_ms < oldest->updated_ms))
      oldest = b;
  }
  bucket_t *b = free_slot ? free_slot : oldest ? oldest : &rl->buckets[0];
  snprintf(b->key, sizeof b->key, "%s", key);
  b->tokens = rl->capacity;
  b->updated_ms = now_ms;
  b->used = true;
  return b;
}

bool atr_ratelimit_take(atr_ratelimit_t *rl, const char *key, int64_t now_ms,
                        int *retry_after_s) {
  if (!rl || rl->n == 0)
    return true;
  pthread_mutex_lock(&rl->buckets_lock);
  bucket_t *b = find(rl, key ? key : "", now_ms);
  refill(rl, b, now_ms);
  bool ok = b->tokens >= 1.0;
  if (ok)
    b->tokens -= 1.0;
  else if (retry_after_s)
    *retry_after_s = (int)ceil((1.0 - b->tokens) / rl->per_ms / 1000.0);
  pthread_mutex_unlock(&rl->buckets_lock);
  return ok;
}
