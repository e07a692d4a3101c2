/* core/stats.c — see stats.h. */
#include "stats.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "queue.h"

static const double db_buckets[] = {.0001, .00025, .0005, .001, .0025, .005,
                                    .01,   .025,   .05,   .1,   .25,   1};
static const double job_buckets[] = {.1, .5, 1,   2.5, 5,   10,
                                     30, 60, 120, 300, 600, 1800};

static _Atomic(atr_metric_t *) db_seconds, job_seconds, builds, reaped, jobs,
    workspaces, users, policy_decisions;

void atr_stats_init(void) {
  static const char *const job_labels[] = {"type", "result", NULL};
  static const char *const build_labels[] = {"transition", "result", NULL};
  static const char *const state[] = {"state", NULL};
  static const char *const status[] = {"status", NULL};
  static const char *const decision[] = {"hook", "result", NULL};
  atomic_store(
      &db_seconds,
      atr_metrics_core(ATR_METRIC_HISTOGRAM, "atrium_db_query_duration_seconds",
                       "Time the storage plugin took for one statement.", NULL,
                       db_buckets, sizeof db_buckets / sizeof db_buckets[0]));
  atomic_store(
      &job_seconds,
      atr_metrics_core(
          ATR_METRIC_HISTOGRAM, "atrium_provisioner_job_duration_seconds",
          "Time from claim to end of provisioner jobs run here, "
          "by type and result.",
          job_labels, job_buckets, sizeof job_buckets / sizeof job_buckets[0]));
  atomic_store(&builds, atr_metrics_core(ATR_METRIC_COUNTER,
                                         "atrium_workspace_builds_total",
                                         "Workspace builds that ended here, by "
                                         "transition and result.",
                                         build_labels, NULL, 0));
  atomic_store(&reaped,
               atr_metrics_core(ATR_METRIC_COUNTER,
                                "atrium_provisioner_jobs_reaped_total",
                                "Jobs the reaper failed (a daemon died, or no "
                                "daemon took them).",
                                NULL, NULL, 0));
  atomic_store(&jobs,
               atr_metrics_core(ATR_METRIC_GAUGE, "atrium_provisioner_jobs",
                                "Provisioner jobs by state, sampled from the "
                                "database.",
                                state, NULL, 0));
  atomic_store(
      &workspaces,
      atr_metrics_core(ATR_METRIC_GAUGE, "atrium_workspaces",
                       "Workspaces that are not deleted, by the status of "
                       "their latest build, sampled from the database.",
                       status, NULL, 0));
  atomic_store(
      &policy_decisions,
      atr_metrics_core(ATR_METRIC_COUNTER, "atrium_policy_decisions_total",
                       "Policy evaluations by hook and result (allow, warn, "
                       "set, deny: the strongest in the decision).",
                       decision, NULL, 0));
  atomic_store(&users,
               atr_metrics_core(ATR_METRIC_GAUGE, "atrium_users",
                                "Users by status, sampled from the database.",
                                status, NULL, 0));
}

void atr_stats_fini(void) {
  _Atomic(atr_metric_t *) *all[] = {&db_seconds, &job_seconds, &builds, &reaped,
                                    &jobs,       &workspaces,  &users};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    atomic_store(all[i], NULL);
}

void atr_stats_db_query(double seconds) {
  atr_metric_t *m = atomic_load(&db_seconds);
  if (m)
    atr_metric_observe(m, NULL, seconds);
}

void atr_stats_job_ended(const char *type, const char *result, double seconds) {
  atr_metric_t *m = atomic_load(&job_seconds);
  if (m)
    atr_metric_observe(m, (const char *const[]){type, result}, seconds);
}

void atr_stats_build_ended(const char *transition, const char *result) {
  atr_metric_t *m = atomic_load(&builds);
  if (m)
    atr_metric_add(m, (const char *const[]){transition, result}, 1);
}

void atr_stats_reaped(size_t n) {
  atr_metric_t *m = atomic_load(&reaped);
  if (m && n > 0)
    atr_metric_add(m, NULL, (double)n);
}

void atr_stats_policy_decision(const char *hook, const char *result) {
  atr_metric_t *m = atomic_load(&policy_decisions);
  if (m)
    atr_metric_add(m, (const char *const[]){hook, result}, 1);
}

/* ---- gauges ------------------------------------------------------------- */

typedef struct tally {
  const char *names[16];
  double counts[16];
  size_t n;
} tally_t;

