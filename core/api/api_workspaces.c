/* core/api_workspaces.c — workspaces and builds over HTTP: each handler
 * reads the request, calls one domain function (workspaces.h, builds.h)
 * and answers. */
#include "api_workspaces.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_jobs.h"
#include "atrium/error.h"
#include "builds.h"
#include "workspaces.h"

/* Answer a domain call: its JSON with `status`, or its refusal. */
static int answer(atr_api_req_t *r, int rc, int status, json_t *out,
                  atr_fault_t *fault) {
  if (rc != 0) {
    json_decref(out);
    return atr_api_fault(r, fault);
  }
  atr_fault_clear(fault);
  return atr_api_json(r, status, out);
}

/* {user}: "me" is the actor. */
static const char *user_param(atr_api_req_t *r) {
  const char *who = atr_api_param(r, "user");
  return strcmp(who, "me") == 0 ? r->actor.user_id : who;
}

/* rich_parameter_values: [{"name", "value"}] → {name: value}; NULL and a
 * validation when malformed. */
static json_t *read_values(json_t *body, json_t *v) {
  json_t *list = json_object_get(body, "rich_parameter_values");
  json_t *out = json_object();
  if (!list || json_is_null(list))
    return out;
  bool ok = json_is_array(list);
  size_t i;
  json_t *item;
  json_array_foreach(list, i, item) {
    const char *name = json_string_value(json_object_get(item, "name"));
    json_t *value = json_object_get(item, "value");
    if (!name || !*name || !json_is_string(value)) {
      ok = false;
      break;
    }
    json_object_set(out, name, value);
  }
  if (!ok) {
    atr_api_add_validation(
        v, "rich_parameter_values",
        "Must be a list of {\"name\": ..., \"value\": \"...\"} "
        "with string values.");
    json_decref(out);
    return NULL;
  }
  return out;
}

static void read_ttl(json_t *body, atr_workspace_new_t *in, json_t *v) {
  json_t *j = json_object_get(body, "ttl_ms");
  if (!j || json_is_null(j))
    return;
  if (!json_is_integer(j) || json_integer_value(j) < 0) {
    atr_api_add_validation(v, "ttl_ms",
                           "Must be a whole number of milliseconds.");
    return;
  }
  in->has_ttl = true;
  in->ttl_ms = json_integer_value(j);
}

int atr_api_workspace_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  atr_workspace_new_t in = {.owner = user_param(r),
                            .org_id = r->org_id[0] ? r->org_id : NULL,
                            .problems = v};
  in.name = atr_api_opt_string(body, "name", v);
  read_ttl(body, &in, v);
  in.template_id = atr_api_opt_string(body, "template_id", v);
  in.template_version_id = atr_api_opt_string(body, "template_version_id", v);
  in.values = read_values(body, v);
  json_t *out = NULL;
  atr_fault_t fault = {0};
  int rc = atr_workspace_create(&r->env->dom, &r->actor, &in, &out, &fault);
  answer(r, rc, 201, out, &fault);
  json_decref(in.values);
  json_decref(v);
  json_decref(body);
  return 0;
}

int atr_api_workspaces_list(atr_api_req_t *r) {
  atr_workspace_filter_t f = {0};
  if (atr_api_list_window(r, 100, &f.limit, &f.offset) != 0)
    return 0;
  char obuf[80], tbuf[80], dbuf[8];
  f.owner = atr_api_query(r, "owner", obuf, sizeof obuf);
  f.template = atr_api_query(r, "template", tbuf, sizeof tbuf);
  const char *deleted = atr_api_query(r, "deleted", dbuf, sizeof dbuf);
  f.deleted = deleted && strcmp(deleted, "true") == 0;
  if (f.owner && strcmp(f.owner, "me") == 0)
    f.owner = r->actor.username;
  json_t *a = NULL;
  atr_fault_t fault = {0};
  int rc = atr_workspaces_list(&r->env->dom, &r->actor, &f, &a, &fault);
  if (rc != 0)
    return atr_api_fault(r, &fault);
  return atr_api_json(r, 200,
                      json_pack("{s:o, s:I}", "workspaces", a, "count",
                                (json_int_t)json_array_size(a)));
}

int atr_api_workspace_get(atr_api_req_t *r) {
  json_t *w = NULL;
  atr_fault_t fault = {0};
  int rc = atr_workspace_get(&r->env->dom, &r->actor,
                             atr_api_param(r, "workspace"), &w, &fault);
  return answer(r, rc, 200, w, &fault);
}

