/* tests/integration/harness.c — see harness.h. */
#include "harness.h"

#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  abort();
}

static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0)
    die("cannot find a free port: %s", strerror(errno));
  close(fd);
  return ntohs(a.sin_port);
}

void atr_harness_write_config(atr_harness_t *h, const char *yaml) {
  FILE *f = fopen(h->config, "w");
  if (!f)
    die("cannot write %s", h->config);
  fputs(yaml ? yaml : "", f);
  fclose(f);
}

void atr_harness_init(atr_harness_t *h, const char *yaml) {
  memset(h, 0, sizeof *h);
  snprintf(h->dir, sizeof h->dir, "/tmp/atrium-test-XXXXXX");
  if (!mkdtemp(h->dir))
    die("mkdtemp: %s", strerror(errno));
  snprintf(h->config, sizeof h->config, "%s/atrium.yaml", h->dir);
  snprintf(h->log, sizeof h->log, "%s/server.log", h->dir);
  h->port = free_port();
  atr_harness_write_config(h, yaml);
}

double atr_harness_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void atr_harness_sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void exec_atrium(const char *const *args, const char *const *env) {
  /* Tests read the log as text; one that wants JSON passes
   * ATRIUM_LOG_FORMAT=json (or auto) in env. */
  setenv("ATRIUM_LOG_FORMAT", "text", 0);
  for (const char *const *e = env; e && *e; e++)
    putenv((char *)*e);
  const char *argv[64] = {ATR_TEST_ATRIUM_BIN};
  int n = 1;
  for (const char *const *a = args; a && *a && n < 63; a++)
    argv[n++] = *a;
  argv[n] = NULL;
  execv(ATR_TEST_ATRIUM_BIN, (char *const *)argv);
  _exit(127);
}

/* Every server started, so that a test that fails half-way (cmocka jumps
 * out of it before its stop) still leaves no server running: at exit
 * the ones not reaped yet are killed. Only the test's main thread starts
 * and reaps servers. */
#define MAX_SERVERS 64
static pid_t started[MAX_SERVERS];

static void kill_leftovers(void) {
  for (size_t i = 0; i < MAX_SERVERS; i++)
    if (started[i] > 0 && waitpid(started[i], NULL, WNOHANG) == 0) {
      kill(started[i], SIGKILL);
      waitpid(started[i], NULL, 0);
    }
}

static void remember_server(pid_t pid) {
  static bool registered;
  if (!registered)
    registered = atexit(kill_leftovers) == 0;
  /* A slot is free once its process is gone and reaped (kill fails);
   * reaping here would steal an exit status a test still waits for. */
  for (size_t i = 0; i < MAX_SERVERS; i++)
    if (started[i] <= 0 || kill(started[i], 0) != 0) {
      started[i] = pid;
      return;
    }
}

/* Poll /readyz until it answers 200: the server listens and its database
 * answers. A server that exits meanwhile fails the test at once, with
 * its log; one that is not ready in time is killed. */
static void wait_ready(atr_harness_t *h) {
  double until = atr_harness_now_ms() + ATR_HARNESS_START_MS;
  atr_tc_res_t r = {0};
  for (;;) {
    atr_tc_res_free(&r);
    r = atr_tc_call(h->port,
                    &(atr_tc_req_t){.path = "/readyz", .timeout_ms = 2000});
    if (r.status == 200) {
      atr_tc_res_free(&r);
      return;
    }
    int st;
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
      h->pid = 0;
      atr_tc_res_free(&r);
      char *log = atr_harness_read_log(h);
      die("server exited during start-up:\n%s", log ? log : "");
    }
    if (atr_harness_now_ms() > until)
      break;
    atr_harness_sleep_ms(50);
  }
  kill(h->pid, SIGKILL); /* never leave a stray server behind */
  waitpid(h->pid, NULL, 0);
  h->pid = 0;
  atr_harness_print_log_tail(h, 30);
  die("server was not ready (GET /readyz) within %d ms; last answer %ld %s",
      ATR_HARNESS_START_MS, r.status, r.body ? r.body : "");
}

