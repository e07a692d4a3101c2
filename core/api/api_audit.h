/* core/api_audit.h — GET /api/v2/audit: reading the audit log.
 *
 * The handler splits in two so each half can be used alone: a filter is
 * parsed from the request's query (Coder's `q` search string and plain
 * parameters), then atr_audit_query() runs it against the store and
 * builds the answer's JSON. Only the handler touches HTTP.
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
 * Threads: any; atr_audit_query opens its own connection.
 */
#ifndef ATRIUM_CORE_API_AUDIT_H
#define ATRIUM_CORE_API_AUDIT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api.h"
#include "db.h"

/* Empty strings and false flags mean "any". */
typedef struct atr_audit_filter {
  char action[65];
  char resource_type[65];
  char resource_id[65];
  char username[65];
  int status_code;
  bool has_since, has_until;
  int64_t since_us, until_us; /* inclusive */
  int64_t limit;              /* 0..1000; 0 gives the count only */
  int64_t offset;
} atr_audit_filter_t;

/* Fill *f from r->query (only r->query is read). 0, or ATR_EINVAL with
 * *validations a new array of {"field", "detail"}: the field is the plain
 * parameter's name, or "q" for a bad search term (the detail names its
 * key). */
int atr_audit_filter_parse(const atr_api_req_t *r, atr_audit_filter_t *f,
                           json_t **validations);

/* Run a filter: *out is a new {"audit_logs": [...], "count": n} where n
 * counts every matching entry, ignoring limit and offset. Errors are the
 * storage layer's, with *err malloc'd. */
int atr_audit_query(atr_store_t *store, const atr_audit_filter_t *f,
                    json_t **out, char **err);

/* GET /api/v2/audit. */
int atr_api_audit_list(atr_api_req_t *r);

#endif
