/* core/api_users.c — the first user, sign-in and sign-out, and reading
 * users. Passwords go to the password auth plugin for hashing and checking;
 * they are never stored, logged or echoed. */
#include "api_users.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrium/auth.h"
#include "atrium/error.h"
#include "audit.h"
#include "log.h"
#include "session.h"

#define ATR_SESSION_COOKIE "atrium_session"

/* ---- helpers ---------------------------------------------------------- */

static const atr_auth_ops_t *password_auth(const atr_api_env_t *env,
                                           void **ctx) {
  for (size_t i = 0; env->dom.loader && i < env->dom.loader->nplugins; i++) {
    atr_handle_t *h = env->dom.loader->plugins[i];
    if (h->state != ATR_PLUGIN_RUNNING || h->desc->kind != ATR_KIND_AUTH)
      continue;
    const atr_auth_ops_t *ops = h->desc->ops;
    if (strcmp(ops->method, "password") == 0 && ops->verify_secret) {
      *ctx = h->ctx;
      return ops;
    }
  }
  return NULL;
}

/* The password plugin, or a 501 answer saying it is not enabled. */
static const atr_auth_ops_t *password_auth_or_501(atr_api_req_t *r,
                                                  void **ctx) {
  const atr_auth_ops_t *ops = password_auth(r->env, ctx);
  if (!ops)
    atr_api_error(r, 501, "Password sign-in is not enabled.",
                  "Enable the auth_password plugin.");
  return ops;
}

static const char *jstr(json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

/* Usernames as Coder allows them: 1-32 of [a-zA-Z0-9-], no leading,
 * trailing or double hyphen. */
static bool valid_username(const char *s) {
  /* names that are also paths under /api/v2/users/ */
  static const char *const reserved[] = {"first",       "login", "logout",
                                         "authmethods", "me",    NULL};
  for (const char *const *r = reserved; s && *r; r++)
    if (strcasecmp(s, *r) == 0)
      return false;
  size_t n = s ? strlen(s) : 0;
  if (n == 0 || n > 32 || s[0] == '-' || s[n - 1] == '-')
    return false;
  for (size_t i = 0; i < n; i++)
    if (!(isalnum((unsigned char)s[i]) || s[i] == '-') ||
        (s[i] == '-' && s[i + 1] == '-'))
      return false;
  return true;
}

static bool valid_email(const char *s) {
  const char *at = s ? strchr(s, '@') : NULL;
  return at && at != s && strchr(at + 1, '.') && !strchr(at + 1, '@') &&
         strlen(s) <= 254;
}

/* ---- the first user ------------------------------------------------------ */

int atr_api_first_user_exists(atr_api_req_t *r) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  int64_t n = 0;
  if (rc == 0)
    rc = atr_db_query_int(&db, "SELECT COUNT(*) FROM users", NULL, 0, &n, &err);
  atr_db_close(&db);
  if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else if (n == 0) {
    atr_api_error(r, 404, "The initial user has not been created.", "");
  } else {
    atr_api_json(r, 200,
                 json_pack("{s:s}", "message",
                           "The initial user has already been created."));
  }
  free(err);
  return 0;
}

typedef struct first_user {
  const char *email, *username, *name, *org_name, *hash;
  char user_id[37], org_id[37];
  bool exists;
} first_user_t;

static int insert_first(atr_db_t *db, void *ud, char **err) {
  first_user_t *f = ud;
  int64_t n = 0, now = atr_db_now_us();
  int rc = atr_db_query_int(db, "SELECT COUNT(*) FROM users", NULL, 0, &n, err);
  if (rc != 0 || (f->exists = n > 0))
    return rc;
  atr_value_t u[] = {atr_v_text(f->user_id),
                     atr_v_text(f->email),
                     atr_v_text(f->username),
                     atr_v_text(f->name),
                     atr_v_blob(f->hash, strlen(f->hash)),
                     atr_v_time(now),
                     atr_v_time(now)};
  atr_value_t o[] = {atr_v_text(f->org_id), atr_v_text(f->org_name),
                     atr_v_text(f->org_name), atr_v_time(now), atr_v_time(now)};
  atr_value_t m[] = {atr_v_text(f->user_id), atr_v_text(f->org_id),
                     atr_v_time(now), atr_v_time(now)};
  atr_value_t ro[] = {atr_v_text(f->user_id)};
  atr_value_t om[] = {atr_v_text(f->user_id), atr_v_text(f->org_id)};
  static const char *const sql[] = {
      "INSERT INTO users (id, email, username, name, hashed_password, "
      "created_at, updated_at, status, login_type) VALUES (?, ?, ?, ?, ?, "
      "?, ?, 'active', 'password')",
      "INSERT INTO organizations (id, name, display_name, created_at, "
      "updated_at, is_default) VALUES (?, ?, ?, ?, ?, TRUE)",
      "INSERT INTO organization_members (user_id, organization_id, "
      "created_at, updated_at) VALUES (?, ?, ?, ?)",
      "INSERT INTO user_roles (user_id, role) VALUES (?, 'owner')",
      "INSERT INTO organization_member_roles (user_id, organization_id, "
      "role) VALUES (?, ?, 'organization-admin')"};
  const atr_value_t *params[] = {u, o, m, ro, om};
  size_t counts[] = {7, 5, 4, 1, 2};
  for (size_t i = 0; rc == 0 && i < 5; i++)
    rc = atr_db_exec(db, sql[i], params[i], counts[i], NULL, err);
  return rc;
}

