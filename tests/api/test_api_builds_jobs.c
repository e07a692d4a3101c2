/* tests/api/test_api_builds_jobs.c — provisioner jobs as the API shows
 * them: a running build canceled, a pending import canceled, a dead
 * daemon's job and an untakeable one reaped, tagged jobs waiting for a
 * daemon with their tags, a new build started without a poll. See
 * builds.h. */
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builds.h"

static int server_up_no_daemons(void **state) {
  static const srv_opts_t o = {.daemons = "0"};
  return builds_start(state, &o);
}

/* ---- 6. cancel ------------------------------------------------------------------- */

static void a_running_build_is_canceled_and_the_next_one_works(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b1[37], b2[37], path[256], cancel[300];
  hold_builds(); /* only the cancel ends the build */
  new_workspace(s, "cancelme", &t, VALUES("flavor", "small"), ws, b1);
  build_path(path, sizeof path, b1);
  assert_true(wait_log(s, path, "echo: held until", BUILD_MS));

  snprintf(cancel, sizeof cancel, "%s/cancel", path);
  double asked = atr_harness_now_ms();
  atr_tc_res_t r = call(s, "PATCH", cancel, s->owner_token, NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "message"), "Job canceled.");
  atr_tc_res_free(&r);
  r = wait_job(s, path, "canceled", 5000);
  double took = atr_harness_now_ms() - asked;
  print_message("cancel took %.0f ms\n", took);
  assert_string_equal(job_status(&r), "canceled");
  assert_string_equal(field(&r, "status"), "canceled");
  assert_true(time_us(json_object_get(json_object_get(r.json, "job"),
                                      "canceled_at")) > 0);
  assert_string_equal(jstr2(r.json, "job", "error"), "");
  atr_tc_res_free(&r);
  /* the plugin stopped while held: it says so */
  assert_true(
      atr_harness_wait_log(&s->h, "workspace cancelme: canceled", 5000));
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  r = get(s, path, s->owner_token);
  assert_string_equal(jstr2(r.json, "latest_build", "status"), "canceled");
  atr_tc_res_free(&r);
  ASSERT_ERROR(400, "The job has already ended or is being canceled.",
               call(s, "PATCH", cancel, s->owner_token, NULL));

  /* released, on a restarted server, the workspace starts */
  release_builds();
  restart(s, SIGTERM, &FAST);
  build(s, ws, "start", NULL, b2);
  wait_build(s, b2, "running");
  build_path(path, sizeof path, b2);
  assert_log_lines(s, path, "echo: start workspace cancelme, build 2", 1);
}

static void a_pending_import_is_canceled_at_once(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64], v[37], path[256];
  upload_yaml(s, TEMPLATE_YAML, file);
  create_version(s, file, "v1", NULL, v);
  version_path(path, sizeof path, v);
  atr_tc_res_t r = get(s, path, s->owner_token);
  assert_string_equal(job_status(&r), "pending");
  atr_tc_res_free(&r);

  char cancel[300];
  snprintf(cancel, sizeof cancel, "%s/cancel", path);
  r = call(s, "PATCH", cancel, s->owner_token, NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "message"), "Job canceled.");
  atr_tc_res_free(&r);
  r = get(s, path, s->owner_token);
  assert_string_equal(job_status(&r), "canceled");
  json_t *job = json_object_get(r.json, "job");
  assert_true(time_us(json_object_get(job, "canceled_at")) > 0);
  assert_true(time_us(json_object_get(job, "completed_at")) > 0);
  assert_true(json_is_null(json_object_get(job, "started_at")));
  assert_true(json_is_null(json_object_get(job, "worker_id")));
  atr_tc_res_free(&r);
  ASSERT_STATUS(400, call(s, "PATCH", cancel, s->owner_token, NULL));
  json_t *lines = job_log(s, path, s->owner_token);
  assert_int_equal(json_array_size(lines), 0);
  json_decref(lines);
}

/* ---- 7. the reaper --------------------------------------------------------------- */

