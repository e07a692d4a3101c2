/* The job runner's side of workspace agents (core/jobs/jobrun_agent.c),
 * with the real provisioner daemons and the example echo provisioner: a
 * start build of a version with an agent leaves a live agent on its
 * resource and no token in its log; a stop build whose agent never
 * connected revokes it at once; a stop build whose agent is connected and
 * ready waits for it ("Waiting for agent main to shut down (up to
 * 5m10s)") until the agent reports off, then revokes; a delete revokes.
 *
 *   test_agents_jobs                 a fresh SQLite file in a temp dir
 *   test_agents_jobs postgres PGDIR  the throwaway cluster of PGDIR/dsn
 *
 * Every wait polls the database with a deadline. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agents.h"
#include "atrium/error.h"
#include "builds.h"
#include "domain_fixture.h"
#include "events.h"
#include "provd.h"
#include "workspaces.h"

#define SPEC                                                                   \
  "{\"name\":\"main\",\"arch\":\"amd64\",\"startup_script\":\"true\","         \
  "\"shutdown_script\":\"true\",\"shutdown_script_timeout_s\":300}"
#define WAIT_MS 30000

static char org_id[37], alice_id[37], template_id[37], workspace_id[37];
static atr_events_t *ev;
static atr_provd_t *pool;

/* ---- set-up ------------------------------------------------------------- */

/* An empty tar archive: two zero blocks. */
static void add_empty_archive(char id[37]) {
  static const char zeros[1024];
  atr_db_new_uuid(id);
  atr_value_t f[] = {atr_v_text(id), atr_v_time(atr_db_now_us()),
                     atr_v_text(alice_id), atr_v_blob(zeros, sizeof zeros)};
  exec_ok("INSERT INTO files (id, hash, created_at, created_by, mimetype, "
          "data) VALUES (?, 'empty', ?, ?, 'application/x-tar', ?)",
          f, 4);
}

static void seed_template(void) {
  char file_id[37], version_id[37];
  add_empty_archive(file_id);
  add_template(template_id, version_id, org_id, file_id, alice_id);
  atr_value_t p[] = {atr_v_text(SPEC), atr_v_text(version_id)};
  exec_ok("UPDATE template_versions SET agent_spec = ? WHERE id = ?", p, 2);
}

static int setup(void **state) {
  (void)state;
  if (fixture_open("agentjobs", "  provisioner_echo:\n    enabled: true\n") !=
      0)
    return -1;
  add_org(org_id, "default", true);
  add_user(alice_id, "alice", 0);
  add_member(alice_id, org_id, 0);
  seed_template();
  char *err = NULL;
  if (atr_events_start(&store, &ev, &err) != 0) {
    fprintf(stderr, "events: %s\n", err ? err : "?");
    return -1;
  }
  dom.events = ev;
  atr_provd_config_t pc = {.store = &store,
                           .events = ev,
                           .loader = &loader,
                           .data_dir = tmpdir,
                           .daemons = 1,
                           .poll_ms = 200,
                           .heartbeat_ms = 1000,
                           .hung_ms = 600000,
                           .pending_ms = 600000,
                           .reaper_ms = 600000,
                           .max_log = 1048576,
                           .archive_limits = {1048576, 100},
                           .run_as = "",
                           .access_url = "http://127.0.0.1:9",
                           .agent_bundle_dir = ""};
  if (atr_provd_start(&pc, &pool, &err) != 0) {
    fprintf(stderr, "provd: %s\n", err ? err : "?");
    return -1;
  }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  atr_provd_stop(pool);
  dom.events = NULL;
  atr_events_stop(ev);
  atr_events_free(ev);
  return fixture_close();
}

/* ---- helpers --------------------------------------------------------------- */

static void nap(void) {
  struct timespec ts = {0, 20 * 1000000L};
  nanosleep(&ts, NULL);
}

/* Until sql (one ? for arg) counts want, at most WAIT_MS. */
static void wait_count(const char *sql, const char *arg, int64_t want) {
  for (int i = 0; i < WAIT_MS / 20; i++) {
    if (count_rows_for(sql, arg) == want)
      return;
    nap();
  }
  fail_msg("waited %d ms for %s = %lld", WAIT_MS, sql, (long long)want);
}

static void wait_job_done(const char *job_id) {
  wait_count("SELECT COUNT(*) FROM provisioner_jobs WHERE CAST(id AS TEXT) "
             "= ? AND completed_at IS NOT NULL",
             job_id, 1);
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM provisioner_jobs "
                                  "WHERE CAST(id AS TEXT) = ? AND error IS "
                                  "NULL AND canceled_at IS NULL",
                                  job_id),
                   1);
}

static int64_t log_lines(const char *job_id, const char *like) {
  char sql[256];
  snprintf(sql, sizeof sql,
           "SELECT COUNT(*) FROM provisioner_job_logs WHERE CAST(job_id AS "
           "TEXT) = ? AND output LIKE '%s'",
           like);
  return count_rows_for(sql, job_id);
}

/* Queue a build (the first one makes the workspace); its job id. */
static void build(const char *transition, char job_id[37]) {
  json_t *b = add_build(workspace_id, template_id, transition);
  snprintf(job_id, 37, "%s", str(json_object_get(b, "job"), "id"));
  json_decref(b);
}

static int64_t live_agents(void) {
  return count_rows_for("SELECT COUNT(*) FROM workspace_agents WHERE "
                        "CAST(workspace_id AS TEXT) = ? AND revoked_at IS NULL",
                        workspace_id);
}

