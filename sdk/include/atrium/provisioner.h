/* atrium/provisioner.h — the provisioner kind.
 *
 * A provisioner turns a template version's files and a workspace's parameter
 * values into real resources. It is named by its type ("terraform",
 * "docker", a third party's), which templates choose in template.yaml.
 *
 * A provisioner daemon calls, for a template version import, parse(); for a
 * workspace build, plan() when the plugin has one and then apply(), both in
 * the same working directory (the unpacked template archive) with the same
 * request. Every request carries the job's services: log() appends a line
 * to the job's log (the build log the developer sees), canceled() tells
 * whether the job was canceled.
 *
 * Threads: the host calls these operations on a provisioner daemon's worker
 * thread, one job per thread, several jobs at once: keep per-job state in
 * the job, not in the plugin context, or lock it. Operations block until
 * done. cancel() is called from another thread while an operation runs and
 * must only make that operation return soon (with ATR_ECANCELED); the
 * canceled() flag is set before cancel() is called. log() and canceled()
 * may be called from any thread while the operation runs.
 *
 * Memory: everything in a request is borrowed for the call. Results are
 * allocated by the plugin with the host's allocator (atr_mem_alloc,
 * atr_mem_strdup, ... from host.h) and released by the host, field by
 * field. *err messages are malloc'd, as everywhere in the SDK.
 *
 * Arrays: every element starts with its struct_size, and an array is
 * walked by its first element's struct_size, so either side may be built
 * against a newer SDK whose element has grown. Read request parameters with
 * atr_param_at(); fill resources and metadata with struct_size set to
 * sizeof as you were built (the host refuses a result whose elements are
 * smaller than the ABI 1.1 layout, and fails the build saying so).
 */
#ifndef ATRIUM_PROVISIONER_H
#define ATRIUM_PROVISIONER_H

#include <stddef.h>
#include <stdint.h>

#include "atrium/host.h"
#include "atrium/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum atr_transition {
  ATR_TRANSITION_START = 1,
  ATR_TRANSITION_STOP = 2,
  ATR_TRANSITION_DELETE = 3,
} atr_transition_t;

typedef struct atr_param_value {
  uint32_t struct_size; /* the host's sizeof, also the array's stride */
  const char *name;
  /* Canonical text: "2", "true", "[\"a\",\"b\"]" for list(string). */
  const char *value;
  /* "string", "number", "bool" or "list(string)". */
  const char *type;
  int sensitive; /* never log the value */
} atr_param_value_t;

/* Parameter i of a request's params, stepping by the host's struct_size. */
static inline const atr_param_value_t *
atr_param_at(const atr_param_value_t *params, size_t i) {
  return (const atr_param_value_t *)(const void *)((const char *)params +
                                                   i * params->struct_size);
}

typedef struct atr_prov_job atr_prov_job_t; /* opaque, one running job */

/* A line for the job's log. stage groups lines ("Planning", "Applying");
 * NULL or "" for none. Lines longer than 64 KiB are cut. */
typedef void (*atr_prov_log_fn)(atr_prov_job_t *job, atr_log_level_t level,
                                const char *stage, const char *line);
/* Nonzero once the job was canceled. */
typedef int (*atr_prov_canceled_fn)(atr_prov_job_t *job);

/* Import of a template version: check the provisioner's own files. */
typedef struct atr_prov_parse_request {
  uint32_t struct_size;
  atr_prov_job_t *job;
  atr_prov_log_fn log;
  atr_prov_canceled_fn canceled;
  const char *workdir; /* the unpacked template archive */
  /* The parameters template.yaml declares, in its order. */
  const char *const *param_names;
  size_t nparams;
} atr_prov_parse_request_t;

/* What a start build needs to start the workspace's agent (ABI 1.3; see
 * docs/agent.md). Borrowed for the call like the rest of the request. */
typedef struct atr_prov_agent {
  uint32_t struct_size; /* the host's sizeof */
  const char *name;     /* the agent's name in template.yaml ("main") */
  /* The agent's token for this build. A secret: never log it, never write
   * it where users can read it; the host masks it in the job's log. */
  const char *token;
  const char *access_url; /* the URL the agent dials (the server's) */
  /* A directory on the server's host holding the agent for linux/amd64 as
   * a self-contained bundle (bin/atrium-agent, lib/ with its loader and
   * libraries, and the launcher `atrium-agent` at the top): mount it
   * read-only into a container, or NULL when the server has none. */
  const char *bundle_dir;
  /* A /bin/sh script that starts the agent from the bundle mounted at
   * /opt/atrium (it reads ATRIUM_AGENT_URL and ATRIUM_AGENT_TOKEN from its
   * environment). */
  const char *init_script;
} atr_prov_agent_t;

