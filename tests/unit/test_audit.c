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
 * need one, and the handler's answers then only set r->status. */
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
#include "audit_query.h"
#include "conf.h"
#include "db.h"
#include "loader.h"
#include "log.h"
#include "migrate.h"

#define REQUEST_ID "5f0c1e2d-3b4a-4c5d-8e6f-708192a3b4c5"
#define ORG_ID "0a1b2c3d-4e5f-4061-8728-394a5b6c7d8e"
#define NIL_UUID "00000000-0000-0000-0000-000000000000"
#define CANARY "canary-Zq8Xv2Lm"
/* 2026-01-01T00:00:00Z */
#define T0 INT64_C(1767225600000000)
#define HOUR INT64_C(3600000000)

static const char *pg_dir;
static char tmpdir[] = "/tmp/atrium-audit-XXXXXX";
static atr_loader_t loader;
static atr_store_t store;
static atr_api_env_t env;
static char alice_id[37], bob_id[37];

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

static int64_t count_rows(const char *sql) {
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

static int teardown(void **state) {
  (void)state;
  atr_loader_shutdown(&loader);
  atr_host_set_data_dir(NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* Each test starts from an empty log. */
static int empty_log(void **state) {
  (void)state;
  exec_ok("DELETE FROM audit_logs", NULL, 0);
  return 0;
}

/* ---- helpers --------------------------------------------------------------- */

/* A request as the router hands it over, without an HTTP exchange. */
static atr_api_req_t request(const char *query) {
  return (atr_api_req_t){.env = &env,
                         .method = "GET",
                         .path = "/api/v2/audit",
                         .query = query,
                         .request_id = REQUEST_ID,
                         .remote_ip = "192.0.2.7",
                         .user_agent = "atrium-test/1.0"};
}

/* Record as the domain does for the request's actor. */
static void record(const atr_api_req_t *r, const atr_audit_entry_t *e) {
  atr_actor_t a = r->signed_in ? r->actor : (atr_actor_t){0};
  a.ip = r->remote_ip;
  a.user_agent = r->user_agent;
  a.request_id = r->request_id;
  a.org_id = r->org_id[0] ? r->org_id : NULL;
  atr_audit_record(env.dom.store, &a, e);
}

static atr_api_req_t signed_in_as(const char *user_id, const char *username) {
  atr_api_req_t r = request(NULL);
  r.signed_in = true;
  snprintf(r.actor.user_id, sizeof r.actor.user_id, "%s", user_id);
  snprintf(r.actor.username, sizeof r.actor.username, "%s", username);
  return r;
}

static void text_col(json_t *row, const char *name, atr_db_t *db,
                     atr_db_rows_t *rows, size_t col) {
  const char *s = atr_db_get_text(db, rows, col);
  json_object_set_new(row, name, s ? json_string(s) : json_null());
}

/* The stored row whose resource_target is `target`, column by column. */
static json_t *stored_row(const char *target) {
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
static char *table_text(void) {
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

static void assert_json_equal(json_t *got, const char *want_text) {
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

static void assert_row(const char *target, const char *want) {
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
static char *logged_during(void (*fn)(void)) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  atr_log_set_stream(f);
  fn();
  atr_log_set_stream(NULL);
  fclose(f);
  return text;
}

/* ---- recording -------------------------------------------------------------- */

static void a_record_is_one_row_with_the_requests_context(void **state) {
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

static void a_login_is_recorded_for_the_user_it_names(void **state) {
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

static void ids_that_are_not_uuids_go_to_additional_fields(void **state) {
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

static void a_request_without_context_still_records(void **state) {
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

static void secrets_never_reach_the_table(void **state) {
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

static void diff_add_builds_the_documented_shape(void **state) {
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

static void a_storage_error_is_logged_and_the_request_goes_on(void **state) {
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
  atr_actor_t auditor = {.username = "auditor",
                         .roles = ATR_ROLE_MEMBER | ATR_ROLE_AUDITOR};
  snprintf(auditor.user_id, sizeof auditor.user_id, "%s", alice_id);
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

static void filters_find_exactly_the_matching_entries(void **state) {
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

static void limit_and_offset_page_while_count_counts_all(void **state) {
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

static void entries_read_back_in_the_api_shape(void **state) {
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

static void a_bad_filter_is_refused_naming_the_parameter(void **state) {
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

static void times_parse_as_rfc_3339(void **state) {
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

static void the_handler_answers_200_or_400(void **state) {
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
static void reading_the_log_needs_a_role_that_may(void **state) {
  (void)state;
  seed_log();
  atr_audit_filter_t f = parsed(NULL);
  atr_actor_t member = {.username = "bob", .roles = ATR_ROLE_MEMBER};
  snprintf(member.user_id, sizeof member.user_id, "%s", bob_id);
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

int main(int argc, char **argv) {
  if (argc > 1 && (strcmp(argv[1], "postgres") != 0 || argc < 3)) {
    fprintf(stderr, "usage: %s [postgres PGDIR]\n", argv[0]);
    return 2;
  }
  pg_dir = argc > 2 ? argv[2] : NULL;
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
