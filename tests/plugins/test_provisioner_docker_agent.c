/* tests/plugins/test_provisioner_docker_agent.c — a start build with a
 * workspace agent (ABI 1.3) against the engine: the bundle directory is
 * bind-mounted read-only at /opt/atrium, its launcher is the entrypoint in
 * front of the workspace's command (the spec's, else the image's), the
 * agent's URL and token are in the container's environment and its
 * StopTimeout is agent_stop_timeout; the token is in no log line. A start
 * the agent could not survive (network_mode none, no bundle) is refused
 * before anything is made. The bundle here is a stand-in launcher that
 * checks its arguments and runs the command: the real agent is not
 * needed to see what the container gets. Run by
 * test_provisioner_docker.c's main. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "atrium/provisioner.h"
#include "docker_fixture.h"
#include "prov_harness.h"

#define AGENT_URL "http://127.0.0.1:3000"
#define AGENT_LAUNCHER                                                         \
  "#!/bin/sh\n"                                                                \
  "# A stand-in for the agent: checks its arguments, runs the command.\n"      \
  "[ \"$1 $2 $3\" = \"agent --init --\" ] || exit 3\n"                         \
  "shift 3\n"                                                                  \
  "exec \"$@\"\n"

/* A bundle directory with the stand-in launcher; the caller removes it. */
static char *make_bundle(void) {
  char *dir = strdup("/tmp/atr-test-bundle-XXXXXX");
  assert_non_null(mkdtemp(dir));
  assert_int_equal(chmod(dir, 0755), 0);
  char *launcher = path2(dir, "atrium-agent");
  write_text(launcher, AGENT_LAUNCHER);
  assert_int_equal(chmod(launcher, 0755), 0);
  free(launcher);
  return dir;
}

static void remove_bundle(char *dir) {
  nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

static void agent_fx_start(fx_t *f) {
  char *opts = NULL;
  assert_true(asprintf(&opts,
                       "    socket: %s\n"
                       "    allowed_images: [atrium-test/]\n"
                       "    pull_policy: never\n"
                       "    start_timeout: 20s\n"
                       "    agent_stop_timeout: 7s\n",
                       sock_path) >= 0);
  fx_start(f, opts);
  free(opts);
}

static atr_prov_agent_t agent_of(const char *bundle) {
  return (atr_prov_agent_t){.struct_size = sizeof(atr_prov_agent_t),
                            .name = "main",
                            .token = AGENT_TOKEN,
                            .access_url = AGENT_URL,
                            .bundle_dir = bundle,
                            .init_script = "exec true\n"};
}

static void no_line_has_the_token(atr_prov_job_t *job) {
  for (size_t i = 0; i < job->n; i++)
    assert_null(strstr(job->v[i].line, AGENT_TOKEN));
}

static const json_t *agent_mount(const json_t *c) {
  size_t i;
  const json_t *m;
  json_array_foreach(json_object_get(c, "Mounts"), i, m) {
    const char *dst = json_string_value(json_object_get(m, "Destination"));
    if (dst != NULL && strcmp(dst, "/opt/atrium") == 0)
      return m;
  }
  return NULL;
}

static void assert_entrypoint(const json_t *c, const char *want) {
  const json_t *cfg = json_object_get(c, "Config");
  char *got = json_dumps(json_object_get(cfg, "Entrypoint"), JSON_COMPACT);
  assert_string_equal(got, want);
  free(got);
  assert_true(json_array_size(json_object_get(cfg, "Cmd")) == 0);
}

void test_an_agent_runs_from_the_mounted_bundle(void **state) {
  (void)state;
  char *bundle = make_bundle();
  fx_t f;
  agent_fx_start(&f);
  fx_spec(&f, "image: " IMAGE "\n"
              "command: [\"/bin/sh\", \"-c\", \"" LOOP "\"]\n"
              "network_mode: host\n");
  ws_t ws;
  ws_init(&ws, &f, "agent");
  atr_prov_agent_t agent = agent_of(bundle);
  build_t b = {.transition = ATR_TRANSITION_START, .agent = &agent};
  ws_build(&ws, &b);
  if (b.rc != 0)
    fail_msg("start: %s", b.err);

  json_t *c = inspect("containers", "atrium-alice-agent", NULL);
  assert_true(
      json_is_true(json_object_get(json_object_get(c, "State"), "Running")));
  const json_t *m = agent_mount(c);
  assert_non_null(m);
  assert_string_equal(json_string_value(json_object_get(m, "Type")), "bind");
  assert_string_equal(json_string_value(json_object_get(m, "Source")), bundle);
  assert_false(json_is_true(json_object_get(m, "RW")));
  assert_entrypoint(c, "[\"/opt/atrium/atrium-agent\",\"agent\",\"--init\","
                       "\"--\",\"/bin/sh\",\"-c\",\"" LOOP "\"]");
  const json_t *cfg = json_object_get(c, "Config");
  char *env = json_dumps(json_object_get(cfg, "Env"), JSON_COMPACT);
  assert_contains(env, "\"ATRIUM_AGENT_URL=" AGENT_URL "\"");
  assert_contains(env, "\"ATRIUM_AGENT_TOKEN=" AGENT_TOKEN "\"");
  free(env);
  assert_int_equal(json_integer_value(json_object_get(cfg, "StopTimeout")), 7);
  json_decref(c);
  /* The command runs under the launcher, with the agent's environment. */
  char *out = NULL;
  assert_int_equal(exec_in("atrium-alice-agent",
                           "echo \"$ATRIUM_AGENT_URL\"; ls /opt/atrium", &out),
                   0);
  assert_string_equal(out, AGENT_URL "\natrium-agent\n");
  free(out);

  assert_job_has(&b.job, ATR_LOG_INFO, "Planning",
                 "Agent main: runs in atrium-alice-agent from ");
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying",
                 "Agent main: entrypoint [\"/opt/atrium/atrium-agent\"");
  no_line_has_the_token(&b.job);
  assert_null(strstr(b.res.state, AGENT_TOKEN));
  build_free(&b);

  /* Stop gets no agent, and the container goes within its StopTimeout
   * (the command traps TERM: at once). */
  build_t stop = {.transition = ATR_TRANSITION_STOP};
  ws_build(&ws, &stop);
  if (stop.rc != 0)
    fail_msg("stop: %s", stop.err);
  assert_job_has(&stop.job, ATR_LOG_INFO, "Planning",
                 "the one that runs the agent 7s");
  build_free(&stop);
  assert_false(exists("containers", "atrium-alice-agent"));
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
  remove_bundle(bundle);
}

