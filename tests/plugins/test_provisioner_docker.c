/* tests/plugins/test_provisioner_docker.c — what provisioner_docker
 * promises a provisioner daemon, against a real Docker Engine.
 *
 * Each test loads the real provisioner_docker.so through the core loader
 * and drives it as the host would: a workdir holding workspace.yaml per
 * job, plan() then apply(), the state of one build given to the next. The
 * engine is the ctest fixture `dockerd` (scripts/dev/dockerd.sh, socket
 * path in ATR_TEST_DOCKER_DIR/socket) with the image atrium-test/busybox:1;
 * workspace containers use network mode none and nothing is ever pulled.
 * The test looks at the engine itself (inspect, list by label, exec) over
 * the same socket with libcurl.
 *
 * Without the fixture's socket the whole test is skipped (exit 77).
 *
 * One program: this file holds main, the test list and the plugin and
 * parse tests; test_provisioner_docker_builds.c and _cancel.c the rest,
 * docker_fixture.c the helpers they share.
 */
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

/* ---- tests: the plugin */

void test_descriptor_is_the_docker_type(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  assert_int_equal(f.h->desc->kind, ATR_KIND_PROVISIONER);
  assert_string_equal(f.ops->type, "docker");
  assert_int_equal(f.ops->struct_size, sizeof(atr_provisioner_ops_t));
  assert_true(ATR_PROVISIONER_HAS_PLAN(f.ops));
  assert_non_null(f.ops->cancel);
  fx_stop(&f);
  /* init said which engine it found. */
  assert_int_equal(fflush(log_stream), 0);
  assert_contains(log_buf, "[provisioner_docker] Docker Engine ");
  assert_contains(log_buf, "(API 1.");
  assert_contains(log_buf, sock_path);
}

void test_init_warns_and_builds_fail_without_an_engine(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, "    socket: /tmp/atr-test-dk-no/docker.sock\n");
  assert_int_equal(fflush(log_stream), 0);
  assert_contains(log_buf, "cannot reach the Docker engine at "
                           "/tmp/atr-test-dk-no/docker.sock: No such file or "
                           "directory; builds fail until");
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "nowhere");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EUNAVAIL);
  assert_string_equal(b.err, "cannot reach the Docker engine at "
                             "/tmp/atr-test-dk-no/docker.sock: No such file "
                             "or directory");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying",
                 "Error: cannot reach the Docker engine at");
  assert_null(b.res.state); /* the host keeps the prior state */
  build_free(&b);
  ws_free(&ws);
  fx_stop(&f);
}

static void assert_init_fails(const char *options, const char *want) {
  fx_t f;
  char *err = NULL;
  assert_int_not_equal(fx_try(&f, options, &err), 0);
  assert_contains(err, want);
  free(err);
  fx_stop(&f);
}

void test_invalid_options_fail_init(void **state) {
  (void)state;
  assert_init_fails("    pull_policy: sometimes\n", "pull_policy");
  assert_init_fails("    pull_policy: sometimes\n",
                    "never, if-missing, always");
  assert_init_fails("    label_prefix: Not A Prefix\n",
                    "plugin provisioner_docker: init failed: "
                    "plugins.provisioner_docker.label_prefix: \"Not A "
                    "Prefix\" is not a label prefix");
  assert_init_fails("    socket: docker.sock\n",
                    "plugins.provisioner_docker.socket: \"docker.sock\" is "
                    "not an absolute path");
  assert_init_fails("    start_timeout: 0s\n", "start_timeout");
}

/* ---- tests: parse */

void test_parse_accepts_the_contract_example(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f,
          "image: atrium-test/busybox:1                 # required\n"
          "command: [\"/bin/sh\", \"-c\", \"" LOOP "\"]\n"
          "working_dir: /home/dev\n"
          "env:\n"
          "  GREETING: \"hello ${owner.name}\"\n"
          "cpus: \"${param.cpus}\"\n"
          "memory: \"${param.memory}\"\n"
          "volumes:\n"
          "  - name: home\n"
          "    path: /home/dev\n"
          "labels:\n"
          "  team: \"${param.team}\"\n"
          "network_mode: none\n"
          "containers:\n"
          "  - name: db\n"
          "    image: atrium-test/busybox:1\n"
          "    command: [\"/bin/sh\", \"-c\", \"while :; do sleep 1; done\"]\n"
          "    volumes:\n"
          "      - name: home\n"
          "        path: /data\n");
  parsed_t p;
  parse(&f, starter_params, 3, &p);
  if (p.rc != 0)
    fail_msg("parse: %s", p.err);
  assert_null(p.err);
  assert_job_has(&p.job, ATR_LOG_INFO, "Validating",
                 "workspace.yaml is valid: image atrium-test/busybox:1; "
                 "extra containers: db; volumes: home at /home/dev, home at "
                 "/data");
  parsed_free(&p);
  fx_stop(&f);
}

