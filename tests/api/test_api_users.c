/* tests/api/test_api_users.c — users, sign-in, sessions, roles and API
 * tokens through the real `atrium server`, as an API client sees them.
 * The program also runs the groups of test_api_users_audit.c (the audit
 * log, secrets out of the logs) and test_api_files.c (template archives).
 *
 *   test_api_users sqlite
 *   test_api_users postgres PGDIR   (PGDIR/dsn: the fixture's libpq DSN)
 *
 * Each test starts its own server on an empty database (a new SQLite file;
 * on PostgreSQL the public schema dropped and made again) with cheap
 * argon2 costs and the rate limits off, and ends it with SIGTERM, which
 * must exit 0. Every password and key a test used is remembered, and the
 * server's log (written at debug level) must contain none of them. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "users.h"

/* session.max_token_lifetime's default, 720h, in seconds */
#define MAX_TOKEN_LIFETIME_S 2592000

/* ---- the first user ------------------------------------------------------- */

static void the_first_user_is_created_once_and_becomes_owner(void **state) {
  srv_t *s = *state;
  ASSERT_ERROR(404, "The initial user has not been created.",
               get(s, "/api/v2/users/first", NULL));

  atr_tc_res_t r =
      call(s, "POST", "/api/v2/users/first", NULL,
           json_pack("{s:s, s:s, s:s}", "email", "not-an-email", "username",
                     "-bad-name-", "password", "short"));
  static const char *const all_three[] = {"email", "username", "password"};
  assert_validation_failed(&r, all_three, 3);
  atr_tc_res_free(&r);
  ASSERT_STATUS(404, get(s, "/api/v2/users/first", NULL));

  remember(OWNER_PW);
  r = call(s, "POST", "/api/v2/users/first", NULL,
           json_pack("{s:s, s:s, s:s}", "email", OWNER_EMAIL, "username",
                     "owner", "password", OWNER_PW));
  ASSERT_ANSWER(r, 201);
  assert_int_equal(strlen(field(&r, "user_id")), 36);
  assert_int_equal(strlen(field(&r, "organization_id")), 36);
  snprintf(s->owner_id, sizeof s->owner_id, "%s", field(&r, "user_id"));
  atr_tc_res_free(&r);

  r = get(s, "/api/v2/users/first", NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "message"),
                      "The initial user has already been created.");
  atr_tc_res_free(&r);
  ASSERT_ERROR(409, "The initial user has already been created.",
               call(s, "POST", "/api/v2/users/first", NULL,
                    json_pack("{s:s, s:s, s:s}", "email", "second@example.com",
                              "username", "second", "password", NEW_PW)));

  const char *token = login(s, OWNER_EMAIL, OWNER_PW);
  r = get(s, "/api/v2/users/me", token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "id"), s->owner_id);
  assert_string_equal(field(&r, "username"), "owner");
  assert_string_equal(field(&r, "email"), OWNER_EMAIL);
  assert_string_equal(field(&r, "status"), "active");
  assert_string_equal(field(&r, "login_type"), "password");
  json_t *roles = json_object_get(r.json, "roles");
  assert_int_equal(json_array_size(roles), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(roles, 0), "name")),
      "owner");
  assert_null(json_object_get(r.json, "hashed_password"));
  atr_tc_res_free(&r);
}

/* ---- signing in ------------------------------------------------------------ */

static void wrong_password_and_unknown_email_get_the_same_401(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  remember("Not-The-Password-1");
  atr_tc_res_t wrong = call(s, "POST", "/api/v2/users/login", NULL,
                            json_pack("{s:s, s:s}", "email", OWNER_EMAIL,
                                      "password", "Not-The-Password-1"));
  atr_tc_res_t unknown =
      call(s, "POST", "/api/v2/users/login", NULL,
           json_pack("{s:s, s:s}", "email", "nobody@example.com", "password",
                     OWNER_PW));
  ASSERT_ANSWER(wrong, 401);
  ASSERT_ANSWER(unknown, 401);
  assert_string_equal(field(&wrong, "message"), INCORRECT);
  /* nothing tells which one was wrong */
  assert_string_equal(wrong.body, unknown.body);
  assert_string_equal(wrong.set_cookies, "");
  atr_tc_res_free(&wrong);
  atr_tc_res_free(&unknown);

  atr_tc_res_t r = call(s, "POST", "/api/v2/users/login", NULL,
                        json_pack("{s:s}", "email", OWNER_EMAIL));
  static const char *const password_only[] = {"password"};
  assert_validation_failed(&r, password_only, 1);
  atr_tc_res_free(&r);
}

