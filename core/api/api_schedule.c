/* core/api_schedule.c — PUT /workspaces/{id}/autostart and /ttl: the
 * body read, the domain's atr_workspace_autostart_set / _ttl_set called
 * (policies, checks and storage are there), the answer sent. */
#include <stdlib.h>

#include "api_workspaces.h"
#include "atrium/error.h"
#include "workspaces.h"

static int answer(atr_api_req_t *r, int rc, json_t *out, atr_fault_t *fault) {
  if (rc != 0)
    return atr_api_fault(r, fault);
  return atr_api_json(r, 200, out);
}

int atr_api_workspace_autostart(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  const char *schedule = atr_api_opt_string(body, "schedule", v);
  json_t *out = NULL;
  atr_fault_t fault = {0};
  int rc = atr_workspace_autostart_set(&r->env->dom, &r->actor,
                                       atr_api_param(r, "workspace"), schedule,
                                       v, &out, &fault);
  answer(r, rc, out, &fault);
  json_decref(v);
  json_decref(body);
  return 0;
}

int atr_api_workspace_ttl(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  json_t *t = json_object_get(body, "ttl_ms");
  bool has_ttl = t && !json_is_null(t);
  if (has_ttl && !json_is_integer(t)) {
    atr_api_add_validation(v, "ttl_ms",
                           "Milliseconds from one minute to 30 days, or null "
                           "for the template's default.");
    has_ttl = false;
  }
  json_t *out = NULL;
  atr_fault_t fault = {0};
  int rc = atr_workspace_ttl_set(&r->env->dom, &r->actor,
                                 atr_api_param(r, "workspace"), has_ttl,
                                 json_integer_value(t), v, &out, &fault);
  answer(r, rc, out, &fault);
  json_decref(v);
  json_decref(body);
  return 0;
}
