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
#include "conf.h"
#include "db.h"
#include "domain.h"
#include "loader.h"
#include "log.h"
#include "migrate.h"
#include "rbac.h"
#include "workspaces.h"

#define NIL_UUID "00000000-0000-0000-0000-000000000000"

static const char *pg_dir;
static char tmpdir[] = "/tmp/atrium-builds-XXXXXX";
static atr_loader_t loader;
static atr_store_t store;
static atr_domain_t dom;
static char org_id[37], alice_id[37], bob_id[37], version_id[37],
    template_id[37];
static char workspace_id[37]; /* made by the first test */

/* ---- set-up ------------------------------------------------------------- */

static void must(int rc, char **err) {
  if (rc != 0)
    fail_msg("%s (%s)", *err ? *err : "no message", atr_err_name(rc));
  free(*err);
  *err = NULL;
}

static void exec_ok(const char *sql, const atr_value_t *p, size_t n) {
  atr_db_t db;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  int rc = atr_db_exec(&db, sql, p, n, NULL, &err);
  atr_db_close(&db);
  must(rc, &err);
}

static int64_t count(const char *sql) {
  atr_db_t db;
  char *err = NULL;
  int64_t n = -1;
  must(atr_db_open(&store, &db, &err), &err);
  int rc = atr_db_query_int(&db, sql, NULL, 0, &n, &err);
  atr_db_close(&db);
  must(rc, &err);
  return n;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    n--;
  buf[n] = '\0';
  return strdup(buf);
}

static char *config_yaml(void) {
  char *yaml = NULL;
  if (pg_dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/dsn", pg_dir);
    char *dsn = read_text(path);
    if (dsn && asprintf(&yaml,
                        "plugins:\n  storage_postgres:\n    enabled: true\n"
                        "    dsn: \"%s\"\n",
                        dsn) < 0)
      yaml = NULL;
    free(dsn);
  } else if (asprintf(&yaml, "plugins:\n  storage_sqlite:\n    enabled: "
                             "true\n    pool_size: 4\n") < 0) {
    yaml = NULL;
  }
  return yaml;
}

static void add_user(char id[37], const char *username) {
  atr_db_new_uuid(id);
  char email[80];
  snprintf(email, sizeof email, "%s@example.com", username);
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(id),    atr_v_text(email), atr_v_text(username),
                     atr_v_blob("", 0), atr_v_time(now),   atr_v_time(now)};
  exec_ok("INSERT INTO users (id, email, username, name, hashed_password, "
          "created_at, updated_at, status, login_type) VALUES (?, ?, ?, '', "
          "?, ?, ?, 'active', 'password')",
          p, 6);
  atr_value_t m[] = {atr_v_text(id), atr_v_text(org_id), atr_v_time(now),
                     atr_v_time(now)};
  exec_ok("INSERT INTO organization_members (user_id, organization_id, "
          "created_at, updated_at) VALUES (?, ?, ?, ?)",
          m, 4);
}

/* A template whose version v1 was imported: a succeeded import job over
 * an archive, and two parameters (cpus: mutable, at most 8; region:
 * immutable). */
