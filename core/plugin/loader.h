/* core/plugin/loader.h — finding, checking, configuring and starting plugins.
 *
 * Loading a plugin goes through these steps, and refuses with one line that
 * says why (the messages below are exact; tests assert them) before any
 * plugin code past the entry symbol runs:
 *
 *  1. the file is inside one of the plugin directories
 *     "plugin <name>: <file> is outside the plugin directories (<d1>, <d2>)"
 *  2. the file is a regular file that only root or the server's user can
 *     change: neither it nor any directory above it (resolved) is owned by
 *     anyone else or writable by group or others; above the plugin
 *     directory, a world-writable directory with the sticky bit (/tmp) is
 *     accepted
 *     "plugin <name>: <file> is not a regular file"
 *     "plugin <name>: <file> is group- or world-writable (mode 0664); run chmod go-w <file>"
 *     "plugin <name>: <file> is owned by uid 999 (atrium-build), not by root or the server's user (uid 0 (root)); run chown root <file>"
 *     "plugin <name>: the plugin directory <dir> is group- or world-writable (mode 0777); run chmod go-w <dir>"
 *     "plugin <name>: the directory <dir> is owned by uid 999 (atrium-build), not by root or the server's user (uid 0 (root)); run chown root <dir>"
 *  3. dlopen(RTLD_NOW|RTLD_LOCAL) works
 *     "plugin <name>: cannot load <file>: <dlerror>"
 *  4. the entry symbol exists and returns a descriptor
 *     "plugin <name>: <file> has no atrium_plugin_entry symbol; is it an atrium plugin?"
 *  5. ABI major equal
 *     "plugin <name>: ABI major version 2 does not match the host's 1; rebuild the plugin against this SDK"
 *  6. ABI minor not newer, and not older than the first stable layout (1.1)
 *     "plugin <name>: ABI minor version 5 is newer than the host's 1; upgrade atrium or build against an older SDK"
 *     "plugin <name>: ABI version 1.0 predates 1.1, the first stable layout; rebuild the plugin against this SDK"
 *  7. struct sizes large enough
 *     "plugin <name>: descriptor struct_size 40 is smaller than 88 required for ABI 1.1"
 *     "plugin <name>: provisioner ops struct_size 8 is smaller than 40 required for ABI 1.1"
 *     "plugin <name>: option_size 16 is smaller than 80 required for ABI 1.1"
 *     (and a descriptor's name must match the configured name, kind known)
 *  8. name unique
 *     "plugin <name>: a plugin with this name is already loaded from <file>"
 *  9. options valid (messages from options.h)
 * 10. init() succeeds, else everything it registered is removed:
 *     "plugin <name>: init failed: <its message or atr_strerror(rc)>"
 *
 * Threads: main thread only, except atr_loader_each(), atr_loader_health()
 * and the *_json functions.
 */
#ifndef ATRIUM_CORE_LOADER_H
#define ATRIUM_CORE_LOADER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "atrium/plugin.h"
#include "conf.h"
#include "options.h"

typedef enum atr_plugin_state {
  ATR_PLUGIN_LOADED = 1,  /* descriptor checked, options resolved */
  ATR_PLUGIN_RUNNING = 2, /* init() succeeded */
  ATR_PLUGIN_FAILED = 3,  /* refused or init() failed; see error */
  ATR_PLUGIN_STOPPED = 4, /* fini() called */
} atr_plugin_state_t;

/* The host's view of one plugin; atr_handle_t in the SDK. */
struct atr_handle {
  char *name;
  char *file;
  void *dl;
  const atr_plugin_t *desc;
  /* desc's options in the host's layout: desc->options itself, or
   * options_copy when the plugin's option_size differs from the host's. */
  const atr_option_t *options;
  atr_option_t *options_copy;
  void *ctx;
  atr_optset_t opts;
  atr_optset_t *old_opts; /* replaced by reloads; kept alive until fini */
  size_t nold_opts;
  atr_plugin_state_t state;
  char *error;
  struct atr_loader *loader; /* the loader that opened it */
};

