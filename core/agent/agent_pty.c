/* core/agent/agent_pty.c — reconnecting PTYs (agent_pty.h).
 *
 * A session is a shell on a PTY, keyed by its reconnect id, with a 64 KiB
 * ring of its latest output; at most one connection is attached to it.
 *
 * Backpressure: when the attached connection holds more than 1 MiB of
 * output not yet written, the agent stops reading the PTY's master, so the
 * shell blocks on its writes as it would on a slow ssh link and nothing
 * is lost; reading resumes below 256 KiB. A connection that takes nothing
 * for 30 s (ATRIUM_AGENT_PTY_STALL) while the shell waits on it is
 * dropped (the client reconnects and gets the scrollback), so a stuck
 * client never holds a shell for good; with no connection the output only goes to the ring, never
 * blocking the shell. Input has the mirror rule: the connection is not
 * read while more than 64 KiB of it wait to go into the master.
 *
 * Ends: a session ends when its shell exited and its output was read
 * (EOF on the master, or 2 s after the exit when a background process
 * keeps the terminal open), or after idle_ms with no connection, or at
 * agent_pty_free. Ending closes the master (the kernel hangs the terminal
 * up) and sends SIGHUP to the shell's process group, SIGKILL 2 s later;
 * the session's memory goes once its shell was reaped and its handles
 * closed. The shell is forked by agent_pty_spawn.c, so this file reaps
 * it (SIGCHLD, waitpid on its own pids only). */
#include "agent_pty.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_pty_internal.h"
#include "agent_scripts.h"
#include "agent_util.h"
#include "log.h"
#include "uuid_text.h"

#define SCROLLBACK ((size_t)64 * 1024)
#define MAX_PTYS 64
#define MAX_COMMAND ((size_t)16 * 1024)
#define OUT_HIGH ((size_t)1024 * 1024)
#define OUT_LOW ((size_t)256 * 1024)
#define IN_HIGH ((size_t)64 * 1024)
#define DRAIN_MS 2000
#define KILL_GRACE_MS 2000
#define DEFAULT_IDLE_MS ((int64_t)5 * 60 * 1000)

typedef struct pty_session pty_session_t;

typedef struct pty_conn {
  agent_pty_t *p;
  uv_pipe_t pipe;
  uv_shutdown_t shut;
  uv_timer_t linger; /* bounds a graceful close */
  int open_handles;
  pty_session_t *s; /* NULL once detached */
  size_t queued;    /* output bytes handed to libuv, not yet written */
  bool closing, in_paused;
  agent_pty_scanner_t scan;
  char rbuf[16384];
  struct pty_conn *next;
} pty_conn_t;

struct pty_session {
  agent_pty_t *p;
  char id[37];
  int pid;
  bool exited, eof, ended, paused;
  uv_pipe_t master;
  uv_timer_t idle, drain, stall, killt;
  int open_handles;
  pty_conn_t *conn;
  char ring[SCROLLBACK];
  size_t ring_head, ring_len;
  char rbuf[16384];
  struct pty_session *next;
};

struct agent_pty {
  uv_loop_t *loop;
  char *directory, *shell;
  char **env;
  int64_t idle_ms, stall_ms;
  uv_signal_t chld;
  pty_session_t *sessions;
  pty_conn_t *conns;
  int count;   /* sessions not ended */
  int objects; /* sessions and connections not yet freed */
  bool freeing;
  void (*done)(void *);
  void *ud;
  struct agent_pty *next;
};

static agent_pty_t *instances; /* for agent_pty_own_pid */

typedef struct out_req {
  uv_write_t req;
  size_t len;
  char data[];
} out_req_t;

static void conn_close(pty_conn_t *c, bool graceful);
static void session_end(pty_session_t *s, const char *why);

/* --- freeing ------------------------------------------------------- */

static void on_chld_closed(uv_handle_t *h) {
  agent_pty_t *p = h->data;
  for (agent_pty_t **q = &instances; *q; q = &(*q)->next)
    if (*q == p) {
      *q = p->next;
      break;
    }
  void (*done)(void *) = p->done;
  void *ud = p->ud;
  free(p->directory);
  free(p->shell);
  agent__pty_env_free(p->env);
  free(p);
  if (done)
    done(ud);
}

