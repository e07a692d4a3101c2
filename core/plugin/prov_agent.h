/* core/plugin/prov_agent.h — which resource of a provisioner's result runs
 * the workspace agent (SDK ABI 1.3, atr_prov_resource_t.hosts_agent).
 *
 * A plugin marks the resource with hosts_agent; a plugin built against
 * 1.2 or older has no such field (its elements are shorter) and a 1.3
 * plugin may leave it unset, and then the first resource hosts the agent.
 *
 * Threads: any; pure. Only call it on a result atr_prov_result_check()
 * accepted. */
#ifndef ATRIUM_CORE_PROV_AGENT_H
#define ATRIUM_CORE_PROV_AGENT_H

#include <stddef.h>

#include "atrium/provisioner.h"

/* The index of the resource that hosts the agent: the first one that says
 * so, else 0; (size_t)-1 when the result has no resources. */
size_t atr_prov_result_agent_host(const atr_prov_apply_result_t *res);

#endif
