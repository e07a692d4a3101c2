/* tests/abi/test_loader.c — loading plugins as an operator sees it.
 *
 * Real shared objects (the fixture_*.so built beside this test) are copied
 * into a private plugin directory with mode 0755, then loaded, refused,
 * configured from YAML, started, reloaded and shut down. Refusals are
 * checked against the exact one-line messages of core/loader.h and
 * core/options.h. The setting (directories, log capture, helpers) is in
 * loader_fixture.c.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, vasprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>

#include "atrium/provisioner.h"
#include "conf.h"
#include "fixture_opts.h"
#include "loader.h"
#include "loader_fixture.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"

/* ---- steps 1-8: opening --- */

static void a_good_plugin_opens_by_name(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_handle_t *h = open_ok(&l, "fixture_good");
  char *file = fmt("%s/fixture_good.so", plugdir);
  assert_string_equal(h->file, file);
  assert_string_equal(h->name, "fixture_good");
  assert_int_equal(h->state, ATR_PLUGIN_LOADED);
  assert_int_equal(h->desc->kind, ATR_KIND_PROVISIONER);
  assert_ptr_equal(atr_loader_find(&l, "fixture_good"), h);
  assert_null(atr_loader_find(&l, "fixture_opts"));
  assert_int_equal(l.nplugins, 1);
  free(file);
  atr_loader_shutdown(&l);
}

static void a_missing_plugin_names_the_directories(void **state) {
  atr_loader_t l;
  char *other = scratch_dir();
  const char *dirs[] = {plugdir, "/nonexistent/atrium", other};
  char *err = NULL;
  assert_int_equal(atr_loader_init(&l, dirs, 3, &err), 0);
  assert_int_equal(l.ndirs, 2);
  assert_logged("WARN  [loader] plugin directory /nonexistent/atrium: No "
                "such file or directory; skipped");
  char *want = fmt("plugin fixture_gone: no fixture_gone.so in the plugin "
                   "directories (%s, %s)",
                   plugdir, other);
  expect_refusal(&l, "fixture_gone", NULL, want);
  free(want);
  atr_loader_shutdown(&l);
}

static void a_file_outside_the_directories_is_refused(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  char *elsewhere = scratch_dir();
  char *file = copy_fixture("fixture_good", elsewhere, 0755);
  char *want = fmt("plugin fixture_good: %s is outside the plugin "
                   "directories (%s)",
                   file, plugdir);
  expect_refusal(&l, "fixture_good", file, want);
  free(want);
  /* A symlink inside that points outside is refused the same way. */
  char *link = fmt("%s/fixture_link.so", plugdir);
  assert_int_equal(symlink(file, link), 0);
  want = fmt("plugin fixture_good: %s is outside the plugin directories (%s)",
             link, plugdir);
  expect_refusal(&l, "fixture_good", link, want);
  unlink(link);
  free(want);
  free(link);
  free(file);
  atr_loader_shutdown(&l);
}

static void a_writable_file_is_refused_with_its_mode(void **state) {
  atr_loader_t l;
  char *dir = scratch_dir();
  loader_in(&l, dir);
  char *file = copy_fixture("fixture_good", dir, 0666);
  char *want = fmt("plugin fixture_good: %s is group- or world-writable "
                   "(mode 0666); run chmod go-w %s",
                   file, file);
  expect_refusal(&l, "fixture_good", NULL, want);
  free(want);
  assert_int_equal(chmod(file, 0775), 0);
  want = fmt("plugin fixture_good: %s is group- or world-writable (mode "
             "0775); run chmod go-w %s",
             file, file);
  expect_refusal(&l, "fixture_good", file, want);
  free(want);
  assert_int_equal(chmod(file, 0755), 0);
  open_ok(&l, "fixture_good");
  free(file);
  atr_loader_shutdown(&l);
}

