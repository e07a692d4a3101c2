/* core/agent/agent_backoff.c — full-jitter backoff (agent_backoff.h). */
#include "agent_backoff.h"

void agent_backoff_init(agent_backoff_t *b, int64_t min_ms, int64_t max_ms) {
  b->min_ms = min_ms > 0 ? min_ms : 1;
  b->max_ms = max_ms >= b->min_ms ? max_ms : b->min_ms;
  b->bound_ms = 0;
}

int64_t agent_backoff_next(agent_backoff_t *b, uint32_t random) {
  if (b->bound_ms < b->min_ms)
    b->bound_ms = b->min_ms;
  int64_t wait = (int64_t)((uint64_t)random % (uint64_t)(b->bound_ms + 1));
  b->bound_ms = b->bound_ms > b->max_ms / 2 ? b->max_ms : b->bound_ms * 2;
  return wait;
}

void agent_backoff_raise(agent_backoff_t *b, int64_t ms) {
  if (b->bound_ms < ms)
    b->bound_ms = ms;
}

void agent_backoff_reset(agent_backoff_t *b) {
  b->bound_ms = 0;
}
