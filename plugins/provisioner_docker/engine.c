/* engine.c — the Docker Engine's HTTP API over its unix socket.
 *
 * One libcurl easy handle per op (a job's thread), kept for the op's
 * calls so they share one connection. dk_engine_open() asks GET /version
 * (unversioned) for the engine's ApiVersion and prefixes every later path
 * with /v<ApiVersion>: the engine then answers in the version it speaks
 * best, and this plugin only uses fields that exist since API 1.30
 * (Docker 17.06), which it requires.
 *
 * Cancel: every transfer has a progress callback that aborts it once the
 * job is canceled (libcurl calls it at least once a second, more often
 * while data moves), so a pull or a slow call ends soon after a cancel.
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DK_CONNECT_TIMEOUT_MS 10000L
#define DK_VERSION_TIMEOUT_MS 15000L
#define DK_MIN_API_MAJOR 1
#define DK_MIN_API_MINOR 30
/* Most of an answer kept (inspect, lists, logs). */
#define DK_BODY_MAX ((size_t)64 * 1024 * 1024)

typedef struct sink {
  dk_engine_t *e;
  dk_buf_t *buf;
  bool too_big;
  /* Pull: one JSON message per line, handled as it comes. */
  void (*line)(struct sink *s, char *line);
  char *pull_error;
  char *last_status;
} sink_t;

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  sink_t *s = ud;
  size_t len = size * n;
  if (s->buf->len + len > DK_BODY_MAX) {
    s->too_big = true;
    return 0;
  }
  if (dk_buf_append(s->buf, data, len) != 0)
    return 0;
  if (s->line == NULL)
    return len;
  char *nl;
  while ((nl = memchr(s->buf->data, '\n', s->buf->len)) != NULL) {
    *nl = '\0';
    s->line(s, s->buf->data);
    size_t rest = s->buf->len - (size_t)(nl + 1 - s->buf->data);
    memmove(s->buf->data, nl + 1, rest);
    s->buf->len = rest;
    s->buf->data[rest] = '\0';
  }
  return len;
}

static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut,
                       curl_off_t un) {
  (void)dt;
  (void)dn;
  (void)ut;
  (void)un;
  dk_engine_t *e = ud;
  return !e->uncancelable && dk_job_canceled(e->j) ? 1 : 0;
}

/* Why connecting failed, in the words of connect(2). */
static const char *connect_error(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return strerror(errno);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
  int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
  int e = errno;
  close(fd);
  return rc == 0 ? "it closed the connection" : strerror(e);
}

static int transport_error(dk_engine_t *e, CURLcode cc, const char *method,
                           const char *path, long timeout_ms, char **err) {
  const char *sock = e->j->c->socket;
  switch (cc) {
  case CURLE_ABORTED_BY_CALLBACK:
    return dk_failf(err, ATR_ECANCELED, "canceled");
  case CURLE_OPERATION_TIMEDOUT:
    return dk_failf(err, ATR_ETIMEDOUT,
                    "the Docker engine at %s did not answer %s %s within "
                    "%lds",
                    sock, method, path, timeout_ms / 1000);
  case CURLE_COULDNT_CONNECT:
    return dk_failf(err, ATR_EUNAVAIL,
                    "cannot reach the Docker engine at %s: %s", sock,
                    connect_error(sock));
  default:
    return dk_failf(err, ATR_EUNAVAIL,
                    "cannot reach the Docker engine at %s: %s", sock,
                    e->errbuf[0] ? e->errbuf : curl_easy_strerror(cc));
  }
}

static int perform(dk_engine_t *e, const char *method, const char *url_path,
                   const json_t *body, long timeout_ms, sink_t *s, long *status,
                   char **err) {
  CURL *h = e->curl;
  curl_easy_reset(h);
  char *url = NULL;
  if (asprintf(&url, "http://localhost%s", url_path) < 0)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  struct curl_slist *hdr = curl_slist_append(NULL, "Expect:");
  if (text != NULL)
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
  e->errbuf[0] = '\0';
  curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, e->j->c->socket);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, e->errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, DK_CONNECT_TIMEOUT_MS);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, e);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, text ? text : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(text ? strlen(text) : 0));
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLcode cc = curl_easy_perform(h);
  curl_slist_free_all(hdr);
  free(text);
  free(url);
  if (cc != CURLE_OK && cc != CURLE_WRITE_ERROR)
    return transport_error(e, cc, method, url_path, timeout_ms, err);
  if (s->too_big || cc == CURLE_WRITE_ERROR)
    return dk_failf(err, ATR_ERANGE,
                    "the Docker engine's answer to %s %s is too large or "
                    "could not be stored",
                    method, url_path);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  return 0;
}

