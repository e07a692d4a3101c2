/* tests/unit/domain_fixture.c — the domain unit tests' store, SQL helpers,
 * people and actors (domain_fixture.h). */
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
#include "domain_fixture.h"
#include "loader.h"
#include "migrate.h"
#include "rbac.h"
#include "workspaces.h"

const char *pg_dir;
char tmpdir[96];
atr_loader_t loader;
atr_store_t store;
atr_domain_t dom;

int fixture_args(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "postgres") != 0 || argc < 3)) {
    fprintf(stderr, "usage: %s [postgres PGDIR]\n", argv[0]);
    return 2;
  }
  pg_dir = argc > 2 ? argv[2] : NULL;
  return 0;
}

/* ---- the store ----------------------------------------------------------- */

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

static char *config_yaml(const char *plugins_yaml) {
  const char *more = plugins_yaml ? plugins_yaml : "";
  char *yaml = NULL;
  if (pg_dir) {
    char path[512];
    snprintf(path, sizeof path, "%s/dsn", pg_dir);
    char *dsn = read_text(path);
    if (dsn && asprintf(&yaml,
                        "plugins:\n  storage_postgres:\n    enabled: true\n"
                        "    dsn: \"%s\"\n%s",
                        dsn, more) < 0)
      yaml = NULL;
    free(dsn);
  } else if (asprintf(&yaml,
                      "plugins:\n  storage_sqlite:\n    enabled: "
                      "true\n    pool_size: 4\n%s",
                      more) < 0) {
    yaml = NULL;
  }
  return yaml;
}

static int load_store(const char *name, const char *plugins_yaml, char **err) {
  char *yaml = config_yaml(plugins_yaml);
  char file[80];
  snprintf(file, sizeof file, "%s.yaml", name);
  atr_conf_node_t *root = NULL;
  const char *dir = ATR_TEST_PLUGIN_DIR;
  int rc =
      !yaml || atr_conf_parse(file, yaml, strlen(yaml), &root, err) ||
              atr_loader_init(&loader, &dir, 1, err) ||
              atr_loader_load_config(&loader, root, NULL, NULL, true, err) ||
              atr_store_find(&loader, &store, err)
          ? -1
          : 0;
  free(yaml);
  atr_conf_free(root);
  return rc;
}

/* An empty public schema, so each run on the shared cluster starts from
 * nothing. */
