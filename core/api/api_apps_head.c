/* core/api/api_apps_head.c — see api_apps.h: the pure parts of app
 * proxying (the path, the app's URL, the request head sent to the app). */
#include "api_apps.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrium/error.h"

/* ---- the path ------------------------------------------------------------ */

static int hexval(int c) {
  return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

static bool name_char(int c) {
  return isalnum(c) || c == '-' || c == '_';
}

/* Decode the raw segment [s, s+n) into out; dots and @ are kept (the
 * workspace segment splits on a dot, the owner's begins with @; the
 * names are checked after). false for a bad escape or a character no name
 * may hold. */
static bool decode_segment(const char *s, size_t n, char *out, size_t size) {
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];
    if (c == '%') {
      if (i + 2 >= n || !isxdigit((unsigned char)s[i + 1]) ||
          !isxdigit((unsigned char)s[i + 2]))
        return false;
      c = hexval((unsigned char)s[i + 1]) * 16 +
          hexval((unsigned char)s[i + 2]);
      i += 2;
    }
    if (!name_char(c) && c != '.' && c != '@')
      return false;
    if (o + 1 >= size)
      return false;
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return true;
}

static bool name_ok(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > ATR_API_APP_NAME_MAX)
    return false;
  for (size_t i = 0; i < n; i++)
    if (!name_char((unsigned char)s[i]))
      return false;
  return true;
}

/* The next raw segment after *p (which points at a '/'): its start and
 * length; *p moves to the '/', '?' or end after it. */
static bool next_segment(const char **p, const char **seg, size_t *len) {
  if (**p != '/')
    return false;
  *seg = *p + 1;
  *len = strcspn(*seg, "/?");
  *p = *seg + *len;
  return true;
}

static int split_workspace(char *ws, char *agent, size_t agent_size,
                           const char **why) {
  char *dot = strchr(ws, '.');
  agent[0] = '\0';
  if (dot) {
    *dot = '\0';
    snprintf(agent, agent_size, "%s", dot + 1);
    if (!name_ok(agent)) {
      *why = "The agent name (after the dot) must be 1-64 characters of "
             "A-Z, a-z, 0-9, _ and -.";
      return ATR_EINVAL;
    }
  }
  if (!name_ok(ws)) {
    *why = "The workspace name must be 1-64 characters of A-Z, a-z, 0-9, _ "
           "and -.";
    return ATR_EINVAL;
  }
  return 0;
}

int atr_api_app_path_parse(const char *target, atr_app_path_t *out,
                           const char **why) {
  memset(out, 0, sizeof *out);
  *why = NULL;
  const char *t = target;
  if (strncmp(t, "http://", 7) == 0 || strncmp(t, "https://", 8) == 0) {
    const char *slash = strchr(strstr(t, "//") + 2, '/');
    t = slash ? slash : "/";
  }
  out->prefix = t;
  char seg_buf[4][ATR_API_APP_NAME_MAX * 2 + 2];
  const char *p = t, *seg = NULL;
  size_t len = 0;
  for (int i = 0; i < 4; i++) {
    if (!next_segment(&p, &seg, &len)) {
      *why = "An app's path is /@owner/workspace/apps/slug/.";
      return ATR_ENOENT;
    }
    if (!decode_segment(seg, len, seg_buf[i], sizeof seg_buf[i])) {
      *why = "Each part of /@owner/workspace/apps/slug/ must be 1-64 "
             "characters of A-Z, a-z, 0-9, _ and - (a dot separates an "
             "agent's name from the workspace's).";
      return ATR_EINVAL;
    }
  }
  if (seg_buf[0][0] != '@' || strcmp(seg_buf[2], "apps") != 0) {
    *why = "An app's path is /@owner/workspace/apps/slug/.";
    return ATR_ENOENT;
  }
  if (!name_ok(seg_buf[0] + 1)) {
    *why = "The owner's username must be 1-64 characters of A-Z, a-z, 0-9, _ "
           "and -.";
    return ATR_EINVAL;
  }
  if (!name_ok(seg_buf[3])) {
    *why = "The app's slug must be 1-64 characters of a-z, 0-9 and -.";
    return ATR_EINVAL;
  }
  /* each checked to fit above */
  snprintf(out->owner, sizeof out->owner, "%.64s", seg_buf[0] + 1);
  snprintf(out->slug, sizeof out->slug, "%.64s", seg_buf[3]);
  snprintf(out->workspace, sizeof out->workspace, "%s", seg_buf[1]);
  int rc = split_workspace(out->workspace, out->agent, sizeof out->agent, why);
  if (rc != 0)
    return rc;
  out->prefix_len = (size_t)(p - t);
  out->rest = p;
  out->rest_len = strcspn(p, "?");
  out->query = p[out->rest_len] == '?' ? p + out->rest_len + 1 : NULL;
  return 0;
}

/* ---- the app's URL --------------------------------------------------------- */

