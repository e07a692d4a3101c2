/* core/api_policy.c — see api_policy.h. */
#include "api_policy.h"

#include <stdlib.h>
#include <string.h>

#include "audit.h"

json_t *atr_api_policy_denied(const atr_decision_t *d) {
  json_t *validations = json_array();
  json_t *denies = json_array();
  char *detail = strdup("");
  for (size_t i = 0; i < d->ndenies; i++) {
    const atr_policy_msg_t *m = &d->denies[i];
    char *next = NULL;
    if (detail && asprintf(&next, "%s%s%s: %s", detail, i ? "; " : "",
                           m->policy, m->message) < 0)
      next = NULL;
    free(detail);
    detail = next;
    if (m->parameter)
      atr_api_add_validation(validations, m->parameter, m->message);
    json_array_append_new(
        denies,
        json_pack("{s:s, s:o, s:s}", "message", m->message, "parameter",
                  m->parameter ? json_string(m->parameter) : json_null(),
                  "policy", m->policy));
  }
  json_t *body = json_pack("{s:s, s:s, s:o, s:o}", "message",
                           "Denied by policy.", "detail", detail ? detail : "",
                           "validations", validations, "denies", denies);
  free(detail);
  return body;
}

void atr_api_policy_audit(const atr_api_req_t *r, json_t *decision,
                          const char *workspace_id, const char *workspace_name,
                          const char *org_id, int status) {
  if (!decision)
    return;
  char *text = json_dumps(decision, JSON_COMPACT | JSON_SORT_KEYS);
  json_t *diff = NULL;
  atr_audit_diff_add(&diff, "policy_decision", NULL, text, false);
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = "policy",
                                        .resource_type = "workspace",
                                        .resource_id = workspace_id,
                                        .resource_target = workspace_name,
                                        .organization_id = org_id,
                                        .diff = diff,
                                        .status_code = status});
  json_decref(diff);
  free(text);
}
