/* core/store/app.c — config loading shared by every subcommand. */
#include "app.h"

#include <errno.h>
#include <libgen.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/error.h"
#include "dbcrypt.h"
#include "log.h"
#include "migrate.h"
#include "plugin_facts.h"
#include "strv.h"

extern const char atr_default_config[];

static const char *const core_skip_maps[] = {"plugins", NULL};

/* Orders reads of the core's option values from HTTP threads
 * (atr_app_config_json) against the swaps of a reload. */
static pthread_rwlock_t core_opts_lock = PTHREAD_RWLOCK_INITIALIZER;

static const char *default_config_path(void) {
  static const char *const candidate = "config/atrium.yaml";
  return access(candidate, R_OK) == 0 ? candidate : NULL;
}

static int resolve_core(atr_app_t *app, atr_conf_node_t *root,
                        atr_optset_t *set, char **err) {
  int rc = atr_optset_resolve(set, atr_core_options, "", root, NULL,
                              core_skip_maps, &app->flags, app->env, err);
  if (rc != 0)
    atr_optset_free(set);
  return rc;
}

static void apply_log_level(const atr_core_config_t *core) {
  atr_log_level_t level;
  if (atr_log_level_parse(core->log_level, &level) == 0)
    atr_log_set_level(level);
  atr_log_format_t format;
  if (atr_log_format_parse(core->log_format, &format) == 0)
    atr_log_set_format(format);
}

int atr_app_load(atr_app_t *app, const char *config_path,
                 atr_overrides_t *flags, atr_getenv_fn env, char **err) {
  memset(app, 0, sizeof *app);
  if (flags) {
    app->flags = *flags;
    memset(flags, 0, sizeof *flags);
  }
  app->env = env;
  const char *path = config_path ? config_path : default_config_path();
  int rc = atr_conf_load(path, "<embedded>/atrium.yaml", atr_default_config,
                         &app->root, err);
  if (rc != 0)
    return rc;
  app->config_path = path ? strdup(path) : NULL;
  rc = resolve_core(app, app->root, &app->core_opts, err);
  if (rc != 0)
    return rc;
  atr_optset_fill(&app->core_opts, &app->core);
  apply_log_level(&app->core);
  return 0;
}

static char *exe_relative_plugin_dir(void) {
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    return strdup(ATR_PLUGIN_INSTALL_DIR);
  exe[n] = '\0';
  char *dir = dirname(exe);
  char *out = NULL;
  if (asprintf(&out, "%s/../lib/atrium/plugins", dir) < 0)
    return NULL;
  return out;
}

/* extra, then plugin_dirs, or the directory next to the binary when
 * plugin_dirs is empty. */
static int plugin_dirs(const atr_app_t *app, const char *const *extra,
                       atr_strv_t *dirs) {
  int rc = 0;
  for (const char *const *p = extra; rc == 0 && p && *p; p++)
    rc = atr_strv_take(dirs, strdup(*p));
  for (const char *const *p = app->core.plugin_dirs; rc == 0 && p && *p; p++)
    rc = atr_strv_take(dirs, strdup(*p));
  if (rc == 0 && (!app->core.plugin_dirs || !app->core.plugin_dirs[0]))
    rc = atr_strv_take(dirs, exe_relative_plugin_dir());
  return rc;
}

int atr_app_open_loader(atr_app_t *app, const char *const *extra_dirs,
                        char **err) {
  atr_strv_t dirs = {0};
  int rc = plugin_dirs(app, extra_dirs, &dirs);
  if (rc != 0)
    *err = strdup("out of memory");
  else
    rc =
        atr_loader_init(&app->loader, (const char *const *)dirs.v, dirs.n, err);
  atr_strv_clear(&dirs);
  if (rc == 0)
    app->loader_ready = true;
  return rc;
}

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *path, char **err) {
  char *copy = strdup(path);
  if (!copy)
    return ATR_ENOMEM;
  for (char *p = copy + 1;; p++) {
    char saved = *p;
    if (saved != '/' && saved != '\0')
      continue;
    *p = '\0';
    if (mkdir(copy, 0700) != 0 && errno != EEXIST) {
      if (asprintf(err, "data_dir: cannot create %s: %s", copy,
                   strerror(errno)) < 0)
        *err = NULL;
      free(copy);
      return ATR_EIO;
    }
    *p = saved;
    if (saved == '\0')
      break;
  }
  free(copy);
  return 0;
}

