/* Rate limits: a burst up to the limit, then 429-style refusals with a
 * Retry-After, refilled over time; keys are independent; the table stays
 * bounded under a flood of keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "ratelimit.h"

static void a_burst_up_to_the_limit_then_refusal(void **state) {
  (void)state;
  atr_ratelimit_t *rl = atr_ratelimit_new(10, 16);
  for (int i = 0; i < 10; i++)
    assert_true(atr_ratelimit_take(rl, "10.0.0.1", 1000, NULL));
  int retry = 0;
  assert_false(atr_ratelimit_take(rl, "10.0.0.1", 1000, &retry));
  assert_int_equal(retry, 6); /* one token every 6 s */
  /* another key is not affected */
  assert_true(atr_ratelimit_take(rl, "10.0.0.2", 1000, NULL));
  /* 6 s later one token is back, and only one */
  assert_true(atr_ratelimit_take(rl, "10.0.0.1", 7000, NULL));
  assert_false(atr_ratelimit_take(rl, "10.0.0.1", 7000, NULL));
  atr_ratelimit_free(rl);
}

static void zero_means_no_limit(void **state) {
  (void)state;
  atr_ratelimit_t *rl = atr_ratelimit_new(0, 16);
  for (int i = 0; i < 1000; i++)
    assert_true(atr_ratelimit_take(rl, "k", 0, NULL));
  atr_ratelimit_free(rl);
}

static void a_flood_of_keys_keeps_the_table_bounded(void **state) {
  (void)state;
  atr_ratelimit_t *rl = atr_ratelimit_new(2, 8);
  char key[32];
  /* the victim uses up its budget */
  assert_true(atr_ratelimit_take(rl, "victim", 0, NULL));
  assert_true(atr_ratelimit_take(rl, "victim", 0, NULL));
  for (int i = 0; i < 1000; i++) {
    snprintf(key, sizeof key, "k%d", i);
    assert_true(atr_ratelimit_take(rl, key, 1, NULL));
  }
  /* recycled slots never hand out more than the limit per key */
  assert_true(atr_ratelimit_take(rl, "k999", 1, NULL));
  assert_false(atr_ratelimit_take(rl, "k999", 1, NULL));
  atr_ratelimit_free(rl);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_burst_up_to_the_limit_then_refusal),
      cmocka_unit_test(zero_means_no_limit),
      cmocka_unit_test(a_flood_of_keys_keeps_the_table_bounded),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
