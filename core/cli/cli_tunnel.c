/* core/cli/cli_tunnel.c — resolving a workspace to its agent and opening a
 * RAW tunnel to it (cli_tunnel.h). */
#include "cli_tunnel.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli_output.h"
#include "cli_session.h"
#include "session_file.h"
#include "version.h"

/* The answer's head, and an error answer's body, are bounded. */
#define MAX_HEAD 16384
#define MAX_ERROR_BODY 65536
#define IO_TIMEOUT_MS 15000
#define PUMP_BUF 65536

/* ---- naming the workspace ------------------------------------------------- */

int atr__tunnel_parse_ref(const char *ref, char *owner, char *name, char *agent,
                          size_t size, char *err, size_t err_size) {
  const char *slash = strchr(ref, '/');
  const char *rest = slash ? slash + 1 : ref;
  const char *dot = strchr(rest, '.');
  size_t olen = slash ? (size_t)(slash - ref) : 0;
  size_t nlen = dot ? (size_t)(dot - rest) : strlen(rest);
  const char *a = dot ? dot + 1 : "";
  if ((slash && olen == 0) || nlen == 0 || (dot && *a == '\0') ||
      strchr(rest, '/') || strchr(a, '.') || olen >= size || nlen >= size ||
      strlen(a) >= size || strlen(ref) > 3 * size) {
    snprintf(err, err_size,
             "\"%.200s\" is not a workspace: use NAME, OWNER/NAME, and "
             ".AGENT after it to pick an agent",
             ref);
    return -1;
  }
  snprintf(owner, size, "%.*s", (int)(slash ? olen : 2), slash ? ref : "me");
  snprintf(name, size, "%.*s", (int)nlen, rest);
  snprintf(agent, size, "%s", a);
  return 0;
}

static int copy_field(char *dst, size_t size, const char *src) {
  int n = snprintf(dst, size, "%s", src ? src : "");
  return n >= 0 && (size_t)n < size ? 0 : -1;
}

/* The agent named `want` ("" for the only one) in the build; NULL after
 * printing why not. */
static const json_t *pick_agent(const atr__cli_t *cli, const char *ref,
                                const json_t *build, const char *want) {
  const json_t *found = NULL;
  size_t i, j, n = 0;
  json_t *res, *agent;
  char names[512] = "";
  size_t len = 0;
  json_array_foreach(json_object_get(build, "resources"), i, res) {
    json_array_foreach(json_object_get(res, "agents"), j, agent) {
      const char *an = atr__cli_str(agent, "name");
      n++;
      if (len < sizeof names)
        len += (size_t)snprintf(names + len, sizeof names - len, "%s%s",
                                len ? ", " : "", an ? an : "?");
      if (*want ? an && strcmp(an, want) == 0 : !found)
        found = agent;
    }
  }
  if (n == 0) {
    fprintf(stderr, "%s: workspace %s has no agent\n", cli->what, ref);
    return NULL;
  }
  if (!*want && n > 1) {
    fprintf(stderr,
            "%s: workspace %s has %zu agents (%s); pick one with %s.AGENT\n",
            cli->what, ref, n, names, ref);
    return NULL;
  }
  if (!found)
    fprintf(stderr, "%s: workspace %s has no agent \"%s\" (it has: %s)\n",
            cli->what, ref, want, names);
  return found;
}

/* 0 when the build is a successful start; else 1 after saying so. */
static int check_running(const atr__cli_t *cli, const char *ref,
                         const json_t *build) {
  const char *transition = atr__cli_str(build, "transition");
  const char *status = atr__cli_str(build, "status");
  if (!status)
    status = atr__cli_str(json_object_get(build, "job"), "status");
  if (status && strcmp(status, "running") == 0)
    return 0;
  if (transition && strcmp(transition, "start") == 0 && status &&
      (strcmp(status, "succeeded") == 0 || strcmp(status, "starting") == 0))
    return 0;
  fprintf(stderr,
          "%s: workspace %s is not running (its latest build: %s, %s); "
          "start it with `atrium start %s`\n",
          cli->what, ref, transition ? transition : "none",
          status ? status : "unknown", ref);
  return 1;
}

