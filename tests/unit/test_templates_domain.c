/* The templates domain (core/domain/templates.c, template_versions.c,
 * files.c) called without HTTP: an actor whose roles do not allow the
 * action is refused with ATR_EPERM and nothing is written, not even an
 * audit entry; a template-admin's create is stored and audited.
 *
 *   test_templates_domain                   a fresh SQLite file
 *   test_templates_domain postgres PGDIR    the throwaway cluster whose
 *                                           DSN is in PGDIR/dsn
 *
 * Real storage plugin, loaded by the real loader, migrated schema. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "conf.h"
#include "db.h"
#include "domain.h"
#include "files.h"
#include "loader.h"
#include "log.h"
#include "migrate.h"
#include "template_versions.h"
#include "templates.h"

static const char *pg_dir;
static char tmpdir[] = "/tmp/atrium-templates-XXXXXX";
static atr_loader_t loader;
static atr_store_t store;
static atr_domain_t dom;
static char org_id[37], member_id[37], admin_id[37], file_id[37];

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

static int64_t count(const char *sql, const char *arg) {
  atr_db_t db;
  char *err = NULL;
  int64_t n = -1;
  atr_value_t p[] = {atr_v_text(arg)};
  must(atr_db_open(&store, &db, &err), &err);
  int rc = atr_db_query_int(&db, sql, p, arg ? 1 : 0, &n, &err);
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

/* A user who is a member of the organization. */
static void add_member(char id[37], const char *username) {
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

static void add_fixtures(void) {
  int64_t now = atr_db_now_us();
  atr_db_new_uuid(org_id);
  atr_value_t o[] = {atr_v_text(org_id), atr_v_time(now), atr_v_time(now)};
  exec_ok("INSERT INTO organizations (id, name, created_at, updated_at) "
          "VALUES (?, 'acme', ?, ?)",
          o, 3);
  add_member(member_id, "mia");
  add_member(admin_id, "tess");
  atr_db_new_uuid(file_id);
  atr_value_t f[] = {atr_v_text(file_id), atr_v_time(now), atr_v_text(admin_id),
                     atr_v_blob("tar", 3)};
  exec_ok("INSERT INTO files (id, hash, created_at, created_by, mimetype, "
          "data) VALUES (?, 'abc', ?, ?, 'application/x-tar', ?)",
          f, 4);
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
  if (!yaml ||
      atr_conf_parse("templates.yaml", yaml, strlen(yaml), &root, &err) ||
      atr_loader_init(&loader, &dir, 1, &err) ||
      atr_loader_load_config(&loader, root, NULL, NULL, true, &err) ||
      atr_store_find(&loader, &store, &err)) {
    fprintf(stderr, "setup: %s\n", err ? err : "no config");
    return -1;
  }
  free(yaml);
  atr_conf_free(root);
  if (pg_dir) { /* an empty public schema, so each run starts from nothing */
    atr_db_t db;
    if (atr_db_open(&store, &db, &err) ||
        atr_db_exec_script(
            &db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;", &err)) {
      fprintf(stderr, "setup: %s\n", err ? err : "reset");
      return -1;
    }
    atr_db_close(&db);
  }
  if (atr_migrate_up(&store, atr_migrations, atr_nmigrations, NULL, &err)) {
    fprintf(stderr, "setup: %s\n", err);
    return -1;
  }
  dom = (atr_domain_t){.store = &store,
                       .loader = &loader,
                       .file_max_size = 1024 * 1024,
                       .file_max_unpacked = 1024 * 1024,
                       .file_max_entries = 100};
  add_fixtures();
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

static atr_actor_t actor(const char *user_id, const char *username,
                         uint32_t roles) {
  atr_actor_t a = {.roles = ATR_ROLE_MEMBER | roles,
                   .ip = "192.0.2.7",
                   .user_agent = "atrium-test/1.0",
                   .request_id = "5f0c1e2d-3b4a-4c5d-8e6f-708192a3b4c5"};
  snprintf(a.user_id, sizeof a.user_id, "%s", user_id);
  snprintf(a.username, sizeof a.username, "%s", username);
  return a;
}

/* A version of the organization whose import succeeded, into id. */
static void imported_version(char id[37], const char *name) {
  char job_id[37];
  atr_db_new_uuid(job_id);
  atr_db_new_uuid(id);
  int64_t now = atr_db_now_us();
  atr_value_t j[] = {atr_v_text(job_id),   atr_v_time(now),
                     atr_v_time(now),      atr_v_time(now),
                     atr_v_time(now),      atr_v_text(org_id),
                     atr_v_text(admin_id), atr_v_text(file_id)};
  exec_ok("INSERT INTO provisioner_jobs (id, created_at, updated_at, "
          "started_at, completed_at, organization_id, initiator_id, "
          "provisioner, type, file_id) VALUES (?, ?, ?, ?, ?, ?, ?, "
          "'docker', 'template_version_import', ?)",
          j, 8);
  atr_value_t v[] = {atr_v_text(id),      atr_v_text(org_id),
                     atr_v_time(now),     atr_v_time(now),
                     atr_v_text(name),    atr_v_text(job_id),
                     atr_v_text(admin_id)};
  exec_ok("INSERT INTO template_versions (id, organization_id, created_at, "
          "updated_at, name, job_id, created_by) VALUES (?, ?, ?, ?, ?, ?, ?)",
          v, 7);
}

static int64_t audit_rows(void) {
  return count("SELECT COUNT(*) FROM audit_logs", NULL);
}

/* ---- tests ----------------------------------------------------------------- */

static void
a_member_cannot_create_a_template_and_nothing_is_written(void **state) {
  (void)state;
  char vid[37];
  imported_version(vid, "v-member");
  atr_actor_t mia = actor(member_id, "mia", 0);
  atr_template_new_t in = {
      .organization_id = org_id, .name = "mias-box", .version_id = vid};
  atr_fault_t f = {0};
  json_t *out = NULL;
  int64_t audits = audit_rows();
  assert_int_equal(atr_template_create(&dom, &mia, &in, &out, &f), ATR_EPERM);
  assert_null(out);
  assert_int_equal(f.code, ATR_EPERM);
  assert_string_equal(f.message, "Forbidden.");
  assert_string_equal(f.detail, "Your roles do not allow create on template.");
  atr_fault_clear(&f);
  assert_int_equal(count("SELECT COUNT(*) FROM templates", NULL), 0);
  assert_int_equal(count("SELECT COUNT(*) FROM template_versions WHERE id = "
                         "? AND template_id IS NULL",
                         vid),
                   1);
  assert_int_equal(audit_rows(), audits);
}

static void
a_template_admin_creates_a_template_and_it_is_audited(void **state) {
  (void)state;
  char vid[37];
  imported_version(vid, "v-admin");
  atr_actor_t tess = actor(admin_id, "tess", ATR_ROLE_TEMPLATE_ADMIN);
  atr_template_new_t in = {.organization_id = org_id,
                           .name = "dev-box",
                           .description = "A box.",
                           .version_id = vid};
  atr_fault_t f = {0};
  json_t *out = NULL;
  int64_t audits = audit_rows();
  assert_int_equal(atr_template_create(&dom, &tess, &in, &out, &f), 0);
  assert_int_equal(f.code, 0);
  assert_string_equal(json_string_value(json_object_get(out, "name")),
                      "dev-box");
  assert_string_equal(json_string_value(json_object_get(out, "provisioner")),
                      "docker");
  assert_string_equal(
      json_string_value(json_object_get(out, "active_version_id")), vid);
  assert_int_equal(json_integer_value(json_object_get(out, "default_ttl_ms")),
                   604800000);
  const char *tid = json_string_value(json_object_get(out, "id"));
  assert_int_equal(count("SELECT COUNT(*) FROM template_versions WHERE "
                         "template_id IS NOT NULL AND id = ?",
                         vid),
                   1);
  assert_int_equal(audit_rows(), audits + 1);
  assert_int_equal(count("SELECT COUNT(*) FROM audit_logs WHERE "
                         "resource_id = ? AND action = 'create' AND "
                         "resource_type = 'template' AND status_code = 201 "
                         "AND resource_target = 'dev-box'",
                         tid),
                   1);
  assert_int_equal(count("SELECT COUNT(*) FROM audit_logs WHERE user_id = ? "
                         "AND resource_type = 'template'",
                         admin_id),
                   1);
  json_decref(out);
}

static void a_member_cannot_delete_or_rename_a_template(void **state) {
  (void)state;
  json_t *t = NULL;
  atr_fault_t f = {0};
  atr_actor_t mia = actor(member_id, "mia", 0);
  assert_int_equal(
      atr_template_get_by_name(&dom, &mia, org_id, "DEV-BOX", &t, &f), 0);
  const char *tid = json_string_value(json_object_get(t, "id"));
  int64_t audits = audit_rows();
  assert_int_equal(atr_template_delete(&dom, &mia, tid, &f), ATR_EPERM);
  atr_fault_clear(&f);
  atr_template_change_t change = {.name = "mine-now"};
  json_t *out = NULL;
  assert_int_equal(atr_template_update(&dom, &mia, tid, &change, &out, &f),
                   ATR_EPERM);
  atr_fault_clear(&f);
  assert_null(out);
  assert_int_equal(count("SELECT COUNT(*) FROM templates WHERE id = ? AND "
                         "deleted = FALSE AND name = 'dev-box'",
                         tid),
                   1);
  assert_int_equal(audit_rows(), audits);
  json_decref(t);
}

static void a_member_cannot_queue_a_version_import(void **state) {
  (void)state;
  atr_actor_t mia = actor(member_id, "mia", 0);
  atr_template_version_new_t in = {
      .organization_id = org_id, .file_id = file_id, .provisioner = "docker"};
  atr_fault_t f = {0};
  json_t *out = NULL;
  int64_t jobs = count("SELECT COUNT(*) FROM provisioner_jobs", NULL);
  int64_t audits = audit_rows();
  assert_int_equal(atr_template_version_create(&dom, &mia, &in, &out, &f),
                   ATR_EPERM);
  atr_fault_clear(&f);
  assert_null(out);
  assert_int_equal(count("SELECT COUNT(*) FROM provisioner_jobs", NULL), jobs);
  assert_int_equal(audit_rows(), audits);
}

static void a_member_cannot_upload_a_file(void **state) {
  (void)state;
  atr_actor_t mia = actor(member_id, "mia", 0);
  atr_file_stored_t out;
  atr_fault_t f = {0};
  int64_t files = count("SELECT COUNT(*) FROM files", NULL);
  assert_int_equal(
      atr_file_upload(&dom, &mia, "application/x-tar", "x", 1, &out, &f),
      ATR_EPERM);
  atr_fault_clear(&f);
  assert_int_equal(count("SELECT COUNT(*) FROM files", NULL), files);
}

static void an_upload_of_another_type_is_not_supported(void **state) {
  (void)state;
  atr_actor_t tess = actor(admin_id, "tess", ATR_ROLE_TEMPLATE_ADMIN);
  atr_file_stored_t out;
  atr_fault_t f = {0};
  assert_int_equal(atr_file_upload(&dom, &tess, "text/plain", "x", 1, &out, &f),
                   ATR_ENOTSUP);
  assert_string_equal(f.message, "Unsupported file type.");
  atr_fault_clear(&f);
}

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "postgres") != 0 || argc < 3)) {
    fprintf(stderr, "usage: %s [postgres PGDIR]\n", argv[0]);
    return 2;
  }
  pg_dir = argc > 2 ? argv[2] : NULL;
  atr_log_set_level(ATR_LOG_WARN);
  /* In order: the third reads the template the second made. */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          a_member_cannot_create_a_template_and_nothing_is_written),
      cmocka_unit_test(a_template_admin_creates_a_template_and_it_is_audited),
      cmocka_unit_test(a_member_cannot_delete_or_rename_a_template),
      cmocka_unit_test(a_member_cannot_queue_a_version_import),
      cmocka_unit_test(a_member_cannot_upload_a_file),
      cmocka_unit_test(an_upload_of_another_type_is_not_supported),
  };
  return cmocka_run_group_tests_name(pg_dir ? "templates_domain_postgres"
                                            : "templates_domain",
                                     tests, setup, teardown);
}
