/* core/api/api_agent_me.h — what a workspace agent calls: the routes under
 * /api/v2/workspaceagents/me/ (Coder's names and bodies,
 * docs/design/agent.md §2.2; docs/api.md lists them), how an agent is
 * admitted to them, and the agent metrics the API records.
 *
 * Who the agent is comes from its token (header Atrium-Session-Token or
 * Authorization: Bearer, checked with atr_agent_authenticate), or, for a
 * request inside the agent's session (GET /me/rpc upgraded it), from the
 * session itself, which carries no token: the identity it got at the
 * upgrade. A token revoked since is still refused, by the domain's
 * `revoked_at IS NULL` writes. Either way a refusal is 401. The router
 * (api.c) admits agents only on ATR_AUTHZ_AGENT routes and refuses agent
 * credentials (a token with the agent prefix, a session) on every other
 * route with 401, so no handler checks who called it.
 *
 * Threads: handlers run on the agents lane's worker threads; a session's
 * closed() on one of them too. The metric functions may be called from
 * any thread and do nothing before atr_api_agent_metrics_init().
 */
#ifndef ATRIUM_CORE_API_AGENT_ME_H
#define ATRIUM_CORE_API_AGENT_ME_H

#include <stddef.h>

#include "api.h"

/* The version of the agent API this server speaks (?version= of /me/rpc;
 * another major is refused). */
#define ATR_API_AGENT_VERSION "1.0"

/* ---- the router's side (api.c) ------------------------------------------ */

/* Admit an agent to an agent route: its actor into r->actor and who
 * ("agent:<id>") for the access log. 0 to go on; otherwise answered
 * (401 for a missing, unknown or revoked token). */
int atr__api_agent_admit(atr_api_req_t *r, char *who, size_t who_size);
/* On a user route: whether the request carries agent credentials (a
 * session, or a token with the agent prefix); then it was answered 401. */
bool atr__api_agent_refused(atr_api_req_t *r);

/* ---- the routes ---------------------------------------------------------- */

int atr_api_agent_rpc(atr_api_req_t *r);
int atr_api_agent_manifest(atr_api_req_t *r);
int atr_api_agent_startup(atr_api_req_t *r);
int atr_api_agent_lifecycle(atr_api_req_t *r);
int atr_api_agent_logs_patch(atr_api_req_t *r);
int atr_api_agent_logs_state(atr_api_req_t *r);
int atr_api_agent_metadata_post(atr_api_req_t *r);
int atr_api_agent_stats(atr_api_req_t *r);
int atr_api_agent_app_health(atr_api_req_t *r);
int atr_api_agent_ports_post(atr_api_req_t *r);
/* GET /me/events outside a session: 400 (the transport keeps it inside). */
int atr_api_agent_events(atr_api_req_t *r);

/* Refresh the rows of the agents whose sessions this server holds
 * (atr_agent_heartbeat), so an agent whose server died turns
 * disconnected: the server calls it every minute, off its loop. How many
 * were refreshed. */
int atr_api_agent_heartbeats(const atr_api_env_t *env);
/* Once the HTTP server stopped: record the disconnects of the sessions
 * its drain closed, for at most budget_ms (the rest turn disconnected
 * when no heartbeat refreshes them). How many were recorded. */
int atr_api_agent_record_drained(int64_t budget_ms);
/* The server begins to stop (before its drain): every session that ends
 * from now on is kept for atr_api_agent_record_drained. */
void atr_api_agent_sessions_stopping(void);

/* ---- metrics (api_agent_metrics.c) --------------------------------------- */

/* Register atrium_agents{status}, atrium_agent_lifecycle{state},
 * atrium_agent_sessions, atrium_agent_startup_seconds{result} and
 * atrium_agent_connection_errors_total{reason} (the server, once). */
void atr_api_agent_metrics_init(void);
void atr_api_agent_metrics_fini(void);
/* Sessions open on this server now. */
void atr_api_agent_sessions_set(int64_t n);
/* A session refused or lost: unauthorized, handshake, version, protocol,
 * timeout, too_slow or replaced (other reasons are not errors). */
void atr_api_agent_connection_error(const char *reason);
/* Sample atrium_agents{status} and atrium_agent_lifecycle{state} from
 * the agents with a live token (a thread that may block on the
 * database). */
void atr_api_agents_sample(atr_store_t *store);
/* An agent finished starting: result ready, start_error or start_timeout;
 * seconds from its start. */
void atr_api_agent_startup_observed(const char *result, double seconds);

#endif
