/* core/api/api_apps.h — workspace apps through the server:
 * ANY /@{owner}/{workspace}[.{agent}]/apps/{slug}/… proxied to the app's
 * URL inside the workspace over an HTTP-mode tunnel
 * (docs/design/connect.md §2, §3; docs/api.md, "Workspace apps").
 *
 * The handler parses the path, calls atr_app_open() (domain/apps.h) and
 * answers: a page of its own (400, 401, 403, 404, 502, 503), a redirect
 * (a missing slash after the slug; a new app token set as a cookie), or
 * the tunnel, whose first bytes are the request head rewritten here.
 *
 * Like Coder's path-based apps, the prefix is stripped: a request for
 * /@alice/dev/apps/code/x?y reaches the app as <app URL path>x?y, so an
 * app that must know its base path (Jupyter) has it in its URL
 * (http://localhost:8888/@alice/dev/apps/jupyter/). The client's Host
 * goes through unchanged (X-Forwarded-Host repeats it), as Coder's
 * reverse proxy does, so an app's same-origin checks on WebSockets see
 * the browser's origin.
 *
 * The pure parts (path, app URL, request head) are exposed for the unit
 * tests. Threads: handlers run on HTTP workers; the rest is pure.
 */
#ifndef ATRIUM_CORE_API_APPS_H
#define ATRIUM_CORE_API_APPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "api.h"

#define ATR_API_APP_NAME_MAX 64 /* each of owner, workspace, agent, slug */
#define ATR_API_APP_TOKEN_COOKIE "atrium_app_token"

/* A request target under /@, split. The names are percent-decoded and
 * checked (1-64 of A-Z a-z 0-9 _ -); the rest stays raw. */
typedef struct atr_app_path {
  char owner[ATR_API_APP_NAME_MAX + 1];
  char workspace[2 * ATR_API_APP_NAME_MAX + 2]; /* with ".agent" at first */
  char agent[ATR_API_APP_NAME_MAX + 1];         /* "" when not named */
  char slug[ATR_API_APP_NAME_MAX + 1];
  const char *prefix; /* raw "/@owner/ws[.agent]/apps/slug" in the target */
  size_t prefix_len;
  const char *rest;  /* raw path after the prefix ("" or "/..."), */
  size_t rest_len;   /* up to the query */
  const char *query; /* raw, after '?', or NULL */
} atr_app_path_t;

/* 0; ATR_EINVAL for a malformed app path (*why says what; 400);
 * ATR_ENOENT for a path under /@ that names no app (404). The pointers
 * point into target. */
int atr_api_app_path_parse(const char *target, atr_app_path_t *out,
                           const char **why);

/* An app's URL: http only (the agent dials plain TCP). */
typedef struct atr_app_url {
  char host[256]; /* without brackets */
  int port;
  bool loopback;  /* localhost or 127.0.0.1: the agent's default host */
  char path[512]; /* "/" when the URL has none */
  char query[512];
} atr_app_url_t;
/* 0, or ATR_EINVAL with *why. */
int atr_api_app_url_parse(const char *url, atr_app_url_t *out,
                          const char **why);

/* The app URL's path with {owner}, {workspace}, {agent} and {slug}
 * replaced by the workspace's names, into out: how a template gives an
 * app its base path (Jupyter's base_url) though template.yaml is the same
 * for every workspace. false when it does not fit. */
bool atr_api_app_path_expand(const char *path, const char *owner,
                             const char *workspace, const char *agent,
                             const char *slug, char *out, size_t size);

/* What the app is sent before the body. */
typedef struct atr_app_head {
  const char *method;
  const char *app_path; /* the app URL's path */
  const char *rest;     /* raw path after the prefix, beginning with '/' */
  size_t rest_len;
  const char *query;                        /* raw, or NULL */
  const char *const *names, *const *values; /* the request's headers */
  size_t nheaders;
  const char *client_ip;
  const char *proto;        /* "http" or "https": how the client reached us */
  const char *app_host;     /* "host:port" for a request without Host */
  bool websocket;           /* keep Connection: Upgrade, Upgrade: websocket */
  bool strip_authorization; /* it carried our API key */
  /* >= 0: the server already read the body (this many bytes follow the
   * head, de-chunked): framing headers are replaced by Content-Length */
  int64_t body_len;
} atr_app_head_t;

/* The rewritten head, "\r\n\r\n"-terminated (malloc'd; *len its size),
 * or NULL when a header holds a byte no head may carry (CR, LF, NUL) or
 * memory ran out. Dropped: hop-by-hop headers (Connection and what it
 * names, Keep-Alive, Proxy-Connection, TE, Upgrade, Proxy-Authorization),
 * our credentials (Atrium-Session-Token, Atrium-CSRF-Token, every
 * atrium_* cookie, Authorization when strip_authorization), and the
 * client's own X-Forwarded-* and Forwarded (replaced by ours). Added:
 * X-Forwarded-For/-Proto/-Host, Connection: close (or Upgrade). */
char *atr_api_app_head(const atr_app_head_t *h, size_t *len);

/* Cookie header value without atrium_* cookies, into out (at most
 * size-1 bytes): the number of cookies kept. Pure. */
size_t atr_api_app_strip_cookies(const char *value, char *out, size_t size);

/* From atr_api_dispatch for a path beginning "/@": answers always. */
int atr_api_apps_dispatch(const atr_api_env_t *env, atr_http_exchange_t *x,
                          const atr_http_request_t *req, const char *remote_ip,
                          const char *user_agent, const char **route_template,
                          char *who, size_t who_size);

#endif