static void maybe_done(agent_pty_t *p) {
  if (p->freeing && p->objects == 0 && !uv_is_closing((uv_handle_t *)&p->chld))
    uv_close((uv_handle_t *)&p->chld, on_chld_closed);
}

/* --- connections --------------------------------------------------- */

static void on_conn_closed(uv_handle_t *h) {
  pty_conn_t *c = h->data;
  if (--c->open_handles > 0)
    return;
  agent_pty_t *p = c->p;
  for (pty_conn_t **q = &p->conns; *q; q = &(*q)->next)
    if (*q == c) {
      *q = c->next;
      break;
    }
  agent__pty_scan_free(&c->scan);
  free(c);
  p->objects--;
  maybe_done(p);
}

/* Closes the pipe and the linger timer; pending writes are dropped. */
static void conn_close_handles(pty_conn_t *c) {
  c->closing = true;
  c->s = NULL;
  if (!uv_is_closing((uv_handle_t *)&c->pipe))
    uv_close((uv_handle_t *)&c->pipe, on_conn_closed);
  if (!uv_is_closing((uv_handle_t *)&c->linger))
    uv_close((uv_handle_t *)&c->linger, on_conn_closed);
}

static void on_conn_shutdown(uv_shutdown_t *req, int status) {
  (void)status;
  conn_close_handles(req->data);
}

static void on_linger(uv_timer_t *t) {
  conn_close_handles(t->data);
}

/* graceful: what was queued is written first (the end of a session), for
 * as long as the stall timeout allows, so a client that reads nothing
 * cannot keep the connection for good. */
static void conn_close(pty_conn_t *c, bool graceful) {
  if (c->closing)
    return;
  c->closing = true;
  c->s = NULL;
  uv_read_stop((uv_stream_t *)&c->pipe);
  c->shut.data = c;
  if (graceful &&
      uv_shutdown(&c->shut, (uv_stream_t *)&c->pipe, on_conn_shutdown) == 0) {
    uv_timer_start(&c->linger, on_linger, (uint64_t)c->p->stall_ms, 0);
    return;
  }
  conn_close_handles(c);
}

static void resume_output(pty_session_t *s);
static void on_conn_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf);
static void on_conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);
static void on_master_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf);
static void on_master_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void on_idle(uv_timer_t *t) {
  session_end(t->data, "no connection for the idle timeout");
}

/* The connection went (EOF, an error, garbage, a stall): the shell stays. */
static void detach(pty_conn_t *c) {
  pty_session_t *s = c->s;
  conn_close(c, false);
  if (!s || s->conn != c)
    return;
  s->conn = NULL;
  resume_output(s);
  uv_timer_start(&s->idle, on_idle, (uint64_t)s->p->idle_ms, 0);
}

static void on_conn_written(uv_write_t *req, int status) {
  out_req_t *r = (out_req_t *)req;
  pty_conn_t *c = req->data;
  c->queued -= r->len;
  free(r);
  if (status < 0) {
    if (!c->closing)
      detach(c);
    return;
  }
  pty_session_t *s = c->s;
  if (s && s->paused) {
    if (c->queued <= OUT_LOW)
      resume_output(s);
    else /* progress: the stall clock starts again */
      uv_timer_again(&s->stall);
  }
}

static void conn_write(pty_conn_t *c, const char *a, size_t na, const char *b,
                       size_t nb) {
  out_req_t *r = malloc(sizeof *r + na + nb);
  if (!r) {
    detach(c);
    return;
  }
  r->len = na + nb;
  memcpy(r->data, a, na);
  if (nb)
    memcpy(r->data + na, b, nb);
  r->req.data = c;
  uv_buf_t buf = uv_buf_init(r->data, (unsigned)r->len);
  if (uv_write(&r->req, (uv_stream_t *)&c->pipe, &buf, 1, on_conn_written) !=
      0) {
    free(r);
    detach(c);
    return;
  }
  c->queued += r->len;
}