static void tally_add(tally_t *t, const char *name) {
  for (size_t i = 0; i < t->n; i++)
    if (strcmp(t->names[i], name) == 0) {
      t->counts[i]++;
      return;
    }
  if (t->n < 16) {
    t->names[t->n] = name;
    t->counts[t->n++] = 1;
  }
}

/* Every known value is set, zeros included, so a state that empties
 * shows 0 instead of its last count. */
static void tally_publish(atr_metric_t *m, const tally_t *t,
                          const char *const *known) {
  for (const char *const *k = known; *k; k++) {
    double v = 0;
    for (size_t i = 0; i < t->n; i++)
      if (strcmp(t->names[i], *k) == 0)
        v = t->counts[i];
    atr_metric_set(m, (const char *const[]){*k}, v);
  }
}

static const char *const job_states[] = {
    "pending", "running", "succeeded", "canceling", "canceled", "failed", NULL};
static const char *const ws_states[] = {
    "pending",  "starting",  "running",  "stopping", "stopped",
    "deleting", "canceling", "canceled", "failed",   NULL};
static const char *const user_states[] = {"active", "dormant", "suspended",
                                          NULL};

static void sample_jobs(atr_db_t *db) {
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  tally_t t = {0};
  /* Only the unfinished ones and those that ended in the last hour: the
   * queue, not the whole history. */
  atr_value_t p[] = {atr_v_time(atr_db_now_us() - 3600LL * 1000000)};
  if (atr_db_query(db,
                   "SELECT started_at IS NOT NULL, completed_at IS NOT NULL, "
                   "canceled_at IS NOT NULL, error IS NOT NULL FROM "
                   "provisioner_jobs WHERE completed_at IS NULL OR "
                   "completed_at > ?",
                   p, 1, &rows, &err) == 0) {
    while (atr_db_next(db, rows, &err) == 1)
      tally_add(&t, atr_job_status(atr_db_get_bool(db, rows, 0),
                                   atr_db_get_bool(db, rows, 1),
                                   atr_db_get_bool(db, rows, 2),
                                   atr_db_get_bool(db, rows, 3)));
    tally_publish(atomic_load(&jobs), &t, job_states);
  }
  atr_db_rows_close(db, rows);
  free(err);
}

static void sample_workspaces(atr_db_t *db) {
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  tally_t t = {0};
  if (atr_db_query(db,
                   "SELECT b.transition, j.started_at IS NOT NULL, "
                   "j.completed_at IS NOT NULL, j.canceled_at IS NOT NULL, "
                   "j.error IS NOT NULL FROM workspaces w JOIN "
                   "workspace_builds b ON b.workspace_id = w.id AND "
                   "b.build_number = (SELECT MAX(build_number) FROM "
                   "workspace_builds x WHERE x.workspace_id = w.id) JOIN "
                   "provisioner_jobs j ON j.id = b.job_id WHERE w.deleted = "
                   "FALSE",
                   NULL, 0, &rows, &err) == 0) {
    while (atr_db_next(db, rows, &err) == 1) {
      const char *job = atr_job_status(
          atr_db_get_bool(db, rows, 1), atr_db_get_bool(db, rows, 2),
          atr_db_get_bool(db, rows, 3), atr_db_get_bool(db, rows, 4));
      const char *tr = atr_db_get_text(db, rows, 0);
      tally_add(&t, atr_workspace_status(job, tr ? tr : "start"));
    }
    tally_publish(atomic_load(&workspaces), &t, ws_states);
  }
  atr_db_rows_close(db, rows);
  free(err);
}

static void sample_users(atr_db_t *db) {
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  tally_t t = {0};
  if (atr_db_query(db, "SELECT status FROM users WHERE deleted = FALSE", NULL,
                   0, &rows, &err) == 0) {
    while (atr_db_next(db, rows, &err) == 1) {
      const char *s = atr_db_get_text(db, rows, 0);
      for (const char *const *k = user_states; s && *k; k++)
        if (strcmp(s, *k) == 0)
          tally_add(&t, *k);
    }
    tally_publish(atomic_load(&users), &t, user_states);
  }
  atr_db_rows_close(db, rows);
  free(err);
}

void atr_stats_sample(atr_store_t *store) {
  if (!atomic_load(&jobs))
    return;
  atr_db_t db;
  char *err = NULL;
  if (atr_db_open(store, &db, &err) != 0) {
    free(err);
    return;
  }
  sample_jobs(&db);
  sample_workspaces(&db);
  sample_users(&db);
  atr_db_close(&db);
}
