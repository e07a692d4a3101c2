/* tests/api/test_api_users_audit.c — the audit log and the server's log
 * as the users tests leave them: one entry per action, and no password or
 * key anywhere. A group of the test_api_users program (see users.h). */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"

/* ---- the audit log ------------------------------------------------------------ */

/* The whole audit log as the owner reads it, once it holds at least
 * `want` entries (or after 5 s). Handlers record an entry after they have
 * answered, so it can land a moment after the client saw the answer.
 * Skips the test while GET /api/v2/audit answers 501 (not written yet). */
static atr_tc_res_t read_audit(const srv_t *s, json_int_t want) {
  for (int tries = 0;; tries++) {
    atr_tc_res_t r = get(s, "/api/v2/audit?limit=1000", s->owner_token);
    if (r.status == 501) {
      atr_tc_res_free(&r);
      skip();
    }
    ASSERT_ANSWER(r, 200);
    if (json_integer_value(json_object_get(r.json, "count")) >= want ||
        tries == 250)
      return r;
    atr_tc_res_free(&r);
    atr_harness_sleep_ms(20);
  }
}

/* Entries with this action, resource type and (when not NULL) target;
 * *last gets one of them. */
static size_t count_entries(const atr_tc_res_t *audit, const char *action,
                            const char *type, const char *target,
                            json_t **last) {
  size_t n = 0, i;
  json_t *e;
  json_array_foreach(json_object_get(audit->json, "audit_logs"), i, e) {
    const char *a = json_string_value(json_object_get(e, "action"));
    const char *t = json_string_value(json_object_get(e, "resource_type"));
    const char *tg = json_string_value(json_object_get(e, "resource_target"));
    if (a && t && strcmp(a, action) == 0 && strcmp(t, type) == 0 &&
        (!target || (tg && strcmp(tg, target) == 0))) {
      n++;
      if (last)
        *last = e;
    }
  }
  return n;
}

/* The one user "write" entry whose diff changes `changed`. */
static json_t *write_with(const atr_tc_res_t *audit, const char *changed) {
  json_t *found = NULL, *e;
  size_t n = 0, i;
  json_array_foreach(json_object_get(audit->json, "audit_logs"), i, e) {
    const char *a = json_string_value(json_object_get(e, "action"));
    if (a && strcmp(a, "write") == 0 &&
        json_object_get(json_object_get(e, "diff"), changed)) {
      found = e;
      n++;
    }
  }
  if (n != 1)
    print_error("%zu write entries change %s in %s\n", n, changed, audit->body);
  assert_int_equal(n, 1);
  return found;
}

static void assert_entry(json_t *e, const char *resource_id, int status,
                         const char *actor) {
  assert_non_null(e);
  if (resource_id)
    assert_string_equal(json_string_value(json_object_get(e, "resource_id")),
                        resource_id);
  assert_int_equal(json_integer_value(json_object_get(e, "status_code")),
                   status);
  const char *who = json_string_value(
      json_object_get(json_object_get(e, "user"), "username"));
  assert_string_equal(who ? who : "(none)", actor);
}

