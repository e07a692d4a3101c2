/* core/metrics.h — the metric registry behind host->metric_*.
 *
 * The core and plugins register counters, gauges and histograms (optionally
 * labelled); observers read them all through atr_metrics_collect(). Each
 * family remembers its owner so a plugin whose init() fails can be rolled
 * back with atr_metrics_remove_owner().
 *
 * Threads: every function may be called from any thread; one mutex
 * (families_lock) protects the family list and all series values.
 */
#ifndef ATRIUM_CORE_METRICS_H
#define ATRIUM_CORE_METRICS_H

#include <stddef.h>

#include "atrium/host.h"

/* owner: "core" or a plugin name (copied). */
int atr_metrics_register(const char *owner, atr_metric_type_t type,
                         const char *name, const char *help,
                         const char *const *label_names, const double *buckets,
                         size_t nbuckets, atr_metric_t **out);
void atr_metric_add(atr_metric_t *m, const char *const *label_values, double v);
void atr_metric_set(atr_metric_t *m, const char *const *label_values, double v);
void atr_metric_observe(atr_metric_t *m, const char *const *label_values,
                        double v);
void atr_metrics_collect(atr_metric_visit_fn visit, void *user_data);
/* Remove every family `owner` registered; returns how many. */
size_t atr_metrics_remove_owner(const char *owner);
/* A family by name, or NULL (tests and the core). */
atr_metric_t *atr_metrics_find(const char *name);
/* The core's family `name`: the one registered before (a re-init), else
 * a new one; NULL when it cannot be registered. */
atr_metric_t *atr_metrics_core(atr_metric_type_t type, const char *name,
                               const char *help, const char *const *label_names,
                               const double *buckets, size_t nbuckets);
/* Free everything (at exit). */
void atr_metrics_reset(void);

#endif
