/* core/plugin/prov_result.c — a provisioner's apply() result, read by the
 * plugin's strides and released through the host's allocator. See
 * prov_result.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf */
#endif
#include "prov_result.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "loader.h"

void atr_prov_result_init(atr_prov_apply_result_t *res) {
  memset(res, 0, sizeof(*res));
  res->struct_size = sizeof(*res);
}

static const void *at(const void *base, size_t i) {
  const uint32_t *size = base;
  return (const char *)base + i * *size;
}

const atr_prov_resource_t *
atr_prov_resource_at(const atr_prov_apply_result_t *res, size_t i) {
  return at(res->resources, i);
}

const atr_prov_metadata_t *atr_prov_metadata_at(const atr_prov_resource_t *r,
                                                size_t j) {
  return at(r->metadata, j);
}

ATR_PRINTF(2, 3)
static int refuse(char **err, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (err != NULL && vasprintf(err, fmt, ap) < 0)
    *err = NULL;
  va_end(ap);
  return ATR_EABI;
}

/* Every element of an array must carry the first one's size, and that
 * size must hold the ABI 1.1 layout; else the stride is a lie. */
static int check_array(const char *type, const char *what, const void *base,
                       size_t n, size_t min, char **err) {
  if (n == 0)
    return 0;
  if (base == NULL)
    return refuse(err, "provisioner %s: %zu %s entries but no array", type, n,
                  what);
  uint32_t stride = *(const uint32_t *)base;
  if (stride < min)
    return refuse(err,
                  "provisioner %s: %s struct_size %u is smaller than %zu "
                  "required for ABI %u.%u",
                  type, what, (unsigned)stride, min, (unsigned)ATR_ABI_MAJOR,
                  (unsigned)ATR_ABI_MINOR);
  for (size_t i = 1; i < n; i++) {
    uint32_t size = *(const uint32_t *)((const char *)base + i * stride);
    if (size != stride)
      return refuse(err,
                    "provisioner %s: %s %zu has struct_size %u, the first %u; "
                    "every entry must have the same",
                    type, what, i, (unsigned)size, (unsigned)stride);
  }
  return 0;
}

int atr_prov_result_check(const char *type, const atr_prov_apply_result_t *res,
                          char **err) {
  int rc = check_array(type, "resource", res->resources, res->nresources,
                       ATR_PROV_RESOURCE_MIN_SIZE, err);
  for (size_t i = 0; rc == 0 && i < res->nresources; i++) {
    const atr_prov_resource_t *r = atr_prov_resource_at(res, i);
    rc = check_array(type, "metadata", r->metadata, r->nmetadata,
                     ATR_PROV_METADATA_MIN_SIZE, err);
  }
  return rc;
}

static bool array_ok(const void *base, size_t n, size_t min) {
  if (n == 0 || base == NULL)
    return false;
  uint32_t stride = *(const uint32_t *)base;
  for (size_t i = 0; i < n; i++) {
    uint32_t size = *(const uint32_t *)((const char *)base + i * stride);
    if (size < min || size != stride)
      return false;
  }
  return true;
}

static void release_resource(const atr_host_t *host,
                             const atr_prov_resource_t *r) {
  host->mem_free(r->type);
  host->mem_free(r->name);
  host->mem_free(r->id);
  if (array_ok(r->metadata, r->nmetadata, ATR_PROV_METADATA_MIN_SIZE)) {
    for (size_t j = 0; j < r->nmetadata; j++) {
      const atr_prov_metadata_t *md = atr_prov_metadata_at(r, j);
      host->mem_free(md->key);
      host->mem_free(md->value);
    }
  }
  host->mem_free(r->metadata);
}

void atr_prov_result_release(atr_prov_apply_result_t *res) {
  const atr_host_t *host = atr_host_table();
  host->mem_free(res->state);
  if (array_ok(res->resources, res->nresources, ATR_PROV_RESOURCE_MIN_SIZE))
    for (size_t i = 0; i < res->nresources; i++)
      release_resource(host, atr_prov_resource_at(res, i));
  host->mem_free(res->resources);
  atr_prov_result_init(res);
}
