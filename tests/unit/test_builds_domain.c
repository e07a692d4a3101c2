/* Builds without an HTTP request: the scheduler (a system actor) creates a
 * workspace and builds it through the domain, a member who does not own
 * the workspace is refused and nothing is written, the owner's values are
 * resolved against the schema and the last build, and a template policy's
 * deny comes back as the API answers it.
 *
 *   test_builds_domain                 a fresh SQLite file in a temp dir
 *   test_builds_domain postgres PGDIR  the throwaway cluster whose DSN is
 *                                      in PGDIR/dsn
 *
 * Real storage plugin, loaded by the real loader, migrated schema; the
 * template version and its succeeded import are seeded with SQL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "builds.h"
#include "db.h"
#include "domain.h"
#include "domain_fixture.h"
#include "log.h"
#include "rbac.h"
#include "workspaces.h"

#define NIL_UUID "00000000-0000-0000-0000-000000000000"

static char org_id[37], alice_id[37], bob_id[37], version_id[37],
    template_id[37];
static char workspace_id[37]; /* made by the first test */

/* ---- set-up ------------------------------------------------------------- */

/* A template whose version v1 was imported: a succeeded import job over
 * an archive, and two parameters (cpus: mutable, at most 8; region:
 * immutable). */
static void seed_template(void) {
  char file_id[37];
  add_file(file_id, alice_id);
  add_template(template_id, version_id, org_id, file_id, alice_id);
  atr_value_t p[] = {atr_v_text(version_id)};
  exec_ok("INSERT INTO template_version_parameters (template_version_id, "
          "name, type, mutable, default_value, validation_max, required, "
          "display_order) VALUES (?, 'cpus', 'number', TRUE, '2', 8, FALSE, "
          "0)",
          p, 1);
  exec_ok("INSERT INTO template_version_parameters (template_version_id, "
          "name, type, mutable, default_value, required, display_order) "
          "VALUES (?, 'region', 'string', FALSE, 'eu', FALSE, 1)",
          p, 1);
}

/* The default organization with two members, alice and bob, and
 * alice's template. */
static int setup(void **state) {
  (void)state;
  if (fixture_open("builds", NULL) != 0)
    return -1;
  add_org(org_id, "default", true);
  add_user(alice_id, "alice", 0);
  add_member(alice_id, org_id, 0);
  add_user(bob_id, "bob", 0);
  add_member(bob_id, org_id, 0);
  seed_template();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return fixture_close();
}

/* ---- helpers --------------------------------------------------------------- */

static int64_t builds(void) {
  return count_rows("SELECT COUNT(*) FROM workspace_builds");
}

static int64_t jobs(void) {
  return count_rows("SELECT COUNT(*) FROM provisioner_jobs");
}

static json_t *values(const char *name, const char *value) {
  return json_pack("{s:s}", name, value);
}

/* The value a build ran with, read back as the API shows it. */
static const char *param(json_t *params, const char *name) {
  size_t i;
  json_t *p;
  json_array_foreach(params, i, p) {
    if (strcmp(str(p, "name"), name) == 0)
      return str(p, "value");
  }
  return "";
}

/* ---- tests ----------------------------------------------------------------- */

static void the_scheduler_creates_a_workspace_with_a_pending_build(void **s) {
  (void)s;
  atr_actor_t sched = atr_actor_system("scheduler");
  json_t *v = values("cpus", "4");
  atr_workspace_new_t in = {.owner = "alice",
                            .name = "dev1",
                            .template_id = template_id,
                            .values = v};
  json_t *w = NULL;
  atr_fault_t fault = {0};
  int rc = atr_workspace_create(&dom, &sched, &in, &w, &fault);
  if (rc != 0)
    fail_msg("create: %s %s", fault.message ? fault.message : "",
             fault.detail ? fault.detail : "");
  assert_string_equal(str(w, "owner_id"), alice_id);
  json_t *b = json_object_get(w, "latest_build");
  assert_int_equal(json_integer_value(json_object_get(b, "build_number")), 1);
  assert_string_equal(str(b, "transition"), "start");
  assert_string_equal(str(b, "status"), "pending");
  assert_string_equal(str(b, "initiator_id"), NIL_UUID);
  assert_string_equal(str(json_object_get(b, "job"), "status"), "pending");
  snprintf(workspace_id, sizeof workspace_id, "%s", str(w, "id"));
  json_decref(w);
  json_decref(v);
  assert_int_equal(builds(), 1);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE action = "
                              "'create' AND resource_type = 'workspace'"),
                   1);
}

static void a_build_waits_for_the_one_before_it(void **s) {
  (void)s;
  atr_actor_t sched = atr_actor_system("scheduler");
  atr_build_new_t in = {.workspace_id = workspace_id, .transition = "stop"};
  json_t *b = NULL;
  atr_fault_t fault = {0};
  assert_int_equal(atr_build_create(&dom, &sched, &in, &b, &fault), ATR_EBUSY);
  assert_null(b);
  assert_string_equal(fault.message, "The workspace's latest build is still "
                                     "running; wait for it or cancel it.");
  atr_fault_clear(&fault);
  assert_int_equal(builds(), 1);
}

