/* core/domain/apps.c — see apps.h: resolve an app, authenticate and
 * authorize its caller, issue and check app tokens, audit. */
#include "apps.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "atrium/error.h"
#include "audit.h"
#include "rows.h"
#include "session.h"

/* ---- the share level ----------------------------------------------------- */

int atr_app_allowed(const char *sharing_level, const char *owner_id,
                    const atr_actor_t *actor) {
  bool user = actor && atr_actor_is_user(actor);
  if (strcmp(sharing_level, "public") == 0)
    return 0;
  if (!user)
    return ATR_EACCES;
  if (strcmp(sharing_level, "authenticated") == 0)
    return 0;
  /* "owner", and anything unknown is treated as the strictest level */
  if (strcmp(actor->user_id, owner_id) == 0 || (actor->roles & ATR_ROLE_OWNER))
    return 0;
  return ATR_EPERM;
}

/* ---- resolving ----------------------------------------------------------- */

/* What the lookup found beyond atr_app_access_t. */
typedef struct found {
  bool live_agent; /* the workspace has an agent of a running build */
  bool app;        /* and the app */
  atr_agent_times_t times;
} found_t;

static void copy(char *dst, size_t size, atr_db_t *db, atr_db_rows_t *rows,
                 size_t col) {
  snprintf(dst, size, "%s", atr_row_text(db, rows, col));
}

static int find_workspace(atr_db_t *db, const atr_app_request_t *req,
                          atr_app_access_t *out, atr_fault_t *fault) {
  atr_value_t p[] = {atr_v_text(req->owner), atr_v_text(req->workspace)};
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  int rc = atr_db_query(
      db,
      "SELECT w.id, w.name, u.id, u.username, w.organization_id FROM "
      "workspaces w JOIN users u ON u.id = w.owner_id WHERE lower(u.username) "
      "= lower(?) AND u.deleted = FALSE AND lower(w.name) = lower(?) AND "
      "w.deleted = FALSE",
      p, 2, &rows, &err);
  if (rc == 0 && (rc = atr_db_next(db, rows, &err)) == 1) {
    copy(out->workspace_id, sizeof out->workspace_id, db, rows, 0);
    copy(out->workspace_name, sizeof out->workspace_name, db, rows, 1);
    copy(out->owner_id, sizeof out->owner_id, db, rows, 2);
    copy(out->owner_name, sizeof out->owner_name, db, rows, 3);
    copy(out->organization_id, sizeof out->organization_id, db, rows, 4);
    rc = 0;
  } else if (rc == 0) {
    rc = atr_fault_set(fault, ATR_ENOENT, "Workspace not found.",
                       "No workspace %s/%s.", req->owner, req->workspace);
  }
  if (rc < 0 && rc != ATR_ENOENT)
    atr_fault_internal(fault, rc, err);
  atr_db_rows_close(db, rows);
  free(err);
  return rc;
}

static int count_live_agents(atr_db_t *db, const char *workspace_id, int64_t *n,
                             char **err) {
  atr_value_t p[] = {atr_v_text(workspace_id)};
  return atr_db_query_int(db,
                          "SELECT COUNT(*) FROM workspace_agents WHERE "
                          "workspace_id = ? AND revoked_at IS NULL",
                          p, 1, n, err);
}

static void app_row(atr_db_t *db, atr_db_rows_t *rows, atr_app_access_t *out,
                    found_t *f) {
  copy(out->agent_id, sizeof out->agent_id, db, rows, 0);
  copy(out->agent_name, sizeof out->agent_name, db, rows, 1);
  copy(out->app_id, sizeof out->app_id, db, rows, 2);
  copy(out->slug, sizeof out->slug, db, rows, 3);
  copy(out->url, sizeof out->url, db, rows, 4);
  copy(out->sharing_level, sizeof out->sharing_level, db, rows, 5);
  copy(out->health, sizeof out->health, db, rows, 6);
  f->times = (atr_agent_times_t){
      atr_db_get_time(db, rows, 7), atr_db_get_time(db, rows, 8),
      atr_db_get_time(db, rows, 9), atr_db_get_time(db, rows, 10),
      atr_db_get_int(db, rows, 11)};
  f->app = true;
}

/* The app on the workspace's live agents; several agents with the slug
 * and no agent named: the first by name (a template declares one agent
 * today). */
