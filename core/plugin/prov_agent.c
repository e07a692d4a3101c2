/* core/plugin/prov_agent.c — see prov_agent.h. */
#include "prov_agent.h"

#include "prov_result.h"

size_t atr_prov_result_agent_host(const atr_prov_apply_result_t *res) {
  if (res->nresources == 0)
    return (size_t)-1;
  for (size_t i = 0; i < res->nresources; i++)
    if (ATR_PROV_RESOURCE_HOSTS_AGENT(atr_prov_resource_at(res, i)))
      return i;
  return 0;
}
