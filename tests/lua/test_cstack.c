/* Policies that recurse through C functions (pcall, a table.sort
 * comparator, string.gsub callbacks, __tostring, __concat, __index) deny
 * with the same message whatever thread evaluates them: an HTTP worker's
 * stack may be small (civetweb's were 100 KiB), the main thread's is 8 MiB,
 * and the evaluation must not depend on either.
 *
 * Each case loads and evaluates the policy on a thread with a 64 KiB stack
 * (smaller than any worker's), then again on the test's main thread, and
 * asserts the same deny both times. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "policy.h"

#define SMALL_STACK (64 * 1024)

typedef struct evaluation {
  const char *text;
  int load_rc;
  char *load_err;
  char *deny; /* the first deny's message, or NULL */
  size_t ndenies;
} evaluation_t;

static void *evaluate(void *arg) {
  evaluation_t *e = arg;
  atr_policy_t *p = NULL;
  e->load_rc = atr_policy_load("recurse.lua", e->text, strlen(e->text), NULL,
                               &p, &e->load_err);
  if (e->load_rc != 0)
    return NULL;
  json_t *in = json_pack("{s:{s:s}}", "user", "name", "alice");
  atr_decision_t d;
  if (atr_policy_eval(p, "workspace_create", in, NULL, &d) == 0) {
    e->ndenies = d.ndenies;
    if (d.ndenies > 0)
      e->deny = strdup(d.denies[0].message);
  }
  atr_decision_clear(&d);
  json_decref(in);
  atr_policy_unref(p);
  return NULL;
}

static void on_small_stack(evaluation_t *e) {
  pthread_attr_t attr;
  pthread_t t;
  assert_int_equal(pthread_attr_init(&attr), 0);
  assert_int_equal(pthread_attr_setstacksize(&attr, SMALL_STACK), 0);
  assert_int_equal(pthread_create(&t, &attr, evaluate, e), 0);
  assert_int_equal(pthread_join(t, NULL), 0);
  pthread_attr_destroy(&attr);
}

/* The policy denies on both threads, with one message that names the
 * file, the line and a stack overflow. */
static void denies_alike(const char *text, int line) {
  evaluation_t small = {.text = text}, big = {.text = text};
  on_small_stack(&small);
  evaluate(&big);
  assert_int_equal(small.load_rc, 0);
  assert_int_equal(big.load_rc, 0);
  assert_int_equal(small.ndenies, 1);
  assert_int_equal(big.ndenies, 1);
  assert_non_null(small.deny);
  assert_string_equal(small.deny, big.deny);
  char where[32];
  snprintf(where, sizeof where, "recurse.lua:%d:", line);
  if (!strstr(small.deny, where) || !strstr(small.deny, "stack overflow"))
    fail_msg("unexpected deny: %s", small.deny);
  free(small.deny);
  free(big.deny);
  free(small.load_err);
  free(big.load_err);
}

static void recursion_through_pcall_denies(void **state) {
  (void)state;
  denies_alike("local function f() local ok, e = pcall(f) error(e, 0) end\n"
               "function workspace_create(input) f() end\n",
               1);
}

static void recursion_through_a_sort_comparator_denies(void **state) {
  (void)state;
  denies_alike("local function f(a, b)\n"
               "  table.sort({3, 2, 1}, f) return a < b end\n"
               "function workspace_create(input) f(1, 2) end\n",
               2);
}

static void recursion_through_gsub_callbacks_denies(void **state) {
  (void)state;
  denies_alike("local function f(s) return (s:gsub('.', f)) end\n"
               "function workspace_create(input) f('ab') end\n",
               1);
}

static void recursion_through_tostring_denies(void **state) {
  (void)state;
  denies_alike(
      "local t = setmetatable({}, {})\n"
      "getmetatable(t).__tostring = function(x) return tostring(x) end\n"
      "function workspace_create(input) tostring(t) end\n",
      2);
}

static void recursion_through_concat_denies(void **state) {
  (void)state;
  denies_alike("local t = setmetatable({}, {})\n"
               "getmetatable(t).__concat = function(a, b) return a .. b end\n"
               "function workspace_create(input) return t .. 'x' end\n",
               2);
}

static void recursion_through_index_denies(void **state) {
  (void)state;
  denies_alike("local t = setmetatable({}, {})\n"
               "getmetatable(t).__index = function(x, k) return x[k] end\n"
               "function workspace_create(input) return t.x end\n",
               2);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(recursion_through_pcall_denies),
      cmocka_unit_test(recursion_through_a_sort_comparator_denies),
      cmocka_unit_test(recursion_through_gsub_callbacks_denies),
      cmocka_unit_test(recursion_through_tostring_denies),
      cmocka_unit_test(recursion_through_concat_denies),
      cmocka_unit_test(recursion_through_index_denies),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
