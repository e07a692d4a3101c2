/* core/domain/domain.h — what every domain function works on.
 *
 * The domain layer holds atrium's rules: users, organizations, API keys,
 * templates, workspaces, builds, files and the audit log. Each function
 * takes the deployment (atr_domain_t: the store and the services around
 * it), the actor who acts (actor.h) and plain values; it checks the
 * actor's permission with the one permission table (rbac.h), does the
 * work, records the audit entry, and explains a refusal in an atr_fault_t
 * (fault.h). The API, the provisioner daemons, the scheduler and the agent
 * routes all call the same functions; none of them needs an HTTP request.
 *
 * Threads: an atr_domain_t is set up once and read-only afterwards; domain
 * functions may be called from any thread, each opening its own database
 * connection.
 */
#ifndef ATRIUM_CORE_DOMAIN_H
#define ATRIUM_CORE_DOMAIN_H

#include <stdbool.h>
#include <stdint.h>

#include "actor.h"
#include "db.h"
#include "fault.h"
#include "loader.h"

struct atr_events;

typedef struct atr_domain {
  atr_store_t *store;
  struct atr_events *events;   /* job events (events.h); NULL announces none */
  atr_loader_t *loader;        /* auth methods, provisioner types */
  int64_t session_lifetime_ms; /* sliding */
  int64_t token_max_lifetime_ms; /* longest token a user may ask for */
  uint64_t file_max_size;        /* an uploaded archive */
  uint64_t file_max_unpacked;    /* what an archive may unpack to */
  int64_t file_max_entries;
} atr_domain_t;

/* A connection for a domain call: 0, or the ATR_E… with the fault set as
 * an internal error (the caller answers it; the detail is only logged). */
int atr_domain_open(const atr_domain_t *dom, atr_db_t *db, atr_fault_t *fault);

#endif
