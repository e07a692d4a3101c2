/* tests/plugins/test_provisioner_terraform.c — what provisioner_terraform
 * promises a provisioner daemon, with the real terraform binary.
 *
 * Each test loads the real provisioner_terraform.so through the core loader
 * and drives the starter template examples/templates/terraform-local as the
 * host would: a fresh copy of the template per job, plan() then apply(),
 * and the state of one build given to the next. The workspaces are
 * directories under a temporary root. The job is this file's own
 * atr_prov_job_t, which records every log line.
 *
 * Two tests use a fake terraform (a shell script) to print exact -json
 * lines and to ignore SIGINT. Without a terraform at ATR_TEST_TERRAFORM
 * the whole test is skipped (exit 77).
 *
 * One program: this file holds main, the test list and the parse, build
 * and log tests; test_provisioner_terraform_vars.c and _cancel.c the
 * rest, terraform_fixture.c the helpers they share.
 */
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

void test_descriptor_is_the_terraform_type(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  assert_int_equal(f.h->desc->kind, ATR_KIND_PROVISIONER);
  assert_string_equal(f.ops->type, "terraform");
  assert_int_equal(f.ops->struct_size, sizeof(atr_provisioner_ops_t));
  assert_true(ATR_PROVISIONER_HAS_PLAN(f.ops));
  assert_non_null(f.ops->parse);
  assert_non_null(f.ops->apply);
  assert_non_null(f.ops->cancel);
  fx_stop(&f);
  /* init logged the version it found. */
  assert_int_equal(fflush(log_stream), 0);
  assert_non_null(strstr(log_buf, "[provisioner_terraform] Terraform 1."));
  assert_non_null(strstr(log_buf, " at " ATR_TEST_TERRAFORM));
}

void test_parse_accepts_the_starter_template(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *dir = fx_workdir(&f);
  const char *names[] = {"root",          "greeting",      "cpus",
                         "secret_token",  "sleep_seconds", "fail",
                         "not_a_variable"};
  parsed_t p;
  parse(&f, dir, names, 7, &p);
  if (p.rc != 0)
    fail_msg("parse: %s", p.err);
  assert_null(p.err);
  assert_logged(&p.job, ATR_LOG_INFO, "Initializing",
                "Terraform has been successfully initialized!");
  assert_logged(&p.job, ATR_LOG_INFO, "Validating",
                "The configuration is valid.");
  /* Only the parameter that main.tf does not declare is warned about. */
  const ph_line_t *w = ph_job_find(&p.job, ATR_LOG_WARN, "is not a variable");
  assert_non_null(w);
  assert_string_equal(
      w->line, "parameter \"not_a_variable\" is not a variable of the "
               "Terraform configuration, so var.not_a_variable does not "
               "exist; declare variable \"not_a_variable\" {} to use it (it "
               "is in the environment as ATRIUM_PARAM_NOT_A_VARIABLE either "
               "way)");
  assert_null(ph_job_find(&p.job, -1, "parameter \"greeting\""));
  parsed_free(&p);
  free(dir);
  fx_stop(&f);
}

void test_parse_rejects_a_syntax_error_with_file_and_line(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *dir = fx_workdir(&f);
  char *bad = path2(dir, "broken.tf");
  write_text(bad, "resource \"terraform_data\" \"x\" {\n  input = \n}\n", 0644);
  parsed_t p;
  parse(&f, dir, starter_params, 6, &p);
  assert_int_equal(p.rc, ATR_EPLUGIN);
  assert_non_null(p.err);
  assert_non_null(strstr(p.err, "terraform init failed (exit status 1): "
                                "broken.tf:2: Invalid expression: Expected "
                                "the start of an expression"));
  assert_non_null(strstr(p.err, "fix the template's Terraform files"));
  assert_logged(&p.job, ATR_LOG_ERROR, "Initializing",
                "Error: broken.tf:2: Invalid expression");
  parsed_free(&p);
  free(bad);
  free(dir);
  fx_stop(&f);
}

void test_parse_rejects_an_invalid_reference(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *dir = fx_workdir(&f);
  char *bad = path2(dir, "extra.tf");
  write_text(bad,
             "resource \"terraform_data\" \"x\" {\n  input = var.nope\n}\n",
             0644);
  parsed_t p;
  parse(&f, dir, starter_params, 6, &p);
  assert_int_equal(p.rc, ATR_EPLUGIN);
  assert_non_null(strstr(p.err, "terraform validate failed (exit status 1): "
                                "extra.tf:2: Reference to undeclared input "
                                "variable: An input variable with the name "
                                "\"nope\" has not been declared."));
  assert_logged(&p.job, ATR_LOG_ERROR, "Validating",
                "Error: extra.tf:2: Reference to undeclared input variable");
  parsed_free(&p);
  free(bad);
  free(dir);
  fx_stop(&f);
}

