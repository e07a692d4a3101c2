/* core/api.c — routing, authentication and authorization for /api/v2, and
 * the JSON answers every handler uses. */
#include "api.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_agent_me.h"
#include "api_apps.h"
#include "atrium/error.h"
#include "audit.h"
#include "http_exchange.h"
#include "json_bounds.h"
#include "log.h"
#include "ratelimit.h"
#include "session.h"

/* ---- matching ---------------------------------------------------------- */

/* Segment-by-segment match of "/api/v2/users/{user}" against a path;
 * captures parameters into r. */
static bool match_pattern(const char *pattern, const char *path,
                          atr_api_req_t *r) {
  size_t n = 0;
  while (*pattern && *path) {
    if (*pattern == '{') {
      const char *close = strchr(pattern, '}');
      const char *end = strchr(path, '/');
      size_t len = end ? (size_t)(end - path) : strlen(path);
      if (!close || len == 0 || len >= sizeof r->param_values[0] ||
          n == ATR_API_MAX_PARAMS)
        return false;
      if (r) {
        r->param_names[n] = pattern + 1; /* up to '}' — compared by length */
        memcpy(r->param_values[n], path, len);
        r->param_values[n][len] = '\0';
      }
      n++;
      pattern = close + 1;
      path += len;
      continue;
    }
    if (*pattern != *path)
      return false;
    pattern++;
    path++;
  }
  if (r)
    r->nparams = n;
  return *pattern == '\0' && (*path == '\0' || strcmp(path, "/") == 0);
}

const atr_api_route_t *atr_api_match(const char *method, const char *path,
                                     atr_api_req_t *r, bool *mismatch) {
  *mismatch = false;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    if (!match_pattern(rt->pattern, path, NULL))
      continue;
    if (strcmp(rt->method, method) != 0) {
      *mismatch = true;
      continue;
    }
    match_pattern(rt->pattern, path, r);
    return rt;
  }
  return NULL;
}

bool atr_api_route_allows(const atr_api_route_t *route, bool signed_in,
                          uint32_t roles, bool self) {
  switch (route->authz) {
  case ATR_AUTHZ_PUBLIC:
    return true;
  case ATR_AUTHZ_SIGNED_IN:
    return signed_in;
  case ATR_AUTHZ_RBAC:
    return signed_in && atr_rbac_allowed(roles, route->res, route->act,
                                         self && route->self_param != NULL);
  case ATR_AUTHZ_AGENT:
    return false; /* no user, whatever their roles */
  }
  return false;
}

bool atr_api_route_allows_agent(const atr_api_route_t *route) {
  return route->authz == ATR_AUTHZ_AGENT;
}

const char *atr_api_param(const atr_api_req_t *r, const char *name) {
  size_t len = strlen(name);
  for (size_t i = 0; i < r->nparams; i++)
    if (strncmp(r->param_names[i], name, len) == 0 &&
        r->param_names[i][len] == '}')
      return r->param_values[i];
  return NULL;
}

static int hexval(int c) {
  return isdigit(c) ? c - '0' : tolower(c) - 'a' + 10;
}

const char *atr_api_query(const atr_api_req_t *r, const char *name, char *buf,
                          size_t size) {
  size_t len = strlen(name);
  for (const char *q = r->query; q && *q;) {
    const char *amp = strchr(q, '&');
    size_t seg = amp ? (size_t)(amp - q) : strlen(q);
    if (seg > len && strncmp(q, name, len) == 0 && q[len] == '=') {
      size_t o = 0;
      for (size_t i = len + 1; i < seg && o + 1 < size; i++) {
        if (q[i] == '%' && i + 2 < seg && isxdigit((unsigned char)q[i + 1]) &&
            isxdigit((unsigned char)q[i + 2])) {
          buf[o++] = (char)(hexval(q[i + 1]) * 16 + hexval(q[i + 2]));
          i += 2;
        } else {
          buf[o++] = q[i] == '+' ? ' ' : q[i];
        }
      }
      buf[o] = '\0';
      return buf;
    }
    q = amp ? amp + 1 : NULL;
  }
  return NULL;
}

/* ---- answers ----------------------------------------------------------- */

