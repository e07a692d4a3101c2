/* core/client.c — see client.h. */
#include "client.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/error.h"
#include "version.h"

/* An answer larger than this is refused rather than buffered. */
#define MAX_ANSWER ((size_t)16 * 1024 * 1024)

struct atr_client {
  char *url;
  char *token; /* NULL when none; wiped before it is freed */
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

static struct curl_slist *request_headers(const atr_client_t *c, bool body) {
  struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
  /* Without this curl waits for "100 Continue" on larger bodies. */
  h = h ? curl_slist_append(h, "Expect:") : NULL;
  if (h && body)
    h = curl_slist_append(h, "Content-Type: application/json");
  if (h && c->token) {
    char *line = NULL;
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

static void set_method(CURL *h, const char *method, const char *text) {
  if (strcmp(method, "GET") == 0) {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    return;
  }
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  if (strcmp(method, "DELETE") == 0 && !text)
    return;
  /* Always a body, empty if need be, so that a Content-Length is sent. */
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, text ? text : "");
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)(text ? strlen(text) : 0));
}

static int perform(atr_client_t *c, const char *method, const char *url,
                   const char *text, long *status, answer_t *a, char **err) {
  CURL *h = curl_easy_init();
  struct curl_slist *headers = h ? request_headers(c, text != NULL) : NULL;
  if (!h || !headers) {
    curl_easy_cleanup(h);
    return ATR_ENOMEM;
  }
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(h, CURLOPT_URL, url);
  set_method(h, method, text);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "atrium-cli/" ATR_VERSION);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  /* Redirects are not followed: they would carry the token elsewhere. */
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
  curl_easy_setopt(h, CURLOPT_PROTOCOLS, CURLPROTO_HTTP | CURLPROTO_HTTPS);
#endif
  CURLcode cc = curl_easy_perform(h);
  int rc = 0;
  if (cc != CURLE_OK) {
    if (asprintf(err, "cannot reach %s: %s", c->url,
                 errbuf[0] ? errbuf : curl_easy_strerror(cc)) < 0)
      *err = NULL;
    rc = ATR_EUNAVAIL;
  } else {
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return rc;
}

