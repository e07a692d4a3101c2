/* core/api/api_users.c — the first user, sign-in and sign-out, users,
 * their passwords, site roles and API tokens: each handler reads the
 * request, calls one domain function (users.h, keys.h) and answers.
 * Session cookies, CSRF cookies and sign-in rate limits are the API's
 * own. */
#include "api_users.h"

#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "keys.h"
#include "users.h"

#define ATR_SESSION_COOKIE "atrium_session"

/* ---- helpers ---------------------------------------------------------- */

static const char *jstr(json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

/* The password plugin is needed before anything else is read: without
 * it the answer is 501, whatever the body. */
static bool password_disabled(atr_api_req_t *r) {
  atr_fault_t f = {0};
  if (atr_auth_password_require(&r->env->dom, &f) == 0)
    return false;
  atr_api_fault(r, &f);
  return true;
}

static void wipe(char *key) {
  if (key)
    OPENSSL_cleanse(key, strlen(key));
  free(key);
}

/* ---- the first user ------------------------------------------------------ */

int atr_api_first_user_exists(atr_api_req_t *r) {
  atr_fault_t f = {0};
  bool exists = false;
  if (atr_user_first_exists(&r->env->dom, &r->actor, &exists, &f) != 0)
    return atr_api_fault(r, &f);
  if (!exists)
    return atr_api_error(r, 404, "The initial user has not been created.", "");
  return atr_api_json(r, 200,
                      json_pack("{s:s}", "message",
                                "The initial user has already been created."));
}

int atr_api_first_user_create(atr_api_req_t *r) {
  if (password_disabled(r))
    return 0;
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  atr_user_new_t in = {.email = jstr(body, "email"),
                       .username = jstr(body, "username"),
                       .name = jstr(body, "name"),
                       .password = jstr(body, "password"),
                       .organization = jstr(body, "organization")};
  atr_fault_t f = {0};
  char user_id[37], org_id[37];
  int rc =
      atr_user_first_create(&r->env->dom, &r->actor, &in, user_id, org_id, &f);
  json_t *out = rc ? NULL
                   : json_pack("{s:s, s:s}", "user_id", user_id,
                               "organization_id", org_id);
  atr_api_answer(r, rc, 201, out, &f);
  json_decref(body);
  return 0;
}

/* ---- sign-in and sign-out ------------------------------------------------ */

static void set_session_cookies(atr_api_req_t *r, const char *key,
                                int64_t lifetime_ms) {
  char csrf[ATR_API_CSRF_LEN + 1], cookie[256];
  atr_api_csrf_token(key, csrf);
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

/* Sign-in attempts are limited per address only: a limit per account
 * would let failures from anywhere lock the real user out of their own
 * account, while argon2id's cost already bounds guessing from many
 * addresses. */
static bool login_limited(atr_api_req_t *r) {
  return atr_api_rate_limited(r, r->env->login_by_ip, r->remote_ip);
}

static int sign_in(atr_api_req_t *r, const char *email, const char *password) {
  atr_fault_t f = {0};
  char *key = NULL;
  int rc = atr_user_login(&r->env->dom, &r->actor, email, password, &key, &f);
  if (rc == ATR_EACCES) { /* the one refusal that is not 403: 401 */
    atr_api_error(r, 401, f.message, "");
    atr_fault_clear(&f);
  } else if (rc != 0) {
    atr_api_fault(r, &f);
  } else {
    set_session_cookies(r, key, r->env->dom.session_lifetime_ms);
    atr_api_json(r, 201, json_pack("{s:s}", "session_token", key));
  }
  wipe(key);
  return 0;
}

int atr_api_login(atr_api_req_t *r) {
  if (password_disabled(r))
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
  if (!login_limited(r))
    sign_in(r, email, password);
  json_decref(body);
  return 0;
}

int atr_api_logout(atr_api_req_t *r) {
  atr_fault_t f = {0};
  if (atr_user_logout(&r->env->dom, &r->actor, &f) != 0)
    return atr_api_fault(r, &f);
  atr_api_header(r, "Set-Cookie",
                 ATR_SESSION_COOKIE "=; Path=/; Max-Age=0; HttpOnly; "
                                    "SameSite=Lax");
  atr_api_header(r, "Set-Cookie",
                 "atrium_csrf=; Path=/; Max-Age=0; SameSite=Lax");
  return atr_api_json(
      r, 200, json_pack("{s:s}", "message", "Successfully logged out."));
}

int atr_api_auth_methods(atr_api_req_t *r) {
  bool password = atr_auth_password_enabled(&r->env->dom);
  return atr_api_json(r, 200,
                      json_pack("{s:{s:b}}", "password", "enabled", password));
}

/* ---- users ------------------------------------------------------------------ */

int atr_api_user_get(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *user = NULL;
  int rc = atr_user_get(&r->env->dom, &r->actor, atr_api_param(r, "user"),
                        &user, &f);
  return atr_api_answer(r, rc, 200, user, &f);
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
  char qbuf[128];
  const char *q = atr_api_query(r, "q", qbuf, sizeof qbuf);
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_user_list(&r->env->dom, &r->actor, q, limit, offset, &out, &f);
  return atr_api_answer(r, rc, 200, out, &f);
}

int atr_api_user_create(atr_api_req_t *r) {
  if (password_disabled(r))
    return 0;
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  atr_user_new_t in = {.email = jstr(body, "email"),
                       .username = jstr(body, "username"),
                       .name = jstr(body, "name"),
                       .password = jstr(body, "password"),
                       .organization = jstr(body, "organization_id")};
  atr_fault_t f = {0};
  json_t *user = NULL;
  int rc = atr_user_create(&r->env->dom, &r->actor, &in, &user, &f);
  atr_api_answer(r, rc, 201, user, &f);
  json_decref(body);
  return 0;
}

int atr_api_user_delete(atr_api_req_t *r) {
  atr_fault_t f = {0};
  int rc =
      atr_user_delete(&r->env->dom, &r->actor, atr_api_param(r, "user"), &f);
  return atr_api_answer(r, rc, 204, NULL, &f);
}

int atr_api_user_suspend(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *user = NULL;
  int rc = atr_user_suspend(&r->env->dom, &r->actor, atr_api_param(r, "user"),
                            &user, &f);
  return atr_api_answer(r, rc, 200, user, &f);
}

int atr_api_user_activate(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *user = NULL;
  int rc = atr_user_activate(&r->env->dom, &r->actor, atr_api_param(r, "user"),
                             &user, &f);
  return atr_api_answer(r, rc, 200, user, &f);
}

int atr_api_user_password(atr_api_req_t *r) {
  if (password_disabled(r))
    return 0;
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  atr_fault_t f = {0};
  int rc = atr_user_password_set(
      &r->env->dom, &r->actor, atr_api_param(r, "user"),
      jstr(body, "old_password"), jstr(body, "password"), &f);
  atr_api_answer(r, rc, 204, NULL, &f);
  json_decref(body);
  return 0;
}

/* ---- site roles ------------------------------------------------------------ */

int atr_api_user_roles_get(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *roles = NULL;
  int rc = atr_user_roles_get(&r->env->dom, &r->actor, atr_api_param(r, "user"),
                              &roles, &f);
  return atr_api_answer(r, rc, 200, roles, &f);
}

/* The body's "roles": a list of site role names, each bad entry one
 * validation. */
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
  json_decref(body);
  if (json_array_size(v) > 0)
    return atr_api_validation(r, "Validation failed.", v);
  json_decref(v);
  atr_fault_t f = {0};
  json_t *user = NULL;
  int rc = atr_user_roles_set(&r->env->dom, &r->actor, atr_api_param(r, "user"),
                              roles, &user, &f);
  return atr_api_answer(r, rc, 200, user, &f);
}

/* ---- API tokens -------------------------------------------------------------- */

int atr_api_tokens_create(atr_api_req_t *r) {
  json_t *body = atr_api_body(r);
  if (!body)
    return 0;
  /* Not a whole number counts as 0, which the domain refuses in the
   * same words as any other lifetime out of range. */
  json_t *life = json_object_get(body, "lifetime");
  int64_t lifetime_s = !life                   ? ATR_TOKEN_LIFETIME_DEFAULT
                       : json_is_integer(life) ? json_integer_value(life)
                                               : 0;
  atr_fault_t f = {0};
  char *key = NULL;
  int rc = atr_token_create(&r->env->dom, &r->actor, atr_api_param(r, "user"),
                            jstr(body, "token_name"), lifetime_s, &key, &f);
  atr_api_answer(r, rc, 201, rc ? NULL : json_pack("{s:s}", "key", key), &f);
  wipe(key);
  json_decref(body);
  return 0;
}

int atr_api_tokens_list(atr_api_req_t *r) {
  atr_fault_t f = {0};
  json_t *list = NULL;
  int rc = atr_token_list(&r->env->dom, &r->actor, atr_api_param(r, "user"),
                          &list, &f);
  return atr_api_answer(r, rc, 200, list, &f);
}

int atr_api_key_delete(atr_api_req_t *r) {
  atr_fault_t f = {0};
  int rc = atr_token_delete(&r->env->dom, &r->actor, atr_api_param(r, "user"),
                            atr_api_param(r, "keyid"), &f);
  return atr_api_answer(r, rc, 204, NULL, &f);
}