static int check_agent(const atr__cli_t *cli, const char *ref,
                       const json_t *agent) {
  const char *status = atr__cli_str(agent, "status");
  const char *life = atr__cli_str(agent, "lifecycle_state");
  if (status && strcmp(status, "connected") == 0)
    return 0;
  fprintf(stderr,
          "%s: the agent %s of workspace %s is %s (lifecycle: %s); see "
          "`atrium show %s`\n",
          cli->what, atr__cli_txt(agent, "name"), ref,
          status ? status : "unknown", life ? life : "unknown", ref);
  return 1;
}

static int fill_target(atr__cli_t *cli, const json_t *ws, const json_t *agent,
                       atr__tunnel_target_t *t) {
  atr_client_session_t s;
  char *err = NULL;
  if (atr_client_session_load(&s, &err) != 0 || !s.token) {
    fprintf(stderr, "%s: %s\n", cli->what, err ? err : "no session token");
    free(err);
    atr_client_session_clear(&s);
    return 1;
  }
  t->token = strdup(s.token);
  atr_client_session_clear(&s);
  if (!t->token)
    return atr__cli_oom(cli);
  if (copy_field(t->url, sizeof t->url, atr_client_url(cli->client)) != 0 ||
      copy_field(t->agent_id, sizeof t->agent_id, atr__cli_str(agent, "id")) !=
          0 ||
      copy_field(t->agent, sizeof t->agent, atr__cli_str(agent, "name")) != 0 ||
      copy_field(t->owner, sizeof t->owner, atr__cli_str(ws, "owner_name")) !=
          0 ||
      copy_field(t->workspace, sizeof t->workspace, atr__cli_str(ws, "name")) !=
          0 ||
      copy_field(t->workspace_id, sizeof t->workspace_id,
                 atr__cli_str(ws, "id")) != 0 ||
      !t->agent_id[0]) {
    fprintf(stderr,
            "%s: the server's answer for the workspace is missing a "
            "field or has one too long\n",
            cli->what);
    return 1;
  }
  return 0;
}

int atr__tunnel_resolve(atr__cli_t *cli, const char *ref,
                        atr__tunnel_target_t *t) {
  char owner[ATR__TUNNEL_FIELD_MAX], name[ATR__TUNNEL_FIELD_MAX];
  char agent_name[ATR__TUNNEL_FIELD_MAX], err[320];
  memset(t, 0, sizeof *t);
  if (atr__tunnel_parse_ref(ref, owner, name, agent_name, sizeof owner, err,
                            sizeof err) != 0)
    return atr__cli_usage_error(cli, "%s", err);
  int rc = cli->client ? 0 : atr__cli_connect(cli);
  char *path = rc == 0
                   ? atr__cli_path("/api/v2/users/%s/workspace/%s", owner, name)
                   : NULL;
  if (rc == 0 && !path)
    rc = atr__cli_oom(cli);
  json_t *ws = NULL;
  if (rc == 0)
    rc = atr__cli_get(cli, path, &ws);
  free(path);
  const json_t *build = json_object_get(ws, "latest_build");
  char shown[2 * ATR__TUNNEL_FIELD_MAX + 2];
  snprintf(shown, sizeof shown, "%.255s%s%.255s", strchr(ref, '/') ? owner : "",
           strchr(ref, '/') ? "/" : "", name);
  if (rc == 0)
    rc = check_running(cli, shown, build);
  const json_t *agent =
      rc == 0 ? pick_agent(cli, shown, build, agent_name) : NULL;
  if (rc == 0 && !agent)
    rc = 1;
  if (rc == 0)
    rc = check_agent(cli, shown, agent);
  if (rc == 0)
    rc = fill_target(cli, ws, agent, t);
  json_decref(ws);
  if (rc != 0)
    atr__tunnel_target_clear(t);
  return rc;
}

void atr__tunnel_target_clear(atr__tunnel_target_t *t) {
  if (t->token) {
    OPENSSL_cleanse(t->token, strlen(t->token));
    free(t->token);
  }
  t->token = NULL;
}

/* ---- the upgrade ---------------------------------------------------------- */

/* Wait until the connection may be read (or written); 0, or -1 after
 * IO_TIMEOUT_MS. */
static int wait_socket(curl_socket_t s, bool for_write) {
  struct pollfd p = {.fd = s, .events = for_write ? POLLOUT : POLLIN};
  int n;
  do
    n = poll(&p, 1, IO_TIMEOUT_MS);
  while (n < 0 && errno == EINTR);
  return n > 0 ? 0 : -1;
}