int atr_client_call(atr_client_t *c, const char *method, const char *path,
                    json_t *body, atr_client_res_t *res, char **err) {
  res->status = 0;
  res->body = NULL;
  *err = NULL;
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  char *url = NULL;
  if ((body && !text) || asprintf(&url, "%s%s", c->url, path) < 0) {
    free_secret(text);
    return ATR_ENOMEM;
  }
  answer_t a = {0};
  int rc = perform(c, method, url, text, &res->status, &a, err);
  /* The body may have carried a password. */
  free_secret(text);
  if (rc == 0)
    rc = parse_answer(c, path, &a, res, err);
  free(a.data);
  free(url);
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

/* ---- the stored session -------------------------------------------------- */

static const char *env_value(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

int atr_client_config_dir(char *buf, size_t size) {
  const char *dir = env_value("ATRIUM_CONFIG_DIR");
  const char *xdg = env_value("XDG_CONFIG_HOME");
  const char *home = env_value("HOME");
  int n;
  if (dir)
    n = snprintf(buf, size, "%s", dir);
  else if (xdg && xdg[0] == '/') /* relative ones are invalid per the spec */
    n = snprintf(buf, size, "%s/atrium", xdg);
  else if (home)
    n = snprintf(buf, size, "%s/.config/atrium", home);
  else
    return ATR_ENOENT;
  return n < 0 || (size_t)n >= size ? ATR_ERANGE : 0;
}

static int session_path(char *buf, size_t size, char **err) {
  char dir[4096];
  int rc = atr_client_config_dir(dir, sizeof dir);
  int n = rc == 0 ? snprintf(buf, size, "%s/session.json", dir) : -1;
  if (rc == 0 && (n < 0 || (size_t)n >= size))
    rc = ATR_ERANGE;
  if (rc == ATR_ENOENT)
    *err = strdup("no config directory: set HOME, XDG_CONFIG_HOME or "
                  "ATRIUM_CONFIG_DIR");
  else if (rc != 0)
    *err = strdup("the config directory's path is too long");
  return rc;
}

static int replace(char **field, const char *value) {
  char *copy = value ? strdup(value) : NULL;
  if (value && !copy)
    return ATR_ENOMEM;
  free_secret(*field);
  *field = copy;
  return 0;
}

static int read_stored(atr_client_session_t *s, char **err) {
  char path[4200];
  int rc = session_path(path, sizeof path, err);
  if (rc != 0) {
    free(*err);
    *err = NULL;
    return 0; /* nowhere to look: nothing stored */
  }
  FILE *f = fopen(path, "r");
  if (!f) {
    if (errno == ENOENT)
      return 0;
    return asprintf(err, "cannot read %s: %s", path, strerror(errno)) < 0
               ? ATR_ENOMEM
               : ATR_EIO;
  }
  json_error_t jerr;
  json_t *j = json_loadf(f, 0, &jerr);
  fclose(f);
  if (!json_is_object(j)) {
    json_decref(j);
    return asprintf(err, "%s is not a session file; run `atrium login URL`",
                    path) < 0
               ? ATR_ENOMEM
               : ATR_EINVAL;
  }
  rc = replace(&s->url, json_string_value(json_object_get(j, "url")));
  if (rc == 0)
    rc = replace(&s->token,
                 json_string_value(json_object_get(j, "session_token")));
  json_decref(j);
  return rc;
}

/* Equal but for trailing slashes. */
static bool same_url(const char *a, const char *b) {
  if (!b)
    return false;
  size_t na = strlen(a), nb = strlen(b);
  while (na > 0 && a[na - 1] == '/')
    na--;
  while (nb > 0 && b[nb - 1] == '/')
    nb--;
  return na == nb && strncmp(a, b, na) == 0;
}

int atr_client_session_load(atr_client_session_t *s, char **err) {
  s->url = s->token = NULL;
  *err = NULL;
  int rc = read_stored(s, err);
  const char *url = env_value("ATRIUM_URL");
  const char *token = env_value("ATRIUM_SESSION_TOKEN");
  /* A stored token belongs to the stored URL; never send it elsewhere. */
  if (rc == 0 && url && !same_url(url, s->url))
    rc = replace(&s->token, NULL);
  if (rc == 0 && url)
    rc = replace(&s->url, url);
  if (rc == 0 && token)
    rc = replace(&s->token, token);
  if (rc != 0)
    atr_client_session_clear(s);
  return rc;
}

void atr_client_session_clear(atr_client_session_t *s) {
  free(s->url);
  free_secret(s->token);
  s->url = s->token = NULL;
}

/* mkdir -p with mode 0700 for what it creates; the last directory is made
 * 0700 even when it existed, since it holds credentials. */
static int make_private_dir(const char *dir, char **err) {
  char path[4096];
  snprintf(path, sizeof path, "%s", dir);
  for (char *p = path + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
      goto fail;
    *p = '/';
  }
  if ((mkdir(path, 0700) != 0 && errno != EEXIST) || chmod(path, 0700) != 0)
    goto fail;
  return 0;
fail:
  return asprintf(err, "cannot create the directory %s: %s", path,
                  strerror(errno)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
}

static int write_all(int fd, const char *text) {
  for (size_t off = 0, len = strlen(text); off < len;) {
    ssize_t n = write(fd, text + off, len - off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    off += (size_t)n;
  }
  return 0;
}

int atr_client_session_save(const char *url, const char *token, char **err) {
  char dir[4096], path[4200], tmp[4200];
  *err = NULL;
  int rc = session_path(path, sizeof path, err);
  if (rc != 0)
    return rc;
  atr_client_config_dir(dir, sizeof dir);
  if ((rc = make_private_dir(dir, err)) != 0)
    return rc;
  json_t *j = json_pack("{s:s, s:s}", "url", url, "session_token", token);
  char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
  json_decref(j);
  if (!text)
    return ATR_ENOMEM;
  snprintf(tmp, sizeof tmp, "%s/.session.json.XXXXXX", dir);
  int fd = mkstemp(tmp); /* made 0600 */
  bool ok = fd >= 0 && fchmod(fd, 0600) == 0 && write_all(fd, text) == 0 &&
            write_all(fd, "\n") == 0 && fsync(fd) == 0;
  int saved = errno;
  free_secret(text);
  if (fd >= 0 && close(fd) != 0 && ok) {
    ok = false;
    saved = errno;
  }
  if (ok && rename(tmp, path) != 0) {
    ok = false;
    saved = errno;
  }
  if (ok)
    return 0;
  if (fd >= 0)
    unlink(tmp);
  return asprintf(err, "cannot write %s: %s", path, strerror(saved)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
}

int atr_client_session_remove(bool *removed, char **err) {
  char path[4200];
  *removed = false;
  *err = NULL;
  int rc = session_path(path, sizeof path, err);
  if (rc != 0)
    return rc;
  if (unlink(path) == 0) {
    *removed = true;
    return 0;
  }
  if (errno == ENOENT)
    return 0;
  return asprintf(err, "cannot remove %s: %s", path, strerror(errno)) < 0
             ? ATR_ENOMEM
             : ATR_EIO;
}
