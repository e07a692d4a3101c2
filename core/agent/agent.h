/* core/agent/agent.h — the workspace agent, as a command: `atrium-agent
 * agent ...` (the bundle's own executable) and `atrium agent ...` (the
 * main binary) both call agent_command. docs/agent.md describes what it
 * does; the modules beside this header do it, on one libuv loop and one
 * thread.
 *
 * Threads: the calling thread runs the loop until the agent exits.
 */
#ifndef ATRIUM_AGENT_H
#define ATRIUM_AGENT_H

/* argv[0] is "agent" (or "version"); the process exit status. prog names
 * the executable in messages ("atrium" or "atrium-agent"). */
int agent_command(const char *prog, int argc, char **argv);

#endif
