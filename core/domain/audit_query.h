/* core/domain/audit_query.h — reading the audit log: the entries that
 * match a filter, newest first, a page at a time, with how many match in
 * all.
 *
 * A filter's strings compare exactly (action, resource_type) or
 * case-insensitively (username: the actor's). resource_id is a UUID, or
 * another id (an API key's) that audit.c kept in additional_fields. since
 * and until bound the entry's time inclusively. Reading the log needs
 * read on audit_log (owners and auditors); it is not itself recorded.
 * Parsing a filter out of a request is the API's (api_audit.h).
 *
 * Threads: any; each call opens its own connection.
 */
#ifndef ATRIUM_CORE_AUDIT_QUERY_H
#define ATRIUM_CORE_AUDIT_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "actor.h"
#include "domain.h"
#include "fault.h"

#define ATR_AUDIT_MAX_LIMIT 1000

/* Empty strings and false flags mean "any". */
typedef struct atr_audit_filter {
  char action[65];
  char resource_type[65];
  char resource_id[65];
  char username[65];
  int status_code;
  bool has_since, has_until;
  int64_t since_us, until_us; /* inclusive */
  int64_t limit;              /* 0..1000 (more is cut); 0: the count only */
  int64_t offset;
} atr_audit_filter_t;

/* *out is a new {"audit_logs": [...], "count": n} where n counts every
 * matching entry, ignoring limit and offset. Each entry: {"id", "time",
 * "user": {"id", "username"} or null, "organization_id", "ip",
 * "user_agent", "resource_type", "resource_id", "resource_target",
 * "action", "diff", "status_code", "additional_fields", "request_id"}. */
int atr_audit_list(const atr_domain_t *dom, const atr_actor_t *actor,
                   const atr_audit_filter_t *f, json_t **out,
                   atr_fault_t *fault);

#endif
