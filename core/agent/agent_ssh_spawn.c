/* core/agent/agent_ssh_spawn.c — a session's process: its environment,
 * its shell, its pty or pipes, and the registry of the children the SSH
 * server waits for itself (agent_ssh_own_pid). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/pidfd.h>
#include <time.h>
#include <unistd.h>

#include "agent_ssh_internal.h"
#include "agent_util.h"

extern char **environ;

#define DEFAULT_PATH                                                           \
  "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* The children a connection thread waits for with waitpid(pid): the
 * --init reaper (agent_init.c) leaves them alone. */
static pthread_mutex_t pids_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t *pids; /* pids_lock */
static size_t npids, pids_cap;

bool agent_ssh_own_pid(int pid) {
  pthread_mutex_lock(&pids_lock);
  bool found = false;
  for (size_t i = 0; i < npids && !found; i++)
    found = pids[i] == pid;
  pthread_mutex_unlock(&pids_lock);
  return found;
}

void ssh_spawn_forget(pid_t pid) {
  pthread_mutex_lock(&pids_lock);
  for (size_t i = 0; i < npids; i++)
    if (pids[i] == pid) {
      pids[i] = pids[--npids];
      break;
    }
  if (npids == 0) {
    free(pids);
    pids = NULL;
    pids_cap = 0;
  }
  pthread_mutex_unlock(&pids_lock);
}

int64_t ssh_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* NAME=value strings, a later NAME replacing an earlier one. */
typedef struct envv {
  char **v;
  size_t n, cap;
  bool oom;
} envv_t;

static void env_put(envv_t *e, const char *kv) {
  if (e->oom)
    return;
  size_t nlen = strcspn(kv, "=");
  char *copy = strdup(kv);
  if (!copy) {
    e->oom = true;
    return;
  }
  for (size_t i = 0; i < e->n; i++)
    if (strncmp(e->v[i], kv, nlen + 1) == 0) {
      free(e->v[i]);
      e->v[i] = copy;
      return;
    }
  if (e->n + 1 >= e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 64;
    char **v = realloc(e->v, cap * sizeof *v);
    if (!v) {
      free(copy);
      e->oom = true;
      return;
    }
    e->v = v;
    e->cap = cap;
  }
  e->v[e->n++] = copy;
  e->v[e->n] = NULL;
}

static void env_set(envv_t *e, const char *name, const char *value) {
  char *kv = NULL;
  if (asprintf(&kv, "%s=%s", name, value) < 0) {
    e->oom = true;
    return;
  }
  env_put(e, kv);
  free(kv);
}

static void env_free(envv_t *e) {
  for (size_t i = 0; i < e->n; i++)
    free(e->v[i]);
  free(e->v);
}

/* Who the agent runs as. An image without /etc/passwd (busybox) has no
 * entry: then $HOME, $USER and /bin/sh. */
typedef struct user_info {
  char name[256], home[PATH_MAX], shell[PATH_MAX];
  bool in_passwd;
} user_info_t;

static void user_info(const agent_ssh_t *s, user_info_t *u) {
  struct passwd pw, *res = NULL;
  char buf[16384];
  if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) != 0)
    res = NULL;
  u->in_passwd = res != NULL;
  const char *home = getenv("HOME");
  if (!home || !*home)
    home = res && res->pw_dir && *res->pw_dir ? res->pw_dir : "/";
  const char *name = res ? res->pw_name : getenv("USER");
  snprintf(u->home, sizeof u->home, "%s", home);
  if (name && *name)
    snprintf(u->name, sizeof u->name, "%s", name);
  else if (getuid() == 0)
    snprintf(u->name, sizeof u->name, "root");
  else
    snprintf(u->name, sizeof u->name, "u%u", (unsigned)getuid());
  char *shell = agent_user_shell(s->shell);
  snprintf(u->shell, sizeof u->shell, "%s", shell ? shell : "/bin/sh");
  free(shell);
}

