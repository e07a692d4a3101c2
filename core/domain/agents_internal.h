/* core/domain/agents_internal.h — what the agents*.c files share: the
 * guard every agent call starts with, the write that proves the token is
 * still live, bounded text, and the WorkspaceAgent JSON. Not for callers
 * outside core/domain/agents*.c, but for connect.c, which reads the
 * agent before a tunnel is let open.
 *
 * Threads: pure helpers over the connection they are given.
 */
#ifndef ATRIUM_CORE_AGENTS_INTERNAL_H
#define ATRIUM_CORE_AGENTS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agents.h"

#define ATR__AGENT_BAD_TOKEN "Agent token is not valid."
/* A metadata value or error, a port's process name: longer is cut. */
#define ATR__AGENT_VALUE_MAX 2048
#define ATR__AGENT_LOGS_MAX ((int64_t)1024 * 1024)
#define ATR__AGENT_STATS_INTERVAL_MS 30000

/* 0 for an agent actor; ATR_EPERM ("Forbidden.") for anyone else. */
int atr__agent_only(const atr_actor_t *actor, atr_fault_t *fault);
/* The refusal of a token that is not (or no longer) live: ATR_EACCES. */
int atr__agent_refused(atr_fault_t *fault);
/* Touch the agent's row (updated_at) when its token is still live, which
 * also locks the row until the transaction ends: 0, ATR_EACCES when it
 * is revoked (no row changed), another ATR_E… with *err. */
int atr__agent_live(atr_db_t *db, const char *agent_id, char **err);

/* A copy of s cut to at most max bytes, never inside a UTF-8 sequence
 * (malloc'd; "" for NULL). */
char *atr__agent_cut(const char *s, size_t max);

/* The WorkspaceAgent (Coder's fields) of the agent id: ATR_ENOENT when
 * there is none. *workspace_id (may be NULL) gets its workspace. */
int atr__agent_json(atr_db_t *db, const char *agent_id, json_t **out,
                    char workspace_id[37], char **err);

/* The agent's apps (Coder's WorkspaceApp fields) appended to list. */
int atr__agent_apps(atr_db_t *db, const char *agent_id, json_t *list,
                    char **err);

#endif
