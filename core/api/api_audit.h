/* core/api/api_audit.h — GET /api/v2/audit: reading the audit log.
 *
 * The handler splits in two so each half can be used alone: a filter is
 * parsed from the request's query (Coder's `q` search string and plain
 * parameters), then the domain's atr_audit_list() (audit_query.h) checks
 * the caller may read the log, runs the filter and builds the answer's
 * JSON.
 *
 * Query parameters:
 *   q              space-separated key:value terms, values optionally in
 *                  double quotes: `action:login username:alice`
 *   action, resource_type, resource_id, username, status_code, since, until
 *                  the same filters as plain parameters (empty = not given)
 *   limit          rows per page, default 50, at most 1000 (more is cut
 *                  to 1000); 0 answers only the count
 *   offset         rows to skip, default 0
 * A filter given twice with different values is an error. username is the
 * actor's, case-insensitive. resource_id is a UUID, or another id (an API
 * key's) that audit.c kept in additional_fields. since and until are
 * RFC 3339 times (a bare date means its whole day, UTC) and bound the
 * entry's time inclusively. Newest entries come first.
 *
 * Threads: any.
 */
#ifndef ATRIUM_CORE_API_AUDIT_H
#define ATRIUM_CORE_API_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "audit_query.h"

/* Fill *f from r->query (only r->query is read). 0, or ATR_EINVAL with
 * *validations a new array of {"field", "detail"}: the field is the plain
 * parameter's name, or "q" for a bad search term (the detail names its
 * key). */
int atr_audit_filter_parse(const atr_api_req_t *r, atr_audit_filter_t *f,
                           json_t **validations);

/* GET /api/v2/audit. */
int atr_api_audit_list(atr_api_req_t *r);

#endif
