/* core/api/api_orgs.c — organizations and their members: each handler
 * reads the request, calls one domain function (orgs.h) and answers.
 *
 * The router has resolved {organization} and authorized the route; the
 * domain checks both again, so other callers get the same rules. */
#include "api_orgs.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "orgs.h"

#define ORG_ADMIN "organization-admin"

static const char *org_param(const atr_api_req_t *r) {
  return atr_api_param(r, "organization");
}

/* ---- organizations -------------------------------------------------------- */

int atr_api_orgs_list(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, INT64_MAX, &limit, &offset) != 0)
    return 0;
  atr_fault_t f = {0};
  json_t *list = NULL;
  int rc = atr_org_list(&r->env->dom, &r->actor, limit, offset, &list, &f);
  return atr_api_answer(r, rc, 200, list, &f);
}

int atr_api_org_get(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *org = NULL;
  int rc = atr_org_get(&r->env->dom, &r->actor, org_param(r), &org, &f);
  return atr_api_answer(r, rc, 200, org, &f);
}

/* A field's validations in the order the fields come: its type here, its
 * rule (problem, may be NULL) from the domain. */
static const char *org_field(json_t *body, const char *field,
                             const char *(*problem)(const char *), json_t *v) {
  const char *s = atr_api_opt_string(body, field, v);
  json_t *j = json_object_get(body, field);
  /* a value of the wrong type already has its validation */
  const char *why = problem && (!j || json_is_string(j) || json_is_null(j))
                        ? problem(s)
                        : NULL;
  if (why)
    atr_api_add_validation(v, field, why);
  return s;
}

int atr_api_org_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  atr_org_new_t in;
  in.name = org_field(body, "name", atr_org_name_problem, v);
  in.display_name =
      org_field(body, "display_name", atr_org_display_name_problem, v);
  in.description = org_field(body, "description", NULL, v);
  in.icon = org_field(body, "icon", NULL, v);
  if (json_array_size(v) > 0) {
    json_decref(body);
    return atr_api_validation(r, "Validation failed.", v);
  }
  json_decref(v);
  atr_fault_t f = {0};
  json_t *org = NULL;
  int rc = atr_org_create(&r->env->dom, &r->actor, &in, &org, &f);
  atr_api_answer(r, rc, 201, org, &f);
  json_decref(body);
  return 0;
}

/* ---- members ---------------------------------------------------------------- */

int atr_api_org_members_list(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, INT64_MAX, &limit, &offset) != 0)
    return 0;
  atr_fault_t f = {0};
  json_t *list = NULL;
  int rc = atr_org_members_list(&r->env->dom, &r->actor, org_param(r), limit,
                                offset, &list, &f);
  return atr_api_answer(r, rc, 200, list, &f);
}

int atr_api_org_member_add(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *member = NULL;
  int rc = atr_org_member_add(&r->env->dom, &r->actor, org_param(r),
                              atr_api_param(r, "user"), &member, &f);
  return atr_api_answer(r, rc, 201, member, &f);
}

int atr_api_org_member_remove(atr_api_req_t *r) {
  atr_fault_t f = {0};
  int rc = atr_org_member_remove(&r->env->dom, &r->actor, org_param(r),
                                 atr_api_param(r, "user"), &f);
  return atr_api_answer(r, rc, 204, NULL, &f);
}

/* The body's "roles": organization roles that may be assigned. Each bad
 * entry is one validation naming it. */
static uint32_t parse_roles(json_t *body, json_t *v) {
  json_t *list = json_object_get(body, "roles");
  if (!json_is_array(list)) {
    atr_api_add_validation(
        v, "roles",
        "Required: a list of organization role names, such as "
        "[\"" ORG_ADMIN "\"] (or [] for none).");
    return 0;
  }
  uint32_t roles = 0;
  size_t i;
  json_t *item;
  json_array_foreach(list, i, item) {
    const char *name = json_string_value(item);
    uint32_t role = atr_role_parse(name, true);
    char detail[300];
    if (!name)
      snprintf(detail, sizeof detail, "Entry %zu is not a string.", i);
    else if (role && atr_role_assignable(role, true))
      roles |= role;
    else if (role)
      snprintf(detail, sizeof detail,
               "\"%.100s\" is implied for every member and cannot be "
               "assigned.",
               name);
    else if (atr_role_parse(name, false))
      snprintf(detail, sizeof detail,
               "\"%.100s\" is a site role, not an organization role.", name);
    else
      snprintf(detail, sizeof detail,
               "Unknown organization role \"%.100s\"; the assignable one is "
               "\"" ORG_ADMIN "\".",
               name);
    if (!name || !role || !atr_role_assignable(role, true))
      atr_api_add_validation(v, "roles", detail);
  }
  return roles;
}

int atr_api_org_member_roles(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  uint32_t roles = parse_roles(body, v);
  json_decref(body);
  if (json_array_size(v) > 0)
    return atr_api_validation(r, "Validation failed.", v);
  json_decref(v);
  atr_fault_t f = {0};
  json_t *member = NULL;
  int rc =
      atr_org_member_roles_set(&r->env->dom, &r->actor, org_param(r),
                               atr_api_param(r, "user"), roles, &member, &f);
  return atr_api_answer(r, rc, 200, member, &f);
}
