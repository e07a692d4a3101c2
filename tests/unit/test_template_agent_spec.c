/* A template version keeps its template.yaml's agent as the agent spec
 * JSON (template_versions.agent_spec) from the moment it is made: a
 * template-admin's new version from an archive whose template.yaml
 * declares `agent:` stores exactly the spec atr_manifest_parse gives; an
 * archive without an agent, or with a template.yaml that does not parse
 * (its import fails and says why), stores none.
 *
 *   test_template_agent_spec                   a fresh SQLite file
 *   test_template_agent_spec postgres PGDIR    the throwaway cluster
 *
 * Real storage plugin and the echo provisioner, loaded by the real loader,
 * migrated schema. */
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
#include "log.h"
#include "manifest.h"
#include "template_versions.h"

static char org_id[37], admin_id[37];

static const char agent_yaml[] =
    "name: t\n"
    "provisioner: echo\n"
    "agent:\n"
    "  startup_script: |\n"
    "    echo up\n"
    "  metadata:\n"
    "    - { key: load, script: cat /proc/loadavg, interval: 10s }\n";

static int setup(void **state) {
  (void)state;
  if (fixture_open("agentspec", "  provisioner_echo:\n    enabled: true\n") !=
      0)
    return -1;
  dom.file_max_size = 1024 * 1024;
  dom.file_max_unpacked = 1024 * 1024;
  dom.file_max_entries = 100;
  add_org(org_id, "acme", false);
  add_user(admin_id, "tess", ATR_ROLE_TEMPLATE_ADMIN);
  add_member(admin_id, org_id, 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return fixture_close();
}

/* A ustar archive holding template.yaml with text (malloc'd, *len). */
static unsigned char *tar_of(const char *text, size_t *len) {
  size_t n = strlen(text), data = (n + 511) / 512 * 512;
  *len = 512 + data + 1024;
  unsigned char *t = calloc(1, *len);
  char *h = (char *)t;
  snprintf(h, 100, "template.yaml");
  snprintf(h + 100, 8, "0000644");
  snprintf(h + 108, 8, "0000000");
  snprintf(h + 116, 8, "0000000");
  snprintf(h + 124, 12, "%011o", (unsigned)n);
  snprintf(h + 136, 12, "%011o", 0u);
  memset(h + 148, ' ', 8);
  h[156] = '0';
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  unsigned sum = 0;
  for (size_t i = 0; i < 512; i++)
    sum += t[i];
  snprintf(h + 148, 8, "%06o", sum);
  memcpy(t + 512, text, n);
  return t;
}

static void file_of(char id[37], const char *yaml) {
  size_t len = 0;
  unsigned char *tar = tar_of(yaml, &len);
  atr_db_new_uuid(id);
  /* Its id as its hash: each archive here is another file. */
  atr_value_t f[] = {atr_v_text(id), atr_v_text(id),
                     atr_v_time(atr_db_now_us()), atr_v_text(admin_id),
                     atr_v_blob(tar, len)};
  exec_ok("INSERT INTO files (id, hash, created_at, created_by, mimetype, "
          "data) VALUES (?, ?, ?, ?, 'application/x-tar', ?)",
          f, 5);
  free(tar);
}

/* The agent_spec of a new version made from an archive with yaml (NULL
 * when none is stored). */
static char *spec_of_new_version(const char *yaml) {
  char file[37];
  file_of(file, yaml);
  atr_actor_t tess = actor(admin_id, "tess", ATR_ROLE_TEMPLATE_ADMIN);
  atr_template_version_new_t in = {.organization_id = org_id, .file_id = file};
  atr_fault_t f = {0};
  json_t *out = NULL;
  int rc = atr_template_version_create(&dom, &tess, &in, &out, &f);
  if (rc != 0) {
    char *v = f.validations ? json_dumps(f.validations, 0) : NULL;
    fail_msg("create: %s %s", f.message ? f.message : atr_strerror(rc),
             v ? v : "");
  }
  atr_fault_clear(&f);
  atr_db_t db;
  char *err = NULL, *spec = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  atr_value_t p[] = {atr_v_text(json_string_value(json_object_get(out, "id")))};
  must(atr_db_query_text(&db,
                         "SELECT COALESCE(agent_spec, '') FROM "
                         "template_versions WHERE id = ?",
                         p, 1, &spec, &err),
       &err);
  atr_db_close(&db);
  json_decref(out);
  if (spec != NULL && *spec == '\0') {
    free(spec);
    spec = NULL;
  }
  return spec;
}

static void a_new_version_keeps_its_agent_spec(void **state) {
  (void)state;
  char *spec = spec_of_new_version(agent_yaml);
  assert_non_null(spec);
  atr_manifest_t m;
  json_t *errors = NULL;
  assert_int_equal(atr_manifest_parse("template.yaml", agent_yaml,
                                      strlen(agent_yaml), &m, &errors),
                   0);
  json_t *got = json_loads(spec, 0, NULL),
         *want = json_loads(m.agent_spec, 0, NULL);
  assert_true(json_equal(got, want));
  assert_string_equal(json_string_value(json_object_get(got, "startup_script")),
                      "echo up\n");
  json_decref(got);
  json_decref(want);
  atr_manifest_free(&m);
  free(spec);
}

static void a_version_without_a_valid_agent_keeps_none(void **state) {
  (void)state;
  assert_null(spec_of_new_version("name: t\nprovisioner: echo\n"));
  /* The import reports this one; nothing half-checked is kept. */
  assert_null(spec_of_new_version("name: t\nprovisioner: echo\n"
                                  "agent: { arch: sparc }\n"));
}

int main(int argc, char **argv) {
  if (fixture_args(argc, argv) != 0)
    return 2;
  atr_log_set_level(ATR_LOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_new_version_keeps_its_agent_spec),
      cmocka_unit_test(a_version_without_a_valid_agent_keeps_none),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
