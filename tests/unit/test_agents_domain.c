/* Workspace agents through the domain, without HTTP (core/domain/agents*.c):
 * a token made for a start build authenticates as an agent actor until a
 * later build or a delete revokes it; a log batch sent again stores each
 * line once; the lifecycle only moves forward; a sensitive value and an
 * agent token never reach the stored log; an agent actor is refused by the
 * users' functions and a user by the agent's.
 *
 *   test_agents_domain                 a fresh SQLite file in a temp dir
 *   test_agents_domain postgres PGDIR  the throwaway cluster of PGDIR/dsn
 *
 * The workspace and its builds are made through the domain; the job
 * runner's part (rows at completion) is called as the runner calls it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agents.h"
#include "atrium/error.h"
#include "audit_query.h"
#include "builds.h"
#include "dbcrypt.h"
#include "domain_fixture.h"
#include "events.h"
#include "keys.h"
#include "orgs.h"
#include "templates.h"
#include "users.h"
#include "workspaces.h"

#define SECRET_VALUE "hunter2-is-the-password"
#define SPEC                                                                   \
  "{\"name\":\"main\",\"arch\":\"amd64\",\"directory\":\"/home/dev\","         \
  "\"env\":{\"EDITOR\":\"vi\"},\"connection_timeout_s\":120,"                  \
  "\"startup_script\":\"echo hi\",\"startup_script_behavior\":\"blocking\","   \
  "\"startup_script_timeout_s\":300,\"shutdown_script\":\"echo bye\","         \
  "\"shutdown_script_timeout_s\":300,\"motd_file\":\"\","                      \
  "\"troubleshooting_url\":\"\",\"metadata\":[{\"key\":\"load\","              \
  "\"display_name\":\"Load\",\"script\":\"cat /proc/loadavg\","                \
  "\"interval_s\":10,\"timeout_s\":1}],\"apps\":[{\"slug\":\"code-server\","   \
  "\"display_name\":\"code-server\",\"url\":\"http://localhost:13337/\","      \
  "\"icon\":\"\",\"share\":\"owner\",\"subdomain\":false,\"healthcheck\":{"    \
  "\"url\":\"http://localhost:13337/healthz\",\"interval_s\":5,"               \
  "\"threshold\":6}}]}"

static char org_id[37], alice_id[37], bob_id[37], version_id[37],
    template_id[37], workspace_id[37];
/* The token of the live agent (the latest start build's). */
static char token[ATR_AGENT_TOKEN_LEN + 1];

/* ---- set-up ------------------------------------------------------------- */

static void seed_template(void) {
  char file_id[37];
  add_file(file_id, alice_id);
  add_template(template_id, version_id, org_id, file_id, alice_id);
  atr_value_t p[] = {atr_v_text(SPEC), atr_v_text(version_id)};
  exec_ok("UPDATE template_versions SET agent_spec = ? WHERE id = ?", p, 2);
  exec_ok("INSERT INTO template_version_parameters (template_version_id, "
          "name, type, mutable, default_value, required, sensitive) VALUES "
          "(?, 'password', 'string', TRUE, '" SECRET_VALUE "', FALSE, TRUE)",
          &p[1], 1);
}

