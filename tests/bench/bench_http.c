/* tests/bench/bench_http.c — see bench_http.h. */
#include "bench_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int bench_connect_loopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int one = 1;
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int bench_send_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0)
      return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* A header's value in a response's header block, or NULL. */
static const char *header_value(const char *head, const char *name) {
  size_t len = strlen(name);
  for (const char *line = strstr(head, "\r\n"); line && line[2];
       line = strstr(line + 2, "\r\n")) {
    const char *h = line + 2;
    if (strncasecmp(h, name, len) == 0 && h[len] == ':')
      return h + len + 1 + strspn(h + len + 1, " ");
  }
  return NULL;
}

/* Both servers write the header block and the body in two writes without
 * TCP_NODELAY, so Nagle holds the body until the client acknowledges the
 * headers, which a Linux client delays by up to 40 ms. Re-armed before
 * each read, TCP_QUICKACK takes that wait out, leaving the servers' work;
 * without it (bench_api --no-quickack) the figures are what an ordinary
 * client sees. */
static ssize_t recv_armed(int fd, char *buf, size_t n, bool quickack) {
  int one = 1;
  if (quickack)
    setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
  return recv(fd, buf, n, 0);
}

int bench_read_response(int fd, bool quickack, bool *keep) {
  char buf[65536];
  size_t used = 0;
  const char *end = NULL;
  while (!end) {
    if (used + 1 >= sizeof buf)
      return -1;
    ssize_t n = recv_armed(fd, buf + used, sizeof buf - used - 1, quickack);
    if (n <= 0)
      return -1;
    used += (size_t)n;
    buf[used] = '\0';
    end = strstr(buf, "\r\n\r\n");
  }
  size_t head_len = (size_t)(end - buf) + 4;
  buf[head_len - 2] = '\0'; /* the header block ends with its last CRLF */
  int status = 0;
  if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
    return -1;
  const char *cl = header_value(buf, "Content-Length");
  const char *conn = header_value(buf, "Connection");
  *keep = !(conn && strncasecmp(conn, "close", 5) == 0);
  size_t want = head_len + (cl ? strtoul(cl, NULL, 10) : 0);
  if (want >= sizeof buf)
    return -1;
  while (used < want) {
    ssize_t n = recv_armed(fd, buf + used, want - used, quickack);
    if (n <= 0)
      return -1;
    used += (size_t)n;
  }
  return status;
}
