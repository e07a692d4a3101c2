/* tests/abi/test_abi_growth.c — what ABI 1.1 added so the SDK can grow:
 * a plugin built against 1.0 is refused, option tables are read with the
 * plugin's declared stride (too small is refused, larger is read right),
 * a provisioner's result is walked by its elements' struct_size and
 * refused when they are too small or disagree, the host hands out its
 * allocator, and observers receive the events the core emits. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
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

#include "atrium/observer.h"
#include "atrium/provisioner.h"
#include "conf.h"
#include "loader.h"
#include "observe.h"
#include "prov_result.h"

#ifndef ATR_FIXTURE_DIR
#error "ATR_FIXTURE_DIR must name the directory of the fixture plugins"
#endif

static char dir[] = "/tmp/atr-abi-growth-XXXXXX"; /* private plugin dir */
static char *events;                              /* dir/events.txt */

static void copy_fixture(const char *name) {
  char *src = NULL, *dst = NULL;
  assert_true(asprintf(&src, "%s/%s.so", ATR_FIXTURE_DIR, name) > 0);
  assert_true(asprintf(&dst, "%s/%s.so", dir, name) > 0);
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0)
    assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  fclose(out);
  assert_int_equal(chmod(dst, 0755), 0);
  free(src);
  free(dst);
}

static int suite_setup(void **state) {
  (void)state;
  assert_non_null(mkdtemp(dir));
  assert_int_equal(chmod(dir, 0755), 0);
  copy_fixture("fixture_abi_old");
  copy_fixture("fixture_small_options");
  copy_fixture("fixture_wide_options");
  assert_true(asprintf(&events, "%s/events.txt", dir) > 0);
  return 0;
}

static int suite_teardown(void **state) {
  (void)state;
  const char *names[] = {"fixture_abi_old", "fixture_small_options",
                         "fixture_wide_options"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char *p = NULL;
    assert_true(asprintf(&p, "%s/%s.so", dir, names[i]) > 0);
    unlink(p);
    free(p);
  }
  unlink(events);
  free(events);
  rmdir(dir);
  return 0;
}

static void loader_in(atr_loader_t *l) {
  const char *dirs[] = {dir};
  char *err = NULL;
  assert_int_equal(atr_loader_init(l, dirs, 1, &err), 0);
}

static void expect_refusal(const char *name, const char *expected) {
  atr_loader_t l;
  loader_in(&l);
  atr_handle_t *h = NULL;
  char *err = NULL;
  assert_int_equal(atr_loader_open(&l, name, NULL, &h, &err), ATR_EABI);
  assert_null(h);
  assert_string_equal(err, expected);
  free(err);
  atr_loader_shutdown(&l);
}

static void a_plugin_built_against_abi_1_0_is_refused(void **state) {
  (void)state;
  expect_refusal("fixture_abi_old",
                 "plugin fixture_abi_old: ABI version 1.0 predates 1.1, the "
                 "first stable layout; rebuild the plugin against this SDK");
}

static void an_option_stride_below_the_1_1_layout_is_refused(void **state) {
  (void)state;
  char *want = NULL;
  assert_true(asprintf(&want,
                       "plugin fixture_small_options: option_size 16 is "
                       "smaller than %zu required for ABI 1.%d",
                       (size_t)ATR_OPTION_MIN_SIZE, ATR_ABI_MINOR) > 0);
  expect_refusal("fixture_small_options", want);
  free(want);
}

static atr_conf_node_t *yaml(const char *text) {
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  assert_int_equal(atr_conf_parse("t.yaml", text, strlen(text), &root, &err),
                   0);
  return root;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return strdup("");
  char *s = calloc(1, 4096);
  assert_non_null(s);
  size_t n = fread(s, 1, 4095, f);
  s[n] = '\0';
  fclose(f);
  return s;
}

/* Loads fixture_wide_options (output: events) and starts it. */
static atr_handle_t *start_wide(atr_loader_t *l, atr_conf_node_t **root) {
  char *text = NULL;
  assert_true(asprintf(&text,
                       "plugins:\n  fixture_wide_options:\n    enabled: true\n"
                       "    output: %s\n    level: 7\n",
                       events) > 0);
  *root = yaml(text);
  free(text);
  loader_in(l);
  char *err = NULL;
  assert_int_equal(atr_loader_load_config(l, *root, NULL, NULL, true, &err), 0);
  assert_null(err);
  atr_handle_t *h = atr_loader_find(l, "fixture_wide_options");
  assert_non_null(h);
  assert_int_equal(h->state, ATR_PLUGIN_RUNNING);
  return h;
}

static void a_wider_option_stride_is_read_by_the_plugins_size(void **state) {
  (void)state;
  atr_loader_t l;
  atr_conf_node_t *root = NULL;
  atr_handle_t *h = start_wide(&l, &root);
  const atr_option_t *o = atr_plugin_options(h);
  assert_string_equal(o[0].name, "output");
  assert_string_equal(o[1].name, "level");
  assert_string_equal(o[1].default_value, "3");
  assert_true(o[1].min == 1 && o[1].max == 9);
  assert_null(o[2].name);
  int64_t level = 0;
  assert_int_equal(atr_host_table()->option_get_int(h, "level", &level), 0);
  assert_int_equal(level, 7);
  atr_loader_shutdown(&l);
  atr_conf_free(root);
}

