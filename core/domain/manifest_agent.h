/* core/domain/manifest_agent.h — template.yaml's `agent:` section, checked
 * and turned into the agent spec JSON that template_versions.agent_spec
 * keeps (docs/templates.md, "The workspace agent"; the format is in
 * docs/design/agent.md §4.1 with durations as whole seconds, *_s).
 *
 * Internal to manifest.c and manifest_agent.c: atr_manifest_parse calls
 * atr__manifest_agent for the `agent:` node. Threads: no shared state.
 * Memory: *spec_out is malloc'd compact JSON text the manifest owns. */
#ifndef ATRIUM_CORE_MANIFEST_AGENT_H
#define ATRIUM_CORE_MANIFEST_AGENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "conf.h"

/* Append {"field", "detail": "<file:line:col>: <message>"} to errors. */
void atr__manifest_error(json_t *errors, const atr_conf_node_t *at,
                         const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Whether s has 1 to max characters, each of a-z, 0-9 or in extra. */
bool atr__manifest_chars_ok(const char *s, size_t max, const char *extra);

/* Check the `agent:` node; every problem goes to errors. *spec_out gets
 * the spec as JSON text when the section is valid, else stays NULL. */
void atr__manifest_agent(json_t *errors, const atr_conf_node_t *n,
                         char **spec_out);

#endif
