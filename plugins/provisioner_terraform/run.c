/* run.c — one terraform command as a child process.
 *
 * For a job the host starts the child (job_spawn, ABI 1.2: it records the
 * process group and runs the child as the build user); otherwise, and on
 * an older host, the child starts with posix_spawn in its own process
 * group. Either way it runs in the job's workdir, with stdin from
 * /dev/null, stdout and stderr on two pipes and no other descriptor. One poll() loop on the calling (op's) thread reads both
 * pipes line by line, so neither can fill up and stall terraform; wakes at
 * least every TF_TICK_MS to see a cancel; and reaps the child with
 * waitpid(WNOHANG). Because only this loop signals and reaps, a signal can
 * never reach a process id that was already reaped and reused.
 *
 * Cancel: SIGINT to the whole group (terraform, its providers and what
 * local-exec started, as Ctrl-C in a terminal would), so terraform stops
 * and writes its state; SIGKILL to the group cancel_grace later.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TF_TICK_MS 100
/* Longest line kept whole; a longer one is logged in pieces. */
#define TF_LINE_MAX ((size_t)1024 * 1024)
/* Most stdout collected for TF_OUT_CAPTURE (terraform show -json). */
#define TF_CAPTURE_MAX ((size_t)256 * 1024 * 1024)
/* How long to keep reading after terraform exited, for output that a
 * process it left behind still holds open. */
#define TF_DRAIN_NS (2ull * 1000 * 1000 * 1000)

typedef struct stream {
  int fd; /* -1 once closed */
  bool is_stderr;
  tf_buf_t line;         /* a line not yet complete */
  atr_log_level_t level; /* stderr: what the current block is about */
} stream_t;

typedef struct proc {
  pid_t pid;
  bool reaped;
  int wstatus;
  bool sent_int, sent_kill;
  uint64_t t_int_ns, t_reaped_ns;
} proc_t;

int tf_buf_append(tf_buf_t *b, const char *data, size_t len) {
  if (b->len + len + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + len + 1)
      cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
      return ATR_ENOMEM;
    b->data = p;
    b->cap = cap;
  }
  if (len > 0)
    memcpy(b->data + b->len, data, len);
  b->len += len;
  b->data[b->len] = '\0';
  return 0;
}

void tf_buf_free(tf_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

char *tf_cmd_line(const tf_cmd_t *cmd) {
  tf_buf_t b = {0};
  int rc = tf_buf_append(&b, "terraform", 9);
  for (size_t i = 0; rc == 0 && cmd->args[i] != NULL; i++) {
    rc = tf_buf_append(&b, " ", 1);
    if (rc == 0)
      rc = tf_buf_append(&b, cmd->args[i], strlen(cmd->args[i]));
  }
  if (rc != 0)
    tf_buf_free(&b);
  return b.data;
}

static void deliver(tf_job_t *j, const tf_cmd_t *cmd, stream_t *s, char *line) {
  size_t n = strlen(line);
  if (n > 0 && line[n - 1] == '\r')
    line[n - 1] = '\0';
  if (s->is_stderr)
    tf_out_stderr_line(j, cmd->stage, &s->level, line);
  else if (cmd->out == TF_OUT_JSON)
    tf_out_json_line(j, cmd->stage, line);
  else if (*line != '\0')
    tf_log(j, ATR_LOG_INFO, cmd->stage, line);
}

/* Deliver every complete line in s->line (all of it when `all`). */
static void split_lines(tf_job_t *j, const tf_cmd_t *cmd, stream_t *s,
                        bool all) {
  size_t start = 0;
  for (size_t i = 0; i < s->line.len; i++) {
    if (s->line.data[i] == '\n') {
      s->line.data[i] = '\0';
      deliver(j, cmd, s, s->line.data + start);
      start = i + 1;
    }
  }
  if (start < s->line.len && (all || s->line.len - start > TF_LINE_MAX)) {
    deliver(j, cmd, s, s->line.data + start);
    start = s->line.len;
  }
  memmove(s->line.data, s->line.data + start, s->line.len - start);
  s->line.len -= start;
  s->line.data[s->line.len] = '\0';
}

static void close_stream(tf_job_t *j, const tf_cmd_t *cmd, stream_t *s) {
  if (s->line.len > 0)
    split_lines(j, cmd, s, true);
  close(s->fd);
  s->fd = -1;
}

/* Read what is there. 0, or ATR_ENOMEM / ATR_ERANGE for a capture that
 * cannot grow. */
static int read_stream(tf_job_t *j, const tf_cmd_t *cmd, stream_t *s) {
  char buf[8192];
  ssize_t n = read(s->fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN))
    return 0;
  if (n <= 0) {
    close_stream(j, cmd, s);
    return 0;
  }
  if (!s->is_stderr && cmd->out == TF_OUT_CAPTURE) {
    if (cmd->capture->len + (size_t)n > TF_CAPTURE_MAX)
      return ATR_ERANGE;
    return tf_buf_append(cmd->capture, buf, (size_t)n);
  }
  int rc = tf_buf_append(&s->line, buf, (size_t)n);
  if (rc == 0)
    split_lines(j, cmd, s, false);
  return rc;
}