/* Validations shared by user creation: one entry per bad field. */
static json_t *check_new_user(const char *email, const char *username,
                              const char *password, const atr_auth_ops_t *ops,
                              void *ctx) {
  json_t *v = json_array();
  if (!valid_email(email))
    atr_api_add_validation(v, "email", "Must be a valid email address.");
  if (!valid_username(username))
    atr_api_add_validation(
        v, "username",
        "Must be 1 to 32 letters, digits or single hyphens, "
        "not starting or ending with a hyphen, and not one of "
        "first, login, logout, authmethods or me.");
  char *why = NULL;
  if (!password || !*password)
    atr_api_add_validation(v, "password", "Required.");
  else if (ops->check_secret_policy &&
           ops->check_secret_policy(ctx, password, strlen(password), username,
                                    email, &why) != 0)
    atr_api_add_validation(v, "password", why ? why : "Not accepted.");
  free(why);
  return v;
}

int atr_api_first_user_create(atr_api_req_t *r) {
  void *actx = NULL;
  const atr_auth_ops_t *ops = password_auth_or_501(r, &actx);
  if (!ops)
    return 0;
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  first_user_t f = {.email = jstr(body, "email"),
                    .username = jstr(body, "username"),
                    .name = jstr(body, "name") ? jstr(body, "name") : "",
                    .org_name = jstr(body, "organization")
                                    ? jstr(body, "organization")
                                    : "default"};
  const char *password = jstr(body, "password");
  json_t *v = check_new_user(f.email, f.username, password, ops, actx);
  if (json_array_size(v) > 0) {
    json_decref(body);
    return atr_api_validation(r, "Validation failed.", v);
  }
  json_decref(v);
  char *hash = NULL, *err = NULL;
  int rc = ops->hash_secret(actx, password, strlen(password), &hash, &err);
  f.hash = hash;
  atr_db_new_uuid(f.user_id);
  atr_db_new_uuid(f.org_id);
  if (rc == 0)
    rc = atr_db_tx(r->env->dom.store, ATR_TX_SERIALIZABLE, insert_first, &f,
                   &err);
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else if (f.exists)
    atr_api_error(r, 409, "The initial user has already been created.", "");
  else
    atr_api_json(r, 201,
                 json_pack("{s:s, s:s}", "user_id", f.user_id,
                           "organization_id", f.org_id));
  if (hash)
    OPENSSL_cleanse(hash, strlen(hash));
  free(hash);
  free(err);
  json_decref(body);
  return 0;
}

/* ---- sign-in and sign-out ------------------------------------------------ */

typedef struct login_row {
  char user_id[37];
  char *hash;
  bool active;
} login_row_t;

static int find_login(atr_store_t *store, const char *email, login_row_t *out,
                      char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(email)};
  atr_db_rows_t *rows = NULL;
  rc = atr_db_query(&db,
                    "SELECT id, hashed_password, status FROM users WHERE "
                    "lower(email) = lower(?) AND deleted = FALSE",
                    p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    size_t len = 0;
    const char *h = atr_db_get_blob(&db, rows, 1, &len);
    snprintf(out->user_id, sizeof out->user_id, "%s",
             atr_db_get_text(&db, rows, 0));
    out->hash = h ? strndup(h, len) : NULL;
    const char *status = atr_db_get_text(&db, rows, 2);
    out->active = status && strcmp(status, "active") == 0;
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  return rc;
}

/* A hash to verify against when the user does not exist, so that a wrong
 * email costs as much time as a wrong password. Made once, by the plugin
 * itself, so its parameters match real hashes. */
static pthread_mutex_t dummy_lock = PTHREAD_MUTEX_INITIALIZER;
static char *dummy; /* guarded by dummy_lock until set, then read-only */

static const char *dummy_hash(const atr_auth_ops_t *ops, void *ctx) {
  pthread_mutex_lock(&dummy_lock);
  if (!dummy) {
    char *err = NULL;
    static const char input[] = "atrium-dummy-password-for-timing";
    if (ops->hash_secret(ctx, input, sizeof input - 1, &dummy, &err) != 0)
      dummy = NULL;
    free(err);
  }
  pthread_mutex_unlock(&dummy_lock);
  return dummy;
}

static void set_session_cookies(atr_api_req_t *r, const char *key,
                                int64_t lifetime_ms) {
  char csrf[33], cookie[256];
  unsigned char raw[16];
  if (RAND_bytes(raw, sizeof raw) != 1)
    memset(raw, 0, sizeof raw);
  for (size_t i = 0; i < sizeof raw; i++)
    snprintf(csrf + 2 * i, 3, "%02x", raw[i]);
  const char *secure = r->env->secure_cookies ? "; Secure" : "";
  long long max_age = (long long)(lifetime_ms / 1000);
  snprintf(cookie, sizeof cookie,
           ATR_SESSION_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; "
                              "SameSite=Lax%s",
           key, max_age, secure);
  atr_api_header(r, "Set-Cookie", cookie);
  snprintf(cookie, sizeof cookie,
           "atrium_csrf=%s; Path=/; Max-Age=%lld; SameSite=Lax%s", csrf,
           max_age, secure);
  atr_api_header(r, "Set-Cookie", cookie);
  OPENSSL_cleanse(cookie, sizeof cookie);
}

static int login_refused(atr_api_req_t *r) {
  return atr_api_error(r, 401, "Incorrect email or password.", "");
}

