/* tests/api/client.c — see client.h. */
#include "client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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

/* Keep the value of each Set-Cookie header line, one per line. */
static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  static const char name[] = "Set-Cookie:";
  size_t len = size * n;
  if (len <= sizeof name - 1 || strncasecmp(data, name, sizeof name - 1) != 0)
    return len;
  const char *v = data + sizeof name - 1, *end = data + len;
  while (v < end && *v == ' ')
    v++;
  while (end > v && (end[-1] == '\r' || end[-1] == '\n'))
    end--;
  if (buf_add(ud, v, (size_t)(end - v)) != 0 || buf_add(ud, "\n", 1) != 0)
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

atr_tc_res_t atr_tc_call(int port, const atr_tc_req_t *req) {
  atr_tc_res_t res = {0};
  buf_t body = {0}, cookies = {0};
  char url[1024];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, req->path);
  char *payload = req->body ? json_dumps(req->body, JSON_COMPACT) : NULL;
  struct curl_slist *headers = NULL;
  headers = add_header(headers, "Atrium-Session-Token", "", req->token);
  headers = add_header(headers, "Authorization", "Bearer ", req->bearer);
  headers = add_header(headers, "Atrium-CSRF-Token", "", req->csrf);
  if (payload)
    headers = add_header(headers, "Content-Type", "", "application/json");
  else if (req->raw)
    headers = add_header(headers, "Content-Type", "", req->content_type);
  /* "Expect:" with no value stops libcurl's 100-continue round trip */
  struct curl_slist *expect = curl_slist_append(headers, "Expect:");
  headers = expect ? expect : headers;
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req->method ? req->method : "GET");
  if (payload) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
  } else if (req->raw) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, req->raw);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)req->raw_len);
  }
  if (req->cookie)
    curl_easy_setopt(c, CURLOPT_COOKIE, req->cookie);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &cookies);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (curl_easy_perform(c) == CURLE_OK) {
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res.status);
    char *type = NULL;
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
    snprintf(res.content_type, sizeof res.content_type, "%s", type ? type : "");
  }
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  free(payload);
  res.len = body.len;
  res.body = body.data ? body.data : strdup("");
  res.set_cookies = cookies.data ? cookies.data : strdup("");
  res.json = body.len ? json_loadb(body.data, body.len, 0, NULL) : NULL;
  return res;
}

void atr_tc_res_free(atr_tc_res_t *res) {
  free(res->body);
  free(res->set_cookies);
  json_decref(res->json);
  memset(res, 0, sizeof *res);
}

const char *atr_tc_str(const atr_tc_res_t *res, const char *key) {
  return json_string_value(json_object_get(res->json, key));
}

const char *atr_tc_cookie(const atr_tc_res_t *res, const char *name, char *buf,
                          size_t size) {
  size_t len = strlen(name);
  for (const char *line = res->set_cookies; line && *line;) {
    const char *nl = strchr(line, '\n');
    size_t n = nl ? (size_t)(nl - line) : strlen(line);
    if (n > len && strncmp(line, name, len) == 0 && line[len] == '=') {
      const char *v = line + len + 1;
      const char *semi = memchr(v, ';', n - len - 1);
      size_t vlen = semi ? (size_t)(semi - v) : n - len - 1;
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