static void a_session_token_works_as_header_and_as_bearer(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  const char *token = s->owner_token;
  assert_int_equal(strlen(token), 33); /* <10-char id>-<22-char secret> */
  assert_int_equal(token[10], '-');

  atr_tc_res_t r = get(s, "/api/v2/users/me", token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "id"), s->owner_id);
  atr_tc_res_free(&r);

  r = atr_tc_call(s->h.port,
                  &(atr_tc_req_t){.path = "/api/v2/users/me", .bearer = token});
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "id"), s->owner_id);
  atr_tc_res_free(&r);

  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", NULL));
  char forged[34];
  snprintf(forged, sizeof forged, "%.11s%s", token, "AAAAAAAAAAAAAAAAAAAAAA");
  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", forged));
  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", "not-a-key"));
}

static void a_cookie_session_needs_the_csrf_header_to_write(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  atr_tc_res_t r =
      call(s, "POST", "/api/v2/users/login", NULL,
           json_pack("{s:s, s:s}", "email", OWNER_EMAIL, "password", OWNER_PW));
  ASSERT_ANSWER(r, 201);
  const char *token = remember(field(&r, "session_token"));
  char session[64], csrf[64];
  assert_non_null(atr_tc_cookie(&r, "atrium_session", session, sizeof session));
  assert_non_null(atr_tc_cookie(&r, "atrium_csrf", csrf, sizeof csrf));
  assert_string_equal(session, token);
  assert_int_equal(strlen(csrf), 32);
  /* the session cookie is out of reach of scripts; the CSRF one is not */
  const char *csrf_line = strstr(r.set_cookies, "atrium_csrf=");
  assert_non_null(csrf_line);
  assert_non_null(strstr(r.set_cookies, "HttpOnly"));
  assert_null(strstr(csrf_line, "HttpOnly"));
  atr_tc_res_free(&r);

  char cookie[200];
  snprintf(cookie, sizeof cookie, "atrium_session=%s; atrium_csrf=%s", session,
           csrf);
  r = atr_tc_call(
      s->h.port, &(atr_tc_req_t){.path = "/api/v2/users/me", .cookie = cookie});
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "id"), s->owner_id);
  atr_tc_res_free(&r);

  remember(MEMBER_PW);
  json_t *body = json_pack("{s:s, s:s, s:s}", "email", MEMBER_EMAIL, "username",
                           "member", "password", MEMBER_PW);
  atr_tc_req_t post = {.method = "POST",
                       .path = "/api/v2/users",
                       .cookie = cookie,
                       .body = body};
  r = atr_tc_call(s->h.port, &post);
  ASSERT_ANSWER(r, 403);
  assert_string_equal(field(&r, "message"), "CSRF check failed.");
  atr_tc_res_free(&r);
  post.csrf = "0123456789abcdef0123456789abcdef";
  ASSERT_ERROR(403, "CSRF check failed.", atr_tc_call(s->h.port, &post));
  post.csrf = csrf;
  r = atr_tc_call(s->h.port, &post);
  ASSERT_ANSWER(r, 201);
  assert_string_equal(field(&r, "username"), "member");
  atr_tc_res_free(&r);
  json_decref(body);
}

/* ---- users and roles ------------------------------------------------------- */