static int setup(void **state) {
  (void)state;
  if (fixture_open("agents", NULL) != 0)
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

typedef struct made {
  const char *build_id, *job_id;
  char digest[37];
} made_t;

/* What the job runner does when a start build succeeds: a resource, the
 * agent on it. */
static int make_tx(atr_db_t *db, void *ud, char **err) {
  made_t *m = ud;
  char res[37];
  atr_db_new_uuid(res);
  atr_value_t p[] = {atr_v_text(res), atr_v_time(atr_db_now_us()),
                     atr_v_text(m->job_id)};
  int rc = atr_db_exec(db,
                       "INSERT INTO workspace_resources (id, created_at, "
                       "job_id, transition, type, name) VALUES (?, ?, ?, "
                       "'start', 'echo_instance', 'dev')",
                       p, 3, NULL, err);
  if (rc == 0)
    rc = atr_agents_make_for_build(db, workspace_id, m->build_id, res, SPEC,
                                   m->digest, err);
  return rc;
}

/* A start build of the workspace (the first one: workspace_id is made),
 * ended with an agent whose token goes into token. */
static void start_build_with_agent(void) {
  json_t *b = add_build(workspace_id, template_id, "start");
  made_t m = {.build_id = str(b, "id"),
              .job_id = str(json_object_get(b, "job"), "id")};
  atr_agent_token_new(token);
  atr_dbcrypt_token_digest(token, m.digest);
  char *err = NULL;
  must(atr_db_tx(&store, ATR_TX_WRITE, make_tx, &m, &err), &err);
  end_build_jobs();
  json_decref(b);
}

static atr_actor_t agent_actor(void) {
  atr_actor_t a;
  atr_fault_t fault = {0};
  int rc = atr_agent_authenticate(&dom, token, &a, &fault);
  if (rc != 0)
    fail_msg("authenticate: %s", fault.message ? fault.message : "");
  return a;
}

static void refused(const char *t) {
  atr_actor_t a;
  atr_fault_t fault = {0};
  assert_int_equal(atr_agent_authenticate(&dom, t, &a, &fault), ATR_EACCES);
  assert_string_equal(fault.message, "Agent token is not valid.");
  assert_false(a.agent);
  atr_fault_clear(&fault);
}

static char *source_named(const atr_actor_t *a, const char *name) {
  atr_db_t db;
  char *err = NULL, *id = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  atr_value_t p[] = {atr_v_text(a->agent_id), atr_v_text(name)};
  must(atr_db_query_text(&db,
                         "SELECT id FROM workspace_agent_log_sources WHERE "
                         "agent_id = ? AND display_name = ?",
                         p, 2, &id, &err),
       &err);
  atr_db_close(&db);
  return id;
}

/* ---- tests ----------------------------------------------------------------- */

static void the_status_follows_coders_rules(void **s) {
  (void)s;
  const int64_t S = 1000000, now = 1000 * S;
  struct {
    atr_agent_times_t t;
    const char *want;
  } rows[] = {
      {{now - 10 * S, 0, 0, 0, 120}, "connecting"},
      {{now - 121 * S, 0, 0, 0, 120}, "timeout"},
      {{now - 900 * S, 0, 0, 0, 0}, "connecting"}, /* 0: no timeout */
      {{now - 900 * S, now - 60 * S, now - 10 * S, 0, 120}, "connected"},
      {{now - 900 * S, now - 60 * S, now - 10 * S, now - 5 * S, 120},
       "disconnected"},
      {{now - 900 * S, now - 60 * S, now - 10 * S, now - 20 * S, 120},
       "connected"}, /* reconnected since */
      {{now - 900 * S, now - 600 * S, now - 181 * S, 0, 120}, "disconnected"},
      {{now - 900 * S, now - 600 * S, now - 179 * S, 0, 120}, "connected"},
  };
  for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
    assert_string_equal(atr_agent_status(&rows[i].t, now), rows[i].want);
  assert_string_equal(atr_agent_lifecycle_name(ATR_LIFECYCLE_OFF), "off");
  assert_null(atr_agent_lifecycle_name((atr_agent_lifecycle_t)9));
  assert_int_equal(atr_agent_lifecycle_parse("start_error"),
                   ATR_LIFECYCLE_START_ERROR);
  assert_int_equal(atr_agent_lifecycle_parse("nope"), -1);
}

static void a_token_is_atragt_and_43_base64url_characters(void **s) {
  (void)s;
  char a[ATR_AGENT_TOKEN_LEN + 1], b[ATR_AGENT_TOKEN_LEN + 1];
  atr_agent_token_new(a);
  atr_agent_token_new(b);
  assert_int_equal(strlen(a), 50);
  assert_memory_equal(a, "atragt_", 7);
  assert_int_equal(strspn(a + 7, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
                                 "rstuvwxyz0123456789-_"),
                   43);
  assert_string_not_equal(a, b);
}

static void a_start_builds_token_authenticates_as_its_agent(void **s) {
  (void)s;
  start_build_with_agent();
  atr_actor_t a = agent_actor();
  assert_true(a.agent);
  assert_false(atr_actor_is_user(&a));
  assert_false(a.system);
  assert_int_equal(a.roles, 0);
  assert_string_equal(a.workspace_id, workspace_id);
  assert_true(atr_uuid_valid(a.agent_id));
  assert_true(atr_uuid_valid(a.build_id));
  /* Only the digest is stored. */
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM workspace_agents "
                                  "WHERE CAST(auth_token AS TEXT) = ?",
                                  token),
                   0);
  refused("atragt_short");
  refused("not-a-token");
  char other[ATR_AGENT_TOKEN_LEN + 1];
  atr_agent_token_new(other);
  refused(other);
}

