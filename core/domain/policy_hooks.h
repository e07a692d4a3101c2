/* core/policy_hooks.h — where the server meets the policy engine: the
 * deployment policies in force (loaded at start, swapped on SIGHUP only
 * when every file loads), evaluating a hook with them and a template's
 * own policy, how a deny is answered, and the audit entry of a decision.
 *
 * Threads: configure, reload and free on the main thread; eval from any
 * thread (the deployment set is copied under deployment_lock, then
 * evaluated without it).
 */
#ifndef ATRIUM_CORE_POLICY_HOOKS_H
#define ATRIUM_CORE_POLICY_HOOKS_H

#include <jansson.h>

#include "actor.h"
#include "db.h"
#include "fault.h"
#include "policy.h"

/* Load the deployment policies the globs match. At start a failure is an
 * error (the server does not start with policies it cannot run); the
 * limits are kept for every evaluation. */
int atr_policy_hooks_configure(const char *const *globs,
                               const atr_policy_limits_t *lim, char **err);
/* SIGHUP: load again; on failure keep the running policies, log why and
 * return the error. */
int atr_policy_hooks_reload(const char *const *globs,
                            const atr_policy_limits_t *lim);
void atr_policy_hooks_free(void);

/* Evaluate `hook` with the deployment policies and, when template_source
 * is not NULL, the template's policy (named template_name) on input.
 * *out is initialized here (clear it after). A template policy that does
 * not compile denies with its error. */
int atr_policy_hooks_eval(const char *hook, json_t *input,
                          const char *template_name,
                          const char *template_source, atr_decision_t *out);
/* Add input.user ({id, name, email, roles (site and organization role
 * names), groups}) and input.organization ({id, name}) for user_id acting
 * in org_id. */
int atr_policy_input_people(atr_db_t *db, const char *user_id,
                            const char *org_id, json_t *input, char **err);

/* Whether the decision says anything worth recording (a deny, a warning
 * or a set). */
bool atr_policy_hooks_noteworthy(const atr_decision_t *d);

/* A deny as the caller's refusal: ATR_EPERM (403) with "Denied by
 * policy.", every deny as "policy: message" joined by "; " in the detail,
 * and, as the answer's members, "validations" (one per deny that names a
 * parameter) and "denies" ([{message, parameter, policy}]). Returns
 * ATR_EPERM. */
int atr_policy_deny_fault(const atr_decision_t *d, atr_fault_t *fault);

/* The audit entry (action "policy", resource a workspace) of a decision
 * (atr_decision_to_json), with the status its caller answered; nothing
 * when decision is NULL. workspace_id may be NULL (a workspace not
 * created). */
void atr_policy_audit(atr_store_t *store, const atr_actor_t *actor,
                      json_t *decision, const char *workspace_id,
                      const char *workspace_name, const char *org_id,
                      int status);

#endif
