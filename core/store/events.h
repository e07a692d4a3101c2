/* core/events.h — job events inside one server, fed by the store's
 * pub/sub so that they also arrive from other servers on the same
 * PostgreSQL: a job was posted (daemons wake up and claim), a job changed
 * (its logs grew or it ended: log followers re-read), a job was asked to
 * cancel (the daemon running it stops it), something happened to a
 * workspace agent (asked to shut down, revoked, its lifecycle moved: the
 * server holding its session tells it, a stop build waiting on it looks
 * again).
 *
 * Waiting is by generation counters: a waiter remembers the generation it
 * last saw and sleeps until it moves or a timeout passes, then re-reads
 * the database. Events only say "look again"; the database is the truth,
 * so a missed or duplicated event costs a little latency, never
 * correctness.
 *
 * Threads: all functions may be called from any thread. The cancel and
 * agent callbacks run on the store's pub/sub thread and must not block.
 */
#ifndef ATRIUM_CORE_EVENTS_H
#define ATRIUM_CORE_EVENTS_H

#include <stdint.h>

#include "db.h"

typedef struct atr_events atr_events_t;
typedef void (*atr_events_cancel_fn)(void *user_data, const char *job_id);
/* what: "shutdown", "revoked", "lifecycle", "disconnected"
 * (docs/design/agent.md §3.4). */
typedef void (*atr_events_agent_fn)(void *user_data, const char *agent_id,
                                    const char *what);

/* Subscribe to the store. A store without pub/sub still works within
 * this process (events are delivered directly). */
int atr_events_start(atr_store_t *store, atr_events_t **out, char **err);
/* Unsubscribe and wake every waiter (they see atr_events_stopping). */
void atr_events_stop(atr_events_t *ev);
/* After stop, once no thread waits on it any more. */
void atr_events_free(atr_events_t *ev);

void atr_events_job_posted(atr_events_t *ev);
void atr_events_job_changed(atr_events_t *ev, const char *job_id);
void atr_events_job_cancel(atr_events_t *ev, const char *job_id);
/* The pool's hook for cancel events (one; NULL to remove). */
void atr_events_on_cancel(atr_events_t *ev, atr_events_cancel_fn fn,
                          void *user_data);

/* An agent event (what: one word of a-z and _, at most 31 characters),
 * delivered to every server of the deployment like a cancel. */
void atr_events_agent(atr_events_t *ev, const char *agent_id, const char *what);
/* The server's hook for agent events (one; NULL to remove). */
void atr_events_on_agent(atr_events_t *ev, atr_events_agent_fn fn,
                         void *user_data);

typedef enum atr_event_kind {
  ATR_EVENT_POSTED = 0,
  ATR_EVENT_CHANGED = 1,
  ATR_EVENT_AGENT = 2, /* any agent event */
} atr_event_kind_t;

/* The current generation of a kind. */
uint64_t atr_events_gen(atr_events_t *ev, atr_event_kind_t kind);
/* Sleep until the generation of `kind` differs from `seen`, the hub
 * stops, or timeout_ms passes; returns the generation now. */
uint64_t atr_events_wait(atr_events_t *ev, atr_event_kind_t kind, uint64_t seen,
                         int64_t timeout_ms);
int atr_events_stopping(atr_events_t *ev);

#endif
