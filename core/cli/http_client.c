/* core/cli/http_client.c — see http_client.h. */
#include "http_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "atrium/error.h"
#include "version.h"

/* An answer larger than this is refused rather than buffered. */
#define MAX_ANSWER ((size_t)16 * 1024 * 1024)

struct atr_client {
  char *url;
  char *token; /* NULL when none; wiped before it is freed */
  volatile sig_atomic_t *interrupt; /* borrowed; NULL: none */
};

static void free_secret(char *s) {
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

atr_client_t *atr_client_new(const char *url, const char *token) {
  atr_client_t *c = calloc(1, sizeof *c);
  if (!c || !(c->url = strdup(url)) || atr_client_set_token(c, token) != 0) {
    atr_client_free(c);
    return NULL;
  }
  size_t n = strlen(c->url);
  while (n > 0 && c->url[n - 1] == '/')
    c->url[--n] = '\0';
  return c;
}

int atr_client_set_token(atr_client_t *c, const char *token) {
  char *copy = token && *token ? strdup(token) : NULL;
  if (token && *token && !copy)
    return ATR_ENOMEM;
  free_secret(c->token);
  c->token = copy;
  return 0;
}

const char *atr_client_url(const atr_client_t *c) {
  return c->url;
}

void atr_client_free(atr_client_t *c) {
  if (!c)
    return;
  free(c->url);
  free_secret(c->token);
  free(c);
}

void atr_client_res_free(atr_client_res_t *res) {
  json_decref(res->body);
  res->body = NULL;
}

/* ---- one exchange ------------------------------------------------------- */

typedef struct answer {
  char *data;
  size_t len;
} answer_t;

static size_t collect(char *data, size_t size, size_t n, void *ud) {
  answer_t *a = ud;
  size_t add = size * n;
  if (a->len + add > MAX_ANSWER)
    return 0;
  char *grown = realloc(a->data, a->len + add + 1);
  if (!grown)
    return 0;
  a->data = grown;
  memcpy(a->data + a->len, data, add);
  a->len += add;
  a->data[a->len] = '\0';
  return add;
}

/* The headers of every request: what is accepted, the body's type (none
 * when NULL) and the token. The line carrying the token is wiped. */
static struct curl_slist *request_headers(const atr_client_t *c,
                                          const char *accept,
                                          const char *content_type) {
  char *line = NULL;
  if (asprintf(&line, "Accept: %s", accept) < 0)
    return NULL;
  struct curl_slist *h = curl_slist_append(NULL, line);
  free(line);
  line = NULL;
  /* Without this curl waits for "100 Continue" on larger bodies. */
  h = h ? curl_slist_append(h, "Expect:") : NULL;
  if (h && content_type) {
    struct curl_slist *grown = NULL;
    if (asprintf(&line, "Content-Type: %s", content_type) >= 0)
      grown = curl_slist_append(h, line);
    free(line);
    if (!grown)
      curl_slist_free_all(h);
    h = grown;
  }
  if (h && c->token) {
    if (asprintf(&line, "Atrium-Session-Token: %s", c->token) < 0) {
      curl_slist_free_all(h);
      return NULL;
    }
    struct curl_slist *grown = curl_slist_append(h, line);
    free_secret(line);
    if (!grown)
      curl_slist_free_all(h);
    h = grown;
  }
  return h;
}

/* The first line of a body that is not JSON, short, for an error. */
static void first_line(const answer_t *a, char *buf, size_t size) {
  size_t n = 0;
  for (size_t i = 0; a->data && i < a->len && n + 1 < size; i++) {
    if (a->data[i] == '\n' || a->data[i] == '\r')
      break;
    buf[n++] = a->data[i];
  }
  buf[n] = '\0';
}

static int parse_answer(const atr_client_t *c, const char *path, answer_t *a,
                        atr_client_res_t *res, char **err) {
  if (a->len == 0)
    return 0;
  res->body = json_loadb(a->data, a->len, 0, NULL);
  if (res->body)
    return 0;
  char line[120];
  first_line(a, line, sizeof line);
  if (asprintf(err,
               "%s%s answered HTTP %ld with something that is not JSON: "
               "\"%s\"; is %s an atrium server?",
               c->url, path, res->status, line, c->url) < 0)
    *err = NULL;
  return ATR_EIO;
}

/* One request: what perform() sends and where the answer goes. */
typedef struct request {
  const char *method;
  const char *url;
  const char *accept;
  const char *content_type; /* of body; NULL when there is none */
  const char *body;         /* NULL: none (an empty one for POST etc.) */
  size_t len;
  curl_write_callback write;
  void *ud;
  bool stream;         /* no overall time limit; a silent stream is dropped */
  const bool *stopped; /* the writer stopped on purpose: not a failure */
} request_t;

static void set_method(CURL *h, const request_t *rq) {
  if (strcmp(rq->method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    return;
  }
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, rq->method);
  if (strcmp(rq->method, "DELETE") == 0 && !rq->body)
    return;
  /* Always a body, empty if need be, so that a Content-Length is sent. */
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
                   (curl_off_t)(rq->body ? rq->len : 0));
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
}