/* Keep the answer for flush_answer(); a second answer is ignored. */
static void hold_answer(atr_api_req_t *r, int status, char *text) {
  if (r->status != 0) {
    free(text);
    return;
  }
  r->status = status;
  r->answer = text;
  r->answer_len = text ? strlen(text) : 0;
}

int atr_api_raw(atr_api_req_t *r, int status, const char *content_type,
                const void *data, size_t len) {
  if (r->status != 0)
    return 0; /* one answer per request */
  char *copy = malloc(len ? len : 1);
  if (!copy)
    return atr_api_error(r, 500, "Internal error.", "out of memory");
  memcpy(copy, data, len);
  r->status = status;
  r->answer = copy;
  r->answer_len = len;
  r->answer_type = content_type;
  return 0;
}

static void flush_answer(atr_api_req_t *r) {
  if (r->status == 0)
    return;
  atr__http_respond(r->x, r->status,
                    r->answer_type ? r->answer_type : "application/json",
                    r->answer ? r->answer : "", r->answer_len);
  free(r->answer);
  r->answer = NULL;
}

int atr_api_json(atr_api_req_t *r, int status, json_t *body) {
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  if (!text)
    return atr_api_error(r, 500, "Internal error.", "out of memory");
  hold_answer(r, status, text);
  return 0;
}

int atr_api_error(atr_api_req_t *r, int status, const char *message,
                  const char *detail) {
  json_t *j = json_pack("{s:s, s:s}", "message", message, "detail",
                        detail ? detail : "");
  char *text = json_dumps(j, JSON_COMPACT);
  json_decref(j);
  hold_answer(r, status, text ? text : strdup("{}"));
  return 0;
}

int atr_api_no_content(atr_api_req_t *r) {
  hold_answer(r, 204, NULL);
  return 0;
}

int atr_api_validation(atr_api_req_t *r, const char *message,
                       json_t *validations) {
  return atr_api_json(r, 400,
                      json_pack("{s:s, s:s, s:o}", "message", message, "detail",
                                "", "validations", validations));
}

int atr_api_fail(atr_api_req_t *r, int rc, const char *err) {
  switch (rc) {
  case ATR_EUNAVAIL:
    atr_api_header(r, "Retry-After", "5");
    return atr_api_error(r, 503, "The database is unavailable.",
                         "Retry shortly.");
  case ATR_ENOENT:
    return atr_api_error(r, 404, "Resource not found.", err);
  case ATR_EPERM:
    return atr_api_error(r, 403, "Forbidden.", err);
  case ATR_ECONSTRAINT:
  case ATR_EEXIST:
    return atr_api_error(r, 409, "Conflict with an existing resource.", err);
  case ATR_EINVAL:
    return atr_api_error(r, 400, "Invalid request.", err);
  default:
    atr_log(ATR_LOG_ERROR, "api", "request %s: %s: %s", r->request_id,
            atr_err_name(rc), err ? err : atr_strerror(rc));
    return atr_api_error(r, 500, "Internal error.",
                         "The error was logged with the request id.");
  }
}

int atr_api_fault(atr_api_req_t *r, atr_fault_t *f) {
  int code = atr_fault_code(f);
  int status = atr_fault_status(f);
  int rc;
  if (status == 500 || (!f->message && !atr_fault_has_fields(f))) {
    rc = atr_api_fail(r, code ? code : ATR_EIO, f->detail);
  } else {
    json_t *body = json_pack("{s:s}", "message",
                             f->message ? f->message : "Invalid request.");
    if (f->detail)
      json_object_set_new(body, "detail", json_string(f->detail));
    if (atr_fault_has_fields(f))
      json_object_set(body, "validations", f->validations);
    if (json_is_object(f->extra))
      json_object_update(body, f->extra);
    rc = atr_api_json(r, status, body);
  }
  atr_fault_clear(f);
  return rc;
}

int atr_api_answer(atr_api_req_t *r, int rc, int status, json_t *body,
                   atr_fault_t *f) {
  if (rc != 0) {
    json_decref(body);
    return atr_api_fault(r, f);
  }
  atr_fault_clear(f);
  return body ? atr_api_json(r, status, body) : atr_api_no_content(r);
}

