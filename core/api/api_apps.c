/* core/api/api_apps.c — see api_apps.h: the /@ handler. Parse, one
 * domain call (atr_app_open), then a page, a redirect or the tunnel. */
#include "api_apps.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "apps.h"
#include "atrium/error.h"
#include "http_exchange.h"
#include "log.h"
#include "session.h"

#define ROUTE "/@{owner}/{workspace}/apps/{slug}/*"
#define MAX_HEADERS 100

/* ---- pages --------------------------------------------------------------- */

static void escape(const char *s, char *out, size_t size) {
  size_t o = 0;
  for (; s && *s && o + 7 < size; s++) {
    const char *e = NULL;
    switch (*s) {
    case '<':
      e = "&lt;";
      break;
    case '>':
      e = "&gt;";
      break;
    case '&':
      e = "&amp;";
      break;
    case '"':
      e = "&quot;";
      break;
    case '\'':
      e = "&#39;";
      break;
    default:
      break;
    }
    if (e) {
      size_t n = strlen(e);
      memcpy(out + o, e, n);
      o += n;
    } else {
      out[o++] = *s;
    }
  }
  out[o] = '\0';
}

/* Without a dashboard yet, the sign-in page signs in itself: the API's
 * password login sets the session cookie, then the page reloads. */
static const char sign_in_form[] =
    "<form id=f><p><input name=email type=email placeholder=Email required> "
    "<input name=password type=password placeholder=Password required> "
    "<button>Sign in</button></p><p id=m></p></form><script>"
    "document.getElementById('f').onsubmit=function(e){e.preventDefault();"
    "var d=new FormData(e.target);fetch('/api/v2/users/login',{method:'POST',"
    "credentials:'same-origin',headers:{'Content-Type':'application/json'},"
    "body:JSON.stringify({email:d.get('email'),password:d.get('password')})})"
    ".then(function(r){if(r.ok){location.reload();return;}return r.json()"
    ".then(function(j){document.getElementById('m').textContent=j.message;});"
    "});};</script>";

static void page(atr_http_exchange_t *x, int status, const char *title,
                 const char *detail, bool sign_in) {
  char t[512], d[2048];
  escape(title, t, sizeof t);
  escape(detail, d, sizeof d);
  char *html = NULL;
  int n = asprintf(&html,
                   "<!doctype html><html><head><meta charset=utf-8>"
                   "<title>%s</title><style>body{font-family:sans-serif;"
                   "max-width:40em;margin:4em auto;color:#222}</style></head>"
                   "<body><h1>%s</h1><p>%s</p>%s<p><small>atrium</small></p>"
                   "</body></html>\n",
                   t, t, d, sign_in ? sign_in_form : "");
  if (n < 0) {
    atr__http_respond(x, 500, "text/plain", "out of memory\n", 14);
    return;
  }
  atr__http_add_header(x, "Cache-Control", "no-store");
  atr__http_respond(x, status, "text/html; charset=utf-8", html, (size_t)n);
  free(html);
}

static void redirect(atr_http_exchange_t *x, int status, const char *location) {
  atr__http_add_header(x, "Location", location);
  atr__http_add_header(x, "Cache-Control", "no-store");
  atr__http_respond(x, status, "text/plain", "", 0);
}

/* A domain refusal as a page. */
static void refusal_page(atr_http_exchange_t *x, int rc, atr_fault_t *f,
                         const char *request_id) {
  const char *msg = f->message, *detail = f->detail ? f->detail : "";
  switch (rc) {
  case ATR_ENOENT:
    page(x, 404, msg ? msg : "App not found.", detail, false);
    break;
  case ATR_EACCES:
    page(x, 401, msg ? msg : "Sign in to open this app.", detail, true);
    break;
  case ATR_EPERM:
    page(x, 403, msg ? msg : "You may not open this app.", detail, false);
    break;
  case ATR_EUNAVAIL:
    atr__http_add_header(x, "Retry-After", "5");
    page(x, 503, msg ? msg : "The database is unavailable.",
         msg ? detail : "Retry shortly.", false);
    break;
  default:
    atr_log(ATR_LOG_ERROR, "apps", "request %s: %s: %s", request_id,
            atr_err_name(rc), f->detail ? f->detail : atr_strerror(rc));
    page(x, 500, "Internal error.", "The error was logged with the request id.",
         false);
  }
}

/* ---- credentials --------------------------------------------------------- */

