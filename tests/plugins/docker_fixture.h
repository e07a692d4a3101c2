/* tests/plugins/docker_fixture.h — what the provisioner_docker test files
 * share: the engine as the test sees it (raw HTTP over the fixture's
 * socket), files, the plugin loaded through the core loader, parse and
 * build drivers, and the test functions main runs in order.
 *
 * Ownership: each *_init/_start pairs with its *_free/_stop; a malloc'd
 * result (path2, read_text, container_name, ...) is the caller's.
 * Threads: the engine helpers and ws_build may run on any thread; the
 * rest on the test's thread.
 */
#ifndef ATRIUM_TESTS_DOCKER_FIXTURE_H
#define ATRIUM_TESTS_DOCKER_FIXTURE_H

#include <ftw.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include <jansson.h>

#include "atrium/provisioner.h"
#include "prov_harness.h"

#define IMAGE "atrium-test/busybox:1"
#define UNHEALTHY_IMAGE "atrium-test/unhealthy:1"
#define CANARY "Canary-dk-7f3a91"
#define LOOP "trap 'exit 0' TERM; while :; do sleep 1; done"
/* The agent token the agent tests hand the plugin: in no log, ever. */
#define AGENT_TOKEN "agent-token-Canary-5e1d"

typedef struct fx {
  ph_plugin_t plugin;
  atr_handle_t *h;
  const atr_provisioner_ops_t *ops;
  void *ctx;
  char *dir; /* the template: workspace.yaml */
} fx_t;

typedef struct parsed {
  atr_prov_job_t job;
  int rc;
  char *err;
} parsed_t;

typedef struct pv {
  const char *name, *value, *type;
  int sensitive;
} pv_t;

typedef struct ws {
  fx_t *f;
  char id[40];
  char name[32];
  int64_t number;
  char *state;
  size_t state_len;
} ws_t;

typedef struct build {
  atr_transition_t transition;
  const pv_t *params; /* {0}-terminated; NULL: the starter's */
  bool skip_plan;
  const atr_prov_agent_t *agent; /* start builds with an agent; or NULL */
  /* Out: */
  atr_prov_job_t job;
  int rc;
  char *err;
  atr_prov_apply_result_t res;
} build_t;

extern char sock_path[108];
extern FILE *log_stream;
extern char *log_buf;
extern size_t log_len;
extern atomic_int ws_counter;
extern const char *const starter_spec;
extern const char *const starter_params[];
extern const pv_t starter_values[];

void assert_job_has(atr_prov_job_t *job, int level, const char *stage,
                    const char *needle);
void assert_contains(const char *text, const char *needle);
size_t collect(char *data, size_t size, size_t n, void *ud);
long eng_raw(const char *method, const char *path, const char *body, char **raw,
             size_t *rawlen);
json_t *eng(const char *method, const char *path, const char *body,
            long *status);
json_t *inspect(const char *kind, const char *name, long *status);
bool exists(const char *kind, const char *name);
json_t *list_by_label(const char *kind, const char *label);
void engine_clean(void);
int exec_in(const char *container, const char *script, char **out);
void make_unhealthy_image(void);
char *path2(const char *a, const char *b);
void write_text(const char *path, const char *text);
char *read_text(const char *path);
int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw);
double now_s(void);
int fx_try(fx_t *f, const char *options, char **err);
void fx_start(fx_t *f, const char *options);
void fx_stop(fx_t *f);
void fx_spec(fx_t *f, const char *yaml);
void parse(fx_t *f, const char *const *names, size_t n, parsed_t *p);
void parsed_free(parsed_t *p);
char *parse_error(fx_t *f, const char *yaml);
void ws_init(ws_t *ws, fx_t *f, const char *name);
void ws_build(ws_t *ws, build_t *b);
void build_free(build_t *b);
void build_ok(ws_t *ws, atr_transition_t t, const pv_t *params);
void ws_free(ws_t *ws);
char *container_name(const ws_t *ws);
char *volume_name(const ws_t *ws, const char *v);
size_t count_containers(const ws_t *ws);
const char *label_of(const json_t *c, const char *key);

/* The tests, in the order main runs them. */
void test_descriptor_is_the_docker_type(void **state);
void test_init_warns_and_builds_fail_without_an_engine(void **state);
void test_invalid_options_fail_init(void **state);
void test_parse_accepts_the_contract_example(void **state);
void test_parse_names_an_unknown_reference_with_its_position(void **state);
void test_parse_rejects_unknown_keys_listing_the_valid_ones(void **state);
void test_parse_reports_every_problem_with_its_position(void **state);
void test_parse_needs_workspace_yaml(void **state);
void test_parse_refuses_an_image_outside_allowed_images(void **state);
void test_start_makes_the_volume_and_the_container(void **state);
void test_the_home_volume_outlives_stop_and_start(void **state);
void test_start_twice_converges_to_one_container(void **state);
void test_stop_and_delete_of_nothing_succeed(void **state);
void test_an_image_from_a_parameter_is_checked_at_the_build(void **state);
void test_a_missing_image_with_pull_policy_never_fails(void **state);
void test_engine_errors_reach_the_log_in_its_words(void **state);
void test_a_command_that_exits_fails_the_start(void **state);
void test_a_foreign_container_with_the_name_is_not_removed(void **state);
void test_a_failed_pull_reports_the_engine_error(void **state);
void test_cancel_while_waiting_returns_the_state(void **state);
void test_cancel_while_pulling_returns_soon(void **state);
void test_ten_starts_in_parallel_all_run(void **state);
void test_sensitive_values_never_reach_a_log(void **state);
void test_an_agent_runs_from_the_mounted_bundle(void **state);
void test_the_agent_runs_the_images_command(void **state);
void test_an_agent_is_refused_where_it_cannot_start(void **state);
void test_the_process_log_never_shows_a_secret(void **state);

#endif