void atr_api_header(atr_api_req_t *r, const char *name, const char *value) {
  atr__http_add_header(r->x, name, value);
}

/* What a body may hold before jansson builds it: enough for any request the
 * API takes, far less than what would exhaust a worker's stack or the
 * memory of the server. Before sign-in only the small bodies of sign-in
 * and the first user are legitimate. */
static const atr_json_bounds_t body_bounds = {.max_depth = 64,
                                              .max_values = 100000};
static const atr_json_bounds_t anonymous_body_bounds = {.max_depth = 16,
                                                        .max_values = 1000};

json_t *atr_api_body(atr_api_req_t *r) {
  char why[100];
  if (atr_json_measure(r->body, r->body_len,
                       r->signed_in ? &body_bounds : &anonymous_body_bounds,
                       why, sizeof why) != 0) {
    char detail[200];
    snprintf(detail, sizeof detail, "The body is %s.", why);
    atr_api_error(r, 413, "Request body too complex.", detail);
    return NULL;
  }
  json_error_t jerr;
  json_t *j = r->body_len ? json_loadb(r->body, r->body_len,
                                       JSON_REJECT_DUPLICATES, &jerr)
                          : NULL;
  if (j && json_is_object(j))
    return j;
  char detail[300];
  if (!r->body_len)
    snprintf(detail, sizeof detail, "The request needs a JSON object body.");
  else if (!j)
    snprintf(detail, sizeof detail, "line %d, column %d: %s", jerr.line,
             jerr.column, jerr.text);
  else
    snprintf(detail, sizeof detail, "The body must be a JSON object.");
  json_decref(j);
  atr_api_error(r, 400, "Request body is not valid JSON.", detail);
  return NULL;
}

/* ---- rate limits ----------------------------------------------------------- */

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool atr_api_rate_limited(atr_api_req_t *r, struct atr_ratelimit *rl,
                          const char *key) {
  int retry = 1;
  if (!rl || atr_ratelimit_take(rl, key, mono_ms(), &retry))
    return false;
  char value[16];
  snprintf(value, sizeof value, "%d", retry);
  atr_api_header(r, "Retry-After", value);
  atr_api_error(r, 429, "Too many requests.",
                "Slow down; the Retry-After header says when to try again.");
  return true;
}

/* ---- authentication ------------------------------------------------------- */

/* The value of cookie `name` in a Cookie header, into buf. */
static const char *cookie_value(const char *header, const char *name, char *buf,
                                size_t size) {
  size_t len = strlen(name);
  for (const char *p = header; p && *p;) {
    while (*p == ' ' || *p == ';')
      p++;
    const char *end = strchr(p, ';');
    size_t seg = end ? (size_t)(end - p) : strlen(p);
    if (seg > len && strncmp(p, name, len) == 0 && p[len] == '=' &&
        seg - len - 1 < size) {
      memcpy(buf, p + len + 1, seg - len - 1);
      buf[seg - len - 1] = '\0';
      return buf;
    }
    p = end;
  }
  return NULL;
}

/* The presented key: Atrium-Session-Token, Authorization: Bearer, or the
 * atrium_session cookie (*via_cookie). */
static const char *presented_key(atr_api_req_t *r, char *buf, size_t size,
                                 bool *via_cookie) {
  *via_cookie = false;
  const char *h = atr__http_header(r->x, "Atrium-Session-Token");
  if (h && *h)
    return h;
  h = atr__http_header(r->x, "Authorization");
  if (h && strncasecmp(h, "Bearer ", 7) == 0)
    return h + 7;
  const char *c = cookie_value(atr__http_header(r->x, "Cookie"),
                               "atrium_session", buf, size);
  *via_cookie = c != NULL;
  return c;
}

void atr_api_csrf_token(const char *session_key,
                        char out[ATR_API_CSRF_LEN + 1]) {
  unsigned char mac[SHA256_DIGEST_LENGTH];
  unsigned int len = 0;
  static const char what[] = "atrium csrf v1";
  HMAC(EVP_sha256(), session_key, (int)strlen(session_key),
       (const unsigned char *)what, sizeof what - 1, mac, &len);
  for (size_t i = 0; i < ATR_API_CSRF_LEN / 2; i++)
    snprintf(out + 2 * i, 3, "%02x", mac[i]);
  OPENSSL_cleanse(mac, sizeof mac);
}

