/* core/agent/agent_metadata.h — metadata values (agent_metadata.c): the
 * part tests reach without a loop.
 *
 * Threads: pure.
 */
#ifndef ATRIUM_AGENT_METADATA_H
#define ATRIUM_AGENT_METADATA_H

#include <stddef.h>

#define AGENT_METADATA_MAX 2048

/* Append a line of output to a value of at most AGENT_METADATA_MAX bytes
 * (buf holds one more, for the NUL), lines joined by "\n"; the rest is
 * cut. */
void agent_metadata_append(char *buf, size_t *len, const char *line, size_t n);

#endif
