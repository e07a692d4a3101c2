/* core/domain/templates.h — templates: a name in an organization, its
 * settings (display name, description, default TTL) and the version that
 * new workspaces are built from (the active version).
 *
 * A template is made from a version of its organization whose import
 * succeeded and that no template owns yet; it cannot be deleted while
 * workspaces use it (the refusal says how many). Every function checks
 * the actor's permission on templates of the template's organization
 * (rbac.h) itself, records its audit entry ("create", "write" with the
 * changed fields, "delete") and explains a refusal in an atr_fault_t: a
 * missing template is ATR_ENOENT "Template not found.", a forbidden one
 * ATR_EPERM, invalid values ATR_EINVAL with per-field validations, a name
 * already taken ATR_ECONSTRAINT.
 *
 * Templates as JSON are the API's Template objects (docs/api.md).
 *
 * Threads: any; each call opens its own connection. Memory: JSON handed
 * out is the caller's (json_decref).
 */
#ifndef ATRIUM_CORE_DOMAIN_TEMPLATES_H
#define ATRIUM_CORE_DOMAIN_TEMPLATES_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "domain.h"

/* The longest default TTL a template may set: 30 days. */
#define ATR_TEMPLATE_MAX_TTL_MS (30LL * 24 * 3600 * 1000)

/* What a new template is made of. `invalid` carries the problems the
 * caller found in the request's shape ([{"field", "detail"}], borrowed,
 * NULL for none); they are answered first, with the domain's own. */
typedef struct atr_template_new {
  const char *organization_id;
  const char *name, *display_name, *description; /* NULL: "" */
  const char *version_id;                        /* its first version */
  bool has_ttl;                                  /* false: 7 days */
  int64_t default_ttl_ms; /* 0 .. ATR_TEMPLATE_MAX_TTL_MS */
  const json_t *invalid;
} atr_template_new_t;

/* What a change sets; NULL (has_ttl false) leaves a field as it is. */
typedef struct atr_template_change {
  const char *name, *display_name, *description;
  bool has_ttl;
  int64_t default_ttl_ms;
  const json_t *invalid;
} atr_template_change_t;

int atr_template_create(const atr_domain_t *dom, const atr_actor_t *actor,
                        const atr_template_new_t *in, json_t **out,
                        atr_fault_t *fault);
/* A page of the organization's templates by name, as a JSON array. */
int atr_templates_list(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *org_id, int64_t limit, int64_t offset,
                       json_t **out, atr_fault_t *fault);
int atr_template_get(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *id, json_t **out, atr_fault_t *fault);
/* By name (any case) in an organization. */
int atr_template_get_by_name(const atr_domain_t *dom, const atr_actor_t *actor,
                             const char *org_id, const char *name, json_t **out,
                             atr_fault_t *fault);
int atr_template_update(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *id, const atr_template_change_t *in,
                        json_t **out, atr_fault_t *fault);
int atr_template_delete(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *id, atr_fault_t *fault);
/* Make version_id (one of the template's, imported) the active version;
 * `invalid` as in atr_template_new_t. */
int atr_template_promote(const atr_domain_t *dom, const atr_actor_t *actor,
                         const char *id, const char *version_id,
                         const json_t *invalid, atr_fault_t *fault);

/* ---- for other domain modules ------------------------------------------- */

/* A Template by id, on the caller's connection, without a permission
 * check. ATR_ENOENT when there is no such template that is not deleted. */
int atr_template_load(atr_db_t *db, const char *id, json_t **out, char **err);
/* 0 when the actor may do act on templates of org_id; else the refusal
 * (ATR_EPERM "Forbidden.", or the error reading the roles) in fault. */
int atr__template_allowed(atr_db_t *db, const atr_actor_t *actor,
                          const char *org_id, atr_action_t act,
                          atr_fault_t *fault);
/* Open a connection, then as atr__template_allowed. */
int atr__template_allowed_in(const atr_domain_t *dom, const atr_actor_t *actor,
                             const char *org_id, atr_action_t act,
                             atr_fault_t *fault);
/* The problems a caller found ([{"field", "detail"}]) as validations of
 * fault, in their order. */
void atr__fault_fields_from(atr_fault_t *fault, const json_t *invalid);

#endif