/* Cookie-authenticated writes must send, in the Atrium-CSRF-Token header,
 * the token bound to the session (the atrium_csrf cookie holds it for the
 * page to read): a page on another site can make the browser send the
 * cookies but can neither read them nor compute the token, and a cookie
 * planted by a sibling site does not match the session. */
static bool csrf_ok(atr_api_req_t *r, const char *session_key) {
  if (strcmp(r->method, "GET") == 0 || strcmp(r->method, "HEAD") == 0)
    return true;
  const char *header = atr__http_header(r->x, "Atrium-CSRF-Token");
  char want[ATR_API_CSRF_LEN + 1];
  atr_api_csrf_token(session_key, want);
  bool ok = header && strlen(header) == ATR_API_CSRF_LEN &&
            CRYPTO_memcmp(header, want, ATR_API_CSRF_LEN) == 0;
  OPENSSL_cleanse(want, sizeof want);
  return ok;
}

/* ---- owner keys while the database is down --------------------------- */

/* Owners must be able to read the health report while the database is
 * down, yet checking a key needs the database. So the keys of owners the
 * database recently vouched for are remembered here: a SHA-256 of the
 * whole key (never the key), the actor it signed in, and when the
 * database last said so. Consulted only when the check fails with
 * ATR_EUNAVAIL, and only on routes marked auth_when_db_down. A key the
 * database refuses, or that no longer signs in an owner, is forgotten at
 * once; an entry older than OWNER_KEY_TTL_MS is not used. The table is
 * small and bounded: past OWNER_KEYS entries the stalest is replaced. */
#define OWNER_KEYS 16
#define OWNER_KEY_TTL_MS (10LL * 60 * 1000)

typedef struct owner_key {
  const atr_api_env_t *env; /* the server it is valid for; NULL: empty */
  unsigned char hash[SHA256_DIGEST_LENGTH];
  atr_actor_t actor;
  int64_t checked_ms; /* monotonic: the database's last yes */
} owner_key_t;

static pthread_mutex_t owner_keys_lock = PTHREAD_MUTEX_INITIALIZER;
static owner_key_t owner_keys[OWNER_KEYS]; /* owner_keys_lock */

/* The entry for hash, or NULL. Caller holds owner_keys_lock. */
static owner_key_t *owner_key_find(const atr_api_env_t *env,
                                   const unsigned char *hash) {
  for (size_t i = 0; i < OWNER_KEYS; i++)
    if (owner_keys[i].env == env &&
        CRYPTO_memcmp(owner_keys[i].hash, hash, SHA256_DIGEST_LENGTH) == 0)
      return &owner_keys[i];
  return NULL;
}

/* The database answered for key: remember it when it signed in an owner,
 * forget it otherwise (refused, or no longer an owner). */
static void owner_key_note(const atr_api_env_t *env, const char *key,
                           const atr_actor_t *actor) {
  unsigned char hash[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)key, strlen(key), hash);
  bool owner = actor && (actor->roles & ATR_ROLE_OWNER);
  pthread_mutex_lock(&owner_keys_lock);
  owner_key_t *e = owner_key_find(env, hash);
  if (!owner) {
    if (e)
      memset(e, 0, sizeof *e);
    pthread_mutex_unlock(&owner_keys_lock);
    return;
  }
  if (!e) { /* an empty slot (checked_ms 0), else the stalest */
    e = &owner_keys[0];
    for (size_t i = 1; i < OWNER_KEYS; i++)
      if (owner_keys[i].checked_ms < e->checked_ms)
        e = &owner_keys[i];
  }
  *e = (owner_key_t){.env = env, .actor = *actor, .checked_ms = mono_ms()};
  memcpy(e->hash, hash, sizeof hash);
  pthread_mutex_unlock(&owner_keys_lock);
}

/* The owner key's actor into *actor when the database vouched for it
 * within the TTL. */