/* The agent's default (127.0.0.1) reaches it: localhost is taken as
 * 127.0.0.1, as most apps listen there; any other host, ::1 included, is
 * named in the open event (the agent allows hosts its apps' URLs name). */
static bool loopback(const char *host) {
  return strcasecmp(host, "localhost") == 0 || strcmp(host, "127.0.0.1") == 0;
}

int atr_api_app_url_parse(const char *url, atr_app_url_t *out,
                          const char **why) {
  memset(out, 0, sizeof *out);
  if (strncasecmp(url, "http://", 7) != 0) {
    *why = "Only http:// app URLs can be proxied (the agent dials plain "
           "TCP inside the workspace).";
    return ATR_EINVAL;
  }
  const char *h = url + 7;
  size_t alen = strcspn(h, "/?#");
  const char *at = memchr(h, '@', alen); /* userinfo: not the host */
  if (at)
    h = at + 1;
  size_t hlen;
  const char *after;
  if (*h == '[') {
    const char *close = strchr(h, ']');
    if (!close) {
      *why = "The app URL's IPv6 host has no closing bracket.";
      return ATR_EINVAL;
    }
    hlen = (size_t)(close - h - 1);
    h++;
    after = close + 1;
  } else {
    hlen = strcspn(h, ":/?#");
    after = h + hlen;
  }
  if (hlen == 0 || hlen >= sizeof out->host) {
    *why = "The app URL has no host, or one too long.";
    return ATR_EINVAL;
  }
  memcpy(out->host, h, hlen);
  out->port = 80;
  if (*after == ':') {
    char *end = NULL;
    long port = strtol(after + 1, &end, 10);
    if (end == after + 1 || port < 1 || port > 65535 ||
        (*end && !strchr("/?#", *end))) {
      *why = "The app URL's port must be 1-65535.";
      return ATR_EINVAL;
    }
    out->port = (int)port;
    after = end;
  }
  size_t plen = strcspn(after, "?#");
  const char *q = after[plen] == '?' ? after + plen + 1 : NULL;
  size_t qlen = q ? strcspn(q, "#") : 0;
  if (plen + 2 > sizeof out->path || qlen + 1 > sizeof out->query) {
    *why = "The app URL's path or query is too long.";
    return ATR_EINVAL;
  }
  if (plen)
    snprintf(out->path, sizeof out->path, "%.*s", (int)plen, after);
  else
    snprintf(out->path, sizeof out->path, "/");
  snprintf(out->query, sizeof out->query, "%.*s", (int)qlen, q ? q : "");
  out->loopback = loopback(out->host);
  return 0;
}

bool atr_api_app_path_expand(const char *path, const char *owner,
                             const char *workspace, const char *agent,
                             const char *slug, char *out, size_t size) {
  const char *const keys[] = {"{owner}", "{workspace}", "{agent}", "{slug}"};
  const char *const values[] = {owner, workspace, agent, slug};
  size_t o = 0;
  for (const char *p = path; *p;) {
    const char *v = NULL;
    size_t klen = 0;
    for (size_t i = 0; i < 4 && !v; i++)
      if (strncmp(p, keys[i], strlen(keys[i])) == 0) {
        v = values[i];
        klen = strlen(keys[i]);
      }
    size_t n = v ? strlen(v) : 1;
    if (o + n + 1 > size)
      return false;
    memcpy(out + o, v ? v : p, n);
    o += n;
    p += v ? klen : 1;
  }
  out[o] = '\0';
  return true;
}

/* ---- cookies ------------------------------------------------------------- */

size_t atr_api_app_strip_cookies(const char *value, char *out, size_t size) {
  size_t o = 0, kept = 0;
  if (size)
    out[0] = '\0';
  for (const char *p = value; p && *p;) {
    while (*p == ' ' || *p == '\t' || *p == ';')
      p++;
    size_t n = strcspn(p, ";");
    size_t trimmed = n;
    while (trimmed && (p[trimmed - 1] == ' ' || p[trimmed - 1] == '\t'))
      trimmed--;
    /* Our cookies: every name atrium_*, whatever case a client sends. */
    bool ours = strncasecmp(p, "atrium_", 7) == 0;
    size_t need = (kept ? 2 : 0) + trimmed + 1; /* "; ", the cookie, NUL */
    if (trimmed && !ours && o + need <= size) {
      if (kept++) {
        memcpy(out + o, "; ", 2);
        o += 2;
      }
      memcpy(out + o, p, trimmed);
      o += trimmed;
      out[o] = '\0';
    }
    p += n;
  }
  return kept;
}

/* ---- the head ------------------------------------------------------------ */

typedef struct buf {
  char *p;
  size_t len, cap;
  bool bad;
} buf_t;

static void put(buf_t *b, const char *s, size_t n) {
  if (b->bad)
    return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->bad = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s) {
  put(b, s, strlen(s));
}

