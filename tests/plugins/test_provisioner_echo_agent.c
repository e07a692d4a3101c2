/* tests/plugins/test_provisioner_echo_agent.c — the echo provisioner with a
 * workspace agent (ABI 1.3), loaded through the core loader: a start build
 * logs the agent without its token, marks its resource as the agent's host
 * and writes <agent_env_dir>/<workspace id>.env (0600, URL and token) that
 * a stop build removes; a request from a 1.2 host carries no agent, so
 * nothing of it is read. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/provisioner.h"
#include "prov_harness.h"

#define WS_ID "0b7e4c9a-1f2d-4e5b-8a6c-3d2e1f0a9b8c"
#define TOKEN "s3cr3t-agent-token-do-not-log"
#define URL "http://127.0.0.1:3000"

typedef struct fx {
  char dir[64];
  char *env_file;
  ph_plugin_t plugin;
} fx_t;

static int setup(void **state) {
  fx_t *f = calloc(1, sizeof *f);
  snprintf(f->dir, sizeof f->dir, "/tmp/atr-echo-agent-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  assert_true(asprintf(&f->env_file, "%s/%s.env", f->dir, WS_ID) > 0);
  char *opts = NULL, *err = NULL;
  assert_true(asprintf(&opts, "    agent_env_dir: %s\n", f->dir) > 0);
  int rc = ph_plugin_try(&f->plugin, ATR_TEST_PLUGIN_DIR, "provisioner_echo",
                         opts, &err);
  if (rc != 0)
    fail_msg("start: %s", err);
  free(opts);
  *state = f;
  return 0;
}

static int teardown(void **state) {
  fx_t *f = *state;
  ph_plugin_stop(&f->plugin);
  unlink(f->env_file);
  rmdir(f->dir);
  free(f->env_file);
  free(f);
  return 0;
}

static atr_prov_apply_request_t request(atr_prov_job_t *job, atr_transition_t t,
                                        const atr_prov_agent_t *agent) {
  return (atr_prov_apply_request_t){.struct_size =
                                        sizeof(atr_prov_apply_request_t),
                                    .job = job,
                                    .log = ph_job_log,
                                    .canceled = ph_job_canceled,
                                    .workdir = "/nonexistent",
                                    .transition = t,
                                    .build_number = 1,
                                    .workspace_id = WS_ID,
                                    .workspace_name = "dev",
                                    .agent = agent};
}

static const atr_prov_agent_t agent = {.struct_size = sizeof agent,
                                       .name = "main",
                                       .token = TOKEN,
                                       .access_url = URL,
                                       .bundle_dir = NULL,
                                       .init_script = "exec true\n"};

static int apply(fx_t *f, const atr_prov_apply_request_t *req,
                 atr_prov_apply_result_t *res) {
  char *err = NULL;
  memset(res, 0, sizeof *res);
  res->struct_size = sizeof *res;
  int rc = f->plugin.ops->apply(f->plugin.ctx, req, res, &err);
  if (rc != 0)
    fail_msg("apply: %s", err);
  return rc;
}

static void no_line_has_the_token(atr_prov_job_t *job) {
  assert_null(ph_job_find(job, -1, TOKEN));
}

static void a_start_with_an_agent_writes_its_env_file(void **state) {
  fx_t *f = *state;
  atr_prov_job_t job;
  ph_job_init(&job);
  atr_prov_apply_request_t req = request(&job, ATR_TRANSITION_START, &agent);
  atr_prov_apply_result_t res;
  apply(f, &req, &res);
  assert_non_null(ph_job_find(
      &job, -1, "agent main: url " URL ", token (set), init script 10 bytes"));
  no_line_has_the_token(&job);
  assert_int_equal(res.nresources, 1);
  assert_true(ATR_PROV_RESOURCE_HOSTS_AGENT(&res.resources[0]));
  ph_result_release(&res);

  struct stat st;
  assert_int_equal(stat(f->env_file, &st), 0);
  assert_int_equal(st.st_mode & 07777, 0600);
  FILE *in = fopen(f->env_file, "r");
  char text[256] = {0};
  assert_true(fread(text, 1, sizeof text - 1, in) > 0);
  fclose(in);
  assert_string_equal(text, "ATRIUM_AGENT_URL=" URL "\n"
                            "ATRIUM_AGENT_TOKEN=" TOKEN "\n");
  ph_job_free(&job);

  /* Stop: the agent gets no new token and its file goes. */
  ph_job_init(&job);
  req = request(&job, ATR_TRANSITION_STOP, NULL);
  apply(f, &req, &res);
  assert_int_equal(res.nresources, 1);
  assert_false(ATR_PROV_RESOURCE_HOSTS_AGENT(&res.resources[0]));
  ph_result_release(&res);
  assert_int_equal(access(f->env_file, F_OK), -1);
  assert_null(ph_job_find(&job, -1, "agent main"));
  ph_job_free(&job);
}

static void a_request_from_a_1_2_host_has_no_agent(void **state) {
  fx_t *f = *state;
  atr_prov_job_t job;
  ph_job_init(&job);
  /* The plugin must not read agent: this host's request ends before it
   * (what lies there in memory is not the host's). */
  atr_prov_apply_request_t req = request(&job, ATR_TRANSITION_START, &agent);
  req.struct_size = (uint32_t)offsetof(atr_prov_apply_request_t, agent);
  atr_prov_apply_result_t res;
  apply(f, &req, &res);
  assert_null(ph_job_find(&job, -1, "agent "));
  assert_false(ATR_PROV_RESOURCE_HOSTS_AGENT(&res.resources[0]));
  ph_result_release(&res);
  assert_int_equal(access(f->env_file, F_OK), -1);
  ph_job_free(&job);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(a_start_with_an_agent_writes_its_env_file,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(a_request_from_a_1_2_host_has_no_agent,
                                      setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