static void a_file_that_is_no_shared_object_cannot_load(void **state) {
  atr_loader_t l;
  char *dir = scratch_dir();
  loader_in(&l, dir);
  char *file = fmt("%s/garbage.so", dir);
  FILE *f = fopen(file, "w");
  assert_non_null(f);
  fputs("not an ELF file\n", f);
  fclose(f);
  assert_int_equal(chmod(file, 0644), 0);
  atr_handle_t *h = NULL;
  char *err = NULL;
  assert_int_equal(atr_loader_open(&l, "garbage", NULL, &h, &err), ATR_EPLUGIN);
  char *prefix = fmt("plugin garbage: cannot load %s: %s: ", file, file);
  assert_memory_equal(err, prefix, strlen(prefix));
  assert_null(strchr(err, '\n'));
  free(prefix);
  free(err);
  free(file);
  atr_loader_shutdown(&l);
}

static void entry_and_descriptor_problems_are_refused(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  char *want = fmt("plugin fixture_noentry: %s/fixture_noentry.so has no "
                   "atrium_plugin_entry symbol; is it an atrium plugin?",
                   plugdir);
  expect_refusal(&l, "fixture_noentry", NULL, want);
  free(want);
  want = fmt("plugin fixture_nodesc: atrium_plugin_entry in "
             "%s/fixture_nodesc.so returned no descriptor",
             plugdir);
  expect_refusal(&l, "fixture_nodesc", NULL, want);
  free(want);
  atr_loader_shutdown(&l);
}

static void abi_and_size_mismatches_are_refused(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  expect_refusal(&l, "fixture_abi_major", NULL,
                 "plugin fixture_abi_major: ABI major version 2 does not "
                 "match the host's 1; rebuild the plugin against this SDK");
  char *want = fmt("plugin fixture_abi_minor: ABI minor version 5 is newer "
                   "than the host's %d; upgrade atrium or build against an "
                   "older SDK",
                   ATR_ABI_MINOR);
  expect_refusal(&l, "fixture_abi_minor", NULL, want);
  free(want);
  /* 88 and 40 on LP64; loader.h's "96" is only an illustration. */
  want = fmt("plugin fixture_small_desc: descriptor struct_size 40 is "
             "smaller than %zu required for ABI 1.%d",
             offsetof(atr_plugin_t, ops) + sizeof(void *), ATR_ABI_MINOR);
  expect_refusal(&l, "fixture_small_desc", NULL, want);
  free(want);
  want = fmt("plugin fixture_small_ops: provisioner ops struct_size 8 is "
             "smaller than %zu required for ABI 1.%d",
             (size_t)ATR_PROVISIONER_OPS_MIN_SIZE, ATR_ABI_MINOR);
  expect_refusal(&l, "fixture_small_ops", NULL, want);
  free(want);
  expect_refusal(&l, "fixture_bad_kind", NULL,
                 "plugin fixture_bad_kind: unknown kind 9");
  expect_refusal(&l, "fixture_bad_offset", NULL,
                 "plugin fixture_bad_offset: option value at offset 4096 "
                 "does not fit in ctx_size 8");
  atr_loader_shutdown(&l);
}

static void the_declared_name_must_match(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  expect_refusal(&l, "fixture_misnamed", NULL,
                 "plugin fixture_misnamed: the file declares the name "
                 "\"someone_else\"; rename the file or the config section");
  /* The configured name decides, not the file's: loading fixture_good.so as
   * "other" is the same mistake seen from the config's side. */
  char *file = fmt("%s/fixture_good.so", plugdir);
  expect_refusal(&l, "other", file,
                 "plugin other: the file declares the name \"fixture_good\"; "
                 "rename the file or the config section");
  free(file);
  expect_refusal(&l, "Bad.Name", NULL,
                 "plugin Bad.Name: invalid name; use lower-case letters, "
                 "digits and underscores, starting with a letter");
  atr_loader_shutdown(&l);
}

static void a_name_loads_only_once(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  open_ok(&l, "fixture_good");
  char *want = fmt("plugin fixture_good: a plugin with this name is already "
                   "loaded from %s/fixture_good.so",
                   plugdir);
  expect_refusal(&l, "fixture_good", NULL, want);
  assert_int_equal(l.nplugins, 1);
  free(want);
  atr_loader_shutdown(&l);
}

/* ---- step 9: options --- */

