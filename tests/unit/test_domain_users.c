/* The people domain (users.h, keys.h, orgs.h) called without HTTP: each
 * function checks the actor's permission itself, so a caller that is not
 * the API cannot skip the check. A refusal is ATR_EPERM, explained in the
 * fault, and changes nothing, not even the audit log; the system actor
 * may do what an owner may, and its entries name it.
 *
 *   test_domain_users                   a fresh SQLite file
 *   test_domain_users postgres PGDIR    the throwaway cluster whose DSN is
 *                                       in PGDIR/dsn
 *
 * Real storage and password plugins, loaded by the real loader, migrated
 * schema (domain_fixture.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "db.h"
#include "domain.h"
#include "domain_fixture.h"
#include "keys.h"
#include "log.h"
#include "orgs.h"
#include "users.h"

static atr_actor_t owner, member, system_actor;

/* ---- set-up ------------------------------------------------------------- */

static void must_ok(int rc, atr_fault_t *f) {
  if (rc != 0)
    fail_msg("%s: %s (%s)", f->message ? f->message : "no message",
             f->detail ? f->detail : "no detail", atr_err_name(rc));
  atr_fault_clear(f);
}

/* An actor for the user username, with its id read back. */
static atr_actor_t actor_for(const char *username, uint32_t roles) {
  atr_fault_t f = {0};
  json_t *user = NULL;
  atr_actor_t sys = atr_actor_system("test");
  must_ok(atr_user_get(&dom, &sys, username, &user, &f), &f);
  atr_actor_t a =
      actor(json_string_value(json_object_get(user, "id")), username, roles);
  json_decref(user);
  return a;
}

static int setup(void **state) {
  (void)state;
  if (fixture_open("domain-users",
                   "  auth_password:\n    enabled: true\n"
                   "    memory_cost: 8MiB\n    time_cost: 1\n") != 0)
    return -1;
  dom.session_lifetime_ms = 3600 * 1000;
  dom.token_max_lifetime_ms = 86400 * 1000;
  system_actor = atr_actor_system("test");
  atr_user_new_t first = {.email = "owner@example.com",
                          .username = "owner",
                          .password = "a-long-Passphrase-9"};
  char user_id[37], org_id[37];
  atr_fault_t f = {0};
  if (atr_user_first_create(&dom, &system_actor, &first, user_id, org_id, &f) !=
      0)
    return -1;
  owner = actor_for("owner", ATR_ROLE_OWNER);
  atr_user_new_t mem = {.email = "member@example.com",
                        .username = "member",
                        .password = "another-Passphrase-8"};
  json_t *user = NULL;
  if (atr_user_create(&dom, &owner, &mem, &user, &f) != 0)
    return -1;
  json_decref(user);
  member = actor_for("member", 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return fixture_close();
}

/* A refusal for lack of a role, in the route's words. */
static void assert_forbidden(int rc, atr_fault_t *f, const char *detail) {
  assert_int_equal(rc, ATR_EPERM);
  assert_string_equal(f->message, "Forbidden.");
  assert_string_equal(f->detail, detail);
  atr_fault_clear(f);
}

/* ---- users ------------------------------------------------------------------ */

static void
a_member_creating_a_user_is_refused_and_nothing_is_written(void **state) {
  (void)state;
  int64_t users = count_rows("SELECT COUNT(*) FROM users");
  atr_user_new_t in = {.email = "eve@example.com",
                       .username = "eve",
                       .password = "eves-Passphrase-77"};
  atr_fault_t f = {0};
  json_t *user = NULL;
  assert_forbidden(atr_user_create(&dom, &member, &in, &user, &f), &f,
                   "Your roles do not allow create on user.");
  assert_null(user);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM users"), users);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs"), 0);
}

static void the_system_may_create_a_user_and_is_named_in_the_log(void **state) {
  (void)state;
  atr_user_new_t in = {.email = "svc@example.com",
                       .username = "svc",
                       .password = "service-Passphrase-5"};
  atr_fault_t f = {0};
  json_t *user = NULL;
  must_ok(atr_user_create(&dom, &system_actor, &in, &user, &f), &f);
  assert_string_equal(json_string_value(json_object_get(user, "username")),
                      "svc");
  assert_string_equal(json_string_value(json_object_get(user, "status")),
                      "active");
  json_decref(user);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE action "
                              "= 'create' AND resource_type = 'user' AND "
                              "resource_target = 'svc' AND status_code = 201 "
                              "AND user_id IS NULL AND additional_fields = "
                              "'{\"actor\":\"system:test\"}'"),
                   1);
}

static void a_member_may_read_themselves_but_not_suspend_others(void **state) {
  (void)state;
  atr_fault_t f = {0};
  json_t *user = NULL;
  must_ok(atr_user_get(&dom, &member, "me", &user, &f), &f);
  assert_string_equal(json_string_value(json_object_get(user, "id")),
                      member.user_id);
  json_decref(user);
  assert_forbidden(atr_user_get(&dom, &member, "owner", &user, &f), &f,
                   "Your roles do not allow read on user.");
  assert_forbidden(atr_user_suspend(&dom, &member, "owner", &user, &f), &f,
                   "Your roles do not allow update on user.");
  assert_null(user);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM users WHERE status <> "
                              "'active'"),
                   0);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs"), 0);
}

