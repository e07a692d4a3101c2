/* core/api.h — the /api/v2 layer: routes, request context, authentication
 * and authorization, JSON answers in the error shape of ARCHITECTURE.md.
 *
 * A handler gets an atr_api_req_t whose actor is already authenticated and
 * whose route was already authorized against the permission table
 * (rbac.h). It reads parameters and the JSON body, calls domain functions
 * with plain values and the store, and answers exactly once with
 * atr_api_json / atr_api_error / atr_api_validation.
 *
 * Threads: handlers run on HTTP worker threads, many at once; the route
 * table is static and the environment read-only after start.
 */
#ifndef ATRIUM_CORE_API_H
#define ATRIUM_CORE_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "actor.h"
#include "atrium/host.h"
#include "db.h"
#include "domain.h"
#include "fault.h"
#include "http_exchange.h"
#include "loader.h"
#include "rbac.h"
#include "rows.h"

/* What every handler may use; set once at start. */
struct atr_ratelimit;
struct atr_app;

typedef struct atr_api_env {
  atr_domain_t dom; /* what handlers pass to domain functions */
  struct atr_ratelimit *login_by_ip; /* sign-in attempts per IP */
  struct atr_ratelimit *api_by_user; /* every API call per user */
  bool secure_cookies;
  /* The configuration, for the debug routes (api_debug.h); NULL answers
   * them 501. */
  struct atr_app *app;
} atr_api_env_t;

typedef struct atr_api_req atr_api_req_t;
typedef int (*atr_api_fn)(atr_api_req_t *r);

typedef enum atr_authz {
  ATR_AUTHZ_PUBLIC = 0,    /* no session needed */
  ATR_AUTHZ_SIGNED_IN = 1, /* any signed-in user */
  ATR_AUTHZ_RBAC = 2,      /* (res, act) from the permission table */
  /* A workspace agent's own routes (/api/v2/workspaceagents/me/...): only
   * an agent token, or a request inside the agent's session; user keys
   * are refused (401), as agent tokens are on every other route. */
  ATR_AUTHZ_AGENT = 3,
} atr_authz_t;

typedef struct atr_api_route {
  const char *method;
  const char *pattern; /* "/api/v2/users/{user}/keys/tokens" */
  atr_api_fn fn;
  atr_authz_t authz;
  atr_resource_t res;
  atr_action_t act;
  /* The path parameter naming the target user ("user"), so the
   * permission table's "self" grants apply when it is the actor; NULL. */
  const char *self_param;
  /* The path parameter naming an organization (id or name): the actor's
   * roles in it (organization-member, organization-admin) join their site
   * roles for this request; NULL. */
  const char *org_param;
  /* Owners may call the route while the database is down: when checking
   * the key fails with ATR_EUNAVAIL, an owner key that the database
   * vouched for within the last 10 minutes still signs the request in
   * (see authenticate() in api.c). Only for owner-only GETs that need no
   * database themselves (the debug routes). */
  bool auth_when_db_down;
} atr_api_route_t;

#define ATR_API_MAX_PARAMS 4

struct atr_api_req {
  atr_http_exchange_t *x;
  const atr_api_env_t *env;
  const atr_api_route_t *route;
  const char *method;
  const char *path;
  const char *query;
  const char *body;
  size_t body_len;
  const char *request_id;
  const char *remote_ip;
  const char *user_agent;
  const char *param_names[ATR_API_MAX_PARAMS];
  char param_values[ATR_API_MAX_PARAMS][256];
  size_t nparams;
  bool signed_in;
  atr_actor_t actor;
  char org_id[37]; /* resolved org_param, "" when none */
  int status;      /* what was answered; 0 until then */
  /* The answer is held here and sent when the handler returns, so what a
   * handler records after answering (the audit entry) is stored before
   * the client can see the answer. */
  char *answer;
  size_t answer_len;
  const char *answer_type; /* static string; NULL for JSON */
};

/* The table of every /api/v2 route (api_routes.c). */
extern const atr_api_route_t atr_api_routes[];
extern const size_t atr_api_nroutes;

/* Match method+path against the table. Returns the route, or NULL; when
 * the path matches with another method, *method_mismatch is set. */
const atr_api_route_t *atr_api_match(const char *method, const char *path,
                                     atr_api_req_t *r, bool *method_mismatch);
/* Would the route let an actor with `roles` in (self: the target is
 * them)? The single decision the router and the RBAC matrix test share. */
bool atr_api_route_allows(const atr_api_route_t *route, bool signed_in,
                          uint32_t roles, bool self);
/* Would the route let a workspace agent in? Only ATR_AUTHZ_AGENT routes
 * do (api_agent_me.c authenticates it); no user passes those. */
bool atr_api_route_allows_agent(const atr_api_route_t *route);

/* A path parameter's value, or NULL. */
const char *atr_api_param(const atr_api_req_t *r, const char *name);
/* A query parameter's value (URL-decoded into buf), or NULL. */
const char *atr_api_query(const atr_api_req_t *r, const char *name, char *buf,
                          size_t size);