static void unknown_options_list_the_valid_ones(void **state) {
  expect_config_error("plugins:\n"
                      "  fixture_opts:\n"
                      "    enabled: true\n"
                      "    endpoint: http://a.example\n"
                      "    wokers: 8\n",
                      "test.yaml:5:13: plugins.fixture_opts.wokers: unknown "
                      "option; valid options: endpoint, workers, timeout, "
                      "mode, token, batch, marker");
}

static void a_missing_required_option_names_itself(void **state) {
  expect_config_error("plugins:\n"
                      "  fixture_opts:\n"
                      "    enabled: true\n",
                      "test.yaml:3:5: plugins.fixture_opts.endpoint: required "
                      "option is missing; set it in the config file, with "
                      "ATRIUM_PLUGINS_FIXTURE_OPTS_ENDPOINT or with "
                      "--plugins.fixture_opts.endpoint");
}

static void values_of_the_wrong_type_say_what_is_expected(void **state) {
  expect_config_error("plugins:\n"
                      "  fixture_opts:\n"
                      "    endpoint: http://a.example\n"
                      "    workers: abc\n",
                      "test.yaml:4:14: plugins.fixture_opts.workers: \"abc\" "
                      "is not an integer; expected a whole number");
  expect_config_error("plugins:\n"
                      "  fixture_opts:\n"
                      "    endpoint: http://a.example\n"
                      "    timeout: 5 parsecs\n",
                      "test.yaml:4:14: plugins.fixture_opts.timeout: \"5 "
                      "parsecs\" is not a duration; expected a number with a "
                      "unit ms, s, m, h or d (e.g. \"30s\", \"5m\", "
                      "\"1h30m\")");
  expect_config_error("plugins:\n"
                      "  fixture_opts:\n"
                      "    endpoint: http://a.example\n"
                      "    workers: 0\n",
                      "test.yaml:4:14: plugins.fixture_opts.workers: 0 is out "
                      "of range; expected a value between 1 and 64");
  expect_config_error("plugins:\n"
                      "  fixture_opts:\n"
                      "    endpoint: http://a.example\n"
                      "    mode: reckless\n",
                      "test.yaml:4:11: plugins.fixture_opts.mode: "
                      "\"reckless\" is not allowed; expected one of: fast, "
                      "safe");
}

static void options_fill_the_context(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_handle_t *h = open_ok(&l, "fixture_opts");
  configure_ok(h, "plugins:\n"
                  "  fixture_opts:\n"
                  "    enabled: true\n"
                  "    file: ignored-here.so\n"
                  "    endpoint: http://a.example\n"
                  "    timeout: 1m30s\n"
                  "    mode: fast\n"
                  "    token: s3cret\n");
  start_ok(h);
  const fixture_opts_ctx_t *c = h->ctx;
  assert_string_equal(c->endpoint, "http://a.example");
  assert_int_equal(c->workers, 4);
  assert_int_equal(c->timeout_ms, 90000);
  assert_string_equal(c->mode, "fast");
  assert_string_equal(c->token, "s3cret");
  assert_int_equal(c->batch, 10);
  assert_null(c->marker);
  atr_loader_shutdown(&l);
}

static void the_environment_can_supply_a_required_option(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_handle_t *h = open_ok(&l, "fixture_opts");
  atr_conf_node_t *root = yaml("plugins: {}\n");
  char *err = NULL;
  assert_int_equal(atr_loader_configure(h, root, NULL, test_env, &err), 0);
  const atr_optval_t *v = atr_optset_find(&h->opts, "endpoint");
  assert_string_equal(v->v.s, "http://env.example");
  assert_string_equal(v->source,
                      "environment ATRIUM_PLUGINS_FIXTURE_OPTS_ENDPOINT");
  atr_conf_free(root);
  atr_loader_shutdown(&l);
}