static void members_see_only_themselves(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char member_id[37], path[128];
  remember(MEMBER_PW);
  atr_tc_res_t r =
      call(s, "POST", "/api/v2/users", s->owner_token,
           json_pack("{s:s, s:s, s:s, s:s}", "email", MEMBER_EMAIL, "username",
                     "member", "name", "Mem Ber", "password", MEMBER_PW));
  ASSERT_ANSWER(r, 201);
  snprintf(member_id, sizeof member_id, "%s", field(&r, "id"));
  assert_string_equal(field(&r, "username"), "member");
  assert_string_equal(field(&r, "email"), MEMBER_EMAIL);
  assert_string_equal(field(&r, "name"), "Mem Ber");
  assert_string_equal(field(&r, "status"), "active");
  assert_int_equal(json_array_size(json_object_get(r.json, "roles")), 0);
  atr_tc_res_free(&r);

  /* the same username or email, in any case, is taken */
  ASSERT_STATUS(409,
                call(s, "POST", "/api/v2/users", s->owner_token,
                     json_pack("{s:s, s:s, s:s}", "email", "other@example.com",
                               "username", "MEMBER", "password", NEW_PW)));
  ASSERT_STATUS(409,
                call(s, "POST", "/api/v2/users", s->owner_token,
                     json_pack("{s:s, s:s, s:s}", "email", "Member@Example.com",
                               "username", "other", "password", NEW_PW)));

  r = get(s, "/api/v2/users", s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "count")), 2);
  assert_int_equal(json_array_size(json_object_get(r.json, "users")), 2);
  atr_tc_res_free(&r);

  const char *member = login(s, MEMBER_EMAIL, MEMBER_PW);
  ASSERT_ERROR(403, "Forbidden.", get(s, "/api/v2/users", member));
  ASSERT_STATUS(403,
                call(s, "POST", "/api/v2/users", member,
                     json_pack("{s:s, s:s, s:s}", "email", "third@example.com",
                               "username", "third", "password", NEW_PW)));
  r = get(s, "/api/v2/users/me", member);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "id"), member_id);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/users/%s", member_id);
  ASSERT_STATUS(200, get(s, path, member));
  ASSERT_STATUS(200, get(s, "/api/v2/users/member", member));
  snprintf(path, sizeof path, "/api/v2/users/%s", s->owner_id);
  ASSERT_ERROR(403, "Forbidden.", get(s, path, member));
  ASSERT_STATUS(403, get(s, "/api/v2/users/owner", member));
}

static void a_role_change_applies_to_the_next_request(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char member_id[37];
  create_user(s, "member", MEMBER_EMAIL, MEMBER_PW, member_id);
  const char *member = login(s, MEMBER_EMAIL, MEMBER_PW);
  ASSERT_STATUS(403, get(s, "/api/v2/users", member));
  /* members cannot hand themselves roles */
  ASSERT_STATUS(403, call(s, "PUT", "/api/v2/users/me/roles", member,
                          role_list("auditor")));

  atr_tc_res_t r = call(s, "PUT", "/api/v2/users/member/roles", s->owner_token,
                        role_list("auditor"));
  ASSERT_ANSWER(r, 200);
  json_t *roles = json_object_get(r.json, "roles");
  assert_int_equal(json_array_size(roles), 1);
  assert_string_equal(
      json_string_value(json_object_get(json_array_get(roles, 0), "name")),
      "auditor");
  atr_tc_res_free(&r);
  /* the same session, no new sign-in */
  r = get(s, "/api/v2/users", member);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "count")), 2);
  atr_tc_res_free(&r);
  r = get(s, "/api/v2/users/me/roles", member);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(r.json, "roles"), 0)),
      "auditor");
  atr_tc_res_free(&r);

  ASSERT_STATUS(200, call(s, "PUT", "/api/v2/users/member/roles",
                          s->owner_token, role_list(NULL)));
  ASSERT_ERROR(403, "Forbidden.", get(s, "/api/v2/users", member));

  r = call(s, "PUT", "/api/v2/users/member/roles", s->owner_token,
           role_list("superuser"));
  static const char *const roles_field[] = {"roles"};
  assert_validation_failed(&r, roles_field, 1);
  atr_tc_res_free(&r);

  ASSERT_ERROR(400, "The last owner cannot lose the owner role.",
               call(s, "PUT", "/api/v2/users/me/roles", s->owner_token,
                    role_list("auditor")));
  r = get(s, "/api/v2/users/me/roles", s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(
      json_string_value(json_array_get(json_object_get(r.json, "roles"), 0)),
      "owner");
  atr_tc_res_free(&r);
  /* with a second owner, the first may step down */
  ASSERT_STATUS(200, call(s, "PUT", "/api/v2/users/member/roles",
                          s->owner_token, role_list("owner")));
  ASSERT_STATUS(200, call(s, "PUT", "/api/v2/users/owner/roles", member,
                          role_list(NULL)));
  ASSERT_STATUS(403, get(s, "/api/v2/users", s->owner_token));
}