int atr_api_workspace_by_name(atr_api_req_t *r) {
  json_t *w = NULL;
  atr_fault_t fault = {0};
  int rc =
      atr_workspace_get_by_name(&r->env->dom, &r->actor, user_param(r),
                                atr_api_param(r, "workspacename"), &w, &fault);
  return answer(r, rc, 200, w, &fault);
}

static bool valid_transition(const char *t) {
  return t && (strcmp(t, "start") == 0 || strcmp(t, "stop") == 0 ||
               strcmp(t, "delete") == 0);
}

int atr_api_workspace_build_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  atr_build_new_t in = {.workspace_id = atr_api_param(r, "workspace"),
                        .problems = v};
  in.transition = atr_api_opt_string(body, "transition", v);
  bool bad_transition = !valid_transition(in.transition);
  if (bad_transition)
    atr_api_add_validation(v, "transition", "Must be start, stop or delete.");
  json_t *orphan = json_object_get(body, "orphan");
  in.orphan = json_is_true(orphan);
  if (orphan && !json_is_boolean(orphan))
    atr_api_add_validation(v, "orphan", "Must be true or false.");
  if (bad_transition && in.orphan && in.transition)
    atr_api_add_validation(v, "orphan",
                           "Only a delete can be an orphan delete.");
  in.values = read_values(body, v);
  if (!bad_transition)
    in.template_version_id = atr_api_opt_string(body, "template_version_id", v);
  json_t *out = NULL;
  atr_fault_t fault = {0};
  if (bad_transition) { /* which permission applies is not known */
    atr_api_validation(r, "Invalid build.", json_incref(v));
  } else {
    int rc = atr_build_create(&r->env->dom, &r->actor, &in, &out, &fault);
    answer(r, rc, 201, out, &fault);
  }
  json_decref(in.values);
  json_decref(v);
  json_decref(body);
  return 0;
}

int atr_api_workspace_builds_list(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, 25, &limit, &offset) != 0)
    return 0;
  json_t *a = NULL;
  atr_fault_t fault = {0};
  int rc =
      atr_builds_list(&r->env->dom, &r->actor, atr_api_param(r, "workspace"),
                      limit, offset, &a, &fault);
  return answer(r, rc, 200, a, &fault);
}

int atr_api_build_get(atr_api_req_t *r) {
  json_t *b = NULL;
  atr_fault_t fault = {0};
  int rc = atr_build_get(&r->env->dom, &r->actor,
                         atr_api_param(r, "workspacebuild"), &b, &fault);
  return answer(r, rc, 200, b, &fault);
}

int atr_api_build_logs(atr_api_req_t *r) {
  int64_t after = 0;
  bool follow = false;
  if (atr_api_job_logs_query(r, &after, &follow) != 0)
    return 0;
  char job_id[37];
  atr_job_log_page_t page = {0};
  atr_fault_t fault = {0};
  if (atr_build_logs(&r->env->dom, &r->actor,
                     atr_api_param(r, "workspacebuild"), after, job_id, &page,
                     &fault) != 0)
    return atr_api_fault(r, &fault);
  return atr_api_job_logs_answer(r, job_id, after, follow, &page);
}

int atr_api_build_cancel(atr_api_req_t *r) {
  atr_fault_t fault = {0};
  if (atr_build_cancel(&r->env->dom, &r->actor,
                       atr_api_param(r, "workspacebuild"), &fault) != 0)
    return atr_api_fault(r, &fault);
  return atr_api_json(r, 200, json_pack("{s:s}", "message", "Job canceled."));
}

int atr_api_build_resources(atr_api_req_t *r) {
  json_t *a = NULL;
  atr_fault_t fault = {0};
  int rc = atr_build_resources(&r->env->dom, &r->actor,
                               atr_api_param(r, "workspacebuild"), &a, &fault);
  return answer(r, rc, 200, a, &fault);
}

int atr_api_build_params(atr_api_req_t *r) {
  json_t *a = NULL;
  atr_fault_t fault = {0};
  int rc = atr_build_parameters(&r->env->dom, &r->actor,
                                atr_api_param(r, "workspacebuild"), &a, &fault);
  return answer(r, rc, 200, a, &fault);
}

/* Coder's /workspacebuilds/{id}/state: the bytes as stored, 204 for
 * none. */
int atr_api_build_state(atr_api_req_t *r) {
  void *data = NULL;
  size_t len = 0;
  atr_fault_t fault = {0};
  if (atr_build_state(&r->env->dom, &r->actor,
                      atr_api_param(r, "workspacebuild"), &data, &len,
                      &fault) != 0)
    return atr_api_fault(r, &fault);
  if (!data)
    return atr_api_no_content(r);
  atr_api_raw(r, 200, "application/octet-stream", data, len);
  free(data);
  return 0;
}
