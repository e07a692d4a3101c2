/* tests/unit/test_audit_reading.c — reading the audit log back: filters
 * that find exactly the matching entries, paging, the API shape, bad
 * filters refused naming the parameter, and who may read it. Run by
 * test_audit.c's main. */
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

/* ---- reading: filters --------------------------------------------------------- */

typedef struct seed {
  const char *action, *resource_type, *resource_id, *target, *actor;
  int status;
  int64_t time_us;
} seed_t;

/* Six entries an hour or a day apart, oldest first. */
static void seed_log(void) {
  const seed_t seeds[] = {
      {"login", "user", alice_id, "e1-alice-login", alice_id, 201, T0},
      {"login", "user", NULL, "e2-mallory", NULL, 401, T0 + HOUR},
      {"create", "user", bob_id, "e3-bob", alice_id, 201, T0 + 2 * HOUR},
      {"write", "user", bob_id, "e4-bob", bob_id, 200, T0 + 3 * HOUR},
      {"delete", "api_key", "Key1_34567", "e5-key", bob_id, 204, T0 + 4 * HOUR},
      {"logout", "user", alice_id, "e6-alice", alice_id, 200, T0 + 24 * HOUR},
  };
  for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
    const seed_t *s = &seeds[i];
    atr_api_req_t r = request(NULL);
    json_t *diff = NULL;
    if (i == 3)
      atr_audit_diff_add(&diff, "name", "", "Bob", false);
    record(&r, &(atr_audit_entry_t){.action = s->action,
                                    .resource_type = s->resource_type,
                                    .resource_id = s->resource_id,
                                    .resource_target = s->target,
                                    .user_id = s->actor,
                                    .organization_id = i == 2 ? ORG_ID : NULL,
                                    .diff = diff,
                                    .status_code = s->status});
    json_decref(diff);
    atr_value_t p[] = {atr_v_time(s->time_us), atr_v_text(s->target)};
    exec_ok("UPDATE audit_logs SET time = ? WHERE resource_target = ?", p, 2);
  }
}

static atr_audit_filter_t parsed(const char *query) {
  atr_api_req_t r = request(query);
  atr_audit_filter_t f;
  json_t *v = NULL;
  if (atr_audit_filter_parse(&r, &f, &v) != 0) {
    char *text = json_dumps(v, 0);
    fail_msg("%s: %s", query, text);
  }
  return f;
}

/* Read the log as an auditor would (the domain checks the role). */
static json_t *list_as_auditor(const atr_audit_filter_t *f) {
  atr_actor_t auditor = actor(alice_id, "auditor", ATR_ROLE_AUDITOR);
  atr_fault_t fault = {0};
  json_t *out = NULL;
  int rc = atr_audit_list(&env.dom, &auditor, f, &out, &fault);
  if (rc != 0)
    fail_msg("%s (%s)", fault.detail ? fault.detail : "no detail",
             atr_err_name(rc));
  return out;
}

/* The targets the query answers, newest first, then "| count". */
static void assert_finds(const char *query, const char *want) {
  atr_audit_filter_t f = parsed(query);
  json_t *out = list_as_auditor(&f);
  char got[512] = "";
  size_t i;
  json_t *entry;
  json_array_foreach(json_object_get(out, "audit_logs"), i, entry) {
    size_t used = strlen(got);
    snprintf(got + used, sizeof got - used, "%s ",
             json_string_value(json_object_get(entry, "resource_target")));
  }
  size_t used = strlen(got);
  snprintf(got + used, sizeof got - used, "| %lld",
           (long long)json_integer_value(json_object_get(out, "count")));
  if (strcmp(got, want) != 0)
    fail_msg("%s\n  got  %s\n  want %s", query, got, want);
  json_decref(out);
}

