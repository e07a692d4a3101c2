/* core/plugin/plugin_facts.c — a plugin's facts for the CLI (see
 * plugin_facts.h). */
#include "plugin_facts.h"

#include <string.h>

void atr_plugin_facts(const atr_handle_t *h, atr_plugin_facts_t *out) {
  memset(out, 0, sizeof *out);
  out->name = h->name;
  out->file = h->file ? h->file : "";
  out->values = &h->opts;
  const atr_plugin_t *d = h->desc;
  if (!d)
    return;
  out->described = true;
  out->kind_id = d->kind;
  out->kind = atr_plugin_kind_name(d->kind);
  out->version = d->version;
  out->description = d->description;
  out->abi_major = d->abi_major;
  out->abi_minor = d->abi_minor;
  out->options = atr_plugin_options(h); /* read with the plugin's stride */
}

bool atr_plugin_facts_at(const atr_loader_t *l, size_t i,
                         atr_plugin_facts_t *out) {
  if (i >= l->nplugins)
    return false;
  atr_plugin_facts(l->plugins[i], out);
  return true;
}

const char *atr_plugin_dir_at(const atr_loader_t *l, size_t i) {
  return i < l->ndirs ? l->dirs[i] : NULL;
}
