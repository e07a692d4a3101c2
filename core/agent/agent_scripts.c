/* core/agent/agent_scripts.c — scripts in their own process group
 * (agent_scripts.h). */
#include "agent_scripts.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "agent_lines.h"

#define DRAIN_MS 2000

typedef struct script_pipe {
  struct agent_script *s;
  bool is_stderr, open;
  uv_pipe_t pipe;
  agent_lines_t lines;
  char buf[8192];
} script_pipe_t;

struct agent_script {
  uv_loop_t *loop;
  uv_process_t proc;
  script_pipe_t out, err;
  uv_timer_t timeout, grace, drain;
  agent_script_cbs_t cbs;
  void *ud;
  int64_t grace_ms;
  int pid;
  bool exited, done, kill_sent;
  agent_script_end_t end;
  int64_t code;
  int closing; /* handles not yet closed */
  struct agent_script *next;
};

static agent_script_t *running; /* for agent_scripts_own_pid */

bool agent_scripts_own_pid(int pid) {
  for (agent_script_t *s = running; s; s = s->next)
    if (s->pid == pid)
      return true;
  return false;
}

int agent_script_pid(const agent_script_t *s) {
  return s->exited ? 0 : s->pid;
}

static void unlink_running(agent_script_t *s) {
  for (agent_script_t **p = &running; *p; p = &(*p)->next)
    if (*p == s) {
      *p = s->next;
      return;
    }
}

static void on_closed(uv_handle_t *h) {
  agent_script_t *s = h->data;
  if (--s->closing == 0) {
    agent_lines_free(&s->out.lines);
    agent_lines_free(&s->err.lines);
    free(s);
  }
}

static void close_all(agent_script_t *s) {
  uv_handle_t *hs[] = {(uv_handle_t *)&s->proc,     (uv_handle_t *)&s->out.pipe,
                       (uv_handle_t *)&s->err.pipe, (uv_handle_t *)&s->timeout,
                       (uv_handle_t *)&s->grace,    (uv_handle_t *)&s->drain};
  s->closing = 6;
  for (size_t i = 0; i < 6; i++) {
    hs[i]->data = s;
    uv_close(hs[i], on_closed);
  }
}

static void emit_line(void *ud, const char *line, size_t len) {
  script_pipe_t *p = ud;
  if (p->s->cbs.on_line)
    p->s->cbs.on_line(p->s->ud, p->is_stderr, line, len);
}

static void finish(agent_script_t *s) {
  if (s->done)
    return;
  s->done = true;
  agent_lines_flush(&s->out.lines, emit_line, &s->out);
  agent_lines_flush(&s->err.lines, emit_line, &s->err);
  unlink_running(s);
  if (s->cbs.on_done)
    s->cbs.on_done(s->ud, s->end, s->code);
  close_all(s);
}

static void maybe_finish(agent_script_t *s) {
  if (s->exited && !s->out.open && !s->err.open)
    finish(s);
}