/* Plugins get data_dir as an absolute path, immune to a later chdir. */
static int prepare_data_dir(atr_app_t *app, char **err) {
  int rc = make_dirs(app->core.data_dir, err);
  if (rc != 0)
    return rc;
  char *abs = realpath(app->core.data_dir, NULL);
  atr_host_set_data_dir(abs ? abs : app->core.data_dir);
  free(abs);
  return 0;
}

int atr_app_load_plugins(atr_app_t *app, bool start,
                         const char *const *extra_dirs, char **err) {
  int rc = atr_app_open_loader(app, extra_dirs, err);
  if (rc == 0)
    rc = prepare_data_dir(app, err);
  if (rc != 0)
    return rc;
  return atr_loader_load_config(&app->loader, app->root, &app->flags, app->env,
                                start, err);
}

bool atr_app_plugin_enabled(const atr_app_t *app, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "plugins.%s.enabled", name);
  const atr_conf_node_t *n = atr_conf_get(app->root, path);
  bool on = false;
  return n && n->type == ATR_CONF_SCALAR && atr_parse_bool(n->value, &on) == 0
             ? on
             : false;
}

const char *atr_app_plugin_file(const atr_app_t *app, const char *name) {
  char path[512];
  snprintf(path, sizeof path, "plugins.%s.file", name);
  const atr_conf_node_t *n = atr_conf_get(app->root, path);
  return n && n->type == ATR_CONF_SCALAR && !n->is_null ? n->value : NULL;
}

/* Open one enabled plugin; configure and start it when it is storage. */
static int load_if_storage(atr_app_t *app, const char *name, char **err) {
  atr_handle_t *h = NULL;
  int rc = atr_loader_open(&app->loader, name, atr_app_plugin_file(app, name),
                           &h, err);
  if (rc != 0)
    return rc;
  atr_plugin_facts_t f;
  atr_plugin_facts(h, &f);
  if (f.kind_id != ATR_KIND_STORAGE)
    return 0;
  rc = atr_loader_configure(h, app->root, &app->flags, app->env, err);
  return rc == 0 ? atr_loader_start(h, err) : rc;
}

int atr_app_load_storage(atr_app_t *app, char **err) {
  int rc = atr_app_open_loader(app, NULL, err);
  if (rc == 0)
    rc = prepare_data_dir(app, err);
  const atr_conf_node_t *p = atr_conf_get(app->root, "plugins");
  for (size_t i = 0;
       rc == 0 && p && p->type == ATR_CONF_MAP && i < p->nchildren; i++) {
    const char *name = p->children[i]->key;
    if (atr_app_plugin_enabled(app, name))
      rc = load_if_storage(app, name, err);
  }
  return rc;
}

int atr_app_open_store(atr_app_t *app, bool migrate, char **err) {
  int rc = atr_store_find(&app->loader, &app->store, err);
  if (rc != 0)
    return rc;
  app->has_store = true;
  if (!migrate)
    return 0;
  rc = atr_migrate_up(&app->store, atr_migrations, atr_nmigrations, NULL, err);
  return rc == 0 ? atr_app_open_crypt(app, err) : rc;
}

int atr_app_open_crypt(atr_app_t *app, char **err) {
  return atr_dbcrypt_setup(&app->store, app->core.db_encryption_keys,
                           app->core.db_encryption_key_file, err);
}

int atr_app_check_flags(const atr_app_t *app, char **err) {
  const char *unused = atr_overrides_first_unused(&app->flags);
  if (!unused)
    return 0;
  if (asprintf(err,
               "flag --%s: unknown option; see `atrium plugins describe` and "
               "docs/configuration.md for the valid ones",
               unused) < 0)
    *err = NULL;
  return ATR_ECONFIG;
}

static void log_core_change(void *ud, const atr_optval_t *old_val,
                            const atr_optval_t *new_val) {
  int *applied = ud;
  if (new_val->opt->flags & ATR_OPT_RELOADABLE) {
    atr_log(ATR_LOG_INFO, "config", "option %s changed from %s to %s",
            new_val->opt->name, atr_optval_display(old_val),
            atr_optval_display(new_val));
    (*applied)++;
  } else {
    atr_log(ATR_LOG_WARN, "config",
            "option %s changed in the config but needs a restart to apply",
            new_val->opt->name);
  }
}

