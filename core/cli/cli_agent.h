/* core/cli/cli_agent.h — `atrium agent`: the workspace agent run from the
 * main binary (core/agent, docs/agent.md); the same code as the bundle's
 * `atrium-agent agent`.
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_AGENT_H
#define ATRIUM_CORE_CLI_AGENT_H

/* An atr_cli_run_fn: argv is what follows "agent". */
int atr_cli_agent(const char *name, int argc, char **argv);

#endif