static void seed_template(void) {
  char file_id[37], job_id[37];
  atr_db_new_uuid(file_id);
  atr_db_new_uuid(job_id);
  atr_db_new_uuid(version_id);
  atr_db_new_uuid(template_id);
  int64_t now = atr_db_now_us();
  atr_value_t f[] = {atr_v_text(file_id), atr_v_time(now), atr_v_text(alice_id),
                     atr_v_blob("x", 1)};
  exec_ok("INSERT INTO files (id, hash, created_at, created_by, mimetype, "
          "data) VALUES (?, 'h', ?, ?, 'application/x-tar', ?)",
          f, 4);
  atr_value_t j[] = {atr_v_text(job_id),   atr_v_time(now),
                     atr_v_time(now),      atr_v_time(now),
                     atr_v_time(now),      atr_v_text(org_id),
                     atr_v_text(alice_id), atr_v_text(file_id)};
  exec_ok("INSERT INTO provisioner_jobs (id, created_at, updated_at, "
          "started_at, completed_at, organization_id, initiator_id, "
          "provisioner, type, file_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'echo', "
          "'template_version_import', ?)",
          j, 8);
  atr_value_t t[] = {atr_v_text(template_id), atr_v_time(now),
                     atr_v_time(now),         atr_v_text(org_id),
                     atr_v_text(version_id),  atr_v_text(alice_id)};
  exec_ok("INSERT INTO templates (id, created_at, updated_at, "
          "organization_id, name, provisioner, active_version_id, "
          "created_by) VALUES (?, ?, ?, ?, 'dev', 'echo', ?, ?)",
          t, 6);
  atr_value_t v[] = {atr_v_text(version_id), atr_v_text(template_id),
                     atr_v_text(org_id),     atr_v_time(now),
                     atr_v_time(now),        atr_v_text(job_id),
                     atr_v_text(alice_id)};
  exec_ok("INSERT INTO template_versions (id, template_id, organization_id, "
          "created_at, updated_at, name, job_id, created_by) VALUES (?, ?, "
          "?, ?, ?, 'v1', ?, ?)",
          v, 7);
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

static int reset_postgres(void) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(&store, &db, &err);
  if (rc == 0)
    rc = atr_db_exec_script(
        &db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;", &err);
  if (rc != 0)
    fprintf(stderr, "setup: %s\n", err ? err : "reset");
  else
    atr_db_close(&db);
  free(err);
  return rc;
}

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(tmpdir))
    return -1;
  atr_host_set_data_dir(tmpdir);
  char *yaml = config_yaml();
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  const char *dir = ATR_TEST_PLUGIN_DIR;
  if (!yaml || atr_conf_parse("builds.yaml", yaml, strlen(yaml), &root, &err) ||
      atr_loader_init(&loader, &dir, 1, &err) ||
      atr_loader_load_config(&loader, root, NULL, NULL, true, &err) ||
      atr_store_find(&loader, &store, &err)) {
    fprintf(stderr, "setup: %s\n", err ? err : "no config");
    return -1;
  }
  free(yaml);
  atr_conf_free(root);
  if (pg_dir && reset_postgres() != 0)
    return -1;
  if (atr_migrate_up(&store, atr_migrations, atr_nmigrations, NULL, &err)) {
    fprintf(stderr, "setup: %s\n", err);
    return -1;
  }
  dom = (atr_domain_t){.store = &store, .loader = &loader};
  atr_db_new_uuid(org_id);
  int64_t now = atr_db_now_us();
  atr_value_t o[] = {atr_v_text(org_id), atr_v_time(now), atr_v_time(now)};
  exec_ok("INSERT INTO organizations (id, name, created_at, updated_at, "
          "is_default) VALUES (?, 'default', ?, ?, TRUE)",
          o, 3);
  add_user(alice_id, "alice");
  add_user(bob_id, "bob");
  seed_template();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  atr_loader_shutdown(&loader);
  atr_host_set_data_dir(NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- helpers --------------------------------------------------------------- */

static atr_actor_t member(const char *id, const char *username) {
  atr_actor_t a = {.roles = ATR_ROLE_MEMBER};
  snprintf(a.user_id, sizeof a.user_id, "%s", id);
  snprintf(a.username, sizeof a.username, "%s", username);
  return a;
}

static const char *str(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

/* Every job of the workspace's builds ends as a daemon would end it. */
static void builds_end(void) {
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now)};
  exec_ok("UPDATE provisioner_jobs SET started_at = ?, completed_at = ? "
          "WHERE type = 'workspace_build' AND completed_at IS NULL",
          p, 2);
}

static int64_t builds(void) {
  return count("SELECT COUNT(*) FROM workspace_builds");
}

static int64_t jobs(void) {
  return count("SELECT COUNT(*) FROM provisioner_jobs");
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
  assert_int_equal(count("SELECT COUNT(*) FROM audit_logs WHERE action = "
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
  builds_end();
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
  builds_end();
  atr_actor_t bob = member(bob_id, "bob");
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
  atr_actor_t alice = member(alice_id, "alice");
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
  builds_end();
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
  assert_int_equal(count("SELECT COUNT(*) FROM audit_logs WHERE action = "
                         "'policy' AND status_code = 403"),
                   1);
}

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "postgres") != 0 || argc < 3)) {
    fprintf(stderr, "usage: %s [postgres PGDIR]\n", argv[0]);
    return 2;
  }
  pg_dir = argc > 2 ? argv[2] : NULL;
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
