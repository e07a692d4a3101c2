/* core/stats.h — the core's own metrics beyond HTTP: database query
 * latency, provisioner jobs and builds as they end, reaped jobs, and
 * gauges sampled from the database (jobs by state, workspaces by the
 * status of their latest build, users by status). Observers (the
 * Prometheus plugin) read them with every other registered metric.
 *
 * Threads: every function may be called from any thread. Until
 * atr_stats_init() (and after atr_stats_fini()) the recording functions
 * do nothing, so code shared with the CLI and tests needs no care.
 */
#ifndef ATRIUM_CORE_STATS_H
#define ATRIUM_CORE_STATS_H

#include "db.h"

/* Register the families (the server, once at start). */
void atr_stats_init(void);
/* Stop recording (before the registry is freed). */
void atr_stats_fini(void);

void atr_stats_db_query(double seconds);
/* result: succeeded, failed or canceled. */
void atr_stats_job_ended(const char *type, const char *result, double seconds);
void atr_stats_build_ended(const char *transition, const char *result);
void atr_stats_reaped(size_t n);
/* One policy evaluation of a hook; result: allow, warn, set or deny (the
 * strongest the decision holds). */
void atr_stats_policy_decision(const char *hook, const char *result);
/* Refresh the gauges from the database (the keeper thread, now and then). */
void atr_stats_sample(atr_store_t *store);

#endif