static int send_all(CURL *h, curl_socket_t s, const char *data, size_t len) {
  while (len > 0) {
    size_t sent = 0;
    CURLcode cc = curl_easy_send(h, data, len, &sent);
    if (cc == CURLE_AGAIN) {
      if (wait_socket(s, true) != 0)
        return -1;
      continue;
    }
    if (cc != CURLE_OK)
      return -1;
    data += sent;
    len -= sent;
  }
  return 0;
}

/* One byte; 1, 0 at EOF, -1 on an error or a timeout. Byte by byte, so
 * nothing after the head is read into a buffer the tunnel would lose. */
static int recv_byte(CURL *h, curl_socket_t s, char *c) {
  for (;;) {
    size_t got = 0;
    CURLcode cc = curl_easy_recv(h, c, 1, &got);
    if (cc == CURLE_AGAIN) {
      if (wait_socket(s, false) != 0)
        return -1;
      continue;
    }
    return cc == CURLE_OK ? (got == 1 ? 1 : 0) : -1;
  }
}

/* The answer's head up to and including the blank line, NUL-ended. */
static int recv_head(CURL *h, curl_socket_t s, char *head, size_t size) {
  size_t n = 0;
  while (n + 1 < size) {
    int r = recv_byte(h, s, &head[n]);
    if (r <= 0)
      return -1;
    n++;
    head[n] = '\0';
    if (n >= 4 && memcmp(head + n - 4, "\r\n\r\n", 4) == 0)
      return 0;
    if (n >= 2 && memcmp(head + n - 2, "\n\n", 2) == 0)
      return 0;
  }
  return -1;
}

/* A header's value in head (case-insensitive name), or -1. */
static long header_long(const char *head, const char *name) {
  size_t len = strlen(name);
  for (const char *p = strchr(head, '\n'); p; p = strchr(p + 1, '\n'))
    if (strncasecmp(p + 1, name, len) == 0 && p[1 + len] == ':')
      return strtol(p + 2 + len, NULL, 10);
  return -1;
}

/* The body of an error answer (Content-Length, else until EOF; bounded). */
static char *recv_body(CURL *h, curl_socket_t s, const char *head,
                       size_t *len) {
  long want = header_long(head, "content-length");
  size_t max =
      want >= 0 && want < MAX_ERROR_BODY ? (size_t)want : MAX_ERROR_BODY;
  char *body = malloc(max + 1);
  *len = 0;
  while (body && *len < max && recv_byte(h, s, &body[*len]) == 1)
    (*len)++;
  if (body)
    body[*len] = '\0';
  return body;
}

static void print_refusal(const char *what, long status, const char *body,
                          size_t len) {
  atr_client_res_t res = {.status = status,
                          .body = len ? json_loadb(body, len, 0, NULL) : NULL};
  if (json_is_object(res.body) && json_object_get(res.body, "message")) {
    atr_client_print_error(what, &res);
  } else {
    char line[160] = "";
    size_t n = 0;
    for (size_t i = 0; i < len && n + 1 < sizeof line; i++) {
      if (body[i] == '\n' || body[i] == '\r')
        break;
      line[n++] = body[i];
    }
    line[n] = '\0';
    fprintf(stderr,
            "%s: the server answered HTTP %ld instead of opening the "
            "tunnel%s%s\n",
            what, status, n ? ": " : "", line);
  }
  json_decref(res.body);
}

/* The request line's target and the Host header from the base URL. */
static int split_url(const char *url, char *host, size_t host_size,
                     char *base_path, size_t path_size, bool *tls) {
  CURLU *u = curl_url();
  char *h = NULL, *port = NULL, *path = NULL, *scheme = NULL;
  int rc = -1;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &h, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PATH, &path, 0) == CURLUE_OK) {
    if (curl_url_get(u, CURLUPART_PORT, &port, 0) != CURLUE_OK)
      port = NULL;
    size_t plen = strlen(path);
    while (plen > 0 && path[plen - 1] == '/')
      plen--;
    int a = snprintf(host, host_size, "%s%s%s", h, port ? ":" : "",
                     port ? port : "");
    int b = snprintf(base_path, path_size, "%.*s", (int)plen, path);
    *tls = strcasecmp(scheme, "https") == 0;
    rc = a > 0 && (size_t)a < host_size && b >= 0 && (size_t)b < path_size ? 0
                                                                           : -1;
  }
  curl_free(h);
  curl_free(port);
  curl_free(path);
  curl_free(scheme);
  curl_url_cleanup(u);
  return rc;
}