static void reap(tf_ctx_t *c, proc_t *p) {
  pid_t r;
  do
    r = waitpid(p->pid, &p->wstatus, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r < 0 && errno == ECHILD)
    p->wstatus = 255 << 8; /* reaped elsewhere: its status is lost */
  if (r == p->pid || (r < 0 && errno == ECHILD)) {
    p->reaped = true;
    p->t_reaped_ns = c->host->clock_monotonic_ns();
  }
}

static void signal_if_canceled(tf_job_t *j, const tf_cmd_t *cmd, proc_t *p) {
  uint64_t now = j->c->host->clock_monotonic_ns();
  if (!p->sent_int) {
    if (!tf_job_canceled(j))
      return;
    kill(-p->pid, SIGINT);
    p->sent_int = true;
    p->t_int_ns = now;
    long long ms = (long long)j->c->cancel_grace_ms;
    tf_logf(j, ATR_LOG_INFO, cmd->stage,
            "Canceling: sent SIGINT to terraform; it is killed if it is "
            "still running in %lld%s",
            ms % 1000 == 0 ? ms / 1000 : ms, ms % 1000 == 0 ? "s" : "ms");
    return;
  }
  uint64_t grace = (uint64_t)j->c->cancel_grace_ms * 1000000u;
  if (!p->sent_kill && now - p->t_int_ns >= grace) {
    kill(-p->pid, SIGKILL);
    p->sent_kill = true;
    tf_log(j, ATR_LOG_WARN, cmd->stage,
           "terraform did not stop within cancel_grace after SIGINT; sent "
           "SIGKILL (its state may be incomplete)");
  }
}

/* Until the child is reaped and its output read (or TF_DRAIN_NS after it
 * exited, whatever holds the pipes open). */
static int wait_loop(tf_job_t *j, const tf_cmd_t *cmd, stream_t s[2],
                     proc_t *p) {
  for (;;) {
    struct pollfd pfd[2];
    stream_t *of[2];
    nfds_t n = 0;
    for (int i = 0; i < 2; i++) {
      if (s[i].fd >= 0) {
        pfd[n] = (struct pollfd){.fd = s[i].fd, .events = POLLIN};
        of[n++] = &s[i];
      }
    }
    if (p->reaped && n == 0)
      return 0;
    if (p->reaped &&
        j->c->host->clock_monotonic_ns() - p->t_reaped_ns >= TF_DRAIN_NS) {
      tf_log(j, ATR_LOG_WARN, cmd->stage,
             "terraform exited but a process it started still holds its "
             "output open; not waiting for it");
      return 0;
    }
    int r = poll(pfd, n, n == 0 ? 10 : TF_TICK_MS);
    if (r < 0 && errno != EINTR)
      return ATR_EIO;
    for (nfds_t i = 0; r > 0 && i < n; i++) {
      if (pfd[i].revents == 0)
        continue;
      int rc = read_stream(j, cmd, of[i]);
      if (rc != 0)
        return rc;
    }
    if (!p->reaped)
      reap(j->c, p);
    if (!p->reaped)
      signal_if_canceled(j, cmd, p);
  }
}

/* Through the host (ABI 1.2) for a job: it records the process group so
 * that a server that dies mid-job kills it at its next start, and runs the
 * child as the build user. Returns an errno value like posix_spawn. */
static int host_spawn(tf_job_t *j, char **argv, int out[2], int errp[2],
                      pid_t *pid) {
  atr_spawn_t spec = {.struct_size = sizeof spec,
                      .path = j->c->path,
                      .argv = argv,
                      .envp = j->envp,
                      .cwd = j->workdir,
                      .fd_in = -1,
                      .fd_out = out[1],
                      .fd_err = errp[1]};
  int child = 0;
  int rc = j->c->host->job_spawn(j->c->h, j->job, &spec, &child);
  *pid = child;
  switch (rc) {
  case 0:
    return 0;
  case ATR_ENOTSUP:
    return ENOTSUP;
  case ATR_ENOMEM:
    return ENOMEM;
  case ATR_EACCES:
    return EACCES;
  default:
    return EIO;
  }
}