void filters_find_exactly_the_matching_entries(void **state) {
  (void)state;
  seed_log();
  assert_finds(NULL, "e6-alice e5-key e4-bob e3-bob e2-mallory "
                     "e1-alice-login | 6");
  assert_finds("action=login", "e2-mallory e1-alice-login | 2");
  assert_finds("q=action:login", "e2-mallory e1-alice-login | 2");
  assert_finds("username=ALICE", "e6-alice e3-bob e1-alice-login | 3");
  assert_finds("q=username:bob%20resource_type:user", "e4-bob | 1");
  assert_finds("resource_type=api_key", "e5-key | 1");
  assert_finds("q=action:login+status_code:401", "e2-mallory | 1");
  assert_finds("status_code=201", "e3-bob e1-alice-login | 2");
  assert_finds("resource_id=Key1_34567", "e5-key | 1");
  assert_finds("resource_id=Key1x34567", "| 0"); /* '_' is no wildcard */
  char q[128];
  snprintf(q, sizeof q, "q=resource_id:%s", bob_id);
  assert_finds(q, "e4-bob e3-bob | 2");
  assert_finds("since=2026-01-01T01:00:00Z&until=2026-01-01T03:00:00Z",
               "e4-bob e3-bob e2-mallory | 3");
  assert_finds("q=since:2026-01-01T04:00:00.000001Z", "e6-alice | 1");
  assert_finds("until=2026-01-01", "e5-key e4-bob e3-bob e2-mallory "
                                   "e1-alice-login | 5");
  assert_finds("since=2026-01-02", "e6-alice | 1");
  assert_finds("since=2026-01-01T02:00:00%2B02:00&until=2026-01-01T01:00:00Z",
               "e2-mallory e1-alice-login | 2");
  assert_finds("action=nothing", "| 0");
}

void limit_and_offset_page_while_count_counts_all(void **state) {
  (void)state;
  seed_log();
  assert_finds("limit=2", "e6-alice e5-key | 6");
  assert_finds("limit=2&offset=1", "e5-key e4-bob | 6");
  assert_finds("limit=2&offset=5", "e1-alice-login | 6");
  assert_finds("offset=9", "| 6");
  assert_finds("limit=0", "| 6"); /* the count only */
  assert_finds("limit=1&action=login", "e2-mallory | 2");
  assert_int_equal(parsed(NULL).limit, 50);
  assert_int_equal(parsed(NULL).offset, 0);
  assert_int_equal(parsed("limit=5000").limit, 1000);
}

/* The answer's entries without their random ids. */
static json_t *answer(const char *query) {
  atr_audit_filter_t f = parsed(query);
  json_t *out = list_as_auditor(&f);
  size_t i;
  json_t *entry;
  json_array_foreach(json_object_get(out, "audit_logs"), i, entry) {
    assert_int_equal(strlen(json_string_value(json_object_get(entry, "id"))),
                     36);
    json_object_del(entry, "id");
  }
  return out;
}

void entries_read_back_in_the_api_shape(void **state) {
  (void)state;
  seed_log();
  json_t *out = answer("q=resource_type:user%20since:2026-01-01T01:00:00Z"
                       "%20until:2026-01-01T03:00:00Z");
  char want[4096];
  snprintf(want, sizeof want,
           "{\"count\": 3, \"audit_logs\": ["
           "{\"time\": \"2026-01-01T03:00:00.000000Z\", \"user\": {\"id\": "
           "\"%s\", \"username\": \"bob\"}, \"organization_id\": null, "
           "\"ip\": \"192.0.2.7\", \"user_agent\": \"atrium-test/1.0\", "
           "\"resource_type\": \"user\", \"resource_id\": \"%s\", "
           "\"resource_target\": \"e4-bob\", \"action\": \"write\", "
           "\"diff\": {\"name\": {\"old\": \"\", \"new\": \"Bob\", "
           "\"secret\": false}}, \"status_code\": 200, "
           "\"additional_fields\": {}, \"request_id\": \"" REQUEST_ID "\"}, "
           "{\"time\": \"2026-01-01T02:00:00.000000Z\", \"user\": {\"id\": "
           "\"%s\", \"username\": \"alice\"}, \"organization_id\": "
           "\"" ORG_ID "\", \"ip\": \"192.0.2.7\", \"user_agent\": "
           "\"atrium-test/1.0\", \"resource_type\": \"user\", "
           "\"resource_id\": \"%s\", \"resource_target\": \"e3-bob\", "
           "\"action\": \"create\", \"diff\": {}, \"status_code\": 201, "
           "\"additional_fields\": {}, \"request_id\": \"" REQUEST_ID "\"}, "
           "{\"time\": \"2026-01-01T01:00:00.000000Z\", \"user\": null, "
           "\"organization_id\": null, \"ip\": \"192.0.2.7\", "
           "\"user_agent\": \"atrium-test/1.0\", \"resource_type\": "
           "\"user\", \"resource_id\": \"" NIL_UUID "\", "
           "\"resource_target\": \"e2-mallory\", \"action\": \"login\", "
           "\"diff\": {}, \"status_code\": 401, \"additional_fields\": {}, "
           "\"request_id\": \"" REQUEST_ID "\"}]}",
           bob_id, bob_id, alice_id, bob_id);
  assert_json_equal(out, want);
  json_decref(out);
  out = answer("resource_type=api_key");
  json_t *key = json_array_get(json_object_get(out, "audit_logs"), 0);
  assert_string_equal(json_string_value(json_object_get(key, "resource_id")),
                      NIL_UUID);
  assert_json_equal(json_object_get(key, "additional_fields"),
                    "{\"resource_id\": \"Key1_34567\"}");
  json_decref(out);
}

