/* core/plugin/provisioners.c — see provisioners.h. */
#include "provisioners.h"

#include <stdlib.h>
#include <string.h>

#include "atrium/provisioner.h"

static const atr_provisioner_ops_t *prov_ops(const atr_handle_t *h) {
  if (h->state != ATR_PLUGIN_RUNNING || h->desc->kind != ATR_KIND_PROVISIONER)
    return NULL;
  return h->desc->ops;
}

const char **atr_provisioner_types(const atr_loader_t *loader, size_t *n) {
  const char **types = calloc(loader->nplugins + 1, sizeof *types);
  *n = 0;
  for (size_t i = 0; types && i < loader->nplugins; i++) {
    const atr_provisioner_ops_t *ops = prov_ops(loader->plugins[i]);
    if (ops && ops->type)
      types[(*n)++] = ops->type;
  }
  return types;
}

atr_handle_t *atr_provisioner_find(const atr_loader_t *loader,
                                   const char *type) {
  for (size_t i = 0; i < loader->nplugins; i++) {
    const atr_provisioner_ops_t *ops = prov_ops(loader->plugins[i]);
    if (ops && ops->type && strcmp(ops->type, type) == 0)
      return loader->plugins[i];
  }
  return NULL;
}