static void the_workspace_json_carries_its_agent(void **s) {
  (void)s;
  atr_actor_t alice = actor(alice_id, "alice", 0);
  atr_fault_t fault = {0};
  json_t *w = NULL;
  assert_int_equal(atr_workspace_get(&dom, &alice, workspace_id, &w, &fault),
                   0);
  json_t *res =
      json_object_get(json_object_get(w, "latest_build"), "resources");
  json_t *ag =
      json_array_get(json_object_get(json_array_get(res, 0), "agents"), 0);
  assert_string_equal(str(ag, "name"), "main");
  assert_string_equal(str(ag, "status"), "connecting");
  assert_string_equal(str(ag, "lifecycle_state"), "created");
  assert_string_equal(str(ag, "startup_script_behavior"), "blocking");
  assert_int_equal(json_array_size(json_object_get(ag, "log_sources")), 3);
  json_t *scripts = json_object_get(ag, "scripts");
  assert_int_equal(json_array_size(scripts), 2);
  assert_null(json_object_get(json_array_get(scripts, 0), "script"));
  json_t *app = json_array_get(json_object_get(ag, "apps"), 0);
  assert_string_equal(str(app, "slug"), "code-server");
  assert_string_equal(str(app, "health"), "initializing");
  json_decref(w);
}

static void the_manifest_has_the_scripts_and_metadata(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  atr_fault_t fault = {0};
  json_t *m = NULL;
  assert_int_equal(atr_agent_manifest(&dom, &a, &m, &fault), 0);
  assert_string_equal(str(m, "agent_name"), "main");
  assert_string_equal(str(m, "owner_name"), "alice");
  assert_string_equal(str(m, "workspace_name"), "dev1");
  assert_string_equal(str(m, "directory"), "/home/dev");
  assert_string_equal(
      str(json_object_get(m, "environment_variables"), "EDITOR"), "vi");
  json_t *md = json_array_get(json_object_get(m, "metadata"), 0);
  assert_string_equal(str(md, "script"), "cat /proc/loadavg");
  assert_int_equal(json_integer_value(json_object_get(md, "interval")), 10);
  json_t *sc = json_object_get(m, "scripts");
  assert_int_equal(json_array_size(sc), 2);
  assert_string_equal(str(json_array_get(sc, 0), "script"), "echo hi");
  assert_true(json_is_true(
      json_object_get(json_array_get(sc, 0), "start_blocks_login")));
  assert_true(json_is_false(json_object_get(m, "shutdown_requested")));
  json_decref(m);
}

static void the_lifecycle_moves_forward_or_starts_again(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  atr_fault_t fault = {0};
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_STARTING, 0, &fault),
      0);
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_STARTING, 0, &fault),
      0); /* the same again: nothing changes */
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_READY, 0, &fault), 0);
  assert_int_equal(atr_agent_lifecycle_report(
                       &dom, &a, ATR_LIFECYCLE_START_ERROR, 0, &fault),
                   ATR_ECONSTRAINT);
  assert_int_equal(atr_fault_status(&fault), 409);
  atr_fault_clear(&fault);
  /* a restarted agent process: off, then a new start that gets ready */
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_OFF, 0, &fault), 0);
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_STARTING, 0, &fault),
      0);
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_READY, 0, &fault), 0);
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM workspace_agents "
                                  "WHERE CAST(id AS TEXT) = ? AND "
                                  "lifecycle_state = 'ready' AND started_at "
                                  "IS NOT NULL AND ready_at IS NOT NULL",
                                  a.agent_id),
                   1);
}

static int64_t append(const atr_actor_t *a, const char *src, int64_t first,
                      int64_t last) {
  atr_agent_log_line_t lines[16];
  char text[16][64];
  size_t n = 0;
  for (int64_t seq = first; seq <= last; seq++, n++) {
    snprintf(text[n], sizeof text[n], "line %lld", (long long)seq);
    lines[n] = (atr_agent_log_line_t){seq, 0, "info", text[n]};
  }
  int64_t acked = -1;
  atr_fault_t fault = {0};
  int rc = atr_agent_logs_append(&dom, a, src, lines, n, &acked, &fault);
  if (rc != 0)
    fail_msg("append: %s %s", fault.message ? fault.message : "",
             fault.detail ? fault.detail : "");
  return acked;
}

