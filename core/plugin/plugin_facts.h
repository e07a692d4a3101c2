/* core/plugin/plugin_facts.h — what the CLI may know about a plugin, read
 * through functions so that commands never reach into the loader's
 * structs (atr_handle_t, atr_loader_t stay the loader's business).
 *
 * A plugin's facts are borrowed from its handle and its descriptor: they
 * stay valid while the loader that opened it lives, and until the next
 * reload for `values`. Nothing here allocates.
 *
 * Threads: main thread only, like the loader calls the CLI makes. */
#ifndef ATRIUM_CORE_PLUGIN_FACTS_H
#define ATRIUM_CORE_PLUGIN_FACTS_H

#include <stdbool.h>
#include <stddef.h>

#include "loader.h"

typedef struct atr_plugin_facts {
  const char *name;
  const char *file;          /* the shared object's path; "" when unknown */
  bool described;            /* the descriptor passed the checks */
  atr_plugin_kind_t kind_id; /* 0 unless described */
  const char *kind;          /* "storage", "auth", …; NULL unless described */
  const char *version;       /* NULL when the plugin gives none */
  const char *description;   /* NULL when the plugin gives none */
  unsigned abi_major, abi_minor;
  const atr_option_t *options; /* its option table; NULL when none */
  const atr_optset_t *values;  /* resolved options; unset until configured */
} atr_plugin_facts_t;

/* The facts of the plugin h. */
void atr_plugin_facts(const atr_handle_t *h, atr_plugin_facts_t *out);
/* The facts of the i-th plugin l holds, in load order; false past the
 * last one. */
bool atr_plugin_facts_at(const atr_loader_t *l, size_t i,
                         atr_plugin_facts_t *out);
/* The i-th plugin directory of l (realpath'd), or NULL past the last. */
const char *atr_plugin_dir_at(const atr_loader_t *l, size_t i);

#endif
