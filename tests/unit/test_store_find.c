/* Exactly one storage plugin: none or two is a start-up error that says
 * which were found and what to do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "atrium/storage.h"
#include "db.h"

static const atr_storage_ops_t ops = {.struct_size = sizeof ops,
                                      .dialect = "fake"};
static const atr_plugin_t storage_desc = {.kind = ATR_KIND_STORAGE,
                                          .ops = &ops};
static const atr_plugin_t other_desc = {.kind = ATR_KIND_PROVISIONER};

static atr_handle_t handle(const char *name, const atr_plugin_t *desc,
                           atr_plugin_state_t state) {
  return (atr_handle_t){.name = (char *)name, .desc = desc, .state = state};
}

static void none_enabled_says_which_to_enable(void **state) {
  (void)state;
  atr_handle_t echo =
      handle("provisioner_echo", &other_desc, ATR_PLUGIN_RUNNING);
  atr_handle_t *list[] = {&echo};
  atr_loader_t l = {.plugins = list, .nplugins = 1};
  atr_store_t s;
  char *err = NULL;
  assert_int_equal(atr_store_find(&l, &s, &err), ATR_ECONFIG);
  assert_string_equal(err, "no storage plugin is enabled; enable one of "
                           "storage_sqlite or storage_postgres under "
                           "plugins: in the config");
  free(err);
}

static void two_enabled_are_named(void **state) {
  (void)state;
  atr_handle_t a =
      handle("storage_postgres", &storage_desc, ATR_PLUGIN_RUNNING);
  atr_handle_t b = handle("storage_sqlite", &storage_desc, ATR_PLUGIN_RUNNING);
  atr_handle_t *list[] = {&a, &b};
  atr_loader_t l = {.plugins = list, .nplugins = 2};
  atr_store_t s;
  char *err = NULL;
  assert_int_equal(atr_store_find(&l, &s, &err), ATR_ECONFIG);
  assert_string_equal(err, "2 storage plugins are enabled (storage_postgres, "
                           "storage_sqlite); enable exactly one");
  free(err);
}

static void one_running_is_the_store(void **state) {
  (void)state;
  atr_handle_t a = handle("storage_sqlite", &storage_desc, ATR_PLUGIN_RUNNING);
  atr_handle_t b = handle("storage_postgres", &storage_desc, ATR_PLUGIN_FAILED);
  atr_handle_t *list[] = {&a, &b};
  atr_loader_t l = {.plugins = list, .nplugins = 2};
  atr_store_t s;
  char *err = NULL;
  assert_int_equal(atr_store_find(&l, &s, &err), 0);
  assert_ptr_equal(s.plugin, &a);
  assert_ptr_equal(s.ops, &ops);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(none_enabled_says_which_to_enable),
      cmocka_unit_test(two_enabled_are_named),
      cmocka_unit_test(one_running_is_the_store),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
