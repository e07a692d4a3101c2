/* core/domain/template_versions.h — template versions: an uploaded archive
 * (files.h), a name and message, and the import job that reads its
 * parameters.
 *
 * Creating a version queues its template_version_import job in the same
 * transaction, records the audit entry and then announces the job
 * (atr_events_job_posted), so the version handed back shows its job as
 * created: pending. The import (core/jobs/jobrun_import.c) stores the
 * parameter schema that atr_template_version_params() reads. The
 * provisioner is the one asked for, or the one the archive's
 * template.yaml names; it must be one an enabled plugin provides.
 *
 * Every function checks the actor's permission on templates of the
 * version's organization (rbac.h) itself and explains a refusal in an
 * atr_fault_t: a missing version is ATR_ENOENT "Template version not
 * found.", a forbidden one ATR_EPERM, invalid values ATR_EINVAL with
 * per-field validations, a name a version of the template already has
 * ATR_ECONSTRAINT.
 *
 * Versions as JSON are the API's TemplateVersion objects, with their job
 * (a ProvisionerJob) and its tags.
 *
 * A version whose template.yaml declares an agent keeps its spec
 * (manifest.h, atr_manifest_t.agent_spec) in template_versions.agent_spec,
 * stored when the version is made (NULL when the archive's template.yaml
 * has no agent or is invalid: its import then fails and says why, with
 * the same checks); start builds read it.
 *
 * Threads: any; each call opens its own connection. Memory: JSON handed
 * out is the caller's (json_decref).
 */
#ifndef ATRIUM_CORE_DOMAIN_TEMPLATE_VERSIONS_H
#define ATRIUM_CORE_DOMAIN_TEMPLATE_VERSIONS_H

#include <jansson.h>
#include <stdint.h>

#include "domain.h"

/* What a new version is made of. `invalid` carries the problems the
 * caller found in the request's shape ([{"field", "detail"}], borrowed,
 * NULL for none); they are answered first, with the domain's own. */
typedef struct atr_template_version_new {
  const char *organization_id;
  const char *file_id;     /* required: an uploaded archive */
  const char *name;        /* NULL or "": a random one */
  const char *message;     /* NULL: "" */
  const char *template_id; /* NULL: not yet a template's */
  const char *provisioner; /* NULL: the one template.yaml names */
  const json_t *tags;      /* an object of string values, or NULL */
  const json_t *invalid;
} atr_template_version_new_t;

int atr_template_version_create(const atr_domain_t *dom,
                                const atr_actor_t *actor,
                                const atr_template_version_new_t *in,
                                json_t **out, atr_fault_t *fault);
/* The version `id` when the actor may do act on it (ATR_ACT_READ to show
 * it or read its import's logs, ATR_ACT_UPDATE to cancel its import). */
int atr_template_version_get(const atr_domain_t *dom, const atr_actor_t *actor,
                             const char *id, atr_action_t act, json_t **out,
                             atr_fault_t *fault);
/* Its parameters (TemplateVersionParameter objects, in display order). */
int atr_template_version_params(const atr_domain_t *dom,
                                const atr_actor_t *actor, const char *id,
                                json_t **out, atr_fault_t *fault);
/* A page of a template's versions, newest first. */
int atr_template_versions_list(const atr_domain_t *dom,
                               const atr_actor_t *actor,
                               const char *template_id, int64_t limit,
                               int64_t offset, json_t **out,
                               atr_fault_t *fault);

#endif