void test_parse_needs_a_tf_file(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *dir = fx_workdir(&f);
  char *main_tf = path2(dir, "main.tf");
  assert_int_equal(unlink(main_tf), 0);
  parsed_t p;
  parse(&f, dir, starter_params, 6, &p);
  assert_int_equal(p.rc, ATR_EINVAL);
  assert_string_equal(p.err, "the template has no .tf or .tf.json file next to "
                             "template.yaml; put the Terraform configuration "
                             "(main.tf) at the root of the archive");
  parsed_free(&p);
  free(main_tf);
  free(dir);
  fx_stop(&f);
}

/* ---- builds of the starter */

void test_start_creates_the_workspace_directory(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "dev"};
  build_t b = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &b);

  char *params = ws_read(&ws, "parameters.json");
  assert_non_null(params);
  assert_string_equal(params,
                      "{\"cpus\":2,\"fail\":false,\"greeting\":\"hello\","
                      "\"sleep_seconds\":0,\"workspace_id\":\"6a1f0c2e-0000-"
                      "4000-8000-00000000000a\"}\n");
  char *running = ws_read(&ws, "running");
  assert_string_equal(running, "build 1\n");
  char *token = ws_read(&ws, ".token");
  assert_string_equal(token, CANARY);
  char *token_path = ws_file(&ws, ".token");
  struct stat st;
  assert_int_equal(stat(token_path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  /* The state is Terraform's, and every resource is listed with its id. */
  assert_non_null(b.res.state);
  assert_int_equal(b.res.state_len, strlen(b.res.state));
  assert_non_null(strstr(b.res.state, "\"terraform_version\""));
  assert_int_equal(b.res.nresources, 3);
  const char *addrs[] = {"terraform_data.home", "terraform_data.running[0]",
                         "terraform_data.token[0]"};
  const char *names[] = {"home", "running", "token"};
  for (size_t i = 0; i < 3; i++) {
    const atr_prov_resource_t *r = resource(&b, addrs[i]);
    assert_non_null(r);
    assert_string_equal(r->type, "terraform_data");
    assert_string_equal(r->name, names[i]);
    assert_non_null(r->id);
    assert_int_equal(strlen(r->id), 36);
    assert_string_equal(r->metadata[1].key, "provider");
    assert_string_equal(r->metadata[1].value, "terraform.io/builtin/terraform");
  }
  assert_logged(&b.job, ATR_LOG_INFO, "Applying",
                "Apply complete! Resources: 3 added, 0 changed, 0 destroyed.");
  assert_non_null(ph_job_find(&b.job, ATR_LOG_INFO, "Plan: 3 to add"));
  free(params);
  free(running);
  free(token);
  free(token_path);
  build_free(&b);
  free(ws.state);
  fx_stop(&f);
}

void test_stop_removes_the_marker_and_keeps_the_directory(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "dev"};
  build_t start = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &start);
  build_t stop = {.transition = ATR_TRANSITION_STOP};
  build_ok(&ws, &stop);

  assert_true(ws_has(&ws, NULL));
  assert_false(ws_has(&ws, "running"));
  assert_false(ws_has(&ws, "parameters.json"));
  assert_false(ws_has(&ws, ".token"));
  assert_int_equal(stop.res.nresources, 1);
  assert_string_equal(resource(&stop, "terraform_data.home")->id,
                      resource(&start, "terraform_data.home")->id);
  assert_non_null(ph_job_find(&stop.job, ATR_LOG_INFO,
                              "Plan: 0 to add, 0 to change, 2 to "
                              "destroy."));
  build_free(&start);
  build_free(&stop);
  free(ws.state);
  fx_stop(&f);
}

void test_start_after_stop_keeps_the_home_resource(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "dev"};
  build_t b1 = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &b1);
  build_t b2 = {.transition = ATR_TRANSITION_STOP};
  build_ok(&ws, &b2);
  const pv_t bonjour[] = {{"greeting", "bonjour", "string", 0}, {0}};
  build_t b3 = {.transition = ATR_TRANSITION_START, .extra = bonjour};
  build_ok(&ws, &b3);

  const char *id = resource(&b1, "terraform_data.home")->id;
  assert_string_equal(resource(&b2, "terraform_data.home")->id, id);
  assert_string_equal(resource(&b3, "terraform_data.home")->id, id);
  assert_null(ph_job_find(&b3.job, -1, "terraform_data.home: Creating"));
  assert_non_null(ph_job_find(&b3.job, ATR_LOG_INFO,
                              "Plan: 2 to add, 0 to "
                              "change, 0 to destroy."));
  char *running = ws_read(&ws, "running");
  assert_string_equal(running, "build 3\n");
  char *params = ws_read(&ws, "parameters.json");
  assert_non_null(strstr(params, "\"greeting\":\"bonjour\""));
  free(running);
  free(params);
  build_free(&b1);
  build_free(&b2);
  build_free(&b3);
  free(ws.state);
  fx_stop(&f);
}