static void host_reads_options_by_type(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_handle_t *o = open_ok(&l, "fixture_opts");
  atr_handle_t *g = open_ok(&l, "fixture_good");
  const char *text = "plugins:\n"
                     "  fixture_opts: {endpoint: http://a.example, "
                     "token: s3cret, timeout: 2s}\n"
                     "  fixture_good: {ratio: 0.25, verbose: yes, "
                     "limit: 64MiB}\n";
  configure_ok(o, text);
  configure_ok(g, text);
  start_ok(o);
  start_ok(g);
  const atr_host_t *host = atr_host_table();
  const char *s = NULL;
  int64_t i = 0;
  int b = 0;
  double d = 0;
  assert_int_equal(host->option_get_string(o, "endpoint", &s), 0);
  assert_string_equal(s, "http://a.example");
  assert_int_equal(host->option_get_string(o, "mode", &s), 0);
  assert_string_equal(s, "safe");
  assert_int_equal(host->option_get_string(o, "token", &s), 0);
  assert_string_equal(s, "s3cret");
  assert_int_equal(host->option_get_int(o, "workers", &i), 0);
  assert_int_equal(i, 4);
  assert_int_equal(host->option_get_int(o, "timeout", &i), 0);
  assert_int_equal(i, 2000);
  assert_int_equal(host->option_get_int(g, "limit", &i), 0);
  assert_int_equal(i, 64 * 1024 * 1024);
  assert_int_equal(host->option_get_bool(g, "verbose", &b), 0);
  assert_int_equal(b, 1);
  assert_int_equal(host->option_get_double(g, "ratio", &d), 0);
  assert_true(d == 0.25);
  /* Wrong type, unknown name, unset value. */
  assert_int_equal(host->option_get_int(o, "endpoint", &i), ATR_EINVAL);
  assert_int_equal(host->option_get_string(o, "workers", &s), ATR_EINVAL);
  assert_int_equal(host->option_get_bool(g, "ratio", &b), ATR_EINVAL);
  assert_int_equal(host->option_get_double(g, "verbose", &d), ATR_EINVAL);
  assert_int_equal(host->option_get_string(o, "nope", &s), ATR_ENOENT);
  assert_int_equal(host->option_get_string(o, "marker", &s), ATR_ENOENT);
  assert_logged("INFO  [fixture_good] ready, greeting hello");
  atr_loader_shutdown(&l);
}

static void the_host_table_is_complete(void **state) {
  const atr_host_t *host = atr_host_table();
  assert_int_equal(host->struct_size, sizeof(atr_host_t));
  assert_int_equal(host->abi_major, ATR_ABI_MAJOR);
  assert_int_equal(host->abi_minor, ATR_ABI_MINOR);
  assert_true(host->clock_now_ms() > 1700000000000LL);
  uint64_t t0 = host->clock_monotonic_ns();
  assert_true(host->clock_monotonic_ns() >= t0);
  assert_true(ATR_HOST_HAS(host, log) && ATR_HOST_HAS(host, logv));
  assert_true(ATR_HOST_HAS(host, option_get_double));
  assert_true(ATR_HOST_HAS(host, route_add));
  assert_true(ATR_HOST_HAS(host, http_respond));
  assert_true(ATR_HOST_HAS(host, http_header));
  assert_true(ATR_HOST_HAS(host, metric_observe));
  assert_true(ATR_HOST_HAS(host, metrics_collect));
  /* Appended in ABI 1.1: the allocator for what plugins hand over. */
  assert_true(ATR_HOST_HAS(host, mem_alloc) && ATR_HOST_HAS(host, mem_free));
  assert_true(ATR_HOST_HAS(host, mem_calloc));
  assert_true(ATR_HOST_HAS(host, mem_realloc));
}

/* ---- step 10: init --- */