static void a_dead_daemons_job_is_reaped(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b1[37], b2[37], path[256];
  hold_builds(); /* the build is still running when its daemon dies */
  new_workspace(s, "orphaned", &t, VALUES("flavor", "small"), ws, b1);
  build_path(path, sizeof path, b1);
  assert_true(wait_log(s, path, "echo: held until", BUILD_MS));

  static const srv_opts_t reaping = {.delay = "200ms",
                                     .heartbeat_interval = "200ms",
                                     .heartbeat_timeout = "1s",
                                     .pending_timeout = "2s",
                                     .reaper_interval = "100ms"};
  restart(s, SIGKILL, &reaping);
  release_builds();
  atr_tc_res_t r = wait_end(s, path, "failed", 10000);
  const char *error = jstr2(r.json, "job", "error");
  assert_contains(error, "reaped");
  assert_contains(error, "heartbeat");
  assert_string_equal(field(&r, "status"), "failed");
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  r = get(s, path, s->owner_token);
  assert_string_equal(jstr2(r.json, "latest_build", "status"), "failed");
  atr_tc_res_free(&r);
  build(s, ws, "start", NULL, b2);
  wait_build(s, b2, "running");

  /* a job no daemon may take: reaped after pending_timeout */
  char file[64], v[37];
  upload_yaml(s, TEMPLATE_YAML, file);
  r = post_version(
      s, s->owner_token,
      json_pack("{s:s, s:{s:s}}", "file_id", file, "tags", "pool", "nobody"));
  ASSERT_ANSWER(r, 201);
  snprintf(v, sizeof v, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
  version_path(path, sizeof path, v);
  r = wait_end(s, path, "failed", 10000);
  json_t *job = json_object_get(r.json, "job");
  assert_contains(jstr(job, "error"), "reaped");
  assert_contains(jstr(job, "error"), "pending_timeout");
  /* No daemon ran it; the reaper marks it started as it ends it (the
   * schema: a finished job was started or canceled). */
  assert_true(json_is_null(json_object_get(job, "worker_id")));
  assert_string_equal(jstr(job, "started_at"), jstr(job, "completed_at"));
  int64_t waited = time_us(json_object_get(job, "completed_at")) -
                   time_us(json_object_get(job, "created_at"));
  assert_true(waited >= 2000000);
  atr_tc_res_free(&r);
}

/* ---- 8. tags ----------------------------------------------------------------------- */

static void a_tagged_job_waits_for_a_daemon_with_its_tags(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64], gpu[37], plain[37], gpu_path[256], path[256];
  upload_yaml(s, TEMPLATE_YAML, file);
  atr_tc_res_t r =
      post_version(s, s->owner_token,
                   json_pack("{s:s, s:s, s:{s:s}}", "file_id", file, "name",
                             "gpu", "tags", "pool", "gpu"));
  ASSERT_ANSWER(r, 201);
  snprintf(gpu, sizeof gpu, "%s", field(&r, "id"));
  assert_string_equal(jstr2(json_object_get(r.json, "job"), "tags", "pool"),
                      "gpu");
  atr_tc_res_free(&r);
  /* the daemons are awake: they take an untagged job posted after it */
  create_version(s, file, "plain", NULL, plain);
  version_path(path, sizeof path, plain);
  r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
  version_path(gpu_path, sizeof gpu_path, gpu);
  r = get(s, gpu_path, s->owner_token);
  assert_string_equal(job_status(&r), "pending");
  json_t *job = json_object_get(r.json, "job");
  assert_true(json_is_null(json_object_get(job, "started_at")));
  assert_true(json_is_null(json_object_get(job, "worker_id")));
  atr_tc_res_free(&r);

  static const srv_opts_t gpu_pool = {.delay = "200ms", .tags = "[pool=gpu]"};
  restart(s, SIGTERM, &gpu_pool);
  r = wait_end(s, gpu_path, "succeeded", BUILD_MS);
  assert_int_equal(strlen(jstr2(r.json, "job", "worker_id")), 36);
  atr_tc_res_free(&r);
  /* jobs without tags fit these daemons too */
  char plain2[37];
  create_version(s, file, "plain2", NULL, plain2);
  version_path(path, sizeof path, plain2);
  r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
}

/* ---- 10. announced jobs ------------------------------------------------------------ */

static void a_new_build_starts_without_waiting_for_a_poll(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b1[37], path[256];
  double created = atr_harness_now_ms();
  new_workspace(s, "quick", &t, VALUES("flavor", "small"), ws, b1);
  build_path(path, sizeof path, b1);
  /* poll_interval is 10 minutes: only the announcement can start it */
  atr_tc_res_t r = get(s, path, s->owner_token);
  json_t *job = json_object_get(r.json, "job");
  while (json_is_null(json_object_get(job, "started_at")) &&
         atr_harness_now_ms() - created < 2000) {
    atr_harness_sleep_ms(5);
    atr_tc_res_free(&r);
    r = get(s, path, s->owner_token);
    ASSERT_ANSWER(r, 200);
    job = json_object_get(r.json, "job");
  }
  double seen = atr_harness_now_ms() - created;
  assert_false(json_is_null(json_object_get(job, "started_at")));
  int64_t latency = time_us(json_object_get(job, "started_at")) -
                    time_us(json_object_get(job, "created_at"));
  print_message("created -> started: %.3f ms on the server, seen by the "
                "client after %.0f ms\n",
                (double)latency / 1000.0, seen);
  assert_true(latency >= 0 && latency < 2000000);
  atr_tc_res_free(&r);
  wait_build(s, b1, "running");
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
#define T_WITH(f, up) cmocka_unit_test_setup_teardown(f, up, srv_stop)
#define T_WITH2(f, up, down) cmocka_unit_test_setup_teardown(f, up, down)
  const struct CMUnitTest tests[] = {
      T(a_running_build_is_canceled_and_the_next_one_works),
      T_WITH(a_pending_import_is_canceled_at_once, server_up_no_daemons),
      T(a_dead_daemons_job_is_reaped),
      T(a_tagged_job_waits_for_a_daemon_with_its_tags),
      T(a_new_build_starts_without_waiting_for_a_poll),
  };
#undef T
#undef T_WITH
#undef T_WITH2
  return BUILDS_MAIN("api_builds_jobs", tests);
}