static void build_env(const agent_ssh_t *s, const ssh_spawn_t *sp,
                      const user_info_t *u, envv_t *e) {
  /* The agent's environment (its token already removed at start), as
   * Coder's agent does, so sessions see what the workload sees. */
  for (char **p = environ; p && *p; p++)
    if (strchr(*p, '=') && strncmp(*p, "ATRIUM_AGENT_TOKEN=", 19) != 0)
      env_put(e, *p);
  env_set(e, "HOME", u->home);
  env_set(e, "USER", u->name);
  env_set(e, "LOGNAME", u->name);
  env_set(e, "SHELL", u->shell);
  if (!getenv("PATH"))
    env_set(e, "PATH", DEFAULT_PATH);
  for (char **p = s->env; *p; p++)
    env_put(e, *p);
  for (const char *const *p = sp->client_env; p && *p; p++)
    env_put(e, *p);
  if (sp->term)
    env_set(e, "TERM", sp->term);
  if (sp->tty_name)
    env_set(e, "SSH_TTY", sp->tty_name);
}

static const char *base_name(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash ? slash + 1 : path;
}

/* "~" and "~/x" in the manifest's directory are the home's. */
static char *start_dir(const agent_ssh_t *s, const user_info_t *u) {
  const char *d = s->directory;
  char *out = NULL;
  if (!d || !*d || strcmp(d, "~") == 0)
    out = strdup(u->home);
  else if (strncmp(d, "~/", 2) == 0) {
    if (asprintf(&out, "%s/%s", u->home, d + 2) < 0)
      out = NULL;
  } else {
    out = strdup(d);
  }
  return out;
}

static void close_fd(int *fd) {
  if (*fd >= 0)
    close(*fd);
  *fd = -1;
}

static int set_nonblocking(int fd) {
  int fl = fcntl(fd, F_GETFL);
  return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Between fork and exec only async-signal-safe calls: everything the
 * child needs was made before the fork. */
typedef struct child_plan {
  const char *path, *dir;
  char *const *argv, *const *envp;
  const char *chdir_msg, *exec_msg;
  int pty_slave;
  int fds[3]; /* stdin, stdout, stderr when there is no pty */
  int nss[2]; /* passwd and group for nss_wrapper, or -1: fds 3 and 4 */
} child_plan_t;

static void write_all(int fd, const char *msg) {
  size_t len = strlen(msg);
  while (len > 0) {
    ssize_t n = write(fd, msg, len);
    if (n <= 0)
      return;
    msg += n;
    len -= (size_t)n;
  }
}

static _Noreturn void child_exec(const child_plan_t *p) {
  /* The agent ignores SIGPIPE and its threads may block signals: both
   * would be inherited through exec. */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; sig++)
    if (sig != SIGKILL && sig != SIGSTOP)
      sigaction(sig, &dfl, NULL);
  setsid(); /* its own session: the pty's, and one SIGHUP reaches it all */
  if (p->pty_slave >= 0) {
    if (ioctl(p->pty_slave, TIOCSCTTY, 0) < 0)
      _exit(126);
    for (int i = 0; i < 3; i++)
      if (dup2(p->pty_slave, i) < 0)
        _exit(126);
  } else {
    for (int i = 0; i < 3; i++)
      if (dup2(p->fds[i], i) < 0)
        _exit(126);
  }
  int keep = 3;
  for (int i = 0; i < 2; i++)
    if (p->nss[i] >= 0 && dup2(p->nss[i], keep++) < 0)
      _exit(126);
  /* Everything else the agent has open (other sessions' sockets too). */
  close_range((unsigned)keep, ~0U, 0);
  if (chdir(p->dir) != 0) {
    write_all(2, p->chdir_msg);
    if (chdir("/") != 0)
      _exit(126);
  }
  execve(p->path, p->argv, p->envp);
  write_all(2, p->exec_msg);
  _exit(127);
}

static pid_t fork_child(const child_plan_t *plan) {
  pthread_mutex_lock(&pids_lock);
  if (npids == pids_cap) {
    size_t cap = pids_cap ? pids_cap * 2 : 16;
    pid_t *v = realloc(pids, cap * sizeof *v);
    if (!v) {
      pthread_mutex_unlock(&pids_lock);
      return -1;
    }
    pids = v;
    pids_cap = cap;
  }
  /* Registered before the lock is released, so the --init reaper never
   * sees this child unregistered, even when it exits at once. */
  pid_t pid = fork();
  if (pid == 0)
    child_exec(plan);
  if (pid > 0)
    pids[npids++] = pid;
  pthread_mutex_unlock(&pids_lock);
  return pid;
}

/* sftp-server exits at once when its uid has no passwd entry ("No user
 * found for uid"), which images without /etc/passwd (busybox) cause. The
 * bundle's launcher then preloads nss_wrapper, which reads these two
 * in-memory files (the child's fds 3 and 4) instead. */