static void init_registers_routes_and_metrics(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_handle_t *h = open_ok(&l, "fixture_good");
  configure_ok(h, "plugins: {}\n");
  start_ok(h);
  atr_route_fn fn = NULL;
  void *ud = NULL;
  assert_int_equal(atr_routes_lookup("GET", "/fixture_good/ping", &fn, &ud), 0);
  assert_non_null(fn);
  assert_ptr_equal(ud, h->ctx);
  assert_int_equal(atr_routes_lookup("POST", "/fixture_good/ping", &fn, &ud),
                   ATR_EPERM);
  assert_non_null(atr_metrics_find("fixture_good_inits_total"));
  /* Registration is for init() only. */
  const atr_host_t *host = atr_host_table();
  assert_int_equal(host->route_add(h, "GET", "/late", fn, NULL), ATR_EPERM);
  assert_int_equal(host->metric_register(h, ATR_METRIC_GAUGE, "late", "", NULL,
                                         NULL, 0, NULL),
                   ATR_EPERM);
  assert_int_equal(atr_routes_lookup("GET", "/late", &fn, &ud), ATR_ENOENT);
  assert_logged("WARN  [fixture_good] route_add refused: it may only be "
                "called from init() (plugin is running)");
  atr_loader_shutdown(&l);
}

static void a_failed_init_leaves_nothing_behind(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  assert_int_equal(
      atr_routes_add("core", "GET", "/core-route", (atr_route_fn)1, NULL), 0);
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_GAUGE, "core_up", "",
                                        NULL, NULL, 0, NULL),
                   0);
  size_t routes_before = atr_routes_count();
  atr_handle_t *h = open_ok(&l, "fixture_initfail");
  configure_ok(h, "plugins: {}\n");
  char *err = NULL;
  assert_int_equal(atr_loader_start(h, &err), ATR_EUNAVAIL);
  assert_string_equal(err, "plugin fixture_initfail: init failed: database "
                           "unreachable");
  assert_string_equal(h->error, err);
  assert_int_equal(h->state, ATR_PLUGIN_FAILED);
  assert_null(h->ctx);
  assert_int_equal(atr_routes_count(), routes_before);
  assert_int_equal(atr_routes_lookup("GET", "/fixture_initfail", NULL, NULL),
                   ATR_ENOENT);
  assert_null(atr_metrics_find("fixture_initfail_up"));
  assert_non_null(atr_metrics_find("core_up"));
  free(err);
  atr_loader_shutdown(&l); /* must not call fini (the fixture aborts) */
  assert_int_equal(atr_routes_remove_owner("core"), 1);
}

static void a_failed_init_without_message_reports_the_code(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_handle_t *h = open_ok(&l, "fixture_initfail");
  configure_ok(h, "plugins:\n  fixture_initfail:\n    message: \"\"\n");
  char *err = NULL;
  assert_int_equal(atr_loader_start(h, &err), ATR_EUNAVAIL);
  assert_string_equal(err, "plugin fixture_initfail: init failed: service "
                           "unavailable");
  free(err);
  atr_loader_shutdown(&l);
}

/* ---- load_config, reload, shutdown --- */

static void load_config_starts_enabled_plugins_in_order(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  char *marker = fmt("%s/fini-order", scratch_dir());
  char *text = fmt("plugins:\n"
                   "  fixture_good:\n"
                   "    enabled: true\n"
                   "    marker: %s\n"
                   "  fixture_initfail:\n"
                   "    enabled: false\n"
                   "  fixture_noentry: {}\n"
                   "  fixture_nodesc:\n"
                   "  fixture_opts:\n"
                   "    enabled: yes\n"
                   "    endpoint: http://a.example\n"
                   "    marker: %s\n",
                   marker, marker);
  atr_conf_node_t *root = yaml(text);
  char *err = NULL;
  assert_int_equal(atr_loader_load_config(&l, root, NULL, no_env, true, &err),
                   0);
  assert_null(err);
  assert_int_equal(l.nplugins, 2);
  assert_string_equal(l.plugins[0]->name, "fixture_good");
  assert_string_equal(l.plugins[1]->name, "fixture_opts");
  assert_int_equal(l.plugins[0]->state, ATR_PLUGIN_RUNNING);
  assert_int_equal(l.plugins[1]->state, ATR_PLUGIN_RUNNING);
  assert_logged("INFO  [loader] plugin fixture_good: provisioner 1.0.0 "
                "running from ");
  atr_loader_shutdown(&l);
  assert_int_equal(l.nplugins, 0);
  /* fini() ran for both, in reverse order of loading. */
  char *order = read_text(marker);
  assert_non_null(order);
  assert_string_equal(order, "fixture_opts\nfixture_good\n");
  free(order);
  atr_conf_free(root);
  free(text);
  free(marker);
}