int atr_api_login(atr_api_req_t *r) {
  void *actx = NULL;
  const atr_auth_ops_t *ops = password_auth_or_501(r, &actx);
  if (!ops)
    return 0;
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  const char *email = jstr(body, "email"), *password = jstr(body, "password");
  if (!email || !password) {
    json_t *v = json_array();
    if (!email)
      atr_api_add_validation(v, "email", "Required.");
    if (!password)
      atr_api_add_validation(v, "password", "Required.");
    json_decref(body);
    return atr_api_validation(r, "Validation failed.", v);
  }
  char account[160];
  snprintf(account, sizeof account, "%s", email);
  for (char *c = account; *c; c++)
    *c = (char)tolower((unsigned char)*c);
  if (atr_api_rate_limited(r, r->env->login_by_ip, r->remote_ip) ||
      atr_api_rate_limited(r, r->env->login_by_email, account)) {
    json_decref(body);
    return 0;
  }
  login_row_t u = {0};
  char *err = NULL;
  int rc = find_login(r->env->dom.store, email, &u, &err);
  if (rc != 0 && rc != ATR_ENOENT) {
    atr_api_fail(r, rc, err);
  } else {
    const char *hash = rc == 0 && u.hash ? u.hash : dummy_hash(ops, actx);
    char *verr = NULL;
    int ok = hash && ops->verify_secret(actx, password, strlen(password), hash,
                                        NULL, &verr) == 0;
    free(verr);
    char *key = NULL;
    bool known = rc == 0;
    if (!ok || rc != 0 || !u.active) {
      login_refused(r);
    } else if ((rc = atr_session_create(r->env->dom.store, u.user_id, "",
                                        r->env->dom.session_lifetime_ms,
                                        r->remote_ip, &key, &err)) != 0) {
      atr_api_fail(r, rc, err);
    } else {
      set_session_cookies(r, key, r->env->dom.session_lifetime_ms);
      atr_api_json(r, 201, json_pack("{s:s}", "session_token", key));
      OPENSSL_cleanse(key, strlen(key));
    }
    free(key);
    atr_audit_record(r->env->dom.store, &r->actor,
                     &(atr_audit_entry_t){
                         .action = r->status == 201 ? "login" : "login_failed",
                         .resource_type = "user",
                         .resource_id = known ? u.user_id : NULL,
                         .resource_target = email,
                         .user_id = known ? u.user_id : NULL,
                         .status_code = r->status});
  }
  free(u.hash);
  free(err);
  json_decref(body);
  return 0;
}

int atr_api_logout(atr_api_req_t *r) {
  char *err = NULL;
  int rc = atr_session_delete(r->env->dom.store, r->actor.key_id, &err);
  if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else {
    atr_api_header(r, "Set-Cookie",
                   ATR_SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
                                      "SameSite=Lax");
    atr_api_header(r, "Set-Cookie",
                   "atrium_csrf=; Path=/; Max-Age=0; SameSite=Lax");
    atr_api_json(r, 200,
                 json_pack("{s:s}", "message", "Successfully logged out."));
  }
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = "logout",
                                        .resource_type = "user",
                                        .resource_id = r->actor.user_id,
                                        .resource_target = r->actor.username,
                                        .status_code = r->status});
  free(err);
  return 0;
}

int atr_api_auth_methods(atr_api_req_t *r) {
  void *actx = NULL;
  bool password = password_auth(r->env, &actx) != NULL;
  return atr_api_json(r, 200,
                      json_pack("{s:{s:b}}", "password", "enabled", password));
}

/* ---- reading users ------------------------------------------------------- */

static json_t *roles_json(uint32_t roles) {
  json_t *a = json_array();
  for (uint32_t bit = 1; bit <= ATR_ROLE_AUDITOR; bit <<= 1)
    if ((roles & bit) && atr_role_name(bit))
      json_array_append_new(a, json_pack("{s:s}", "name", atr_role_name(bit)));
  return a;
}

/* The user named by {user}: "me", an id or a username. */
static int load_user(atr_api_req_t *r, atr_db_t *db, json_t **out, char **err) {
  const char *who = atr_api_param(r, "user");
  if (strcmp(who, "me") == 0)
    who = r->actor.user_id;
  atr_value_t p[] = {atr_v_uuid_or_null(who), atr_v_text(who)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT id, username, email, name, created_at, updated_at, "
      "last_seen_at, status, login_type, avatar_url FROM users WHERE "
      "deleted = FALSE AND (id = ? OR lower(username) = lower(?))",
      p, 2, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    *out = json_pack(
        "{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s}", "id",
        atr_db_get_text(db, rows, 0), "username", atr_db_get_text(db, rows, 1),
        "email", atr_db_get_text(db, rows, 2), "name",
        atr_db_get_text(db, rows, 3), "created_at",
        atr_time_json(atr_db_get_time(db, rows, 4)), "updated_at",
        atr_time_json(atr_db_get_time(db, rows, 5)), "last_seen_at",
        atr_time_json(atr_db_get_time(db, rows, 6)), "status",
        atr_db_get_text(db, rows, 7), "login_type",
        atr_db_get_text(db, rows, 8), "avatar_url",
        atr_db_get_text(db, rows, 9));
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
    *err = strdup("no such user");
  }
  atr_db_rows_close(db, rows);
  return rc;
}

