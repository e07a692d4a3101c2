/* core/agent/agent_pty.h — reconnecting PTYs for the web terminal
 * (docs/design/connect.md §3): a shell that outlives the connection that
 * made it, keyed by a reconnect id, with its scrollback.
 *
 * A connection (a tunnel's socket) reads a stream of JSON objects,
 * {"data":"…","width":W,"height":H} (Coder's ReconnectingPTYRequest; any
 * field may be left out, objects may be split or joined anyhow), and
 * writes the terminal's output. Attaching to a live id first replays its
 * scrollback (the last 64 KiB) and detaches any older connection. A PTY
 * with no connection for 5 minutes, or whose shell exited, is ended.
 *
 * Threads: the loop's thread only. Ownership: attach takes the fd.
 */
#ifndef ATRIUM_AGENT_PTY_H
#define ATRIUM_AGENT_PTY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

typedef struct agent_pty agent_pty_t;

typedef struct agent_pty_config {
  const char *directory;  /* NULL: $HOME */
  const char *const *env; /* NAME=value; NULL-ended */
  const char *shell;      /* NULL: the user's login shell, else /bin/sh */
  int64_t idle_ms;        /* 0: 5 minutes */
} agent_pty_config_t;

agent_pty_t *agent_pty_new(uv_loop_t *loop, const agent_pty_config_t *cfg);
/* Attach fd (a connected stream socket, taken) to the PTY `reconnect` (a
 * UUID), made width × height running command (NULL: the shell) when new.
 * 0, or -1 (fd closed). */
int agent_pty_attach(agent_pty_t *p, int fd, const char *reconnect, int width,
                     int height, const char *command);
/* Live PTYs. */
int agent_pty_count(agent_pty_t *p);
/* Whether pid is the shell of a PTY not reaped yet (any instance), so
 * --init's reaper (agent_init.c) leaves it to agent_pty's SIGCHLD watch. */
bool agent_pty_own_pid(int pid);
/* Ends every PTY; done(ud) runs once their handles closed. */
void agent_pty_free(agent_pty_t *p, void (*done)(void *), void *ud);

#endif