static void load_config_without_start_runs_no_plugin_code(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  char *marker = fmt("%s/fini", scratch_dir());
  char *text = fmt("plugins:\n"
                   "  fixture_good:\n"
                   "    enabled: true\n"
                   "    marker: %s\n"
                   "  fixture_initfail:\n"
                   "    enabled: true\n",
                   marker);
  atr_conf_node_t *root = yaml(text);
  char *err = NULL;
  assert_int_equal(atr_loader_load_config(&l, root, NULL, no_env, false, &err),
                   0);
  assert_int_equal(l.nplugins, 2);
  assert_int_equal(l.plugins[0]->state, ATR_PLUGIN_LOADED);
  assert_int_equal(l.plugins[1]->state, ATR_PLUGIN_LOADED);
  assert_null(l.plugins[0]->ctx);
  assert_string_equal(atr_optset_find(&l.plugins[0]->opts, "marker")->v.s,
                      marker);
  assert_int_equal(atr_routes_count(), 0);
  atr_loader_shutdown(&l);
  assert_int_equal(access(marker, F_OK), -1); /* no fini without init */
  atr_conf_free(root);
  free(text);
  free(marker);
}

static void load_config_stops_at_the_first_error(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_conf_node_t *root = yaml("plugins:\n"
                               "  fixture_good:\n"
                               "    enabled: maybe\n"
                               "  fixture_opts:\n"
                               "    enabled: true\n");
  char *err = NULL;
  assert_int_equal(atr_loader_load_config(&l, root, NULL, no_env, true, &err),
                   ATR_ECONFIG);
  assert_string_equal(err, "test.yaml:3:14: plugins.fixture_good.enabled: "
                           "\"maybe\" is not a boolean; expected true or "
                           "false");
  assert_int_equal(l.nplugins, 0);
  free(err);
  atr_conf_free(root);

  root = yaml("plugins:\n"
              "  fixture_initfail:\n"
              "    enabled: true\n"
              "  fixture_good:\n"
              "    enabled: true\n");
  assert_int_equal(atr_loader_load_config(&l, root, NULL, no_env, true, &err),
                   ATR_EUNAVAIL);
  assert_string_equal(err, "plugin fixture_initfail: init failed: database "
                           "unreachable");
  assert_int_equal(l.nplugins, 1); /* kept, failed, for plugins list */
  assert_int_equal(l.plugins[0]->state, ATR_PLUGIN_FAILED);
  assert_null(atr_loader_find(&l, "fixture_good"));
  free(err);
  atr_conf_free(root);
  atr_loader_shutdown(&l);
}

static void load_config_uses_the_configured_file(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  char *outside = copy_fixture("fixture_good", scratch_dir(), 0755);
  char *text = fmt("plugins:\n"
                   "  fixture_good:\n"
                   "    enabled: true\n"
                   "    file: %s\n",
                   outside);
  atr_conf_node_t *root = yaml(text);
  char *err = NULL;
  assert_int_equal(atr_loader_load_config(&l, root, NULL, no_env, true, &err),
                   ATR_EACCES);
  char *want = fmt("plugin fixture_good: %s is outside the plugin "
                   "directories (%s)",
                   outside, plugdir);
  assert_string_equal(err, want);
  free(want);
  free(err);
  free(text);
  free(outside);
  atr_conf_free(root);
  atr_loader_shutdown(&l);
}

static const char reload_a[] = "plugins:\n"
                               "  fixture_opts:\n"
                               "    enabled: true\n"
                               "    endpoint: http://a.example\n"
                               "    token: s3cret-one\n"
                               "    batch: 10\n";
static const char reload_b[] = "plugins:\n"
                               "  fixture_opts:\n"
                               "    enabled: true\n"
                               "    endpoint: http://b.example\n"
                               "    workers: 8\n"
                               "    token: s3cret-two\n"
                               "    batch: 20\n";

