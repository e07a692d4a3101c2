/* tests/plugins/test_provisioner_docker_builds.c — builds against the
 * engine: what start, stop and delete leave there, images checked at the
 * build, and the engine's errors reaching the job log. Run by
 * test_provisioner_docker.c's main. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atrium/provisioner.h"
#include "conf.h"
#include "docker_fixture.h"
#include "loader.h"
#include "log.h"
#include "prov_harness.h"

/* ---- tests: builds */

void test_start_makes_the_volume_and_the_container(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "Dev Box");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  if (b.rc != 0)
    fail_msg("start: %s", b.err);
  const char *name = "atrium-alice-dev-box";
  char *vol = volume_name(&ws, "home");

  long st = 0;
  json_t *c = inspect("containers", name, &st);
  assert_int_equal(st, 200);
  const json_t *host = json_object_get(c, "HostConfig");
  assert_int_equal(json_integer_value(json_object_get(host, "NanoCpus")),
                   1000000000);
  assert_int_equal(json_integer_value(json_object_get(host, "Memory")),
                   64 * 1024 * 1024);
  assert_string_equal(json_string_value(json_object_get(host, "NetworkMode")),
                      "none");
  assert_true(
      json_is_true(json_object_get(json_object_get(c, "State"), "Running")));
  assert_string_equal(label_of(c, "dev.atrium.workspace_id"), ws.id);
  assert_string_equal(label_of(c, "dev.atrium.workspace_name"), "Dev Box");
  assert_string_equal(label_of(c, "dev.atrium.owner_id"),
                      "6a1f0c2e-0000-4000-8000-00000000000b");
  assert_string_equal(label_of(c, "dev.atrium.owner_name"), "Alice");
  assert_string_equal(label_of(c, "dev.atrium.template_id"),
                      "6a1f0c2e-0000-4000-8000-00000000000d");
  assert_string_equal(label_of(c, "dev.atrium.build_number"), "1");
  assert_string_equal(label_of(c, "team"), "platform");
  const json_t *cfg = json_object_get(c, "Config");
  assert_string_equal(json_string_value(json_object_get(cfg, "WorkingDir")),
                      "/home/dev");
  assert_string_equal(json_string_value(json_object_get(cfg, "Hostname")),
                      "dev-box");
  char *env = json_dumps(json_object_get(cfg, "Env"), JSON_COMPACT);
  assert_contains(env, "\"GREETING=hello Alice\"");
  assert_contains(env, "\"LITERAL=${HOME}\"");
  free(env);
  const json_t *m = json_array_get(json_object_get(c, "Mounts"), 0);
  assert_string_equal(json_string_value(json_object_get(m, "Type")), "volume");
  assert_string_equal(json_string_value(json_object_get(m, "Name")), vol);
  assert_string_equal(json_string_value(json_object_get(m, "Destination")),
                      "/home/dev");
  char *id = strdup(json_string_value(json_object_get(c, "Id")));
  json_decref(c);

  json_t *v = inspect("volumes", vol, &st);
  assert_int_equal(st, 200);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(v, "Labels"),
                                        "dev.atrium.workspace_id")),
      ws.id);
  json_decref(v);

  /* The state and the resources say the same. */
  char *want = NULL;
  assert_true(asprintf(&want,
                       "{\"containers\":[{\"name\":\"%s\",\"id\":\"%s\"}],"
                       "\"volumes\":[{\"name\":\"%s\"}],\"image\":\"" IMAGE
                       "\"}",
                       name, id, vol) >= 0);
  assert_string_equal(b.res.state, want);
  assert_int_equal(b.res.state_len, strlen(want));
  assert_int_equal(b.res.nresources, 2);
  const atr_prov_resource_t *r = &b.res.resources[0];
  assert_string_equal(r->type, "docker_container");
  assert_string_equal(r->name, name);
  assert_string_equal(r->id, id);
  assert_int_equal(r->nmetadata, 2);
  assert_string_equal(r->metadata[0].key, "image");
  assert_string_equal(r->metadata[0].value, IMAGE);
  assert_string_equal(r->metadata[1].key, "status");
  assert_string_equal(r->metadata[1].value, "running");
  assert_string_equal(b.res.resources[1].type, "docker_volume");
  assert_string_equal(b.res.resources[1].name, vol);
  assert_string_equal(b.res.resources[1].id, vol);

  /* Each engine step is a line of the build log. */
  assert_job_has(&b.job, ATR_LOG_INFO, "Planning",
                 "Container atrium-alice-dev-box: image " IMAGE
                 "; 1 CPU, 64 MiB memory, network none");
  assert_job_has(&b.job, ATR_LOG_INFO, "Planning",
                 "env: GREETING=hello Alice, LITERAL=${HOME}");
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying",
                 "Image " IMAGE " is present (sha256:");
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying", "Creating volume ");
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying",
                 "Creating container atrium-alice-dev-box from " IMAGE);
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying",
                 "Container atrium-alice-dev-box is running");
  free(want);
  free(id);
  free(vol);
  build_free(&b);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
}

