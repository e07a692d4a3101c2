/* core/domain/builds.h — workspace builds: start, stop and delete a
 * workspace (the one way a build is made, for the API, the scheduler,
 * the agent and external daemons alike), and a build's log, parameters,
 * resources, provisioner state and cancelation.
 *
 * A build's values are resolved against the template version's schema
 * and the last build's values (immutable parameters keep theirs,
 * monotonic ones only grow), then the deployment's and the template's
 * policies may deny, warn or set; a workspace whose latest build still
 * runs refuses another (EBUSY, 409). The build, its job and its values
 * are written in one transaction; the job is announced after the commit.
 *
 * Permission: the actor's roles in the workspace's organization, its
 * owner acting as "self" (read for the views, update for start/stop and
 * cancel, delete for delete); the provisioner state needs update on
 * templates. Refusals come back in the fault as the API answers them.
 *
 * Threads: any; each call opens its own connection. Memory: *out is a new
 * reference for the caller; inputs are borrowed for the call.
 */
#ifndef ATRIUM_CORE_BUILDS_H
#define ATRIUM_CORE_BUILDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain.h"
#include "job_view.h"

typedef struct atr_build_new {
  const char *workspace_id;
  const char *transition;          /* start, stop or delete */
  const char *template_version_id; /* NULL: the last build's */
  json_t *values;                  /* {name: string value}; NULL for none */
  bool orphan; /* a delete that forgets the resources instead */
  /* Validations the caller already found in what it was given; answered
   * with the domain's own ("Invalid build."). NULL for none. */
  json_t *problems;
} atr_build_new_t;

/* Queue a build of the workspace. *out: the WorkspaceBuild, pending (and
 * the policies' warnings). Refusals: ENOENT "Workspace not found.";
 * EPERM (roles, or "Denied by policy." with "validations" and "denies"
 * as answer members); EINVAL "The workspace is deleted.", "Invalid
 * build.", "Invalid parameter values.", "The template version cannot be
 * built." with validations; EBUSY while the latest build runs. */
int atr_build_create(const atr_domain_t *dom, const atr_actor_t *actor,
                     const atr_build_new_t *in, json_t **out,
                     atr_fault_t *fault);

/* The workspace's builds, newest first, as a JSON array. */
int atr_builds_list(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *workspace_id, int64_t limit, int64_t offset,
                    json_t **out, atr_fault_t *fault);
/* One WorkspaceBuild: ENOENT "Workspace build not found.", EPERM. */
int atr_build_get(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *id, json_t **out, atr_fault_t *fault);
/* The build's resources (with their metadata, sensitive values hidden). */
int atr_build_resources(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *id, json_t **out, atr_fault_t *fault);
/* The build's parameter values [{name, value}], sensitive ones masked. */
int atr_build_parameters(const atr_domain_t *dom, const atr_actor_t *actor,
                         const char *id, json_t **out, atr_fault_t *fault);
/* The first page of the build's log after line `after`, and its job's id
 * for reading the pages after it (job_view.h). */
int atr_build_logs(const atr_domain_t *dom, const atr_actor_t *actor,
                   const char *id, int64_t after, char job_id[37],
                   atr_job_log_page_t *page, atr_fault_t *fault);
/* Cancel the build's job (job_view.h) and record it. */
int atr_build_cancel(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *id, atr_fault_t *fault);
/* The provisioner state the build stored, as it is: *data (malloc'd, the
 * caller frees) and *len; *data NULL when it stored none. States can
 * hold secrets, so only those who may update the workspace's templates
 * get it (EPERM). */
int atr_build_state(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *id, void **data, size_t *len,
                    atr_fault_t *fault);

#endif