int atr_api_user_get(atr_api_req_t *r) {
  atr_db_t db;
  char *err = NULL;
  json_t *user = NULL;
  uint32_t roles = 0;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0)
    rc = load_user(r, &db, &user, &err);
  if (rc == 0)
    rc = atr_user_roles(&db, jstr(user, "id"), &roles, &err);
  atr_db_close(&db);
  if (rc == ATR_ENOENT) {
    atr_api_error(r, 404, "User not found.", atr_api_param(r, "user"));
  } else if (rc != 0) {
    json_decref(user);
    atr_api_fail(r, rc, err);
  } else {
    json_object_set_new(user, "roles", roles_json(roles));
    atr_api_json(r, 200, user);
  }
  free(err);
  return 0;
}

/* ---- managing users ------------------------------------------------------ */

typedef struct target {
  char id[37];
  char username[65];
  char status[16];
} target_t;

/* {user} ("me", an id or a username) → the user; answers 404 itself. */
static int resolve_target(atr_api_req_t *r, atr_db_t *db, target_t *t) {
  const char *who = atr_api_param(r, "user");
  if (strcmp(who, "me") == 0)
    who = r->actor.user_id;
  atr_value_t p[] = {atr_v_uuid_or_null(who), atr_v_text(who)};
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  int rc = atr_db_query(db,
                        "SELECT id, username, status FROM users WHERE "
                        "deleted = FALSE AND (id = ? OR lower(username) = "
                        "lower(?))",
                        p, 2, &rows, &err);
  if (rc == 0 && (rc = atr_db_next(db, rows, &err)) == 1) {
    snprintf(t->id, sizeof t->id, "%s", atr_db_get_text(db, rows, 0));
    snprintf(t->username, sizeof t->username, "%s",
             atr_db_get_text(db, rows, 1));
    snprintf(t->status, sizeof t->status, "%s", atr_db_get_text(db, rows, 2));
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  if (rc == ATR_ENOENT)
    atr_api_error(r, 404, "User not found.", who);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  free(err);
  return rc;
}

/* Answer with the user as GET /users/{user} shows it. */
static int answer_user(atr_api_req_t *r, int status, const char *user_id) {
  atr_db_t db;
  char *err = NULL;
  json_t *user = NULL;
  uint32_t roles = 0;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  atr_api_req_t tmp = *r;
  tmp.nparams = 1;
  tmp.param_names[0] = "user}";
  snprintf(tmp.param_values[0], sizeof tmp.param_values[0], "%s", user_id);
  if (rc == 0)
    rc = load_user(&tmp, &db, &user, &err);
  if (rc == 0)
    rc = atr_user_roles(&db, user_id, &roles, &err);
  atr_db_close(&db);
  if (rc != 0) {
    json_decref(user);
    atr_api_fail(r, rc, err);
  } else {
    json_object_set_new(user, "roles", roles_json(roles));
    atr_api_json(r, status, user);
  }
  free(err);
  return 0;
}

static int64_t query_int_param(const atr_api_req_t *r, const char *name,
                               int64_t fallback, int64_t max) {
  char buf[32];
  const char *v = atr_api_query(r, name, buf, sizeof buf);
  char *end = NULL;
  long long n = v ? strtoll(v, &end, 10) : fallback;
  if (v && (*end || n < 0))
    return -1;
  return n > max ? max : n;
}

int atr_api_users_list(atr_api_req_t *r) {
  int64_t limit = query_int_param(r, "limit", 100, 1000);
  int64_t offset = query_int_param(r, "offset", 0, INT64_MAX);
  if (limit < 0 || offset < 0) {
    json_t *v = json_array();
    atr_api_add_validation(v, limit < 0 ? "limit" : "offset",
                           "Must be a whole number of 0 or more.");
    return atr_api_validation(r, "Invalid query parameters.", v);
  }
  char qbuf[128], like[140];
  const char *q = atr_api_query(r, "q", qbuf, sizeof qbuf);
  snprintf(like, sizeof like, "%%%s%%", q ? q : "");
  atr_value_t p[] = {atr_v_text(like), atr_v_text(like), atr_v_int(limit),
                     atr_v_int(offset)};
  atr_db_t db;
  char *err = NULL;
  int64_t count = 0;
  json_t *users = json_array();
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0)
    rc = atr_db_query_int(&db,
                          "SELECT COUNT(*) FROM users WHERE deleted = FALSE "
                          "AND (lower(username) LIKE lower(?) OR lower(email) "
                          "LIKE lower(?))",
                          p, 2, &count, &err);
  atr_db_rows_t *rows = NULL;
  if (rc == 0)
    rc = atr_db_query(&db,
                      "SELECT id FROM users WHERE deleted = FALSE AND "
                      "(lower(username) LIKE lower(?) OR lower(email) LIKE "
                      "lower(?)) ORDER BY lower(username) LIMIT ? OFFSET ?",
                      p, 4, &rows, &err);
  while (rc == 0 && (rc = atr_db_next(&db, rows, &err)) == 1) {
    atr_api_req_t tmp = *r;
    json_t *user = NULL;
    uint32_t roles = 0;
    char *e2 = NULL;
    tmp.nparams = 1;
    tmp.param_names[0] = "user}";
    snprintf(tmp.param_values[0], sizeof tmp.param_values[0], "%s",
             atr_db_get_text(&db, rows, 0));
    atr_db_t db2;
    if (atr_db_open(r->env->dom.store, &db2, &e2) == 0) {
      if (load_user(&tmp, &db2, &user, &e2) == 0 &&
          atr_user_roles(&db2, tmp.param_values[0], &roles, &e2) == 0)
        json_object_set_new(user, "roles", roles_json(roles));
      atr_db_close(&db2);
    }
    free(e2);
    if (user)
      json_array_append_new(users, user);
    rc = 0;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  if (rc < 0) {
    json_decref(users);
    atr_api_fail(r, rc, err);
  } else {
    atr_api_json(
        r, 200,
        json_pack("{s:o, s:I}", "users", users, "count", (json_int_t)count));
  }
  free(err);
  return 0;
}

typedef struct new_user {
  const char *email, *username, *name, *hash, *org_id;
  char id[37];
} new_user_t;

static int insert_user(atr_db_t *db, void *ud, char **err) {
  new_user_t *u = ud;
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(u->id),
                     atr_v_text(u->email),
                     atr_v_text(u->username),
                     atr_v_text(u->name),
                     atr_v_blob(u->hash, strlen(u->hash)),
                     atr_v_time(now),
                     atr_v_time(now)};
  int rc = atr_db_exec(db,
                       "INSERT INTO users (id, email, username, name, "
                       "hashed_password, created_at, updated_at, status, "
                       "login_type) VALUES (?, ?, ?, ?, ?, ?, ?, 'active', "
                       "'password')",
                       p, 7, NULL, err);
  if (rc != 0 || !u->org_id)
    return rc;
  atr_value_t m[] = {atr_v_text(u->id), atr_v_text(u->org_id), atr_v_time(now),
                     atr_v_time(now)};
  return atr_db_exec(db,
                     "INSERT INTO organization_members (user_id, "
                     "organization_id, created_at, updated_at) VALUES (?, ?, "
                     "?, ?)",
                     m, 4, NULL, err);
}

