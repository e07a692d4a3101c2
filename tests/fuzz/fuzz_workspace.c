/* tests/fuzz/fuzz_workspace.c — the docker provisioner's workspace.yaml:
 * read (dk_spec_load) and expanded into containers (dk_plan_make), once
 * as an import checks it and once for a build with parameter values. The
 * plugin's sources are linked in directly, nothing is loaded and no Docker
 * engine is called. The file is written to a scratch directory, as the
 * plugin reads it from a job's directory. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64];
static char file[96];

static void cleanup(void) {
  unlink(file);
  rmdir(scratch);
}

static const char *const params[] = {"cpus", "memory", "image", "home"};
static const atr_param_value_t values[] = {
    {sizeof(atr_param_value_t), "cpus", "2", "number", 0},
    {sizeof(atr_param_value_t), "memory", "512", "number", 0},
    {sizeof(atr_param_value_t), "image", "debian:12", "string", 0},
    {sizeof(atr_param_value_t), "home", "[\"a\",\"b\"]", "list(string)", 1},
};
static const char *const allowed[] = {NULL};

static void plan(const dk_ctx_t *c, const dk_spec_t *spec,
                 const atr_prov_apply_request_t *req) {
  dk_plan_t p;
  memset(&p, 0, sizeof p);
  dk_errs_t errs = {0};
  dk_plan_make(c, spec, req, &p, &errs);
  free(dk_errs_join(&errs));
  dk_errs_free(&errs);
  dk_plan_free(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!scratch[0]) {
    fuzz_scratch_dir(scratch, sizeof scratch);
    snprintf(file, sizeof file, "%s/workspace.yaml", scratch);
    atexit(cleanup);
  }
  FILE *f = fopen(file, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0)
    abort();
  dk_spec_t spec;
  dk_errs_t errs = {0};
  int rc = dk_spec_load(scratch, params, 4, &spec, &errs);
  if (rc == 0 || rc == ATR_EINVAL) {
    dk_ctx_t c = {.allowed_images = allowed,
                  .network_mode = "bridge",
                  .pull_policy = "missing",
                  .label_prefix = "dev.atrium"};
    atr_prov_apply_request_t req = {
        .struct_size = sizeof req,
        .workdir = scratch,
        .build_number = 1,
        .workspace_id = "0b4c5ad6-9a2e-4f53-9d8e-1f2a3b4c5d6e",
        .workspace_name = "dev",
        .owner_id = "5e1c0a4e-1d1b-4c8f-8a8f-0e9f6b6c7d8e",
        .owner_name = "alice",
        .owner_email = "alice@example.com",
        .template_name = "docker",
        .params = values,
        .nparams = 4};
    plan(&c, &spec, NULL);
    if (rc == 0)
      plan(&c, &spec, &req);
  }
  dk_spec_free(&spec);
  free(dk_errs_join(&errs));
  dk_errs_free(&errs);
  return 0;
}