static void a_resent_batch_stores_each_line_once(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  char *src = source_named(&a, "Startup Script");
  assert_int_equal(append(&a, src, 1, 3), 3);
  /* Acked, then sent again (the answer was lost): nothing new. */
  assert_int_equal(append(&a, src, 1, 3), 3);
  /* A batch whose commit never happened is sent again with more lines:
   * the new ones are stored, once. */
  assert_int_equal(append(&a, src, 3, 6), 6);
  assert_int_equal(append(&a, src, 4, 6), 6);
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM workspace_agent_logs "
                                  "WHERE CAST(agent_id AS TEXT) = ?",
                                  a.agent_id),
                   6);
  /* Users read ids 1..6 in order, no gap. */
  atr_actor_t alice = actor(alice_id, "alice", 0);
  atr_fault_t fault = {0};
  json_t *logs = NULL;
  bool final = true;
  assert_int_equal(
      atr_agent_logs(&dom, &alice, a.agent_id, 0, 0, &logs, &final, &fault), 0);
  assert_false(final);
  assert_int_equal(json_array_size(logs), 6);
  for (size_t i = 0; i < 6; i++)
    assert_int_equal(
        json_integer_value(json_object_get(json_array_get(logs, i), "id")),
        (json_int_t)i + 1);
  assert_string_equal(str(json_array_get(logs, 5), "output"), "line 6");
  json_decref(logs);
  json_t *st = NULL;
  assert_int_equal(atr_agent_logs_state(&dom, &a, &st, &fault), 0);
  json_t *list = json_object_get(st, "sources");
  size_t i;
  json_t *it;
  bool seen = false;
  json_array_foreach(list, i, it) {
    if (strcmp(str(it, "log_source_id"), src) == 0) {
      assert_int_equal(json_integer_value(json_object_get(it, "last_seq")), 6);
      seen = true;
    }
  }
  assert_true(seen);
  json_decref(st);
  free(src);
}

static void a_sensitive_value_and_a_token_are_masked(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  char *src = source_named(&a, "Agent");
  char line[256];
  snprintf(line, sizeof line, "password=%s token=%s", SECRET_VALUE, token);
  atr_agent_log_line_t l = {1, 0, "warn", line};
  int64_t acked = 0;
  atr_fault_t fault = {0};
  assert_int_equal(atr_agent_logs_append(&dom, &a, src, &l, 1, &acked, &fault),
                   0);
  assert_int_equal(acked, 1);
  atr_db_t db;
  char *err = NULL, *out = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  atr_value_t p[] = {atr_v_text(a.agent_id), atr_v_text(src)};
  must(atr_db_query_text(&db,
                         "SELECT output FROM workspace_agent_logs WHERE "
                         "agent_id = ? AND source_id = ?",
                         p, 2, &out, &err),
       &err);
  atr_db_close(&db);
  assert_null(strstr(out, SECRET_VALUE));
  assert_null(strstr(out, token + 7));
  assert_non_null(strstr(out, "password=********"));
  assert_non_null(strstr(out, "token=atragt_***"));
  free(out);
  free(src);
}

static void reports_are_bounded(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  atr_fault_t fault = {0};
  char big[5000];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  json_t *body = json_pack("{s:[{s:s, s:s, s:s}]}", "metadata", "key", "load",
                           "value", big, "error", "");
  assert_int_equal(atr_agent_metadata_report(&dom, &a, body, &fault), 0);
  json_decref(body);
  atr_actor_t alice = actor(alice_id, "alice", 0);
  json_t *md = NULL;
  assert_int_equal(atr_agent_metadata(&dom, &alice, a.agent_id, &md, &fault),
                   0);
  assert_int_equal(strlen(str(json_array_get(md, 0), "value")), 2048);
  json_decref(md);
  json_t *ports =
      json_pack("{s:[{s:s, s:s, s:i}, {s:s, s:s, s:i}]}", "ports",
                "process_name", "code-server", "network", "tcp", "port", 13337,
                "process_name", "bad", "network", "tcp", "port", 70000);
  assert_int_equal(atr_agent_ports_report(&dom, &a, ports, &fault), 0);
  json_decref(ports);
  json_t *got = NULL;
  assert_int_equal(atr_agent_ports(&dom, &alice, a.agent_id, &got, &fault), 0);
  assert_int_equal(json_array_size(json_object_get(got, "ports")), 1);
  json_decref(got);
  int64_t interval = 0;
  json_t *stats = json_pack("{s:i, s:s}", "rx_bytes", 10, "junk", "x");
  assert_int_equal(atr_agent_stats_report(&dom, &a, stats, &interval, &fault),
                   0);
  assert_int_equal(interval, 30000);
  json_decref(stats);
}

