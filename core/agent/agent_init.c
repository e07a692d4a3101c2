/* core/agent/agent_init.c — `--init`: the agent as a container's PID 1.
 *
 * It starts the workload (the image's command), forwards SIGHUP to it at
 * any time and SIGTERM/SIGINT once the agent has shut down, reaps every
 * orphan that is reparented to it (as PID 1, or as a child subreaper when
 * it is not PID 1, so tests see the same), and exits with the workload's
 * status: 128 + the signal when a signal ended it. */
#include <ctype.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_internal.h"
#include "agent_pty.h"
#include "agent_ssh.h"
#include "log.h"

#define WORKLOAD_GRACE_MS 10000

struct agent_init {
  agent_t *a;
  uv_process_t proc;
  uv_signal_t chld;
  uv_timer_t grace;
  bool started, exited, closed;
  int pid, status;
  int closing;
  void (*done)(agent_t *a, int status);
};

/* Whether /proc/<pid>/stat says a zombie whose parent is us. */
static bool our_zombie(const char *proc, int pid, int self) {
  char path[64], buf[512];
  snprintf(path, sizeof path, "%s/%d/stat", proc, pid);
  FILE *f = fopen(path, "re");
  if (!f)
    return false;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *rp = strrchr(buf, ')');
  char state;
  int ppid;
  return rp && sscanf(rp + 1, " %c %d", &state, &ppid) == 2 && state == 'Z' &&
         ppid == self;
}

/* Reap orphans: every zombie child that libuv does not own (the workload
 * and the scripts are libuv's to reap, for their exit callbacks), nor
 * agent_pty's (the terminals' shells, which it forks and reaps itself),
 * nor those the SSH server waits for itself (its sessions' exit
 * statuses). */
static void reap_orphans(agent_init_t *in) {
  DIR *d = opendir(in->a->cfg.proc_dir);
  if (!d)
    return;
  int self = (int)getpid();
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!isdigit((unsigned char)e->d_name[0]))
      continue;
    int pid = atoi(e->d_name);
    if ((in->started && !in->exited && pid == in->pid) ||
        agent_scripts_own_pid(pid) || agent_pty_own_pid(pid) ||
        agent_ssh_own_pid(pid))
      continue;
    if (our_zombie(in->a->cfg.proc_dir, pid, self))
      waitpid(pid, NULL, WNOHANG);
  }
  closedir(d);
}

static void on_chld(uv_signal_t *h, int sig) {
  (void)sig;
  reap_orphans(h->data);
}

static void on_closed(uv_handle_t *h) {
  agent_init_t *in = h->data;
  if (--in->closing == 0 && in->done)
    in->done(in->a, in->status);
}

static void close_handles(agent_init_t *in) {
  if (in->closed)
    return;
  in->closed = true;
  uv_handle_t *hs[] = {(uv_handle_t *)&in->proc, (uv_handle_t *)&in->chld,
                       (uv_handle_t *)&in->grace};
  in->closing = in->started ? 3 : 2;
  for (size_t i = in->started ? 0 : 1; i < 3; i++) {
    hs[i]->data = in;
    uv_close(hs[i], on_closed);
  }
}

static void on_workload_exit(uv_process_t *p, int64_t status, int sig) {
  agent_init_t *in = p->data;
  in->exited = true;
  in->status = sig ? 128 + sig : (int)status;
  atr_log(ATR_LOG_INFO, "agent", "the workload exited (status %d)", in->status);
  uv_timer_stop(&in->grace);
  if (in->done) {
    close_handles(in);
    return;
  }
  in->a->exit_wanted = true;
  agent_shutdown(in->a, "the workload exited");
}

static int spawn_workload(agent_init_t *in, char **argv) {
  uv_stdio_container_t stdio[3] = {{.flags = UV_INHERIT_FD, .data.fd = 0},
                                   {.flags = UV_INHERIT_FD, .data.fd = 1},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t po = {.exit_cb = on_workload_exit,
                             .file = argv[0],
                             .args = argv,
                             .stdio_count = 3,
                             .stdio = stdio};
  in->proc.data = in;
  int rc = uv_spawn(in->a->loop, &in->proc, &po);
  if (rc != 0) {
    atr_log(ATR_LOG_ERROR, "agent", "cannot start the workload %s: %s", argv[0],
            uv_strerror(rc));
    uv_close((uv_handle_t *)&in->proc, NULL);
    return rc;
  }
  in->started = true;
  in->pid = in->proc.pid;
  return 0;
}

agent_init_t *agent_init_start(agent_t *a, char **argv) {
  agent_init_t *in = calloc(1, sizeof *in);
  if (!in)
    return NULL;
  in->a = a;
  a->init = in; /* freed with the agent, after the loop closed it */
  if (getpid() != 1)
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  uv_signal_init(a->loop, &in->chld);
  uv_timer_init(a->loop, &in->grace);
  in->chld.data = in->grace.data = in;
  uv_signal_start(&in->chld, on_chld, SIGCHLD);
  if (argv[0] && spawn_workload(in, argv) != 0) {
    in->done = NULL;
    close_handles(in);
    return NULL;
  }
  return in;
}

void agent_init_signal(agent_init_t *in, int sig) {
  if (in->started && !in->exited)
    kill(in->pid, sig);
}

static void on_grace(uv_timer_t *t) {
  agent_init_t *in = t->data;
  agent_init_signal(in, SIGKILL);
}

void agent_init_finish(agent_init_t *in, void (*done)(agent_t *a, int st)) {
  in->done = done;
  if (!in->started || in->exited) {
    close_handles(in);
    return;
  }
  agent_init_signal(in, SIGTERM);
  uv_timer_start(&in->grace, on_grace, WORKLOAD_GRACE_MS, 0);
}

void agent_init_free(agent_init_t *in) {
  free(in);
}
