/* tests/integration/http_client.c — see http_client.h. */
#include "http_client.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t collect(char *data, size_t size, size_t n, void *ud) {
  atr_response_t *r = ud;
  size_t add = size * n;
  char *grown = realloc(r->body, r->len + add + 1);
  if (!grown)
    return 0;
  r->body = grown;
  memcpy(r->body + r->len, data, add);
  r->len += add;
  r->body[r->len] = '\0';
  return add;
}

atr_response_t atr_http_call(const atr_harness_t *h, const char *method,
                             const char *path, const char *token,
                             const char *body) {
  atr_response_t r = {0};
  char url[1024], auth[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", h->port, path);
  CURL *c = curl_easy_init();
  struct curl_slist *headers = NULL;
  if (!c)
    return r;
  if (token) {
    snprintf(auth, sizeof auth, "Atrium-Session-Token: %s", token);
    headers = curl_slist_append(headers, auth);
  }
  if (body) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return r;
}

long atr_http_json(const atr_harness_t *h, const char *method, const char *path,
                   const char *token, const char *body, json_t **json) {
  atr_response_t r = atr_http_call(h, method, path, token, body);
  *json = r.body && r.len ? json_loadb(r.body, r.len, 0, NULL) : NULL;
  long status = r.status;
  atr_response_free(&r);
  return status;
}