static void an_agent_is_refused_by_the_users_functions(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  atr_fault_t fault = {0};
  json_t *out = NULL;
  atr_workspace_filter_t f = {.limit = 10};
  assert_int_equal(atr_workspaces_list(&dom, &a, &f, &out, &fault), ATR_EPERM);
  assert_null(out);
  atr_fault_clear(&fault);
  assert_int_equal(atr_workspace_get(&dom, &a, workspace_id, &out, &fault),
                   ATR_EPERM);
  atr_fault_clear(&fault);
  int64_t before = count_rows("SELECT COUNT(*) FROM workspace_builds");
  atr_build_new_t in = {.workspace_id = workspace_id, .transition = "stop"};
  assert_int_equal(atr_build_create(&dom, &a, &in, &out, &fault), ATR_EPERM);
  atr_fault_clear(&fault);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM workspace_builds"), before);
  assert_int_equal(atr_agent_get(&dom, &a, a.agent_id, &out, &fault),
                   ATR_EPERM);
  atr_fault_clear(&fault);
  /* Nothing else a user may read or do opens to it either. */
  int got[] = {
      atr_builds_list(&dom, &a, workspace_id, 10, 0, &out, &fault),
      atr_templates_list(&dom, &a, org_id, 10, 0, &out, &fault),
      atr_user_list(&dom, &a, NULL, 10, 0, &out, &fault),
      atr_user_get(&dom, &a, "me", &out, &fault),
      atr_token_list(&dom, &a, "me", &out, &fault),
      atr_org_list(&dom, &a, 10, 0, &out, &fault),
      atr_audit_list(&dom, &a, &(atr_audit_filter_t){.limit = 10}, &out,
                     &fault),
  };
  for (size_t i = 0; i < sizeof got / sizeof *got; i++) {
    if (got[i] != ATR_EPERM && got[i] != ATR_ENOENT)
      fail_msg("call %zu answered %d to an agent", i, got[i]);
  }
  assert_null(out);
  atr_fault_clear(&fault);
  /* A user who may not read the workspace cannot read its agent either;
   * a user is no agent. */
  atr_actor_t bob = actor(bob_id, "bob", 0);
  assert_int_equal(atr_agent_get(&dom, &bob, a.agent_id, &out, &fault),
                   ATR_EPERM);
  atr_fault_clear(&fault);
  assert_int_equal(atr_agent_manifest(&dom, &bob, &out, &fault), ATR_EPERM);
  atr_fault_clear(&fault);
}

static void connect_and_disconnect_are_audited(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  a.ip = "192.0.2.9";
  atr_fault_t fault = {0};
  assert_int_equal(atr_agent_connected(&dom, &a, "v0.9.0", &fault), 0);
  atr_actor_t alice = actor(alice_id, "alice", 0);
  json_t *got = NULL;
  assert_int_equal(atr_agent_get(&dom, &alice, a.agent_id, &got, &fault), 0);
  assert_string_equal(str(got, "status"), "connected");
  assert_string_equal(str(got, "version"), "v0.9.0");
  json_decref(got);
  assert_int_equal(atr_agent_disconnected(&dom, &a, "closed", &fault), 0);
  assert_int_equal(atr_agent_get(&dom, &alice, a.agent_id, &got, &fault), 0);
  assert_string_equal(str(got, "status"), "disconnected");
  json_decref(got);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE "
                              "resource_type = 'workspace_agent' AND action "
                              "IN ('connect', 'disconnect')"),
                   2);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM audit_logs WHERE "
                              "additional_fields LIKE '%atragt_%'"),
                   0);
  /* A restarted single server knows no session is up any more. */
  assert_int_equal(atr_agent_connected(&dom, &a, "v0.9.0", &fault), 0);
  char *err = NULL;
  must(atr_agents_server_started(&dom, &err), &err);
  assert_int_equal(atr_agent_get(&dom, &alice, a.agent_id, &got, &fault), 0);
  assert_string_equal(str(got, "status"), "disconnected");
  json_decref(got);
  assert_int_equal(atr_agent_connected(&dom, &a, "v0.9.0", &fault), 0);
}

static void on_agent(void *ud, const char *agent_id, const char *what) {
  char *seen = ud;
  if (strcmp(what, "shutdown") == 0)
    snprintf(seen, 37, "%s", agent_id);
}

