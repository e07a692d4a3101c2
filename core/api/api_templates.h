/* core/api/api_templates.h — the routes of template versions (an uploaded
 * archive and its import job) and templates (a name, settings and an
 * active version); the rules are in core/domain/templates.h and
 * template_versions.h. */
#ifndef ATRIUM_CORE_API_TEMPLATES_H
#define ATRIUM_CORE_API_TEMPLATES_H

#include "api.h"

int atr_api_template_version_create(atr_api_req_t *r);
int atr_api_template_version_get(atr_api_req_t *r);
int atr_api_template_version_params(atr_api_req_t *r);
int atr_api_template_version_logs(atr_api_req_t *r);
int atr_api_template_version_cancel(atr_api_req_t *r);

int atr_api_template_create(atr_api_req_t *r);
int atr_api_templates_list(atr_api_req_t *r);
int atr_api_template_by_name(atr_api_req_t *r);
int atr_api_template_get(atr_api_req_t *r);
int atr_api_template_update(atr_api_req_t *r);
int atr_api_template_delete(atr_api_req_t *r);
int atr_api_template_versions_list(atr_api_req_t *r);
int atr_api_template_version_promote(atr_api_req_t *r);

/* Kept for api_workspaces.c: atr_template_load (templates.h), which new
 * code calls directly. */
int atr_api_load_template(atr_db_t *db, const char *id, json_t **out,
                          char **err);

#endif