void test_parse_names_an_unknown_reference_with_its_position(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = parse_error(&f, "image: " IMAGE "\n"
                              "env:\n"
                              "  A: \"x ${param.cpu} y\"\n");
  assert_string_equal(err, "workspace.yaml:3:9: unknown reference "
                           "${param.cpu} (parameters: cpus, memory, team)");
  free(err);
  err = parse_error(&f, "image: " IMAGE "\ncpus: ${owner.nmae}\n");
  assert_string_equal(
      err, "workspace.yaml:2:7: unknown reference ${owner.nmae} (facts: "
           "workspace.name, workspace.id, owner.name, owner.email, owner.id, "
           "template.name, build.number; parameters: cpus, memory, team)");
  free(err);
  err =
      parse_error(&f, "image: \"" IMAGE "\"\ncommand: \"echo ${param.team\"\n");
  assert_string_equal(err, "workspace.yaml:2:16: unterminated reference "
                           "\"${param.team\"; close it with }, or write $${ "
                           "for a literal ${");
  free(err);
  /* $${ is a literal: no reference to check. */
  err = parse_error(&f, "image: " IMAGE "\nenv:\n  A: \"$${nothing}\"\n");
  assert_null(err);
  fx_stop(&f);
}

void test_parse_rejects_unknown_keys_listing_the_valid_ones(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = parse_error(&f, "image: " IMAGE "\nimgae: x\n");
  assert_string_equal(err, "workspace.yaml:2:1: unknown key \"imgae\"; valid "
                           "keys: command, containers, cpus, env, image, "
                           "labels, memory, network_mode, volumes, "
                           "working_dir");
  free(err);
  err = parse_error(&f, "image: " IMAGE "\ncontainers:\n"
                        "  - name: db\n    image: " IMAGE "\n"
                        "    containers: []\n");
  assert_string_equal(err, "workspace.yaml:5:5: unknown key \"containers\"; "
                           "valid keys: command, cpus, env, image, labels, "
                           "memory, name, network_mode, volumes, working_dir");
  free(err);
  fx_stop(&f);
}

void test_parse_reports_every_problem_with_its_position(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = parse_error(&f, "image: [a\n");
  assert_contains(err, "workspace.yaml:2:1: did not find expected ',' or ']' "
                       "while parsing a flow sequence");
  free(err);
  err = parse_error(&f, "command: sleep 1\n");
  assert_string_equal(err, "workspace.yaml:1:1: image is required (image: "
                           "registry/name:tag)");
  free(err);
  err = parse_error(&f, "image: " IMAGE "\n"
                        "cpus: lots\n"
                        "memory: 12 parsecs\n"
                        "working_dir: home\n"
                        "volumes:\n"
                        "  - name: \"bad name\"\n"
                        "    path: /x\n"
                        "  - path: /y\n"
                        "labels:\n"
                        "  dev.atrium.workspace_id: other\n"
                        "env: [a]\n");
  assert_string_equal(
      err,
      "workspace.yaml:8:5: a volume needs a name\n"
      "workspace.yaml:11:6: env must be a map of names to values, not a "
      "list\n"
      "workspace.yaml:4:14: working_dir \"home\" is not an absolute path\n"
      "workspace.yaml:2:7: cpus \"lots\" is not a number of CPUs; write it "
      "like 2 or 1.5\n"
      "workspace.yaml:3:9: memory \"12 parsecs\" is not a size; write bytes "
      "or a size with a unit: 512MiB, 1GiB, 256m, 1g\n"
      "workspace.yaml:6:11: volume name \"bad name\" may only hold letters, "
      "digits, '_', '.' and '-', starting with a letter or digit (at most "
      "63)\n"
      "workspace.yaml:10:28: label \"dev.atrium.workspace_id\" starts with "
      "dev.atrium., which atrium keeps for its own labels "
      "(plugins.provisioner_docker.label_prefix); choose another name");
  free(err);
  fx_stop(&f);
}

void test_parse_needs_workspace_yaml(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  parsed_t p;
  parse(&f, starter_params, 3, &p);
  assert_int_equal(p.rc, ATR_ENOENT);
  assert_string_equal(p.err, "the template has no workspace.yaml next to "
                             "template.yaml; add one that names at least the "
                             "image (image: registry/name:tag)");
  parsed_free(&p);
  fx_stop(&f);
}