typedef struct atr_loader {
  char **dirs; /* realpath'd plugin directories */
  size_t ndirs;
  atr_handle_t **plugins;
  size_t nplugins;
} atr_loader_t;

/* dirs are resolved with realpath; a directory that does not exist is
 * skipped with a warning in the log. */
int atr_loader_init(atr_loader_t *l, const char *const *dirs, size_t ndirs,
                    char **err);

/* Steps 1–8. `file` may be NULL: then <dir>/<name>.so is looked for in the
 * directories in order ("plugin <name>: no <name>.so in the plugin
 * directories (<d1>, <d2>)"). On success the handle is added to the loader.
 */
int atr_loader_open(atr_loader_t *l, const char *name, const char *file,
                    atr_handle_t **out, char **err);

/* Step 9: resolve the plugin's options against plugins.<name> in root. */
int atr_loader_configure(atr_handle_t *h, const atr_conf_node_t *root,
                         atr_overrides_t *flags, atr_getenv_fn env, char **err);

/* Step 10: fill ctx and call init(); undo registrations on failure. */
int atr_loader_start(atr_handle_t *h, char **err);

/* Every plugin the config enables (plugins.<name>.enabled: true, file from
 * plugins.<name>.file if set), steps 1–10, in config order; with `start`
 * false only steps 1–9 (checks the config without running plugin code).
 * Stops at the first error. */
int atr_loader_load_config(atr_loader_t *l, const atr_conf_node_t *root,
                           atr_overrides_t *flags, atr_getenv_fn env,
                           bool start, char **err);

/* Re-resolve every plugin's options; apply reloadable changes (and call the
 * plugin's reload()), log each change, warn about changes that need a
 * restart. Returns the number of options applied. */
int atr_loader_reload(atr_loader_t *l, const atr_conf_node_t *root,
                      atr_getenv_fn env);

atr_handle_t *atr_loader_find(const atr_loader_t *l, const char *name);

/* Visit every plugin of `l` in load order (host->plugins_each). Unlike the
 * rest of this file, callable from any thread: the list and each plugin's
 * state are read under the loader's plugins_lock, which the main thread
 * takes to grow the list, change a state or free the list. */
void atr_loader_each(const atr_loader_t *l, atr_plugin_visit_fn visit,
                     void *user_data);
/* The plugin's own health callback (atr_plugin_t.health), for the health
 * report: ATR_HEALTH_* with *message malloc'd or NULL, or ATR_ENOTSUP
 * when the plugin is not running or has none (a descriptor built before
 * the field existed never has one). Any thread, while serving. */
int atr_loader_health(const atr_handle_t *h, char **message);
/* Every plugin as a new JSON array of {name, kind, version, description,
 * state, file, error, health_check}; any thread. */
json_t *atr_loader_plugins_json(const atr_loader_t *l);
/* Every plugin's effective options as a new JSON object: name →
 * {enabled, file, options: atr_optset_to_json (secrets redacted)}; any
 * thread (reads under the locks a reload takes). */
json_t *atr_loader_options_json(const atr_loader_t *l);
const char *atr_plugin_kind_name(atr_plugin_kind_t kind);
/* The plugin's option table in the host's layout, {0}-terminated (never
 * NULL): what `plugins describe` and the docs should print, rather than
 * desc->options, whose stride may be the plugin's. */
const atr_option_t *atr_plugin_options(const atr_handle_t *h);
const char *atr_plugin_state_name(atr_plugin_state_t state);

/* fini() every running plugin in reverse order, then free; dlclose is never
 * called (code is not unloaded). */
void atr_loader_shutdown(atr_loader_t *l);

/* The host table handed to plugins (core/host.c). */
const atr_host_t *atr_host_table(void);
/* What host->data_dir returns (an absolute path); set before plugins start.
 * NULL frees it (at exit). */
void atr_host_set_data_dir(const char *path);

#endif