int dk_call(dk_engine_t *e, const char *method, const char *path,
            const json_t *body, long timeout_ms, dk_resp_t *r, char **err) {
  memset(r, 0, sizeof *r);
  if (!e->uncancelable && dk_job_canceled(e->j))
    return dk_failf(err, ATR_ECANCELED, "canceled");
  char *full = NULL;
  if (asprintf(&full, "/v%s%s", e->api, path) < 0)
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  sink_t s = {.e = e, .buf = &r->body};
  int rc = perform(e, method, full, body, timeout_ms, &s, &r->status, err);
  free(full);
  if (rc != 0) {
    dk_resp_free(r);
    return rc;
  }
  if (r->body.len > 0 && (r->body.data[0] == '{' || r->body.data[0] == '['))
    r->json = json_loadb(r->body.data, r->body.len, 0, NULL);
  /* A plain-text error ends in a newline. */
  while (r->json == NULL && r->body.len > 0 &&
         (r->body.data[r->body.len - 1] == '\n' ||
          r->body.data[r->body.len - 1] == '\r'))
    r->body.data[--r->body.len] = '\0';
  return 0;
}

const char *dk_resp_message(const dk_resp_t *r) {
  const char *m = json_string_value(json_object_get(r->json, "message"));
  if (m != NULL)
    return m;
  if (r->body.data != NULL && r->body.len > 0)
    return r->body.data;
  return "the engine gave no reason";
}

void dk_resp_free(dk_resp_t *r) {
  dk_buf_free(&r->body);
  json_decref(r->json);
  r->json = NULL;
}

char *dk_escape(dk_engine_t *e, const char *s) {
  char *c = curl_easy_escape(e->curl, s, 0);
  char *out = c ? strdup(c) : NULL;
  curl_free(c);
  return out;
}

int dk_engine_fail(dk_engine_t *e, const dk_resp_t *r, char **err,
                   const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *what = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&what, fmt, ap) < 0)
    what = NULL;
  va_end(ap);
  int rc =
      dk_fail_log(e->j, err, ATR_EPLUGIN, "%s: %s",
                  what ? what : "a Docker Engine call", dk_resp_message(r));
  free(what);
  return rc;
}

/* ---- version */

static int read_version(dk_engine_t *e, const json_t *v, char **err) {
  const char *api = json_string_value(json_object_get(v, "ApiVersion"));
  const char *ver = json_string_value(json_object_get(v, "Version"));
  unsigned major = 0, minor = 0;
  const char *sock = e->j->c->socket;
  if (api == NULL || sscanf(api, "%u.%u", &major, &minor) != 2 ||
      strlen(api) >= sizeof e->api)
    return dk_failf(err, ATR_EUNAVAIL,
                    "cannot reach the Docker engine at %s: GET /version "
                    "gave no ApiVersion; is it a Docker Engine's socket?",
                    sock);
  if (major < DK_MIN_API_MAJOR ||
      (major == DK_MIN_API_MAJOR && minor < DK_MIN_API_MINOR))
    return dk_failf(err, ATR_ENOTSUP,
                    "the Docker engine at %s speaks API %s; this plugin "
                    "needs %d.%d (Docker 17.06) or newer; upgrade the engine",
                    sock, api, DK_MIN_API_MAJOR, DK_MIN_API_MINOR);
  snprintf(e->api, sizeof e->api, "%s", api);
  e->version = strdup(ver ? ver : "?");
  return e->version ? 0 : dk_failf(err, ATR_ENOMEM, "out of memory");
}

int dk_engine_open(dk_engine_t *e, dk_job_t *j, char **err) {
  memset(e, 0, sizeof *e);
  e->j = j;
  e->curl = curl_easy_init();
  if (e->curl == NULL)
    return dk_failf(err, ATR_ENOMEM, "cannot create a libcurl handle");
  dk_buf_t body = {0};
  sink_t s = {.e = e, .buf = &body};
  long status = 0;
  int rc = perform(e, "GET", "/version", NULL, DK_VERSION_TIMEOUT_MS, &s,
                   &status, err);
  if (rc == 0 && status != 200)
    rc = dk_failf(err, ATR_EUNAVAIL,
                  "cannot reach the Docker engine at %s: GET /version "
                  "answered HTTP %ld: %s",
                  j->c->socket, status, body.data ? body.data : "");
  if (rc == 0) {
    json_t *v = json_loadb(body.data ? body.data : "", body.len, 0, NULL);
    rc = read_version(e, v, err);
    json_decref(v);
  }
  dk_buf_free(&body);
  if (rc != 0)
    dk_engine_close(e);
  return rc;
}

void dk_engine_close(dk_engine_t *e) {
  if (e->curl != NULL)
    curl_easy_cleanup(e->curl);
  e->curl = NULL;
  free(e->version);
  e->version = NULL;
}

/* ---- pull */

/* {"status": "Pull complete", "id": "a1b2"}: one log line, progress bars
 * ("Downloading" with a "progress") left out. {"error": …} ends it. */