static void suspension_refuses_the_next_request(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char member_id[37];
  create_user(s, "member", MEMBER_EMAIL, MEMBER_PW, member_id);
  const char *member = login(s, MEMBER_EMAIL, MEMBER_PW);
  const char *token = create_token(s, "me", member, "laptop");
  assert_int_equal(me_status(s, member), 200);

  atr_tc_res_t r = call(s, "PUT", "/api/v2/users/member/status/suspend",
                        s->owner_token, NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "status"), "suspended");
  atr_tc_res_free(&r);
  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", member));
  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", token));
  assert_int_equal(login_status(s, MEMBER_EMAIL, MEMBER_PW), 401);

  r = call(s, "PUT", "/api/v2/users/member/status/activate", s->owner_token,
           NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "status"), "active");
  atr_tc_res_free(&r);
  /* Suspension does not delete keys: session.c reads the user's status on
   * every request, so the session and the token from before work again
   * once the user is active. */
  assert_int_equal(me_status(s, member), 200);
  assert_int_equal(me_status(s, token), 200);
  assert_int_equal(login_status(s, MEMBER_EMAIL, MEMBER_PW), 201);
}

/* ---- passwords --------------------------------------------------------------- */

static void a_password_change_ends_the_other_sessions(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char member_id[37];
  create_user(s, "member", MEMBER_EMAIL, MEMBER_PW, member_id);
  const char *here = login(s, MEMBER_EMAIL, MEMBER_PW);
  const char *elsewhere = login(s, MEMBER_EMAIL, MEMBER_PW);
  const char *token = create_token(s, "me", here, "ci");
  remember(NEW_PW);

  atr_tc_res_t r = call(s, "PUT", "/api/v2/users/me/password", here,
                        json_pack("{s:s}", "password", NEW_PW));
  static const char *const old_field[] = {"old_password"};
  assert_validation_failed(&r, old_field, 1);
  atr_tc_res_free(&r);
  r = call(s, "PUT", "/api/v2/users/me/password", here,
           json_pack("{s:s, s:s}", "old_password", NEW_PW, "password", NEW_PW));
  assert_validation_failed(&r, old_field, 1);
  atr_tc_res_free(&r);
  r = call(
      s, "PUT", "/api/v2/users/me/password", here,
      json_pack("{s:s, s:s}", "old_password", MEMBER_PW, "password", "short"));
  static const char *const password_field[] = {"password"};
  assert_validation_failed(&r, password_field, 1);
  atr_tc_res_free(&r);
  /* nothing changed yet */
  assert_int_equal(me_status(s, elsewhere), 200);

  r = call(
      s, "PUT", "/api/v2/users/me/password", here,
      json_pack("{s:s, s:s}", "old_password", MEMBER_PW, "password", NEW_PW));
  ASSERT_ANSWER(r, 204);
  assert_string_equal(r.body, "");
  atr_tc_res_free(&r);

  assert_int_equal(login_status(s, MEMBER_EMAIL, MEMBER_PW), 401);
  assert_int_equal(login_status(s, MEMBER_EMAIL, NEW_PW), 201);
  assert_int_equal(me_status(s, elsewhere), 401);
  assert_int_equal(me_status(s, here), 200);
  /* sessions end; long-lived tokens are kept (api_users.c says so) */
  assert_int_equal(me_status(s, token), 200);
  /* the owner's sessions are not the member's business */
  assert_int_equal(me_status(s, s->owner_token), 200);
}

/* ---- API tokens ------------------------------------------------------------- */

/* The member's one token, listed without its secret. */
static void token_is_listed(const srv_t *s, const char *member,
                            const char *member_id, const char *key) {
  char key_id[11];
  snprintf(key_id, sizeof key_id, "%.10s", key);
  atr_tc_res_t r = get(s, "/api/v2/users/me/keys/tokens", member);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 1);
  json_t *t = json_array_get(r.json, 0);
  assert_string_equal(json_string_value(json_object_get(t, "id")), key_id);
  assert_string_equal(json_string_value(json_object_get(t, "token_name")),
                      "ci-runner");
  assert_string_equal(json_string_value(json_object_get(t, "user_id")),
                      member_id);
  assert_int_equal(json_integer_value(json_object_get(t, "lifetime_seconds")),
                   MAX_TOKEN_LIFETIME_S);
  assert_null(json_object_get(t, "key"));
  assert_null(strstr(r.body, key_secret(key)));
  atr_tc_res_free(&r);
}

