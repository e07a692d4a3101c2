/* core/agent/agent_ssh.h — the agent's SSH server (libssh), whose clients
 * arrive through tunnels (docs/design/connect.md §4).
 *
 * The tunnel authenticated and authorized the user, so the SSH layer asks
 * for no key ("none" and any public key are accepted). Per connection:
 * pty-req, window-change, shell, exec (with exit-status), env (LANG, LC_*,
 * TERM), the sftp subsystem (OpenSSH's sftp-server: from the bundle, else
 * the PATH), direct-tcpip to the workspace's loopback.
 *
 * Threads: agent_ssh_new/serve/free from one thread (the agent's loop);
 * each connection runs on a thread of its own, because libssh's server
 * API blocks. Ownership: serve takes the fd. The process ignores SIGPIPE
 * (the agent does), and a child reaper must skip agent_ssh_own_pid's
 * pids: each connection waits for its own children, for their exit
 * statuses. docs/agent.md, "The SSH server", says what is accepted.
 */
#ifndef ATRIUM_AGENT_SSH_H
#define ATRIUM_AGENT_SSH_H

#include <stdbool.h>

typedef struct agent_ssh agent_ssh_t;

typedef struct agent_ssh_config {
  /* The workspace's host key (the manifest's "ssh_host_key", an OpenSSH
   * or PEM private key); NULL: an ephemeral ed25519 key, with a warning. */
  const char *host_key;
  const char *directory;   /* where sessions start; NULL: $HOME */
  const char *const *env;  /* NAME=value for every session; NULL-ended */
  const char *shell;       /* NULL: the user's login shell, else /bin/sh */
  const char *sftp_server; /* NULL: <bundle>/libexec/sftp-server, the PATH */
} agent_ssh_config_t;

/* NULL and *err (caller frees) when the host key is not usable. */
agent_ssh_t *agent_ssh_new(const agent_ssh_config_t *cfg, char **err);
/* Serve one SSH connection on fd (a connected stream socket, taken) on a
 * thread of its own; returns at once. 0, or -1 (fd closed). */
int agent_ssh_serve(agent_ssh_t *s, int fd);
/* Connections being served (the stats' session count). */
int agent_ssh_connections(agent_ssh_t *s);
/* Ends every connection, waits for their threads, frees. Blocks until
 * the sessions' processes are gone: SIGHUP, SIGKILL 2 s later. */
void agent_ssh_free(agent_ssh_t *s);
/* Whether pid is a session's process, which the SSH server waits for
 * itself: the --init reaper must leave it alone. Any thread. */
bool agent_ssh_own_pid(int pid);

#endif
