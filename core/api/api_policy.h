/* core/api_policy.h — how the API shows and records a policy decision:
 * the 403 answer of a deny and the audit entry of a decision that denies,
 * warns or sets. Workspace creates, builds and schedule changes share
 * them.
 *
 * Threads: HTTP worker threads (the request's). */
#ifndef ATRIUM_CORE_API_POLICY_H
#define ATRIUM_CORE_API_POLICY_H

#include <jansson.h>

#include "api.h"
#include "policy.h"

/* {"message": "Denied by policy.", "detail": every deny as "policy:
 * message" joined by "; ", "validations": one per deny that names a
 * parameter, "denies": [{message, parameter, policy}]}; a new reference. */
json_t *atr_api_policy_denied(const atr_decision_t *d);

/* An audit entry (action "policy", resource a workspace) holding the
 * decision (atr_decision_to_json); nothing when decision is NULL.
 * workspace_id may be NULL (a workspace not created). */
void atr_api_policy_audit(const atr_api_req_t *r, json_t *decision,
                          const char *workspace_id, const char *workspace_name,
                          const char *org_id, int status);

#endif
