/* tests/plugins/test_provisioner_terraform_vars.c — what reaches
 * terraform: tfvars typed from the declared variables, facts and
 * parameters in the environment, and sensitive values kept out of every
 * log line. Run by test_provisioner_terraform.c's main. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atrium/provisioner.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "prov_harness.h"
#include "terraform_fixture.h"

/* ---- variables and environment */

static const char extra_tf[] =
    "# variable \"commented\" {}\n"
    "/* variable \"commented\" {} */\n"
    "variable \"tags\" {\n  type = list(string)\n}\n"
    "variable unquoted {\n  type = string\n}\n"
    "locals {\n"
    "  closing = \"}}${\"}\"}\"\n"
    "  doc     = <<-EOT\n    }}\n    variable \"in_heredoc\" {\n  EOT\n"
    "}\n"
    "variable \"after_braces\" {\n  type = string\n}\n"
    "variable \"atrium_build_number\" {\n  type = number\n}\n"
    "variable \"atrium_template_version\" {\n  type = string\n}\n"
    "resource \"terraform_data\" \"env\" {\n"
    "  count = var.atrium_transition == \"start\" ? 1 : 0\n"
    "  provisioner \"local-exec\" {\n"
    "    command = \"env | grep -E '^(ATRIUM_|TF_IN_AUTOMATION=|TF_INPUT=|"
    "CHECKPOINT_DISABLE=)' | sort > \\\"$OUT\\\"\"\n"
    "    environment = { OUT = \"${var.root}/env.txt\" }\n"
    "  }\n"
    "}\n";

static const char extra_tf_json[] =
    "{\"variable\": {\"from_json\": {\"type\": \"string\"}}}\n";

static void write_extras(const char *workdir) {
  char *a = path2(workdir, "extra.tf"), *b = path2(workdir, "extra.tf.json");
  write_text(a, extra_tf, 0644);
  write_text(b, extra_tf_json, 0644);
  free(a);
  free(b);
}

/* plan() in a workdir with extra.tf and extra.tf.json next to the
 * starter's files. */
static void plan_with_extras(fx_t *f, build_t *b, const pv_t *extra,
                             atr_prov_apply_request_t *req,
                             atr_param_value_t *params) {
  ph_job_init(&b->job);
  b->workdir = fx_workdir(f);
  write_extras(b->workdir);
  size_t np = make_params(f, extra, params, 16);
  *req = (atr_prov_apply_request_t){.struct_size = sizeof *req,
                                    .job = &b->job,
                                    .log = ph_job_log,
                                    .canceled = ph_job_canceled,
                                    .workdir = b->workdir,
                                    .transition = ATR_TRANSITION_START,
                                    .build_number = 7,
                                    .workspace_id = "w-id",
                                    .workspace_name = "vars",
                                    .owner_name = "alice",
                                    .owner_email = "alice@example.com",
                                    .template_version_name = "v3",
                                    .params = params,
                                    .nparams = np};
  b->rc = f->ops->plan(f->ctx, req, &b->err);
  if (b->rc != 0)
    fail_msg("plan: %s", b->err);
}

void test_tfvars_hold_only_declared_variables_typed(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  const pv_t extra[] = {{"tags", "[\"a\",\"b c\"]", "list(string)", 0},
                        {"unquoted", "u", "string", 0},
                        {"after_braces", "ab", "string", 0},
                        {"from_json", "fj", "string", 0},
                        {"commented", "no", "string", 0},
                        {"in_heredoc", "no", "string", 0},
                        {"undeclared", "no", "string", 0},
                        {0}};
  build_t b = {0};
  atr_prov_apply_request_t req;
  atr_param_value_t params[16];
  plan_with_extras(&f, &b, extra, &req, params);

  char *path = path2(b.workdir, "atrium.auto.tfvars.json");
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  json_t *vars = json_load_file(path, 0, NULL);
  assert_true(json_is_object(vars));
  /* Exactly the declared ones, in sorted order: the owner's email, the
   * template id and such are facts main.tf does not declare. */
  const char *keys[] = {"after_braces",
                        "atrium_build_number",
                        "atrium_owner_name",
                        "atrium_template_version",
                        "atrium_transition",
                        "atrium_workspace_id",
                        "atrium_workspace_name",
                        "cpus",
                        "fail",
                        "from_json",
                        "greeting",
                        "root",
                        "secret_token",
                        "sleep_seconds",
                        "tags",
                        "unquoted"};
  assert_int_equal(json_object_size(vars), sizeof keys / sizeof keys[0]);
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    if (json_object_get(vars, keys[i]) == NULL)
      fail_msg("%s is not in the tfvars", keys[i]);
  }
  assert_int_equal(json_integer_value(json_object_get(vars, "cpus")), 2);
  assert_true(json_is_false(json_object_get(vars, "fail")));
  assert_int_equal(
      json_integer_value(json_object_get(vars, "atrium_build_number")), 7);
  assert_string_equal(
      json_string_value(json_object_get(vars, "atrium_transition")), "start");
  const json_t *tags = json_object_get(vars, "tags");
  assert_int_equal(json_array_size(tags), 2);
  assert_string_equal(json_string_value(json_array_get(tags, 1)), "b c");
  assert_string_equal(json_string_value(json_object_get(vars, "secret_token")),
                      CANARY);
  /* Terraform accepted every value: the plan has the starter's three
   * resources and extra.tf's. */
  assert_non_null(ph_job_find(&b.job, ATR_LOG_INFO, "Plan: 4 to add"));
  json_decref(vars);
  free(path);
  build_free(&b);
  fx_stop(&f);
}

