/* core/uuid_text.h — the textual UUID form every layer accepts.
 * Threads: no shared state. */
#ifndef ATRIUM_CORE_UUID_TEXT_H
#define ATRIUM_CORE_UUID_TEXT_H

#include <stdbool.h>

/* True when s is 36 characters of the 8-4-4-4-12 hex-and-dash form;
 * NULL is false. One check for the store (PostgreSQL refuses non-UUID
 * text in a UUID column) and the agent (ids from the wire). */
bool atr_uuid_valid(const char *s);

#endif
