/* core/cli_client.h — the commands that talk to a running server over its
 * API: login, logout, whoami, users …, tokens …. Each returns the process
 * exit status: 0 done, 1 the server (or the network) refused, 2 the
 * arguments were wrong.
 * Threads: main thread only (a password prompt changes the terminal and
 * signal handlers for its duration). */
#ifndef ATRIUM_CORE_CLI_CLIENT_H
#define ATRIUM_CORE_CLI_CLIENT_H

#include <stdbool.h>

/* Whether `cmd` (argv[1]) is one of these commands. */
bool atr_cli_client_handles(const char *cmd);
/* Run `atrium cmd argv...`; argv is what follows cmd. */
int atr_cli_client(const char *cmd, int argc, char **argv);

#endif
