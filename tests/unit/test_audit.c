/* The audit log: what a handler records is one row with the request's
 * context and no secrets, and GET /api/v2/audit finds it again: the
 * request's query parsed by the API, the entries read by the domain
 * (atr_audit_list), which lets only roles that may read the log do so.
 *
 *   test_audit                   a fresh SQLite file in a temp dir
 *   test_audit postgres PGDIR    the throwaway cluster whose DSN is in
 *                                PGDIR/dsn (scripts/dev/postgres.sh)
 *
 * Real storage plugin, loaded by the real loader, migrated schema. The
 * fake requests have no HTTP exchange (x is NULL): recording must not
 * need one, and the handler's answers then only set r->status.
 *
 * One program: this file holds main, the test list and the recording
 * tests; test_audit_reading.c the reading tests, audit_fixture.c the
 * store and the helpers both use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "api_audit.h"
#include "atrium/error.h"
#include "audit.h"
#include "audit_fixture.h"
#include "audit_query.h"
#include "conf.h"
#include "db.h"
#include "loader.h"
#include "log.h"
#include "migrate.h"

/* ---- recording -------------------------------------------------------------- */

void a_record_is_one_row_with_the_requests_context(void **state) {
  (void)state;
  atr_api_req_t r = signed_in_as(alice_id, "alice");
  char upper[37];
  snprintf(upper, sizeof upper, "%s", bob_id);
  for (char *c = upper; *c; c++)
    if (*c >= 'a' && *c <= 'f')
      *c = (char)(*c - 'a' + 'A');
  json_t *diff = NULL;
  atr_audit_diff_add(&diff, "status", "active", "suspended", false);
  atr_audit_diff_add(&diff, "name", NULL, "Bob", false);
  record(&r, &(atr_audit_entry_t){.action = "write",
                                  .resource_type = "user",
                                  .resource_id = upper,
                                  .resource_target = "bob",
                                  .organization_id = ORG_ID,
                                  .diff = diff,
                                  .status_code = 200});
  json_decref(diff);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs"), 1);
  char want[1024];
  snprintf(want, sizeof want,
           "{\"user_id\": \"%s\", \"organization_id\": \"%s\", "
           "\"ip\": \"192.0.2.7\", \"user_agent\": \"atrium-test/1.0\", "
           "\"resource_type\": \"user\", \"resource_id\": \"%s\", "
           "\"resource_target\": \"bob\", \"action\": \"write\", "
           "\"diff\": \"{\\\"name\\\":{\\\"new\\\":\\\"Bob\\\",\\\"old\\\":"
           "null,\\\"secret\\\":false},\\\"status\\\":{\\\"new\\\":"
           "\\\"suspended\\\",\\\"old\\\":\\\"active\\\",\\\"secret\\\":"
           "false}}\", \"additional_fields\": \"{}\", "
           "\"request_id\": \"%s\", \"status_code\": 200}",
           alice_id, ORG_ID, bob_id, REQUEST_ID);
  assert_row("bob", want);
}

void a_login_is_recorded_for_the_user_it_names(void **state) {
  (void)state;
  atr_api_req_t r = request(NULL); /* not signed in yet */
  record(&r, &(atr_audit_entry_t){.action = "login",
                                  .resource_type = "user",
                                  .resource_id = alice_id,
                                  .resource_target = "alice",
                                  .user_id = alice_id,
                                  .status_code = 201});
  record(&r, &(atr_audit_entry_t){.action = "login",
                                  .resource_type = "user",
                                  .resource_target = "nobody",
                                  .status_code = 401});
  char want[1024];
  snprintf(want, sizeof want,
           "{\"user_id\": \"%s\", \"organization_id\": null, "
           "\"ip\": \"192.0.2.7\", \"user_agent\": \"atrium-test/1.0\", "
           "\"resource_type\": \"user\", \"resource_id\": \"%s\", "
           "\"resource_target\": \"alice\", \"action\": \"login\", "
           "\"diff\": \"{}\", \"additional_fields\": \"{}\", "
           "\"request_id\": \"%s\", \"status_code\": 201}",
           alice_id, alice_id, REQUEST_ID);
  assert_row("alice", want);
  snprintf(want, sizeof want,
           "{\"user_id\": null, \"organization_id\": null, "
           "\"ip\": \"192.0.2.7\", \"user_agent\": \"atrium-test/1.0\", "
           "\"resource_type\": \"user\", \"resource_id\": \"" NIL_UUID "\", "
           "\"resource_target\": \"nobody\", \"action\": \"login\", "
           "\"diff\": \"{}\", \"additional_fields\": \"{}\", "
           "\"request_id\": \"%s\", \"status_code\": 401}",
           REQUEST_ID);
  assert_row("nobody", want);
}

