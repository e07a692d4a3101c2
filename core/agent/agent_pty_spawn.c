/* core/agent/agent_pty_spawn.c — a shell on a new PTY
 * (agent_pty_internal.h).
 *
 * libuv's uv_spawn cannot give the child a controlling terminal (it has
 * setsid, not TIOCSCTTY), and without one the line discipline sends no
 * SIGINT on Ctrl-C and shells turn job control off; so this forks itself.
 * Between fork and exec the child calls only async-signal-safe functions:
 * everything it needs (argv, envp, the directory) is made before. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pty.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "agent_pty_internal.h"

extern char **environ;

static size_t name_len(const char *kv) {
  const char *eq = strchr(kv, '=');
  return eq ? (size_t)(eq - kv) : strlen(kv);
}

/* Whether a later entry of all[0..n) sets the same name as all[i]. */
static bool replaced(const char *const *all, size_t n, size_t i) {
  size_t l = name_len(all[i]);
  for (size_t j = i + 1; j < n; j++)
    if (name_len(all[j]) == l && strncmp(all[j], all[i], l) == 0)
      return true;
  return false;
}

char **agent__pty_env(const char *const *extra) {
  size_t ne = 0, nx = 0;
  while (environ && environ[ne])
    ne++;
  while (extra && extra[nx])
    nx++;
  size_t n = ne + 1 + nx;
  const char **all = calloc(n, sizeof *all);
  char **out = calloc(n + 1, sizeof *out);
  if (!all || !out) {
    free(all);
    free(out);
    return NULL;
  }
  for (size_t i = 0; i < ne; i++)
    all[i] = environ[i];
  all[ne] = "TERM=xterm-256color";
  for (size_t i = 0; i < nx; i++)
    all[ne + 1 + i] = extra[i];
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    if (!strchr(all[i], '=') || replaced(all, n, i))
      continue;
    if (!(out[k++] = strdup(all[i]))) {
      free(all);
      agent__pty_env_free(out);
      return NULL;
    }
  }
  free(all);
  return out;
}

void agent__pty_env_free(char **envp) {
  for (size_t i = 0; envp && envp[i]; i++)
    free(envp[i]);
  free(envp);
}

static void say(const char *s) {
  ssize_t w = write(2, s, strlen(s));
  (void)w;
}

/* The child, between fork and exec: async-signal-safe calls only. */
static void child(int slave, const agent_pty_spawn_t *o, char *const *argv) {
  setsid();
  ioctl(slave, TIOCSCTTY, 0);
  dup2(slave, 0);
  dup2(slave, 1);
  dup2(slave, 2);
  /* The agent's sockets are not the shell's business, close-on-exec or not. */
  close_range(3, ~0U, 0);
  /* Dispositions the agent set (SIGPIPE ignored) survive exec; reset them,
   * and the mask fork was called under. */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    sigaction(sig, &sa, NULL);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (chdir(o->dir) != 0 && chdir("/") == 0)
    say("atrium-agent: cannot enter the working directory; in / instead\r\n");
  execve(o->shell, argv, o->envp);
  say("atrium-agent: cannot run the shell ");
  say(o->shell);
  say("\r\n");
  _exit(127);
}

int agent__pty_spawn(const agent_pty_spawn_t *o, int *master, int *pid) {
  struct winsize ws = {.ws_row = (unsigned short)o->height,
                       .ws_col = (unsigned short)o->width};
  int m, s;
  if (openpty(&m, &s, NULL, NULL, &ws) != 0)
    return -errno;
  fcntl(m, F_SETFD, FD_CLOEXEC);
  fcntl(s, F_SETFD, FD_CLOEXEC);
  /* A login shell's argv[0] starts with '-', as sshd and login do. */
  const char *base = strrchr(o->shell, '/') + 1;
  size_t blen = strlen(base);
  char *login = malloc(blen + 2);
  if (!login) {
    close(m);
    close(s);
    return -ENOMEM;
  }
  login[0] = '-';
  memcpy(login + 1, base, blen + 1);
  char *argv[] = {o->command ? (char *)o->shell : login,
                  o->command ? "-c" : NULL, (char *)o->command, NULL};
  /* No signal may run the agent's handlers in the child before exec. */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t p = fork();
  if (p == 0)
    child(s, o, argv);
  int e = errno;
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  free(login);
  close(s);
  if (p < 0) {
    close(m);
    return -e;
  }
  *master = m;
  *pid = (int)p;
  return 0;
}