/* ---- reading: bad filters ---------------------------------------------------- */

static void assert_refused(const char *query, const char *want) {
  atr_api_req_t r = request(query);
  atr_audit_filter_t f;
  json_t *v = NULL;
  assert_int_equal(atr_audit_filter_parse(&r, &f, &v), ATR_EINVAL);
  assert_json_equal(v, want);
  json_decref(v);
}

#define KEYS                                                                   \
  "action, resource_type, resource_id, username, status_code, since, until"
#define TIME_RULE                                                              \
  "an RFC 3339 time such as 2026-11-26T06:30:00Z or a date such as "           \
  "2026-11-26"

void a_bad_filter_is_refused_naming_the_parameter(void **state) {
  (void)state;
  assert_refused("since=yesterday",
                 "[{\"field\": \"since\", \"detail\": \"Must be " TIME_RULE
                 "; got \\\"yesterday\\\"\"}]");
  assert_refused("q=since:2026-02-29",
                 "[{\"field\": \"q\", \"detail\": \"since: must be " TIME_RULE
                 "; got \\\"2026-02-29\\\"\"}]");
  assert_refused("q=when:today", "[{\"field\": \"q\", \"detail\": "
                                 "\"\\\"when\\\" is not a filter key; use "
                                 "one of " KEYS "\"}]");
  assert_refused("q=login", "[{\"field\": \"q\", \"detail\": \"\\\"login\\\" "
                            "is not a filter; write key:value terms with a "
                            "key among " KEYS "\"}]");
  assert_refused("q=action:%20username:%22al",
                 "[{\"field\": \"q\", \"detail\": \"action: needs a value, "
                 "as in action:value\"}, {\"field\": \"q\", \"detail\": "
                 "\"username: the quoted value has no closing quote\"}]");
  assert_refused("status_code=abc&limit=-1&offset=x",
                 "[{\"field\": \"status_code\", \"detail\": \"Must be an "
                 "HTTP status code from 100 to 599; got \\\"abc\\\"\"}, "
                 "{\"field\": \"limit\", \"detail\": \"Must be a whole "
                 "number from 0 to 1000; got \\\"-1\\\"\"}, {\"field\": "
                 "\"offset\", \"detail\": \"Must be a whole number of 0 or "
                 "more; got \\\"x\\\"\"}]");
  assert_refused("action=login&q=action:logout",
                 "[{\"field\": \"q\", \"detail\": \"action: is given twice "
                 "with different values (\\\"login\\\" and \\\"logout\\\"); "
                 "give it once\"}]");
  assert_refused("since=2026-01-02&until=2026-01-01",
                 "[{\"field\": \"until\", \"detail\": \"Must not be before "
                 "since (2026-01-02); got \\\"2026-01-01\\\"\"}]");
  assert_refused("resource_id=a%20b", "[{\"field\": \"resource_id\", "
                                      "\"detail\": \"Must be a UUID or an id "
                                      "of letters, digits, '-', '_' and "
                                      "'.'; got \\\"a b\\\"\"}]");
  assert_refused("username="
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                 "aaaaa",
                 "[{\"field\": \"username\", \"detail\": \"Must be at most 64 "
                 "characters\"}]");
}

