/* The agent writer (core/domain/agent_writer.c, docs/design/agent.md
 * §3.6): metadata and stats reports queue while it runs; a newer report
 * of an agent replaces its queued one; a flush commits what was queued;
 * a full queue refuses (ATR_EAGAIN: 503); a revoked agent's queued report
 * is dropped; stopping commits what is queued.
 *
 *   test_agent_writer                 a fresh SQLite file in a temp dir
 *   test_agent_writer postgres PGDIR  the throwaway cluster of PGDIR/dsn
 *
 * The writer's interval is an hour here: nothing commits but a flush, a
 * full batch or the stop, so no test races its clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_writer.h"
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

/* ---- helpers --------------------------------------------------------------- */

#define HOUR_MS 3600000

static void writer_start(size_t capacity) {
  atr_agent_writer_config_t cfg = {.interval_ms = HOUR_MS,
                                   .capacity = capacity};
  char *err = NULL;
  must(atr_agent_writer_start(&dom, &cfg, &err), &err);
}

static int stats_report(const atr_actor_t *a, int rx) {
  json_t *body = json_pack("{s:i}", "rx_bytes", rx);
  int64_t interval = 0;
  atr_fault_t fault = {0};
  int rc = atr_agent_stats_report(&dom, a, body, &interval, &fault);
  json_decref(body);
  if (rc == ATR_EAGAIN)
    assert_string_equal(fault.message, "Too many reports queued.");
  atr_fault_clear(&fault);
  return rc;
}

static int metadata_report(const atr_actor_t *a, const char *value) {
  json_t *body = json_pack("{s:[{s:s, s:s, s:s}]}", "metadata", "key", "load",
                           "value", value, "error", "");
  atr_fault_t fault = {0};
  int rc = atr_agent_metadata_report(&dom, a, body, &fault);
  json_decref(body);
  atr_fault_clear(&fault);
  return rc;
}

/* rx_bytes of the agent's stored stats; -1 when none. */
static json_int_t stored_rx(const atr_actor_t *a) {
  atr_db_t db;
  char *err = NULL, *text = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  atr_value_t p[] = {atr_v_text(a->agent_id)};
  int rc = atr_db_query_text(&db,
                             "SELECT stats FROM workspace_agents WHERE id "
                             "= ?",
                             p, 1, &text, &err);
  free(err);
  atr_db_close(&db);
  json_t *j = rc == 0 && text ? json_loads(text, 0, NULL) : NULL;
  free(text);
  json_t *v = json_object_get(j, "rx_bytes");
  json_int_t rx = json_is_integer(v) ? json_integer_value(v) : -1;
  json_decref(j);
  return rx;
}

/* The stored value of the agent's "load" metadata (malloc'd). */
static char *stored_load(const atr_actor_t *a) {
  atr_actor_t alice = actor(alice_id, "alice", 0);
  json_t *md = NULL;
  atr_fault_t fault = {0};
  assert_int_equal(atr_agent_metadata(&dom, &alice, a->agent_id, &md, &fault),
                   0);
  char *v = strdup(str(json_array_get(md, 0), "value"));
  json_decref(md);
  return v;
}

/* ---- tests ----------------------------------------------------------------- */

static void reports_coalesce_per_agent_and_a_flush_commits_them(void **s) {
  (void)s;
  start_build_with_agent();
  atr_actor_t a = agent_actor();
  /* room for one report of each kind: the second of a kind replaces the
   * first instead of needing room */
  writer_start(2);
  assert_int_equal(stats_report(&a, 1), 0);
  assert_int_equal(metadata_report(&a, "first"), 0);
  assert_int_equal(stats_report(&a, 2), 0);
  assert_int_equal(metadata_report(&a, "second"), 0);
  assert_int_not_equal(stored_rx(&a), 2); /* queued, not yet committed */
  char *v = stored_load(&a);
  assert_string_not_equal(v, "second");
  free(v);
  assert_int_equal(atr_agent_writer_flush(10000), 0);
  assert_int_equal(stored_rx(&a), 2);
  v = stored_load(&a);
  assert_string_equal(v, "second");
  free(v);
  atr_agent_writer_stop();
}

static void a_full_queue_refuses_and_the_stop_commits_what_is_queued(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  writer_start(1);
  assert_int_equal(stats_report(&a, 3), 0);
  /* another kind needs room the queue has not: 503 with Retry-After */
  assert_int_equal(metadata_report(&a, "third"), ATR_EAGAIN);
  assert_int_equal(stats_report(&a, 4), 0); /* replaces: no room needed */
  assert_int_not_equal(stored_rx(&a), 4);
  atr_agent_writer_stop();
  assert_int_equal(stored_rx(&a), 4);
  /* stopped: reports are written at once again */
  assert_int_equal(stats_report(&a, 5), 0);
  assert_int_equal(stored_rx(&a), 5);
  assert_int_equal(atr_agent_writer_flush(10), 0);
}

static int revoke_tx(atr_db_t *db, void *ud, char **err) {
  (void)ud;
  return atr_agents_revoke(db, workspace_id, NULL, err);
}

static void a_revoked_agents_queued_report_is_dropped(void **s) {
  (void)s;
  atr_actor_t a = agent_actor();
  writer_start(0);
  assert_int_equal(stats_report(&a, 6), 0);
  assert_int_equal(metadata_report(&a, "revoked"), 0);
  char *err = NULL;
  must(atr_db_tx(&store, ATR_TX_WRITE, revoke_tx, NULL, &err), &err);
  assert_int_equal(atr_agent_writer_flush(10000), 0);
  assert_int_equal(stored_rx(&a), 5);
  char *v = stored_load(&a);
  assert_string_not_equal(v, "revoked");
  free(v);
  atr_agent_writer_stop();
}

int main(int argc, char **argv) {
  int rc = fixture_args(argc, argv);
  if (rc != 0)
    return rc;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(reports_coalesce_per_agent_and_a_flush_commits_them),
      cmocka_unit_test(
          a_full_queue_refuses_and_the_stop_commits_what_is_queued),
      cmocka_unit_test(a_revoked_agents_queued_report_is_dropped),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