void ids_that_are_not_uuids_go_to_additional_fields(void **state) {
  (void)state;
  atr_api_req_t r = signed_in_as(alice_id, "alice");
  r.request_id = "not-a-request-uuid";
  r.remote_ip = "";
  r.user_agent = NULL;
  snprintf(r.org_id, sizeof r.org_id, "%s", ORG_ID); /* from the route */
  record(&r, &(atr_audit_entry_t){.action = "create",
                                  .resource_type = "api_key",
                                  .resource_id = "Ab3dE5gH9k",
                                  .resource_target = "ci-token",
                                  .status_code = 201});
  char want[1024];
  snprintf(want, sizeof want,
           "{\"user_id\": \"%s\", \"organization_id\": \"%s\", "
           "\"ip\": null, \"user_agent\": null, "
           "\"resource_type\": \"api_key\", \"resource_id\": \"" NIL_UUID
           "\", \"resource_target\": \"ci-token\", \"action\": \"create\", "
           "\"diff\": \"{}\", \"additional_fields\": "
           "\"{\\\"request_id\\\":\\\"not-a-request-uuid\\\","
           "\\\"resource_id\\\":\\\"Ab3dE5gH9k\\\"}\", "
           "\"request_id\": \"" NIL_UUID "\", \"status_code\": 201}",
           alice_id, ORG_ID);
  assert_row("ci-token", want);
}

void a_request_without_context_still_records(void **state) {
  (void)state;
  atr_api_req_t r = {.env = &env}; /* no ids, no ip, not signed in */
  record(&r, &(atr_audit_entry_t){.action = "delete",
                                  .resource_type = "organization",
                                  .resource_target = "old-org",
                                  .status_code = 204});
  assert_row("old-org",
             "{\"user_id\": null, \"organization_id\": null, \"ip\": null, "
             "\"user_agent\": null, \"resource_type\": \"organization\", "
             "\"resource_id\": \"" NIL_UUID "\", \"resource_target\": "
             "\"old-org\", \"action\": \"delete\", \"diff\": \"{}\", "
             "\"additional_fields\": \"{}\", \"request_id\": \"" NIL_UUID
             "\", \"status_code\": 204}");
}

static void record_secret_changes(void) {
  atr_api_req_t r = signed_in_as(alice_id, "alice");
  json_t *diff = NULL;
  atr_audit_diff_add(&diff, "password", CANARY "-old", CANARY "-new", true);
  /* named like secrets but not marked: refused all the same */
  atr_audit_diff_add(&diff, "hashed_password", NULL, CANARY, false);
  atr_audit_diff_add(&diff, "token", NULL, CANARY, false);
  atr_audit_diff_add(&diff, "Session_Token", CANARY, NULL, false);
  atr_audit_diff_add(&diff, "oidc_client_secret", NULL, CANARY, false);
  atr_audit_diff_add(&diff, "email", "b@example.com", "bob@example.com", false);
  /* built by hand, past atr_audit_diff_add */
  json_object_set_new(diff, "secret", json_string(CANARY));
  json_object_set_new(
      diff, "key",
      json_pack("{s:n, s:s, s:b}", "old", "new", CANARY, "secret", 0));
  json_object_set_new(
      diff, "note",
      json_pack("{s:n, s:s, s:b}", "old", "new", CANARY, "secret", 1));
  json_object_set_new(diff, "settings",
                      json_pack("{s:n, s:{s:s, s:[{s:s}]}, s:b}", "old", "new",
                                "theme", "dark", "providers", "client_secret",
                                CANARY, "secret", 0));
  record(&r, &(atr_audit_entry_t){.action = "write",
                                  .resource_type = "user",
                                  .resource_id = bob_id,
                                  .resource_target = "bob",
                                  .diff = diff,
                                  .status_code = 200});
  json_decref(diff);
}

