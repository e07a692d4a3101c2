/* core/plugin/host_jobs.h — the host table's job_spawn entry, filled in by
 * a layer above (core/jobs knows jobs; this layer only forwards to it).
 *
 * The jobs layer sets its implementation once, before any provisioner job
 * runs, and clears it after the last one ended. Until then job_spawn
 * answers ATR_ENOTSUP.
 */
#ifndef ATRIUM_CORE_HOST_JOBS_H
#define ATRIUM_CORE_HOST_JOBS_H

#include "atrium/host.h"

typedef int (*atr_host_job_spawn_fn)(struct atr_prov_job *job,
                                     const atr_spawn_t *spec, int *pid);

void atr_host_set_job_spawn(atr_host_job_spawn_fn fn);

#endif
