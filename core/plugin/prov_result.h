/* core/plugin/prov_result.h — reading and releasing what a provisioner's
 * apply() returned (atr_prov_apply_result_t), by the plugin's strides.
 *
 * The plugin fills resources and metadata with its own sizeof in each
 * element's struct_size; the core walks the arrays with that stride and
 * never past the fields the element declares. atr_prov_result_check()
 * refuses a result whose elements are smaller than the ABI 1.1 layout, or
 * whose elements disagree on their size, before anything else reads it.
 * The memory belongs to the host once apply() returned (the plugin made it
 * with the host's allocator); atr_prov_result_release() frees it with the
 * host's mem_free.
 *
 * Threads: any; a result is owned by the one job that asked for it.
 */
#ifndef ATRIUM_CORE_PROV_RESULT_H
#define ATRIUM_CORE_PROV_RESULT_H

#include "atrium/provisioner.h"

/* A zeroed result with the host's struct_size, to hand to apply(). */
void atr_prov_result_init(atr_prov_apply_result_t *res);

/* 0, or ATR_EABI with *err one line naming the plugin and the element:
 * "provisioner <type>: resource struct_size 8 is smaller than 48 required
 * for ABI 1.1". */
int atr_prov_result_check(const char *type, const atr_prov_apply_result_t *res,
                          char **err);

/* Resource i / metadata entry j, by the plugin's stride; only valid after
 * atr_prov_result_check() passed. */
const atr_prov_resource_t *
atr_prov_resource_at(const atr_prov_apply_result_t *res, size_t i);
const atr_prov_metadata_t *atr_prov_metadata_at(const atr_prov_resource_t *r,
                                                size_t j);

/* Free everything the plugin put in res, through the host's allocator, and
 * zero it. A result that failed the check loses only what can be reached
 * safely (state, and the arrays themselves). */
void atr_prov_result_release(atr_prov_apply_result_t *res);

#endif