/* The organization a new user joins: the one named, else the default. */
static int member_org(atr_api_req_t *r, const char *wanted, char out[37],
                      char **err) {
  atr_db_t db;
  int rc = atr_db_open(r->env->dom.store, &db, err);
  if (rc != 0)
    return rc;
  char *id = NULL;
  atr_value_t p[] = {atr_v_uuid_or_null(wanted), atr_v_text(wanted)};
  rc = wanted ? atr_db_query_text(&db,
                                  "SELECT id FROM organizations WHERE deleted "
                                  "= FALSE AND (id = ? OR lower(name) = "
                                  "lower(?))",
                                  p, 2, &id, err)
              : atr_db_query_text(&db,
                                  "SELECT id FROM organizations WHERE "
                                  "is_default = TRUE AND deleted = FALSE",
                                  NULL, 0, &id, err);
  atr_db_close(&db);
  if (rc == 0)
    snprintf(out, 37, "%s", id);
  free(id);
  return rc;
}

int atr_api_user_create(atr_api_req_t *r) {
  void *actx = NULL;
  const atr_auth_ops_t *ops = password_auth_or_501(r, &actx);
  if (!ops)
    return 0;
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  new_user_t u = {.email = jstr(body, "email"),
                  .username = jstr(body, "username"),
                  .name = jstr(body, "name") ? jstr(body, "name") : ""};
  const char *password = jstr(body, "password");
  json_t *v = check_new_user(u.email, u.username, password, ops, actx);
  char org[37] = "", *err = NULL, *hash = NULL;
  int rc = 0;
  if (json_array_size(v) == 0 &&
      member_org(r, jstr(body, "organization_id"), org, &err) == ATR_ENOENT &&
      jstr(body, "organization_id"))
    atr_api_add_validation(v, "organization_id", "No such organization.");
  if (json_array_size(v) > 0) {
    free(err);
    json_decref(body);
    return atr_api_validation(r, "Validation failed.", v);
  }
  json_decref(v);
  free(err);
  err = NULL;
  u.org_id = org[0] ? org : NULL;
  atr_db_new_uuid(u.id);
  rc = ops->hash_secret(actx, password, strlen(password), &hash, &err);
  u.hash = hash;
  if (rc == 0)
    rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, insert_user, &u, &err);
  if (rc == ATR_ECONSTRAINT)
    atr_api_error(r, 409, "A user with this username or email already exists.",
                  u.username);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    answer_user(r, 201, u.id);
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = "create",
                                        .resource_type = "user",
                                        .resource_id = rc == 0 ? u.id : NULL,
                                        .resource_target = u.username,
                                        .status_code = r->status});
  if (hash)
    OPENSSL_cleanse(hash, strlen(hash));
  free(hash);
  free(err);
  json_decref(body);
  return 0;
}

/* Run one UPDATE/DELETE about the target and answer. */
static int change_user(atr_api_req_t *r, const char *sql,
                       const char *new_status, const char *action) {
  atr_db_t db;
  char *err = NULL;
  target_t t;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc != 0) {
    atr_api_fail(r, rc, err);
    free(err);
    return 0;
  }
  if (resolve_target(r, &db, &t) != 0) {
    atr_db_close(&db);
    return 0;
  }
  if (strcmp(t.id, r->actor.user_id) == 0) {
    atr_db_close(&db);
    return atr_api_error(r, 400, "You cannot do this to yourself.",
                         "Ask another administrator.");
  }
  uint32_t target_roles = 0;
  char *rerr = NULL;
  atr_user_roles(&db, t.id, &target_roles, &rerr);
  free(rerr);
  if ((target_roles & ATR_ROLE_OWNER) && !(r->actor.roles & ATR_ROLE_OWNER)) {
    atr_db_close(&db);
    return atr_api_error(r, 403, "Only an owner may do this to an owner.",
                         t.username);
  }
  atr_value_t p[] = {atr_v_time(atr_db_now_us()), atr_v_text(t.id)};
  rc = atr_db_exec(&db, sql, p, 2, NULL, &err);
  if (rc == 0 && strcmp(action, "delete") == 0) {
    atr_value_t k[] = {atr_v_text(t.id)};
    rc = atr_db_exec(&db, "DELETE FROM api_keys WHERE user_id = ?", k, 1, NULL,
                     &err);
  }
  atr_db_close(&db);
  json_t *diff = NULL;
  if (new_status)
    atr_audit_diff_add(&diff, "status", t.status, new_status, false);
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else if (new_status)
    answer_user(r, 200, t.id);
  else
    atr_api_no_content(r);
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = action,
                                        .resource_type = "user",
                                        .resource_id = t.id,
                                        .resource_target = t.username,
                                        .diff = diff,
                                        .status_code = r->status});
  json_decref(diff);
  free(err);
  return 0;
}

