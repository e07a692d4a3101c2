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
#include "db.h"
#include "domain.h"
#include "domain_fixture.h"
#include "files.h"
#include "log.h"
#include "template_versions.h"
#include "templates.h"

static char org_id[37], member_id[37], admin_id[37], org_admin_id[37],
    file_id[37];

/* ---- set-up ------------------------------------------------------------- */

/* acme with a member (mia), a template-admin member (tess), a member who
 * administers acme but holds no site role (oona) and an uploaded
 * archive. */
static int setup(void **state) {
  (void)state;
  if (fixture_open("templates", NULL) != 0)
    return -1;
  dom.file_max_size = 1024 * 1024;
  dom.file_max_unpacked = 1024 * 1024;
  dom.file_max_entries = 100;
  add_org(org_id, "acme", false);
  add_user(member_id, "mia", 0);
  add_member(member_id, org_id, 0);
  add_user(admin_id, "tess", ATR_ROLE_TEMPLATE_ADMIN);
  add_member(admin_id, org_id, 0);
  add_user(org_admin_id, "oona", 0);
  add_member(org_admin_id, org_id, ATR_ROLE_ORG_ADMIN);
  add_file(file_id, admin_id);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return fixture_close();
}

/* ---- helpers --------------------------------------------------------------- */

/* A version of the organization whose import succeeded, into id. */
static void imported_version(char id[37], const char *name) {
  atr_db_new_uuid(id);
  add_imported_version(&(fixture_version_t){.id = id,
                                            .org_id = org_id,
                                            .name = name,
                                            .provisioner = "docker",
                                            .file_id = file_id,
                                            .created_by = admin_id});
}

static int64_t audit_rows(void) {
  return count_rows("SELECT COUNT(*) FROM audit_logs");
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
  assert_int_equal(count_rows("SELECT COUNT(*) FROM templates"), 0);
  assert_int_equal(
      count_rows_for("SELECT COUNT(*) FROM template_versions WHERE id = "
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
  assert_int_equal(
      count_rows_for("SELECT COUNT(*) FROM template_versions WHERE "
                     "template_id IS NOT NULL AND id = ?",
                     vid),
      1);
  assert_int_equal(audit_rows(), audits + 1);
  assert_int_equal(
      count_rows_for("SELECT COUNT(*) FROM audit_logs WHERE "
                     "resource_id = ? AND action = 'create' AND "
                     "resource_type = 'template' AND status_code = 201 "
                     "AND resource_target = 'dev-box'",
                     tid),
      1);
  assert_int_equal(
      count_rows_for("SELECT COUNT(*) FROM audit_logs WHERE user_id = ? "
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
  assert_int_equal(
      count_rows_for("SELECT COUNT(*) FROM templates WHERE id = ? AND "
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
  int64_t jobs = count_rows("SELECT COUNT(*) FROM provisioner_jobs");
  int64_t audits = audit_rows();
  assert_int_equal(atr_template_version_create(&dom, &mia, &in, &out, &f),
                   ATR_EPERM);
  atr_fault_clear(&f);
  assert_null(out);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM provisioner_jobs"), jobs);
  assert_int_equal(audit_rows(), audits);
}

static void a_member_cannot_upload_a_file(void **state) {
  (void)state;
  atr_actor_t mia = actor(member_id, "mia", 0);
  atr_file_stored_t out;
  atr_fault_t f = {0};
  int64_t files = count_rows("SELECT COUNT(*) FROM files");
  assert_int_equal(
      atr_file_upload(&dom, &mia, "application/x-tar", "x", 1, &out, &f),
      ATR_EPERM);
  atr_fault_clear(&f);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM files"), files);
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

/* The organization's own roles count, read from its membership. */
static void an_organization_admin_creates_a_template_there(void **state) {
  (void)state;
  char vid[37];
  imported_version(vid, "v-org-admin");
  atr_actor_t oona = actor(org_admin_id, "oona", 0);
  atr_template_new_t in = {
      .organization_id = org_id, .name = "org-box", .version_id = vid};
  atr_fault_t f = {0};
  json_t *out = NULL;
  int64_t audits = audit_rows();
  assert_int_equal(atr_template_create(&dom, &oona, &in, &out, &f), 0);
  assert_string_equal(json_string_value(json_object_get(out, "name")),
                      "org-box");
  assert_int_equal(audit_rows(), audits + 1);
  json_decref(out);
}

int main(int argc, char **argv) {
  if (fixture_args(argc, argv) != 0)
    return 2;
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
      cmocka_unit_test(an_organization_admin_creates_a_template_there),
  };
  return cmocka_run_group_tests_name(pg_dir ? "templates_domain_postgres"
                                            : "templates_domain",
                                     tests, setup, teardown);
}
