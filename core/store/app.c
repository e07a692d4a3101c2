/* core/app.c — config loading shared by every subcommand. */
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
#include "log.h"
#include "migrate.h"
#include "strv.h"

extern const char atr_default_config[];

#define ATR_CORE_FIELD(f) offsetof(atr_core_config_t, f)

static const char *const log_levels[] = {"error", "warn", "info", "debug",
                                         NULL};
static const char *const log_formats[] = {"auto", "text", "json", NULL};

const atr_option_t atr_core_options[] = {
    {ATR_OPT_STRING, "http.address", "127.0.0.1:3000", 0,
     ATR_CORE_FIELD(http_address),
     "Address and port the API and dashboard listen on: HOST:PORT, "
     "[IPv6]:PORT, or several separated by commas.",
     NULL, 0, 0},
    {ATR_OPT_INT, "http.threads", "16", 0, ATR_CORE_FIELD(http_threads),
     "HTTP worker threads; each serves one connection at a time.", NULL, 1,
     1024},
    {ATR_OPT_DURATION, "http.request_timeout", "30s", 0,
     ATR_CORE_FIELD(http_request_timeout_ms),
     "How long a client may take to send a request before it is dropped.", NULL,
     1000, 3600000},
    {ATR_OPT_SIZE, "http.max_body_size", "16MiB", 0,
     ATR_CORE_FIELD(http_max_body_size),
     "Largest request body accepted; larger ones get 413.", NULL, 1024,
     1099511627776.0},
    {ATR_OPT_SIZE, "http.max_header_size", "8KiB", 0,
     ATR_CORE_FIELD(http_max_header_size),
     "Largest request line plus headers accepted; larger ones get 431 "
     "(past 16KiB civetweb itself answers 400 before atrium sees them).",
     NULL, 1024, 16384},
    {ATR_OPT_SIZE, "files.max_size", "10MiB", 0, ATR_CORE_FIELD(file_max_size),
     "Largest file (template archive) that POST /api/v2/files accepts; it "
     "must also fit in http.max_body_size.",
     NULL, 1024, 1073741824.0},
    {ATR_OPT_SIZE, "files.max_unpacked_size", "256MiB", 0,
     ATR_CORE_FIELD(file_max_unpacked),
     "What an uploaded archive may unpack to, all files together.", NULL, 1024,
     68719476736.0},
    {ATR_OPT_INT, "files.max_entries", "10000", 0,
     ATR_CORE_FIELD(file_max_entries),
     "How many entries (files, directories, links) an archive may hold.", NULL,
     1, 1000000},
    {ATR_OPT_STRING, "access_url", "", 0, ATR_CORE_FIELD(access_url),
     "The URL people and workspaces reach this deployment at "
     "(https://atrium.example.com), as Coder's access URL. Empty means "
     "http:// and the first http.address. The health report checks that "
     "<access_url>/healthz answers.",
     NULL, 0, 0},
    {ATR_OPT_STRING, "data_dir", "./atrium-data", 0, ATR_CORE_FIELD(data_dir),
     "Directory for local state (the SQLite database, job working "
     "directories); created with mode 0700 if missing.",
     NULL, 0, 0},
    {ATR_OPT_LIST, "plugin_dirs", "", 0, ATR_CORE_FIELD(plugin_dirs),
     "Directories plugins are loaded from; empty means "
     "<dir of the atrium binary>/../lib/atrium/plugins.",
     NULL, 0, 0},
    {ATR_OPT_ENUM, "log.level", "info", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(log_level), "Least severe log level written.", log_levels,
     0, 0},
    {ATR_OPT_ENUM, "log.format", "auto", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(log_format),
     "text: one readable line per message; json: one JSON object per line "
     "({time, level, component, msg}) for log collectors; auto: text on a "
     "terminal, json otherwise.",
     log_formats, 0, 0},
    {ATR_OPT_DURATION, "session.lifetime", "24h", 0,
     ATR_CORE_FIELD(session_lifetime_ms),
     "How long a sign-in session lasts without use; each use extends it.", NULL,
     60000, 2592000000.0},
    {ATR_OPT_DURATION, "session.max_token_lifetime", "720h", 0,
     ATR_CORE_FIELD(token_max_lifetime_ms),
     "The longest lifetime a long-lived API token may ask for.", NULL, 60000,
     31622400000.0},
    {ATR_OPT_INT, "http.rate_limit.login", "10", 0, ATR_CORE_FIELD(login_rate),
     "Sign-in attempts allowed per minute from one IP address, and "
     "separately for one account; more get 429 with Retry-After. 0 turns "
     "the limit off.",
     NULL, 0, 100000},
    {ATR_OPT_INT, "http.rate_limit.api", "600", 0, ATR_CORE_FIELD(api_rate),
     "API requests allowed per minute for one signed-in user; 0 turns the "
     "limit off.",
     NULL, 0, 10000000},
    {ATR_OPT_BOOL, "http.secure_cookies", "false", 0,
     ATR_CORE_FIELD(secure_cookies),
     "Mark session cookies Secure (set when atrium is served over HTTPS, "
     "e.g. behind a TLS-terminating proxy).",
     NULL, 0, 0},
    {ATR_OPT_INT, "provisioner.daemons", "3", 0, ATR_CORE_FIELD(prov_daemons),
     "Built-in provisioner daemons: how many jobs (template imports and "
     "workspace builds) this server runs at once. 0 runs none (external "
     "daemons only).",
     NULL, 0, 256},
    {ATR_OPT_LIST, "provisioner.tags", "", 0, ATR_CORE_FIELD(prov_tags),
     "Tags the built-in daemons hold, as KEY=VALUE items; they take only "
     "jobs whose tags (from the template version) they all hold. A job "
     "without tags fits any daemon.",
     NULL, 0, 0},
    {ATR_OPT_DURATION, "provisioner.poll_interval", "1s", 0,
     ATR_CORE_FIELD(prov_poll_ms),
     "How often an idle daemon looks for jobs without being told of one. "
     "New jobs are announced and start at once; this only catches "
     "announcements that were missed.",
     NULL, 50, 600000},
    {ATR_OPT_DURATION, "provisioner.heartbeat_interval", "10s", 0,
     ATR_CORE_FIELD(prov_heartbeat_ms),
     "How often a running job tells the database it is alive.", NULL, 50,
     600000},
    {ATR_OPT_DURATION, "provisioner.heartbeat_timeout", "5m", 0,
     ATR_CORE_FIELD(prov_hung_ms),
     "The reaper fails a running job that has not sent a heartbeat for "
     "this long (its daemon died); the workspace keeps the previous "
     "build's state.",
     NULL, 100, 86400000},
    {ATR_OPT_DURATION, "provisioner.pending_timeout", "30m", 0,
     ATR_CORE_FIELD(prov_pending_ms),
     "The reaper fails a job that no daemon has claimed for this long.", NULL,
     100, 604800000},
    {ATR_OPT_DURATION, "provisioner.reaper_interval", "30s", 0,
     ATR_CORE_FIELD(prov_reaper_ms), "How often the reaper looks for jobs.",
     NULL, 50, 3600000},
    {ATR_OPT_SIZE, "provisioner.max_log_size", "1MiB", 0,
     ATR_CORE_FIELD(prov_max_log),
     "Log output kept per job; past it, one line says the log was cut and "
     "the rest is dropped (the job shows logs_overflowed).",
     NULL, 4096, 1048576},
    {ATR_OPT_STRING, "provisioner.run_as", "atrium-build", 0,
     ATR_CORE_FIELD(prov_run_as),
     "The user builds run as when the server runs as root: their working "
     "directories are that user's and the processes a provisioner starts "
     "drop to it. Empty: builds run as the server's user. A server that is "
     "not root runs them as its own user. See docs/security.md.",
     NULL, 0, 0},
    {ATR_OPT_LIST, "policy.files", "config/policies/*.lua", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(policy_files),
     "Deployment policies (Lua): glob patterns, each pattern's files in "
     "name order; they run before a template's own policy. Reloaded on "
     "SIGHUP; when a file fails to load, the previous policies stay. See "
     "docs/policies.md.",
     NULL, 0, 0},
    {ATR_OPT_INT, "policy.instruction_limit", "1000000", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(policy_instructions),
     "Lua instructions one policy may run per evaluation; past it the "
     "policy denies.",
     NULL, 1000, 1000000000},
    {ATR_OPT_DURATION, "policy.time_limit", "100ms", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(policy_time_ms),
     "Wall-clock time one policy may take per evaluation; past it the "
     "policy denies.",
     NULL, 1, 60000},
    {ATR_OPT_SIZE, "policy.memory_limit", "8MiB", ATR_OPT_RELOADABLE,
     ATR_CORE_FIELD(policy_memory),
     "Memory one policy evaluation may hold; past it the policy denies.", NULL,
     65536, 1073741824.0},
    {ATR_OPT_DURATION, "shutdown_grace", "4s", 0,
     ATR_CORE_FIELD(shutdown_grace_ms),
     "On SIGTERM, how long in-flight requests may take to finish before the "
     "server exits anyway (with status 1).",
     NULL, 0, 600000},
    {0},
};

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
  if (rc != 0 || h->desc->kind != ATR_KIND_STORAGE)
    return rc;
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
  return migrate ? atr_migrate_up(&app->store, atr_migrations, atr_nmigrations,
                                  NULL, err)
                 : 0;
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
  atr_optset_free(&app->core_opts);
  atr_conf_free(app->root);
  atr_overrides_free(&app->flags);
  free(app->config_path);
  memset(app, 0, sizeof *app);
}