void times_parse_as_rfc_3339(void **state) {
  (void)state;
  struct {
    const char *query;
    int64_t since;
  } cases[] = {
      {"since=2026-01-01T00:00:00Z", T0},
      {"since=2026-01-01t00:00:00z", T0},
      {"since=2026-01-01T00:00:00.5Z", T0 + 500000},
      {"since=2026-01-01T00:00:00.1234567Z", T0 + 123456},
      {"since=2026-01-01T02:00:00%2B02:00", T0},
      {"since=2026-01-01T02:00:00+02:00", T0}, /* '+' arrived as a space */
      {"since=2025-12-31T23:30:00-00:30", T0},
      {"since=2026-01-01", T0},
      {"since=2024-02-29T00:00:00Z", INT64_C(1709164800000000)},
      {"since=1970-01-01T00:00:00Z", 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    atr_audit_filter_t f = parsed(cases[i].query);
    assert_true(f.has_since);
    if (f.since_us != cases[i].since)
      fail_msg("%s: %lld, want %lld", cases[i].query, (long long)f.since_us,
               (long long)cases[i].since);
  }
  atr_audit_filter_t f = parsed("until=2026-01-01");
  assert_int_equal(f.until_us, T0 + 24 * HOUR - 1);
  const char *bad[] = {"since=2026-1-01",
                       "since=2026-01-01T24:00:00Z",
                       "since=2026-01-01T00:00:00",
                       "since=2026-01-01T00:00:00.Z",
                       "since=2026-01-01T00:00:00Zjunk",
                       "since=2026-04-31",
                       "since=2026-01-01X00:00:00Z"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    atr_api_req_t r = request(bad[i]);
    json_t *v = NULL;
    if (atr_audit_filter_parse(&r, &f, &v) != ATR_EINVAL)
      fail_msg("%s was accepted", bad[i]);
    json_decref(v);
  }
}

/* ---- the handler ---------------------------------------------------------- */

void the_handler_answers_200_or_400(void **state) {
  (void)state;
  atr_api_req_t ok = signed_in_as(alice_id, "alice");
  ok.actor.roles = ATR_ROLE_MEMBER | ATR_ROLE_AUDITOR; /* as the route asks */
  ok.query = "q=action:login";
  assert_int_equal(atr_api_audit_list(&ok), 0);
  assert_int_equal(ok.status, 200);
  /* the answer is held until the dispatcher sends it */
  json_t *body = json_loads(ok.answer, 0, NULL);
  assert_non_null(json_object_get(body, "audit_logs"));
  json_decref(body);
  free(ok.answer);
  atr_api_req_t bad = signed_in_as(alice_id, "alice");
  bad.query = "status_code=teapot";
  assert_int_equal(atr_api_audit_list(&bad), 0);
  assert_int_equal(bad.status, 400);
  assert_non_null(strstr(bad.answer, "\"field\":\"status_code\""));
  free(bad.answer);
  /* reading the log is not itself recorded */
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs"), 0);
}

/* The domain checks the role itself, whoever calls it: a member is
 * refused, an owner and the system may read. */
void reading_the_log_needs_a_role_that_may(void **state) {
  (void)state;
  seed_log();
  atr_audit_filter_t f = parsed(NULL);
  atr_actor_t member = actor(bob_id, "bob", 0);
  atr_fault_t fault = {0};
  json_t *out = NULL;
  assert_int_equal(atr_audit_list(&env.dom, &member, &f, &out, &fault),
                   ATR_EPERM);
  assert_null(out);
  assert_string_equal(fault.message, "Forbidden.");
  assert_string_equal(fault.detail, "Your roles do not allow read on "
                                    "audit_log.");
  atr_fault_clear(&fault);
  atr_actor_t owner = member;
  owner.roles |= ATR_ROLE_OWNER;
  assert_int_equal(atr_audit_list(&env.dom, &owner, &f, &out, &fault), 0);
  assert_int_equal(json_integer_value(json_object_get(out, "count")), 6);
  json_decref(out);
  atr_actor_t system = atr_actor_system("test");
  assert_int_equal(atr_audit_list(&env.dom, &system, &f, &out, &fault), 0);
  assert_int_equal(json_integer_value(json_object_get(out, "count")), 6);
  json_decref(out);
  /* reading is not itself recorded */
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs"), 6);
}