/* Adopt the new values of reloadable core options only. */
static void adopt_reloadable(atr_optset_t *cur, atr_optset_t *next) {
  for (size_t i = 0; i < cur->n; i++) {
    if (!(cur->vals[i].opt->flags & ATR_OPT_RELOADABLE))
      continue;
    atr_optval_t tmp = cur->vals[i];
    cur->vals[i] = next->vals[i];
    next->vals[i] = tmp;
  }
}

int atr_app_reload(atr_app_t *app) {
  char *err = NULL;
  atr_conf_node_t *root = NULL;
  int rc = atr_conf_load(app->config_path, "<embedded>/atrium.yaml",
                         atr_default_config, &root, &err);
  atr_optset_t next = {0};
  if (rc == 0)
    rc = resolve_core(app, root, &next, &err);
  if (rc != 0) {
    atr_log(ATR_LOG_ERROR, "config",
            "reload failed, keeping the running configuration: %s",
            err ? err : atr_strerror(rc));
    free(err);
    atr_conf_free(root);
    return rc;
  }
  int applied = 0;
  atr_optset_diff(&app->core_opts, &next, log_core_change, &applied);
  /* The core's reloadable options are scalars read on the main thread, so
   * swapping values in place is safe for them; strings of the old set die
   * with `next`, which only holds the replaced values now. HTTP threads
   * read the set itself (atr_app_config_json), hence the lock. */
  pthread_rwlock_wrlock(&core_opts_lock);
  adopt_reloadable(&app->core_opts, &next);
  atr_optset_free(&next);
  pthread_rwlock_unlock(&core_opts_lock);
  atr_optset_fill(&app->core_opts, &app->core);
  apply_log_level(&app->core);
  if (app->loader_ready)
    applied += atr_loader_reload(&app->loader, root, app->env);
  atr_conf_free(app->root);
  app->root = root;
  atr_log(ATR_LOG_INFO, "config", "reloaded %s: %d option%s applied",
          app->config_path ? app->config_path : "the embedded configuration",
          applied, applied == 1 ? "" : "s");
  return 0;
}

json_t *atr_app_config_json(const atr_app_t *app) {
  pthread_rwlock_rdlock(&core_opts_lock);
  json_t *core = atr_optset_to_json(&app->core_opts);
  pthread_rwlock_unlock(&core_opts_lock);
  json_t *plugins =
      app->loader_ready ? atr_loader_options_json(&app->loader) : json_object();
  return json_pack("{s:s, s:o, s:o}", "config_file",
                   app->config_path ? app->config_path : "<embedded>", "core",
                   core, "plugins", plugins);
}

char *atr_app_access_url(const atr_app_t *app) {
  const char *url = app->core.access_url;
  if (url && *url) {
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
      n--;
    return strndup(url, n);
  }
  /* The first http.address, up to its port's colon (the last one, so
   * "[::1]:3000" works); a wildcard host is reached on the loopback. */
  const char *addr = app->core.http_address ? app->core.http_address : "";
  addr += strspn(addr, " ");
  int n = (int)strcspn(addr, ", ");
  int host_len = n;
  for (int i = 0; i < n; i++)
    if (addr[i] == ':')
      host_len = i;
  const char *port = addr + host_len; /* ":3000", or "" */
  int port_len = n - host_len;
  const char *host = addr;
  if (host_len == 0 || (host_len == 7 && strncmp(addr, "0.0.0.0", 7) == 0)) {
    host = "127.0.0.1";
    host_len = 9;
  } else if (host_len == 4 && strncmp(addr, "[::]", 4) == 0) {
    host = "[::1]";
    host_len = 5;
  }
  char *out = NULL;
  if (asprintf(&out, "http://%.*s%.*s", host_len, host, port_len, port) < 0)
    return NULL;
  return out;
}

void atr_app_free(atr_app_t *app) {
  if (app->loader_ready)
    atr_loader_shutdown(&app->loader);
  atr_host_set_data_dir(NULL);
  atr_dbcrypt_free(app->store.crypt);
  atr_optset_free(&app->core_opts);
  atr_conf_free(app->root);
  atr_overrides_free(&app->flags);
  free(app->config_path);
  memset(app, 0, sizeof *app);
}
