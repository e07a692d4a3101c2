/* core/manifest.h — template.yaml: a template version's manifest and its
 * parameter schema, and checking a workspace's parameter values against
 * that schema.
 *
 *   name: docker-dev
 *   provisioner: docker
 *   parameters:
 *     - name: cpus
 *       type: number            # string | number | bool | list(string)
 *       default: 2
 *       validation: { min: 1, max: 8, monotonic: increasing,
 *                     error: "Between 1 and 8 CPUs" }
 *       mutable: true
 *   policy: policy.lua
 *   agent:                      # optional: the workspace agent
 *     startup_script: |
 *       code-server --auth none &
 *     metadata:
 *       - { key: load, script: cat /proc/loadavg, interval: 10s }
 *
 * One schema serves every provisioner. Errors name the field path
 * ("parameters[1].validation.min"), what is wrong and what is allowed.
 *
 * Threads: no shared state. Memory: atr_manifest_free frees everything.
 */
#ifndef ATRIUM_CORE_MANIFEST_H
#define ATRIUM_CORE_MANIFEST_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum atr_param_type {
  ATR_PARAM_STRING = 1,
  ATR_PARAM_NUMBER = 2,
  ATR_PARAM_BOOL = 3,
  ATR_PARAM_LIST_STRING = 4,
} atr_param_type_t;

typedef struct atr_param_option {
  char *name;
  char *value;
  char *description;
} atr_param_option_t;

typedef struct atr_param {
  char *name;
  char *display_name;
  char *description;
  atr_param_type_t type;
  char *default_value; /* canonical text: "2", "true", "[\"a\",\"b\"]"; NULL
                          when required */
  bool has_default;
  bool mutable_;
  bool ephemeral;
  bool required; /* no default: a value must be given */
  bool sensitive;
  atr_param_option_t *options; /* choose one of these (value) */
  size_t noptions;
  bool has_min, has_max;
  double min, max; /* number: value bounds (inclusive) */
  char *regex;     /* POSIX extended; string values must match */
  char *monotonic; /* "increasing" | "decreasing" | NULL (numbers) */
  char *error;     /* shown instead of the generic message */
  int display_order;
} atr_param_t;

typedef struct atr_manifest {
  char *name;
  char *provisioner;
  char *policy; /* path inside the archive, or NULL */
  atr_param_t *params;
  size_t nparams;
  /* The `agent:` section as the agent spec JSON (compact text, stored in
   * template_versions.agent_spec), or NULL when the template has none. */
  char *agent_spec;
} atr_manifest_t;

/* "string", "number", "bool", "list(string)". */
const char *atr_param_type_name(atr_param_type_t t);
/* The type named so, or 0. */
atr_param_type_t atr_param_type_parse(const char *name);

/* Parse template.yaml text (file_name used in messages). On failure
 * ATR_EINVAL and *errors gets a JSON array of {"field", "detail"}, every
 * problem found (not only the first). */
int atr_manifest_parse(const char *file_name, const char *text, size_t len,
                       atr_manifest_t *out, json_t **errors);
void atr_manifest_free(atr_manifest_t *m);

/* Check values (a JSON object name → string value, as the API receives
 * them: "2", "true", "[\"a\"]") against the schema for a build.
 * previous: the last build's values (NULL for the first build) — immutable
 * parameters may not change and monotonic ones may only move one way.
 * *resolved gets the full set (defaults filled in) as a JSON object.
 * On failure ATR_EINVAL and *errors one {"field": "<param name>", "detail"}
 * per bad parameter; unknown parameter names are errors too. */
int atr_manifest_check_values(const atr_manifest_t *m, json_t *values,
                              json_t *previous, json_t **resolved,
                              json_t **errors);

#endif