static bool owner_key_lookup(const atr_api_env_t *env, const char *key,
                             atr_actor_t *actor) {
  unsigned char hash[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)key, strlen(key), hash);
  pthread_mutex_lock(&owner_keys_lock);
  const owner_key_t *e = owner_key_find(env, hash);
  bool ok = e && mono_ms() - e->checked_ms < OWNER_KEY_TTL_MS;
  if (ok)
    *actor = e->actor;
  pthread_mutex_unlock(&owner_keys_lock);
  return ok;
}

/* The actor of the request: who (NULL: anonymous) and where from. */
static void set_actor(atr_api_req_t *r, const atr_actor_t *who) {
  if (who)
    r->actor = *who;
  else
    r->actor = (atr_actor_t){0};
  r->actor.ip = r->remote_ip;
  r->actor.user_agent = r->user_agent;
  r->actor.request_id = r->request_id;
  r->actor.org_id = r->org_id[0] ? r->org_id : NULL;
}

/* 0 to go on; otherwise the request was answered. */
static int authenticate(atr_api_req_t *r) {
  char buf[128];
  bool via_cookie = false;
  const char *key = presented_key(r, buf, sizeof buf, &via_cookie);
  if (!key)
    return 0;
  char *why = NULL;
  int rc = atr_session_authenticate(r->env->dom.store, key, &r->actor, &why);
  if (rc == 0 || rc == ATR_EPERM)
    owner_key_note(r->env, key, rc == 0 ? &r->actor : NULL);
  if (rc == ATR_EUNAVAIL && r->route->auth_when_db_down &&
      owner_key_lookup(r->env, key, &r->actor)) {
    atr_log(ATR_LOG_INFO, "api",
            "request %s: the database is unavailable; owner %s signed in "
            "by a key it checked in the last 10 minutes",
            r->request_id, r->actor.username);
    free(why);
    why = NULL;
    rc = 0;
  }
  if (rc != 0 && rc != ATR_EPERM) {
    /* The database could not say: not the caller's fault, so not 401. */
    atr_api_fail(r, rc, why);
    free(why);
    return -1;
  }
  if (rc != 0) {
    set_actor(r, NULL);
    atr_log(ATR_LOG_INFO, "api", "request %s: key refused: %s", r->request_id,
            why ? why : atr_strerror(rc));
    free(why);
    /* A stale cookie must not stand in the way of signing in again. */
    if (r->route->authz == ATR_AUTHZ_PUBLIC)
      return 0;
    atr_api_error(r, 401, "You are not signed in.",
                  "The session token is invalid or has expired.");
    return -1;
  }
  if (via_cookie && !csrf_ok(r, key)) {
    atr_api_error(r, 403, "CSRF check failed.",
                  "Requests signed in by cookie must send the atrium_csrf "
                  "cookie's value in the Atrium-CSRF-Token header.");
    return -1;
  }
  r->signed_in = true;
  set_actor(r, &r->actor);
  return 0;
}

/* The actor's roles in the route's organization join their site roles.
 * An unknown organization answers 404. 0 to go on. */
static int add_org_roles(atr_api_req_t *r, uint32_t *roles) {
  r->org_id[0] = '\0';
  if (!r->route->org_param || !r->signed_in)
    return 0;
  const char *org = atr_api_param(r, r->route->org_param);
  char *err = NULL;
  uint32_t org_roles = 0;
  int rc = atr_actor_org_roles(r->env->dom.store, &r->actor, org, r->org_id,
                               &org_roles, &err);
  if (rc == ATR_ENOENT) {
    atr_api_error(r, 404, "Organization not found.", org);
  } else if (rc != 0) {
    atr_api_fail(r, rc, err);
  }
  free(err);
  *roles |= org_roles;
  set_actor(r, &r->actor);
  return rc;
}

/* Is the route's target user the actor? */
static bool targets_self(const atr_api_req_t *r) {
  const char *who =
      r->route->self_param ? atr_api_param(r, r->route->self_param) : NULL;
  return who && r->signed_in &&
         (strcmp(who, "me") == 0 || strcmp(who, r->actor.user_id) == 0 ||
          strcasecmp(who, r->actor.username) == 0);
}

/* A user's request: sign-in, rate limit, roles. 0 to go on; otherwise
 * the request was answered. */
