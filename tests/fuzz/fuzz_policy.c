/* tests/fuzz/fuzz_policy.c — a policy's input: JSON (any value; one that
 * is not an object becomes input.value) converted into the sandbox's
 * read-only Lua tables, walked by a small policy that reads every field,
 * warns with the strings and sets the parameters it finds back, so both
 * directions of the conversion run. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char walker[] =
    "local function walk(v, depth)\n"
    "  if type(v) == 'table' then\n"
    "    local n = #v\n"
    "    for k, x in pairs(v) do walk(x, depth + 1) end\n"
    "    for i, x in ipairs(v) do n = n + i end\n"
    "  elseif type(v) == 'string' and #v > 2 and #v < 40 then\n"
    "    policy.warn(v)\n"
    "  end\n"
    "end\n"
    "function build(input)\n"
    "  walk(input, 0)\n"
    "  local p = input.parameters\n"
    "  if type(p) == 'table' and type(p.new) == 'table' then\n"
    "    for k, v in pairs(p.new) do\n"
    "      if type(k) == 'string' then policy.set(k, v) end\n"
    "    end\n"
    "  end\n"
    "  if type(input.value) == 'string' then\n"
    "    policy.deny(input.value, input.value)\n"
    "  end\n"
    "end\n";

static atr_policy_t *policy;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!policy) {
    char *err = NULL;
    if (atr_policy_load("walker.lua", walker, strlen(walker), NULL, &policy,
                        &err) != 0)
      abort();
  }
  json_error_t jerr;
  json_t *v = json_loadb((const char *)data, size, JSON_DECODE_ANY, &jerr);
  if (!v)
    return 0;
  json_t *input = v;
  if (!json_is_object(v)) {
    input = json_object();
    json_object_set_new(input, "value", v);
  }
  atr_decision_t d;
  if (atr_policy_eval(policy, "build", input, NULL, &d) == 0)
    json_decref(atr_decision_to_json(&d));
  atr_decision_clear(&d);
  json_decref(input);
  return 0;
}