static void the_scheduler_stops_it_with_the_values_it_had(void **s) {
  (void)s;
  end_build_jobs();
  atr_actor_t sched = atr_actor_system("scheduler");
  atr_build_new_t in = {.workspace_id = workspace_id, .transition = "stop"};
  json_t *b = NULL, *params = NULL;
  atr_fault_t fault = {0};
  int64_t before = jobs();
  assert_int_equal(atr_build_create(&dom, &sched, &in, &b, &fault), 0);
  assert_int_equal(json_integer_value(json_object_get(b, "build_number")), 2);
  assert_string_equal(str(b, "status"), "pending");
  assert_int_equal(jobs(), before + 1);
  assert_int_equal(
      atr_build_parameters(&dom, &sched, str(b, "id"), &params, &fault), 0);
  assert_string_equal(param(params, "cpus"), "4");
  assert_string_equal(param(params, "region"), "eu");
  json_decref(params);
  json_decref(b);
}

static void a_member_cannot_build_anothers_workspace(void **s) {
  (void)s;
  end_build_jobs();
  atr_actor_t bob = actor(bob_id, "bob", 0);
  atr_build_new_t in = {.workspace_id = workspace_id, .transition = "start"};
  json_t *b = NULL;
  atr_fault_t fault = {0};
  int64_t n = builds(), j = jobs();
  assert_int_equal(atr_build_create(&dom, &bob, &in, &b, &fault), ATR_EPERM);
  assert_null(b);
  assert_string_equal(fault.message, "Forbidden.");
  atr_fault_clear(&fault);
  assert_int_equal(builds(), n);
  assert_int_equal(jobs(), j);
  /* nor read it */
  json_t *w = NULL;
  assert_int_equal(atr_workspace_get(&dom, &bob, workspace_id, &w, &fault),
                   ATR_EPERM);
  atr_fault_clear(&fault);
}

static void the_owner_may_not_change_an_immutable_value(void **s) {
  (void)s;
  atr_actor_t alice = actor(alice_id, "alice", 0);
  json_t *v = values("region", "us");
  atr_build_new_t in = {
      .workspace_id = workspace_id, .transition = "start", .values = v};
  json_t *b = NULL;
  atr_fault_t fault = {0};
  int64_t n = builds();
  assert_int_equal(atr_build_create(&dom, &alice, &in, &b, &fault), ATR_EINVAL);
  assert_string_equal(fault.message, "Invalid parameter values.");
  assert_string_equal(str(json_array_get(fault.validations, 0), "field"),
                      "region");
  atr_fault_clear(&fault);
  assert_int_equal(builds(), n);
  json_decref(v);
  v = values("cpus", "6");
  in.values = v;
  assert_int_equal(atr_build_create(&dom, &alice, &in, &b, &fault), 0);
  assert_string_equal(str(b, "initiator_id"), alice_id);
  json_decref(b);
  json_decref(v);
}

static void a_template_policy_deny_is_answered_with_every_member(void **s) {
  (void)s;
  end_build_jobs();
  atr_value_t p[] = {atr_v_text(version_id)};
  exec_ok("UPDATE template_versions SET policy_name = 'keep.lua', "
          "policy_source = 'function build(input) if input.transition == "
          "\"delete\" then policy.deny(\"keep it\", \"cpus\") end end' "
          "WHERE id = ?",
          p, 1);
  atr_actor_t sched = atr_actor_system("scheduler");
  atr_build_new_t in = {.workspace_id = workspace_id, .transition = "delete"};
  json_t *b = NULL;
  atr_fault_t fault = {0};
  int64_t n = builds();
  assert_int_equal(atr_build_create(&dom, &sched, &in, &b, &fault), ATR_EPERM);
  assert_string_equal(fault.message, "Denied by policy.");
  assert_string_equal(fault.detail, "keep.lua: keep it");
  json_t *val = json_array_get(json_object_get(fault.extra, "validations"), 0);
  assert_string_equal(str(val, "field"), "cpus");
  json_t *d = json_array_get(json_object_get(fault.extra, "denies"), 0);
  assert_string_equal(str(d, "policy"), "keep.lua");
  atr_fault_clear(&fault);
  assert_int_equal(builds(), n);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE action = "
                              "'policy' AND status_code = 403"),
                   1);
}

int main(int argc, char **argv) {
  if (fixture_args(argc, argv) != 0)
    return 2;
  atr_log_set_level(ATR_LOG_WARN);
  /* In order: each starts from the workspace the ones before left. */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_scheduler_creates_a_workspace_with_a_pending_build),
      cmocka_unit_test(a_build_waits_for_the_one_before_it),
      cmocka_unit_test(the_scheduler_stops_it_with_the_values_it_had),
      cmocka_unit_test(a_member_cannot_build_anothers_workspace),
      cmocka_unit_test(the_owner_may_not_change_an_immutable_value),
      cmocka_unit_test(a_template_policy_deny_is_answered_with_every_member),
  };
  return cmocka_run_group_tests_name(pg_dir ? "builds_domain_postgres"
                                            : "builds_domain",
                                     tests, setup, teardown);
}