static void the_rules_hold_for_the_system_too(void **state) {
  (void)state;
  atr_fault_t f = {0};
  json_t *user = NULL;
  /* the last owner stays one, whoever asks */
  assert_int_equal(
      atr_user_roles_set(&dom, &system_actor, "owner", 0, &user, &f),
      ATR_EINVAL);
  assert_string_equal(f.message, "The last owner cannot lose the owner role.");
  atr_fault_clear(&f);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE "
                              "status_code = 400"),
                   1);
  /* a user-admin may suspend a member, then activate them again */
  atr_actor_t admin = {.username = "admin",
                       .roles = ATR_ROLE_MEMBER | ATR_ROLE_USER_ADMIN};
  atr_db_new_uuid(admin.user_id);
  must_ok(atr_user_suspend(&dom, &admin, "member", &user, &f), &f);
  assert_string_equal(json_string_value(json_object_get(user, "status")),
                      "suspended");
  json_decref(user);
  must_ok(atr_user_activate(&dom, &system_actor, "member", &user, &f), &f);
  json_decref(user);
  /* ...but not an owner */
  assert_int_equal(atr_user_suspend(&dom, &admin, "owner", &user, &f),
                   ATR_EPERM);
  assert_string_equal(f.message, "Only an owner may do this to an owner.");
  atr_fault_clear(&f);
}

/* ---- tokens ------------------------------------------------------------------ */

static void tokens_belong_to_their_user(void **state) {
  (void)state;
  atr_fault_t f = {0};
  char *key = NULL;
  must_ok(atr_token_create(&dom, &member, "me", "ci", 3600, &key, &f), &f);
  assert_non_null(key);
  free(key);
  json_t *list = NULL;
  must_ok(atr_token_list(&dom, &member, "member", &list, &f), &f);
  assert_int_equal(json_array_size(list), 1);
  json_decref(list);
  assert_forbidden(atr_token_list(&dom, &member, "owner", &list, &f), &f,
                   "Your roles do not allow read on api_key.");
  assert_forbidden(atr_token_delete(&dom, &member, "owner", "ci", &f), &f,
                   "Your roles do not allow delete on api_key.");
  /* not even the system mints a token that signs in as someone else */
  assert_int_equal(atr_token_create(&dom, &system_actor, "member", "other",
                                    ATR_TOKEN_LIFETIME_DEFAULT, &key, &f),
                   ATR_EPERM);
  assert_string_equal(f.message, "Tokens can only be created by their user.");
  atr_fault_clear(&f);
  assert_null(key);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM api_keys WHERE "
                              "token_name <> ''"),
                   1);
  must_ok(atr_token_delete(&dom, &member, "me", "ci", &f), &f);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE "
                              "resource_type = 'api_key'"),
                   2);
}

/* ---- organizations ------------------------------------------------------------ */

static void a_member_creating_an_organization_is_refused(void **state) {
  (void)state;
  int64_t orgs = count_rows("SELECT COUNT(*) FROM organizations");
  atr_org_new_t in = {.name = "skunkworks"};
  atr_fault_t f = {0};
  json_t *org = NULL;
  assert_forbidden(atr_org_create(&dom, &member, &in, &org, &f), &f,
                   "Your roles do not allow create on organization.");
  assert_int_equal(count_rows("SELECT COUNT(*) FROM organizations"), orgs);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs"), 0);
  /* the system may, and joins no organization doing it */
  must_ok(atr_org_create(&dom, &system_actor, &in, &org, &f), &f);
  json_decref(org);
  json_t *members = NULL;
  must_ok(atr_org_members_list(&dom, &system_actor, "skunkworks", 10, 0,
                               &members, &f),
          &f);
  assert_int_equal(json_array_size(members), 0);
  json_decref(members);
  /* a member of the default organization may not add members to it */
  assert_forbidden(
      atr_org_member_add(&dom, &member, "default", "svc", &members, &f), &f,
      "Your roles do not allow create on organization_member.");
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE action "
                              "= 'create'"),
                   1);
}

int main(int argc, char **argv) {
  if (fixture_args(argc, argv) != 0)
    return 2;
  atr_log_set_level(ATR_LOG_WARN);
#define T(fn) cmocka_unit_test_setup(fn, empty_log)
  const struct CMUnitTest tests[] = {
      T(a_member_creating_a_user_is_refused_and_nothing_is_written),
      T(the_system_may_create_a_user_and_is_named_in_the_log),
      T(a_member_may_read_themselves_but_not_suspend_others),
      T(the_rules_hold_for_the_system_too),
      T(tokens_belong_to_their_user),
      T(a_member_creating_an_organization_is_refused),
  };
#undef T
  return cmocka_run_group_tests_name(pg_dir ? "domain_users_postgres"
                                            : "domain_users",
                                     tests, setup, teardown);
}
