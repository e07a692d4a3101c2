/* core/domain/agents.h — workspace agents: their tokens, what they report
 * (lifecycle, startup logs, metadata, stats, app health, listening ports)
 * and what users read about them. docs/agent.md says what an agent is;
 * docs/design/agent.md §2–3 the rules these functions keep.
 *
 * Two kinds of caller:
 * - the agent itself, as an agent actor (atr_agent_authenticate turns its
 *   token into one). Agent functions accept only an agent actor, and only
 *   for its own agent; every write carries `revoked_at IS NULL`, so a token
 *   revoked a moment ago is refused with ATR_EACCES (answered 401) even if
 *   no event reached the caller's session;
 * - users reading an agent (atr_agent_get, _logs, _ports): they need read
 *   permission on the workspace, as for its builds.
 * Every other domain function refuses an agent actor (it has no roles and
 * atr_actor_is_user() is false for it).
 *
 * Tokens: "atragt_" + 43 base64url characters (32 random bytes), one per
 * start build, made by the job runner when it claims the build, stored
 * only as atr_dbcrypt_token_digest(). Revoked when a later build of the
 * workspace starts applying, and when the workspace is deleted.
 *
 * Threads: any; each call opens its own connection. Memory: *out is a new
 * reference for the caller; inputs are borrowed for the call.
 */
#ifndef ATRIUM_CORE_AGENTS_H
#define ATRIUM_CORE_AGENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "domain.h"

#define ATR_AGENT_TOKEN_PREFIX "atragt_"
#define ATR_AGENT_TOKEN_LEN 50 /* prefix + 43 */

/* Coder's lifecycle states, in the order an agent moves through them. */
typedef enum atr_agent_lifecycle {
  ATR_LIFECYCLE_CREATED = 0,
  ATR_LIFECYCLE_STARTING,
  ATR_LIFECYCLE_START_TIMEOUT,
  ATR_LIFECYCLE_START_ERROR,
  ATR_LIFECYCLE_READY,
  ATR_LIFECYCLE_SHUTTING_DOWN,
  ATR_LIFECYCLE_SHUTDOWN_TIMEOUT,
  ATR_LIFECYCLE_SHUTDOWN_ERROR,
  ATR_LIFECYCLE_OFF,
} atr_agent_lifecycle_t;

/* "created", ... "off"; NULL for a value out of range. */
const char *atr_agent_lifecycle_name(atr_agent_lifecycle_t s);
/* The state named name; -1 when there is none. */
int atr_agent_lifecycle_parse(const char *name);

/* ---- tokens ----------------------------------------------------------- */

/* A new random token (ATR_AGENT_TOKEN_LEN characters and a NUL). */
void atr_agent_token_new(char out[ATR_AGENT_TOKEN_LEN + 1]);

/* The agent whose live token this is, as an agent actor: 0; ATR_EACCES
 * (fault 401 "Agent token is not valid.") for a token of no agent, of a
 * revoked agent or of a deleted workspace; another ATR_E… (internal). */
int atr_agent_authenticate(const atr_domain_t *dom, const char *token,
                           atr_actor_t *actor, atr_fault_t *fault);

/* ---- the job runner's side (core/jobs), inside its own transactions ---- */

/* Make the agent rows of a start build that succeeded: the agent (on the
 * resource that hosts it), its scripts, log sources, metadata items and
 * apps, from the version's agent_spec; token_digest is
 * atr_dbcrypt_token_digest of the token the provisioner got. Then revoke
 * every other agent of the workspace. Runs in the caller's transaction. */
int atr_agents_make_for_build(atr_db_t *db, const char *workspace_id,
                              const char *build_id, const char *resource_id,
                              const char *agent_spec_json,
                              const char *token_digest, char **err);
/* Revoke every live agent token of the workspace (a stop or delete build
 * began applying, the workspace was deleted); except_build_id may be NULL.
 * Runs in the caller's transaction. */
int atr_agents_revoke(atr_db_t *db, const char *workspace_id,
                      const char *except_build_id, char **err);

/* Ask the workspace's live agent to shut down (a stop or delete build was
 * queued): sets shutdown_requested_at; the agent learns it from
 * atr_agent_manifest / its events. Its own connection. */
int atr_agents_request_shutdown(const atr_domain_t *dom,
                                const char *workspace_id, char **err);

/* After the transaction that revoked a workspace's agents (revoked_at >=
 * since_us) committed: tell the servers holding their sessions
 * (atr_events_agent "revoked"), so they close them at once. */
int atr_agents_announce_revoked(const atr_domain_t *dom, atr_db_t *db,
                                const char *workspace_id, int64_t since_us,
                                char **err);

/* A server that holds every agent session of the deployment (SQLite: one
 * server by construction) starts: no agent is connected yet, so every one
 * that looks connected is marked disconnected now. */
int atr_agents_server_started(const atr_domain_t *dom, char **err);

/* Whether the workspace's live agent has finished shutting down (off,
 * shutdown_error, shutdown_timeout), is not connected, or there is none:
 * the stop build waits for this, bounded by the shutdown script timeout. */
int atr_agents_shutdown_done(const atr_domain_t *dom, const char *workspace_id,
                             bool *done, int64_t *wait_ms, char **err);

/* ---- the agent's calls (agent actor only) ------------------------------ */

/* Coder's Manifest fields (docs/design/agent.md §2.2), with
 * "shutdown_requested": true once a stop was asked for, and
 * "ssh_host_key": the workspace's SSH host key in OpenSSH's format
 * (connect.h; made on the first manifest, the same for the workspace's
 * life). */
int atr_agent_manifest(const atr_domain_t *dom, const atr_actor_t *actor,
                       json_t **out, atr_fault_t *fault);