static int admit_user(atr_api_req_t *r, char *who, size_t who_size) {
  if (atr__api_agent_refused(r) || authenticate(r) != 0)
    return -1;
  if (r->signed_in)
    snprintf(who, who_size, "%s", r->actor.username);
  if (r->route->authz != ATR_AUTHZ_PUBLIC && !r->signed_in) {
    atr_api_error(r, 401, "You are not signed in.",
                  "Send a session token in the Atrium-Session-Token "
                  "header.");
    return -1;
  }
  if (r->signed_in &&
      atr_api_rate_limited(r, r->env->api_by_user, r->actor.user_id))
    return -1;
  uint32_t roles = r->actor.roles;
  if (add_org_roles(r, &roles) != 0)
    return -1;
  if (!atr_api_route_allows(r->route, r->signed_in, roles, targets_self(r))) {
    char detail[200];
    snprintf(detail, sizeof detail, "Your roles do not allow %s on %s.",
             atr_action_name(r->route->act), atr_resource_name(r->route->res));
    atr_api_error(r, 403, "Forbidden.", detail);
    return -1;
  }
  return 0;
}

/* Everything after routing; answers through r. Agent routes admit only
 * agents (api_agent_me.h), every other route only users. */
static void serve(atr_api_req_t *r, char *who, size_t who_size) {
  int admitted = r->route->authz == ATR_AUTHZ_AGENT
                     ? atr__api_agent_admit(r, who, who_size)
                     : admit_user(r, who, who_size);
  if (admitted != 0)
    return;
  int rc = r->route->fn(r);
  if (r->status == 0)
    atr_api_fail(r, rc < 0 ? rc : ATR_EIO, "the handler sent no answer");
}

/* Every query value is checked here once, before any handler reads it:
   atr_api_query() returns C strings, so a decoded NUL would silently cut a
   value short, and a stray '%' would reach a handler undecoded. Either is
   answered 400 naming the parameter (its raw name, when printable). */
static bool query_refused(atr_api_req_t *r) {
  for (const char *q = r->query; q && *q;) {
    size_t seg = strcspn(q, "&");
    size_t name_len = strcspn(q, "=&");
    const char *bad = NULL;
    for (size_t i = 0; i < seg && !bad; i++) {
      if (q[i] != '%')
        continue;
      if (i + 2 >= seg || !isxdigit((unsigned char)q[i + 1]) ||
          !isxdigit((unsigned char)q[i + 2]))
        bad = "Invalid percent-encoding.";
      else if (q[i + 1] == '0' && q[i + 2] == '0')
        bad = "Must not contain a NUL character (%00).";
      i += 2;
    }
    if (bad) {
      char field[65];
      size_t n = name_len < sizeof field - 1 ? name_len : sizeof field - 1;
      bool printable = n > 0;
      for (size_t i = 0; i < n; i++)
        printable = printable && isprint((unsigned char)q[i]);
      snprintf(field, sizeof field, "%.*s", printable ? (int)n : 5,
               printable ? q : "query");
      json_t *v = json_array();
      atr_api_add_validation(v, field, bad);
      atr_api_validation(r, "Invalid query parameters.", v);
      return true;
    }
    q = q[seg] ? q + seg + 1 : NULL;
  }
  return false;
}

int atr_api_dispatch(const atr_api_env_t *env, atr_http_exchange_t *x,
                     const atr_http_request_t *req, const char *remote_ip,
                     const char *user_agent, const char **route_template,
                     char *who, size_t who_size) {
  if (strncmp(req->path, "/@", 2) == 0) /* workspace apps: api_apps.h */
    return atr_api_apps_dispatch(env, x, req, remote_ip, user_agent,
                                 route_template, who, who_size);
  if (strncmp(req->path, "/api/", 5) != 0)
    return 0;
  who[0] = '\0';
  atr_api_req_t r = {.x = x,
                     .env = env,
                     .method = req->method,
                     .path = req->path,
                     .query = req->query,
                     .body = req->body,
                     .body_len = req->body_len,
                     .request_id = req->request_id,
                     .remote_ip = remote_ip ? remote_ip : "",
                     .user_agent = user_agent ? user_agent : ""};
  set_actor(&r, NULL);
  bool mismatch = false;
  r.route = atr_api_match(req->method, req->path, &r, &mismatch);
  if (r.route) {
    *route_template = r.route->pattern;
    if (!query_refused(&r))
      serve(&r, who, who_size);
  } else {
    char detail[600];
    snprintf(detail, sizeof detail, "%s %s %s.",
             mismatch ? "Method not allowed:" : "No route for", req->method,
             req->path);
    atr_api_error(&r, mismatch ? 405 : 404,
                  mismatch ? "Method not allowed." : "Route not found.",
                  detail);
    *route_template = mismatch ? req->path : "unmatched";
  }
  flush_answer(&r);
  return 1;
}