static void a_stop_asks_the_agent_waits_and_revokes(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  atr_events_t *ev = NULL;
  char *err = NULL;
  must(atr_events_start(&store, &ev, &err), &err);
  char seen[37] = "";
  atr_events_on_agent(ev, on_agent, seen);
  dom.events = ev;
  uint64_t gen = atr_events_gen(ev, ATR_EVENT_AGENT);
  must(atr_agents_request_shutdown(&dom, workspace_id, &err), &err);
  /* PostgreSQL delivers through its pub/sub thread: wait for it. */
  for (int i = 0; i < 50 && !*seen; i++)
    gen = atr_events_wait(ev, ATR_EVENT_AGENT, gen, 100);
  assert_string_equal(seen, a.agent_id);
  bool done = true;
  int64_t wait_ms = 0;
  must(atr_agents_shutdown_done(&dom, workspace_id, &done, &wait_ms, &err),
       &err);
  assert_false(done); /* connected and ready */
  assert_int_equal(wait_ms, 310000);
  atr_fault_t fault = {0};
  json_t *m = NULL;
  assert_int_equal(atr_agent_manifest(&dom, &a, &m, &fault), 0);
  assert_true(json_is_true(json_object_get(m, "shutdown_requested")));
  json_decref(m);
  assert_int_equal(atr_agent_lifecycle_report(
                       &dom, &a, ATR_LIFECYCLE_SHUTTING_DOWN, 0, &fault),
                   0);
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_OFF, 0, &fault), 0);
  must(atr_agents_shutdown_done(&dom, workspace_id, &done, &wait_ms, &err),
       &err);
  assert_true(done);
  atr_db_t db;
  must(atr_db_open(&store, &db, &err), &err);
  must(atr_agents_revoke(&db, workspace_id, NULL, &err), &err);
  atr_db_close(&db);
  refused(token);
  /* A revoked agent's calls are refused even with an actor in hand. */
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_OFF, 0, &fault),
      ATR_EACCES);
  atr_fault_clear(&fault);
  json_t *empty = json_object();
  assert_int_equal(atr_agent_stats_report(&dom, &a, empty, &wait_ms, &fault),
                   ATR_EACCES);
  json_decref(empty);
  assert_string_equal(fault.message, "Agent token is not valid.");
  atr_fault_clear(&fault);
  json_t *st = NULL;
  assert_int_equal(atr_agent_logs_state(&dom, &a, &st, &fault), ATR_EACCES);
  assert_null(st);
  atr_fault_clear(&fault);
  dom.events = NULL;
  atr_events_stop(ev);
  atr_events_free(ev);
}

static void the_next_start_revokes_the_last_token(void **s) {
  (void)s;
  start_build_with_agent();
  char first[ATR_AGENT_TOKEN_LEN + 1];
  memcpy(first, token, sizeof first);
  atr_actor_t a1 = agent_actor();
  start_build_with_agent();
  refused(first);
  atr_actor_t a2 = agent_actor();
  assert_string_not_equal(a1.agent_id, a2.agent_id);
  assert_string_not_equal(a1.build_id, a2.build_id);
  atr_fault_t fault = {0};
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a1, ATR_LIFECYCLE_READY, 0, &fault),
      ATR_EACCES);
  atr_fault_clear(&fault);
}

static void a_deleted_workspaces_token_is_refused(void **s) {
  (void)s;
  agent_actor();
  atr_value_t p[] = {atr_v_text(workspace_id)};
  exec_ok("UPDATE workspaces SET deleted = TRUE WHERE id = ?", p, 1);
  refused(token);
}

int main(int argc, char **argv) {
  int rc = fixture_args(argc, argv);
  if (rc != 0)
    return rc;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_status_follows_coders_rules),
      cmocka_unit_test(a_token_is_atragt_and_43_base64url_characters),
      cmocka_unit_test(a_start_builds_token_authenticates_as_its_agent),
      cmocka_unit_test(the_workspace_json_carries_its_agent),
      cmocka_unit_test(the_manifest_has_the_scripts_and_metadata),
      cmocka_unit_test(the_lifecycle_moves_forward_or_starts_again),
      cmocka_unit_test(a_resent_batch_stores_each_line_once),
      cmocka_unit_test(a_sensitive_value_and_a_token_are_masked),
      cmocka_unit_test(reports_are_bounded),
      cmocka_unit_test(an_agent_is_refused_by_the_users_functions),
      cmocka_unit_test(connect_and_disconnect_are_audited),
      cmocka_unit_test(a_stop_asks_the_agent_waits_and_revokes),
      cmocka_unit_test(the_next_start_revokes_the_last_token),
      cmocka_unit_test(a_deleted_workspaces_token_is_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
