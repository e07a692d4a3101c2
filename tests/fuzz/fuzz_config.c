/* tests/fuzz/fuzz_config.c — a configuration file: YAML into the position
 * tree (atr_conf_parse), merged over the embedded default, and resolved
 * against the core's option table as `atrium server` does at start. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "conf.h"
#include "options.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *no_env(const char *name) {
  (void)name;
  return NULL;
}

static const char *const skip_maps[] = {"plugins", NULL};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  atr_conf_node_t *tree = NULL, *base = NULL;
  char *err = NULL;
  if (atr_conf_parse("fuzz.yaml", (const char *)data, size, &tree, &err) != 0) {
    if (!err)
      abort(); /* a refusal always says why */
    free(err);
    return 0;
  }
  char where[128];
  const atr_conf_node_t *n = atr_conf_get(tree, "http.address");
  if (n)
    atr_conf_where(n, where, sizeof where);
  if (atr_conf_parse("base.yaml", "http: {address: x}\n", 19, &base, &err) != 0)
    abort();
  atr_conf_merge(base, tree);
  atr_optset_t set;
  memset(&set, 0, sizeof set);
  atr_overrides_t flags = {0};
  if (atr_optset_resolve(&set, atr_core_options, "", base, NULL, skip_maps,
                         &flags, no_env, &err) == 0) {
    json_decref(atr_optset_to_json(&set));
    atr_optset_free(&set);
  }
  free(err);
  atr_conf_free(base);
  return 0;
}