/* The value of cookie name in any Cookie header, into buf. */
static const char *cookie(atr_http_exchange_t *x, const char *name, char *buf,
                          size_t size) {
  size_t len = strlen(name);
  const char *hn = NULL, *hv = NULL;
  for (size_t i = 0; atr__http_header_at(x, i, &hn, &hv); i++) {
    if (strcasecmp(hn, "Cookie") != 0)
      continue;
    for (const char *p = hv; *p;) {
      p += strspn(p, " \t;");
      size_t seg = strcspn(p, ";");
      if (seg > len && strncmp(p, name, len) == 0 && p[len] == '=' &&
          seg - len - 1 < size) {
        memcpy(buf, p + len + 1, seg - len - 1);
        buf[seg - len - 1] = '\0';
        return buf;
      }
      p += seg;
    }
  }
  return NULL;
}

/* An API key's shape (session.h): "<10>-<22>". An app's own bearer
 * tokens are left alone. */
static bool key_shaped(const char *s) {
  const char *dash = strchr(s, '-');
  return dash && dash - s == ATR_KEY_ID_LEN &&
         strlen(dash + 1) == ATR_KEY_SECRET_LEN;
}

typedef struct creds {
  char app_token[128];
  char cookie_key[128];
  const char *key; /* the API key presented, or NULL */
  bool key_cookie; /* it came in the atrium_session cookie */
  bool key_bearer; /* in Authorization */
} creds_t;

static void read_creds(atr_http_exchange_t *x, creds_t *c) {
  memset(c, 0, sizeof *c);
  cookie(x, ATR_API_APP_TOKEN_COOKIE, c->app_token, sizeof c->app_token);
  const char *h = atr__http_header(x, "Atrium-Session-Token");
  if (h && *h) {
    c->key = h;
    return;
  }
  if (cookie(x, "atrium_session", c->cookie_key, sizeof c->cookie_key)) {
    c->key = c->cookie_key;
    c->key_cookie = true;
    return;
  }
  h = atr__http_header(x, "Authorization");
  if (h && strncasecmp(h, "Bearer ", 7) == 0 && key_shaped(h + 7)) {
    c->key = h + 7;
    c->key_bearer = true;
  }
}

/* ---- the tunnel ------------------------------------------------------------ */

typedef struct app_tunnel {
  atr_domain_t dom;
  atr_app_access_t a;
  atr_actor_t actor; /* a.actor with its strings copied below */
  char ip[64], user_agent[256], request_id[37];
  bool websocket;
} app_tunnel_t;

static void tunnel_ended(void *ud, const atr_http_tunnel_end_t *end) {
  app_tunnel_t *t = ud;
  if (!t->websocket)
    return; /* a plain request: its app session was audited at its token */
  atr_app_session_ended(
      &t->dom, &t->actor, &t->a,
      &(atr_app_session_end_t){.reason = end->reason,
                               .duration_ms = end->duration_ms,
                               .bytes_to_agent = end->bytes_to_agent,
                               .bytes_from_agent = end->bytes_from_agent});
}

static const atr_http_tunnel_ops_t tunnel_ops = {
    .struct_size = sizeof tunnel_ops, .ended = tunnel_ended, .free_ud = free};

static app_tunnel_t *tunnel_ud(const atr_api_env_t *env,
                               const atr_app_access_t *a, bool websocket) {
  app_tunnel_t *t = calloc(1, sizeof *t);
  if (!t)
    return NULL;
  t->dom = env->dom;
  t->a = *a;
  OPENSSL_cleanse(t->a.token, sizeof t->a.token);
  t->actor = a->actor;
  snprintf(t->ip, sizeof t->ip, "%s", a->actor.ip ? a->actor.ip : "");
  snprintf(t->user_agent, sizeof t->user_agent, "%s",
           a->actor.user_agent ? a->actor.user_agent : "");
  snprintf(t->request_id, sizeof t->request_id, "%s",
           a->actor.request_id ? a->actor.request_id : "");
  t->actor.ip = t->ip;
  t->actor.user_agent = t->user_agent;
  t->actor.request_id = t->request_id;
  t->websocket = websocket;
  return t;
}

static const char *client_proto(const atr_api_env_t *env) {
  char *url = env->app ? atr_app_access_url(env->app) : NULL;
  bool https = url && strncasecmp(url, "https://", 8) == 0;
  free(url);
  return https || env->secure_cookies ? "https" : "http";
}

