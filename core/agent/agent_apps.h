/* core/agent/agent_apps.h — app health (agent_apps.c): the pure parts.
 *
 * Threads: pure.
 */
#ifndef ATRIUM_AGENT_APPS_H
#define ATRIUM_AGENT_APPS_H

#include <stddef.h>

/* "http://host[:port][/path]" into host (without brackets), port (80 when
 * absent) and path ("/" when absent). 0, or ATR_EINVAL for anything else
 * (https is not checked: the agent speaks plain HTTP to the workspace). */
int agent_url_split(const char *url, char *host, size_t host_size, char *port,
                    size_t port_size, char *path, size_t path_size);

#endif
