/* core/agent/agent_ssh_chan.c — one channel of a connection: a session
 * (pty, env, shell, exec, sftp) or a direct-tcpip socket, and the bytes
 * between it and its process or socket.
 *
 * Flow control both ways: a child's output is read only while the
 * client's window is open, and the client's data is left in libssh's
 * buffer (which then stops growing our window) until the child takes it.
 * All on the connection's thread; libssh's callbacks only record what
 * happened, and the loop (ssh_chan_io) acts, so nothing is freed under
 * libssh's feet.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_ssh_internal.h"
#include "log.h"

#define PTY_DRAIN_MS 100 /* a pty's output after its shell exited */
#define DIAL_TIMEOUT_MS 2000
#define ENV_NAME_MAX 64
#define ENV_VALUE_MAX 1024
#define TERM_MAX 63
#define WINSIZE_MAX 10000

enum { W_IO, W_IN, W_ERR, W_PID, W_N };

typedef enum { CH_SESSION, CH_TCP } chan_kind_t;

struct ssh_chan {
  ssh_conn_t *conn;
  ssh_channel ch;
  struct ssh_channel_callbacks_struct cb;
  chan_kind_t kind;
  bool started; /* shell, exec or subsystem ran (or the socket is up) */
  /* pty-req */
  int master, slave;
  char tty[64], term[TERM_MAX + 1];
  /* env requests, NAME=value */
  char *env[SSH_MAX_ENV + 1];
  int nenv;
  /* the process (sessions) */
  ssh_child_t child;
  bool exited;
  int status;
  /* the ends: a pty's master or a socket is in and out at once */
  int in_fd, out_fd, err_fd;
  ssh_watch_t w[W_N];
  char tochild[SSH_CHUNK];
  size_t toff, tlen;
  bool pending_in; /* libssh holds client data not taken yet */
  bool in_closed;  /* no more writes to the child: EOF passed, or gone */
  bool out_eof, err_eof;
  bool out_idle;   /* the last read of out_fd found nothing */
  bool force_read; /* read out_fd once more (a pty after the exit) */
  int64_t drain_until;
  bool remote_closed, broken, eof_sent;
};

/* --- watches ------------------------------------------------------------ */

static int on_fd(socket_t fd, int revents, void *ud) {
  (void)fd;
  ssh_watch_t *w = ud;
  w->rev |= (short)revents;
  return 0;
}

void ssh_watch_set(ssh_conn_t *conn, ssh_watch_t *w, int fd, short want) {
  if (w->on && (w->fd != fd || w->events != want || !want)) {
    ssh_event_remove_fd(conn->event, w->fd);
    w->on = false;
  }
  /* An fd with nothing asked is left out: poll would report its HUP
   * again and again. */
  if (!w->on && want && fd >= 0 &&
      ssh_event_add_fd(conn->event, fd, want, on_fd, w) == SSH_OK) {
    w->on = true;
    w->fd = fd;
    w->events = want;
  }
}

static void watch_off(ssh_conn_t *conn, ssh_watch_t *w) {
  ssh_watch_set(conn, w, -1, 0);
  w->rev = 0;
}

/* Closes *fd after taking it out of every watch of c. */
static void chan_close_fd(ssh_chan_t *c, int *fd) {
  if (*fd < 0)
    return;
  int old = *fd;
  for (int i = 0; i < W_N; i++)
    if (c->w[i].on && c->w[i].fd == old)
      watch_off(c->conn, &c->w[i]);
  if (c->in_fd == old)
    c->in_fd = -1;
  if (c->out_fd == old)
    c->out_fd = -1;
  if (c->err_fd == old)
    c->err_fd = -1;
  if (c->master == old)
    c->master = -1;
  if (c->child.pidfd == old)
    c->child.pidfd = -1;
  close(old);
  *fd = -1;
}

void ssh_chan_watch(ssh_chan_t *c) {
  uint32_t win = c->started ? ssh_channel_window_size(c->ch) : 0;
  bool to_child = c->tlen > 0 && !c->in_closed;
  short io = 0;
  if (c->out_fd >= 0 && !c->out_eof && win > 0)
    io |= POLLIN;
  if (c->in_fd >= 0 && c->in_fd == c->out_fd && to_child)
    io |= POLLOUT;
  ssh_watch_set(c->conn, &c->w[W_IO], c->out_fd, io);
  bool in_apart = c->in_fd >= 0 && c->in_fd != c->out_fd;
  ssh_watch_set(c->conn, &c->w[W_IN], in_apart ? c->in_fd : -1,
                in_apart && to_child ? POLLOUT : 0);
  ssh_watch_set(c->conn, &c->w[W_ERR], c->err_fd,
                c->err_fd >= 0 && !c->err_eof && win > 0 ? POLLIN : 0);
  bool running = c->child.pid > 0 && !c->exited;
  ssh_watch_set(c->conn, &c->w[W_PID], running ? c->child.pidfd : -1,
                running ? POLLIN : 0);
}