static char *request_text(const atr__tunnel_target_t *t, const char *host,
                          const char *base, const char *kind, int port) {
  char query[64];
  if (port > 0)
    snprintf(query, sizeof query, "kind=%s&port=%d", kind, port);
  else
    snprintf(query, sizeof query, "kind=%s", kind);
  char *text = NULL;
  if (asprintf(&text,
               "GET %s/api/v2/workspaceagents/%s/tunnel?%s HTTP/1.1\r\n"
               "Host: %s\r\n"
               "User-Agent: atrium-cli/" ATR_VERSION "\r\n"
               "Accept: application/json\r\n"
               "Connection: Upgrade\r\n"
               "Upgrade: atrium-tunnel\r\n"
               "Atrium-Session-Token: %s\r\n"
               "\r\n",
               base, t->agent_id, query, host, t->token) < 0)
    return NULL;
  return text;
}

static void free_secret(char *s) {
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

/* ---- https: a thread between curl and a socketpair ------------------------ */

typedef struct tls_pump {
  CURL *h;
  curl_socket_t s;
  int local; /* our end of the socketpair */
} tls_pump_t;

/* Half-close over TLS: a close_notify closes our writing only, and curl
 * goes on reading the server's records (TLS 1.3, RFC 8446 §6.1). A bare
 * FIN instead would read as a truncation attack to an OpenSSL 3 peer,
 * which then refuses to write. libcurl has no call for it, so it is sent
 * on the SSL object curl hands out. */
static void send_close_notify(CURL *h) {
  struct curl_tlssessioninfo *info = NULL;
  if (curl_easy_getinfo(h, CURLINFO_TLS_SSL_PTR, &info) == CURLE_OK && info &&
      info->backend == CURLSSLBACKEND_OPENSSL && info->internals)
    SSL_shutdown((SSL *)info->internals);
}

/* Move what curl can give to `local`; 1 something moved, 0 nothing now,
 * -1 EOF or error. */
static int tls_to_local(tls_pump_t *p, char *buf, bool *eof) {
  size_t got = 0;
  CURLcode cc = curl_easy_recv(p->h, buf, PUMP_BUF, &got);
  if (cc == CURLE_AGAIN)
    return 0;
  if (cc != CURLE_OK || got == 0) {
    *eof = true;
    shutdown(p->local, SHUT_WR);
    return cc == CURLE_OK ? 0 : -1;
  }
  for (size_t off = 0; off < got;) {
    ssize_t w = send(p->local, buf + off, got - off, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return -1;
    off += (size_t)w;
  }
  return 1;
}

static int local_to_tls(tls_pump_t *p, char *buf, bool *eof) {
  ssize_t r = recv(p->local, buf, PUMP_BUF, MSG_DONTWAIT);
  if (r < 0 && (errno == EAGAIN || errno == EINTR))
    return 0;
  if (r <= 0) {
    *eof = true;
    send_close_notify(p->h);
    return r == 0 ? 0 : -1;
  }
  return send_all(p->h, p->s, buf, (size_t)r) == 0 ? 1 : -1;
}

static void *tls_pump_run(void *arg) {
  tls_pump_t *p = arg;
  char *buf = malloc(PUMP_BUF);
  bool in_eof = false, out_eof = false;
  int rc = buf ? 0 : -1;
  while (rc >= 0 && !(in_eof && out_eof)) {
    struct pollfd fds[2] = {{.fd = in_eof ? -1 : p->s, .events = POLLIN},
                            {.fd = out_eof ? -1 : p->local, .events = POLLIN}};
    /* curl may hold decrypted bytes the socket no longer shows: read it
     * first, poll only when it has nothing. */
    int moved = in_eof ? 0 : tls_to_local(p, buf, &in_eof);
    if (moved < 0)
      break;
    if (moved > 0)
      continue;
    if (poll(fds, 2, 1000) < 0 && errno != EINTR)
      break;
    if (!out_eof && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)))
      rc = local_to_tls(p, buf, &out_eof);
    /* Our end closed (atr__tunnel_close): nobody reads what comes. */
    if (fds[1].revents & POLLHUP)
      break;
  }
  free(buf);
  close(p->local);
  curl_easy_cleanup(p->h);
  free(p);
  return NULL;
}

