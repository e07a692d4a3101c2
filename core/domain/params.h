/* core/schema.h — a template version's parameter schema as stored by its
 * import (template_version_parameters), read back into the manifest types
 * that check a build's values, and shown by the API.
 *
 * Threads: no shared state. Memory: atr_manifest_free frees what
 * atr_schema_load filled. */
#ifndef ATRIUM_CORE_SCHEMA_H
#define ATRIUM_CORE_SCHEMA_H

#include <jansson.h>

#include "db.h"
#include "manifest.h"

/* The parameters of a version, in display order (name, provisioner and
 * policy are left NULL). A version without parameters gives none. */
int atr_schema_load(atr_db_t *db, const char *version_id, atr_manifest_t *m,
                    char **err);
/* A TemplateVersionParameter (docs/api.md). */
json_t *atr_schema_param_json(const atr_param_t *p);

#endif