int atr_api_user_delete(atr_api_req_t *r) {
  return change_user(r,
                     "UPDATE users SET deleted = TRUE, updated_at = ? WHERE "
                     "id = ?",
                     NULL, "delete");
}

int atr_api_user_suspend(atr_api_req_t *r) {
  return change_user(r,
                     "UPDATE users SET status = 'suspended', updated_at = ? "
                     "WHERE id = ?",
                     "suspended", "write");
}

int atr_api_user_activate(atr_api_req_t *r) {
  return change_user(r,
                     "UPDATE users SET status = 'active', updated_at = ? "
                     "WHERE id = ?",
                     "active", "write");
}

/* ---- passwords ------------------------------------------------------------ */

static int read_hash(atr_db_t *db, const char *user_id, char **hash,
                     char **err) {
  atr_value_t p[] = {atr_v_text(user_id)};
  atr_db_rows_t *rows = NULL;
  *hash = NULL;
  int rc = atr_db_query(db, "SELECT hashed_password FROM users WHERE id = ?", p,
                        1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    size_t len = 0;
    const char *h = atr_db_get_blob(db, rows, 0, &len);
    *hash = h ? strndup(h, len) : NULL;
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

/* A user changing their own password proves the old one. */
static bool old_password_ok(atr_api_req_t *r, atr_db_t *db,
                            const atr_auth_ops_t *ops, void *actx,
                            const target_t *t, const char *old) {
  if (strcmp(t->id, r->actor.user_id) != 0)
    return true;
  char *hash = NULL, *err = NULL;
  bool ok = old && read_hash(db, t->id, &hash, &err) == 0 && hash &&
            ops->verify_secret(actx, old, strlen(old), hash, NULL, &err) == 0;
  free(hash);
  free(err);
  return ok;
}

int atr_api_user_password(atr_api_req_t *r) {
  void *actx = NULL;
  const atr_auth_ops_t *ops = password_auth_or_501(r, &actx);
  if (!ops)
    return 0;
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  atr_db_t db;
  char *err = NULL, *hash = NULL;
  target_t t;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc != 0 || resolve_target(r, &db, &t) != 0) {
    if (rc != 0)
      atr_api_fail(r, rc, err);
    goto done;
  }
  const char *password = jstr(body, "password");
  json_t *v = json_array();
  char *why = NULL;
  if (!old_password_ok(r, &db, ops, actx, &t, jstr(body, "old_password")))
    atr_api_add_validation(v, "old_password", "Incorrect or missing.");
  if (!password || !*password)
    atr_api_add_validation(v, "password", "Required.");
  else if (ops->check_secret_policy &&
           ops->check_secret_policy(actx, password, strlen(password),
                                    t.username, NULL, &why) != 0)
    atr_api_add_validation(v, "password", why ? why : "Not accepted.");
  free(why);
  if (json_array_size(v) > 0) {
    atr_api_validation(r, "Validation failed.", v);
    goto done;
  }
  json_decref(v);
  rc = ops->hash_secret(actx, password, strlen(password), &hash, &err);
  atr_value_t p[] = {atr_v_blob(hash, hash ? strlen(hash) : 0),
                     atr_v_time(atr_db_now_us()), atr_v_text(t.id)};
  if (rc == 0)
    rc = atr_db_exec(&db,
                     "UPDATE users SET hashed_password = ?, updated_at = ? "
                     "WHERE id = ?",
                     p, 3, NULL, &err);
  /* Other sign-in sessions end; long-lived tokens stay. */
  atr_value_t k[] = {atr_v_text(t.id), atr_v_text(r->actor.key_id)};
  if (rc == 0)
    rc = atr_db_exec(&db,
                     "DELETE FROM api_keys WHERE user_id = ? AND token_name "
                     "= '' AND id <> ?",
                     k, 2, NULL, &err);
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_no_content(r);
  json_t *diff = NULL;
  atr_audit_diff_add(&diff, "password", NULL, NULL, true);
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = "write",
                                        .resource_type = "user",
                                        .resource_id = t.id,
                                        .resource_target = t.username,
                                        .diff = diff,
                                        .status_code = r->status});
  json_decref(diff);
done:
  atr_db_close(&db);
  if (hash)
    OPENSSL_cleanse(hash, strlen(hash));
  free(hash);
  free(err);
  json_decref(body);
  return 0;
}

/* ---- site roles ------------------------------------------------------------ */