/* The pump threads, by the fd their caller holds, to be joined when it
 * is closed: the process must not exit under a thread still tearing
 * down its TLS. One lock: opening and closing tunnels is rare. */
#define MAX_PUMPS 512
static pthread_mutex_t pumps_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
  int fd;
  pthread_t th;
} pumps[MAX_PUMPS];
static size_t npumps;

static int pump_add(int fd, pthread_t th) {
  pthread_mutex_lock(&pumps_lock);
  int rc = npumps < MAX_PUMPS ? 0 : -1;
  if (rc == 0) {
    pumps[npumps].fd = fd;
    pumps[npumps++].th = th;
  }
  pthread_mutex_unlock(&pumps_lock);
  return rc;
}

void atr__tunnel_close(int fd) {
  pthread_t th;
  bool found = false;
  pthread_mutex_lock(&pumps_lock);
  for (size_t i = 0; i < npumps && !found; i++)
    if (pumps[i].fd == fd) {
      th = pumps[i].th;
      pumps[i] = pumps[--npumps];
      found = true;
    }
  pthread_mutex_unlock(&pumps_lock);
  close(fd);
  if (found)
    pthread_join(th, NULL);
}

static int start_tls_pump(CURL *h, curl_socket_t s, int *fd) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
    return -1;
  tls_pump_t *p = malloc(sizeof *p);
  pthread_t th;
  if (!p) {
    close(sv[0]);
    close(sv[1]);
    return -1;
  }
  *p = (tls_pump_t){.h = h, .s = s, .local = sv[1]};
  if (pthread_create(&th, NULL, tls_pump_run, p) != 0) {
    free(p);
    close(sv[0]);
    close(sv[1]);
    return -1;
  }
  /* Registered under the lock before anyone can close sv[0]. */
  if (pump_add(sv[0], th) != 0) {
    close(sv[0]); /* the thread sees it closed and ends */
    pthread_join(th, NULL);
    return -1;
  }
  *fd = sv[0];
  return 0;
}

/* ---- opening -------------------------------------------------------------- */

static CURL *connect_only(const char *url, const char *what, char *errbuf) {
  CURL *h = curl_easy_init();
  if (!h)
    return NULL;
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  CURLcode cc = curl_easy_perform(h);
  if (cc != CURLE_OK) {
    fprintf(stderr, "%s: cannot reach %s: %s\n", what, url,
            errbuf[0] ? errbuf : curl_easy_strerror(cc));
    curl_easy_cleanup(h);
    return NULL;
  }
  return h;
}

/* The socket curl made, as our own blocking fd (curl closes its copy). */
static int take_socket(CURL *h, curl_socket_t s) {
  int fd = fcntl(s, F_DUPFD_CLOEXEC, 3);
  curl_easy_cleanup(h);
  if (fd >= 0) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
      close(fd);
      fd = -1;
    }
  }
  return fd;
}

/* Send the upgrade and read the head; 0 on 101, else 1 after printing. */
static int upgrade(CURL *h, curl_socket_t s, const char *request,
                   const char *what, const char *url) {
  char head[MAX_HEAD];
  if (send_all(h, s, request, strlen(request)) != 0 ||
      recv_head(h, s, head, sizeof head) != 0) {
    fprintf(stderr, "%s: %s closed the connection or sent no answer\n", what,
            url);
    return 1;
  }
  long status = 0;
  if (sscanf(head, "HTTP/1.%*d %ld", &status) != 1) {
    fprintf(stderr, "%s: %s did not answer HTTP; is it an atrium server?\n",
            what, url);
    return 1;
  }
  if (status == 101)
    return 0;
  size_t len = 0;
  char *body = recv_body(h, s, head, &len);
  print_refusal(what, status, body ? body : "", body ? len : 0);
  free(body);
  return 1;
}