/* The body as a JSON object; on failure answers 400 and returns NULL. */
json_t *atr_api_body(atr_api_req_t *r);

/* Answers (one per request; sent when the handler returns). atr_api_json
 * steals the reference. */
int atr_api_json(atr_api_req_t *r, int status, json_t *body);
int atr_api_error(atr_api_req_t *r, int status, const char *message,
                  const char *detail);
/* Any bytes with their content type (copied; content_type must be a
 * static string). */
int atr_api_raw(atr_api_req_t *r, int status, const char *content_type,
                const void *data, size_t len);
/* 204 with no body. */
int atr_api_no_content(atr_api_req_t *r);
/* 400 with validations: [{"field": f, "detail": d}, ...]; steals. */
int atr_api_validation(atr_api_req_t *r, const char *message,
                       json_t *validations);
/* An error from a domain or storage call: ATR_EUNAVAIL → 503,
 * ATR_ENOENT → 404, ATR_EPERM → 403, ATR_ECONSTRAINT / ATR_EEXIST → 409,
 * ATR_EINVAL → 400, else 500 (details logged, not sent). */
int atr_api_fail(atr_api_req_t *r, int rc, const char *err);
/* Answer a domain call's refusal (fault.h): its status from the code, its
 * message, detail, validations and extra members; a code without a user
 * message (an internal error) answers as atr_api_fail does. Clears f. */
int atr_api_fault(atr_api_req_t *r, atr_fault_t *f);
/* A domain call's outcome: when rc is 0, body (stolen; NULL answers 204)
 * with status, else the fault. Clears f either way. */
int atr_api_answer(atr_api_req_t *r, int rc, int status, json_t *body,
                   atr_fault_t *f);
/* The CSRF token of a session: hex of an HMAC-SHA256 keyed by the session
 * key, so it cannot be planted or guessed without the key. */
#define ATR_API_CSRF_LEN 32
void atr_api_csrf_token(const char *session_key,
                        char out[ATR_API_CSRF_LEN + 1]);
/* Add a response header before answering (Set-Cookie, Retry-After). */
void atr_api_header(atr_api_req_t *r, const char *name, const char *value);

/* ---- shared by handlers ------------------------------------------------ */

/* ?limit= and ?offset=: whole numbers of 0 or more; limit absent or 0
 * gives def. Answers 400 and returns -1 on a bad value. */
int atr_api_list_window(atr_api_req_t *r, int64_t def, int64_t *limit,
                        int64_t *offset);
/* Whether the actor (site roles plus their roles in org_id, when not
 * NULL) may do act on res; self: the target is the actor's own. When not,
 * answers 403 and returns false. */
bool atr_api_authorize(atr_api_req_t *r, const char *org_id, atr_resource_t res,
                       atr_action_t act, bool self);

/* A body field that must be a string when present: its value, NULL when
 * absent; a wrong type adds a validation to v. */
const char *atr_api_opt_string(json_t *body, const char *field, json_t *v);
/* Add {"field": field, "detail": detail} to the validations v. */
void atr_api_add_validation(json_t *v, const char *field, const char *detail);
/* Audit what the request did to a resource, with the status it answered;
 * diff is borrowed and may be NULL. */
void atr_api_audit(const atr_api_req_t *r, const char *action, const char *type,
                   const char *id, const char *target, const char *org_id,
                   json_t *diff);

/* A streamed answer (server-sent events): headers now; then writes. A
 * write fails once the client has gone. A stream that lasts hands itself
 * to the server with atr_api_stream_detach and returns, so no worker
 * thread waits for it: step then runs on the server's pump
 * (http_exchange.h) with the exchange, writing with
 * atr__http_stream_write; ud must hold all it needs (r is gone by
 * then), and free_fn(ud) runs once when the stream ends. */
int atr_api_stream_begin(atr_api_req_t *r, const char *content_type);
int atr_api_stream_write(atr_api_req_t *r, const char *data, size_t len);
int atr_api_stream_detach(atr_api_req_t *r, atr_http_step_fn step,
                          void (*free_fn)(void *), void *ud, int64_t tick_ms);
/* The server is shutting down: streams should end. */
bool atr_api_draining(const atr_api_req_t *r);

/* Take a token from rl for key; when none is left, answer 429 with
 * Retry-After and return true. rl NULL never limits. */
bool atr_api_rate_limited(atr_api_req_t *r, struct atr_ratelimit *rl,
                          const char *key);

/* Entry from http.c: 1 when it answered the request (path under /api/),
 * 0 when the path is not an API path. *route_template gets the matched
 * pattern (for logs and metrics) and who the signed-in username ("" when
 * anonymous). */
int atr_api_dispatch(const atr_api_env_t *env, atr_http_exchange_t *x,
                     const atr_http_request_t *req, const char *remote_ip,
                     const char *user_agent, const char **route_template,
                     char *who, size_t who_size);

#endif