static atr_handle_t *load_opts(atr_loader_t *l, const char *text,
                               atr_overrides_t *flags) {
  atr_conf_node_t *root = yaml(text);
  char *err = NULL;
  loader_in(l, plugdir);
  if (atr_loader_load_config(l, root, flags, no_env, true, &err) != 0)
    fail_msg("%s", err);
  atr_conf_free(root);
  return atr_loader_find(l, "fixture_opts");
}

static int reload_with(atr_loader_t *l, const char *text) {
  atr_conf_node_t *root = yaml(text);
  int n = atr_loader_reload(l, root, no_env);
  atr_conf_free(root);
  return n;
}

static void reload_applies_only_reloadable_options(void **state) {
  atr_loader_t l;
  atr_handle_t *h = load_opts(&l, reload_a, NULL);
  const fixture_opts_ctx_t *c = h->ctx;
  const char *endpoint = c->endpoint, *token = c->token;
  assert_int_equal(reload_with(&l, reload_b), 2);
  assert_int_equal(c->batch, 20);
  assert_string_equal(c->token, "s3cret-two");
  assert_int_equal(c->workers, 4);
  assert_ptr_equal(c->endpoint, endpoint);  /* untouched, same string */
  assert_string_equal(token, "s3cret-one"); /* old string still alive */
  assert_int_equal(c->reloads, 1);
  assert_int_equal(c->batch_seen_by_reload, 20);
  const atr_host_t *host = atr_host_table();
  int64_t v = 0;
  const char *s = NULL;
  assert_int_equal(host->option_get_int(h, "batch", &v), 0);
  assert_int_equal(v, 20);
  assert_int_equal(host->option_get_int(h, "workers", &v), 0);
  assert_int_equal(v, 4);
  assert_int_equal(host->option_get_string(h, "endpoint", &s), 0);
  assert_string_equal(s, "http://a.example");
  assert_logged("INFO  [loader] plugin fixture_opts: option token changed "
                "from (redacted) to (redacted)\n");
  assert_logged("INFO  [loader] plugin fixture_opts: option batch changed "
                "from 10 to 20\n");
  assert_logged("WARN  [loader] plugin fixture_opts: option endpoint changed "
                "in the config but needs a restart to apply\n");
  assert_logged("WARN  [loader] plugin fixture_opts: option workers changed "
                "in the config but needs a restart to apply\n");
  assert_null(strstr(log_get(), "s3cret"));
  /* The same config again changes nothing reloadable. */
  assert_int_equal(reload_with(&l, reload_b), 0);
  assert_int_equal(c->reloads, 1);
  /* A bad config is refused as a whole; the running values stay. */
  assert_int_equal(reload_with(&l, "plugins:\n  fixture_opts:\n"
                                   "    endpoint: x\n    batch: lots\n"),
                   0);
  assert_int_equal(c->batch, 20);
  assert_logged("ERROR [loader] plugin fixture_opts: reload refused, keeping "
                "the running options: test.yaml:4:12: "
                "plugins.fixture_opts.batch: \"lots\" is not an integer; "
                "expected a whole number\n");
  /* Back to A: batch and token go back, endpoint was never changed. */
  assert_int_equal(reload_with(&l, reload_a), 2);
  assert_int_equal(c->batch, 10);
  assert_int_equal(c->reloads, 2);
  atr_loader_shutdown(&l);
}

static void a_flag_keeps_winning_after_reload(void **state) {
  atr_override_t item = {"plugins.fixture_opts.batch", "50", 0};
  atr_overrides_t flags = {&item, 1};
  atr_loader_t l;
  atr_handle_t *h = load_opts(&l, reload_a, &flags);
  const fixture_opts_ctx_t *c = h->ctx;
  assert_int_equal(c->batch, 50);
  assert_int_equal(reload_with(&l, reload_b), 1); /* the token only */
  assert_int_equal(c->batch, 50);
  assert_null(strstr(log_get(), "option batch"));
  atr_loader_shutdown(&l);
}

/* ---- health callbacks (appended to the descriptor in ABI 1.0) --- */