/* Names are unique, lifetimes bounded; a second token is listed second. */
static void token_rules(const srv_t *s, const char *member) {
  atr_tc_res_t r;
  ASSERT_ERROR(409, "A token with this name already exists.",
               call(s, "POST", "/api/v2/users/me/keys/tokens", member,
                    json_pack("{s:s}", "token_name", "ci-runner")));
  r = call(s, "POST", "/api/v2/users/me/keys/tokens", member,
           json_pack("{s:s, s:I}", "token_name", "forever", "lifetime",
                     (json_int_t)MAX_TOKEN_LIFETIME_S + 1));
  static const char *const lifetime_field[] = {"lifetime"};
  assert_validation_failed(&r, lifetime_field, 1);
  /* a lifetime that would overflow milliseconds is refused, not wrapped */
  atr_tc_res_t huge =
      call(s, "POST", "/api/v2/users/me/keys/tokens", s->owner_token,
           json_pack("{s:s, s:I}", "token_name", "overflow", "lifetime",
                     (json_int_t)INT64_MAX));
  assert_validation_failed(&huge, lifetime_field, 1);
  atr_tc_res_free(&huge);
  atr_tc_res_free(&r);
  r = call(s, "POST", "/api/v2/users/me/keys/tokens", member,
           json_pack("{s:s, s:i}", "token_name", "hourly", "lifetime", 3600));
  ASSERT_ANSWER(r, 201);
  remember(field(&r, "key"));
  atr_tc_res_free(&r);
  r = get(s, "/api/v2/users/me/keys/tokens", member);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 2);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(r.json, 1),
                                                      "lifetime_seconds")),
                   3600);
  atr_tc_res_free(&r);
}

static void a_token_authenticates_until_it_is_deleted(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char member_id[37];
  create_user(s, "member", MEMBER_EMAIL, MEMBER_PW, member_id);
  const char *member = login(s, MEMBER_EMAIL, MEMBER_PW);
  const char *key = create_token(s, "me", member, "ci-runner");
  assert_int_equal(strlen(key), 33);
  char key_id[11];
  snprintf(key_id, sizeof key_id, "%.10s", key);

  atr_tc_res_t r = get(s, "/api/v2/users/me", key);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "id"), member_id);
  atr_tc_res_free(&r);
  ASSERT_STATUS(
      200, atr_tc_call(s->h.port, &(atr_tc_req_t){.path = "/api/v2/users/me",
                                                  .bearer = key}));
  token_is_listed(s, member, member_id, key);
  token_rules(s, member);

  /* tokens are their owner's: another member's are out of reach */
  ASSERT_STATUS(403, get(s, "/api/v2/users/owner/keys/tokens", member));
  ASSERT_STATUS(403, call(s, "POST", "/api/v2/users/owner/keys/tokens", member,
                          json_pack("{s:s}", "token_name", "x")));

  char path[128];
  snprintf(path, sizeof path, "/api/v2/users/me/keys/%s", key_id);
  ASSERT_STATUS(204, call(s, "DELETE", path, member, NULL));
  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", key));
  ASSERT_ERROR(404, "Token not found.", call(s, "DELETE", path, member, NULL));
  /* deleting by name works too */
  ASSERT_STATUS(
      204, call(s, "DELETE", "/api/v2/users/me/keys/hourly", member, NULL));
  r = get(s, "/api/v2/users/me/keys/tokens", member);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 0);
  atr_tc_res_free(&r);
  /* the session that made them was never a token */
  assert_int_equal(me_status(s, member), 200);
}

/* ---- ending sessions and users ------------------------------------------------ */

static void logout_ends_the_session(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  const char *other = login(s, OWNER_EMAIL, OWNER_PW);
  atr_tc_res_t r = call(s, "POST", "/api/v2/users/logout", other, NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "message"), "Successfully logged out.");
  char cleared[64];
  assert_non_null(atr_tc_cookie(&r, "atrium_session", cleared, sizeof cleared));
  assert_string_equal(cleared, "");
  atr_tc_res_free(&r);
  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", other));
  ASSERT_STATUS(401, call(s, "POST", "/api/v2/users/logout", other, NULL));
  /* only that session */
  assert_int_equal(me_status(s, s->owner_token), 200);
}

