/* core/cli/cli_agents.h — workspace agents as the workspace commands show
 * them: a line per agent in `atrium show` ("agent main: connected, ready
 * in 4.2s (v0.9.0)") with the last lines of its startup log, the agent's
 * part of `atrium list`'s STATUS ("running (agent starting)"), and
 * `atrium logs NAME --agent [-f]`. Agents are read from the build's
 * resources[].agents[] (Coder's WorkspaceAgent) and their logs from
 * GET /api/v2/workspaceagents/{id}/logs.
 *
 * The formatting functions are pure (the golden tests call them with
 * saved answers); the rest print to stdout.
 *
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_AGENTS_H
#define ATRIUM_CORE_CLI_AGENTS_H

#include <jansson.h>
#include <stddef.h>

#include "cli_args.h"

/* Startup-log lines `atrium show` prints per agent without --log-lines. */
#define ATR__CLI_AGENT_LOG_LINES 20

/* "agent main: connected, ready in 4.2s (v0.9.0)" into buf. */
const char *atr__cli_agent_line(const json_t *agent, char *buf, size_t size);
/* What keeps the build's agents from being usable, as list's STATUS
 * shows it after the build's status: "agent starting", "agent
 * start_error", "agent disconnected" (the first agent that is not
 * connected and ready); NULL when every agent is (or there is none). */
const char *atr__cli_agent_problem(const json_t *build, char *buf, size_t size);
/* "running (agent starting)" or just status, into buf. */
const char *atr__cli_build_status_text(const char *status, const json_t *build,
                                       char *buf, size_t size);

/* --log-lines N (0 to 10000; ATR__CLI_AGENT_LOG_LINES when not given);
 * -1 after printing the usage error. */
long atr__cli_agent_log_lines(const atr__cli_t *cli);
/* `atrium show`: each agent's line and its last n lines of startup log.
 * 0 or 1. */
int atr__cli_print_agents(atr__cli_t *cli, const json_t *build, long n);
/* `atrium logs NAME --agent [-f]`: the startup logs of the build's
 * (first) agent; -f follows them until the agent writes no more. */
int atr__cli_agent_logs(atr__cli_t *cli, const json_t *build);

#endif