static bool interrupted(const atr_client_t *c) {
  return c->interrupt && *c->interrupt;
}

/* libcurl calls this about once a second even while nothing arrives. */
static int check_interrupt(void *ud, curl_off_t dltotal, curl_off_t dlnow,
                           curl_off_t ultotal, curl_off_t ulnow) {
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  return interrupted(ud) ? 1 : 0;
}

static void set_common(atr_client_t *c, CURL *h, const request_t *rq,
                       struct curl_slist *headers, char *errbuf) {
  curl_easy_setopt(h, CURLOPT_URL, rq->url);
  set_method(h, rq);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, rq->write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, rq->ud);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "atrium-cli/" ATR_VERSION);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  if (rq->stream) {
    /* Keepalive comments come every 15 s: a minute of silence means the
     * connection is gone. */
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
  } else {
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
  }
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, check_interrupt);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
  /* Redirects are not followed: they would carry the token elsewhere. */
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
}

/* Send rq. 0 when the server answered (*status), ATR_ECANCELED when the
 * interrupt flag stopped it, else ATR_EUNAVAIL with *err. ud_handle, when
 * not NULL, receives the handle for the writer's use during the call. */
static int perform(atr_client_t *c, const request_t *rq, long *status,
                   CURL **ud_handle, char **err) {
  CURL *h = curl_easy_init();
  struct curl_slist *headers =
      h ? request_headers(c, rq->accept, rq->content_type) : NULL;
  if (!h || !headers) {
    curl_easy_cleanup(h);
    return ATR_ENOMEM;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  set_common(c, h, rq, headers, errbuf);
  if (ud_handle)
    *ud_handle = h;
  CURLcode cc = curl_easy_perform(h);
  if (ud_handle)
    *ud_handle = NULL;
  int rc = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  if (cc == CURLE_ABORTED_BY_CALLBACK || (cc != CURLE_OK && interrupted(c))) {
    rc = ATR_ECANCELED;
  } else if (cc != CURLE_OK && !(rq->stopped && *rq->stopped)) {
    if (asprintf(err, "cannot reach %s: %s", c->url,
                 errbuf[0] ? errbuf : curl_easy_strerror(cc)) < 0)
      *err = NULL;
    rc = ATR_EUNAVAIL;
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return rc;
}

static int exchange(atr_client_t *c, const char *method, const char *path,
                    const char *content_type, const char *body, size_t len,
                    atr_client_res_t *res, char **err) {
  char *url = NULL;
  if (asprintf(&url, "%s%s", c->url, path) < 0)
    return ATR_ENOMEM;
  answer_t a = {0};
  request_t rq = {.method = method,
                  .url = url,
                  .accept = "application/json",
                  .content_type = content_type,
                  .body = body,
                  .len = len,
                  .write = collect,
                  .ud = &a};
  int rc = perform(c, &rq, &res->status, NULL, err);
  if (rc == 0)
    rc = parse_answer(c, path, &a, res, err);
  free(a.data);
  free(url);
  return rc;
}

int atr_client_call(atr_client_t *c, const char *method, const char *path,
                    json_t *body, atr_client_res_t *res, char **err) {
  res->status = 0;
  res->body = NULL;
  *err = NULL;
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (body && !text)
    return ATR_ENOMEM;
  int rc = exchange(c, method, path, text ? "application/json" : NULL, text,
                    text ? strlen(text) : 0, res, err);
  /* The body may have carried a password. */
  free_secret(text);
  return rc;
}

int atr_client_upload(atr_client_t *c, const char *path,
                      const char *content_type, const void *data, size_t len,
                      atr_client_res_t *res, char **err) {
  res->status = 0;
  res->body = NULL;
  *err = NULL;
  return exchange(c, "POST", path, content_type, data ? data : "", len, res,
                  err);
}

void atr_client_set_interrupt(atr_client_t *c, volatile sig_atomic_t *flag) {
  c->interrupt = flag;
}

/* ---- server-sent events --------------------------------------------------- */

/* One line of the stream, or one field's value, may not exceed this. */
#define MAX_EVENT ((size_t)4 * 1024 * 1024)
#define STREAM_RETRIES 5

typedef struct text {
  char *data;
  size_t len;
} text_t;

static bool text_add(text_t *t, const char *data, size_t n) {
  if (t->len + n > MAX_EVENT)
    return false;
  char *grown = realloc(t->data, t->len + n + 1);
  if (!grown)
    return false;
  t->data = grown;
  memcpy(t->data + t->len, data, n);
  t->len += n;
  t->data[t->len] = '\0';
  return true;
}

static void text_reset(text_t *t) {
  free(t->data);
  t->data = NULL;
  t->len = 0;
}

enum { MODE_UNKNOWN, MODE_EVENTS, MODE_BODY };

typedef struct sse {
  atr_client_event_fn fn;
  void *ud;
  CURL *h; /* during a transfer */
  int mode;
  answer_t body; /* MODE_BODY: the answer that is not a stream */
  text_t line, event, data, id;
  bool has_data, has_id;
  char last_id[32];
  bool got_events, ended, stopped, failed;
  int result; /* fn's positive value when it stopped the stream */
} sse_t;

static void sse_reset(sse_t *s) {
  s->mode = MODE_UNKNOWN;
  free(s->body.data);
  s->body.data = NULL;
  s->body.len = 0;
  text_reset(&s->line);
  text_reset(&s->event);
  text_reset(&s->data);
  text_reset(&s->id);
  s->has_data = s->has_id = false;
  s->got_events = false;
}

/* The id to resume after: the event's own, or its JSON data's "id". */
static void remember_id(sse_t *s) {
  if (s->has_id && s->id.len < sizeof s->last_id) {
    snprintf(s->last_id, sizeof s->last_id, "%s", s->id.data ? s->id.data : "");
    return;
  }
  json_t *j = s->data.data ? json_loads(s->data.data, 0, NULL) : NULL;
  json_t *id = json_object_get(j, "id");
  if (json_is_integer(id))
    snprintf(s->last_id, sizeof s->last_id, "%" JSON_INTEGER_FORMAT,
             json_integer_value(id));
  json_decref(j);
}

static void dispatch(sse_t *s) {
  if (s->has_data || s->event.len > 0) {
    atr_client_event_t ev = {.event =
                                 s->event.len > 0 ? s->event.data : "message",
                             .data = s->data.data ? s->data.data : "",
                             .id = s->has_id && s->id.data ? s->id.data : NULL};
    s->got_events = true;
    remember_id(s);
    int rc = s->fn(&ev, s->ud);
    if (rc > 0) {
      s->result = rc;
      s->stopped = true;
    } else if (strcmp(ev.event, "end") == 0) {
      s->ended = s->stopped = true;
    }
  }
  text_reset(&s->event);
  text_reset(&s->data);
  text_reset(&s->id);
  s->has_data = s->has_id = false;
}

/* One line without its end: a field, a comment, or a blank line. */
static bool take_line(sse_t *s, const char *line, size_t len) {
  if (len == 0) {
    dispatch(s);
    return true;
  }
  if (line[0] == ':')
    return true;
  const char *colon = memchr(line, ':', len);
  size_t nlen = colon ? (size_t)(colon - line) : len;
  const char *value = colon ? colon + 1 : line + len;
  size_t vlen = (size_t)(line + len - value);
  if (vlen > 0 && value[0] == ' ') {
    value++;
    vlen--;
  }
  bool ok = true;
  if (nlen == 5 && strncmp(line, "event", 5) == 0) {
    text_reset(&s->event);
    ok = text_add(&s->event, value, vlen);
  } else if (nlen == 4 && strncmp(line, "data", 4) == 0) {
    ok = (!s->has_data || text_add(&s->data, "\n", 1)) &&
         text_add(&s->data, value, vlen);
    s->has_data = true;
  } else if (nlen == 2 && strncmp(line, "id", 2) == 0) {
    text_reset(&s->id);
    ok = text_add(&s->id, value, vlen);
    s->has_id = true;
  }
  return ok;
}

static size_t sse_write(char *data, size_t size, size_t n, void *ud) {
  sse_t *s = ud;
  size_t len = size * n;
  if (s->mode == MODE_UNKNOWN) {
    long status = 0;
    char *type = NULL;
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->h, CURLINFO_CONTENT_TYPE, &type);
    bool events = status >= 200 && status <= 299 && type &&
                  strncasecmp(type, "text/event-stream", 17) == 0;
    s->mode = events ? MODE_EVENTS : MODE_BODY;
  }
  if (s->mode == MODE_BODY)
    return collect(data, size, n, &s->body);
  for (size_t i = 0; i < len && !s->stopped; i++) {
    if (data[i] != '\n') {
      if (!text_add(&s->line, &data[i], 1)) {
        s->failed = true;
        return 0;
      }
      continue;
    }
    size_t l = s->line.len;
    if (l > 0 && s->line.data[l - 1] == '\r')
      l--;
    if (!take_line(s, s->line.data ? s->line.data : "", l)) {
      s->failed = true;
      return 0;
    }
    text_reset(&s->line);
  }
  return s->stopped ? 0 : len;
}

/* A second between attempts, cut short by the interrupt flag. */
static void pause_before_retry(const atr_client_t *c) {
  for (int i = 0; i < 10 && !interrupted(c); i++) {
    struct timespec ts = {0, 100000000L};
    nanosleep(&ts, NULL);
  }
}

/* One connection: 0 when it ended (or was stopped), else negative. */
static int stream_once(atr_client_t *c, const char *path, sse_t *s,
                       long *status, char **err) {
  char *url = NULL;
  const char *sep = strchr(path, '?') ? "&" : "?";
  int n = s->last_id[0]
              ? asprintf(&url, "%s%s%safter=%s", c->url, path, sep, s->last_id)
              : asprintf(&url, "%s%s", c->url, path);
  if (n < 0)
    return ATR_ENOMEM;
  request_t rq = {.method = "GET",
                  .url = url,
                  .accept = "text/event-stream",
                  .write = sse_write,
                  .ud = s,
                  .stream = true,
                  .stopped = &s->stopped};
  int rc = perform(c, &rq, status, &s->h, err);
  free(url);
  if (rc == 0 && s->failed)
    rc = ATR_ENOMEM;
  return rc;
}

/* The stream's outcome once the server answered something else. */
static int not_a_stream(const atr_client_t *c, const char *path, sse_t *s,
                        long status, atr_client_res_t *res, char **err) {
  res->status = status;
  if (status >= 200 && status <= 299) {
    if (asprintf(err, "%s%s answered without an event stream", c->url, path) <
        0)
      *err = NULL;
    return ATR_ENOTSUP;
  }
  int rc = parse_answer(c, path, &s->body, res, err);
  return rc != 0 ? rc : ATR_EIO;
}

int atr_client_stream(atr_client_t *c, const char *path, atr_client_event_fn fn,
                      void *ud, atr_client_res_t *res, char **err) {
  res->status = 0;
  res->body = NULL;
  *err = NULL;
  sse_t s = {.fn = fn, .ud = ud};
  int rc = 0;
  for (int failures = 0;;) {
    sse_reset(&s);
    long status = 0;
    rc = stream_once(c, path, &s, &status, err);
    if (s.stopped) {
      rc = s.ended ? 0 : s.result;
      break;
    }
    if (rc == ATR_ECANCELED || rc == ATR_ENOMEM)
      break;
    if (rc == 0 && s.mode == MODE_BODY) {
      rc = not_a_stream(c, path, &s, status, res, err);
      break;
    }
    /* Broken off, or closed before "end": resume after the last id. */
    failures = s.got_events ? 1 : failures + 1;
    if (failures > STREAM_RETRIES) {
      if (rc == 0 &&
          asprintf(err, "the event stream from %s%s kept ending early", c->url,
                   path) < 0)
        *err = NULL;
      rc = rc != 0 ? rc : ATR_EIO;
      break;
    }
    free(*err);
    *err = NULL;
    pause_before_retry(c);
    if (interrupted(c)) {
      rc = ATR_ECANCELED;
      break;
    }
  }
  sse_reset(&s);
  return rc;
}

/* ---- errors -------------------------------------------------------------- */

static const char *jstr(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

void atr_client_print_error(const char *what, const atr_client_res_t *res) {
  const char *message = jstr(res->body, "message");
  const char *detail = jstr(res->body, "detail");
  if (message && *message)
    fprintf(stderr, "%s: %s\n", what, message);
  else
    fprintf(stderr, "%s: the server answered HTTP %ld\n", what, res->status);
  if (detail && *detail)
    fprintf(stderr, "%s\n", detail);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(res->body, "validations"), i, v) {
    const char *field = jstr(v, "field"), *why = jstr(v, "detail");
    fprintf(stderr, "  %s: %s\n", field ? field : "?", why ? why : "");
  }
}

int atr_client_request(atr_client_t *c, const char *what, const char *method,
                       const char *path, json_t *body, json_t **out) {
  atr_client_res_t res;
  char *err = NULL;
  *out = NULL;
  int rc = atr_client_call(c, method, path, body, &res, &err);
  if (rc != 0) {
    fprintf(stderr, "%s: %s\n", what, err ? err : atr_strerror(rc));
    free(err);
    atr_client_res_free(&res);
    return 1;
  }
  if (res.status < 200 || res.status > 299) {
    atr_client_print_error(what, &res);
    atr_client_res_free(&res);
    return 1;
  }
  *out = res.body;
  return 0;
}

char *atr_client_escape(const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  char *out = malloc(strlen(s) * 3 + 1), *o = out;
  for (; out && *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
        (ch >= '0' && ch <= '9') || strchr("-._~", ch)) {
      *o++ = (char)ch;
    } else {
      *o++ = '%';
      *o++ = hex[ch >> 4];
      *o++ = hex[ch & 15];
    }
  }
  if (out)
    *o = '\0';
  return out;
}