void test_the_home_volume_outlives_stop_and_start(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "keep");
  char *name = container_name(&ws);
  char *vol = volume_name(&ws, "home");
  build_ok(&ws, ATR_TRANSITION_START, NULL);
  json_t *c = inspect("containers", name, NULL);
  char *id1 = strdup(json_string_value(json_object_get(c, "Id")));
  json_decref(c);
  assert_int_equal(exec_in(name, "echo kept-$((6*7)) > /home/dev/note", NULL),
                   0);

  /* stop: the container is gone, the volume and its file are not. */
  build_t stop = {.transition = ATR_TRANSITION_STOP};
  ws_build(&ws, &stop);
  assert_int_equal(stop.rc, 0);
  assert_false(exists("containers", name));
  assert_true(exists("volumes", vol));
  json_t *v = inspect("volumes", vol, NULL);
  char *note =
      path2(json_string_value(json_object_get(v, "Mountpoint")), "note");
  json_decref(v);
  char *text = read_text(note);
  assert_string_equal(text, "kept-42\n");
  free(text);
  char *want = NULL;
  assert_true(asprintf(&want,
                       "{\"containers\":[],\"volumes\":[{\"name\":\"%s\"}],"
                       "\"image\":\"" IMAGE "\"}",
                       vol) >= 0);
  assert_string_equal(stop.res.state, want);
  free(want);
  assert_int_equal(stop.res.nresources, 1);
  assert_string_equal(stop.res.resources[0].type, "docker_volume");
  assert_job_has(&stop.job, ATR_LOG_INFO, "Applying",
                 "Stopping container atrium-alice-keep");
  assert_job_has(&stop.job, ATR_LOG_INFO, "Applying", "Keeping volume ");
  build_free(&stop);

  /* start: a new container, the same file. */
  build_ok(&ws, ATR_TRANSITION_START, NULL);
  c = inspect("containers", name, NULL);
  assert_string_not_equal(json_string_value(json_object_get(c, "Id")), id1);
  json_decref(c);
  char *out = NULL;
  assert_int_equal(exec_in(name, "cat /home/dev/note", &out), 0);
  assert_string_equal(out, "kept-42\n");
  free(out);

  /* delete: both gone. */
  build_t del = {.transition = ATR_TRANSITION_DELETE};
  ws_build(&ws, &del);
  assert_int_equal(del.rc, 0);
  assert_false(exists("containers", name));
  assert_false(exists("volumes", vol));
  assert_string_equal(del.res.state,
                      "{\"containers\":[],\"volumes\":[],\"image\":\"" IMAGE
                      "\"}");
  assert_int_equal(del.res.nresources, 0);
  assert_job_has(&del.job, ATR_LOG_INFO, "Applying", "Removing volume ");
  build_free(&del);
  free(note);
  free(id1);
  free(name);
  free(vol);
  ws_free(&ws);
  fx_stop(&f);
}

void test_start_twice_converges_to_one_container(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "retry");
  build_ok(&ws, ATR_TRANSITION_START, NULL);
  /* A retry of the same build, as after a crash: same number, same state. */
  ws.number--;
  build_t again = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &again);
  assert_int_equal(again.rc, 0);
  assert_job_has(&again.job, ATR_LOG_INFO, "Applying",
                 "Removing container atrium-alice-retry (");
  assert_job_has(&again.job, ATR_LOG_INFO, "Applying", "exists; keeping it");
  build_free(&again);
  assert_int_equal(count_containers(&ws), 1);
  build_ok(&ws, ATR_TRANSITION_START, NULL);
  assert_int_equal(count_containers(&ws), 1);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  assert_int_equal(count_containers(&ws), 0);
  ws_free(&ws);
  fx_stop(&f);
}

void test_stop_and_delete_of_nothing_succeed(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "never-started");
  build_t stop = {.transition = ATR_TRANSITION_STOP};
  ws_build(&ws, &stop);
  assert_int_equal(stop.rc, 0);
  assert_job_has(&stop.job, ATR_LOG_INFO, "Applying",
                 "The workspace has no containers");
  build_free(&stop);
  build_t del = {.transition = ATR_TRANSITION_DELETE};
  ws_build(&ws, &del);
  assert_int_equal(del.rc, 0);
  assert_job_has(&del.job, ATR_LOG_INFO, "Applying",
                 "The workspace has no volumes");
  build_free(&del);
  /* A state naming objects that are gone is fine too. */
  free(ws.state);
  ws.state = strdup("{\"containers\":[{\"name\":\"atrium-alice-gone\",\"id\":"
                    "\"0123456789ab\"}],\"volumes\":[{\"name\":\"atrium-gone-"
                    "home\"}],\"image\":\"" IMAGE "\"}");
  ws.state_len = strlen(ws.state);
  build_ok(&ws, ATR_TRANSITION_STOP, NULL);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  /* And stop and delete work when the template became unusable. */
  fx_spec(&f, "image: evil/miner:1\n");
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
}