static void deleting_a_user_ends_their_keys(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char member_id[37], path[128];
  create_user(s, "member", MEMBER_EMAIL, MEMBER_PW, member_id);
  const char *member = login(s, MEMBER_EMAIL, MEMBER_PW);
  const char *token = create_token(s, "me", member, "deploy");
  assert_int_equal(me_status(s, token), 200);

  snprintf(path, sizeof path, "/api/v2/users/%s", member_id);
  ASSERT_STATUS(204, call(s, "DELETE", path, s->owner_token, NULL));
  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", token));
  ASSERT_ERROR(401, NOT_SIGNED_IN, get(s, "/api/v2/users/me", member));
  assert_int_equal(login_status(s, MEMBER_EMAIL, MEMBER_PW), 401);
  ASSERT_ERROR(404, "User not found.", get(s, path, s->owner_token));
  ASSERT_ERROR(404, "User not found.",
               call(s, "DELETE", path, s->owner_token, NULL));
  atr_tc_res_t r = get(s, "/api/v2/users", s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "count")), 1);
  atr_tc_res_free(&r);

  ASSERT_ERROR(400, "You cannot do this to yourself.",
               call(s, "DELETE", "/api/v2/users/me", s->owner_token, NULL));
  snprintf(path, sizeof path, "/api/v2/users/%s/status/suspend", s->owner_id);
  ASSERT_ERROR(400, "You cannot do this to yourself.",
               call(s, "PUT", path, s->owner_token, NULL));
  assert_int_equal(me_status(s, s->owner_token), 200);
}

/* ---- rate limits ------------------------------------------------------------ */

static void sign_in_attempts_are_rate_limited(void **state) {
  srv_t *s = *state;
  for (int i = 0; i < 3; i++)
    assert_int_equal(login_status(s, "nobody@example.com", "wrong-password"),
                     401);
  atr_tc_res_t r = call(s, "POST", "/api/v2/users/login", NULL,
                        json_pack("{s:s, s:s}", "email", "nobody@example.com",
                                  "password", "wrong-password"));
  ASSERT_ANSWER(r, 429);
  assert_string_equal(field(&r, "message"), "Too many requests.");
  atr_tc_res_free(&r);
}

static void api_calls_are_rate_limited_per_user(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  /* the first user's own calls above used none of this budget: it counts
   * signed-in requests only */
  for (int i = 0; i < 5; i++)
    assert_int_equal(me_status(s, s->owner_token), 200);
  atr_tc_res_t r = get(s, "/api/v2/users/me", s->owner_token);
  ASSERT_ANSWER(r, 429);
  assert_string_equal(field(&r, "message"), "Too many requests.");
  atr_tc_res_free(&r);
  /* anonymous public routes are not counted per user */
  r = get(s, "/api/v2/users/authmethods", NULL);
  ASSERT_ANSWER(r, 200);
  atr_tc_res_free(&r);
}

int main(int argc, char **argv) {
  if (atr_harness_backend(argc, argv, "sqlite | postgres PGDIR") < 0)
    return 2;
  const char *backend = atr_harness_on_postgres() ? "postgres" : "sqlite";
  char name[64];
  curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
  const struct CMUnitTest tests[] = {
      T(the_first_user_is_created_once_and_becomes_owner),
      cmocka_unit_test_setup_teardown(sign_in_attempts_are_rate_limited,
                                      server_up_limited, srv_stop),
      cmocka_unit_test_setup_teardown(api_calls_are_rate_limited_per_user,
                                      server_up_api_limited, srv_stop),
      T(wrong_password_and_unknown_email_get_the_same_401),
      T(a_session_token_works_as_header_and_as_bearer),
      T(a_cookie_session_needs_the_csrf_header_to_write),
      T(members_see_only_themselves),
      T(a_role_change_applies_to_the_next_request),
      T(suspension_refuses_the_next_request),
      T(a_password_change_ends_the_other_sessions),
      T(a_token_authenticates_until_it_is_deleted),
      T(logout_ends_the_session),
      T(deleting_a_user_ends_their_keys),
  };
#undef T
  snprintf(name, sizeof name, "api_users_%s", backend);
  int failed = cmocka_run_group_tests_name(name, tests, NULL, NULL);
  snprintf(name, sizeof name, "api_files_%s", backend);
  failed += _cmocka_run_group_tests(name, files_tests, files_count, NULL, NULL);
  snprintf(name, sizeof name, "api_users_audit_%s", backend);
  failed += _cmocka_run_group_tests(name, users_audit_tests, users_audit_count,
                                    NULL, NULL);
  curl_global_cleanup();
  return failed;
}
