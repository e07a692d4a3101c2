/* atrium/provisioner.h — the provisioner kind.
 *
 * A provisioner turns a template version's files and a workspace's parameter
 * values into real resources. It is named by its type ("terraform",
 * "docker", a third party's), which templates choose in template.yaml.
 *
 * The host calls these operations on a provisioner daemon's worker thread,
 * one job per thread, several jobs at once: keep per-job state in the job,
 * not in the plugin context, or lock it. Operations block until done.
 * cancel() is called from another thread while an operation runs and must
 * only make that operation return soon (with ATR_ECANCELED).
 *
 * Memory: everything in a request is borrowed for the call. Results are
 * malloc'd by the plugin and freed by the host with free().
 */
#ifndef ATRIUM_PROVISIONER_H
#define ATRIUM_PROVISIONER_H

#include <stddef.h>
#include <stdint.h>

#include "atrium/plugin.h"

typedef enum atr_transition {
  ATR_TRANSITION_START = 1,
  ATR_TRANSITION_STOP = 2,
  ATR_TRANSITION_DELETE = 3,
} atr_transition_t;

typedef struct atr_param_value {
  const char *name;
  const char *value;
  int sensitive; /* never log the value */
} atr_param_value_t;

typedef struct atr_prov_job atr_prov_job_t; /* opaque, for cancel */

/* Import of a template version: read the provisioner's own files. */
typedef struct atr_prov_parse_request {
  uint32_t struct_size;
  atr_prov_job_t *job;
  const char *workdir; /* the unpacked template archive */
} atr_prov_parse_request_t;

/* One build: start, stop or delete a workspace. */
typedef struct atr_prov_apply_request {
  uint32_t struct_size;
  atr_prov_job_t *job;
  atr_transition_t transition;
  const char *workdir;
  const char *workspace_id;
  const char *workspace_name;
  const char *owner_name;
  const char *template_id;
  int64_t build_number;
  const atr_param_value_t *params;
  size_t nparams;
  const char *prior_state; /* what the last successful apply returned */
  size_t prior_state_len;
} atr_prov_apply_request_t;

typedef struct atr_prov_resource {
  char *type; /* "docker_container" */
  char *name;
  char *id;
} atr_prov_resource_t;

typedef struct atr_prov_apply_result {
  char *state; /* opaque to the host, given back as prior_state */
  size_t state_len;
  atr_prov_resource_t *resources;
  size_t nresources;
} atr_prov_apply_result_t;

typedef struct atr_provisioner_ops {
  uint32_t struct_size;
  const char *type; /* the name templates use: "provisioner: echo" */
  int (*parse)(void *ctx, const atr_prov_parse_request_t *req, char **err);
  int (*apply)(void *ctx, const atr_prov_apply_request_t *req,
               atr_prov_apply_result_t *res, char **err);
  void (*cancel)(void *ctx, atr_prov_job_t *job);
} atr_provisioner_ops_t;

#define ATR_PROVISIONER_OPS_MIN_SIZE                                           \
  (offsetof(atr_provisioner_ops_t, cancel) + sizeof(void (*)(void)))

#endif /* ATRIUM_PROVISIONER_H */