/* The request head for the app; NULL answered a page. */
static char *build_head(const atr_api_env_t *env, atr_http_exchange_t *x,
                        const atr_http_request_t *req, const atr_app_path_t *ap,
                        const atr_app_url_t *u, const char *remote_ip,
                        const creds_t *c, bool websocket, size_t *len) {
  const char *names[MAX_HEADERS], *values[MAX_HEADERS];
  size_t n = 0;
  while (n < MAX_HEADERS && atr__http_header_at(x, n, &names[n], &values[n]))
    n++;
  char app_host[300];
  snprintf(app_host, sizeof app_host,
           strchr(u->host, ':') ? "[%s]:%d" : "%s:%d", u->host, u->port);
  bool unread = atr__http_body_unread(x);
  atr_app_head_t h = {.method = req->method,
                      .app_path = u->path,
                      .rest = ap->rest,
                      .rest_len = ap->rest_len,
                      .query = ap->query,
                      .names = names,
                      .values = values,
                      .nheaders = n,
                      .client_ip = remote_ip ? remote_ip : "",
                      .proto = client_proto(env),
                      .app_host = app_host,
                      .websocket = websocket,
                      .strip_authorization = c->key_bearer,
                      .body_len = unread ? -1 : (int64_t)req->body_len};
  size_t head_len = 0;
  char *head = atr_api_app_head(&h, &head_len);
  if (!head) {
    page(x, 400, "Invalid request.",
         "A header holds a character that cannot be forwarded.", false);
    return NULL;
  }
  /* A body the server already read (a path not beginning "/@" exactly,
   * like "/%40…") follows the head: atr__http_tunnel sends it. */
  *len = head_len;
  return head;
}

static void open_tunnel(const atr_api_env_t *env, atr_http_exchange_t *x,
                        const atr_http_request_t *req, const atr_app_path_t *ap,
                        const atr_app_access_t *a, const atr_app_url_t *u,
                        const char *remote_ip, const creds_t *c) {
  bool websocket = atr__http_wants_upgrade(x);
  size_t len = 0;
  char *head = build_head(env, x, req, ap, u, remote_ip, c, websocket, &len);
  if (!head)
    return;
  char open[400];
  if (u->loopback)
    snprintf(open, sizeof open, "{\"kind\":\"tcp\",\"port\":%d}", u->port);
  else
    snprintf(open, sizeof open,
             "{\"kind\":\"tcp\",\"port\":%d,\"host\":\"%s\"}", u->port,
             u->host); /* host: checked characters only (URL) */
  app_tunnel_t *ud = tunnel_ud(env, a, websocket);
  atr_http_tunnel_req_t t = {.struct_size = sizeof t,
                             .agent_key = a->agent_id,
                             .kind = "app",
                             .open = open,
                             .mode = ATR_HTTP_TUNNEL_HTTP,
                             .prefix = head,
                             .prefix_len = len};
  int rc = ud ? atr__http_tunnel(x, &t, &tunnel_ops, ud) : ATR_ENOMEM;
  free(head);
  if (rc == 0)
    return;
  free(ud);
  if (rc == ATR_ENOENT)
    page(x, 502, "The workspace agent is not connected to this server.",
         "Its connection may have just dropped: reload in a few seconds.",
         false);
  else
    page(x, 502, "The app cannot be reached.", atr_strerror(rc), false);
}

/* ---- the handler ----------------------------------------------------------- */

/* A host for the open event: letters, digits, dots, dashes, colons (an
 * IPv6 literal); anything else would need JSON escaping. */
static bool host_plain(const char *h) {
  for (; *h; h++)
    if (!(h[0] == '.' || h[0] == '-' || h[0] == ':' || h[0] == '_' ||
          (h[0] >= '0' && h[0] <= '9') || (h[0] >= 'a' && h[0] <= 'z') ||
          (h[0] >= 'A' && h[0] <= 'Z')))
      return false;
  return true;
}

/* The app token is set for the app's prefix only, so neither another app
 * nor the API ever receives it; then the same URL again. */