/* --- the master ---------------------------------------------------- */

static void on_stall(uv_timer_t *t) {
  pty_session_t *s = t->data;
  atr_log(ATR_LOG_WARN, "agent",
          "terminal %s: its connection took no output for %lld ms; dropped",
          s->id, (long long)s->p->stall_ms);
  if (s->conn)
    detach(s->conn);
}

static void pause_output(pty_session_t *s) {
  if (s->paused)
    return;
  s->paused = true;
  uv_read_stop((uv_stream_t *)&s->master);
  uint64_t ms = (uint64_t)s->p->stall_ms;
  uv_timer_start(&s->stall, on_stall, ms, ms);
}

static void resume_output(pty_session_t *s) {
  if (!s->paused)
    return;
  s->paused = false;
  uv_timer_stop(&s->stall);
  if (!s->eof && !s->ended)
    uv_read_start((uv_stream_t *)&s->master, on_master_alloc, on_master_read);
}

static void ring_add(pty_session_t *s, const char *d, size_t n) {
  if (n >= SCROLLBACK) {
    memcpy(s->ring, d + n - SCROLLBACK, SCROLLBACK);
    s->ring_head = 0;
    s->ring_len = SCROLLBACK;
    return;
  }
  size_t first = SCROLLBACK - s->ring_head;
  if (first > n)
    first = n;
  memcpy(s->ring + s->ring_head, d, first);
  memcpy(s->ring, d + first, n - first);
  s->ring_head = (s->ring_head + n) % SCROLLBACK;
  s->ring_len = s->ring_len + n > SCROLLBACK ? SCROLLBACK : s->ring_len + n;
}

static void on_master_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  (void)sz;
  pty_session_t *s = h->data;
  buf->base = s->rbuf;
  buf->len = sizeof s->rbuf;
}

static void on_master_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  pty_session_t *s = st->data;
  if (n > 0) {
    ring_add(s, buf->base, (size_t)n);
    pty_conn_t *c = s->conn;
    if (c) {
      conn_write(c, buf->base, (size_t)n, NULL, 0);
      if (s->conn == c && c->queued > OUT_HIGH)
        pause_output(s);
    }
  } else if (n < 0) {
    /* EIO: every slave fd closed (the shell and all it started) */
    uv_read_stop(st);
    s->eof = true;
    if (s->exited)
      session_end(s, "the shell exited");
  }
}

static void on_master_written(uv_write_t *req, int status) {
  (void)status; /* EIO once the shell is gone: nothing to do */
  pty_session_t *s = req->data;
  free(req);
  pty_conn_t *c = s->conn;
  if (c && c->in_paused && !s->ended &&
      uv_stream_get_write_queue_size((uv_stream_t *)&s->master) <=
          IN_HIGH / 2) {
    c->in_paused = false;
    uv_read_start((uv_stream_t *)&c->pipe, on_conn_alloc, on_conn_read);
  }
}

static void master_write(pty_session_t *s, const char *d, size_t n) {
  if (s->ended || n == 0)
    return;
  uv_write_t *req = malloc(sizeof *req + n);
  if (!req)
    return;
  char *copy = (char *)(req + 1);
  memcpy(copy, d, n);
  req->data = s;
  uv_buf_t buf = uv_buf_init(copy, (unsigned)n);
  if (uv_write(req, (uv_stream_t *)&s->master, &buf, 1, on_master_written) != 0)
    free(req);
}

static void resize(pty_session_t *s, int width, int height) {
  if (s->ended || width <= 0 || height <= 0)
    return;
  uv_os_fd_t fd;
  if (uv_fileno((uv_handle_t *)&s->master, &fd) != 0)
    return;
  struct winsize ws = {.ws_row = (unsigned short)height,
                       .ws_col = (unsigned short)width};
  /* the kernel sends SIGWINCH to the terminal's foreground group */
  ioctl(fd, TIOCSWINSZ, &ws);
}

/* --- a connection's input ------------------------------------------ */