static void close_pipe(script_pipe_t *p) {
  if (!p->open)
    return;
  p->open = false;
  uv_read_stop((uv_stream_t *)&p->pipe);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  script_pipe_t *p = h->data;
  *buf = uv_buf_init(p->buf, sizeof p->buf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  script_pipe_t *p = st->data;
  if (n > 0) {
    agent_lines_feed(&p->lines, buf->base, (size_t)n, emit_line, p);
  } else if (n < 0) {
    close_pipe(p);
    maybe_finish(p->s);
  }
}

static void on_drain(uv_timer_t *t) {
  agent_script_t *s = t->data;
  close_pipe(&s->out);
  close_pipe(&s->err);
  finish(s);
}

static void on_script_exit(uv_process_t *proc, int64_t status, int sig) {
  agent_script_t *s = proc->data;
  s->exited = true;
  uv_timer_stop(&s->timeout);
  if (s->end == AGENT_SCRIPT_EXITED) {
    s->end = sig ? AGENT_SCRIPT_SIGNALED : AGENT_SCRIPT_EXITED;
    s->code = sig ? sig : status;
  }
  uv_timer_start(&s->drain, on_drain, DRAIN_MS, 0);
  maybe_finish(s);
}

static void on_grace(uv_timer_t *t) {
  agent_script_t *s = t->data;
  kill(-s->pid, SIGKILL);
}

static void kill_group(agent_script_t *s, agent_script_end_t why) {
  if (s->kill_sent || s->done)
    return;
  s->kill_sent = true;
  if (!s->exited) {
    s->end = why;
    s->code = 0;
  }
  kill(-s->pid, SIGTERM);
  uv_timer_start(&s->grace, on_grace, (uint64_t)s->grace_ms, 0);
}

static void on_timeout(uv_timer_t *t) {
  kill_group(t->data, AGENT_SCRIPT_TIMEOUT);
}

void agent_script_kill(agent_script_t *s) {
  kill_group(s, AGENT_SCRIPT_KILLED);
}

static void init_handles(uv_loop_t *loop, agent_script_t *s) {
  uv_pipe_init(loop, &s->out.pipe, 0);
  uv_pipe_init(loop, &s->err.pipe, 0);
  uv_timer_init(loop, &s->timeout);
  uv_timer_init(loop, &s->grace);
  uv_timer_init(loop, &s->drain);
  s->out.s = s->err.s = s;
  s->err.is_stderr = true;
  s->out.pipe.data = &s->out;
  s->err.pipe.data = &s->err;
  s->proc.data = s->timeout.data = s->grace.data = s->drain.data = s;
}

int agent_script_run(uv_loop_t *loop, const agent_script_opts_t *opts,
                     const agent_script_cbs_t *cbs, void *ud,
                     agent_script_t **out) {
  agent_script_t *s = calloc(1, sizeof *s);
  if (!s)
    return UV_ENOMEM;
  s->loop = loop;
  s->cbs = *cbs;
  s->ud = ud;
  s->grace_ms = opts->kill_grace_ms > 0 ? opts->kill_grace_ms : 5000;
  init_handles(loop, s);
  char *args[] = {"/bin/sh", "-c", (char *)opts->script, NULL};
  uv_stdio_container_t stdio[3] = {
      {.flags = UV_IGNORE},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
       .data.stream = (uv_stream_t *)&s->out.pipe},
      {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
       .data.stream = (uv_stream_t *)&s->err.pipe},
  };
  uv_process_options_t po = {
      .exit_cb = on_script_exit,
      .file = "/bin/sh",
      .args = args,
      .env = opts->env,
      .cwd = opts->dir && *opts->dir ? opts->dir : NULL,
      /* setsid(): a session and process group of its own */
      .flags = UV_PROCESS_DETACHED,
      .stdio_count = 3,
      .stdio = stdio,
  };
  int rc = uv_spawn(loop, &s->proc, &po);
  if (rc != 0) {
    s->done = true;
    close_all(s);
    return rc;
  }
  s->pid = s->proc.pid;
  s->out.open = s->err.open = true;
  uv_read_start((uv_stream_t *)&s->out.pipe, on_alloc, on_read);
  uv_read_start((uv_stream_t *)&s->err.pipe, on_alloc, on_read);
  if (opts->timeout_ms > 0)
    uv_timer_start(&s->timeout, on_timeout, (uint64_t)opts->timeout_ms, 0);
  s->next = running;
  running = s;
  *out = s;
  return 0;
}

char *agent_expand_home(const char *path) {
  if (!path)
    return NULL;
  const char *home = getenv("HOME");
  if (path[0] == '~' && (path[1] == '\0' || path[1] == '/') && home) {
    char *out = NULL;
    return asprintf(&out, "%s%s", home, path + 1) < 0 ? NULL : out;
  }
  return strdup(path);
}
