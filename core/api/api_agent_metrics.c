/* core/api/api_agent_metrics.c — the agent metrics the API layer records
 * (api_agent_me.h). Until init, and after fini, recording does nothing,
 * so tests that link the API without a server need no care. */
#include <stdatomic.h>
#include <string.h>

#include "api_agent_me.h"
#include "metrics.h"

/* 1 s … 30 min: an agent's startup script may install a toolchain. */
static const double startup_buckets[] = {1,  2,   5,   10,  30,
                                         60, 120, 300, 600, 1800};

static _Atomic(atr_metric_t *) sessions, startup_seconds, connection_errors;

static atr_metric_t *family(atr_metric_type_t type, const char *name,
                            const char *help, const char *const *labels,
                            const double *buckets, size_t nbuckets) {
  atr_metric_t *m = atr_metrics_find(name);
  if (!m)
    atr_metrics_register("core", type, name, help, labels, buckets, nbuckets,
                         &m);
  return m;
}

void atr_api_agent_metrics_init(void) {
  static const char *const result[] = {"result", NULL};
  static const char *const reason[] = {"reason", NULL};
  atomic_store(&sessions,
               family(ATR_METRIC_GAUGE, "atrium_agent_sessions",
                      "Agent sessions (upgraded connections) open on this "
                      "server, sampled every second.",
                      NULL, NULL, 0));
  atomic_store(&startup_seconds,
               family(ATR_METRIC_HISTOGRAM, "atrium_agent_startup_seconds",
                      "Time from an agent's start to the end of its startup "
                      "(ready, start_error or start_timeout).",
                      result, startup_buckets,
                      sizeof startup_buckets / sizeof startup_buckets[0]));
  atomic_store(&connection_errors,
               family(ATR_METRIC_COUNTER,
                      "atrium_agent_connection_errors_total",
                      "Agent sessions refused or lost, by reason "
                      "(unauthorized, handshake, version, protocol, timeout, "
                      "too_slow, replaced).",
                      reason, NULL, 0));
}

void atr_api_agent_metrics_fini(void) {
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
