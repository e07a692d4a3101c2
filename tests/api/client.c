/* tests/api/client.c — see client.h. */
#include "client.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct buf {
  char *data;
  size_t len;
} buf_t;

static int buf_add(buf_t *b, const char *data, size_t n) {
  char *grown = realloc(b->data, b->len + n + 1);
  if (!grown)
    return -1;
  b->data = grown;
  memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  return buf_add(ud, data, size * n) == 0 ? size * n : 0;
}

typedef struct head {
  buf_t all, cookies;
} head_t;

/* Keep every header line, and the value of each Set-Cookie line apart. */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  static const char name[] = "Set-Cookie:";
  head_t *h = ud;
  size_t len = size * n;
  const char *end = data + len;
  while (end > data && (end[-1] == '\r' || end[-1] == '\n'))
    end--;
  if (end > data && (buf_add(&h->all, data, (size_t)(end - data)) != 0 ||
                     buf_add(&h->all, "\n", 1) != 0))
    return 0;
  if (len <= sizeof name - 1 || strncasecmp(data, name, sizeof name - 1) != 0)
    return len;
  const char *v = data + sizeof name - 1;
  while (v < end && *v == ' ')
    v++;
  if (buf_add(&h->cookies, v, (size_t)(end - v)) != 0 ||
      buf_add(&h->cookies, "\n", 1) != 0)
    return 0;
  return len;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *name,
                                     const char *prefix, const char *value) {
  if (!value)
    return list;
  char line[1024];
  snprintf(line, sizeof line, "%s: %s%s", name, prefix, value);
  struct curl_slist *next = curl_slist_append(list, line);
  return next ? next : list;
}

static struct curl_slist *add_line(struct curl_slist *list, const char *line) {
  struct curl_slist *next = curl_slist_append(list, line);
  return next ? next : list;
}

/* What one request needs beyond its handle; freed by request_done. */
typedef struct request {
  CURL *c;
  struct curl_slist *headers;
  char *payload;
} request_t;

static request_t request_new(int port, const atr_tc_req_t *req,
                             long default_timeout_ms) {
  request_t q = {.c = curl_easy_init()};
  /* any length (a terminal's 4 KiB command): a path cut short would
   * test another request than the one written */
  char *url = NULL;
  if (asprintf(&url, "http://127.0.0.1:%d%s", port, req->path) < 0)
    url = NULL;
  q.payload = req->body ? json_dumps(req->body, JSON_COMPACT) : NULL;
  q.headers = add_header(q.headers, "Atrium-Session-Token", "", req->token);
  q.headers = add_header(q.headers, "Authorization", "Bearer ", req->bearer);
  q.headers = add_header(q.headers, "Atrium-CSRF-Token", "", req->csrf);
  if (q.payload)
    q.headers = add_header(q.headers, "Content-Type", "", "application/json");
  else if (req->raw)
    q.headers = add_header(q.headers, "Content-Type", "", req->content_type);
  for (const char *const *h = req->headers; h && *h; h++)
    q.headers = add_line(q.headers, *h);
  /* "Expect:" with no value stops libcurl's 100-continue round trip */
  q.headers = add_line(q.headers, "Expect:");
  curl_easy_setopt(q.c, CURLOPT_URL, url); /* copied by libcurl */
  free(url);
  curl_easy_setopt(q.c, CURLOPT_CUSTOMREQUEST,
                   req->method ? req->method : "GET");
  if (q.payload) {
    curl_easy_setopt(q.c, CURLOPT_POSTFIELDS, q.payload);
    curl_easy_setopt(q.c, CURLOPT_POSTFIELDSIZE, (long)strlen(q.payload));
  } else if (req->raw) {
    curl_easy_setopt(q.c, CURLOPT_POSTFIELDS, req->raw);
    curl_easy_setopt(q.c, CURLOPT_POSTFIELDSIZE, (long)req->raw_len);
  }
  if (req->cookie)
    curl_easy_setopt(q.c, CURLOPT_COOKIE, req->cookie);
  curl_easy_setopt(q.c, CURLOPT_HTTPHEADER, q.headers);
  curl_easy_setopt(q.c, CURLOPT_TIMEOUT_MS,
                   req->timeout_ms > 0 ? req->timeout_ms : default_timeout_ms);
  curl_easy_setopt(q.c, CURLOPT_NOPROXY, "*");
  return q;
}

/* The status and content type once the request ran. */
static void request_answer(request_t *q, long *status, char ctype[64]) {
  char *type = NULL;
  curl_easy_getinfo(q->c, CURLINFO_RESPONSE_CODE, status);
  curl_easy_getinfo(q->c, CURLINFO_CONTENT_TYPE, &type);
  snprintf(ctype, 64, "%s", type ? type : "");
}

static void request_done(request_t *q) {
  curl_easy_cleanup(q->c);
  curl_slist_free_all(q->headers);
  free(q->payload);
}

