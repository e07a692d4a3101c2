/* JSON measured before parsing (core/base/json_bounds.c): depth and value
 * counts at their exact limits, and brackets and commas inside strings,
 * escaped quotes included, not counted. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "json_bounds.h"

static const atr_json_bounds_t small = {.max_depth = 3, .max_values = 5};

static int measure(const char *text, char *why) {
  return atr_json_measure(text, strlen(text), &small, why, 100);
}

static void depth_at_the_limit_passes_and_one_more_fails(void **state) {
  (void)state;
  char why[100] = "";
  assert_int_equal(measure("[[[]]]", why), 0);
  assert_int_equal(measure("[[[[]]]]", why), ATR_ERANGE);
  assert_string_equal(why, "nested deeper than 3 levels");
  assert_int_equal(measure("{\"a\":{\"b\":{\"c\":{}}}}", why), ATR_ERANGE);
}

static void values_at_the_limit_pass_and_one_more_fails(void **state) {
  (void)state;
  char why[100] = "";
  assert_int_equal(measure("[1,2,3,4]", why), 0); /* 5 with the array */
  assert_int_equal(measure("[1,2,3,4,5]", why), ATR_ERANGE);
  assert_string_equal(why, "more than 5 values");
}

static void strings_hide_brackets_commas_and_escaped_quotes(void **state) {
  (void)state;
  char why[100] = "";
  assert_int_equal(measure("[\"[[[[,,,,,,\"]", why), 0);
  assert_int_equal(measure("[\"\\\"[[[[,,,,\"]", why), 0);
  /* after an escaped backslash the quote ends the string */
  assert_int_equal(measure("[\"\\\\\",[[[]]]]", why), ATR_ERANGE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(depth_at_the_limit_passes_and_one_more_fails),
      cmocka_unit_test(values_at_the_limit_pass_and_one_more_fails),
      cmocka_unit_test(strings_hide_brackets_commas_and_escaped_quotes),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
