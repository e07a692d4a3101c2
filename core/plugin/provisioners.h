/* core/plugin/provisioners.h — the running provisioner plugins by type.
 *
 * The domain checks a template's provisioner type at import, the daemons
 * and the health report list the types, and job runs find the plugin of a
 * job's type: all from the loader, so it lives with the loader.
 *
 * Threads: any, once the plugins are started (the loader's plugin list
 * does not change while the server runs).
 */
#ifndef ATRIUM_CORE_PROVISIONERS_H
#define ATRIUM_CORE_PROVISIONERS_H

#include <stddef.h>

#include "loader.h"

/* The types the running provisioner plugins provide, NULL-terminated
 * (borrowed from the plugins); *n gets the count. Caller frees the array. */
const char **atr_provisioner_types(const atr_loader_t *loader, size_t *n);
/* The running provisioner plugin of a type, or NULL. */
atr_handle_t *atr_provisioner_find(const atr_loader_t *loader,
                                   const char *type);

#endif
