/* tests/plugins/test_provisioner_terraform_agent.c — a workspace agent
 * (ABI 1.3) with the terraform-local starter: a start build fills the
 * agent variables the configuration declares (and no others) and the
 * template writes agent.env (0600, URL and token) for `atrium agent
 * --env-file`; the token is in no log line and not in the state; a stop
 * gets no agent and removes the file. Run by test_provisioner_terraform.c's
 * main. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "atrium/provisioner.h"
#include "prov_harness.h"
#include "terraform_fixture.h"

#define AGENT_URL "http://127.0.0.1:3000"
#define INIT_SCRIPT "#!/bin/sh\nexec /opt/atrium/atrium-agent agent\n"

/* The two agent variables the starter does not declare itself. */
static const char agent_extra_tf[] = "variable \"atrium_agent_init_script\" {\n"
                                     "  type    = string\n"
                                     "  default = \"\"\n"
                                     "}\n"
                                     "variable \"atrium_agent_bundle_dir\" {\n"
                                     "  type    = string\n"
                                     "  default = \"\"\n"
                                     "}\n";

static json_t *tfvars_of(const build_t *b) {
  char *path = path2(b->workdir, "atrium.auto.tfvars.json");
  json_t *vars = json_load_file(path, 0, NULL);
  free(path);
  assert_true(json_is_object(vars));
  return vars;
}

static const char *var(const json_t *vars, const char *name) {
  return json_string_value(json_object_get(vars, name));
}

static void no_line_has_the_token(const atr_prov_job_t *job) {
  for (size_t i = 0; i < job->n; i++)
    if (strstr(job->v[i].line, AGENT_TOKEN) != NULL)
      fail_msg("the token is in the job log: %s", job->v[i].line);
}

void test_an_agent_gets_its_variables_and_env_file(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "agent"};
  const atr_prov_agent_t agent = {.struct_size = sizeof agent,
                                  .name = "main",
                                  .token = AGENT_TOKEN,
                                  .access_url = AGENT_URL,
                                  .bundle_dir = "/usr/libexec/atrium/bundle",
                                  .init_script = INIT_SCRIPT};
  build_t start = {.transition = ATR_TRANSITION_START,
                   .agent = &agent,
                   .extra_tf = agent_extra_tf};
  build_ok(&ws, &start);

  json_t *vars = tfvars_of(&start);
  assert_string_equal(var(vars, "atrium_agent_token"), AGENT_TOKEN);
  assert_string_equal(var(vars, "atrium_access_url"), AGENT_URL);
  assert_string_equal(var(vars, "atrium_agent_init_script"), INIT_SCRIPT);
  assert_string_equal(var(vars, "atrium_agent_bundle_dir"),
                      "/usr/libexec/atrium/bundle");
  json_decref(vars);

  char *env_path = ws_file(&ws, "agent.env");
  struct stat st;
  assert_int_equal(stat(env_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char *env = read_text(env_path);
  assert_string_equal(env, "ATRIUM_AGENT_URL=" AGENT_URL "\n"
                           "ATRIUM_AGENT_TOKEN=" AGENT_TOKEN "\n");
  free(env);
  assert_non_null(resource(&start, "terraform_data.agent_env[0]"));
  no_line_has_the_token(&start.job);
  assert_null(strstr(ws.state, AGENT_TOKEN));
  build_free(&start);

  /* A stop carries no agent: the file goes, the variables are left out. */
  build_t stop = {.transition = ATR_TRANSITION_STOP,
                  .extra_tf = agent_extra_tf};
  build_ok(&ws, &stop);
  assert_false(exists(env_path));
  vars = tfvars_of(&stop);
  assert_null(json_object_get(vars, "atrium_agent_token"));
  assert_null(json_object_get(vars, "atrium_access_url"));
  json_decref(vars);
  assert_null(resource(&stop, "terraform_data.agent_env[0]"));
  no_line_has_the_token(&stop.job);
  build_free(&stop);

  /* Without an agent a start makes no agent.env. */
  build_t plain = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &plain);
  assert_false(exists(env_path));
  build_free(&plain);
  build_t del = {.transition = ATR_TRANSITION_DELETE};
  build_ok(&ws, &del);
  build_free(&del);
  free(env_path);
  free(ws.state);
  fx_stop(&f);
}
