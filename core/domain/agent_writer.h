/* core/domain/agent_writer.h — the agent writer (docs/design/agent.md
 * §3.6): what agents report often (metadata every few seconds, stats every
 * 30 s) is queued and committed by one thread, many reports per
 * transaction, instead of one synchronous transaction per request.
 *
 * atr_agent_metadata_report and atr_agent_stats_report (agents.h) queue
 * their report while the writer runs, and write synchronously otherwise
 * (tests, tools). What is queued is already parsed, bounded and cut: the
 * write transaction evaluates no input. A newer report of an agent
 * replaces its queued one of the same kind (metadata: key by key); when
 * the queue is full of other agents' reports the call fails ATR_EAGAIN
 * (the API answers 503 with Retry-After). Each write still carries
 * `revoked_at IS NULL`: a revoked agent's queued report is dropped. A
 * report queued but not committed when the process dies is lost; the
 * agent's next report replaces it.
 *
 * One writer per process, used by the domain's report functions: start it
 * once the store is open, stop it before the store closes. Threads: every
 * function may be called from any thread; start/stop from one thread.
 */
#ifndef ATRIUM_CORE_AGENT_WRITER_H
#define ATRIUM_CORE_AGENT_WRITER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain.h"

typedef struct atr_agent_writer_config {
  int64_t interval_ms; /* commit at least this often; 0: 200 */
  size_t batch;        /* commit at once at this many; 0: 512 */
  size_t capacity;     /* reports queued at most; 0: 8192 */
} atr_agent_writer_config_t;

/* Start the writer thread over dom (borrowed until stop). cfg may be
 * NULL. ATR_EEXIST when one runs already. */
int atr_agent_writer_start(const atr_domain_t *dom,
                           const atr_agent_writer_config_t *cfg, char **err);
/* Commit what is queued (for at most 5 s more; the rest is dropped and
 * logged) and end the thread. Reports after this write synchronously. A
 * no-op when none runs. */
void atr_agent_writer_stop(void);
/* Wait until everything queued before the call is committed (tests):
 * 0; ATR_ETIMEDOUT after timeout_ms. 0 at once when none runs. */
int atr_agent_writer_flush(int64_t timeout_ms);

/* ---- for core/domain/agents_report.c -------------------------------- */

/* Whether the writer runs (a report may be queued). */
bool atr__agent_writer_running(void);
/* Queue the agent's stats (compact JSON text, taken over: freed here
 * whatever the outcome): 0; ATR_EAGAIN when full; ATR_ECANCELED when the
 * writer stopped meanwhile (write synchronously then). */
int atr__agent_writer_stats(const char *agent_id, char *stats, int64_t at_us);
/* Queue metadata items [{key, value, error, at}] (taken over). */
int atr__agent_writer_metadata(const char *agent_id, json_t *items);
/* The writes themselves, in the caller's transaction (the writer's and
 * the synchronous path's): 0; ATR_EACCES when the agent is revoked. */
int atr__agent_store_stats(atr_db_t *db, const char *agent_id,
                           const char *stats, int64_t at_us, char **err);
int atr__agent_store_metadata(atr_db_t *db, const char *agent_id,
                              const json_t *items, char **err);

#endif
