/* tests/unit/audit_fixture.c — the audit log test's store, requests and
 * row readers (audit_fixture.h). */
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

const char *pg_dir;
char tmpdir[] = "/tmp/atrium-audit-XXXXXX";
atr_loader_t loader;
atr_store_t store;
atr_api_env_t env;
char alice_id[37], bob_id[37];

/* ---- set-up ------------------------------------------------------------- */

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

int64_t count_rows(const char *sql) {
  atr_db_t db;
  char *err = NULL;
  int64_t n = -1;
  must(atr_db_open(&store, &db, &err), &err);
  int rc = atr_db_query_int(&db, sql, NULL, 0, &n, &err);
  atr_db_close(&db);
  must(rc, &err);
  return n;
}

char *read_text(const char *path) {
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

char *config_yaml(void) {
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

void add_user(char id[37], const char *username) {
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
}

int setup(void **state) {
  (void)state;
  if (!mkdtemp(tmpdir))
    return -1;
  atr_host_set_data_dir(tmpdir);
  char *yaml = config_yaml();
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  const char *dir = ATR_TEST_PLUGIN_DIR;
  if (!yaml || atr_conf_parse("audit.yaml", yaml, strlen(yaml), &root, &err) ||
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
  env = (atr_api_env_t){.dom = {.store = &store, .loader = &loader}};
  add_user(alice_id, "alice");
  add_user(bob_id, "bob");
  return 0;
}

int teardown(void **state) {
  (void)state;
  atr_loader_shutdown(&loader);
  atr_host_set_data_dir(NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Each test starts from an empty log. */
int empty_log(void **state) {
  (void)state;
  exec_ok("DELETE FROM audit_logs", NULL, 0);
  return 0;
}

/* ---- helpers --------------------------------------------------------------- */

/* A request as the router hands it over, without an HTTP exchange. */
atr_api_req_t request(const char *query) {
  return (atr_api_req_t){.env = &env,
                         .method = "GET",
                         .path = "/api/v2/audit",
                         .query = query,
                         .request_id = REQUEST_ID,
                         .remote_ip = "192.0.2.7",
                         .user_agent = "atrium-test/1.0"};
}

/* Record as the domain does for the request's actor. */
void record(const atr_api_req_t *r, const atr_audit_entry_t *e) {
  atr_actor_t a = r->signed_in ? r->actor : (atr_actor_t){0};
  a.ip = r->remote_ip;
  a.user_agent = r->user_agent;
  a.request_id = r->request_id;
  a.org_id = r->org_id[0] ? r->org_id : NULL;
  atr_audit_record(env.dom.store, &a, e);
}

atr_api_req_t signed_in_as(const char *user_id, const char *username) {
  atr_api_req_t r = request(NULL);
  r.signed_in = true;
  snprintf(r.actor.user_id, sizeof r.actor.user_id, "%s", user_id);
  snprintf(r.actor.username, sizeof r.actor.username, "%s", username);
  return r;
}

void text_col(json_t *row, const char *name, atr_db_t *db, atr_db_rows_t *rows,
              size_t col) {
  const char *s = atr_db_get_text(db, rows, col);
  json_object_set_new(row, name, s ? json_string(s) : json_null());
}

/* The stored row whose resource_target is `target`, column by column. */
json_t *stored_row(const char *target) {
  static const char *const names[] = {
      "id",         "user_id",       "organization_id",   "ip",
      "user_agent", "resource_type", "resource_id",       "resource_target",
      "action",     "diff",          "additional_fields", "request_id"};
  atr_db_t db;
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  atr_value_t p[] = {atr_v_text(target)};
  must(atr_db_open(&store, &db, &err), &err);
  must(atr_db_query(&db,
                    "SELECT id, user_id, organization_id, ip, user_agent, "
                    "resource_type, resource_id, resource_target, action, "
                    "diff, additional_fields, request_id, time, status_code "
                    "FROM audit_logs WHERE resource_target = ?",
                    p, 1, &rows, &err),
       &err);
  json_t *row = NULL;
  if (atr_db_next(&db, rows, &err) == 1) {
    row = json_object();
    for (size_t i = 0; i < 12; i++)
      text_col(row, names[i], &db, rows, i);
    json_object_set_new(row, "time",
                        json_integer(atr_db_get_time(&db, rows, 12)));
    json_object_set_new(row, "status_code",
                        json_integer(atr_db_get_int(&db, rows, 13)));
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  free(err);
  if (!row)
    fail_msg("no audit_logs row with resource_target %s", target);
  return row;
}

/* Every text the table holds, one line per row. */
char *table_text(void) {
  atr_db_t db;
  atr_db_rows_t *rows = NULL;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  must(atr_db_query(&db,
                    "SELECT id, user_id, organization_id, ip, user_agent, "
                    "resource_type, resource_id, resource_target, "
                    "resource_icon, action, diff, additional_fields, "
                    "request_id FROM audit_logs",
                    NULL, 0, &rows, &err),
       &err);
  char *all = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&all, &len);
  while (atr_db_next(&db, rows, &err) == 1) {
    for (size_t i = 0; i < 13; i++) {
      const char *s = atr_db_get_text(&db, rows, i);
      fprintf(out, "%s|", s ? s : "NULL");
    }
    fputc('\n', out);
  }
  fclose(out);
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  free(err);
  return all;
}

void assert_json_equal(json_t *got, const char *want_text) {
  json_error_t jerr;
  json_t *want = json_loads(want_text, 0, &jerr);
  if (!want)
    fail_msg("bad expected JSON: %s", jerr.text);
  if (!json_equal(got, want)) {
    char *g = json_dumps(got, JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_SORT_KEYS);
    fail_msg("got  %s\nwant %s", g, w);
  }
  json_decref(want);
}

void assert_row(const char *target, const char *want) {
  json_t *row = stored_row(target);
  json_t *id = json_object_get(row, "id");
  assert_int_equal(strlen(json_string_value(id)), 36);
  assert_string_not_equal(json_string_value(id), NIL_UUID);
  json_object_del(row, "id");
  json_int_t age =
      atr_db_now_us() - json_integer_value(json_object_get(row, "time"));
  assert_true(age >= 0 && age < 60 * INT64_C(1000000));
  json_object_del(row, "time");
  assert_json_equal(row, want);
  json_decref(row);
}

/* Log lines written while fn runs. */
char *logged_during(void (*fn)(void)) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  atr_log_set_stream(f);
  fn();
  atr_log_set_stream(NULL);
  fclose(f);
  return text;
}