static void each_action_leaves_one_audit_entry(void **state) {
  srv_t *s = *state;
  owner_signs_in(s); /* the one successful sign-in */
  char member_id[37];
  remember(NEW_PW);
  assert_int_equal(login_status(s, OWNER_EMAIL, NEW_PW), 401);
  create_user(s, "member", MEMBER_EMAIL, MEMBER_PW, member_id);
  ASSERT_STATUS(200, call(s, "PUT", "/api/v2/users/member/roles",
                          s->owner_token, role_list("auditor")));
  remember(CANARY_PW);
  ASSERT_STATUS(204,
                call(s, "PUT", "/api/v2/users/member/password", s->owner_token,
                     json_pack("{s:s}", "password", CANARY_PW)));
  ASSERT_STATUS(200, call(s, "PUT", "/api/v2/users/member/status/suspend",
                          s->owner_token, NULL));
  const char *key = create_token(s, "me", s->owner_token, "audit-me");
  char key_id[11];
  snprintf(key_id, sizeof key_id, "%.10s", key);
  ASSERT_STATUS(204, call(s, "DELETE", "/api/v2/users/me/keys/audit-me",
                          s->owner_token, NULL));

  /* eight actions, each recorded once */
  atr_tc_res_t audit = read_audit(s, 8);
  json_t *e = NULL;
  assert_int_equal(count_entries(&audit, "login", "user", NULL, &e), 1);
  assert_string_equal(json_string_value(json_object_get(e, "resource_target")),
                      OWNER_EMAIL);
  assert_entry(e, s->owner_id, 201, "owner");
  assert_int_equal(count_entries(&audit, "login_failed", "user", NULL, &e), 1);
  assert_string_equal(json_string_value(json_object_get(e, "resource_target")),
                      OWNER_EMAIL);
  assert_int_equal(json_integer_value(json_object_get(e, "status_code")), 401);
  assert_int_equal(count_entries(&audit, "create", "user", "member", &e), 1);
  assert_entry(e, member_id, 201, "owner");

  e = write_with(&audit, "status");
  assert_entry(e, member_id, 200, "owner");
  json_t *d = json_object_get(json_object_get(e, "diff"), "status");
  assert_string_equal(json_string_value(json_object_get(d, "old")), "active");
  assert_string_equal(json_string_value(json_object_get(d, "new")),
                      "suspended");
  e = write_with(&audit, "roles");
  assert_entry(e, member_id, 200, "owner");
  d = json_object_get(json_object_get(e, "diff"), "roles");
  assert_string_equal(json_string_value(json_object_get(d, "new")),
                      "[\"auditor\"]");
  /* the password only as changed: no old or new value */
  e = write_with(&audit, "password");
  assert_entry(e, member_id, 204, "owner");
  d = json_object_get(json_object_get(e, "diff"), "password");
  assert_true(json_is_true(json_object_get(d, "secret")));
  assert_true(json_is_null(json_object_get(d, "old")));
  assert_true(json_is_null(json_object_get(d, "new")));

  assert_int_equal(count_entries(&audit, "create", "api_key", "audit-me", &e),
                   1);
  assert_entry(e, NULL, 201, "owner");
  assert_int_equal(count_entries(&audit, "delete", "api_key", "audit-me", &e),
                   1);
  assert_entry(e, NULL, 204, "owner");
  assert_int_equal(find_secret(audit.body), -1);
  atr_tc_res_free(&audit);
}

/* ---- secrets ------------------------------------------------------------------- */

static void passwords_and_keys_stay_out_of_the_logs(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char member_id[37];
  /* the canary travels every way a password can: creation, sign-in,
   * a failed sign-in, a change away from it and back, validation errors */
  create_user(s, "member", MEMBER_EMAIL, CANARY_PW, member_id);
  const char *member = login(s, MEMBER_EMAIL, CANARY_PW);
  assert_int_equal(login_status(s, OWNER_EMAIL, CANARY_PW), 401);
  assert_int_equal(login_status(s, "canary@example.com", CANARY_PW), 401);
  remember(NEW_PW);
  ASSERT_STATUS(400, call(s, "PUT", "/api/v2/users/me/password", member,
                          json_pack("{s:s, s:s}", "old_password", "Wrong-1234",
                                    "password", CANARY_PW)));
  ASSERT_STATUS(204, call(s, "PUT", "/api/v2/users/me/password", member,
                          json_pack("{s:s, s:s}", "old_password", CANARY_PW,
                                    "password", NEW_PW)));
  ASSERT_STATUS(204, call(s, "PUT", "/api/v2/users/me/password", member,
                          json_pack("{s:s, s:s}", "old_password", NEW_PW,
                                    "password", CANARY_PW)));
  const char *key = create_token(s, "me", member, "canary");
  remember(key_secret(key));
  ASSERT_STATUS(200, get(s, "/api/v2/users/me", key));
  /* a wrong key is a credential too: it is refused, not logged */
  const char *wrong = remember("AAAAAAAAAA-Zebra7f3a9c1eCanaryXXX");
  ASSERT_STATUS(401, get(s, "/api/v2/users/me", wrong));

  /* the log: checked here and again, after shutdown, by srv_stop */
  char *log = atr_harness_read_log(&s->h);
  int found = find_secret(log);
  free(log);
  assert_int_equal(found, -1);
  /* at least: 2 sign-ins, 2 failed ones, the user, 2 password changes
   * and the token */
  atr_tc_res_t audit = read_audit(s, 8);
  assert_int_equal(find_secret(audit.body), -1);
  atr_tc_res_free(&audit);
}

#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
const struct CMUnitTest users_audit_tests[] = {
    T(each_action_leaves_one_audit_entry),
    T(passwords_and_keys_stay_out_of_the_logs),
};
#undef T
const size_t users_audit_count =
    sizeof users_audit_tests / sizeof users_audit_tests[0];
