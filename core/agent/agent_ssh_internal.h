/* core/agent/agent_ssh_internal.h — what agent_ssh.c (the server and its
 * connection threads), agent_ssh_conn.c (one connection: messages and
 * channels) and agent_ssh_spawn.c (sessions' processes) share.
 *
 * Threads: agent_ssh_t's fields are set by agent_ssh_new and read-only
 * afterwards, except those `conns_lock` guards. Everything in an
 * ssh_conn_t belongs to its connection's thread.
 */
#ifndef ATRIUM_AGENT_SSH_INTERNAL_H
#define ATRIUM_AGENT_SSH_INTERNAL_H

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/types.h>

#include "agent_ssh.h"

#define SSH_MAX_CHANNELS 32      /* open channels per connection */
#define SSH_MAX_ENV 64           /* env requests kept per channel */
#define SSH_MAX_CONNECTIONS 256  /* served at once */
#define SSH_MAX_ORPHANS 32       /* hung-up children waited for */
#define SSH_CHUNK 32768          /* one read from a child or a socket */
#define SSH_HANGUP_GRACE_MS 2000 /* SIGHUP, then SIGKILL */
#define SSH_AUTH_TIMEOUT_S 30    /* key exchange and authentication */

typedef struct ssh_conn ssh_conn_t;

/* An fd in the connection's ssh_event: what is asked of poll, what poll
 * said (the callback only records it; the loop acts on it). */
typedef struct ssh_watch {
  int fd;
  short events; /* registered, when on */
  bool on;
  short rev;
} ssh_watch_t;

struct agent_ssh {
  ssh_bind bind;     /* holds the host key; used by agent_ssh_serve only */
  char *directory;   /* NULL: $HOME */
  char **env;        /* NAME=value, NULL-ended, never NULL */
  char *shell;       /* NULL: the login shell */
  char *sftp_server; /* NULL: none found, the subsystem is refused */
  bool sftp_nss;     /* it is a bundle's, with lib/libnss_wrapper.so */
  pthread_mutex_t conns_lock; /* guards conns, nconns */
  ssh_conn_t *conns;
  int nconns; /* connections whose thread has not ended */
  atomic_bool stopping;
};

/* One connection: its thread, its session. */
struct ssh_conn {
  agent_ssh_t *s;
  ssh_conn_t *next; /* conns_lock */
  pthread_t thread;
  int wake_fd; /* a dup of the socket, for shutdown(); conns_lock */
  bool done;   /* the thread ended; conns_lock */
  ssh_session session;
  ssh_event event;
  bool authed;
  struct ssh_server_callbacks_struct server_cb;
  bool closing; /* finish() runs: no new channels */
  struct ssh_chan *chans[SSH_MAX_CHANNELS];
  int64_t auth_deadline; /* ms, monotonic */
  /* Children hung up (their channel or connection ended) but not yet
   * waited for: SIGKILL at kill_at. */
  struct ssh_orphan {
    pid_t pid;
    int pidfd;
    ssh_watch_t w;
    int64_t kill_at; /* ms, monotonic */
  } orphans[SSH_MAX_ORPHANS];
  int norphans;
};

/* What a session's process runs. */
typedef struct ssh_spawn {
  const char *command; /* exec: via `shell -c`; NULL: the login shell */
  const char *program; /* a program to run as is (sftp-server) */
  const char *const *client_env; /* NAME=value the client sent */
  const char *term;              /* the pty's TERM, or NULL */
  int pty_slave;                 /* -1: pipes */
  const char *tty_name;          /* SSH_TTY */
} ssh_spawn_t;

/* The child's ends, set by ssh_spawn_start. With a pty all are -1 (the
 * master is the channel's). */
typedef struct ssh_child {
  pid_t pid;
  int pidfd; /* -1 when the kernel has no pidfd_open */
  int in, out, err;
} ssh_child_t;

/* agent_ssh_key.c: the host key from the manifest's PEM text (NULL: an
 * ephemeral ed25519 key, with a warning); NULL and *err when unusable. */
ssh_key ssh_host_key_load(const char *pem, char **err);

/* agent_ssh_spawn.c */
int ssh_spawn_start(const agent_ssh_t *s, const ssh_spawn_t *sp,
                    ssh_child_t *child);
/* Done with pid (waited for): agent_ssh_own_pid forgets it. */
void ssh_spawn_forget(pid_t pid);
int64_t ssh_now_ms(void);

/* agent_ssh_conn.c: serves c->session until it ends; frees nothing of c. */
void ssh_conn_run(ssh_conn_t *c);
/* Waits for pid (hung up) on c's thread; takes pidfd. */
void ssh_conn_orphan(ssh_conn_t *c, pid_t pid, int pidfd);
/* Asks poll for want on fd (0 or fd -1: nothing; the fd leaves the poll). */
void ssh_watch_set(ssh_conn_t *c, ssh_watch_t *w, int fd, short want);

/* agent_ssh_chan.c: a channel. */
typedef struct ssh_chan ssh_chan_t;
ssh_chan_t *ssh_chan_new(ssh_conn_t *conn, ssh_channel ch, bool tcp);
ssh_channel ssh_chan_channel(const ssh_chan_t *c);
/* direct-tcpip: a connected socket to host:port, or -1 (refused, not a
 * loopback host, nothing listening). */
int ssh_chan_dial(const char *host, int port);
bool ssh_chan_host_allowed(const char *host);
void ssh_chan_set_socket(ssh_chan_t *c, int fd);
/* Before the poll: its fds' events; its longest sleep (-1: forever). */
void ssh_chan_watch(ssh_chan_t *c);
int ssh_chan_timeout(const ssh_chan_t *c, int64_t now);
/* After the poll: moves bytes; true when the channel is over. */
bool ssh_chan_io(ssh_chan_t *c);
void ssh_chan_free(ssh_chan_t *c);

#endif