/* The live agent as its own actor would be after authenticating. */
static atr_actor_t live_agent(void) {
  atr_actor_t a = {.agent = true};
  atr_db_t db;
  char *err = NULL, *id = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  atr_value_t p[] = {atr_v_text(workspace_id)};
  must(atr_db_query_text(&db,
                         "SELECT id FROM workspace_agents WHERE workspace_id "
                         "= ? AND revoked_at IS NULL",
                         p, 1, &id, &err),
       &err);
  atr_db_close(&db);
  snprintf(a.agent_id, sizeof a.agent_id, "%s", id);
  snprintf(a.workspace_id, sizeof a.workspace_id, "%s", workspace_id);
  free(id);
  return a;
}

/* ---- tests ----------------------------------------------------------------- */

static void
a_start_build_leaves_a_live_agent_and_no_token_in_its_log(void **s) {
  (void)s;
  char job[37];
  build("start", job);
  wait_job_done(job);
  assert_int_equal(live_agents(), 1);
  /* On the build's resource, with the digest of a token only. */
  assert_int_equal(
      count_rows_for("SELECT COUNT(*) FROM workspace_agents a JOIN "
                     "workspace_resources r ON r.id = a.resource_id WHERE "
                     "CAST(r.job_id AS TEXT) = ? AND a.name = 'main'",
                     job),
      1);
  assert_int_equal(log_lines(job, "%atragt_%"), 0);
}

static void a_stop_of_an_agent_never_connected_revokes_at_once(void **s) {
  (void)s;
  char job[37];
  build("stop", job);
  wait_job_done(job);
  assert_int_equal(live_agents(), 0);
  assert_int_equal(log_lines(job, "Waiting for agent%"), 0);
}

/* A start build whose agent connected and reported ready, then a stop
 * build (its job into job); the agent's actor. */
static atr_actor_t stop_a_ready_agent(char job[37]) {
  build("start", job);
  wait_job_done(job);
  atr_actor_t a = live_agent();
  atr_fault_t fault = {0};
  assert_int_equal(atr_agent_connected(&dom, &a, "test", &fault), 0);
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_READY, 0, &fault), 0);
  build("stop", job);
  return a;
}

static void a_stop_waits_for_a_ready_agent_to_report_off(void **s) {
  (void)s;
  char job[37];
  atr_actor_t a = stop_a_ready_agent(job);
  atr_fault_t fault = {0};
  wait_count("SELECT COUNT(*) FROM provisioner_job_logs WHERE CAST(job_id AS "
             "TEXT) = ? AND output = 'Waiting for agent main to shut down (up "
             "to 5m10s)'",
             job, 1);
  assert_int_equal(live_agents(), 1); /* not before the agent is done */
  assert_int_equal(atr_agent_lifecycle_report(
                       &dom, &a, ATR_LIFECYCLE_SHUTTING_DOWN, 0, &fault),
                   0);
  assert_int_equal(
      atr_agent_lifecycle_report(&dom, &a, ATR_LIFECYCLE_OFF, 0, &fault), 0);
  wait_job_done(job);
  assert_int_equal(live_agents(), 0);
  assert_int_equal(log_lines(job, "Agent main shut down"), 1);
}

static void a_cancel_ends_the_wait_and_keeps_the_token(void **s) {
  (void)s;
  char job[37];
  atr_actor_t a = stop_a_ready_agent(job);
  atr_fault_t fault = {0};
  wait_count("SELECT COUNT(*) FROM provisioner_job_logs WHERE CAST(job_id AS "
             "TEXT) = ? AND output LIKE 'Waiting for agent main%'",
             job, 1);
  atr_db_t db;
  char *err = NULL, *build_id = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  atr_value_t p[] = {atr_v_text(job)};
  must(atr_db_query_text(&db,
                         "SELECT id FROM workspace_builds WHERE job_id = ?", p,
                         1, &build_id, &err),
       &err);
  atr_db_close(&db);
  atr_actor_t sched = atr_actor_system("scheduler");
  assert_int_equal(atr_build_cancel(&dom, &sched, build_id, &fault), 0);
  free(build_id);
  wait_count("SELECT COUNT(*) FROM provisioner_jobs WHERE CAST(id AS TEXT) "
             "= ? AND completed_at IS NOT NULL AND canceled_at IS NOT NULL",
             job, 1);
  assert_int_equal(
      log_lines(job, "Agent main was not waited for: the build was canceled"),
      1);
  assert_int_equal(live_agents(), 1);
  /* The agent's session ends; the next stop does not wait for it. */
  assert_int_equal(atr_agent_disconnected(&dom, &a, "closed", &fault), 0);
  build("stop", job);
  wait_job_done(job);
  assert_int_equal(log_lines(job, "Waiting for agent%"), 0);
  assert_int_equal(live_agents(), 0);
}

static void a_delete_revokes_the_agent(void **s) {
  (void)s;
  char job[37];
  build("start", job);
  wait_job_done(job);
  assert_int_equal(live_agents(), 1);
  build("delete", job);
  wait_job_done(job);
  assert_int_equal(live_agents(), 0);
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM workspaces WHERE "
                                  "CAST(id AS TEXT) = ? AND deleted = TRUE",
                                  workspace_id),
                   1);
}

int main(int argc, char **argv) {
  int rc = fixture_args(argc, argv);
  if (rc != 0)
    return rc;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(
          a_start_build_leaves_a_live_agent_and_no_token_in_its_log),
      cmocka_unit_test(a_stop_of_an_agent_never_connected_revokes_at_once),
      cmocka_unit_test(a_stop_waits_for_a_ready_agent_to_report_off),
      cmocka_unit_test(a_cancel_ends_the_wait_and_keeps_the_token),
      cmocka_unit_test(a_delete_revokes_the_agent),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