void test_the_agent_runs_the_images_command(void **state) {
  (void)state;
  char *bundle = make_bundle();
  fx_t f;
  agent_fx_start(&f);
  fx_spec(&f, "image: " IMAGE "\nnetwork_mode: host\n");
  long st = 0;
  json_t *img = inspect("images", IMAGE, &st);
  assert_int_equal(st, 200);
  json_t *want = json_pack("[s, s, s, s]", "/opt/atrium/atrium-agent", "agent",
                           "--init", "--");
  const json_t *icfg = json_object_get(img, "Config");
  const char *parts[] = {"Entrypoint", "Cmd"};
  for (size_t k = 0; k < 2; k++) {
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(icfg, parts[k]), i, v) {
      json_array_append(want, v);
    }
  }
  char *want_text = json_dumps(want, JSON_COMPACT);
  json_decref(want);
  json_decref(img);
  ws_t ws;
  ws_init(&ws, &f, "image-cmd");
  atr_prov_agent_t agent = agent_of(bundle);
  /* The image's own command may end at once (busybox runs sh): whether
   * the start succeeds is not the point, the container's entrypoint is. */
  build_t b = {.transition = ATR_TRANSITION_START, .agent = &agent};
  ws_build(&ws, &b);
  json_t *c = inspect("containers", "atrium-alice-image-cmd", &st);
  assert_int_equal(st, 200);
  assert_entrypoint(c, want_text);
  json_decref(c);
  no_line_has_the_token(&b.job);
  if (b.err != NULL)
    assert_null(strstr(b.err, AGENT_TOKEN));
  build_free(&b);
  free(want_text);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
  remove_bundle(bundle);
}

void test_an_agent_is_refused_where_it_cannot_start(void **state) {
  (void)state;
  char *bundle = make_bundle();
  fx_t f;
  agent_fx_start(&f);
  fx_spec(&f, "image: " IMAGE "\n"
              "command: [\"/bin/sh\", \"-c\", \"" LOOP "\"]\n"
              "network_mode: none\n");
  ws_t ws;
  ws_init(&ws, &f, "no-net");
  atr_prov_agent_t agent = agent_of(bundle);
  build_t b = {.transition = ATR_TRANSITION_START, .agent = &agent};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EINVAL);
  assert_string_equal(b.err, "the agent cannot reach " AGENT_URL
                             " with network_mode none; use host or a network "
                             "that reaches the server");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Planning",
                 "the agent cannot reach " AGENT_URL);
  no_line_has_the_token(&b.job);
  build_free(&b);
  assert_false(exists("containers", "atrium-alice-no-net"));

  /* apply() alone checks it too. */
  build_t direct = {
      .transition = ATR_TRANSITION_START, .agent = &agent, .skip_plan = true};
  ws_build(&ws, &direct);
  assert_int_equal(direct.rc, ATR_EINVAL);
  build_free(&direct);
  assert_false(exists("containers", "atrium-alice-no-net"));

  /* A server without a bundle cannot start the agent. */
  fx_spec(&f, "image: " IMAGE "\nnetwork_mode: host\n");
  agent.bundle_dir = NULL;
  build_t nob = {.transition = ATR_TRANSITION_START, .agent = &agent};
  ws_build(&ws, &nob);
  assert_int_equal(nob.rc, ATR_EINVAL);
  assert_string_equal(nob.err,
                      "the template has an agent, but the server has no "
                      "agent bundle to mount (set agent.bundle_dir in its "
                      "configuration to the bundle's absolute path)");
  build_free(&nob);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
  remove_bundle(bundle);
}
