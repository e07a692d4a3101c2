/* core/agent/agent_lifecycle.h — the agent's lifecycle state, reported in
 * order until acked (docs/design/agent.md §5).
 *
 *   created -> starting -> ready | start_error | start_timeout
 *   -> shutting_down -> off | shutdown_error | shutdown_timeout
 *
 * Every transition is queued with the time it happened and sent as POST
 * /me/report-lifecycle {state, changed_at[, startup_script_exit_code]}
 * (the code with start_error only), one at a time, so the server
 * sees them in order; a report whose answer was lost is sent again once a
 * session is up (the server takes the same state twice as a no-op). 409
 * (the server has a later state) counts as acked.
 *
 * Threads: the loop's thread only. Memory: the connection is borrowed.
 */
#ifndef ATRIUM_AGENT_LIFECYCLE_H
#define ATRIUM_AGENT_LIFECYCLE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent_conn.h"

typedef enum agent_state {
  AGENT_CREATED = 0,
  AGENT_STARTING,
  AGENT_START_TIMEOUT,
  AGENT_START_ERROR,
  AGENT_READY,
  AGENT_SHUTTING_DOWN,
  AGENT_SHUTDOWN_TIMEOUT,
  AGENT_SHUTDOWN_ERROR,
  AGENT_OFF,
} agent_state_t;

#define AGENT_LIFECYCLE_QUEUE 16

typedef struct agent_lifecycle {
  agent_conn_t *conn;
  agent_state_t state; /* the newest state */
  /* The startup script's exit code, sent with a start_error report so
   * users see why without reading the log; -1 when it did not exit with
   * a code (killed, not started, or not failed). */
  int startup_exit_code;
  struct {
    agent_state_t state;
    int64_t changed_at_us;
  } queue[AGENT_LIFECYCLE_QUEUE]; /* not yet acked, oldest first */
  size_t n;
  bool in_flight;
  bool timer_armed;
  uv_timer_t retry;
  /* Called after a report was acked (the agent checks whether it may
   * exit). */
  void (*on_acked)(void *ud, agent_state_t state);
  void *ud;
} agent_lifecycle_t;

const char *agent_state_name(agent_state_t s);
/* Whether s is off, shutdown_error or shutdown_timeout. */
bool agent_state_final(agent_state_t s);
/* Whether s ends the start (ready, start_error, start_timeout). */
bool agent_state_started(agent_state_t s);

void agent_lifecycle_init(agent_lifecycle_t *lc, uv_loop_t *loop,
                          agent_conn_t *conn);
/* Move to state at now_us and queue its report. A state not after the
 * current one is ignored (false). */
bool agent_lifecycle_set(agent_lifecycle_t *lc, agent_state_t state,
                         int64_t now_us);
/* Send the oldest unacked report if none is in flight. */
void agent_lifecycle_kick(agent_lifecycle_t *lc);
/* The session is gone: the report in flight will be sent again. */
void agent_lifecycle_lost(agent_lifecycle_t *lc);
/* Whether every state was acked. */
bool agent_lifecycle_idle(const agent_lifecycle_t *lc);
void agent_lifecycle_close(agent_lifecycle_t *lc);

#endif