static void header(buf_t *b, const char *name, const char *value) {
  if (strpbrk(value, "\r\n") || strpbrk(name, "\r\n: "))
    b->bad = true;
  puts_(b, name);
  puts_(b, ": ");
  puts_(b, value);
  puts_(b, "\r\n");
}

/* Is name one of the comma-separated tokens of the Connection values? */
static bool named_by_connection(const atr_app_head_t *h, const char *name) {
  size_t nlen = strlen(name);
  for (size_t i = 0; i < h->nheaders; i++) {
    if (strcasecmp(h->names[i], "Connection") != 0)
      continue;
    for (const char *p = h->values[i]; *p;) {
      p += strspn(p, " \t,");
      size_t n = strcspn(p, " \t,");
      if (n == nlen && strncasecmp(p, name, n) == 0)
        return true;
      p += n;
    }
  }
  return false;
}

static bool is_framing(const char *name) {
  return strcasecmp(name, "Content-Length") == 0 ||
         strcasecmp(name, "Transfer-Encoding") == 0;
}

static bool dropped(const atr_app_head_t *h, const char *name) {
  static const char *const always[] = {"Connection",
                                       "Keep-Alive",
                                       "Proxy-Connection",
                                       "TE",
                                       "Upgrade",
                                       "Proxy-Authorization",
                                       "Atrium-Session-Token",
                                       "Atrium-CSRF-Token",
                                       "X-Forwarded-For",
                                       "X-Forwarded-Proto",
                                       "X-Forwarded-Host",
                                       "X-Forwarded-Prefix",
                                       "Forwarded",
                                       NULL};
  for (size_t i = 0; always[i]; i++)
    if (strcasecmp(name, always[i]) == 0)
      return true;
  if (h->strip_authorization && strcasecmp(name, "Authorization") == 0)
    return true;
  if (h->body_len >= 0 && is_framing(name))
    return true;
  /* Framing and Host stay whatever Connection names: the server parsed
   * the body by them, and the app must read the same. */
  return !is_framing(name) && strcasecmp(name, "Host") != 0 &&
         named_by_connection(h, name);
}

static void request_line(buf_t *b, const atr_app_head_t *h) {
  puts_(b, h->method);
  puts_(b, " ");
  /* Coder's joining: the app URL's path, then the rest without a
   * doubled slash. */
  size_t plen = strlen(h->app_path);
  put(b, h->app_path, plen && h->app_path[plen - 1] == '/' ? plen - 1 : plen);
  if (h->rest_len)
    put(b, h->rest, h->rest_len);
  else
    puts_(b, "/");
  if (h->query) {
    puts_(b, "?");
    puts_(b, h->query);
  }
  puts_(b, " HTTP/1.1\r\n");
  if (strpbrk(h->method, " \r\n") || (h->query && strpbrk(h->query, " \r\n")) ||
      memchr(h->rest, ' ', h->rest_len) || memchr(h->rest, '\r', h->rest_len) ||
      memchr(h->rest, '\n', h->rest_len))
    b->bad = true;
}

static void kept_headers(buf_t *b, const atr_app_head_t *h, bool *had_host,
                         bool *had_framing, const char **host) {
  for (size_t i = 0; i < h->nheaders; i++) {
    const char *name = h->names[i], *value = h->values[i];
    if (is_framing(name))
      *had_framing = true;
    if (strcasecmp(name, "Host") == 0) {
      *had_host = true;
      *host = value;
    }
    if (dropped(h, name))
      continue;
    if (strcasecmp(name, "Cookie") == 0) {
      size_t size = strlen(value) + 1;
      char *kept = malloc(size);
      if (!kept) {
        b->bad = true;
        continue;
      }
      if (atr_api_app_strip_cookies(value, kept, size) > 0)
        header(b, name, kept);
      free(kept);
      continue;
    }
    header(b, name, value);
  }
}

char *atr_api_app_head(const atr_app_head_t *h, size_t *len) {
  buf_t b = {0};
  bool had_host = false, had_framing = false;
  const char *host = NULL;
  request_line(&b, h);
  kept_headers(&b, h, &had_host, &had_framing, &host);
  if (!had_host)
    header(&b, "Host", h->app_host);
  if (h->body_len > 0 || (h->body_len == 0 && had_framing)) {
    char n[32];
    snprintf(n, sizeof n, "%lld", (long long)h->body_len);
    header(&b, "Content-Length", n);
  }
  header(&b, "X-Forwarded-For", h->client_ip);
  header(&b, "X-Forwarded-Proto", h->proto);
  header(&b, "X-Forwarded-Host", host ? host : h->app_host);
  if (h->websocket) {
    header(&b, "Connection", "Upgrade");
    header(&b, "Upgrade", "websocket");
  } else {
    header(&b, "Connection", "close");
  }
  puts_(&b, "\r\n");
  if (b.bad) {
    free(b.p);
    return NULL;
  }
  *len = b.len;
  return b.p;
}