static int find_app(atr_db_t *db, const atr_app_request_t *req,
                    atr_app_access_t *out, found_t *f, atr_fault_t *fault) {
  bool named = req->agent && *req->agent;
  const char *agent = named ? req->agent : "";
  atr_value_t p[] = {atr_v_text(out->workspace_id), atr_v_text(req->slug),
                     atr_v_text(agent), atr_v_text(agent)};
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  int64_t live = 0;
  int rc = count_live_agents(db, out->workspace_id, &live, &err);
  f->live_agent = live > 0;
  if (rc == 0)
    rc = atr_db_query(
        db,
        "SELECT a.id, a.name, p.id, p.slug, COALESCE(p.url, ''), "
        "p.sharing_level, p.health, a.created_at, a.first_connected_at, "
        "a.last_connected_at, a.disconnected_at, a.connection_timeout_seconds "
        "FROM workspace_agents a JOIN workspace_apps p ON p.agent_id = a.id "
        "WHERE a.workspace_id = ? AND a.revoked_at IS NULL AND p.slug = ? "
        "AND (? = '' OR lower(a.name) = lower(?)) ORDER BY a.name",
        p, 4, &rows, &err);
  if (rc == 0 && (rc = atr_db_next(db, rows, &err)) == 1) {
    app_row(db, rows, out, f);
    rc = 0;
  }
  if (rc < 0)
    atr_fault_internal(fault, rc, err);
  atr_db_rows_close(db, rows);
  free(err);
  if (rc == 0 && !f->app && f->live_agent)
    rc = atr_fault_set(fault, ATR_ENOENT, "App not found.",
                       "Workspace %s/%s has no app \"%s\"%s%s.",
                       out->owner_name, out->workspace_name, req->slug,
                       named ? " on an agent named " : "",
                       named ? req->agent : "");
  return rc;
}

/* ---- authenticating ------------------------------------------------------ */

static void token_digest(const char *token, char hex[65]) {
  unsigned char h[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)token, strlen(token), h);
  for (size_t i = 0; i < sizeof h; i++)
    snprintf(hex + 2 * i, 3, "%02x", h[i]);
}

/* The user of a live app token for this app, into *actor; 0 when it signs
 * nobody in (unknown, expired, another app, its key gone). */
static int by_app_token(atr_db_t *db, const char *token,
                        const atr_app_access_t *a, atr_actor_t *actor, bool *ok,
                        char **err) {
  *ok = false;
  if (strlen(token) != ATR_APP_TOKEN_LEN)
    return 0;
  char hex[65];
  token_digest(token, hex);
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(hex), atr_v_text(a->agent_id),
                     atr_v_text(a->slug), atr_v_time(now), atr_v_time(now)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT u.id, u.username, t.api_key_id FROM workspace_app_tokens t "
      "JOIN api_keys k ON k.id = t.api_key_id JOIN users u ON u.id = "
      "t.user_id WHERE t.token_hash = ? AND t.agent_id = ? AND t.app_slug = "
      "? AND t.expires_at > ? AND k.expires_at > ? AND u.status = 'active' "
      "AND u.deleted = FALSE",
      p, 5, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    copy(actor->user_id, sizeof actor->user_id, db, rows, 0);
    copy(actor->username, sizeof actor->username, db, rows, 1);
    copy(actor->key_id, sizeof actor->key_id, db, rows, 2);
    *ok = true;
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  if (rc == 0 && *ok)
    rc = atr_user_roles(db, actor->user_id, &actor->roles, err);
  return rc;
}

/* App token first (it is what the browser sends for this app), then the
 * API key. A credential that does not sign in is as none. */
