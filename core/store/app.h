/* core/store/app.h — the configuration every subcommand starts from.
 *
 * atr_app_load() reads the config (the file given with --config, else
 * config/atrium.yaml if it exists in the working directory, else the copy
 * embedded in the binary), merges conf.d/, and resolves the core's own
 * option table with environment variables and --flags applied.
 * atr_app_load_plugins() then opens and configures (and optionally starts)
 * every plugin the config enables.
 *
 * Threads: main thread only, except atr_app_config_json and
 * atr_app_access_url.
 */
#ifndef ATRIUM_CORE_APP_H
#define ATRIUM_CORE_APP_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf.h"
#include "core_options.h"
#include "db.h"
#include "loader.h"
#include "options.h"

typedef struct atr_app {
  char *config_path; /* the main file read, or NULL for the embedded one */
  atr_conf_node_t *root;
  atr_overrides_t flags;
  atr_getenv_fn env;
  atr_optset_t core_opts;
  atr_core_config_t core;
  atr_loader_t loader;
  bool loader_ready;
  atr_store_t store; /* set by atr_app_open_store */
  bool has_store;
} atr_app_t;

/* `flags` is taken over by the app (freed in atr_app_free). */
int atr_app_load(atr_app_t *app, const char *config_path,
                 atr_overrides_t *flags, atr_getenv_fn env, char **err);
/* Open and configure every enabled plugin; start them when `start`.
 * `extra_dirs` (may be NULL) are searched before plugin_dirs. */
int atr_app_load_plugins(atr_app_t *app, bool start,
                         const char *const *extra_dirs, char **err);
/* Load and start only the storage plugin(s) the config enables (the other
 * enabled plugins are opened and checked, not started): what `atrium db`
 * needs. */
int atr_app_load_storage(atr_app_t *app, char **err);
/* Find the one running storage plugin and, when `migrate`, migrate the
 * schema and set up database encryption; fills app->store. */
int atr_app_open_store(atr_app_t *app, bool migrate, char **err);
/* Load the database encryption keys and check them against the database
 * (dbcrypt.h); atr_app_open_store does it after migrating. */
int atr_app_open_crypt(atr_app_t *app, char **err);
/* plugins.<name>.enabled parsed as a bool (false when absent or bad), and
 * plugins.<name>.file (NULL when absent). */
bool atr_app_plugin_enabled(const atr_app_t *app, const char *name);
const char *atr_app_plugin_file(const atr_app_t *app, const char *name);

/* After both loads: a flag no option took is an error naming it. */
int atr_app_check_flags(const atr_app_t *app, char **err);
/* SIGHUP: re-read the config files and apply reloadable options. Logs what
 * changed; on a config error logs it and keeps the running values. */
int atr_app_reload(atr_app_t *app);
void atr_app_free(atr_app_t *app);

/* The effective configuration as a new JSON object, every secret
 * redacted: {"config_file", "core": {option: {value, source}},
 * "plugins": {name: {enabled, file, options}}}. Any thread while the
 * server runs (a reload's swaps are locked out). */
json_t *atr_app_config_json(const atr_app_t *app);
/* access_url without trailing slashes, or, when it is empty,
 * "http://HOST:PORT" from the first http.address (a wildcard host as the
 * loopback address). malloc'd; NULL when out of memory. */
char *atr_app_access_url(const atr_app_t *app);

/* Set up app->loader on the plugin directories in effect: extra_dirs
 * (may be NULL), then plugin_dirs, or <dir of the binary>/../lib/atrium/
 * plugins when plugin_dirs is empty. Opens no plugin. */
int atr_app_open_loader(atr_app_t *app, const char *const *extra_dirs,
                        char **err);

#endif