static int reset_postgres(char **err) {
  atr_db_t db;
  if (atr_db_open(&store, &db, err))
    return -1;
  int rc = atr_db_exec_script(
      &db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;", err);
  atr_db_close(&db);
  return rc;
}

int fixture_open(const char *name, const char *plugins_yaml) {
  snprintf(tmpdir, sizeof tmpdir, "/tmp/atrium-%s-XXXXXX", name);
  if (!mkdtemp(tmpdir))
    return -1;
  atr_host_set_data_dir(tmpdir);
  char *err = NULL;
  if (load_store(name, plugins_yaml, &err) ||
      (pg_dir && reset_postgres(&err)) ||
      atr_migrate_up(&store, atr_migrations, atr_nmigrations, NULL, &err)) {
    fprintf(stderr, "setup: %s\n", err ? err : "no config");
    free(err);
    return -1;
  }
  dom = (atr_domain_t){.store = &store, .loader = &loader};
  return 0;
}

int fixture_close(void) {
  atr_loader_shutdown(&loader);
  atr_host_set_data_dir(NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- SQL ----------------------------------------------------------------- */

void must(int rc, char **err) {
  if (rc != 0)
    fail_msg("%s (%s)", *err ? *err : "no message", atr_err_name(rc));
  free(*err);
  *err = NULL;
}

void exec_ok(const char *sql, const atr_value_t *p, size_t n) {
  atr_db_t db;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  int rc = atr_db_exec(&db, sql, p, n, NULL, &err);
  atr_db_close(&db);
  must(rc, &err);
}

int64_t count_rows_for(const char *sql, const char *arg) {
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

int64_t count_rows(const char *sql) {
  return count_rows_for(sql, NULL);
}

int empty_log(void **state) {
  (void)state;
  exec_ok("DELETE FROM audit_logs", NULL, 0);
  return 0;
}

/* ---- people -------------------------------------------------------------- */

void add_org(char id[37], const char *name, bool is_default) {
  atr_db_new_uuid(id);
  int64_t now = atr_db_now_us();
  atr_value_t o[] = {atr_v_text(id), atr_v_text(name), atr_v_time(now),
                     atr_v_time(now), atr_v_bool(is_default)};
  exec_ok("INSERT INTO organizations (id, name, created_at, updated_at, "
          "is_default) VALUES (?, ?, ?, ?, ?)",
          o, 5);
}

/* One row per role bit in roles but skip, into table. */
static void add_roles(const char *sql, const char *user_id, const char *org_id,
                      uint32_t roles, uint32_t skip) {
  for (uint32_t bit = 1; bit != 0 && bit <= roles; bit <<= 1) {
    if (!(roles & bit) || (bit & skip))
      continue;
    atr_value_t p[] = {atr_v_text(user_id), atr_v_text(atr_role_name(bit)),
                       atr_v_text(org_id)};
    exec_ok(sql, p, org_id ? 3 : 2);
  }
}

void add_user(char id[37], const char *username, uint32_t site_roles) {
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
  add_roles("INSERT INTO user_roles (user_id, role) VALUES (?, ?)", id, NULL,
            site_roles, ATR_ROLE_MEMBER);
}

void add_member(const char *user_id, const char *org_id, uint32_t org_roles) {
  int64_t now = atr_db_now_us();
  atr_value_t m[] = {atr_v_text(user_id), atr_v_text(org_id), atr_v_time(now),
                     atr_v_time(now)};
  exec_ok("INSERT INTO organization_members (user_id, organization_id, "
          "created_at, updated_at) VALUES (?, ?, ?, ?)",
          m, 4);
  add_roles("INSERT INTO organization_member_roles (user_id, role, "
            "organization_id) VALUES (?, ?, ?)",
            user_id, org_id, org_roles, ATR_ROLE_ORG_MEMBER);
}

void add_file(char id[37], const char *created_by) {
  atr_db_new_uuid(id);
  int64_t now = atr_db_now_us();
  atr_value_t f[] = {atr_v_text(id), atr_v_time(now), atr_v_text(created_by),
                     atr_v_blob("tar", 3)};
  exec_ok("INSERT INTO files (id, hash, created_at, created_by, mimetype, "
          "data) VALUES (?, 'abc', ?, ?, 'application/x-tar', ?)",
          f, 4);
}

void add_imported_version(const fixture_version_t *v) {
  char job_id[37];
  atr_db_new_uuid(job_id);
  int64_t now = atr_db_now_us();
  atr_value_t j[] = {atr_v_text(job_id),        atr_v_time(now),
                     atr_v_time(now),           atr_v_time(now),
                     atr_v_time(now),           atr_v_text(v->org_id),
                     atr_v_text(v->created_by), atr_v_text(v->provisioner),
                     atr_v_text(v->file_id)};
  exec_ok("INSERT INTO provisioner_jobs (id, created_at, updated_at, "
          "started_at, completed_at, organization_id, initiator_id, "
          "provisioner, type, file_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
          "'template_version_import', ?)",
          j, 9);
  atr_value_t t[] = {atr_v_text(v->id),     atr_v_text(v->template_id),
                     atr_v_text(v->org_id), atr_v_time(now),
                     atr_v_time(now),       atr_v_text(v->name),
                     atr_v_text(job_id),    atr_v_text(v->created_by)};
  exec_ok("INSERT INTO template_versions (id, template_id, organization_id, "
          "created_at, updated_at, name, job_id, created_by) VALUES (?, ?, "
          "?, ?, ?, ?, ?, ?)",
          t, 8);
}

void add_template(char template_id[37], char version_id[37], const char *org_id,
                  const char *file_id, const char *created_by) {
  atr_db_new_uuid(version_id);
  atr_db_new_uuid(template_id);
  int64_t now = atr_db_now_us();
  atr_value_t t[] = {atr_v_text(template_id), atr_v_time(now),
                     atr_v_time(now),         atr_v_text(org_id),
                     atr_v_text(version_id),  atr_v_text(created_by)};
  exec_ok("INSERT INTO templates (id, created_at, updated_at, "
          "organization_id, name, provisioner, active_version_id, "
          "created_by) VALUES (?, ?, ?, ?, 'dev', 'echo', ?, ?)",
          t, 6);
  add_imported_version(&(fixture_version_t){.id = version_id,
                                            .org_id = org_id,
                                            .template_id = template_id,
                                            .name = "v1",
                                            .provisioner = "echo",
                                            .file_id = file_id,
                                            .created_by = created_by});
}

json_t *add_build(char workspace_id[37], const char *template_id,
                  const char *transition) {
  atr_actor_t sched = atr_actor_system("scheduler");
  atr_fault_t fault = {0};
  json_t *b = NULL;
  if (!*workspace_id) {
    atr_workspace_new_t in = {
        .owner = "alice", .name = "dev1", .template_id = template_id};
    json_t *w = NULL;
    assert_int_equal(atr_workspace_create(&dom, &sched, &in, &w, &fault), 0);
    snprintf(workspace_id, 37, "%s", str(w, "id"));
    b = json_incref(json_object_get(w, "latest_build"));
    json_decref(w);
  } else {
    atr_build_new_t in = {.workspace_id = workspace_id,
                          .transition = transition};
    int rc = atr_build_create(&dom, &sched, &in, &b, &fault);
    if (rc != 0)
      fail_msg("build: %s", fault.message ? fault.message : "");
  }
  return b;
}

void end_build_jobs(void) {
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now)};
  exec_ok("UPDATE provisioner_jobs SET started_at = ?, completed_at = ? "
          "WHERE type = 'workspace_build' AND completed_at IS NULL",
          p, 2);
}

const char *str(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}

atr_actor_t actor(const char *user_id, const char *username, uint32_t roles) {
  atr_actor_t a = {.roles = ATR_ROLE_MEMBER | roles,
                   .ip = FIXTURE_IP,
                   .user_agent = FIXTURE_USER_AGENT,
                   .request_id = FIXTURE_REQUEST_ID};
  snprintf(a.user_id, sizeof a.user_id, "%s", user_id);
  snprintf(a.username, sizeof a.username, "%s", username);
  return a;
}