void test_an_image_from_a_parameter_is_checked_at_the_build(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: \"${param.image}\"\ncommand: \"" LOOP "\"\n");
  const pv_t evil[] = {{"image", "evil/miner:1", "string", 0}, {0}};
  const char *want = "workspace.yaml:1:8: image \"evil/miner:1\" is not "
                     "allowed; allowed prefixes: atrium-test/, "
                     "registry.example.com/dev/ "
                     "(plugins.provisioner_docker.allowed_images)";
  ws_t ws;
  ws_init(&ws, &f, "param-image");
  build_t b = {.transition = ATR_TRANSITION_START, .params = evil};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EINVAL);
  assert_string_equal(b.err, want);
  assert_job_has(&b.job, ATR_LOG_ERROR, "Planning", want);
  build_free(&b);
  /* apply() checks it too (a host without plan()). */
  build_t a = {
      .transition = ATR_TRANSITION_START, .params = evil, .skip_plan = true};
  ws_build(&ws, &a);
  assert_int_equal(a.rc, ATR_EINVAL);
  assert_string_equal(a.err, want);
  assert_job_has(&a.job, ATR_LOG_ERROR, "Applying", want);
  assert_null(a.res.state);
  build_free(&a);
  assert_int_equal(count_containers(&ws), 0);
  ws_free(&ws);
  fx_stop(&f);
}

void test_a_missing_image_with_pull_policy_never_fails(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: atrium-test/missing:1\n");
  ws_t ws;
  ws_init(&ws, &f, "missing");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_ENOENT);
  assert_contains(b.err, "No such image: atrium-test/missing:1");
  assert_contains(b.err, "pull_policy is never");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying",
                 "Error: No such image: atrium-test/missing:1");
  /* Nothing was made; the state says so. */
  assert_string_equal(b.res.state,
                      "{\"containers\":[],\"volumes\":[],\"image\":"
                      "\"atrium-test/missing:1\"}");
  build_free(&b);
  ws_free(&ws);
  fx_stop(&f);
}

void test_engine_errors_reach_the_log_in_its_words(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: " IMAGE "\nmemory: 1m\nvolumes:\n"
              "  - {name: home, path: /home/dev}\n");
  ws_t ws;
  ws_init(&ws, &f, "tiny");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EPLUGIN);
  assert_string_equal(b.err, "creating container atrium-alice-tiny: Minimum "
                             "memory limit allowed is 6MB");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying",
                 "Error: creating container atrium-alice-tiny: Minimum "
                 "memory limit allowed is 6MB");
  /* The volume was made before: the state lists it. */
  char *vol = volume_name(&ws, "home");
  assert_contains(b.res.state, vol);
  build_free(&b);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  assert_false(exists("volumes", vol));
  free(vol);
  ws_free(&ws);
  fx_stop(&f);
}

void test_a_command_that_exits_fails_the_start(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: " IMAGE "\n"
              "command: \"echo starting >&2; echo boom >&2; exit 3\"\n");
  ws_t ws;
  ws_init(&ws, &f, "crash");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EPLUGIN);
  assert_string_equal(b.err, "container atrium-alice-crash exited with code "
                             "3 before it was up; its last output: starting "
                             "| boom");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying", "atrium-alice-crash: boom");
  /* The exited container stays (for docker logs) and is in the state. */
  assert_contains(b.res.state, "\"name\":\"atrium-alice-crash\"");
  assert_int_equal(b.res.nresources, 1);
  assert_string_equal(b.res.resources[0].metadata[1].value, "exited");
  build_free(&b);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  assert_int_equal(count_containers(&ws), 0);
  ws_free(&ws);
  fx_stop(&f);
}

void test_a_foreign_container_with_the_name_is_not_removed(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  long st = 0;
  json_decref(eng("POST", "/containers/create?name=atrium-alice-taken",
                  "{\"Image\":\"" IMAGE "\",\"Cmd\":[\"/bin/true\"]}", &st));
  assert_int_equal(st, 201);
  ws_t ws;
  ws_init(&ws, &f, "taken");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EEXIST);
  assert_string_equal(b.err, "a container named atrium-alice-taken exists "
                             "that is not this workspace's (it has no "
                             "plugins.provisioner_docker labels); remove it "
                             "(docker rm -f atrium-alice-taken) or rename "
                             "the workspace");
  assert_true(exists("containers", "atrium-alice-taken"));
  build_free(&b);
  eng_raw("DELETE", "/containers/atrium-alice-taken?force=1", NULL, NULL, NULL);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
}