static json_t *role_names(uint32_t roles) {
  json_t *a = json_array();
  for (uint32_t bit = 1; bit <= ATR_ROLE_AUDITOR; bit <<= 1)
    if ((roles & bit) && atr_role_name(bit))
      json_array_append_new(a, json_string(atr_role_name(bit)));
  return a;
}

int atr_api_user_roles_get(atr_api_req_t *r) {
  atr_db_t db;
  char *err = NULL;
  target_t t;
  uint32_t roles = 0;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc == 0 && resolve_target(r, &db, &t) == 0) {
    rc = atr_user_roles(&db, t.id, &roles, &err);
    if (rc != 0)
      atr_api_fail(r, rc, err);
    else
      atr_api_json(r, 200, json_pack("{s:o}", "roles", role_names(roles)));
  } else if (rc != 0) {
    atr_api_fail(r, rc, err);
  }
  atr_db_close(&db);
  free(err);
  return 0;
}

typedef struct role_change {
  const char *user_id;
  uint32_t roles;
  bool last_owner;
} role_change_t;

static int replace_roles(atr_db_t *db, void *ud, char **err) {
  role_change_t *c = ud;
  atr_value_t u[] = {atr_v_text(c->user_id)};
  int64_t other_owners = 0;
  int rc = atr_db_query_int(db,
                            "SELECT COUNT(*) FROM user_roles r JOIN users u "
                            "ON u.id = r.user_id WHERE r.role = 'owner' AND "
                            "u.deleted = FALSE AND r.user_id <> ?",
                            u, 1, &other_owners, err);
  c->last_owner = rc == 0 && other_owners == 0 && !(c->roles & ATR_ROLE_OWNER);
  if (rc != 0 || c->last_owner)
    return rc;
  rc = atr_db_exec(db, "DELETE FROM user_roles WHERE user_id = ?", u, 1, NULL,
                   err);
  for (uint32_t bit = 1; rc == 0 && bit <= ATR_ROLE_AUDITOR; bit <<= 1) {
    if (!(c->roles & bit))
      continue;
    atr_value_t p[] = {atr_v_text(c->user_id), atr_v_text(atr_role_name(bit))};
    rc = atr_db_exec(db, "INSERT INTO user_roles (user_id, role) VALUES (?, ?)",
                     p, 2, NULL, err);
  }
  return rc;
}

static uint32_t parse_roles(json_t *list, json_t *validations) {
  uint32_t roles = 0;
  size_t i;
  json_t *item;
  if (!json_is_array(list)) {
    atr_api_add_validation(validations, "roles",
                           "Must be a list of role names.");
    return 0;
  }
  json_array_foreach(list, i, item) {
    uint32_t role = atr_role_parse(json_string_value(item), false);
    if (!role || !atr_role_assignable(role, false)) {
      char detail[160];
      snprintf(detail, sizeof detail,
               "\"%s\" is not a site role; use owner, user-admin, "
               "template-admin or auditor.",
               json_string_value(item) ? json_string_value(item) : "?");
      atr_api_add_validation(validations, "roles", detail);
    }
    roles |= role;
  }
  return roles;
}

int atr_api_user_roles_put(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  json_t *v = json_array();
  uint32_t roles = parse_roles(json_object_get(body, "roles"), v);
  atr_db_t db;
  char *err = NULL;
  target_t t;
  uint32_t before = 0;
  if (json_array_size(v) > 0) {
    json_decref(body);
    return atr_api_validation(r, "Validation failed.", v);
  }
  json_decref(v);
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  if (rc != 0 || resolve_target(r, &db, &t) != 0) {
    if (rc != 0)
      atr_api_fail(r, rc, err);
    atr_db_close(&db);
    free(err);
    json_decref(body);
    return 0;
  }
  rc = atr_user_roles(&db, t.id, &before, &err);
  atr_db_close(&db);
  uint32_t changed = (before ^ roles) & ~(uint32_t)ATR_ROLE_MEMBER;
  if (rc == 0 && (changed & (ATR_ROLE_OWNER | ATR_ROLE_USER_ADMIN)) &&
      !(r->actor.roles & ATR_ROLE_OWNER)) {
    free(err);
    json_decref(body);
    return atr_api_error(r, 403,
                         "Only an owner may grant or take away the owner "
                         "and user-admin roles.",
                         "");
  }
  role_change_t c = {t.id, roles, false};
  if (rc == 0)
    rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, replace_roles, &c, &err);
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else if (c.last_owner)
    atr_api_error(r, 400, "The last owner cannot lose the owner role.",
                  "Make another user an owner first.");
  else
    answer_user(r, 200, t.id);
  json_t *diff = NULL;
  json_t *old_j = role_names(before), *new_j = role_names(roles);
  char *old_s = json_dumps(old_j, JSON_COMPACT);
  char *new_s = json_dumps(new_j, JSON_COMPACT);
  json_decref(old_j);
  json_decref(new_j);
  atr_audit_diff_add(&diff, "roles", old_s, new_s, false);
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = "write",
                                        .resource_type = "user",
                                        .resource_id = t.id,
                                        .resource_target = t.username,
                                        .diff = diff,
                                        .status_code = r->status});
  json_decref(diff);
  free(old_s);
  free(new_s);
  free(err);
  json_decref(body);
  return 0;
}

/* ---- API tokens -------------------------------------------------------------- */

static int open_target(atr_api_req_t *r, atr_db_t *db, target_t *t) {
  char *err = NULL;
  int rc = atr_db_open(r->env->dom.store, db, &err);
  if (rc != 0) {
    atr_api_fail(r, rc, err);
    free(err);
    return rc;
  }
  rc = resolve_target(r, db, t);
  if (rc != 0)
    atr_db_close(db);
  return rc;
}