void test_delete_removes_the_directory(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "dev"};
  build_t start = {.transition = ATR_TRANSITION_START};
  build_ok(&ws, &start);
  assert_true(ws_has(&ws, NULL));
  build_t del = {.transition = ATR_TRANSITION_DELETE};
  build_ok(&ws, &del);
  assert_false(ws_has(&ws, NULL));
  assert_int_equal(del.res.nresources, 0);
  assert_non_null(del.res.state);
  assert_non_null(strstr(del.res.state, "\"resources\": []"));
  assert_logged(&del.job, ATR_LOG_INFO, "Destroying",
                "Apply complete! Resources: 0 added, 0 changed, 3 "
                "destroyed.");
  build_free(&start);
  build_free(&del);
  free(ws.state);
  fx_stop(&f);
}

void test_apply_plans_itself_when_plan_was_not_called(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "old-host"};
  build_t b = {.transition = ATR_TRANSITION_START, .skip_plan = true};
  build_ok(&ws, &b);
  assert_non_null(ph_job_find(&b.job, ATR_LOG_INFO, "No plan yet"));
  assert_true(ws_has(&ws, "running"));
  assert_int_equal(b.res.nresources, 3);
  build_free(&b);
  free(ws.state);
  fx_stop(&f);
}

/* ---- the log */

void test_json_levels_map_to_log_levels(void **state) {
  (void)state;
  static const char *const lines[] = {
      "{\"@level\":\"trace\",\"@message\":\"a trace line\"}",
      "{\"@level\":\"debug\",\"@message\":\"a debug line\"}",
      "{\"@level\":\"info\",\"@message\":\"an info line\\nand its second\"}",
      "{\"@level\":\"warn\",\"@message\":\"a warn line\"}",
      "{\"@level\":\"error\",\"@message\":\"an error line\"}",
      "{\"@level\":\"warn\",\"@message\":\"Warning: Old\",\"type\":"
      "\"diagnostic\",\"diagnostic\":{\"severity\":\"warning\",\"summary\":"
      "\"Old thing\",\"detail\":\"Use the new thing.\",\"range\":{"
      "\"filename\":\"main.tf\",\"start\":{\"line\":7}}}}",
      "not json at all"};
  char *print = printing(lines, sizeof lines / sizeof lines[0]);
  char *body = NULL;
  assert_true(asprintf(&body,
                       "if [ \"$1\" = validate ]; then\n"
                       "  echo '{\"valid\": true, \"diagnostics\": []}'\n"
                       "  exit 0\n"
                       "fi\n"
                       "%s"
                       "echo 'Error: a problem on stderr' >&2\n"
                       "echo 'more about it' >&2\n",
                       print) >= 0);
  char *fake = fx_fake(body);
  free(print);
  free(body);
  char *opts = NULL;
  assert_true(asprintf(&opts, "    binary: %s\n", fake) >= 0);
  fx_t f;
  fx_start(&f, opts);
  char *dir = fx_workdir(&f);
  parsed_t p;
  parse(&f, dir, starter_params, 6, &p);
  if (p.rc != 0)
    fail_msg("parse: %s", p.err);
  const char *st = "Initializing";
  assert_logged(&p.job, ATR_LOG_DEBUG, st, "a trace line");
  assert_logged(&p.job, ATR_LOG_DEBUG, st, "a debug line");
  assert_logged(&p.job, ATR_LOG_INFO, st, "an info line");
  assert_logged(&p.job, ATR_LOG_INFO, st, "and its second");
  assert_logged(&p.job, ATR_LOG_WARN, st, "a warn line");
  assert_logged(&p.job, ATR_LOG_ERROR, st, "an error line");
  assert_logged(&p.job, ATR_LOG_WARN, st, "Warning: main.tf:7: Old thing");
  assert_logged(&p.job, ATR_LOG_WARN, st, "Use the new thing.");
  assert_logged(&p.job, ATR_LOG_INFO, st, "not json at all");
  assert_logged(&p.job, ATR_LOG_ERROR, st, "Error: a problem on stderr");
  assert_logged(&p.job, ATR_LOG_ERROR, st, "more about it");
  assert_logged(&p.job, ATR_LOG_INFO, "Validating",
                "The configuration is valid.");
  assert_true(
      strncmp(ph_job_find(&p.job, ATR_LOG_DEBUG, "$ terraform init")->line,
              "$ terraform init -input=false -no-color -json", 45) == 0);
  parsed_free(&p);
  free(dir);
  fx_stop(&f);
  free(opts);
  fake_free(fake);
}