void secrets_never_reach_the_table(void **state) {
  (void)state;
  char *log = logged_during(record_secret_changes);
  char *all = table_text();
  assert_non_null(strstr(all, "bob@example.com")); /* the row is there */
  assert_null(strstr(all, CANARY));
  assert_null(strstr(log, CANARY));
  free(all);
  free(log);
  json_t *row = stored_row("bob");
  json_t *diff =
      json_loads(json_string_value(json_object_get(row, "diff")), 0, NULL);
  const char *hidden = "{\"old\": null, \"new\": null, \"secret\": true}";
  char want[2048];
  snprintf(want, sizeof want,
           "{\"password\": %s, \"hashed_password\": %s, \"token\": %s, "
           "\"Session_Token\": %s, \"oidc_client_secret\": %s, "
           "\"secret\": %s, \"key\": %s, \"note\": %s, "
           "\"email\": {\"old\": \"b@example.com\", \"new\": "
           "\"bob@example.com\", \"secret\": false}, "
           "\"settings\": {\"old\": null, \"new\": {\"theme\": \"dark\", "
           "\"providers\": [{\"client_secret\": null}]}, \"secret\": false}}",
           hidden, hidden, hidden, hidden, hidden, hidden, hidden, hidden);
  assert_json_equal(diff, want);
  json_decref(diff);
  json_decref(row);
  if (!pg_dir) { /* nor the database's files */
    char cmd[256];
    snprintf(cmd, sizeof cmd, "grep -rqa %s %s", CANARY, tmpdir);
    assert_int_not_equal(system(cmd), 0);
  }
}

void diff_add_builds_the_documented_shape(void **state) {
  (void)state;
  json_t *diff = NULL;
  atr_audit_diff_add(&diff, "username", "bob", "robert", false);
  atr_audit_diff_add(&diff, "password", "x", "y", true);
  atr_audit_diff_add(&diff, "", "a", "b", false); /* ignored */
  atr_audit_diff_add(NULL, "name", "a", "b", false);
  assert_json_equal(diff, "{\"username\": {\"old\": \"bob\", \"new\": "
                          "\"robert\", \"secret\": false}, \"password\": "
                          "{\"old\": null, \"new\": null, \"secret\": true}}");
  json_decref(diff);
}

static void rename_table_and_record(void) {
  exec_ok("ALTER TABLE audit_logs RENAME TO audit_logs_away", NULL, 0);
  atr_api_req_t r = signed_in_as(alice_id, "alice");
  record(&r, &(atr_audit_entry_t){.action = "delete",
                                  .resource_type = "user",
                                  .resource_id = bob_id,
                                  .resource_target = "bob",
                                  .status_code = 204});
  exec_ok("ALTER TABLE audit_logs_away RENAME TO audit_logs", NULL, 0);
  record(&r, &(atr_audit_entry_t){.resource_type = "user",
                                  .resource_target = "no-action",
                                  .status_code = 200});
}

void a_storage_error_is_logged_and_the_request_goes_on(void **state) {
  (void)state;
  char *log = logged_during(rename_table_and_record);
  assert_non_null(strstr(log, "[audit] entry not recorded (action delete, "
                              "resource_type user, request " REQUEST_ID "): "));
  assert_non_null(strstr(log, "[audit] entry not recorded (action (none), "
                              "resource_type user, request " REQUEST_ID
                              "): an entry needs an action and a "
                              "resource_type"));
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs"), 0);
  free(log);
}

int main(int argc, char **argv) {
  if (fixture_args(argc, argv) != 0)
    return 2;
  atr_log_set_level(ATR_LOG_WARN);
#define T(fn) cmocka_unit_test_setup(fn, empty_log)
  const struct CMUnitTest tests[] = {
      T(a_record_is_one_row_with_the_requests_context),
      T(a_login_is_recorded_for_the_user_it_names),
      T(ids_that_are_not_uuids_go_to_additional_fields),
      T(a_request_without_context_still_records),
      T(secrets_never_reach_the_table),
      T(diff_add_builds_the_documented_shape),
      T(a_storage_error_is_logged_and_the_request_goes_on),
      T(filters_find_exactly_the_matching_entries),
      T(limit_and_offset_page_while_count_counts_all),
      T(entries_read_back_in_the_api_shape),
      T(a_bad_filter_is_refused_naming_the_parameter),
      T(times_parse_as_rfc_3339),
      T(the_handler_answers_200_or_400),
      T(reading_the_log_needs_a_role_that_may),
  };
#undef T
  return cmocka_run_group_tests_name(pg_dir ? "audit_postgres" : "audit", tests,
                                     setup, teardown);
}
