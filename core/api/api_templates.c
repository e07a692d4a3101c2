/* core/api/api_templates.c — template versions and templates: each handler
 * reads the request into plain values, calls one function of the domain
 * (templates.h, template_versions.h) and answers what it gives back. A
 * version's import logs and cancel are its job's (api_jobs.h). */
#include "api_templates.h"

#include "api_jobs.h"
#include "template_versions.h"
#include "templates.h"

/* The domain's result: out with status, or its refusal. */
static int answer(atr_api_req_t *r, int rc, int status, json_t *out,
                  atr_fault_t *f) {
  if (rc != 0) {
    json_decref(out);
    return atr_api_fault(r, f);
  }
  return atr_api_json(r, status, out);
}

/* default_ttl_ms when present; a value that is not a whole number reads
 * as -1, which the domain refuses with the range. */
static bool read_ttl(json_t *body, int64_t *ttl) {
  json_t *j = json_object_get(body, "default_ttl_ms");
  if (!j || json_is_null(j))
    return false;
  *ttl = json_is_integer(j) ? json_integer_value(j) : -1;
  return true;
}

/* ---- template versions ------------------------------------------------------ */

int atr_api_template_version_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  atr_template_version_new_t in = {.organization_id = r->org_id};
  in.file_id = atr_api_opt_string(body, "file_id", v);
  in.name = atr_api_opt_string(body, "name", v);
  in.message = atr_api_opt_string(body, "message", v);
  in.template_id = atr_api_opt_string(body, "template_id", v);
  in.provisioner = atr_api_opt_string(body, "provisioner", v);
  in.tags = json_object_get(body, "tags");
  in.invalid = v;
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_template_version_create(&r->env->dom, &r->actor, &in, &out, &f);
  answer(r, rc, 201, out, &f);
  json_decref(v);
  json_decref(body);
  return 0;
}

/* {templateversion}, when the actor may do act on it; NULL after
 * answering. */
static json_t *version_for(atr_api_req_t *r, atr_action_t act) {
  atr_fault_t f = {0};
  json_t *v = NULL;
  if (atr_template_version_get(&r->env->dom, &r->actor,
                               atr_api_param(r, "templateversion"), act, &v,
                               &f) != 0)
    atr_api_fault(r, &f);
  return v;
}

int atr_api_template_version_get(atr_api_req_t *r) {
  json_t *v = version_for(r, ATR_ACT_READ);
  return v ? atr_api_json(r, 200, v) : 0;
}

int atr_api_template_version_params(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_template_version_params(
      &r->env->dom, &r->actor, atr_api_param(r, "templateversion"), &out, &f);
  return answer(r, rc, 200, out, &f);
}

static const char *job_id_of(json_t *v) {
  return json_string_value(json_object_get(json_object_get(v, "job"), "id"));
}

int atr_api_template_version_logs(atr_api_req_t *r) {
  json_t *v = version_for(r, ATR_ACT_READ);
  if (v)
    atr_api_job_logs(r, job_id_of(v));
  json_decref(v);
  return 0;
}

int atr_api_template_version_cancel(atr_api_req_t *r) {
  json_t *v = version_for(r, ATR_ACT_UPDATE);
  if (v)
    atr_api_job_cancel(r, job_id_of(v));
  json_decref(v);
  return 0;
}

/* ---- templates ---------------------------------------------------------------- */

int atr_api_template_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  atr_template_new_t in = {.organization_id = r->org_id};
  in.name = atr_api_opt_string(body, "name", v);
  in.display_name = atr_api_opt_string(body, "display_name", v);
  in.description = atr_api_opt_string(body, "description", v);
  in.version_id = atr_api_opt_string(body, "template_version_id", v);
  in.has_ttl = read_ttl(body, &in.default_ttl_ms);
  in.invalid = v;
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_template_create(&r->env->dom, &r->actor, &in, &out, &f);
  answer(r, rc, 201, out, &f);
  json_decref(v);
  json_decref(body);
  return 0;
}

int atr_api_templates_list(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, 100, &limit, &offset) != 0)
    return 0;
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_templates_list(&r->env->dom, &r->actor, r->org_id, limit, offset,
                              &out, &f);
  return answer(r, rc, 200, out, &f);
}

int atr_api_template_by_name(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_template_get_by_name(&r->env->dom, &r->actor, r->org_id,
                                    atr_api_param(r, "templatename"), &out, &f);
  return answer(r, rc, 200, out, &f);
}

int atr_api_template_get(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_template_get(&r->env->dom, &r->actor,
                            atr_api_param(r, "template"), &out, &f);
  return answer(r, rc, 200, out, &f);
}

int atr_api_template_update(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  atr_template_change_t in = {0};
  in.name = atr_api_opt_string(body, "name", v);
  in.display_name = atr_api_opt_string(body, "display_name", v);
  in.description = atr_api_opt_string(body, "description", v);
  in.has_ttl = read_ttl(body, &in.default_ttl_ms);
  in.invalid = v;
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_template_update(&r->env->dom, &r->actor,
                               atr_api_param(r, "template"), &in, &out, &f);
  answer(r, rc, 200, out, &f);
  json_decref(v);
  json_decref(body);
  return 0;
}

int atr_api_template_delete(atr_api_req_t *r) {
  atr_fault_t f = {0};
  if (atr_template_delete(&r->env->dom, &r->actor, atr_api_param(r, "template"),
                          &f) != 0)
    return atr_api_fault(r, &f);
  return atr_api_no_content(r);
}

int atr_api_template_versions_list(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, 100, &limit, &offset) != 0)
    return 0;
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_template_versions_list(&r->env->dom, &r->actor,
                                      atr_api_param(r, "template"), limit,
                                      offset, &out, &f);
  return answer(r, rc, 200, out, &f);
}

int atr_api_template_version_promote(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  const char *version_id = atr_api_opt_string(body, "id", v);
  atr_fault_t f = {0};
  int rc = atr_template_promote(
      &r->env->dom, &r->actor, atr_api_param(r, "template"), version_id, v, &f);
  answer(r, rc, 200,
         rc == 0 ? json_pack("{s:s}", "message", "Updated the active version.")
                 : NULL,
         &f);
  json_decref(v);
  json_decref(body);
  return 0;
}

int atr_api_load_template(atr_db_t *db, const char *id, json_t **out,
                          char **err) {
  return atr_template_load(db, id, out, err);
}