int atr_api_tokens_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  const char *name = jstr(body, "token_name");
  json_t *life = json_object_get(body, "lifetime");
  int64_t max_ms = r->env->dom.token_max_lifetime_ms;
  /* compare in seconds first: a huge value must not overflow the ms */
  json_int_t secs = life ? json_integer_value(life) : max_ms / 1000;
  int64_t ms = secs > 0 && secs <= max_ms / 1000 ? (int64_t)secs * 1000 : -1;
  json_t *v = json_array();
  if (!name || !valid_username(name))
    atr_api_add_validation(
        v, "token_name",
        "Required: 1 to 32 letters, digits or single hyphens.");
  if (!life && max_ms / 1000 > 0)
    ms = max_ms;
  if (life && (!json_is_integer(life) || ms <= 0)) {
    char detail[128];
    snprintf(detail, sizeof detail,
             "Must be a whole number of seconds between 1 and %lld.",
             (long long)(max_ms / 1000));
    atr_api_add_validation(v, "lifetime", detail);
  }
  if (json_array_size(v) > 0) {
    json_decref(body);
    return atr_api_validation(r, "Validation failed.", v);
  }
  json_decref(v);
  atr_db_t db;
  target_t t;
  if (open_target(r, &db, &t) != 0) {
    json_decref(body);
    return 0;
  }
  atr_db_close(&db);
  /* A token signs in as its user; minting one for someone else would let
   * its holder act as them, with the audit log blaming them. */
  if (strcmp(t.id, r->actor.user_id) != 0) {
    json_decref(body);
    return atr_api_error(r, 403, "Tokens can only be created by their user.",
                         t.username);
  }
  char *key = NULL, *err = NULL;
  int rc = atr_session_create(r->env->dom.store, t.id, name, ms, r->remote_ip,
                              &key, &err);
  if (rc == ATR_ECONSTRAINT)
    atr_api_error(r, 409, "A token with this name already exists.", name);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, 201, json_pack("{s:s}", "key", key));
  char key_id[ATR_KEY_ID_LEN + 1] = "";
  if (key)
    snprintf(key_id, sizeof key_id, "%.*s", ATR_KEY_ID_LEN, key);
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = "create",
                                        .resource_type = "api_key",
                                        .resource_id = key_id,
                                        .resource_target = name,
                                        .status_code = r->status});
  if (key)
    OPENSSL_cleanse(key, strlen(key));
  free(key);
  free(err);
  json_decref(body);
  return 0;
}

int atr_api_tokens_list(atr_api_req_t *r) {
  atr_db_t db;
  target_t t;
  if (open_target(r, &db, &t) != 0)
    return 0;
  atr_value_t p[] = {atr_v_text(t.id)};
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  json_t *list = json_array();
  int rc = atr_db_query(&db,
                        "SELECT id, token_name, created_at, expires_at, "
                        "last_used, lifetime_seconds FROM api_keys WHERE "
                        "user_id = ? AND token_name <> '' ORDER BY "
                        "created_at",
                        p, 1, &rows, &err);
  while (rc == 0 && (rc = atr_db_next(&db, rows, &err)) == 1) {
    json_array_append_new(
        list,
        json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:I}", "id",
                  atr_db_get_text(&db, rows, 0), "user_id", t.id, "token_name",
                  atr_db_get_text(&db, rows, 1), "created_at",
                  atr_time_json(atr_db_get_time(&db, rows, 2)), "expires_at",
                  atr_time_json(atr_db_get_time(&db, rows, 3)), "last_used",
                  atr_time_json(atr_db_get_time(&db, rows, 4)),
                  "lifetime_seconds",
                  (json_int_t)atr_db_get_int(&db, rows, 5)));
    rc = 0;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  if (rc < 0) {
    json_decref(list);
    atr_api_fail(r, rc, err);
  } else {
    atr_api_json(r, 200, list);
  }
  free(err);
  return 0;
}

int atr_api_key_delete(atr_api_req_t *r) {
  atr_db_t db;
  target_t t;
  if (open_target(r, &db, &t) != 0)
    return 0;
  const char *key_id = atr_api_param(r, "keyid");
  /* {keyid} is a key's id or a token's name */
  atr_value_t q[] = {atr_v_text(key_id), atr_v_text(key_id), atr_v_text(t.id)};
  char *err = NULL, *name = NULL;
  int64_t changed = 0;
  int rc = atr_db_query_text(&db,
                             "SELECT token_name FROM api_keys WHERE (id = ? "
                             "OR token_name = ?) AND user_id = ? AND "
                             "token_name <> ''",
                             q, 3, &name, &err);
  if (rc == 0)
    rc = atr_db_exec(&db,
                     "DELETE FROM api_keys WHERE (id = ? OR token_name = ?) "
                     "AND user_id = ? AND token_name <> ''",
                     q, 3, &changed, &err);
  atr_db_close(&db);
  if (rc == ATR_ENOENT || (rc == 0 && changed == 0))
    atr_api_error(r, 404, "Token not found.", key_id);
  else if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_no_content(r);
  atr_audit_record(r->env->dom.store, &r->actor,
                   &(atr_audit_entry_t){.action = "delete",
                                        .resource_type = "api_key",
                                        .resource_id = key_id,
                                        .resource_target = name,
                                        .status_code = r->status});
  free(name);
  free(err);
  return 0;
}