static int spawn(tf_job_t *j, const tf_cmd_t *cmd, int out[2], int errp[2],
                 pid_t *pid) {
  size_t nargs = 0;
  while (cmd->args[nargs] != NULL)
    nargs++;
  char **argv = calloc(nargs + 2, sizeof *argv);
  if (argv == NULL)
    return ENOMEM;
  argv[0] = j->c->path;
  for (size_t i = 0; i < nargs; i++)
    argv[i + 1] = (char *)cmd->args[i];
  if (j->job != NULL && ATR_HOST_HAS(j->c->host, job_spawn)) {
    int e = host_spawn(j, argv, out, errp, pid);
    if (e != ENOTSUP) { /* ENOTSUP: this host runs no jobs itself */
      free(argv);
      return e;
    }
  }

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, errp[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  if (j->workdir != NULL)
    posix_spawn_file_actions_addchdir_np(&fa, j->workdir);
  sigset_t none, dfl;
  sigemptyset(&none);
  sigemptyset(&dfl);
  int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGCHLD};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
    sigaddset(&dfl, sigs[i]);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
                                      POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &dfl);
  int e = posix_spawn(pid, j->c->path, &fa, &attr, argv, j->envp);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  free(argv);
  return e;
}

static void close_pair(int fd[2]) {
  for (int i = 0; i < 2; i++) {
    if (fd[i] >= 0)
      close(fd[i]);
    fd[i] = -1;
  }
}

/* Start the child; on success the read ends are in s[], non-blocking. */
static int start(tf_job_t *j, const tf_cmd_t *cmd, stream_t s[2], pid_t *pid,
                 char **err) {
  int out[2] = {-1, -1}, errp[2] = {-1, -1};
  int e = 0;
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0)
    e = errno;
  else
    e = spawn(j, cmd, out, errp, pid);
  if (e != 0) {
    close_pair(out);
    close_pair(errp);
    return tf_failf(err, e == ENOMEM ? ATR_ENOMEM : ATR_EIO,
                    "cannot run %s in %s: %s; check the binary option and "
                    "that the directory exists",
                    j->c->path, j->workdir ? j->workdir : ".", strerror(e));
  }
  close(out[1]);
  close(errp[1]);
  s[0].fd = out[0];
  s[1].fd = errp[0];
  for (int i = 0; i < 2; i++)
    fcntl(s[i].fd, F_SETFL, fcntl(s[i].fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

static void reset_job(tf_job_t *j) {
  free(j->first_error);
  free(j->first_stderr);
  j->first_error = j->first_stderr = NULL;
  j->first_stderr_error = false;
}

int tf_run(tf_job_t *j, const tf_cmd_t *cmd, int *status, char **err) {
  reset_job(j);
  if (tf_job_canceled(j))
    return ATR_ECANCELED;
  char *line = tf_cmd_line(cmd);
  if (line != NULL)
    tf_logf(j, ATR_LOG_DEBUG, cmd->stage, "$ %s", line);
  free(line);

  stream_t s[2] = {{.fd = -1, .level = ATR_LOG_WARN},
                   {.fd = -1, .is_stderr = true, .level = ATR_LOG_WARN}};
  proc_t p = {0};
  int rc = start(j, cmd, s, &p.pid, err);
  if (rc != 0)
    return rc;
  rc = wait_loop(j, cmd, s, &p);
  for (int i = 0; i < 2; i++) {
    if (s[i].fd >= 0)
      close(s[i].fd);
    tf_buf_free(&s[i].line);
  }
  if (!p.reaped) { /* only after an error of our own: do not leave it */
    kill(-p.pid, SIGKILL);
    while (waitpid(p.pid, &p.wstatus, 0) < 0 && errno == EINTR)
      ;
  }
  if (rc != 0)
    return tf_failf(err, rc, "reading the output of terraform %s: %s",
                    cmd->args[0], atr_strerror(rc));
  *status = WIFEXITED(p.wstatus)     ? WEXITSTATUS(p.wstatus)
            : WIFSIGNALED(p.wstatus) ? 128 + WTERMSIG(p.wstatus)
                                     : 1;
  return p.sent_int ? ATR_ECANCELED : 0;
}