static void pull_line(sink_t *s, char *line) {
  json_t *m = json_loads(line, 0, NULL);
  if (m == NULL)
    return;
  const char *error = json_string_value(json_object_get(m, "error"));
  if (error == NULL) /* an HTTP error's body */
    error = json_string_value(json_object_get(m, "message"));
  const char *status = json_string_value(json_object_get(m, "status"));
  const char *id = json_string_value(json_object_get(m, "id"));
  if (error != NULL && s->pull_error == NULL) {
    s->pull_error = strdup(error);
  } else if (status != NULL && json_object_get(m, "progress") == NULL) {
    char *text = NULL;
    if (asprintf(&text, "%s%s%s", id ? id : "", id ? ": " : "", status) >= 0) {
      if (s->last_status == NULL || strcmp(s->last_status, text) != 0)
        dk_log(s->e->j, ATR_LOG_INFO, text);
      free(s->last_status);
      s->last_status = text;
    }
  }
  json_decref(m);
}

/* "repo:tag" → fromImage=repo&tag=tag; a digest stays in fromImage; no
 * tag means latest (an empty tag would pull every tag). */
static char *pull_query(dk_engine_t *e, const char *image) {
  const char *slash = strrchr(image, '/');
  const char *colon = strrchr(slash ? slash : image, ':');
  bool digest = strchr(image, '@') != NULL;
  char *name = digest || colon == NULL
                   ? strdup(image)
                   : strndup(image, (size_t)(colon - image));
  const char *tag = digest ? "" : colon ? colon + 1 : "latest";
  char *n = name ? dk_escape(e, name) : NULL;
  char *t = dk_escape(e, tag);
  char *q = NULL;
  if (n == NULL || t == NULL ||
      asprintf(&q, "/images/create?fromImage=%s&tag=%s", n, t) < 0)
    q = NULL;
  free(name);
  free(n);
  free(t);
  return q;
}

int dk_pull(dk_engine_t *e, const char *image, char **err) {
  char *path = pull_query(e, image);
  char *full = NULL;
  if (path == NULL || asprintf(&full, "/v%s%s", e->api, path) < 0) {
    free(path);
    return dk_failf(err, ATR_ENOMEM, "out of memory");
  }
  free(path);
  dk_logf(e->j, ATR_LOG_INFO, "Pulling image %s", image);
  dk_buf_t body = {0};
  sink_t s = {.e = e, .buf = &body, .line = pull_line};
  long status = 0;
  int rc = perform(e, "POST", full, NULL, 0, &s, &status, err);
  free(full);
  if (rc == ATR_ECANCELED && err != NULL) {
    free(*err);
    rc = dk_failf(err, rc, "the build was canceled while pulling %s", image);
  } else if (rc == 0 && (status != 200 || s.pull_error != NULL))
    rc = dk_fail_log(e->j, err, ATR_EPLUGIN, "pulling %s: %s", image,
                     s.pull_error   ? s.pull_error
                     : body.len > 0 ? body.data
                                    : "the engine gave no reason");
  free(s.pull_error);
  free(s.last_status);
  dk_buf_free(&body);
  return rc;
}

/* ---- logs */

/* Without a TTY the engine frames output: [stream, 0, 0, 0, size (4 bytes,
 * big-endian)] then size bytes. Lines may span frames. */
static void demux_lines(const unsigned char *p, size_t len, dk_errs_t *out) {
  dk_buf_t text = {0};
  while (len >= 8) {
    size_t n = ((size_t)p[4] << 24) | ((size_t)p[5] << 16) |
               ((size_t)p[6] << 8) | (size_t)p[7];
    if (n > len - 8)
      n = len - 8;
    if (dk_buf_append(&text, (const char *)p + 8, n) != 0)
      break;
    p += 8 + n;
    len -= 8 + n;
  }
  char *save = NULL;
  for (char *l = text.data ? strtok_r(text.data, "\n", &save) : NULL; l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    size_t n = strlen(l);
    if (n > 0 && l[n - 1] == '\r')
      l[n - 1] = '\0';
    if (*l != '\0')
      dk_errs_addf(out, "%.500s", l);
  }
  dk_buf_free(&text);
}

int dk_container_logs(dk_engine_t *e, const char *id, int tail,
                      dk_errs_t *lines) {
  char *path = NULL;
  if (asprintf(&path, "/containers/%s/logs?stdout=1&stderr=1&tail=%d", id,
               tail) < 0)
    return ATR_ENOMEM;
  dk_resp_t r;
  int rc = dk_call(e, "GET", path, NULL, 30000, &r, NULL);
  free(path);
  if (rc == 0 && r.status == 200)
    demux_lines((const unsigned char *)r.body.data, r.body.len, lines);
  dk_resp_free(&r);
  return rc;
}
