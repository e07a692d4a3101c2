/* tests/plugins/prov_harness.h — what a provisioner plugin's test needs to
 * stand in for a provisioner daemon: a job that records every log line and
 * carries the cancel flag, the plugin loaded through the real core loader
 * with a config section of the test's choosing, and a result released as
 * the core releases it (after the same struct_size checks).
 *
 * Ownership: ph_job_init/ph_job_free and ph_plugin_try/ph_plugin_stop pair
 * up; a found line stays valid until the job is freed.
 * Threads: a job's log may be written from any thread (the plugin's, or
 * one the plugin starts); everything else from the test's thread.
 */
#ifndef ATRIUM_TESTS_PROV_HARNESS_H
#define ATRIUM_TESTS_PROV_HARNESS_H

#include <pthread.h>
#include <stdatomic.h>

#include "atrium/provisioner.h"
#include "conf.h"
#include "loader.h"

/* One line the plugin logged through req->log. */
typedef struct ph_line {
  atr_log_level_t level;
  char *stage; /* "" when the plugin gave none */
  char *line;
} ph_line_t;

/* The job a request carries: the recorder. Set canceled (atomic_store) to
 * play the host's cancel flag. */
struct atr_prov_job {
  pthread_mutex_t lock; /* protects v, n, cap */
  ph_line_t *v;
  size_t n, cap;
  atomic_int canceled;
};

void ph_job_init(atr_prov_job_t *job);
void ph_job_free(atr_prov_job_t *job);
/* The request's log and canceled services (atr_prov_log_fn and
 * atr_prov_canceled_fn) for this job type. */
void ph_job_log(atr_prov_job_t *job, atr_log_level_t level, const char *stage,
                const char *line);
int ph_job_canceled(atr_prov_job_t *job);
/* The first line containing needle (at level, or any when level < 0), or
 * NULL. */
const ph_line_t *ph_job_find(atr_prov_job_t *job, int level,
                             const char *needle);

/* The plugin through the core loader. */
typedef struct ph_plugin {
  atr_loader_t loader;
  atr_conf_node_t *conf;
  atr_handle_t *h;
  const atr_provisioner_ops_t *ops; /* set once started */
  void *ctx;
} ph_plugin_t;

/* Open `name` from `dir` (a failure to open fails the test), configure it
 * from "plugins: <name>: enabled: true" plus `options` (YAML lines indented
 * by four spaces) and start it. 0, or the failing step's code with its
 * message in *err. */
int ph_plugin_try(ph_plugin_t *p, const char *dir, const char *name,
                  const char *options, char **err);
/* Shut the loader down (fini) and free the config. */
void ph_plugin_stop(ph_plugin_t *p);

/* Assert that the core could read res (atr_prov_result_check) and release
 * it as the core does. */
void ph_result_release(atr_prov_apply_result_t *res);

/* What the host does with a build request: plan (unless skip_plan), then
 * apply into res; the state the plugin returned, even with an error,
 * replaces *state (kept NUL-terminated). The plugin's code; *err its
 * message. */
int ph_plan_apply(const atr_provisioner_ops_t *ops, void *ctx,
                  const atr_prov_apply_request_t *req, bool skip_plan,
                  atr_prov_apply_result_t *res, char **err, char **state,
                  size_t *state_len);

#endif