int atr__tunnel_open(const atr__tunnel_target_t *t, const char *what,
                     const char *kind, int port, int *fd) {
  char host[512], base[512], errbuf[CURL_ERROR_SIZE] = "";
  bool tls = false;
  *fd = -1;
  if (split_url(t->url, host, sizeof host, base, sizeof base, &tls) != 0) {
    fprintf(stderr, "%s: the server URL %s cannot be used\n", what, t->url);
    return 1;
  }
  CURL *h = connect_only(t->url, what, errbuf);
  if (!h)
    return 1;
  curl_socket_t s = CURL_SOCKET_BAD;
  char *request = request_text(t, host, base, kind, port);
  int rc =
      request && curl_easy_getinfo(h, CURLINFO_ACTIVESOCKET, &s) == CURLE_OK &&
              s != CURL_SOCKET_BAD
          ? upgrade(h, s, request, what, t->url)
          : 1;
  free_secret(request);
  if (rc != 0) {
    curl_easy_cleanup(h);
    return rc;
  }
  if (tls) {
    rc = start_tls_pump(h, s, fd);
    if (rc != 0)
      curl_easy_cleanup(h);
  } else {
    *fd = take_socket(h, s);
    rc = *fd >= 0 ? 0 : -1;
  }
  if (rc != 0)
    fprintf(stderr, "%s: %s\n", what, strerror(errno));
  return rc == 0 ? 0 : 1;
}

/* ---- pumping -------------------------------------------------------------- */

static bool is_socket(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* One direction: from rd to wr through buf. */
typedef struct way {
  int rd, wr;
  bool wr_sock, eof, done;
  char *buf;
  size_t len, off;
} way_t;

static void end_way(way_t *w) {
  w->done = true;
  if (w->wr_sock)
    shutdown(w->wr, SHUT_WR);
  else
    close(w->wr);
}

/* After poll: read into an empty buffer, write what it holds. */
static int step(way_t *w, short rev_rd, short rev_wr) {
  if (w->len == 0 && !w->eof && (rev_rd & (POLLIN | POLLHUP | POLLERR))) {
    ssize_t r = read(w->rd, w->buf, PUMP_BUF);
    if (r < 0 && (errno == EINTR || errno == EAGAIN))
      return 0;
    if (r < 0 && errno != ECONNRESET)
      return -1;
    if (r <= 0)
      w->eof = true;
    else
      w->len = (size_t)r, w->off = 0;
  }
  if (w->len > 0 && (rev_wr & (POLLOUT | POLLERR | POLLHUP))) {
    ssize_t n = w->wr_sock ? send(w->wr, w->buf + w->off, w->len,
                                  MSG_NOSIGNAL | MSG_DONTWAIT)
                           : write(w->wr, w->buf + w->off, w->len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      return 0;
    if (n < 0)
      return -1;
    w->off += (size_t)n;
    w->len -= (size_t)n;
  }
  if (w->eof && w->len == 0 && !w->done)
    end_way(w);
  return 0;
}

static int pump_ways(way_t *w, volatile int *stop) {
  while (!(w[0].done && w[1].done) && !(stop && *stop)) {
    struct pollfd p[4];
    for (size_t i = 0; i < 2; i++) {
      p[2 * i] = (struct pollfd){.fd = w[i].len || w[i].eof ? -1 : w[i].rd,
                                 .events = POLLIN};
      p[2 * i + 1] =
          (struct pollfd){.fd = w[i].len ? w[i].wr : -1, .events = POLLOUT};
    }
    int n = poll(p, 4, 200);
    if (n < 0 && errno != EINTR)
      return -1;
    if (n <= 0)
      continue;
    for (size_t i = 0; i < 2; i++)
      if (step(&w[i], p[2 * i].revents, p[2 * i + 1].revents) != 0)
        return -1;
  }
  return w[0].done && w[1].done ? 0 : -1;
}

int atr__tunnel_pump2(int a_rd, int a_wr, int b, volatile int *stop) {
  char *b0 = malloc(PUMP_BUF), *b1 = malloc(PUMP_BUF);
  way_t w[2] = {{.rd = a_rd, .wr = b, .wr_sock = is_socket(b), .buf = b0},
                {.rd = b, .wr = a_wr, .wr_sock = is_socket(a_wr), .buf = b1}};
  int rc = b0 && b1 ? pump_ways(w, stop) : -1;
  free(b0);
  free(b1);
  return rc;
}

int atr__tunnel_pump(int a, int b, volatile int *stop) {
  return atr__tunnel_pump2(a, a, b, stop);
}