/* {version, expanded_directory, subsystems}: the agent started. */
int atr_agent_startup_report(const atr_domain_t *dom, const atr_actor_t *actor,
                             const json_t *body, atr_fault_t *fault);
/* Connected / disconnected (the transport calls these; audit entries
 * connect / disconnect). ip may be NULL; reason: "closed", "timeout", ... */
int atr_agent_connected(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *version, atr_fault_t *fault);
int atr_agent_disconnected(const atr_domain_t *dom, const atr_actor_t *actor,
                           const char *reason, atr_fault_t *fault);
/* The session is still up (the holding server calls this every 60 s, so
 * an agent whose server died turns disconnected within 3 minutes). */
int atr_agent_heartbeat(const atr_domain_t *dom, const atr_actor_t *actor,
                        atr_fault_t *fault);
/* A new lifecycle state at changed_at_us (0: now). The same state again is
 * a no-op; a state before the current one is ATR_ECONSTRAINT (409), except
 * starting: a restarted agent begins again from any state. */
int atr_agent_lifecycle_report(const atr_domain_t *dom,
                               const atr_actor_t *actor,
                               atr_agent_lifecycle_t state,
                               int64_t changed_at_us, atr_fault_t *fault);
/* The same, with the startup script's exit code (0..255, or -1: none),
 * stored with start_error only (the agent's startup_script_exit_code). */
int atr_agent_lifecycle_report_code(const atr_domain_t *dom,
                                    const atr_actor_t *actor,
                                    atr_agent_lifecycle_t state,
                                    int64_t changed_at_us, int exit_code,
                                    atr_fault_t *fault);

typedef struct atr_agent_log_line {
  int64_t seq; /* the agent's number within the source, from 1 */
  int64_t created_at_us;
  const char *level; /* trace debug info warn error */
  const char *output;
} atr_agent_log_line_t;

/* Store a batch of one source's lines, each once (a line whose seq is
 * stored is skipped), masking sensitive parameter values; past 1 MiB per
 * agent store no more and set logs_overflowed. *acked_seq: the highest
 * seq now stored for the source. */
int atr_agent_logs_append(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *source_id,
                          const atr_agent_log_line_t *lines, size_t n,
                          int64_t *acked_seq, atr_fault_t *fault);
/* {"sources": [{"log_source_id", "last_seq"}]}. */
int atr_agent_logs_state(const atr_domain_t *dom, const atr_actor_t *actor,
                         json_t **out, atr_fault_t *fault);
/* {"metadata": [{key, collected_at, age, value, error}]}. */
int atr_agent_metadata_report(const atr_domain_t *dom, const atr_actor_t *actor,
                              const json_t *body, atr_fault_t *fault);
/* Coder's Stats object; *interval_ms: when to report next. */
int atr_agent_stats_report(const atr_domain_t *dom, const atr_actor_t *actor,
                           const json_t *body, int64_t *interval_ms,
                           atr_fault_t *fault);
/* {"healths": {"<app id>": "initializing"|"healthy"|"unhealthy"}}. */
int atr_agent_app_health_report(const atr_domain_t *dom,
                                const atr_actor_t *actor, const json_t *body,
                                atr_fault_t *fault);
/* {"ports": [{process_name, network, port}]}. */
int atr_agent_ports_report(const atr_domain_t *dom, const atr_actor_t *actor,
                           const json_t *body, atr_fault_t *fault);

/* ---- users' reads (read permission on the workspace) ------------------- */

/* The WorkspaceAgent (Coder's fields, docs/design/agent.md §2.2). */
int atr_agent_get(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *agent_id, json_t **out, atr_fault_t *fault);
/* Log lines with id > after, at most limit (0: 1000), oldest first:
 * [{id, created_at, output, level, source_id}]. *final: the agent will
 * write no more (its lifecycle is final or it was revoked), so a follower
 * may stop once it read everything. */
int atr_agent_logs(const atr_domain_t *dom, const atr_actor_t *actor,
                   const char *agent_id, int64_t after, int64_t limit,
                   json_t **out, bool *final, atr_fault_t *fault);
/* {"ports": [...]}: what the agent last reported. */
int atr_agent_ports(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *agent_id, json_t **out, atr_fault_t *fault);
/* [{key, display_name, value, error, collected_at, interval, timeout}]. */
int atr_agent_metadata(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *agent_id, json_t **out, atr_fault_t *fault);

/* The agents of a build's resources, appended as resources[i].agents[]
 * (workspace and build JSON). Runs on the caller's connection. */
int atr_agents_add_to_resources(atr_db_t *db, json_t *resources, char **err);

/* ---- status (pure) ----------------------------------------------------- */

typedef struct atr_agent_times {
  int64_t created_at_us;
  int64_t first_connected_at_us; /* 0: never */
  int64_t last_connected_at_us;  /* 0: never */
  int64_t disconnected_at_us;    /* 0: never */
  int64_t connection_timeout_s;  /* 0: none */
} atr_agent_times_t;

/* Coder's rules: "connecting", "connected", "disconnected" or "timeout". */
const char *atr_agent_status(const atr_agent_times_t *t, int64_t now_us);

/* The statuses atr_agent_status answers, in this order. */
#define ATR_AGENT_NSTATUS 4
extern const char *const atr_agent_statuses[ATR_AGENT_NSTATUS];

/* How many live (not revoked) agents of the deployment are in each status
 * (atr_agent_statuses order) and each lifecycle state, now: the gauges'
 * sample. Its own connection. */
typedef struct atr_agents_tally {
  double by_status[ATR_AGENT_NSTATUS];
  double by_state[ATR_LIFECYCLE_OFF + 1];
} atr_agents_tally_t;
int atr_agents_tally(atr_store_t *store, atr_agents_tally_t *out, char **err);

#endif
