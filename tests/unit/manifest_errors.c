/* tests/unit/manifest_errors.c — see manifest_errors.h. */
#include "manifest_errors.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atrium/error.h"

char *manifest_errors_text(json_t *errors) {
  size_t cap = 16384, used = 0;
  char *buf = calloc(1, cap);
  size_t i;
  json_t *e;
  json_array_foreach(errors, i, e) {
    used += (size_t)snprintf(buf + used, cap - used, "%s|%s\n",
                             json_string_value(json_object_get(e, "field")),
                             json_string_value(json_object_get(e, "detail")));
  }
  return buf;
}

void manifest_assert_errors(const char *yaml, const char *expected,
                            atr_manifest_t *m) {
  json_t *errors = NULL;
  assert_int_equal(
      atr_manifest_parse("template.yaml", yaml, strlen(yaml), m, &errors),
      ATR_EINVAL);
  assert_non_null(errors);
  char *got = manifest_errors_text(errors);
  if (strcmp(got, expected) != 0)
    fprintf(stderr, "yaml:\n%s\ngot:\n%sexpected:\n%s", yaml, got, expected);
  assert_string_equal(got, expected);
  free(got);
  json_decref(errors);
}