void atr_harness_start(atr_harness_t *h, const char *const *extra,
                       const char *const *env) {
  char addr[64];
  snprintf(addr, sizeof addr, "--http.address=127.0.0.1:%d", h->port);
  const char *args[48] = {"server", "--config", h->config, addr};
  int n = 4;
  for (const char *const *e = extra; e && *e && n < 47; e++)
    args[n++] = *e;
  args[n] = NULL;
  h->pid = fork();
  if (h->pid < 0)
    die("fork: %s", strerror(errno));
  if (h->pid > 0)
    remember_server(h->pid);
  if (h->pid == 0) {
    int fd = open(h->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd < 0 || chdir(h->dir) != 0)
      _exit(126);
    dup2(fd, 1);
    dup2(fd, 2);
    exec_atrium(args, env);
  }
  wait_ready(h);
}

int atr_harness_wait(atr_harness_t *h, int timeout_ms) {
  double until = atr_harness_now_ms() + timeout_ms;
  while (h->pid > 0) {
    int st;
    if (waitpid(h->pid, &st, WNOHANG) == h->pid) {
      h->pid = 0;
      return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    if (atr_harness_now_ms() > until) {
      kill(h->pid, SIGKILL);
      waitpid(h->pid, &st, 0);
      h->pid = 0;
      return -1;
    }
    atr_harness_sleep_ms(10);
  }
  return -1;
}

int atr_harness_stop(atr_harness_t *h, int timeout_ms) {
  if (h->pid > 0)
    kill(h->pid, SIGTERM);
  return atr_harness_wait(h, timeout_ms);
}

void atr_harness_cleanup(atr_harness_t *h) {
  if (h->pid > 0) {
    kill(h->pid, SIGKILL);
    waitpid(h->pid, NULL, 0);
    h->pid = 0;
  }
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", h->dir);
  if (h->dir[0] && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", h->dir);
}

static char *read_all(int fd) {
  size_t len = 0, cap = 4096;
  char *buf = malloc(cap);
  ssize_t n;
  while (buf && (n = read(fd, buf + len, cap - len - 1)) > 0) {
    len += (size_t)n;
    if (cap - len < 2) {
      char *grown = realloc(buf, cap *= 2);
      if (!grown)
        free(buf);
      buf = grown;
    }
  }
  if (buf)
    buf[len] = '\0';
  return buf;
}

int atr_run_cli(const char *const *args, const char *const *env,
                char **output) {
  int fds[2];
  if (pipe(fds) != 0)
    die("pipe: %s", strerror(errno));
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    exec_atrium(args, env);
  }
  close(fds[1]);
  *output = read_all(fds[0]);
  close(fds[0]);
  int st;
  waitpid(pid, &st, 0);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *atr_harness_read_log(const atr_harness_t *h) {
  int fd = open(h->log, O_RDONLY);
  if (fd < 0)
    return strdup("");
  char *s = read_all(fd);
  close(fd);
  return s;
}

int atr_harness_wait_log(const atr_harness_t *h, const char *needle,
                         int timeout_ms) {
  double until = atr_harness_now_ms() + timeout_ms;
  do {
    char *log = atr_harness_read_log(h);
    int found = log && strstr(log, needle) != NULL;
    free(log);
    if (found)
      return 1;
    atr_harness_sleep_ms(20);
  } while (atr_harness_now_ms() < until);
  return 0;
}

void atr_harness_print_log_tail(const atr_harness_t *h, int n) {
  char *log = atr_harness_read_log(h);
  const char *from = log ? log + strlen(log) : "";
  while (log && from > log && n >= 0)
    if (*--from == '\n')
      n--;
  fprintf(stderr, "server log (%s), last lines:\n%s\n", h->log, from);
  free(log);
}