void test_parse_refuses_an_image_outside_allowed_images(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = parse_error(&f, "image: evil/miner:1\n");
  assert_string_equal(err, "workspace.yaml:1:8: image \"evil/miner:1\" is not "
                           "allowed; allowed prefixes: atrium-test/, "
                           "registry.example.com/dev/ "
                           "(plugins.provisioner_docker.allowed_images)");
  free(err);
  /* Extra containers too; an allowed registry's image is fine. */
  err = parse_error(&f, "image: registry.example.com/dev/tools:2\n"
                        "containers:\n  - name: db\n    image: postgres:15\n");
  assert_string_equal(err, "workspace.yaml:4:12: image \"postgres:15\" is not "
                           "allowed; allowed prefixes: atrium-test/, "
                           "registry.example.com/dev/ "
                           "(plugins.provisioner_docker.allowed_images)");
  free(err);
  /* From a parameter: checked at the build. */
  const char *const names[] = {"image"};
  fx_spec(&f, "image: \"${param.image}\"\n");
  parsed_t p;
  parse(&f, names, 1, &p);
  assert_int_equal(p.rc, 0);
  parsed_free(&p);
  fx_stop(&f);
}

/* ---- main */

static bool engine_answers(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
  bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

int main(void) {
  char *where = path2(ATR_TEST_DOCKER_DIR, "socket");
  char *text = read_text(where);
  if (text != NULL)
    text[strcspn(text, "\n")] = '\0';
  if (text == NULL || *text == '\0' || strlen(text) >= sizeof sock_path) {
    printf("the test Docker engine is not running (no socket path in %s); "
           "run scripts/dev/dockerd.sh start %s, or ctest with its dockerd "
           "fixture; skipping\n",
           where, ATR_TEST_DOCKER_DIR);
    free(where);
    free(text);
    return 77;
  }
  snprintf(sock_path, sizeof sock_path, "%s", text);
  free(text);
  if (!engine_answers()) {
    printf("the test Docker engine does not answer on %s (from %s); "
           "skipping\n",
           sock_path, where);
    free(where);
    return 77;
  }
  free(where);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!exists("images", IMAGE)) {
    printf("the test Docker engine has no image %s; run "
           "scripts/dev/dockerd.sh start again; skipping\n",
           IMAGE);
    return 77;
  }
  engine_clean();
  log_stream = open_memstream(&log_buf, &log_len);
  if (log_stream == NULL)
    return 1;
  atr_log_set_level(ATR_LOG_DEBUG);
  atr_log_set_stream(log_stream);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor_is_the_docker_type),
      cmocka_unit_test(test_init_warns_and_builds_fail_without_an_engine),
      cmocka_unit_test(test_invalid_options_fail_init),
      cmocka_unit_test(test_parse_accepts_the_contract_example),
      cmocka_unit_test(test_parse_names_an_unknown_reference_with_its_position),
      cmocka_unit_test(test_parse_rejects_unknown_keys_listing_the_valid_ones),
      cmocka_unit_test(test_parse_reports_every_problem_with_its_position),
      cmocka_unit_test(test_parse_needs_workspace_yaml),
      cmocka_unit_test(test_parse_refuses_an_image_outside_allowed_images),
      cmocka_unit_test(test_start_makes_the_volume_and_the_container),
      cmocka_unit_test(test_the_home_volume_outlives_stop_and_start),
      cmocka_unit_test(test_start_twice_converges_to_one_container),
      cmocka_unit_test(test_stop_and_delete_of_nothing_succeed),
      cmocka_unit_test(test_an_image_from_a_parameter_is_checked_at_the_build),
      cmocka_unit_test(test_a_missing_image_with_pull_policy_never_fails),
      cmocka_unit_test(test_engine_errors_reach_the_log_in_its_words),
      cmocka_unit_test(test_a_command_that_exits_fails_the_start),
      cmocka_unit_test(test_a_foreign_container_with_the_name_is_not_removed),
      cmocka_unit_test(test_a_failed_pull_reports_the_engine_error),
      cmocka_unit_test(test_cancel_while_waiting_returns_the_state),
      cmocka_unit_test(test_cancel_while_pulling_returns_soon),
      cmocka_unit_test(test_ten_starts_in_parallel_all_run),
      cmocka_unit_test(test_sensitive_values_never_reach_a_log),
      cmocka_unit_test(test_an_agent_runs_from_the_mounted_bundle),
      cmocka_unit_test(test_the_agent_runs_the_images_command),
      cmocka_unit_test(test_an_agent_is_refused_where_it_cannot_start),
      /* Last: it reads what every test before it logged. */
      cmocka_unit_test(test_the_process_log_never_shows_a_secret),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  engine_clean();
  atr_log_set_stream(NULL);
  fclose(log_stream);
  free(log_buf);
  curl_global_cleanup();
  return failed;
}
