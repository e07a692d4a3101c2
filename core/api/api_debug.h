/* core/api_debug.h — the owners' debug routes, which the support bundle
 * (`atrium support bundle`) is made of:
 *
 *   GET /api/v2/debug/health    the health report (health.h); 200 whatever
 *                               the checks say, the database's included
 *   GET /api/v2/debug/config    the effective configuration, secrets
 *                               redacted, with where each value came from
 *   GET /api/v2/debug/plugins   every plugin: name, kind, version, state,
 *                               file, error
 *   GET /api/v2/debug/logs      the server's recent log lines (?limit=N
 *                               newest, ?offset=M skips the M newest)
 *   GET /api/v2/debug/metrics   a JSON snapshot of every metric
 *
 * None of them needs the database beyond what a check measures, so they
 * are the routes that authenticate from the owner key cache while the
 * database is down (auth_when_db_down in api_routes.c).
 *
 * Threads: HTTP worker threads, several at once.
 */
#ifndef ATRIUM_CORE_API_DEBUG_H
#define ATRIUM_CORE_API_DEBUG_H

#include "api.h"

int atr_api_debug_health(atr_api_req_t *r);
int atr_api_debug_config(atr_api_req_t *r);
int atr_api_debug_plugins(atr_api_req_t *r);
int atr_api_debug_logs(atr_api_req_t *r);
int atr_api_debug_metrics(atr_api_req_t *r);

#endif
