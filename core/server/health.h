/* core/health.h — the deployment's health checks, for GET
 * /api/v2/debug/health and the support bundle.
 *
 * Each check answers {"name", "status", "message", ...details} with a
 * status of healthy, degraded or unhealthy; the report's status is the
 * worst of them. The checks, in order:
 *
 *   database             a SELECT 1 round trip (the median of three, after
 *                        borrowing a connection): healthy under 10 ms (the
 *                        Coder Validated Architecture's figure), degraded
 *                        at or over it, unhealthy when it fails
 *   database_integrity   the last integrity check (integrity.h): damage
 *                        is unhealthy, not yet run degraded
 *   provisioner_daemons  daemons of the deployment (every replica) whose
 *                        last_seen_at is within the last minute; see
 *                        atr_health_checks for the rule
 *   plugin:<name>        one per running plugin, from its health callback
 *                        (atr_plugin_t.health); "running" without one
 *   access_url           GET <access_url>/healthz answers 200 within 2 s
 *
 * Every check copes with the database being down: it reports, it does not
 * fail the report.
 *
 * Threads: any (HTTP worker threads); each check opens its own connection
 * or libcurl handle. curl_global_init must have run (the server does it).
 */
#ifndef ATRIUM_CORE_HEALTH_H
#define ATRIUM_CORE_HEALTH_H

#include <jansson.h>
#include <stdint.h>

#include "db.h"
#include "loader.h"

/* The database round trip the Coder Validated Architecture asks for. */
#define ATR_HEALTH_DB_THRESHOLD_MS 10.0
/* A daemon counts as alive when seen within this window. */
#define ATR_HEALTH_DAEMON_WINDOW_S 60
/* How long the access URL may take to answer. */
#define ATR_HEALTH_ACCESS_TIMEOUT_MS 2000

typedef struct atr_health_config {
  atr_store_t *store;
  const atr_loader_t *loader;
  const char *access_url;  /* with its scheme, no trailing slash */
  int64_t builtin_daemons; /* this server's provisioner.daemons */
} atr_health_config_t;

/* Run every check: a new JSON array of checks, and *worst the worst
 * status among them (ATR_HEALTH_*).
 *
 * provisioner_daemons is healthy when at least one daemon was seen within
 * the window; otherwise unhealthy when this server should be running
 * daemons (provisioner.daemons > 0 and a provisioner plugin running: its
 * daemons are not registering or heartbeating), and degraded when it runs
 * none by configuration (provisioner.daemons 0, or no provisioner plugin):
 * nothing in the deployment can run jobs, yet nothing here is broken.
 * External daemons (`atrium provisioner start`) are not supported yet;
 * once they are, their heartbeats count the same way. */
json_t *atr_health_checks(const atr_health_config_t *cfg, int *worst);

/* "healthy", "degraded", "unhealthy". */
const char *atr_health_status_name(int status);

#endif