static int on_request(void *ud, json_t *obj) {
  pty_conn_t *c = ud;
  agent_pty_request_t req;
  const char *err = NULL;
  if (agent__pty_request_parse(obj, &req, &err) != 0) {
    atr_log(ATR_LOG_WARN, "agent", "terminal input refused: %s", err);
    return -1;
  }
  pty_session_t *s = c->s;
  if (!s)
    return 1;
  master_write(s, req.data, req.data_len);
  int w = req.width, h = req.height;
  if (w || h) {
    struct winsize cur = {0};
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->master, &fd) == 0)
      ioctl(fd, TIOCGWINSZ, &cur);
    resize(s, w ? w : cur.ws_col, h ? h : cur.ws_row);
  }
  return 0;
}

static void on_conn_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf) {
  (void)sz;
  pty_conn_t *c = h->data;
  buf->base = c->rbuf;
  buf->len = sizeof c->rbuf;
}

static void on_conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  pty_conn_t *c = st->data;
  if (n < 0) {
    detach(c);
    return;
  }
  if (n == 0 || c->closing)
    return;
  const char *err = "";
  int rc =
      agent__pty_scan_feed(&c->scan, buf->base, (size_t)n, on_request, c, &err);
  if (rc < 0) {
    if (*err)
      atr_log(ATR_LOG_WARN, "agent", "terminal connection closed: %s", err);
    detach(c);
    return;
  }
  pty_session_t *s = c->s;
  if (s && !c->closing &&
      uv_stream_get_write_queue_size((uv_stream_t *)&s->master) > IN_HIGH) {
    c->in_paused = true;
    uv_read_stop(st);
  }
}

static pty_conn_t *conn_new(agent_pty_t *p, int fd) {
  pty_conn_t *c = calloc(1, sizeof *c);
  if (!c) {
    close(fd);
    return NULL;
  }
  c->p = p;
  uv_pipe_init(p->loop, &c->pipe, 0);
  uv_timer_init(p->loop, &c->linger);
  c->pipe.data = c->linger.data = c;
  c->open_handles = 2;
  c->next = p->conns;
  p->conns = c;
  p->objects++;
  if (uv_pipe_open(&c->pipe, fd) != 0) {
    close(fd);
    conn_close_handles(c);
    return NULL;
  }
  return c;
}

/* --- sessions ------------------------------------------------------ */

static void on_session_handle_closed(uv_handle_t *h) {
  pty_session_t *s = h->data;
  if (--s->open_handles > 0)
    return;
  agent_pty_t *p = s->p;
  for (pty_session_t **q = &p->sessions; *q; q = &(*q)->next)
    if (*q == s) {
      *q = s->next;
      break;
    }
  free(s);
  p->objects--;
  maybe_done(p);
}

static void close_timers(pty_session_t *s) {
  uv_handle_t *hs[] = {(uv_handle_t *)&s->idle, (uv_handle_t *)&s->drain,
                       (uv_handle_t *)&s->stall, (uv_handle_t *)&s->killt};
  for (size_t i = 0; i < 4; i++)
    uv_close(hs[i], on_session_handle_closed);
}

static void on_kill(uv_timer_t *t) {
  pty_session_t *s = t->data;
  if (!s->exited)
    kill(-s->pid, SIGKILL);
}

static void session_end(pty_session_t *s, const char *why) {
  if (s->ended)
    return;
  s->ended = true;
  s->p->count--;
  atr_log(ATR_LOG_INFO, "agent", "terminal %s ended: %s", s->id, why);
  uv_timer_stop(&s->idle);
  uv_timer_stop(&s->drain);
  uv_timer_stop(&s->stall);
  if (s->conn) {
    pty_conn_t *c = s->conn;
    s->conn = NULL;
    conn_close(c, true);
  }
  uv_close((uv_handle_t *)&s->master, on_session_handle_closed);
  if (s->exited) {
    close_timers(s);
    return;
  }
  kill(-s->pid, SIGHUP);
  /* again and again until it is reaped: the timer keeps the loop alive */
  uv_timer_start(&s->killt, on_kill, KILL_GRACE_MS, KILL_GRACE_MS);
}

