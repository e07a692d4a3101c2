/* tests/unit/test_debug_access_url.c — the URL the health report's
 * access_url check fetches: access_url as configured (without trailing
 * slashes), or, when it is empty, http:// and the first http.address,
 * with a wildcard host reached on the loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "app.h"

static void expect_url(const char *access_url, const char *address,
                       const char *want) {
  atr_app_t app = {0};
  app.core.access_url = access_url;
  app.core.http_address = address;
  char *got = atr_app_access_url(&app);
  assert_non_null(got);
  assert_string_equal(got, want);
  free(got);
}

static void a_configured_access_url_is_used_as_given(void **state) {
  (void)state;
  expect_url("https://atrium.example.com", "0.0.0.0:3000",
             "https://atrium.example.com");
  expect_url("https://atrium.example.com/", "0.0.0.0:3000",
             "https://atrium.example.com");
  expect_url("https://example.com/atrium//", "", "https://example.com/atrium");
  /* checked by the health report, not here */
  expect_url("atrium.example.com", "", "atrium.example.com");
}

static void without_one_the_first_http_address_is_used(void **state) {
  (void)state;
  expect_url("", "127.0.0.1:3000", "http://127.0.0.1:3000");
  expect_url(NULL, "10.1.2.3:8080", "http://10.1.2.3:8080");
  expect_url("", "0.0.0.0:3000", "http://127.0.0.1:3000");
  expect_url("", "[::]:3000", "http://[::1]:3000");
  expect_url("", "[::1]:4000", "http://[::1]:4000");
  expect_url("", ":3000", "http://127.0.0.1:3000");
  expect_url("", "127.0.0.1:3000,[::1]:3000", "http://127.0.0.1:3000");
  expect_url("", " atrium.internal:3000, 10.0.0.1:3000",
             "http://atrium.internal:3000");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_configured_access_url_is_used_as_given),
      cmocka_unit_test(without_one_the_first_http_address_is_used),
  };
  return cmocka_run_group_tests_name("debug_access_url", tests, NULL, NULL);
}