static const json_t *plugin_in(const json_t *list, const char *name) {
  size_t i;
  const json_t *p;
  json_array_foreach(list, i, p) {
    if (strcmp(json_string_value(json_object_get(p, "name")), name) == 0)
      return p;
  }
  fail_msg("plugin %s is not in the list", name);
  return NULL;
}

static void
a_health_callback_is_called_only_when_the_descriptor_has_it(void **state) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_handle_t *now = open_ok(&l, "fixture_health");
  atr_handle_t *old = open_ok(&l, "fixture_health_old");
  configure_ok(now, "plugins: {}\n");
  configure_ok(old, "plugins: {}\n");
  char *msg = NULL;
  /* not running yet: no callback */
  assert_int_equal(atr_loader_health(now, &msg), ATR_ENOTSUP);
  assert_null(msg);
  start_ok(now);
  start_ok(old);
  assert_int_equal(atr_loader_health(now, &msg), ATR_HEALTH_DEGRADED);
  assert_string_equal(msg, "half the widgets are out");
  free(msg);
  msg = NULL;
  /* struct_size ends before the field: never read, never called */
  assert_int_equal(atr_loader_health(old, &msg), ATR_ENOTSUP);
  assert_null(msg);
  json_t *list = atr_loader_plugins_json(&l);
  assert_true(json_is_true(
      json_object_get(plugin_in(list, "fixture_health"), "health_check")));
  assert_true(json_is_false(
      json_object_get(plugin_in(list, "fixture_health_old"), "health_check")));
  assert_string_equal(json_string_value(json_object_get(
                          plugin_in(list, "fixture_health"), "state")),
                      "running");
  json_decref(list);
  atr_loader_shutdown(&l);
}

static void names_of_kinds_and_states(void **state) {
  assert_string_equal(atr_plugin_kind_name(ATR_KIND_STORAGE), "storage");
  assert_string_equal(atr_plugin_kind_name(ATR_KIND_AUTH), "auth");
  assert_string_equal(atr_plugin_kind_name(ATR_KIND_PROVISIONER),
                      "provisioner");
  assert_string_equal(atr_plugin_kind_name(ATR_KIND_OBSERVER), "observer");
  assert_string_equal(atr_plugin_kind_name((atr_plugin_kind_t)9), "unknown");
  assert_string_equal(atr_plugin_state_name(ATR_PLUGIN_LOADED), "loaded");
  assert_string_equal(atr_plugin_state_name(ATR_PLUGIN_RUNNING), "running");
  assert_string_equal(atr_plugin_state_name(ATR_PLUGIN_FAILED), "failed");
  assert_string_equal(atr_plugin_state_name(ATR_PLUGIN_STOPPED), "stopped");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, test_setup, test_teardown)

int main(void) {
  const struct CMUnitTest tests[] = {
      T(a_good_plugin_opens_by_name),
      T(a_missing_plugin_names_the_directories),
      T(a_file_outside_the_directories_is_refused),
      T(a_writable_file_is_refused_with_its_mode),
      T(a_file_that_is_no_shared_object_cannot_load),
      T(entry_and_descriptor_problems_are_refused),
      T(abi_and_size_mismatches_are_refused),
      T(the_declared_name_must_match),
      T(a_name_loads_only_once),
      T(unknown_options_list_the_valid_ones),
      T(a_missing_required_option_names_itself),
      T(values_of_the_wrong_type_say_what_is_expected),
      T(options_fill_the_context),
      T(the_environment_can_supply_a_required_option),
      T(host_reads_options_by_type),
      T(the_host_table_is_complete),
      T(init_registers_routes_and_metrics),
      T(a_failed_init_leaves_nothing_behind),
      T(a_failed_init_without_message_reports_the_code),
      T(load_config_starts_enabled_plugins_in_order),
      T(load_config_without_start_runs_no_plugin_code),
      T(load_config_stops_at_the_first_error),
      T(load_config_uses_the_configured_file),
      T(reload_applies_only_reloadable_options),
      T(a_flag_keeps_winning_after_reload),
      T(a_health_callback_is_called_only_when_the_descriptor_has_it),
      T(names_of_kinds_and_states),
  };
  return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
