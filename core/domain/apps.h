/* core/domain/apps.h — workspace apps reached through the server
 * (/@owner/workspace[.agent]/apps/slug/, docs/design/connect.md §3): which
 * app a request names, who may open it, and the app tokens that carry a
 * browser's session with one app.
 *
 * Share levels (Coder's): "owner" — the workspace's owner, and site
 * owners (as for ssh); "authenticated" — any signed-in user; "public" —
 * anyone, no session needed.
 *
 * App tokens: the API session cookie is scoped to the whole origin, and
 * path-based apps share that origin, so the server never forwards it.
 * Instead a browser presenting its API session gets an app token: 32
 * random bytes (base64url), stored as a SHA-256 only
 * (workspace_app_tokens), valid for one agent's app, for at most
 * ATR_APP_TOKEN_LIFETIME_S and never past the API key it came from
 * (deleting the key on sign-out deletes its app tokens). A stored token
 * rather than a signed one: no signing key to share between replicas or
 * rotate, and sign-out ends app sessions at once. Issuing one is audited
 * (action "connect" on the workspace, phase "open", as every tunnel's in
 * connect.h); so is every refusal of a signed-in user (403).
 *
 * Threads: any; each call opens its own connection.
 */
#ifndef ATRIUM_CORE_APPS_H
#define ATRIUM_CORE_APPS_H

#include <stdbool.h>
#include <stdint.h>

#include "actor.h"
#include "domain.h"
#include "fault.h"

#define ATR_APP_TOKEN_LEN 43 /* base64url of 32 bytes, no padding */
#define ATR_APP_TOKEN_LIFETIME_S 3600
#define ATR_APP_URL_MAX 1024

/* What a request names: each part already checked for its characters
 * (the API parses the path). agent NULL or "": the workspace's only
 * agent that has the slug. */
typedef struct atr_app_request {
  const char *owner;     /* a username (case-insensitive) */
  const char *workspace; /* a workspace name (case-insensitive) */
  const char *agent;     /* an agent name, or NULL */
  const char *slug;
  /* Credentials, each NULL when absent: the atrium_app_token cookie,
   * and the API key the request carries (cookie or header). */
  const char *app_token;
  const char *session_key;
  /* Trade an API session for an app token when it signs the caller in
   * (a browser's GET: the API answers with the cookie and a redirect). */
  bool want_token;
} atr_app_request_t;

/* The app a request reached, and how. */
typedef struct atr_app_access {
  char workspace_id[37], workspace_name[129];
  char owner_id[37], owner_name[65];
  char organization_id[37];
  char agent_id[37], agent_name[129];
  char app_id[37], slug[65];
  char url[ATR_APP_URL_MAX]; /* the app's URL inside the workspace */
  char sharing_level[16];    /* owner, authenticated, public */
  char health[16];           /* disabled, initializing, healthy, unhealthy */
  /* Who opens it: a user (by app token or API key), or anonymous (a
   * public app without credentials). */
  atr_actor_t actor;
  bool by_app_token; /* the app token signed the caller in */
  bool by_session;   /* the API key did (a header's key: strip it) */
  /* A new app token (want_token and the API key signed in): show it
   * once, in the cookie. */
  char token[ATR_APP_TOKEN_LEN + 1];
  int64_t token_max_age_s;
} atr_app_access_t;

/* Resolve the app, authenticate the caller (app token first, then the
 * API key; a credential that does not sign in counts as none) and
 * authorize by the app's share level; then check the app can be reached.
 * 0 with *out filled. Refusals, in this order:
 *   ATR_ENOENT   no such user, workspace, agent or app (404)
 *   ATR_EACCES   the app needs a signed-in user and the caller is none (401)
 *   ATR_EPERM    a signed-in user the share level leaves out (403, audited)
 *   ATR_EUNAVAIL the workspace is not running, its agent is not connected,
 *                or the app is unhealthy (503; the message says which),
 *                or the database is down (no message)
 * from supplies where the request came from (ip, user agent, request
 * id) for the audit entries. */
int atr_app_open(const atr_domain_t *dom, const atr_actor_t *from,
                 const atr_app_request_t *req, atr_app_access_t *out,
                 atr_fault_t *fault);

/* The share level's decision alone: 0, ATR_EACCES (needs a signed-in
 * user) or ATR_EPERM. Pure. */
int atr_app_allowed(const char *sharing_level, const char *owner_id,
                    const atr_actor_t *actor);

/* A WebSocket through the app ended: audited (phase "end") with
 * how long it lasted, the bytes each way and why it ended. */
typedef struct atr_app_session_end {
  const char *reason;
  int64_t duration_ms;
  uint64_t bytes_to_agent, bytes_from_agent;
} atr_app_session_end_t;
void atr_app_session_ended(const atr_domain_t *dom, const atr_actor_t *actor,
                           const atr_app_access_t *a,
                           const atr_app_session_end_t *end);

#endif