/* How long the loop may sleep for c: -1 forever. */
int ssh_chan_timeout(const ssh_chan_t *c, int64_t now) {
  if (c->force_read && !c->out_eof && ssh_channel_window_size(c->ch) > 0)
    return 0;
  if (c->child.pid > 0 && !c->exited && c->child.pidfd < 0)
    return 200; /* no pidfd: waitpid now and then */
  if (c->drain_until > 0 && !c->out_eof && c->out_idle) {
    int64_t left = c->drain_until - now;
    return left <= 0 ? 0 : (int)left;
  }
  return -1;
}

/* --- libssh's callbacks: record only ------------------------------------ */

static int on_data(ssh_session session, ssh_channel channel, void *data,
                   uint32_t len, int is_stderr, void *ud) {
  (void)session, (void)channel, (void)data;
  ssh_chan_t *c = ud;
  if (is_stderr)
    return (int)len; /* a client's stderr means nothing to a server */
  c->pending_in = true;
  return 0; /* left in libssh's buffer until the child can take it */
}

static void on_close(ssh_session session, ssh_channel channel, void *ud) {
  (void)session, (void)channel;
  ssh_chan_t *c = ud;
  c->remote_closed = true;
}

static int on_pty(ssh_session session, ssh_channel channel, const char *term,
                  int cols, int rows, int px, int py, void *ud);
static int on_window_change(ssh_session session, ssh_channel channel, int cols,
                            int rows, int px, int py, void *ud);
static int on_env(ssh_session session, ssh_channel channel, const char *name,
                  const char *value, void *ud);
static int on_shell(ssh_session session, ssh_channel channel, void *ud);
static int on_exec(ssh_session session, ssh_channel channel,
                   const char *command, void *ud);
static int on_subsystem(ssh_session session, ssh_channel channel,
                        const char *name, void *ud);

ssh_chan_t *ssh_chan_new(ssh_conn_t *conn, ssh_channel ch, bool tcp) {
  ssh_chan_t *c = calloc(1, sizeof *c);
  if (!c)
    return NULL;
  c->conn = conn;
  c->ch = ch;
  c->kind = tcp ? CH_TCP : CH_SESSION;
  c->master = c->slave = -1;
  c->in_fd = c->out_fd = c->err_fd = -1;
  c->child =
      (ssh_child_t){.pid = -1, .pidfd = -1, .in = -1, .out = -1, .err = -1};
  for (int i = 0; i < W_N; i++)
    c->w[i].fd = -1;
  c->cb = (struct ssh_channel_callbacks_struct){
      .userdata = c,
      .channel_data_function = on_data,
      .channel_close_function = on_close,
      /* Requests: 0 accepts, anything else is refused (x11, agent
       * forwarding, signals have no callback: refused too). */
      .channel_pty_request_function = on_pty,
      .channel_pty_window_change_function = on_window_change,
      .channel_env_request_function = on_env,
      .channel_shell_request_function = on_shell,
      .channel_exec_request_function = on_exec,
      .channel_subsystem_request_function = on_subsystem,
  };
  ssh_callbacks_init(&c->cb);
  ssh_set_channel_callbacks(ch, &c->cb);
  return c;
}

ssh_channel ssh_chan_channel(const ssh_chan_t *c) {
  return c->ch;
}

/* --- requests ------------------------------------------------------------ */

static int set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static bool winsize_ok(int cols, int rows, int px, int py, struct winsize *ws) {
  if (cols < 0 || rows < 0 || cols > WINSIZE_MAX || rows > WINSIZE_MAX ||
      px < 0 || py < 0 || px > 65535 || py > 65535)
    return false;
  *ws = (struct winsize){.ws_col = (unsigned short)cols,
                         .ws_row = (unsigned short)rows,
                         .ws_xpixel = (unsigned short)px,
                         .ws_ypixel = (unsigned short)py};
  return true;
}

static bool printable(const char *s, size_t max) {
  size_t n = 0;
  for (; s[n]; n++)
    if (n >= max || s[n] <= ' ' || s[n] > '~')
      return false;
  return n > 0;
}