void test_facts_and_parameters_reach_the_environment(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  const pv_t extra[] = {
      {"tags", "[]", "list(string)", 0},   {"unquoted", "u", "string", 0},
      {"after_braces", "ab", "string", 0}, {"from_json", "fj", "string", 0},
      {"with-dash", "d", "string", 0},     {0}};
  build_t b = {0};
  atr_prov_apply_request_t req;
  atr_param_value_t params[16];
  plan_with_extras(&f, &b, extra, &req, params);
  b.rc = f.ops->apply(f.ctx, &req, &b.res, &b.err);
  if (b.rc != 0)
    fail_msg("apply: %s", b.err);

  char *env_path = path2(f.root, "env.txt");
  char *env = read_text(env_path);
  assert_non_null(env);
  const char *want[] = {
      "ATRIUM_BUILD_NUMBER=7\n",      "ATRIUM_OWNER_EMAIL=alice@example.com\n",
      "ATRIUM_OWNER_NAME=alice\n",    "ATRIUM_PARAM_CPUS=2\n",
      "ATRIUM_PARAM_FAIL=false\n",    "ATRIUM_PARAM_SECRET_TOKEN=" CANARY "\n",
      "ATRIUM_PARAM_TAGS=[]\n",       "ATRIUM_PARAM_WITH_DASH=d\n",
      "ATRIUM_TEMPLATE_VERSION=v3\n", "ATRIUM_TRANSITION=start\n",
      "ATRIUM_WORKSPACE_ID=w-id\n",   "ATRIUM_WORKSPACE_NAME=vars\n",
      "CHECKPOINT_DISABLE=1\n",       "TF_INPUT=0\n",
      "TF_IN_AUTOMATION=1\n"};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
    if (strstr(env, want[i]) == NULL)
      fail_msg("not in the environment: %s(got:\n%s)", want[i], env);
  }
  /* The server's own ATRIUM_* variables stay with the server. */
  assert_null(strstr(env, SERVER_SECRET));
  assert_null(strstr(env, "ATRIUM_TEST_SERVER_SECRET"));
  free(env);
  free(env_path);
  build_free(&b);
  fx_stop(&f);
}

/* ---- secrets */

void test_a_sensitive_value_never_reaches_a_log_line(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "secret"};
  build_t b1 = {.transition = ATR_TRANSITION_START};
  ph_job_init(&b1.job);
  /* A template that prints the secret, twice over: in the command Terraform
   * shows and in the command's output. */
  b1.workdir = fx_workdir(&f);
  char *leak = path2(b1.workdir, "leak.tf");
  write_text(leak,
             "resource \"terraform_data\" \"leak\" {\n"
             "  provisioner \"local-exec\" {\n"
             "    command = \"echo token=${nonsensitive(var.secret_token)}\"\n"
             "  }\n"
             "}\n",
             0644);
  atr_param_value_t params[16];
  size_t np = make_params(&f, NULL, params, 16);
  atr_prov_apply_request_t req = {.struct_size = sizeof req,
                                  .job = &b1.job,
                                  .log = ph_job_log,
                                  .canceled = ph_job_canceled,
                                  .workdir = b1.workdir,
                                  .transition = ATR_TRANSITION_START,
                                  .build_number = 1,
                                  .workspace_id = "w-secret",
                                  .workspace_name = ws.name,
                                  .owner_name = "alice",
                                  .params = params,
                                  .nparams = np};
  b1.rc = f.ops->plan(f.ctx, &req, &b1.err);
  if (b1.rc == 0)
    b1.rc = f.ops->apply(f.ctx, &req, &b1.res, &b1.err);
  if (b1.rc != 0)
    fail_msg("build: %s", b1.err);
  assert_non_null(
      ph_job_find(&b1.job, ATR_LOG_INFO, "(local-exec): token=********"));
  for (size_t i = 0; i < b1.job.n; i++) {
    if (strstr(b1.job.v[i].line, CANARY) != NULL)
      fail_msg("the secret is in the job log: %s", b1.job.v[i].line);
  }
  /* A failing build's error message is redacted too. */
  const pv_t fail[] = {{"fail", "true", "bool", 0}, {0}};
  build_t b2 = {.transition = ATR_TRANSITION_START, .extra = fail};
  ws.state = b1.res.state;
  ws.state_len = b1.res.state_len;
  b1.res.state = NULL;
  ws.number = 1;
  ws_build(&ws, &b2);
  assert_int_equal(b2.rc, ATR_EPLUGIN);
  assert_null(strstr(b2.err, CANARY));
  for (size_t i = 0; i < b2.job.n; i++)
    assert_null(strstr(b2.job.v[i].line, CANARY));
  free(leak);
  build_free(&b1);
  build_free(&b2);
  free(ws.state);
  fx_stop(&f);
}