atr_tc_res_t atr_tc_call(int port, const atr_tc_req_t *req) {
  atr_tc_res_t res = {0};
  buf_t body = {0};
  head_t head = {0};
  request_t q = request_new(port, req, 10000L);
  curl_easy_setopt(q.c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(q.c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(q.c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(q.c, CURLOPT_HEADERDATA, &head);
  if (curl_easy_perform(q.c) == CURLE_OK)
    request_answer(&q, &res.status, res.content_type);
  request_done(&q);
  res.len = body.len;
  res.body = body.data ? body.data : strdup("");
  res.set_cookies = head.cookies.data ? head.cookies.data : strdup("");
  res.headers = head.all.data ? head.all.data : strdup("");
  res.json = body.len ? json_loadb(body.data, body.len, 0, NULL) : NULL;
  return res;
}

void atr_tc_res_free(atr_tc_res_t *res) {
  free(res->body);
  free(res->set_cookies);
  free(res->headers);
  json_decref(res->json);
  memset(res, 0, sizeof *res);
}

const char *atr_tc_str(const atr_tc_res_t *res, const char *key) {
  return json_string_value(json_object_get(res->json, key));
}

/* In lines ("a\nb\n"), the value after `prefix` (compared as told) up to
 * the end of its line or to `stop`, into buf. */
static const char *line_value(const char *lines, const char *prefix,
                              bool any_case, char stop, char *buf,
                              size_t size) {
  size_t len = strlen(prefix);
  for (const char *line = lines; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    if (n >= len && (any_case ? strncasecmp(line, prefix, len)
                              : strncmp(line, prefix, len)) == 0) {
      const char *v = line + len;
      while (any_case && v < line + n && *v == ' ')
        v++;
      const char *end = stop ? memchr(v, stop, (size_t)(line + n - v)) : NULL;
      size_t vlen = end ? (size_t)(end - v) : (size_t)(line + n - v);
      if (vlen >= size)
        return NULL;
      memcpy(buf, v, vlen);
      buf[vlen] = '\0';
      return buf;
    }
    line = nl ? nl + 1 : NULL;
  }
  return NULL;
}

const char *atr_tc_cookie(const atr_tc_res_t *res, const char *name, char *buf,
                          size_t size) {
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s=", name);
  return line_value(res->set_cookies, prefix, false, ';', buf, size);
}

const char *atr_tc_header(const atr_tc_res_t *res, const char *name, char *buf,
                          size_t size) {
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s:", name);
  return line_value(res->headers, prefix, true, '\0', buf, size);
}

/* ---- server-sent events -------------------------------------------------- */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* One frame ("event: x\ndata: {...}"); comments alone make no event. */
static void events_frame(atr_tc_events_t *s, char *frame) {
  atr_tc_event_t e = {.name = "message"};
  bool any = false;
  char *save = NULL;
  for (char *line = strtok_r(frame, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    if (strncmp(line, "event: ", 7) == 0) {
      snprintf(e.name, sizeof e.name, "%s", line + 7);
      any = true;
    } else if (strncmp(line, "data: ", 6) == 0) {
      json_decref(e.data);
      e.data = json_loads(line + 6, 0, NULL);
      any = true;
    }
  }
  if (!any || s->n == ATR_TC_EVENTS_MAX) {
    json_decref(e.data);
    return;
  }
  e.at_ms = now_ms() - s->t0;
  s->ev[s->n++] = e;
  if (s->on_event)
    s->on_event(s->ud, &s->ev[s->n - 1]);
}

static size_t events_on_data(char *data, size_t size, size_t n, void *ud) {
  atr_tc_events_t *s = ud;
  size_t add = size * n;
  char *grown = realloc(s->pending, s->pending_len + add + 1);
  if (!grown)
    return 0;
  s->pending = grown;
  memcpy(s->pending + s->pending_len, data, add);
  s->pending_len += add;
  s->pending[s->pending_len] = '\0';
  char *end;
  while ((end = strstr(s->pending, "\n\n")) != NULL) {
    *end = '\0';
    size_t used = (size_t)(end + 2 - s->pending);
    char *frame = strdup(s->pending);
    if (frame)
      events_frame(s, frame);
    free(frame);
    memmove(s->pending, s->pending + used, s->pending_len - used + 1);
    s->pending_len -= used;
  }
  return add;
}

long atr_tc_events(int port, const atr_tc_req_t *req, atr_tc_events_t *out) {
  request_t q = request_new(port, req, 30000L);
  curl_easy_setopt(q.c, CURLOPT_WRITEFUNCTION, events_on_data);
  curl_easy_setopt(q.c, CURLOPT_WRITEDATA, out);
  out->t0 = now_ms();
  CURLcode rc = curl_easy_perform(q.c);
  if (rc != CURLE_OK)
    fprintf(stderr, "reading events from %s: %s\n", req->path,
            curl_easy_strerror(rc));
  request_answer(&q, &out->status, out->content_type);
  request_done(&q);
  return out->status;
}

void atr_tc_events_free(atr_tc_events_t *s) {
  for (size_t i = 0; i < s->n; i++)
    json_decref(s->ev[i].data);
  free(s->pending);
  memset(s, 0, sizeof *s);
}
