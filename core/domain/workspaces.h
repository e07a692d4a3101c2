/* core/domain/workspaces.h — workspaces: creating one with its first
 * build, finding them, and their schedule (autostart, autostop).
 *
 * Every function takes the deployment, the actor and plain values, checks
 * the actor's permission on the workspace's organization (a workspace's
 * owner acts on it as "self"), and explains a refusal in the fault with
 * the status and words the API answers. Creating writes the audit entry
 * and the policies' decision; the job it queues is announced after the
 * commit, so daemons claim it at once. The scheduler and other callers
 * that act for the server pass atr_actor_system().
 *
 * Threads: any; each call opens its own connection. Memory: *out is a new
 * reference for the caller; inputs are borrowed for the call.
 */
#ifndef ATRIUM_CORE_WORKSPACES_H
#define ATRIUM_CORE_WORKSPACES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "domain.h"

typedef struct atr_workspace_new {
  const char *owner; /* a user's id or username */
  const char *name;
  const char *template_id;         /* NULL: template_version_id's */
  const char *template_version_id; /* NULL: the template's active one */
  bool has_ttl;
  int64_t ttl_ms;
  json_t *values; /* {name: string value}; NULL for none */
  /* The organization the caller named (NULL for none): the template must
   * belong to it. */
  const char *org_id;
  /* Validations the caller already found in what it was given (the
   * shape of a request); answered with the domain's own, so a user sees
   * every problem at once. NULL for none. */
  json_t *problems;
} atr_workspace_new_t;

/* Create a workspace and queue its first build (start). *out: the
 * Workspace with its latest_build, pending (and the policies' warnings).
 * Refusals: ENOENT "User not found."; EINVAL "Invalid workspace." with
 * validations (name, template_id, template_version_id, ...); EPERM;
 * EEXIST (a name the owner already uses); those of atr_build_create. */
int atr_workspace_create(const atr_domain_t *dom, const atr_actor_t *actor,
                         const atr_workspace_new_t *in, json_t **out,
                         atr_fault_t *fault);

typedef struct atr_workspace_filter {
  const char *owner;    /* a username; NULL for any */
  const char *template; /* a template name; NULL for any */
  bool deleted;         /* deleted workspaces instead of the others */
  int64_t limit, offset;
} atr_workspace_filter_t;

/* The workspaces that match, newest first, as a JSON array. An actor who
 * may not read every workspace gets only their own. */
int atr_workspaces_list(const atr_domain_t *dom, const atr_actor_t *actor,
                        const atr_workspace_filter_t *filter, json_t **out,
                        atr_fault_t *fault);
/* One Workspace by id: ENOENT "Workspace not found.", EPERM. */
int atr_workspace_get(const atr_domain_t *dom, const atr_actor_t *actor,
                      const char *id, json_t **out, atr_fault_t *fault);
/* One Workspace, not deleted, by its owner (id or username) and name. */
int atr_workspace_get_by_name(const atr_domain_t *dom, const atr_actor_t *actor,
                              const char *owner, const char *name, json_t **out,
                              atr_fault_t *fault);

/* ---- the schedule (schedule.c) ------------------------------------------------ */

/* Set the autostart schedule ("[CRON_TZ=Area/City ]m h dom mon dow"; NULL
 * or "" turns it off) or the autostop (has_ttl false: the template's
 * default; else ttl_ms, one minute to 30 days). The `schedule` policy
 * hook decides first: a deny refuses (EPERM), a policy may set autostart
 * or ttl_ms, its warnings come back. *out: {"autostart", "ttl_ms",
 * "warnings"}. EINVAL "Invalid schedule." / "Invalid autostop." with
 * validations; problems as in atr_workspace_new_t. */
int atr_workspace_autostart_set(const atr_domain_t *dom,
                                const atr_actor_t *actor, const char *id,
                                const char *schedule, json_t *problems,
                                json_t **out, atr_fault_t *fault);
int atr_workspace_ttl_set(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *id, bool has_ttl, int64_t ttl_ms,
                          json_t *problems, json_t **out, atr_fault_t *fault);

#endif