static int memfd_with(const char *name, const char *text) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  size_t len = strlen(text);
  if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  /* Above the fds the child is given (0-4), so no dup2 clobbers it. */
  int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);
  close(fd);
  return high;
}

static bool safe_field(const char *s) {
  return *s && !strpbrk(s, ":\n");
}

static int nss_files(const user_info_t *u, envv_t *env, int nss[2]) {
  char *pw = NULL, *gr = NULL;
  const char *name = safe_field(u->name) ? u->name : "user";
  const char *home = safe_field(u->home) ? u->home : "/";
  unsigned uid = (unsigned)getuid(), gid = (unsigned)getgid();
  if (asprintf(&pw, "%s:x:%u:%u:%s:%s:/bin/sh\n", name, uid, gid, name, home) <
      0)
    pw = NULL;
  if (asprintf(&gr, "%s:x:%u:\n", name, gid) < 0)
    gr = NULL;
  nss[0] = pw ? memfd_with("atrium-passwd", pw) : -1;
  nss[1] = gr ? memfd_with("atrium-group", gr) : -1;
  free(pw);
  free(gr);
  if (nss[0] < 0 || nss[1] < 0)
    return -1;
  env_set(env, "NSS_WRAPPER_PASSWD", "/proc/self/fd/3");
  env_set(env, "NSS_WRAPPER_GROUP", "/proc/self/fd/4");
  return 0;
}

int ssh_spawn_start(const agent_ssh_t *s, const ssh_spawn_t *sp,
                    ssh_child_t *child) {
  *child =
      (ssh_child_t){.pid = -1, .pidfd = -1, .in = -1, .out = -1, .err = -1};
  user_info_t u;
  user_info(s, &u);
  envv_t env = {0};
  build_env(s, sp, &u, &env);
  char *dir = start_dir(s, &u);
  const char *path = sp->program ? sp->program : u.shell;
  char *argv0 = NULL;
  if (sp->program || sp->command)
    argv0 = strdup(base_name(path));
  else if (asprintf(&argv0, "-%s", base_name(path)) < 0) /* a login shell */
    argv0 = NULL;
  char *argv[4] = {argv0, NULL, NULL, NULL};
  if (!sp->program && sp->command) {
    argv[1] = "-c";
    argv[2] = (char *)sp->command;
  }
  char *chdir_msg = NULL, *exec_msg = NULL;
  int pipes[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  int nss[2] = {-1, -1};
  int rc = -1;
  if (sp->program && !u.in_passwd && s->sftp_nss &&
      nss_files(&u, &env, nss) < 0)
    goto out;
  if (env.oom || !dir || !argv0 ||
      asprintf(&chdir_msg, "atrium-agent: could not chdir to %s: using /\n",
               dir) < 0 ||
      asprintf(&exec_msg, "atrium-agent: could not run %s\n", path) < 0)
    goto out;
  if (sp->pty_slave < 0)
    for (int i = 0; i < 3; i++)
      if (pipe2(pipes[i], O_CLOEXEC) < 0)
        goto out;
  child_plan_t plan = {.path = path,
                       .dir = dir,
                       .argv = argv,
                       .envp = env.v,
                       .chdir_msg = chdir_msg,
                       .exec_msg = exec_msg,
                       .pty_slave = sp->pty_slave,
                       .fds = {pipes[0][0], pipes[1][1], pipes[2][1]},
                       .nss = {nss[0], nss[1]}};
  pid_t pid = fork_child(&plan);
  if (pid < 0)
    goto out;
  child->pid = pid;
  child->pidfd = pidfd_open(pid, 0); /* -1 before Linux 5.3: polled then */
  if (child->pidfd >= 0)
    (void)fcntl(child->pidfd, F_SETFD, FD_CLOEXEC);
  if (sp->pty_slave < 0) {
    child->in = pipes[0][1];
    child->out = pipes[1][0];
    child->err = pipes[2][0];
    pipes[0][1] = pipes[1][0] = pipes[2][0] = -1;
    set_nonblocking(child->in);
    set_nonblocking(child->out);
    set_nonblocking(child->err);
  }
  rc = 0;
out:
  close_fd(&nss[0]);
  close_fd(&nss[1]);
  for (int i = 0; i < 3; i++) {
    close_fd(&pipes[i][0]);
    close_fd(&pipes[i][1]);
  }
  free(chdir_msg);
  free(exec_msg);
  free(argv0);
  free(dir);
  env_free(&env);
  return rc;
}