static void answer_token(const atr_api_env_t *env, atr_http_exchange_t *x,
                         const atr_app_path_t *ap, const atr_app_access_t *a) {
  char cookie_text[512];
  snprintf(cookie_text, sizeof cookie_text,
           ATR_API_APP_TOKEN_COOKIE "=%s; Path=%.*s/; Max-Age=%lld; HttpOnly; "
                                    "SameSite=Lax%s",
           a->token, (int)ap->prefix_len, ap->prefix,
           (long long)a->token_max_age_s,
           env->secure_cookies ? "; Secure" : "");
  atr__http_add_header(x, "Set-Cookie", cookie_text);
  OPENSSL_cleanse(cookie_text, sizeof cookie_text);
  char *location = strdup(ap->prefix);
  redirect(x, 303, location ? location : "/");
  free(location);
}

static void serve(const atr_api_env_t *env, atr_http_exchange_t *x,
                  const atr_http_request_t *req, const atr_app_path_t *ap,
                  const char *remote_ip, const char *user_agent, char *who,
                  size_t who_size) {
  creds_t c;
  read_creds(x, &c);
  bool get =
      strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
  atr_app_request_t in = {.owner = ap->owner,
                          .workspace = ap->workspace,
                          .agent = ap->agent,
                          .slug = ap->slug,
                          .app_token = c.app_token[0] ? c.app_token : NULL,
                          .session_key = c.key,
                          .want_token = get && c.key_cookie &&
                                        !atr__http_wants_upgrade(x)};
  atr_actor_t from = {
      .ip = remote_ip, .user_agent = user_agent, .request_id = req->request_id};
  atr_app_access_t a;
  atr_fault_t f = {0};
  int rc = atr_app_open(&env->dom, &from, &in, &a, &f);
  OPENSSL_cleanse(&c.cookie_key, sizeof c.cookie_key);
  if (a.actor.username[0])
    snprintf(who, who_size, "%s", a.actor.username);
  if (rc != 0) {
    refusal_page(x, rc, &f, req->request_id);
  } else if (a.token[0]) {
    answer_token(env, x, ap, &a);
  } else {
    atr_app_url_t u;
    char path[sizeof u.path];
    const char *why = NULL;
    if (atr_api_app_url_parse(a.url, &u, &why) != 0 || !host_plain(u.host)) {
      page(x, 502, "The app's URL cannot be proxied.",
           why ? why : "Its host holds characters no host name has.", false);
    } else if (!atr_api_app_path_expand(u.path, a.owner_name, a.workspace_name,
                                        a.agent_name, a.slug, path,
                                        sizeof path)) {
      page(x, 502, "The app's URL cannot be proxied.",
           "Its path is too long once the names are put in.", false);
    } else if (ap->rest_len == 1 && !ap->query && u.query[0] && get) {
      /* Coder's rule: an app URL's query (code-server's ?folder=) is
       * what the app's root opens with. */
      char *location = NULL;
      if (asprintf(&location, "%.*s/?%s", (int)ap->prefix_len, ap->prefix,
                   u.query) > 0)
        redirect(x, 307, location);
      free(location);
    } else {
      snprintf(u.path, sizeof u.path, "%s", path);
      open_tunnel(env, x, req, ap, &a, &u, remote_ip, &c);
    }
  }
  OPENSSL_cleanse(a.token, sizeof a.token);
  atr_fault_clear(&f);
}

int atr_api_apps_dispatch(const atr_api_env_t *env, atr_http_exchange_t *x,
                          const atr_http_request_t *req, const char *remote_ip,
                          const char *user_agent, const char **route_template,
                          char *who, size_t who_size) {
  *route_template = ROUTE;
  who[0] = '\0';
  if (atr__http_session_ud(x)) { /* an agent's session is no browser */
    page(x, 404, "Not found.", "Apps are not served inside agent sessions.",
         false);
    return 1;
  }
  atr_app_path_t ap;
  const char *why = NULL;
  int rc = atr_api_app_path_parse(atr__http_target(x), &ap, &why);
  if (rc == ATR_ENOENT) {
    page(x, 404, "Not found.", why, false);
  } else if (rc != 0) {
    page(x, 400, "Invalid app path.", why, false);
  } else if (ap.rest_len == 0) {
    /* Apps load their assets relative to their root: it ends with '/'. */
    char *location = NULL;
    if (asprintf(&location, "%.*s/%s%s", (int)ap.prefix_len, ap.prefix,
                 ap.query ? "?" : "", ap.query ? ap.query : "") > 0)
      redirect(x, 307, location);
    else
      page(x, 500, "Internal error.", "Out of memory.", false);
    free(location);
  } else {
    serve(env, x, req, &ap, remote_ip, user_agent, who, who_size);
  }
  return 1;
}
