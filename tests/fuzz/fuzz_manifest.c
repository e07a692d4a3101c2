/* tests/fuzz/fuzz_manifest.c — template.yaml (atr_manifest_parse), then
 * the parsed schema checking its own defaults as a build's values, with
 * the same values as the previous build's; an agent section gives a spec
 * that is a JSON object. */
#include <stdint.h>
#include <stdlib.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  atr_manifest_t m;
  json_t *errors = NULL;
  if (atr_manifest_parse("template.yaml", (const char *)data, size, &m,
                         &errors) != 0) {
    if (!json_is_array(errors) || json_array_size(errors) == 0)
      abort(); /* a refusal always says why */
    json_decref(errors);
    return 0;
  }
  json_decref(errors);
  if (m.agent_spec) {
    json_t *spec = json_loads(m.agent_spec, 0, NULL);
    if (!json_is_object(spec))
      abort();
    json_decref(spec);
  }
  json_t *values = json_object();
  for (size_t i = 0; i < m.nparams; i++)
    if (m.params[i].default_value)
      json_object_set_new(values, m.params[i].name,
                          json_string(m.params[i].default_value));
  json_t *resolved = NULL, *problems = NULL;
  atr_manifest_check_values(&m, values, values, &resolved, &problems);
  json_decref(resolved);
  json_decref(problems);
  json_decref(values);
  atr_manifest_free(&m);
  return 0;
}
