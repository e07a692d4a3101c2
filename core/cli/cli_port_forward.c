/* core/cli/cli_port_forward.c — `atrium port-forward WORKSPACE --tcp
 * [ADDR:]LOCAL:REMOTE...` (cli_connect.h).
 *
 * The main thread listens on every LOCAL and accepts; each connection gets
 * a thread that opens its own tunnel (kind tcp, port REMOTE) and pumps
 * both ways with half-close (atr__tunnel_pump). Threads rather than an
 * event loop: the tunnel's TLS goes through libcurl's blocking calls, a
 * forward carries few connections, and the bound (ATR__FORWARD_MAX_CONNS)
 * keeps their number small; one more is accepted and closed at once, with
 * a message. SIGINT or SIGTERM stops listening, ends the pumps within
 * 200 ms and exits 0. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli_connect.h"
#include "cli_tunnel.h"

static const atr__cli_command_t forward_cmd = {
    NULL,
    "port-forward",
    NULL,
    0,
    1,
    1,
    "  atrium port-forward WORKSPACE --tcp [ADDR:]LOCAL:REMOTE...\n"
    "      Forward connections to LOCAL (on ADDR, default 127.0.0.1; 0 for\n"
    "      any free port) to port REMOTE inside the workspace, through the\n"
    "      server, until Ctrl-C. --tcp may be given several times.\n"};

static const atr__cli_commands_t forward_set = {
    .list = &forward_cmd, .n = 1, .footer = "", .group_footer = ""};

/* ---- --tcp ---------------------------------------------------------------- */

static int parse_port(const char *s, size_t len, int min, int *port) {
  if (len == 0 || len > 5)
    return -1;
  int v = 0;
  for (size_t i = 0; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  if (v < min || v > 65535)
    return -1;
  *port = v;
  return 0;
}

static int valid_addr(const char *a) {
  unsigned char b[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, a, b) == 1 || inet_pton(AF_INET6, a, b) == 1;
}

int atr__forward_parse(const char *spec, atr__forward_t *f, char *err,
                       size_t err_size) {
  memset(f, 0, sizeof *f);
  const char *last = strrchr(spec, ':');
  const char *why = NULL;
  const char *local = spec, *addr = NULL;
  size_t addr_len = 0;
  if (!last)
    why = "use [ADDR:]LOCAL:REMOTE, e.g. --tcp 8080:80";
  else if (parse_port(last + 1, strlen(last + 1), 1, &f->remote_port) != 0)
    why = "REMOTE is a port from 1 to 65535";
  if (!why && spec[0] == '[') {
    const char *close = strchr(spec, ']');
    if (!close || close[1] != ':' || close + 1 >= last)
      why = "an IPv6 ADDR is written [ADDR]:LOCAL:REMOTE";
    else
      addr = spec + 1, addr_len = (size_t)(close - spec - 1), local = close + 2;
  } else if (!why) {
    const char *colon = memchr(spec, ':', (size_t)(last - spec));
    if (colon && memchr(colon + 1, ':', (size_t)(last - colon - 1)))
      why = "an IPv6 ADDR is written [ADDR]:LOCAL:REMOTE";
    else if (colon)
      addr = spec, addr_len = (size_t)(colon - spec), local = colon + 1;
  }
  if (!why && parse_port(local, (size_t)(last - local), 0, &f->local_port))
    why = "LOCAL is a port from 0 (any free one) to 65535";
  if (!why && addr && (addr_len == 0 || addr_len >= sizeof f->addr))
    why = "ADDR is an IP address";
  if (!why) {
    snprintf(f->addr, sizeof f->addr, "%.*s", (int)(addr ? addr_len : 9),
             addr ? addr : "127.0.0.1");
    if (strcmp(f->addr, "localhost") == 0)
      snprintf(f->addr, sizeof f->addr, "127.0.0.1");
    if (!valid_addr(f->addr))
      why = "ADDR is an IP address (127.0.0.1, ::1, 0.0.0.0)";
  }
  if (why)
    snprintf(err, err_size, "--tcp %.100s: %s", spec, why);
  return why ? -1 : 0;
}

/* ---- listening ------------------------------------------------------------ */

static volatile sig_atomic_t stopping;
static volatile int stop_pumps;
static atomic_int open_conns;

static void on_stop(int sig) {
  (void)sig;
  stopping = 1;
}

static int listen_on(const atr__forward_t *f, char *shown, size_t size) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  socklen_t len;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
  if (inet_pton(AF_INET, f->addr, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons((uint16_t)f->local_port);
    len = sizeof *v4;
  } else {
    inet_pton(AF_INET6, f->addr, &v6->sin6_addr);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons((uint16_t)f->local_port);
    len = sizeof *v6;
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0 ||
      getsockname(fd, (struct sockaddr *)&ss, &len) != 0) {
    int e = errno;
    if (fd >= 0)
      close(fd);
    errno = e;
    return -1;
  }
  int port = ntohs(ss.ss_family == AF_INET ? v4->sin_port : v6->sin6_port);
  snprintf(shown, size, ss.ss_family == AF_INET ? "%s:%d" : "[%s]:%d", f->addr,
           port);
  return fd;
}

/* ---- one connection ------------------------------------------------------- */

typedef struct conn {
  const atr__tunnel_target_t *t;
  int fd, remote_port;
} conn_t;

static void *conn_run(void *arg) {
  conn_t *c = arg;
  int tunnel = -1;
  if (atr__tunnel_open(c->t, "atrium port-forward", "tcp", c->remote_port,
                       &tunnel) == 0) {
    atr__tunnel_pump(c->fd, tunnel, &stop_pumps);
    atr__tunnel_close(tunnel);
  }
  close(c->fd);
  free(c);
  atomic_fetch_sub(&open_conns, 1);
  return NULL;
}

static void start_conn(const atr__tunnel_target_t *t, int fd, int remote) {
  if (atomic_load(&open_conns) >= ATR__FORWARD_MAX_CONNS) {
    fprintf(stderr,
            "atrium port-forward: %d connections are open already; closed "
            "a new one\n",
            ATR__FORWARD_MAX_CONNS);
    close(fd);
    return;
  }
  conn_t *c = malloc(sizeof *c);
  pthread_t th;
  pthread_attr_t attr;
  if (!c) {
    close(fd);
    return;
  }
  *c = (conn_t){.t = t, .fd = fd, .remote_port = remote};
  atomic_fetch_add(&open_conns, 1);
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, (size_t)256 * 1024);
  if (pthread_create(&th, &attr, conn_run, c) != 0) {
    atomic_fetch_sub(&open_conns, 1);
    close(fd);
    free(c);
  }
  pthread_attr_destroy(&attr);
}