/* ---- the binary option */

static void assert_init_fails(const char *binary, const char *want) {
  char *opts = NULL;
  assert_true(asprintf(&opts, "    binary: %s\n", binary) >= 0);
  fx_t f;
  char *err = NULL;
  assert_int_not_equal(fx_try(&f, opts, &err), 0);
  assert_non_null(err);
  if (strstr(err, want) == NULL)
    fail_msg("init error \"%s\" does not contain \"%s\"", err, want);
  free(err);
  fx_stop(&f);
  free(opts);
}

void test_a_bad_binary_fails_init_clearly(void **state) {
  (void)state;
  assert_init_fails("/nonexistent/terraform",
                    "plugin provisioner_terraform: init failed: "
                    "plugins.provisioner_terraform.binary: "
                    "/nonexistent/terraform: No such file or directory; "
                    "install Terraform there or set binary to the path of "
                    "the terraform executable");
  assert_init_fails("no-such-terraform-7",
                    "plugins.provisioner_terraform.binary: no executable "
                    "\"no-such-terraform-7\" in PATH (");
  char *plain = fx_fake("");
  assert_int_equal(chmod(plain, 0644), 0);
  char *want = NULL;
  assert_true(asprintf(&want, "%s is not an executable file; run chmod +x",
                       plain) >= 0);
  assert_init_fails(plain, want);
  free(want);
  fake_free(plain);
  assert_init_fails("/bin/false", "plugins.provisioner_terraform.binary: "
                                  "/bin/false version -json failed (exit "
                                  "status 1); is it the terraform executable?");
}

void test_the_process_log_never_shows_a_secret(void **state) {
  (void)state;
  assert_int_equal(fflush(log_stream), 0);
  assert_non_null(log_buf);
  assert_null(strstr(log_buf, CANARY));
  assert_null(strstr(log_buf, SERVER_SECRET));
  assert_null(strstr(log_buf, AGENT_TOKEN));
}

int main(void) {
  if (access(ATR_TEST_TERRAFORM, X_OK) != 0) {
    printf("terraform not found at %s; skipping\n", ATR_TEST_TERRAFORM);
    return 77;
  }
  /* The server's own configuration must not reach templates. */
  setenv("ATRIUM_TEST_SERVER_SECRET", SERVER_SECRET, 1);
  log_stream = open_memstream(&log_buf, &log_len);
  if (log_stream == NULL)
    return 1;
  atr_log_set_level(ATR_LOG_DEBUG);
  atr_log_set_stream(log_stream);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor_is_the_terraform_type),
      cmocka_unit_test(test_parse_accepts_the_starter_template),
      cmocka_unit_test(test_parse_rejects_a_syntax_error_with_file_and_line),
      cmocka_unit_test(test_parse_rejects_an_invalid_reference),
      cmocka_unit_test(test_parse_needs_a_tf_file),
      cmocka_unit_test(test_start_creates_the_workspace_directory),
      cmocka_unit_test(test_stop_removes_the_marker_and_keeps_the_directory),
      cmocka_unit_test(test_start_after_stop_keeps_the_home_resource),
      cmocka_unit_test(test_delete_removes_the_directory),
      cmocka_unit_test(test_apply_plans_itself_when_plan_was_not_called),
      cmocka_unit_test(test_tfvars_hold_only_declared_variables_typed),
      cmocka_unit_test(test_facts_and_parameters_reach_the_environment),
      cmocka_unit_test(test_a_sensitive_value_never_reaches_a_log_line),
      cmocka_unit_test(test_a_failing_apply_returns_its_error_and_the_state),
      cmocka_unit_test(test_cancel_stops_one_job_and_returns_the_state),
      cmocka_unit_test(test_a_canceled_job_runs_nothing),
      cmocka_unit_test(
          test_a_terraform_ignoring_sigint_is_killed_after_the_grace),
      cmocka_unit_test(test_json_levels_map_to_log_levels),
      cmocka_unit_test(test_a_bad_binary_fails_init_clearly),
      /* Last: it reads what every test before it logged. */
      cmocka_unit_test(test_an_agent_gets_its_variables_and_env_file),
      cmocka_unit_test(test_the_process_log_never_shows_a_secret),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  atr_log_set_stream(NULL);
  fclose(log_stream);
  free(log_buf);
  return failed;
}
