/* core/policy_hooks.h — where the server meets the policy engine: the
 * deployment policies in force (loaded at start, swapped on SIGHUP only
 * when every file loads), evaluating a hook with them and a template's
 * own policy, and the audit entry of a decision.
 *
 * Threads: configure, reload and free on the main thread; eval from any
 * thread (the deployment set is copied under deployment_lock, then
 * evaluated without it).
 */
#ifndef ATRIUM_CORE_POLICY_HOOKS_H
#define ATRIUM_CORE_POLICY_HOOKS_H

#include <jansson.h>

#include "db.h"
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

#endif