static void accept_loop(const atr__tunnel_target_t *t, const int *fds,
                        const atr__forward_t *fw, int n) {
  struct pollfd p[ATR__FORWARD_MAX];
  for (int i = 0; i < n; i++)
    p[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
  while (!stopping) {
    if (poll(p, (nfds_t)n, 500) <= 0)
      continue;
    for (int i = 0; i < n; i++) {
      if (!(p[i].revents & POLLIN))
        continue;
      int fd = accept4(fds[i], NULL, NULL, SOCK_CLOEXEC);
      if (fd >= 0)
        start_conn(t, fd, fw[i].remote_port);
    }
  }
}

/* Until the connections' threads ended, at most 2 s. */
static void wait_conns(void) {
  stop_pumps = 1;
  for (int i = 0; i < 200 && atomic_load(&open_conns) > 0; i++) {
    struct timespec ts = {0, 10L * 1000 * 1000};
    nanosleep(&ts, NULL);
  }
}

static int forward(atr__cli_t *cli, const char *ref, atr__forward_t *fw,
                   int n) {
  atr__tunnel_target_t t;
  int fds[ATR__FORWARD_MAX], opened = 0, rc = atr__tunnel_resolve(cli, ref, &t);
  char shown[128];
  for (int i = 0; rc == 0 && i < n; i++, opened++) {
    fds[i] = listen_on(&fw[i], shown, sizeof shown);
    if (fds[i] < 0) {
      fprintf(stderr, "%s: cannot listen on %s:%d (--tcp): %s\n", cli->what,
              fw[i].addr, fw[i].local_port, strerror(errno));
      rc = 1;
      break;
    }
    printf("Forwarding %s -> %s/%s port %d\n", shown, t.owner, t.workspace,
           fw[i].remote_port);
  }
  if (rc == 0) {
    fflush(stdout);
    accept_loop(&t, fds, fw, n);
  }
  for (int i = 0; i < opened; i++)
    close(fds[i]);
  if (rc == 0)
    wait_conns();
  /* A thread still open after the wait reads t: leave it to exit(). */
  if (atomic_load(&open_conns) == 0)
    atr__tunnel_target_clear(&t);
  return rc;
}

int atr_cli_port_forward(const char *name, int argc, char **argv) {
  (void)name;
  atr__cli_t cli = {.cmd = &forward_cmd, .set = &forward_set};
  snprintf(cli.what, sizeof cli.what, "atrium port-forward");
  static const struct option opts[] = {{"tcp", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  atr__forward_t fw[ATR__FORWARD_MAX];
  int n = 0, c;
  char err[256];
  optind = 0;
  opterr = 0;
  while ((c = getopt_long(argc + 1, argv - 1, "h", opts, NULL)) != -1) {
    if (c == 'h')
      return printf("usage:\n%s", forward_cmd.usage) < 0 ? 1 : 0;
    if (c == ':' || (c == '?' && optopt == 't'))
      return atr__cli_usage_error(&cli, "%s", "--tcp needs a value");
    if (c != 't')
      return atr__cli_usage_error(&cli, "unknown flag %s", argv[optind - 2]);
    if (n >= ATR__FORWARD_MAX)
      return atr__cli_usage_error(&cli, "%s", "too many --tcp flags");
    if (atr__forward_parse(optarg, &fw[n++], err, sizeof err) != 0)
      return atr__cli_usage_error(&cli, "%s", err);
  }
  int nargs = argc + 1 - optind;
  if (nargs != 1)
    return atr__cli_usage_error(&cli, "%s",
                                nargs ? "one WORKSPACE only"
                                      : "missing argument WORKSPACE");
  if (n == 0)
    return atr__cli_usage_error(&cli, "%s", "give at least one --tcp");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  struct sigaction sa = {.sa_handler = on_stop};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  int rc = forward(&cli, argv[optind - 1], fw, n);
  atr_client_free(cli.client);
  return rc;
}