static void observers_receive_events_only_while_running(void **state) {
  (void)state;
  unlink(events);
  /* No observer yet: emitting is a no-op, and steals the fields. */
  atr_observe_emit("audit", json_pack("{s:s}", "action", "before"));
  atr_observe_emit("audit", NULL);
  atr_loader_t l;
  atr_conf_node_t *root = NULL;
  start_wide(&l, &root);
  atr_observe_emit(
      "audit", json_pack("{s:s, s:i}", "action", "create", "status_code", 201));
  atr_observe_emit("build", json_pack("{s:s}", "status", "succeeded"));
  atr_loader_shutdown(&l);
  atr_observe_emit("audit", json_pack("{s:s}", "action", "after"));
  atr_conf_free(root);
  char *got = slurp(events);
  char *want = NULL;
  assert_true(asprintf(&want,
                       "audit {\"action\":\"create\",\"status_code\":201} %zu\n"
                       "build {\"status\":\"succeeded\"} %zu\n",
                       sizeof(atr_event_t), sizeof(atr_event_t)) > 0);
  assert_string_equal(got, want);
  free(want);
  free(got);
}

/* ---- provisioner results --- */

static const atr_host_t *host;

static atr_prov_resource_t *resources(size_t n, size_t nmeta) {
  atr_prov_resource_t *r = host->mem_calloc(n, sizeof *r);
  for (size_t i = 0; i < n; i++) {
    r[i].struct_size = sizeof r[i];
    r[i].type = strdup("t");
    r[i].name = strdup("n");
    r[i].metadata = host->mem_calloc(nmeta ? nmeta : 1, sizeof *r->metadata);
    r[i].nmetadata = nmeta;
    for (size_t j = 0; j < nmeta; j++) {
      r[i].metadata[j].struct_size = sizeof *r->metadata;
      r[i].metadata[j].key = strdup("k");
      r[i].metadata[j].value = strdup("v");
    }
  }
  return r;
}

static void a_well_formed_result_passes_and_is_released(void **state) {
  (void)state;
  host = atr_host_table();
  atr_prov_apply_result_t res;
  atr_prov_result_init(&res);
  assert_int_equal(res.struct_size, sizeof res);
  res.state = strdup("s");
  res.state_len = 1;
  res.resources = resources(2, 2);
  res.nresources = 2;
  char *err = NULL;
  assert_int_equal(atr_prov_result_check("echo", &res, &err), 0);
  assert_null(err);
  assert_string_equal(
      atr_prov_metadata_at(atr_prov_resource_at(&res, 1), 1)->value, "v");
  atr_prov_result_release(&res); /* ASan: nothing leaks */
  assert_null(res.resources);
  assert_int_equal(res.struct_size, sizeof res);
}

static void a_result_with_small_or_uneven_elements_is_refused(void **state) {
  (void)state;
  host = atr_host_table();
  atr_prov_apply_result_t res;
  atr_prov_result_init(&res);
  res.resources = resources(2, 1);
  res.nresources = 2;
  char *err = NULL, *want = NULL;

  res.resources[0].struct_size = 8;
  assert_int_equal(atr_prov_result_check("echo", &res, &err), ATR_EABI);
  assert_true(asprintf(&want,
                       "provisioner echo: resource struct_size 8 is smaller "
                       "than %zu required for ABI 1.%d",
                       (size_t)ATR_PROV_RESOURCE_MIN_SIZE, ATR_ABI_MINOR) > 0);
  assert_string_equal(err, want);
  free(want);
  free(err);
  res.resources[0].struct_size = sizeof(atr_prov_resource_t);

  res.resources[1].metadata[0].struct_size = 4;
  assert_int_equal(atr_prov_result_check("echo", &res, &err), ATR_EABI);
  assert_true(asprintf(&want,
                       "provisioner echo: metadata struct_size 4 is smaller "
                       "than %zu required for ABI 1.%d",
                       (size_t)ATR_PROV_METADATA_MIN_SIZE, ATR_ABI_MINOR) > 0);
  assert_string_equal(err, want);
  free(want);
  free(err);
  /* The check failed: release frees only what it can reach safely, so
   * free the rest here as a host would have to leak it. */
  free(res.resources[1].metadata[0].key);
  free(res.resources[1].metadata[0].value);
  res.resources[1].metadata[0].struct_size = sizeof(atr_prov_metadata_t);

  res.resources[1].struct_size = sizeof(atr_prov_resource_t) + 8;
  assert_int_equal(atr_prov_result_check("echo", &res, &err), ATR_EABI);
  assert_true(asprintf(&want,
                       "provisioner echo: resource 1 has struct_size %zu, "
                       "the first %zu; every entry must have the same",
                       sizeof(atr_prov_resource_t) + 8,
                       sizeof(atr_prov_resource_t)) > 0);
  assert_string_equal(err, want);
  free(want);
  free(err);
  res.resources[1].struct_size = sizeof(atr_prov_resource_t);
  res.resources[1].metadata[0].key = NULL;
  res.resources[1].metadata[0].value = NULL;

  res.resources[1].metadata = (free(res.resources[1].metadata), NULL);
  assert_int_equal(atr_prov_result_check("echo", &res, &err), ATR_EABI);
  assert_string_equal(err, "provisioner echo: 1 metadata entries but no array");
  free(err);
  res.resources[1].nmetadata = 0;
  atr_prov_result_release(&res);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_plugin_built_against_abi_1_0_is_refused),
      cmocka_unit_test(an_option_stride_below_the_1_1_layout_is_refused),
      cmocka_unit_test(a_wider_option_stride_is_read_by_the_plugins_size),
      cmocka_unit_test(observers_receive_events_only_while_running),
      cmocka_unit_test(a_well_formed_result_passes_and_is_released),
      cmocka_unit_test(a_result_with_small_or_uneven_elements_is_refused),
  };
  return cmocka_run_group_tests(tests, suite_setup, suite_teardown);
}