static int authenticate(const atr_domain_t *dom, atr_db_t *db,
                        const atr_app_request_t *req, atr_app_access_t *out,
                        atr_fault_t *fault) {
  char *err = NULL;
  bool ok = false;
  int rc = 0;
  if (req->app_token && *req->app_token)
    rc = by_app_token(db, req->app_token, out, &out->actor, &ok, &err);
  out->by_app_token = ok;
  if (rc == 0 && !ok && req->session_key && *req->session_key) {
    atr_actor_t who;
    rc = atr_session_authenticate(dom->store, req->session_key, &who, &err);
    if (rc == 0) {
      out->actor = who;
      out->by_session = true;
    } else if (rc == ATR_EPERM) {
      rc = 0; /* a stale cookie: as anonymous */
    }
  }
  if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

/* ---- tokens -------------------------------------------------------------- */

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int new_token(char out[ATR_APP_TOKEN_LEN + 1]) {
  unsigned char raw[33] = {0}; /* 32 random bytes; one zero pads the tail */
  if (RAND_bytes(raw, 32) != 1)
    return ATR_EIO;
  size_t n = 0;
  for (size_t i = 0; i < sizeof raw; i += 3) {
    uint32_t v =
        (uint32_t)raw[i] << 16 | (uint32_t)raw[i + 1] << 8 | raw[i + 2];
    for (int k = 0; k < 4 && n < ATR_APP_TOKEN_LEN; k++)
      out[n++] = b64url[(v >> (18 - 6 * k)) & 63];
  }
  out[ATR_APP_TOKEN_LEN] = '\0';
  OPENSSL_cleanse(raw, sizeof raw);
  return 0;
}

typedef struct issue {
  atr_app_access_t *a;
  int64_t now;
} issue_t;

static int issue_tx(atr_db_t *db, void *ud, char **err) {
  issue_t *is = ud;
  atr_app_access_t *a = is->a;
  int64_t key_expires = 0;
  atr_db_rows_t *rows = NULL;
  atr_value_t k[] = {atr_v_text(a->actor.key_id)};
  int rc = atr_db_query(db, "SELECT expires_at FROM api_keys WHERE id = ?", k,
                        1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    key_expires = atr_db_get_time(db, rows, 0);
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_EPERM; /* signed out meanwhile */
  }
  atr_db_rows_close(db, rows);
  int64_t expires = is->now + (int64_t)ATR_APP_TOKEN_LIFETIME_S * 1000000;
  if (key_expires < expires)
    expires = key_expires;
  a->token_max_age_s = (expires - is->now) / 1000000;
  if (rc == 0 && a->token_max_age_s < 1)
    rc = ATR_EPERM;
  /* Expired tokens are removed as new ones are made: no reaper needed. */
  atr_value_t old[] = {atr_v_time(is->now)};
  if (rc == 0)
    rc = atr_db_exec(db,
                     "DELETE FROM workspace_app_tokens WHERE expires_at <= ?",
                     old, 1, NULL, err);
  char hex[65];
  if (rc == 0)
    rc = new_token(a->token);
  token_digest(a->token, hex);
  atr_value_t p[] = {atr_v_text(hex),
                     atr_v_text(a->actor.key_id),
                     atr_v_text(a->actor.user_id),
                     atr_v_text(a->agent_id),
                     atr_v_text(a->slug),
                     atr_v_time(is->now),
                     atr_v_time(expires)};
  if (rc == 0)
    rc = atr_db_exec(db,
                     "INSERT INTO workspace_app_tokens (token_hash, "
                     "api_key_id, user_id, agent_id, app_slug, created_at, "
                     "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     p, 7, NULL, err);
  return rc;
}

static int issue_token(const atr_domain_t *dom, atr_app_access_t *a,
                       atr_fault_t *fault) {
  issue_t is = {.a = a, .now = atr_db_now_us()};
  char *err = NULL;
  int rc = atr_db_tx(dom->store, ATR_TX_WRITE, issue_tx, &is, &err);
  if (rc != 0) {
    OPENSSL_cleanse(a->token, sizeof a->token);
    a->token[0] = '\0';
  }
  if (rc == ATR_EPERM) /* the key went: go on without a token */
    rc = 0;
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

/* ---- audit --------------------------------------------------------------- */

/* One "connect" entry on the workspace, as every tunnel's (connect.h):
 * phase "open" when an app session begins or is refused, "end" when a
 * WebSocket through the app is over. */
static void audit(const atr_domain_t *dom, const atr_app_access_t *a,
                  const char *phase, int status, json_t *more) {
  json_t *extra =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "phase", phase, "kind", "app",
                "slug", a->slug, "agent_id", a->agent_id, "agent_name",
                a->agent_name, "sharing_level", a->sharing_level);
  if (more)
    json_object_update(extra, more);
  atr_audit_record(dom->store, &a->actor,
                   &(atr_audit_entry_t){.action = "connect",
                                        .resource_type = "workspace",
                                        .resource_id = a->workspace_id,
                                        .resource_target = a->workspace_name,
                                        .organization_id = a->organization_id,
                                        .status_code = status,
                                        .additional = extra});
  json_decref(extra);
}

void atr_app_session_ended(const atr_domain_t *dom, const atr_actor_t *actor,
                           const atr_app_access_t *a,
                           const atr_app_session_end_t *end) {
  atr_app_access_t copy_of = *a;
  copy_of.actor = *actor;
  json_t *more = json_pack("{s:s, s:I, s:I, s:I, s:b}", "reason",
                           end->reason ? end->reason : "", "duration_ms",
                           (json_int_t)end->duration_ms, "bytes_to_agent",
                           (json_int_t)end->bytes_to_agent, "bytes_from_agent",
                           (json_int_t)end->bytes_from_agent, "websocket", 1);
  audit(dom, &copy_of, "end", 200, more);
  json_decref(more);
}

/* ---- opening ------------------------------------------------------------- */

/* Once the caller may open it: can it be reached? */
static int reachable(const atr_app_access_t *a, const found_t *f,
                     atr_fault_t *fault) {
  if (!f->live_agent)
    return atr_fault_set(fault, ATR_EUNAVAIL, "The workspace is not running.",
                         "Start workspace %s/%s, then reload this page.",
                         a->owner_name, a->workspace_name);
  const char *status = atr_agent_status(&f->times, atr_db_now_us());
  if (strcmp(status, "connected") != 0)
    return atr_fault_set(
        fault, ATR_EUNAVAIL, "The workspace agent is not connected.",
        "Agent \"%s\" of %s/%s is %s; app \"%s\" is reached "
        "through it.",
        a->agent_name, a->owner_name, a->workspace_name, status, a->slug);
  if (strcmp(a->health, "unhealthy") == 0)
    return atr_fault_set(fault, ATR_EUNAVAIL, "The app is unhealthy.",
                         "App \"%s\" of %s/%s fails its health check; it may "
                         "still be starting, or it has stopped.",
                         a->slug, a->owner_name, a->workspace_name);
  return 0;
}

static int decide(const atr_domain_t *dom, const atr_app_request_t *req,
                  atr_app_access_t *out, const found_t *f, atr_fault_t *fault) {
  /* Without a live agent the share level is unknown: the strictest. */
  int rc = atr_app_allowed(f->app ? out->sharing_level : "owner", out->owner_id,
                           &out->actor);
  if (rc == ATR_EACCES)
    return atr_fault_set(fault, rc, "Sign in to open this app.",
                         "App \"%s\" of %s/%s is shared with %s.", req->slug,
                         out->owner_name, out->workspace_name,
                         strcmp(out->sharing_level, "authenticated") == 0
                             ? "signed-in users"
                             : "its owner");
  if (rc == ATR_EPERM) {
    if (!f->app)
      snprintf(out->slug, sizeof out->slug, "%s", req->slug);
    audit(dom, out, "open", 403, NULL);
    return atr_fault_set(fault, rc, "You may not open this app.",
                         "App \"%s\" of %s/%s is shared with its owner only.",
                         req->slug, out->owner_name, out->workspace_name);
  }
  rc = reachable(out, f, fault);
  if (rc == 0 && req->want_token && out->by_session)
    rc = issue_token(dom, out, fault);
  if (rc == 0 && out->token[0])
    audit(dom, out, "open", 200, NULL);
  return rc;
}

int atr_app_open(const atr_domain_t *dom, const atr_actor_t *from,
                 const atr_app_request_t *req, atr_app_access_t *out,
                 atr_fault_t *fault) {
  memset(out, 0, sizeof *out);
  snprintf(out->sharing_level, sizeof out->sharing_level, "owner");
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  found_t f = {0};
  rc = find_workspace(&db, req, out, fault);
  if (rc == 0)
    rc = find_app(&db, req, out, &f, fault);
  if (rc == 0)
    rc = authenticate(dom, &db, req, out, fault);
  atr_db_close(&db);
  out->actor.ip = from ? from->ip : NULL;
  out->actor.user_agent = from ? from->user_agent : NULL;
  out->actor.request_id = from ? from->request_id : NULL;
  if (rc == 0)
    rc = decide(dom, req, out, &f, fault);
  return rc;
}