/* One build: start, stop or delete a workspace. */
typedef struct atr_prov_apply_request {
  uint32_t struct_size;
  atr_prov_job_t *job;
  atr_prov_log_fn log;
  atr_prov_canceled_fn canceled;
  const char *workdir; /* the unpacked template archive, private to the job */
  atr_transition_t transition;
  int64_t build_number;
  const char *workspace_id;
  const char *workspace_name;
  const char *owner_id;
  const char *owner_name;
  const char *owner_email;
  const char *organization_id;
  const char *template_id;
  const char *template_name;
  const char *template_version_id;
  const char *template_version_name;
  /* Every parameter of the version with this build's value. */
  const atr_param_value_t *params;
  size_t nparams;
  /* What the last build of this workspace returned as state; NULL/0 for
   * the first build. */
  const char *prior_state;
  size_t prior_state_len;
  /* ABI 1.3: the agent to start, on start builds of a version whose
   * template.yaml declares one; NULL otherwise. Read it only when
   * struct_size covers it (ATR_PROV_REQUEST_HAS_AGENT). */
  const atr_prov_agent_t *agent;
} atr_prov_apply_request_t;

/* Whether a request carries the agent field (a host older than 1.3 does
 * not send it). */
#define ATR_PROV_REQUEST_HAS_AGENT(req)                                        \
  ((req)->struct_size >= offsetof(atr_prov_apply_request_t, agent) +           \
                             sizeof(const atr_prov_agent_t *))

typedef struct atr_prov_metadata {
  uint32_t struct_size; /* sizeof(atr_prov_metadata_t) in the plugin */
  char *key;
  char *value;
  int sensitive; /* shown as redacted in the API */
} atr_prov_metadata_t;

typedef struct atr_prov_resource {
  uint32_t struct_size; /* sizeof(atr_prov_resource_t) in the plugin */
  char *type;           /* "docker_container", "terraform_data" */
  char *name;
  char *id; /* the provider's id, or NULL */
  atr_prov_metadata_t *metadata;
  size_t nmetadata;
  /* ABI 1.3: nonzero when this resource runs the agent. When no element
   * says so (or they are older than 1.3), the first resource of a start
   * build hosts it. */
  int hosts_agent;
} atr_prov_resource_t;

/* apply() fills this also when it fails: a state set here is stored with
 * the build even then, so the next build starts from what really exists.
 * The host zeroes it and sets struct_size (its sizeof) before the call. */
typedef struct atr_prov_apply_result {
  uint32_t struct_size;
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
  /* Optional (NULL, or absent in an older plugin): work out what apply()
   * will do, before it runs, in the same workdir. A failure fails the
   * build without calling apply(). */
  int (*plan)(void *ctx, const atr_prov_apply_request_t *req, char **err);
} atr_provisioner_ops_t;

/* The smallest elements the host accepts in a result: the ABI 1.1 layout. */
#define ATR_PROV_METADATA_MIN_SIZE                                             \
  (offsetof(atr_prov_metadata_t, sensitive) + sizeof(int))
#define ATR_PROV_RESOURCE_MIN_SIZE                                             \
  (offsetof(atr_prov_resource_t, nmetadata) + sizeof(size_t))

/* Whether result element r says it runs the agent (ABI 1.3). An element
 * from an older plugin has no hosts_agent and says nothing; when no
 * element says so, the host takes the first resource. */
#define ATR_PROV_RESOURCE_HOSTS_AGENT(r)                                       \
  ((r)->struct_size >=                                                         \
       offsetof(atr_prov_resource_t, hosts_agent) + sizeof(int) &&             \
   (r)->hosts_agent != 0)

#define ATR_PROVISIONER_OPS_MIN_SIZE                                           \
  (offsetof(atr_provisioner_ops_t, cancel) + sizeof(void (*)(void)))

/* Whether ops has plan() (a plugin built against an older SDK has not). */
#define ATR_PROVISIONER_HAS_PLAN(ops)                                          \
  ((ops)->struct_size >=                                                       \
       offsetof(atr_provisioner_ops_t, plan) + sizeof(void (*)(void)) &&       \
   (ops)->plan != NULL)

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_PROVISIONER_H */
