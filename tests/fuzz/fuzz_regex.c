/* tests/fuzz/fuzz_regex.c — a string parameter's validation.regex checked
 * against a value (atr_manifest_check_values), as a workspace build does
 * with a template's pattern and a member's value.
 *
 * Input: the pattern, a NUL byte, the value. Both are capped at 256
 * bytes, the sizes a template and a form field realistically carry. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PART 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, '\0', size);
  if (!nul)
    return 0;
  size_t plen = (size_t)(nul - data), vlen = size - plen - 1;
  if (plen > MAX_PART || vlen > MAX_PART)
    return 0;
  atr_manifest_t m = {0};
  m.params = calloc(1, sizeof *m.params);
  if (!m.params)
    return 0;
  m.nparams = 1;
  m.params[0].name = strdup("p");
  m.params[0].type = ATR_PARAM_STRING;
  m.params[0].mutable_ = true;
  m.params[0].regex = strndup((const char *)data, plen);
  char *value = strndup((const char *)nul + 1, vlen);
  json_t *values = json_pack("{s:s?}", "p", value);
  json_t *resolved = NULL, *errors = NULL;
  if (values)
    atr_manifest_check_values(&m, values, NULL, &resolved, &errors);
  json_decref(resolved);
  json_decref(errors);
  json_decref(values);
  free(value);
  atr_manifest_free(&m);
  return 0;
}
