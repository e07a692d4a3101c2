/* core/cli/cli_users.h — the commands about who you are and who may sign
 * in, over a running server's API: login, logout, whoami, users …,
 * tokens …. Each returns the process
 * exit status: 0 done, 1 the server (or the network) refused, 2 the
 * arguments were wrong.
 * Threads: main thread only (a password prompt changes the terminal and
 * signal handlers for its duration). */
#ifndef ATRIUM_CORE_CLI_USERS_H
#define ATRIUM_CORE_CLI_USERS_H

/* Run `atrium name argv...` (name: login, logout, whoami, users or
 * tokens); argv is what follows name. */
int atr_cli_users(const char *name, int argc, char **argv);

#endif
