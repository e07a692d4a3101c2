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
#include <time.h>

#include "atrium/auth.h"
#include "atrium/error.h"
#include "log.h"
#include "session.h"

#define ATR_SESSION_COOKIE "atrium_session"

/* ---- helpers ---------------------------------------------------------- */

static const atr_auth_ops_t *password_auth(const atr_api_env_t *env,
                                           void **ctx) {
  for (size_t i = 0; env->loader && i < env->loader->nplugins; i++) {
    atr_handle_t *h = env->loader->plugins[i];
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

static void iso_time(int64_t us, char *buf, size_t size) {
  time_t secs = (time_t)(us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, size - n, ".%06lldZ", (long long)(us % 1000000));
}

static json_t *time_json(int64_t us) {
  if (us == 0)
    return json_null();
  char buf[40];
  iso_time(us, buf, sizeof buf);
  return json_string(buf);
}

static const char *jstr(json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

static void add_validation(json_t *v, const char *field, const char *detail) {
  json_array_append_new(
      v, json_pack("{s:s, s:s}", "field", field, "detail", detail));
}

/* Usernames as Coder allows them: 1-32 of [a-zA-Z0-9-], no leading,
 * trailing or double hyphen. */
static bool valid_username(const char *s) {
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
  int rc = atr_db_open(r->env->store, &db, &err);
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
    add_validation(v, "email", "Must be a valid email address.");
  if (!valid_username(username))
    add_validation(v, "username",
                   "Must be 1 to 32 letters, digits or single hyphens, "
                   "not starting or ending with a hyphen.");
  char *why = NULL;
  if (!password || !*password)
    add_validation(v, "password", "Required.");
  else if (ops->check_secret_policy &&
           ops->check_secret_policy(ctx, password, strlen(password), username,
                                    email, &why) != 0)
    add_validation(v, "password", why ? why : "Not accepted.");
  free(why);
  return v;
}

int atr_api_first_user_create(atr_api_req_t *r) {
  void *actx = NULL;
  const atr_auth_ops_t *ops = password_auth(r->env, &actx);
  if (!ops)
    return atr_api_error(r, 501, "Password sign-in is not enabled.",
                         "Enable the auth_password plugin.");
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
    rc = atr_db_tx(r->env->store, ATR_TX_SERIALIZABLE, insert_first, &f, &err);
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
  const atr_auth_ops_t *ops = password_auth(r->env, &actx);
  if (!ops)
    return atr_api_error(r, 501, "Password sign-in is not enabled.",
                         "Enable the auth_password plugin.");
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  const char *email = jstr(body, "email"), *password = jstr(body, "password");
  if (!email || !password) {
    json_t *v = json_array();
    if (!email)
      add_validation(v, "email", "Required.");
    if (!password)
      add_validation(v, "password", "Required.");
    json_decref(body);
    return atr_api_validation(r, "Validation failed.", v);
  }
  login_row_t u = {0};
  char *err = NULL;
  int rc = find_login(r->env->store, email, &u, &err);
  if (rc != 0 && rc != ATR_ENOENT) {
    atr_api_fail(r, rc, err);
  } else {
    const char *hash = rc == 0 && u.hash ? u.hash : dummy_hash(ops, actx);
    char *verr = NULL;
    int ok = hash && ops->verify_secret(actx, password, strlen(password), hash,
                                        NULL, &verr) == 0;
    free(verr);
    char *key = NULL;
    if (!ok || rc != 0 || !u.active) {
      login_refused(r);
    } else if ((rc = atr_session_create(r->env->store, u.user_id, "",
                                        r->env->session_lifetime_ms,
                                        r->remote_ip, &key, &err)) != 0) {
      atr_api_fail(r, rc, err);
    } else {
      set_session_cookies(r, key, r->env->session_lifetime_ms);
      atr_api_json(r, 201, json_pack("{s:s}", "session_token", key));
      OPENSSL_cleanse(key, strlen(key));
    }
    free(key);
  }
  free(u.hash);
  free(err);
  json_decref(body);
  return 0;
}

int atr_api_logout(atr_api_req_t *r) {
  char *err = NULL;
  int rc = atr_session_delete(r->env->store, r->actor.key_id, &err);
  if (rc != 0) {
    atr_api_fail(r, rc, err);
  } else {
    atr_api_header(r, "Set-Cookie",
                   ATR_SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
                                      "SameSite=Lax");
    atr_api_json(r, 200,
                 json_pack("{s:s}", "message", "Successfully logged out."));
  }
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
  atr_value_t p[] = {atr_v_text(who), atr_v_text(who)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT id, username, email, name, created_at, updated_at, "
      "last_seen_at, status, login_type, avatar_url FROM users WHERE "
      "deleted = FALSE AND (id = ? OR lower(username) = lower(?))",
      p, 2, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    *out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:s, s:s}", "id",
                     atr_db_get_text(db, rows, 0), "username",
                     atr_db_get_text(db, rows, 1), "email",
                     atr_db_get_text(db, rows, 2), "name",
                     atr_db_get_text(db, rows, 3), "created_at",
                     time_json(atr_db_get_time(db, rows, 4)), "updated_at",
                     time_json(atr_db_get_time(db, rows, 5)), "last_seen_at",
                     time_json(atr_db_get_time(db, rows, 6)), "status",
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
  int rc = atr_db_open(r->env->store, &db, &err);
  if (rc == 0)
    rc = load_user(r, &db, &user, &err);
  if (rc == 0)
    rc = atr_user_roles(&db, jstr(user, "id"), &roles, &err);
  atr_db_close(&db);
  if (rc != 0) {
    json_decref(user);
    atr_api_fail(r, rc, err);
  } else {
    json_object_set_new(user, "roles", roles_json(roles));
    atr_api_json(r, 200, user);
  }
  free(err);
  return 0;
}

/* TEMPORARY: the rest of the user handlers are being written. */
#define NOT_YET(fn)                                                            \
  int fn(atr_api_req_t *r) {                                                   \
    return atr_api_error(r, 501, "Not supported yet.", #fn);                   \
  }
NOT_YET(atr_api_users_list)
NOT_YET(atr_api_user_create)
NOT_YET(atr_api_user_delete)
NOT_YET(atr_api_user_suspend)
NOT_YET(atr_api_user_activate)
NOT_YET(atr_api_user_password)
NOT_YET(atr_api_user_roles_get)
NOT_YET(atr_api_user_roles_put)
NOT_YET(atr_api_tokens_create)
NOT_YET(atr_api_tokens_list)
NOT_YET(atr_api_key_delete)
