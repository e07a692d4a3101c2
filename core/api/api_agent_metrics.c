/* core/api/api_agent_metrics.c — the agent metrics the API layer records
 * (api_agent_me.h). Until init, and after fini, recording does nothing,
 * so tests that link the API without a server need no care. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "api_agent_me.h"
#include "metrics.h"

/* 1 s … 30 min: an agent's startup script may install a toolchain. */
static const double startup_buckets[] = {1,  2,   5,   10,  30,
                                         60, 120, 300, 600, 1800};

static _Atomic(atr_metric_t *) sessions, startup_seconds, connection_errors,
    agents, lifecycles;

void atr_api_agent_metrics_init(void) {
  static const char *const result[] = {"result", NULL};
  static const char *const reason[] = {"reason", NULL};
  static const char *const status[] = {"status", NULL};
  static const char *const state[] = {"state", NULL};
  atomic_store(&agents, atr_metrics_core(
                            ATR_METRIC_GAUGE, "atrium_agents",
                            "Workspace agents with a live token, by status "
                            "(connecting, connected, disconnected, timeout), "
                            "sampled from the database.",
                            status, NULL, 0));
  atomic_store(
      &lifecycles,
      atr_metrics_core(ATR_METRIC_GAUGE, "atrium_agent_lifecycle",
                       "Workspace agents with a live token, by lifecycle "
                       "state, sampled from the database.",
                       state, NULL, 0));
  atomic_store(
      &sessions,
      atr_metrics_core(ATR_METRIC_GAUGE, "atrium_agent_sessions",
                       "Agent sessions (upgraded connections) open on this "
                       "server, sampled every second.",
                       NULL, NULL, 0));
  atomic_store(
      &startup_seconds,
      atr_metrics_core(ATR_METRIC_HISTOGRAM, "atrium_agent_startup_seconds",
                       "Time from an agent's start to the end of its startup "
                       "(ready, start_error or start_timeout).",
                       result, startup_buckets,
                       sizeof startup_buckets / sizeof startup_buckets[0]));
  atomic_store(&connection_errors,
               atr_metrics_core(
                   ATR_METRIC_COUNTER, "atrium_agent_connection_errors_total",
                   "Agent sessions refused or lost, by reason "
                   "(unauthorized, handshake, version, protocol, timeout, "
                   "too_slow, replaced).",
                   reason, NULL, 0));
}

void atr_api_agent_metrics_fini(void) {
  atomic_store(&agents, NULL);
  atomic_store(&lifecycles, NULL);
  atomic_store(&sessions, NULL);
  atomic_store(&startup_seconds, NULL);
  atomic_store(&connection_errors, NULL);
}

void atr_api_agent_sessions_set(int64_t n) {
  atr_metric_t *m = atomic_load(&sessions);
  if (m)
    atr_metric_set(m, NULL, (double)n);
}

void atr_api_agent_connection_error(const char *reason) {
  static const char *const errors[] = {"unauthorized", "handshake", "version",
                                       "protocol",     "timeout",   "too_slow",
                                       "replaced"};
  atr_metric_t *m = atomic_load(&connection_errors);
  for (size_t i = 0; m && reason && i < sizeof errors / sizeof errors[0]; i++)
    if (strcmp(reason, errors[i]) == 0) {
      atr_metric_add(m, (const char *const[]){errors[i]}, 1);
      return;
    }
}

void atr_api_agent_startup_observed(const char *result, double seconds) {
  atr_metric_t *m = atomic_load(&startup_seconds);
  if (m && seconds >= 0)
    atr_metric_observe(m, (const char *const[]){result}, seconds);
}

/* ---- gauges sampled from the database ------------------------------------ */

void atr_api_agents_sample(atr_store_t *store) {
  atr_metric_t *by_status_m = atomic_load(&agents);
  atr_metric_t *by_state_m = atomic_load(&lifecycles);
  if (!by_status_m || !by_state_m)
    return;
  atr_agents_tally_t tally;
  char *err = NULL;
  int rc = atr_agents_tally(store, &tally, &err);
  free(err);
  if (rc != 0)
    return; /* keep the last sample rather than publish a partial one */
  for (size_t i = 0; i < ATR_AGENT_NSTATUS; i++)
    atr_metric_set(by_status_m, (const char *const[]){atr_agent_statuses[i]},
                   tally.by_status[i]);
  for (int i = 0; i <= ATR_LIFECYCLE_OFF; i++)
    atr_metric_set(by_state_m,
                   (const char *const[]){atr_agent_lifecycle_name(i)},
                   tally.by_state[i]);
}