/* ---- shared by handlers ------------------------------------------------ */

int atr_api_list_window(atr_api_req_t *r, int64_t def, int64_t *limit,
                        int64_t *offset) {
  static const char *const names[] = {"limit", "offset"};
  int64_t *outs[] = {limit, offset};
  json_t *v = json_array();
  for (size_t i = 0; i < 2; i++) {
    char buf[32], *end = NULL;
    const char *s = atr_api_query(r, names[i], buf, sizeof buf);
    *outs[i] = 0;
    if (!s)
      continue;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (!*s || *end || errno != 0 || n < 0)
      atr_api_add_validation(v, names[i], "Must be a whole number, 0 or more.");
    else
      *outs[i] = n;
  }
  if (*limit == 0)
    *limit = def;
  if (json_array_size(v) > 0) {
    atr_api_validation(r, "Invalid query parameters.", v);
    return -1;
  }
  json_decref(v);
  return 0;
}

bool atr_api_authorize(atr_api_req_t *r, const char *org_id, atr_resource_t res,
                       atr_action_t act, bool self) {
  uint32_t roles = r->actor.roles;
  if (org_id && *org_id) {
    char *err = NULL;
    char resolved[37];
    uint32_t org_roles = 0;
    /* an organization that cannot be read grants nothing more */
    if (atr_actor_org_roles(r->env->dom.store, &r->actor, org_id, resolved,
                            &org_roles, &err) == 0)
      roles |= org_roles;
    free(err);
  }
  if (atr_rbac_allowed(roles, res, act, self))
    return true;
  char detail[200];
  snprintf(detail, sizeof detail, "Your roles do not allow %s on %s.",
           atr_action_name(act), atr_resource_name(res));
  atr_api_error(r, 403, "Forbidden.", detail);
  return false;
}

int atr_api_stream_begin(atr_api_req_t *r, const char *content_type) {
  if (r->status != 0)
    return ATR_EINVAL;
  int rc = atr__http_stream_begin(r->x, 200, content_type);
  if (rc == 0)
    r->status = 200;
  return rc;
}

int atr_api_stream_write(atr_api_req_t *r, const char *data, size_t len) {
  return atr__http_stream_write(r->x, data, len);
}

int atr_api_stream_detach(atr_api_req_t *r, atr_http_step_fn step,
                          void (*free_fn)(void *), void *ud, int64_t tick_ms) {
  return atr__http_stream_detach(r->x, step, free_fn, ud, tick_ms);
}

bool atr_api_draining(const atr_api_req_t *r) {
  return atr__http_draining(r->x);
}

const char *atr_api_opt_string(json_t *body, const char *field, json_t *v) {
  json_t *j = json_object_get(body, field);
  if (!j || json_is_null(j))
    return NULL;
  if (!json_is_string(j)) {
    atr_api_add_validation(v, field, "Must be a string.");
    return NULL;
  }
  return json_string_value(j);
}

void atr_api_add_validation(json_t *v, const char *field, const char *detail) {
  json_array_append_new(
      v, json_pack("{s:s, s:s}", "field", field, "detail", detail));
}

void atr_api_audit(const atr_api_req_t *r, const char *action, const char *type,
                   const char *id, const char *target, const char *org_id,
                   json_t *diff) {
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = action,
                                        .resource_type = type,
                                        .resource_id = id,
                                        .resource_target = target,
                                        .organization_id = org_id,
                                        .diff = diff,
                                        .status_code = r->status});
}