static int on_pty(ssh_session session, ssh_channel channel, const char *term,
                  int cols, int rows, int px, int py, void *ud) {
  (void)session, (void)channel;
  ssh_chan_t *c = ud;
  struct winsize ws;
  if (c->started || c->master >= 0 || !winsize_ok(cols, rows, px, py, &ws))
    return -1;
  int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0 ||
      ptsname_r(m, c->tty, sizeof c->tty) != 0 ||
      (c->slave = open(c->tty, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) {
    atr_log(ATR_LOG_WARN, "agent", "ssh: no pty: %s", strerror(errno));
    if (m >= 0)
      close(m);
    return -1;
  }
  c->master = m;
  (void)ioctl(m, TIOCSWINSZ, &ws);
  set_nonblocking(m);
  if (term && printable(term, TERM_MAX))
    snprintf(c->term, sizeof c->term, "%s", term);
  return 0;
}

static int on_window_change(ssh_session session, ssh_channel channel, int cols,
                            int rows, int px, int py, void *ud) {
  (void)session, (void)channel;
  ssh_chan_t *c = ud;
  struct winsize ws;
  if (c->master < 0 || !winsize_ok(cols, rows, px, py, &ws))
    return -1;
  /* The kernel sends SIGWINCH to the terminal's foreground group. */
  return ioctl(c->master, TIOCSWINSZ, &ws) < 0 ? -1 : 0;
}

/* LANG, LC_* and TERM only, as OpenSSH's default AcceptEnv: what the
 * client's locale and terminal need, nothing that changes what runs
 * (LD_PRELOAD, PATH). */
static bool env_allowed(const char *name) {
  if (strcmp(name, "LANG") != 0 && strcmp(name, "TERM") != 0 &&
      strncmp(name, "LC_", 3) != 0)
    return false;
  size_t n = 0;
  for (; name[n]; n++)
    if (n >= ENV_NAME_MAX ||
        !(name[n] == '_' || (name[n] >= 'A' && name[n] <= 'Z') ||
          (name[n] >= '0' && name[n] <= '9')))
      return false;
  return true;
}

static int on_env(ssh_session session, ssh_channel channel, const char *name,
                  const char *value, void *ud) {
  (void)session, (void)channel;
  ssh_chan_t *c = ud;
  if (c->started || !name || !value || !env_allowed(name) ||
      strnlen(value, ENV_VALUE_MAX + 1) > ENV_VALUE_MAX)
    return -1;
  size_t nlen = strlen(name);
  int slot = c->nenv;
  for (int i = 0; i < c->nenv; i++)
    if (strncmp(c->env[i], name, nlen) == 0 && c->env[i][nlen] == '=')
      slot = i;
  if (slot == SSH_MAX_ENV)
    return -1;
  char *kv = NULL;
  if (asprintf(&kv, "%s=%s", name, value) < 0)
    return -1;
  if (slot == c->nenv)
    c->nenv++;
  else
    free(c->env[slot]);
  c->env[slot] = kv;
  return 0;
}

/* shell (command NULL), exec, or the sftp subsystem (program). */
static int start(ssh_chan_t *c, const char *command, const char *program) {
  if (c->started || c->kind != CH_SESSION)
    return -1;
  bool pty = c->master >= 0 && !program; /* sftp speaks binary: pipes */
  ssh_spawn_t sp = {.command = command,
                    .program = program,
                    .client_env = (const char *const *)c->env,
                    .term = pty && c->term[0] ? c->term : NULL,
                    .pty_slave = pty ? c->slave : -1,
                    .tty_name = pty ? c->tty : NULL};
  if (ssh_spawn_start(c->conn->s, &sp, &c->child) < 0) {
    atr_log(ATR_LOG_WARN, "agent", "ssh: could not start %s: %s",
            program ? program : "the shell", strerror(errno));
    return -1;
  }
  if (pty) {
    c->in_fd = c->out_fd = c->master;
    chan_close_fd(c, &c->slave);
  } else {
    c->in_fd = c->child.in;
    c->out_fd = c->child.out;
    c->err_fd = c->child.err;
  }
  c->started = true;
  return 0;
}

static int on_shell(ssh_session session, ssh_channel channel, void *ud) {
  (void)session, (void)channel;
  return start(ud, NULL, NULL);
}

static int on_exec(ssh_session session, ssh_channel channel,
                   const char *command, void *ud) {
  (void)session, (void)channel;
  return command ? start(ud, command, NULL) : -1;
}

static int on_subsystem(ssh_session session, ssh_channel channel,
                        const char *name, void *ud) {
  (void)session, (void)channel;
  ssh_chan_t *c = ud;
  const char *sftp = c->conn->s->sftp_server;
  return name && strcmp(name, "sftp") == 0 && sftp ? start(c, NULL, sftp) : -1;
}

/* --- direct-tcpip --------------------------------------------------------- */

/* Only the workspace's own loopback: what `ssh -L` and editors ask for. */
bool ssh_chan_host_allowed(const char *host) {
  return host && (strcmp(host, "127.0.0.1") == 0 ||
                  strcmp(host, "localhost") == 0 || strcmp(host, "::1") == 0);
}

static int dial_one(int family, int port) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  if (family == AF_INET) {
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    len = sizeof *sin;
  } else {
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons((uint16_t)port);
    sin6->sin6_addr = in6addr_loopback;
    len = sizeof *sin6;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return -1;
  if (connect(fd, (struct sockaddr *)&ss, len) == 0)
    return fd;
  /* A loopback connect is at once, unless the listener's backlog is
   * full: bounded, because this thread serves the other channels too. */
  struct pollfd p = {.fd = fd, .events = POLLOUT};
  int err = 0;
  socklen_t elen = sizeof err;
  if (errno == EINPROGRESS && poll(&p, 1, DIAL_TIMEOUT_MS) == 1 &&
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
    return fd;
  close(fd);
  return -1;
}

int ssh_chan_dial(const char *host, int port) {
  if (!ssh_chan_host_allowed(host) || port < 1 || port > 65535)
    return -1;
  int fd = -1;
  if (strcmp(host, "::1") != 0)
    fd = dial_one(AF_INET, port);
  if (fd < 0 && strcmp(host, "127.0.0.1") != 0)
    fd = dial_one(AF_INET6, port);
  return fd;
}

void ssh_chan_set_socket(ssh_chan_t *c, int fd) {
  c->in_fd = c->out_fd = fd;
  c->started = true;
}

/* --- bytes ------------------------------------------------------------------- */

static void check_exit(ssh_chan_t *c) {
  int st = 0;
  pid_t r = waitpid(c->child.pid, &st, WNOHANG);
  if (r == 0 || (r < 0 && errno == EINTR))
    return;
  if (r < 0) /* not ours any more: nobody should have waited for it */
    st = 255 << 8;
  c->exited = true;
  c->status = st;
  ssh_spawn_forget(c->child.pid);
  chan_close_fd(c, &c->child.pidfd);
  if (c->master >= 0 && !c->out_eof) {
    c->drain_until = ssh_now_ms() + PTY_DRAIN_MS;
    c->force_read = true;
  }
}

/* The client's bytes to the child (or socket). */
static void to_child(ssh_chan_t *c) {
  if (!c->started)
    return; /* data before the exec waits in libssh's buffer */
  for (;;) {
    if (c->tlen == 0 && c->pending_in) {
      int n =
          ssh_channel_read_nonblocking(c->ch, c->tochild, sizeof c->tochild, 0);
      if (n > 0) {
        c->toff = 0;
        c->tlen = (size_t)n;
      } else {
        c->pending_in = false;
        if (n == SSH_ERROR)
          c->broken = true;
      }
    }
    if (c->tlen == 0)
      break;
    if (c->in_closed || c->in_fd < 0) {
      c->tlen = 0; /* the child stopped reading: dropped, as sshd does */
      continue;
    }
    ssize_t w = write(c->in_fd, c->tochild + c->toff, c->tlen);
    if (w > 0) {
      c->toff += (size_t)w;
      c->tlen -= (size_t)w;
    } else if (w < 0 && errno == EINTR) {
      continue;
    } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break; /* POLLOUT will say when */
    } else {
      c->in_closed = true;
      if (c->kind == CH_TCP)
        c->broken = true;
      else if (c->in_fd != c->out_fd)
        chan_close_fd(c, &c->in_fd);
    }
  }
  /* The client's EOF, once its bytes are through: the child's stdin ends
   * (a pty has no EOF of its own: the terminal stays). */
  if (c->tlen == 0 && !c->pending_in && !c->in_closed && c->in_fd >= 0 &&
      ssh_channel_is_eof(c->ch)) {
    c->in_closed = true;
    if (c->kind == CH_TCP)
      shutdown(c->in_fd, SHUT_WR);
    else if (c->in_fd != c->out_fd)
      chan_close_fd(c, &c->in_fd);
  }
}

/* One read of the child's stdout/stderr (or the socket) into the
 * channel, at most what the client's window allows. */
static void from_child(ssh_chan_t *c, int wi, bool is_stderr) {
  int *fd = is_stderr ? &c->err_fd : &c->out_fd;
  bool *eof = is_stderr ? &c->err_eof : &c->out_eof;
  ssh_watch_t *w = &c->w[wi];
  bool ready =
      (w->rev & (POLLIN | POLLHUP | POLLERR)) || (!is_stderr && c->force_read);
  if (*fd < 0 || *eof || !ready)
    return;
  uint32_t win = ssh_channel_window_size(c->ch);
  if (win == 0)
    return;
  w->rev &= (short)~(POLLIN | POLLHUP | POLLERR);
  if (!is_stderr)
    c->force_read = false;
  char buf[SSH_CHUNK];
  ssize_t n = read(*fd, buf, win < sizeof buf ? win : sizeof buf);
  if (n > 0) {
    int rc = is_stderr ? ssh_channel_write_stderr(c->ch, buf, (uint32_t)n)
                       : ssh_channel_write(c->ch, buf, (uint32_t)n);
    if (rc == SSH_ERROR)
      c->broken = true;
    if (!is_stderr) {
      c->out_idle = false;
      /* After the exit a pty is read until it is empty (no POLLIN says
       * so), then given PTY_DRAIN_MS for what the kernel still holds. */
      c->force_read = c->exited && c->drain_until > 0;
    }
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    if (!is_stderr)
      c->out_idle = true;
    return;
  }
  /* 0: EOF; EIO: a pty whose every slave closed; else the socket broke */
  *eof = true;
  if (!is_stderr && c->out_fd == c->master)
    c->in_closed = true; /* nobody reads the terminal any more */
  if (c->kind == CH_TCP && n < 0)
    c->broken = true;
  if (*fd != c->in_fd)
    chan_close_fd(c, fd);
}

static void send_exit(ssh_chan_t *c) {
  int st = c->status;
  const char *sig = WIFSIGNALED(st) ? sigabbrev_np(WTERMSIG(st)) : NULL;
  if (sig)
    ssh_channel_request_send_exit_signal(c->ch, sig, WCOREDUMP(st) ? 1 : 0, "",
                                         "");
  else
    ssh_channel_request_send_exit_status(
        c->ch, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* Whether c is over: the caller frees it with ssh_chan_free. */
bool ssh_chan_io(ssh_chan_t *c) {
  if (c->child.pid > 0 && !c->exited &&
      (c->w[W_PID].rev || c->child.pidfd < 0)) {
    c->w[W_PID].rev = 0;
    check_exit(c);
  }
  to_child(c);
  from_child(c, W_IO, false);
  from_child(c, W_ERR, true);
  c->w[W_IN].rev = 0;
  if (c->remote_closed || c->broken)
    return true;
  bool pty = c->started && c->kind == CH_SESSION && c->out_fd == c->master &&
             c->master >= 0;
  if (pty && c->exited && !c->out_eof && c->out_idle &&
      ssh_now_ms() >= c->drain_until)
    c->out_eof = true; /* a background job keeps the terminal: done */
  bool outputs_done =
      c->started && c->out_eof && (c->err_eof || c->err_fd < 0 || pty);
  if (c->kind == CH_SESSION && c->child.pid < 0)
    return false; /* no process yet: the client decides */
  if (outputs_done && !c->eof_sent) {
    ssh_channel_send_eof(c->ch);
    c->eof_sent = true;
  }
  if (c->kind == CH_TCP)
    return c->out_eof && c->in_closed;
  if (!outputs_done || !c->exited)
    return false;
  send_exit(c);
  return true;
}

/* Closes the channel; a child still running is hung up and becomes the
 * connection's orphan (waited for, killed after a grace). */
void ssh_chan_free(ssh_chan_t *c) {
  ssh_conn_t *conn = c->conn;
  for (int i = 0; i < W_N; i++)
    watch_off(conn, &c->w[i]);
  if (c->child.pid > 0 && !c->exited) {
    kill(-c->child.pid, SIGHUP); /* its session: setsid made it leader */
    ssh_conn_orphan(conn, c->child.pid, c->child.pidfd);
    c->child.pidfd = -1;
  }
  int *fds[] = {&c->in_fd,  &c->out_fd, &c->err_fd,
                &c->master, &c->slave,  &c->child.pidfd};
  for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
    chan_close_fd(c, fds[i]);
  ssh_remove_channel_callbacks(c->ch, &c->cb);
  if (ssh_is_connected(conn->session))
    ssh_channel_close(c->ch);
  ssh_channel_free(c->ch);
  for (int i = 0; i < c->nenv; i++)
    free(c->env[i]);
  free(c);
}
