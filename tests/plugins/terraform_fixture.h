/* tests/plugins/terraform_fixture.h — what the provisioner_terraform test
 * files share: files and directory trees, the plugin loaded through the
 * core loader with a root for workspaces, fake terraform binaries, parse
 * and build drivers, and the test functions main runs in order.
 *
 * Ownership: each *_start/_init pairs with its *_stop/_free; a malloc'd
 * result (path2, read_text, fx_workdir, ws_file, ...) is the caller's.
 * Threads: ws_build may run on any thread (the cancel tests run builds in
 * the background); the rest on the test's thread.
 */
#ifndef ATRIUM_TESTS_TERRAFORM_FIXTURE_H
#define ATRIUM_TESTS_TERRAFORM_FIXTURE_H

#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "atrium/provisioner.h"
#include "prov_harness.h"

#define TEMPLATE_DIR ATR_TEST_SOURCE_DIR "/examples/templates/terraform-local"
#define CANARY "Canary-tf-5e1d8b"
#define SERVER_SECRET "server-secret-9c2f"
/* The agent token the agent test hands the plugin: in no log, ever. */
#define AGENT_TOKEN "agent-token-Canary-tf-41c7"

typedef struct fx {
  ph_plugin_t plugin;
  atr_handle_t *h;
  const atr_provisioner_ops_t *ops;
  void *ctx;
  char *base; /* this test's temporary directory */
  char *root; /* the template's root parameter: workspaces go here */
  int njobs;
} fx_t;

/* A parameter of one build: the starter's six, plus what a test adds. */
typedef struct pv {
  const char *name, *value, *type;
  int sensitive;
} pv_t;

typedef struct build {
  atr_transition_t transition;
  const pv_t *extra; /* {0}-terminated overrides and additions, or NULL */
  bool skip_plan;    /* as a host that does not call plan() */
  const atr_prov_agent_t *agent; /* a start with an agent, or NULL */
  const char *extra_tf;          /* written as agent_extra.tf, or NULL */
  /* Out: */
  atr_prov_job_t job;
  int rc;
  char *err;
  atr_prov_apply_result_t res;
  char *workdir;
} build_t;

typedef struct ws {
  fx_t *f;
  const char *name;
  int64_t number;
  char *state;
  size_t state_len;
} ws_t;

typedef struct parsed {
  atr_prov_job_t job;
  int rc;
  char *err;
} parsed_t;

extern FILE *log_stream;
extern char *log_buf;
extern size_t log_len;
extern const char *const starter_params[];

void assert_logged(atr_prov_job_t *job, atr_log_level_t level,
                   const char *stage, const char *line);
char *path2(const char *a, const char *b);
void copy_file(const char *from, const char *to, mode_t mode);
void copy_tree(const char *from, const char *to);
int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw);
void rm_tree(const char *path);
void write_text(const char *path, const char *text, mode_t mode);
char *read_text(const char *path);
bool exists(const char *path);
int open_fds(void);
double now_s(void);
int fx_try(fx_t *f, const char *options, char **err);
void fx_start(fx_t *f, const char *options);
void fx_stop(fx_t *f);
char *fx_workdir(fx_t *f);
char *fx_fake(const char *body);
char *printing(const char *const *lines, size_t n);
void fake_free(char *path);
size_t make_params(fx_t *f, const pv_t *extra, atr_param_value_t *out,
                   size_t max);
void ws_build(ws_t *ws, build_t *b);
void build_ok(ws_t *ws, build_t *b);
void build_free(build_t *b);
const atr_prov_resource_t *resource(const build_t *b, const char *addr);
char *ws_file(const ws_t *ws, const char *name);
char *ws_read(const ws_t *ws, const char *name);
bool ws_has(const ws_t *ws, const char *name);
void parse(fx_t *f, const char *workdir, const char *const *names, size_t n,
           parsed_t *p);
void parsed_free(parsed_t *p);

/* The tests, in the order main runs them. */
void test_descriptor_is_the_terraform_type(void **state);
void test_parse_accepts_the_starter_template(void **state);
void test_parse_rejects_a_syntax_error_with_file_and_line(void **state);
void test_parse_rejects_an_invalid_reference(void **state);
void test_parse_needs_a_tf_file(void **state);
void test_start_creates_the_workspace_directory(void **state);
void test_stop_removes_the_marker_and_keeps_the_directory(void **state);
void test_start_after_stop_keeps_the_home_resource(void **state);
void test_delete_removes_the_directory(void **state);
void test_apply_plans_itself_when_plan_was_not_called(void **state);
void test_json_levels_map_to_log_levels(void **state);
void test_a_bad_binary_fails_init_clearly(void **state);
void test_an_agent_gets_its_variables_and_env_file(void **state);
void test_the_process_log_never_shows_a_secret(void **state);
void test_tfvars_hold_only_declared_variables_typed(void **state);
void test_facts_and_parameters_reach_the_environment(void **state);
void test_a_sensitive_value_never_reaches_a_log_line(void **state);
void test_a_failing_apply_returns_its_error_and_the_state(void **state);
void test_cancel_stops_one_job_and_returns_the_state(void **state);
void test_a_canceled_job_runs_nothing(void **state);
void test_a_terraform_ignoring_sigint_is_killed_after_the_grace(void **state);

#endif
