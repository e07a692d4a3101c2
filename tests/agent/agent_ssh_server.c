/* tests/agent/agent_ssh_server.c — the agent's SSH server (agent_ssh.h) on
 * a loopback port, for agent_ssh.py to drive with OpenSSH's clients.
 *
 * usage: agent_ssh_server [--host-key FILE] [--directory DIR]
 *                         [--shell PATH] [--sftp-server PATH] [--env K=V]...
 * Listens on 127.0.0.1:0 and prints "port N" once it does; every accepted
 * connection goes to agent_ssh_serve. SIGUSR1 prints "connections N"
 * (agent_ssh_connections); SIGTERM or SIGINT end it through agent_ssh_free
 * and exit 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent_ssh.h"

static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char *buf = calloc(1, 65536);
  size_t n = buf ? fread(buf, 1, 65535, f) : 0;
  fclose(f);
  if (buf && n == 0) {
    free(buf);
    buf = NULL;
  }
  return buf;
}

static int listen_loopback(int *port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sin = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sin;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
      listen(fd, 64) < 0 ||
      getsockname(fd, (struct sockaddr *)&sin, &len) < 0) {
    perror("listen");
    return -1;
  }
  *port = ntohs(sin.sin_port);
  return fd;
}

int main(int argc, char **argv) {
  agent_ssh_config_t cfg = {0};
  const char *env[65] = {0};
  int nenv = 0;
  char *key = NULL;
  for (int i = 1; i + 1 < argc; i += 2) {
    const char *opt = argv[i], *val = argv[i + 1];
    if (strcmp(opt, "--host-key") == 0) {
      if (!(key = read_file(val))) {
        fprintf(stderr, "cannot read %s\n", val);
        return 2;
      }
    } else if (strcmp(opt, "--directory") == 0) {
      cfg.directory = val;
    } else if (strcmp(opt, "--shell") == 0) {
      cfg.shell = val;
    } else if (strcmp(opt, "--sftp-server") == 0) {
      cfg.sftp_server = val;
    } else if (strcmp(opt, "--env") == 0 && nenv < 64) {
      env[nenv++] = val;
    } else {
      fprintf(stderr, "unknown option %s\n", opt);
      return 2;
    }
  }
  cfg.host_key = key;
  cfg.env = env;
  /* As the agent: a child gone must be an EPIPE, not the end of us. */
  signal(SIGPIPE, SIG_IGN);
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGUSR1);
  /* Blocked before any thread starts, so only the signalfd sees them. */
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  char *err = NULL;
  agent_ssh_t *s = agent_ssh_new(&cfg, &err);
  free(key);
  if (!s) {
    fprintf(stderr, "agent_ssh_new: %s\n", err);
    free(err);
    return 1;
  }
  int port = 0;
  int lfd = listen_loopback(&port);
  if (lfd < 0 || sfd < 0)
    return 1;
  printf("port %d\n", port);
  fflush(stdout);
  for (;;) {
    struct pollfd p[2] = {{.fd = lfd, .events = POLLIN},
                          {.fd = sfd, .events = POLLIN}};
    if (poll(p, 2, -1) < 0 && errno != EINTR)
      break;
    if (p[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) != sizeof si)
        break;
      if (si.ssi_signo != SIGUSR1)
        break;
      printf("connections %d\n", agent_ssh_connections(s));
      fflush(stdout);
    }
    if (p[0].revents & POLLIN) {
      int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
      if (fd >= 0)
        agent_ssh_serve(s, fd);
    }
  }
  agent_ssh_free(s);
  close(lfd);
  close(sfd);
  printf("stopped\n");
  return 0;
}
