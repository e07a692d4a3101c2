/* core/agent/agent_backoff.h — when to dial again after a failure.
 *
 * "Full jitter": the wait is a random time in [0, bound]; the bound starts
 * at min_ms and doubles after every failure up to max_ms, so a thousand
 * agents that lost the same server come back spread over the bound rather
 * than all at once. A session that lived long enough resets the bound.
 *
 * Threads: pure; the caller owns the state.
 */
#ifndef ATRIUM_AGENT_BACKOFF_H
#define ATRIUM_AGENT_BACKOFF_H

#include <stdint.h>

typedef struct agent_backoff {
  int64_t min_ms, max_ms;
  int64_t bound_ms; /* 0 until the first failure */
} agent_backoff_t;

void agent_backoff_init(agent_backoff_t *b, int64_t min_ms, int64_t max_ms);
/* The wait before the next dial, from a random 32-bit value; doubles the
 * bound for the time after. */
int64_t agent_backoff_next(agent_backoff_t *b, uint32_t random);
/* A failure that asks for a long pause (the token was refused): the bound
 * jumps to at least ms. */
void agent_backoff_raise(agent_backoff_t *b, int64_t ms);
/* The session lived long enough: start again from min_ms. */
void agent_backoff_reset(agent_backoff_t *b);

#endif