static void on_drain(uv_timer_t *t) {
  session_end(t->data, "the shell exited");
}

static void on_shell_exit(pty_session_t *s) {
  s->exited = true;
  if (s->ended)
    close_timers(s);
  else if (s->eof)
    session_end(s, "the shell exited");
  else
    uv_timer_start(&s->drain, on_drain, DRAIN_MS, 0);
}

static void on_sigchld(uv_signal_t *h, int sig) {
  (void)sig;
  agent_pty_t *p = h->data;
  for (pty_session_t *s = p->sessions; s; s = s->next) {
    if (s->exited)
      continue;
    int st;
    pid_t r;
    do
      r = waitpid(s->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    /* ECHILD: reaped by someone else; gone all the same */
    if (r == s->pid || (r < 0 && errno == ECHILD))
      on_shell_exit(s);
  }
}

static pty_session_t *session_find(agent_pty_t *p, const char *id) {
  for (pty_session_t *s = p->sessions; s; s = s->next)
    if (!s->ended && strcmp(s->id, id) == 0)
      return s;
  return NULL;
}

static pty_session_t *session_new(agent_pty_t *p, const char *id, int width,
                                  int height, const char *command) {
  char *shell = agent_user_shell(p->shell);
  char **envp = agent__pty_env((const char *const *)p->env);
  pty_session_t *s = calloc(1, sizeof *s);
  int master = -1, pid = 0, rc = -ENOMEM;
  if (shell && envp && s) {
    agent_pty_spawn_t o = {.shell = shell,
                           .command = command,
                           .dir = p->directory,
                           .envp = envp,
                           .width = width,
                           .height = height};
    rc = agent__pty_spawn(&o, &master, &pid);
  }
  free(shell);
  agent__pty_env_free(envp);
  if (rc != 0) {
    atr_log(ATR_LOG_ERROR, "agent", "terminal %s: cannot start: %s", id,
            strerror(-rc));
    free(s);
    return NULL;
  }
  s->p = p;
  memcpy(s->id, id, 37);
  s->pid = pid;
  uv_pipe_init(p->loop, &s->master, 0);
  uv_timer_init(p->loop, &s->idle);
  uv_timer_init(p->loop, &s->drain);
  uv_timer_init(p->loop, &s->stall);
  uv_timer_init(p->loop, &s->killt);
  s->master.data = s->idle.data = s->drain.data = s->stall.data =
      s->killt.data = s;
  s->open_handles = 5;
  s->next = p->sessions;
  p->sessions = s;
  p->objects++;
  p->count++;
  if (uv_pipe_open(&s->master, master) != 0) {
    close(master);
    s->eof = true;
    session_end(s, "cannot watch its terminal");
    return NULL;
  }
  uv_read_start((uv_stream_t *)&s->master, on_master_alloc, on_master_read);
  uv_timer_start(&s->idle, on_idle, (uint64_t)p->idle_ms, 0);
  atr_log(ATR_LOG_INFO, "agent", "terminal %s started (pid %d)", id, pid);
  return s;
}

/* --- the interface ------------------------------------------------- */

static const char *check_attach(const agent_pty_t *p, const char *reconnect,
                                int width, int height, const char *command) {
  if (p->freeing)
    return "the agent is shutting down";
  if (!atr_uuid_valid(reconnect))
    return "reconnect must be a UUID";
  if (width < 1 || width > 1000)
    return "width must be from 1 to 1000";
  if (height < 1 || height > 1000)
    return "height must be from 1 to 1000";
  if (command && strlen(command) > MAX_COMMAND)
    return "command is longer than 16 KiB";
  return NULL;
}

static void replay(pty_session_t *s, pty_conn_t *c) {
  if (!s->ring_len)
    return;
  size_t start = (s->ring_head + SCROLLBACK - s->ring_len) % SCROLLBACK;
  size_t first = SCROLLBACK - start;
  if (first > s->ring_len)
    first = s->ring_len;
  conn_write(c, s->ring + start, first, s->ring, s->ring_len - first);
}

int agent_pty_attach(agent_pty_t *p, int fd, const char *reconnect, int width,
                     int height, const char *command) {
  const char *why = check_attach(p, reconnect, width, height, command);
  pty_session_t *s = why ? NULL : session_find(p, reconnect);
  if (!why && s)
    resize(s, width, height);
  else if (!why && p->count >= MAX_PTYS)
    why = "too many terminals (64) are open";
  else if (!why && !(s = session_new(p, reconnect, width, height, command)))
    why = "the shell could not be started";
  if (why) {
    atr_log(ATR_LOG_WARN, "agent", "terminal refused: %s", why);
    close(fd);
    return -1;
  }
  pty_conn_t *c = conn_new(p, fd);
  if (!c)
    return -1;
  if (s->conn) {
    pty_conn_t *old = s->conn;
    s->conn = NULL;
    conn_close(old, false);
  }
  s->conn = c;
  c->s = s;
  uv_timer_stop(&s->idle);
  replay(s, c);
  resume_output(s);
  if (c->s == s)
    uv_read_start((uv_stream_t *)&c->pipe, on_conn_alloc, on_conn_read);
  return 0;
}

bool agent__pty_attached(agent_pty_t *p, const char *id) {
  pty_session_t *s = session_find(p, id);
  return s && s->conn;
}

bool agent__pty_paused(agent_pty_t *p, const char *id) {
  pty_session_t *s = session_find(p, id);
  return s && s->paused;
}

int agent_pty_count(agent_pty_t *p) {
  return p->count;
}

bool agent_pty_own_pid(int pid) {
  for (agent_pty_t *p = instances; p; p = p->next)
    for (pty_session_t *s = p->sessions; s; s = s->next)
      if (!s->exited && s->pid == pid)
        return true;
  return false;
}

static char **copy_env(const char *const *env) {
  size_t n = 0;
  while (env && env[n])
    n++;
  char **out = calloc(n + 1, sizeof *out);
  for (size_t i = 0; out && i < n; i++)
    if (!(out[i] = strdup(env[i]))) {
      agent__pty_env_free(out);
      return NULL;
    }
  return out;
}

agent_pty_t *agent_pty_new(uv_loop_t *loop, const agent_pty_config_t *cfg) {
  agent_pty_t *p = calloc(1, sizeof *p);
  if (!p)
    return NULL;
  p->loop = loop;
  const char *home = getenv("HOME");
  const char *dir = cfg && cfg->directory && *cfg->directory ? cfg->directory
                    : home && *home                          ? home
                                                             : "/";
  p->directory = agent_expand_home(dir);
  p->shell = cfg && cfg->shell ? strdup(cfg->shell) : NULL;
  p->env = copy_env(cfg ? cfg->env : NULL);
  p->idle_ms = cfg && cfg->idle_ms > 0 ? cfg->idle_ms : DEFAULT_IDLE_MS;
  p->stall_ms = agent_env_ms("ATRIUM_AGENT_PTY_STALL", 30000);
  if (p->stall_ms <= 0)
    p->stall_ms = 30000;
  if (!p->directory || (cfg && cfg->shell && !p->shell) || !p->env ||
      uv_signal_init(loop, &p->chld) != 0) {
    free(p->directory);
    free(p->shell);
    agent__pty_env_free(p->env);
    free(p);
    return NULL;
  }
  p->chld.data = p;
  uv_signal_start(&p->chld, on_sigchld, SIGCHLD);
  /* the signal handle alone must not keep a loop running */
  uv_unref((uv_handle_t *)&p->chld);
  p->next = instances;
  instances = p;
  return p;
}

void agent_pty_free(agent_pty_t *p, void (*done)(void *), void *ud) {
  p->freeing = true;
  p->done = done;
  p->ud = ud;
  for (pty_session_t *s = p->sessions; s; s = s->next) {
    if (!s->exited)
      kill(-s->pid, SIGKILL);
    session_end(s, "the agent is shutting down");
  }
  /* connections still writing their last output are cut short */
  for (pty_conn_t *c = p->conns; c; c = c->next)
    conn_close_handles(c);
  maybe_done(p);
}
