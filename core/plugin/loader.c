/* core/plugin/loader.c — finding, checking, configuring and starting
 * plugins.
 *
 * Implements the ten steps of loader.h; the refusals of steps 1 to 7 are in
 * loader_checks.c. Everything a plugin declares is checked before any
 * plugin code past the entry symbol runs, and every refusal is one line
 * that names the plugin, the file and what to do. A running observer is
 * added to observe.c's list when it starts and removed before its fini().
 *
 * Ownership: the loader owns its handles; a handle owns its name, file,
 * context and option sets. Option sets replaced by a reload are kept until
 * shutdown because plugin threads may still hold strings from them. Shared
 * objects are never dlclose'd once a plugin is accepted (code is not
 * unloaded); only a refused one is closed again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf */
#endif
#include "loader.h"
#include "loader_checks.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/auth.h"
#include "atrium/observer.h"
#include "atrium/provisioner.h"
#include "atrium/storage.h"
#include "log.h"
#include "metrics.h"
#include "observe.h"
#include "plugin_opts.h"
#include "routes.h"

/* Keys of plugins.<name> that belong to the loader, not the plugin. */
static const char *const reserved_keys[] = {"enabled", "file", NULL};

/* Orders option reads from plugin threads (host.c) against the value swaps
 * of a reload; see plugin_opts.h. */
static pthread_rwlock_t opts_lock = PTHREAD_RWLOCK_INITIALIZER;
/* Guards every loader's plugin list and each plugin's state against
 * atr_loader_each() on other threads; only the main thread writes them. */
static pthread_rwlock_t plugins_lock = PTHREAD_RWLOCK_INITIALIZER;

static void set_state(atr_handle_t *h, atr_plugin_state_t state) {
  pthread_rwlock_wrlock(&plugins_lock);
  h->state = state;
  pthread_rwlock_unlock(&plugins_lock);
}

static int add_dir(atr_loader_t *l, const char *dir) {
  char *real = realpath(dir, NULL);
  struct stat st;
  if (real == NULL || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
    atr_log(ATR_LOG_WARN, "loader", "plugin directory %s: %s; skipped", dir,
            real ? "not a directory" : strerror(errno));
    free(real);
    return 0;
  }
  for (size_t i = 0; i < l->ndirs; i++) {
    if (strcmp(l->dirs[i], real) == 0) {
      free(real);
      return 0;
    }
  }
  char **grown = realloc(l->dirs, (l->ndirs + 1) * sizeof(*grown));
  if (grown == NULL) {
    free(real);
    return ATR_ENOMEM;
  }
  l->dirs = grown;
  l->dirs[l->ndirs++] = real;
  return 0;
}

int atr_loader_init(atr_loader_t *l, const char *const *dirs, size_t ndirs,
                    char **err) {
  memset(l, 0, sizeof(*l));
  for (size_t i = 0; i < ndirs; i++) {
    if (dirs[i] != NULL && add_dir(l, dirs[i]) != 0) {
      atr_loader_shutdown(l);
      return FAIL(err, ATR_ENOMEM, "out of memory");
    }
  }
  return 0;
}

/* [a-z][a-z0-9_]*: the name becomes a config section and a file name, so a
 * dot or a slash in it would mean something else in either. */
static bool valid_name(const char *name) {
  if (name == NULL || !(name[0] >= 'a' && name[0] <= 'z'))
    return false;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
      return false;
  return true;
}

/* The file to load: the configured one, or the first <dir>/<name>.so. */
static int locate(const atr_loader_t *l, const char *name, const char *file,
                  char **path, char **err) {
  if (file != NULL) {
    *path = strdup(file);
    return *path ? 0 : FAIL(err, ATR_ENOMEM, "out of memory");
  }
  for (size_t i = 0; i < l->ndirs; i++) {
    if (asprintf(path, "%s/%s.so", l->dirs[i], name) < 0)
      return FAIL(err, ATR_ENOMEM, "out of memory");
    if (access(*path, F_OK) == 0)
      return 0;
    free(*path);
    *path = NULL;
  }
  char *dl = atr__loader_dirs_list(l);
  int rc = FAIL(err, ATR_ENOENT,
                "plugin %s: no %s.so in the plugin directories (%s)", name,
                name, dl ? dl : "?");
  free(dl);
  return rc;
}

atr_handle_t *atr_loader_find(const atr_loader_t *l, const char *name) {
  for (size_t i = 0; name != NULL && i < l->nplugins; i++)
    if (strcmp(l->plugins[i]->name, name) == 0)
      return l->plugins[i];
  return NULL;
}

static void handle_free(atr_handle_t *h) {
  if (h == NULL)
    return;
  if (h->opts.table != NULL)
    atr_optset_free(&h->opts);
  for (size_t i = 0; i < h->nold_opts; i++)
    atr_optset_free(&h->old_opts[i]);
  free(h->old_opts);
  free(h->options_copy);
  free(h->ctx);
  free(h->name);
  free(h->file);
  free(h->error);
  free(h);
}

static int add_handle(atr_loader_t *l, const char *name, char *real, void *dl,
                      const atr_plugin_t *desc, atr_handle_t **out) {
  atr_handle_t *h = calloc(1, sizeof(*h));
  if (h == NULL || (h->name = strdup(name)) == NULL) {
    free(h);
    return ATR_ENOMEM;
  }
  h->options = atr__loader_options(desc, &h->options_copy);
  if (h->options == NULL) {
    free(h->name);
    free(h);
    return ATR_ENOMEM;
  }
  h->file = real;
  h->dl = dl;
  h->desc = desc;
  h->state = ATR_PLUGIN_LOADED;
  h->loader = l;
  pthread_rwlock_wrlock(&plugins_lock);
  atr_handle_t **grown =
      realloc(l->plugins, (l->nplugins + 1) * sizeof(*grown));
  if (grown != NULL) {
    l->plugins = grown;
    l->plugins[l->nplugins++] = h;
  }
  pthread_rwlock_unlock(&plugins_lock);
  if (grown == NULL) {
    free(h->options_copy);
    free(h->name);
    free(h);
    return ATR_ENOMEM;
  }
  *out = h;
  return 0;
}

/* Steps 2-8 once the file is known. On failure nothing is kept: the object
 * is closed again, since no plugin code beyond the entry has run. */
static int open_file(atr_loader_t *l, const char *name, const char *path,
                     atr_handle_t **out, char **err) {
  char *real = NULL;
  void *dl = NULL;
  const atr_plugin_t *desc = NULL;
  int rc = atr__loader_check_file(l, name, path, &real, err);
  if (rc == 0)
    rc = atr__loader_open_object(name, path, real, &dl, &desc, err);
  if (rc == 0)
    rc = atr__loader_check_desc(name, desc, err);
  const atr_handle_t *dup = rc == 0 ? atr_loader_find(l, name) : NULL;
  if (dup != NULL)
    rc = FAIL(err, ATR_EEXIST,
              "plugin %s: a plugin with this name is already loaded from %s",
              name, dup->file);
  if (rc == 0 && (rc = add_handle(l, name, real, dl, desc, out)) != 0)
    atr__loader_set_err(err, "plugin %s: out of memory", name);
  if (rc != 0) {
    if (dl != NULL)
      dlclose(dl);
    free(real);
  }
  return rc;
}

int atr_loader_open(atr_loader_t *l, const char *name, const char *file,
                    atr_handle_t **out, char **err) {
  atr_handle_t *h = NULL;
  char *path = NULL;
  if (out != NULL)
    *out = NULL;
  if (!valid_name(name))
    return FAIL(err, ATR_EINVAL,
                "plugin %s: invalid name; use lower-case letters, digits and "
                "underscores, starting with a letter",
                name ? name : "(null)");
  int rc = locate(l, name, file, &path, err);
  if (rc == 0)
    rc = open_file(l, name, path, &h, err);
  free(path);
  if (rc == 0 && out != NULL)
    *out = h;
  return rc;
}

/* Record a failure on the handle too, for `atrium plugins list`. */
static int mark_failed(atr_handle_t *h, int rc, char **err) {
  set_state(h, ATR_PLUGIN_FAILED);
  free(h->error);
  h->error = (err && *err) ? strdup(*err) : NULL;
  return rc;
}

int atr__plugin_option(atr_handle_t *h, const char *name, atr_optval_t *out) {
  int rc = ATR_ENOENT;
  if (h == NULL || name == NULL || out == NULL)
    return ATR_EINVAL;
  pthread_rwlock_rdlock(&opts_lock);
  for (size_t i = 0; i < h->opts.n; i++) {
    if (strcmp(h->opts.vals[i].opt->name, name) == 0) {
      if (h->opts.vals[i].set) {
        *out = h->opts.vals[i];
        rc = 0;
      }
      break;
    }
  }
  pthread_rwlock_unlock(&opts_lock);
  return rc;
}

static int resolve(const atr_handle_t *h, atr_optset_t *set,
                   const atr_conf_node_t *root, atr_overrides_t *flags,
                   atr_getenv_fn env, char **err) {
  char *section = NULL;
  if (asprintf(&section, "plugins.%s", h->name) < 0)
    return FAIL(err, ATR_ENOMEM, "out of memory");
  int rc = atr_optset_resolve(set, h->options, section, root, reserved_keys,
                              NULL, flags, env, err);
  free(section);
  return rc;
}

int atr_loader_configure(atr_handle_t *h, const atr_conf_node_t *root,
                         atr_overrides_t *flags, atr_getenv_fn env,
                         char **err) {
  if (h == NULL || h->desc == NULL)
    return FAIL(err, ATR_EINVAL, "no plugin to configure");
  if (h->state == ATR_PLUGIN_RUNNING || h->state == ATR_PLUGIN_STOPPED)
    return FAIL(err, ATR_EPERM, "plugin %s: cannot configure a %s plugin",
                h->name, atr_plugin_state_name(h->state));
  atr_optset_t set = {0};
  int rc = resolve(h, &set, root, flags, env, err);
  if (rc != 0)
    return mark_failed(h, rc, err);
  pthread_rwlock_wrlock(&opts_lock);
  atr_optset_t old = h->opts;
  h->opts = set;
  pthread_rwlock_unlock(&opts_lock);
  if (old.table != NULL)
    atr_optset_free(&old);
  set_state(h, ATR_PLUGIN_LOADED);
  free(h->error);
  h->error = NULL;
  return 0;
}

/* No newlines in a plugin's message: every refusal is one log line. */
static void one_line(char *s) {
  for (; s && *s; s++)
    if (*s == '\n' || *s == '\r')
      *s = ' ';
}

/* Step 10's rollback: whatever init() registered goes, and so does ctx. */
static int init_failed(atr_handle_t *h, int rc, char *perr, char **err) {
  atr_routes_remove_owner(h->name);
  atr_metrics_remove_owner(h->name);
  free(h->ctx);
  h->ctx = NULL;
  one_line(perr);
  atr__loader_set_err(err, "plugin %s: init failed: %s", h->name,
                      (perr && *perr) ? perr : atr_strerror(rc));
  free(perr);
  return mark_failed(h, rc < 0 ? rc : ATR_EPLUGIN, err);
}

int atr_loader_start(atr_handle_t *h, char **err) {
  if (h == NULL || h->desc == NULL)
    return FAIL(err, ATR_EINVAL, "no plugin to start");
  if (h->state != ATR_PLUGIN_LOADED || h->opts.table == NULL)
    return FAIL(err, ATR_EPERM, "plugin %s: cannot start a plugin that is %s%s",
                h->name, atr_plugin_state_name(h->state),
                h->opts.table ? "" : " and not configured");
  h->ctx = calloc(1, h->desc->ctx_size ? h->desc->ctx_size : 1);
  if (h->ctx == NULL)
    return init_failed(h, ATR_ENOMEM, NULL, err);
  atr_optset_fill(&h->opts, h->ctx);
  if (h->desc->init != NULL) {
    char *perr = NULL;
    int rc = h->desc->init(h, atr_host_table(), h->ctx, &perr);
    if (rc != 0)
      return init_failed(h, rc, perr, err);
    free(perr);
  }
  set_state(h, ATR_PLUGIN_RUNNING);
  if (atr__observe_add(h) != 0)
    atr_log(ATR_LOG_ERROR, "loader",
            "plugin %s: out of memory; it will receive no events", h->name);
  atr_log(ATR_LOG_INFO, "loader", "plugin %s: %s %s running from %s", h->name,
          atr_plugin_kind_name(h->desc->kind),
          h->desc->version ? h->desc->version : "", h->file);
  return 0;
}

static const atr_conf_node_t *child(const atr_conf_node_t *map,
                                    const char *key) {
  for (size_t i = 0; i < map->nchildren; i++)
    if (map->children[i]->key && strcmp(map->children[i]->key, key) == 0)
      return map->children[i];
  return NULL;
}

static int where_fail(char **err, const atr_conf_node_t *n, const char *name,
                      const char *key, const char *why) {
  char where[512];
  atr_conf_where(n, where, sizeof(where));
  return FAIL(err, ATR_ECONFIG, "%s: plugins.%s%s%s: %s", where, name,
              key ? "." : "", key ? key : "", why);
}

/* plugins.<name>.enabled: absent or null means off. */
static int is_enabled(const atr_conf_node_t *sec, bool *on, char **err) {
  *on = false;
  if (sec->type == ATR_CONF_SCALAR && sec->is_null)
    return 0;
  if (sec->type != ATR_CONF_MAP)
    return where_fail(err, sec, sec->key, NULL,
                      "expected a map with enabled, file and the plugin's "
                      "options");
  const atr_conf_node_t *en = child(sec, "enabled");
  if (en == NULL || (en->type == ATR_CONF_SCALAR && en->is_null))
    return 0;
  if (en->type == ATR_CONF_SCALAR && atr_parse_bool(en->value, on) == 0)
    return 0;
  char *why = NULL;
  if (asprintf(&why, "\"%s\" is not a boolean; expected true or false",
               en->type == ATR_CONF_SCALAR ? en->value : "(not a scalar)") < 0)
    why = NULL;
  int rc = where_fail(err, en, sec->key, "enabled", why ? why : "not a bool");
  free(why);
  return rc;
}

static int file_of(const atr_conf_node_t *sec, const char **file, char **err) {
  const atr_conf_node_t *f = child(sec, "file");
  *file = NULL;
  if (f == NULL || (f->type == ATR_CONF_SCALAR && f->is_null))
    return 0;
  if (f->type != ATR_CONF_SCALAR || f->value[0] == '\0')
    return where_fail(err, f, sec->key, "file",
                      "expected the path of the plugin's .so file");
  *file = f->value;
  return 0;
}

int atr_loader_load_config(atr_loader_t *l, const atr_conf_node_t *root,
                           atr_overrides_t *flags, atr_getenv_fn env,
                           bool start, char **err) {
  const atr_conf_node_t *plugins = root ? atr_conf_get(root, "plugins") : NULL;
  if (plugins == NULL || (plugins->type == ATR_CONF_SCALAR && plugins->is_null))
    return 0;
  if (plugins->type != ATR_CONF_MAP) {
    char where[512];
    atr_conf_where(plugins, where, sizeof(where));
    return FAIL(err, ATR_ECONFIG, "%s: plugins: expected a map of plugin names",
                where);
  }
  for (size_t i = 0; i < plugins->nchildren; i++) {
    const atr_conf_node_t *sec = plugins->children[i];
    const char *file = NULL;
    atr_handle_t *h = NULL;
    bool on = false;
    int rc = is_enabled(sec, &on, err);
    if (rc == 0 && on)
      rc = file_of(sec, &file, err);
    if (rc == 0 && on)
      rc = atr_loader_open(l, sec->key, file, &h, err);
    if (rc == 0 && on)
      rc = atr_loader_configure(h, root, flags, env, err);
    if (rc == 0 && on && start)
      rc = atr_loader_start(h, err);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* A --flag keeps winning over the file after a reload, as it did at start;
 * reload has no flags to resolve with, so such values are left alone. */
static bool from_flag(const atr_optval_t *v) {
  return v->source != NULL && strncmp(v->source, "flag ", 5) == 0;
}

static bool applies(const atr_optval_t *cur) {
  return (cur->opt->flags & ATR_OPT_RELOADABLE) && !from_flag(cur);
}

typedef struct reload_state {
  const atr_handle_t *h;
  int applied;
} reload_state_t;

static void on_change(void *ud, const atr_optval_t *old_val,
                      const atr_optval_t *new_val) {
  reload_state_t *st = ud;
  if (from_flag(old_val))
    return;
  if (applies(old_val)) {
    atr_log(ATR_LOG_INFO, "loader",
            "plugin %s: option %s changed from %s to %s", st->h->name,
            old_val->opt->name, atr_optval_display(old_val),
            atr_optval_display(new_val));
    st->applied++;
  } else {
    atr_log(ATR_LOG_WARN, "loader",
            "plugin %s: option %s changed in the config but needs a restart "
            "to apply",
            st->h->name, old_val->opt->name);
  }
}

/* Swap the new values of reloadable options into the current set, under
 * opts_lock since plugin threads read it. `next` then holds the replaced
 * values and the unused new ones; it is kept, not freed, because a plugin
 * thread may still hold a string from it. Other options keep their value
 * and even their pointer, so refilling ctx leaves their fields as they were. */
static int adopt(atr_handle_t *h, atr_optset_t *next) {
  atr_optset_t *grown =
      realloc(h->old_opts, (h->nold_opts + 1) * sizeof(*grown));
  if (grown == NULL)
    return ATR_ENOMEM;
  h->old_opts = grown;
  pthread_rwlock_wrlock(&opts_lock);
  for (size_t i = 0; i < next->n; i++) {
    if (applies(&h->opts.vals[i])) {
      atr_optval_t cur = h->opts.vals[i];
      h->opts.vals[i] = next->vals[i];
      next->vals[i] = cur;
    }
  }
  pthread_rwlock_unlock(&opts_lock);
  h->old_opts[h->nold_opts++] = *next;
  return 0;
}

static int reload_one(atr_handle_t *h, const atr_conf_node_t *root,
                      atr_getenv_fn env) {
  atr_optset_t next = {0};
  char *err = NULL;
  if (resolve(h, &next, root, NULL, env, &err) != 0) {
    atr_log(ATR_LOG_ERROR, "loader",
            "plugin %s: reload refused, keeping the running options: %s",
            h->name, err ? err : "unknown error");
    free(err);
    return 0;
  }
  reload_state_t st = {h, 0};
  atr_optset_diff(&h->opts, &next, on_change, &st);
  if (st.applied == 0 || adopt(h, &next) != 0) {
    atr_optset_free(&next);
    return 0;
  }
  atr_optset_fill(&h->opts, h->ctx);
  if (h->desc->reload != NULL && h->desc->reload(h->ctx, &err) != 0) {
    one_line(err);
    atr_log(ATR_LOG_ERROR, "loader", "plugin %s: reload failed: %s", h->name,
            err ? err : "no message");
  }
  free(err);
  return st.applied;
}

int atr_loader_reload(atr_loader_t *l, const atr_conf_node_t *root,
                      atr_getenv_fn env) {
  int applied = 0;
  for (size_t i = 0; i < l->nplugins; i++)
    if (l->plugins[i]->state == ATR_PLUGIN_RUNNING)
      applied += reload_one(l->plugins[i], root, env);
  return applied;
}

void atr_loader_each(const atr_loader_t *l, atr_plugin_visit_fn visit,
                     void *user_data) {
  if (l == NULL || visit == NULL)
    return;
  pthread_rwlock_rdlock(&plugins_lock);
  for (size_t i = 0; i < l->nplugins; i++) {
    const atr_handle_t *h = l->plugins[i];
    atr_plugin_info_t info = {.struct_size = sizeof(info),
                              .name = h->name,
                              .kind = atr_plugin_kind_name(h->desc->kind),
                              .version =
                                  h->desc->version ? h->desc->version : "",
                              .state = atr_plugin_state_name(h->state)};
    visit(user_data, &info);
  }
  pthread_rwlock_unlock(&plugins_lock);
}

const atr_option_t *atr_plugin_options(const atr_handle_t *h) {
  return h->options;
}

int atr_loader_health(const atr_handle_t *h, char **message) {
  *message = NULL;
  if (h->state != ATR_PLUGIN_RUNNING || !DESC_HAS(h->desc, health) ||
      h->desc->health == NULL)
    return ATR_ENOTSUP;
  return h->desc->health(h->ctx, message);
}

static json_t *str_or_null(const char *s) {
  return s ? json_string(s) : json_null();
}

json_t *atr_loader_plugins_json(const atr_loader_t *l) {
  json_t *list = json_array();
  pthread_rwlock_rdlock(&plugins_lock);
  for (size_t i = 0; list && i < l->nplugins; i++) {
    const atr_handle_t *h = l->plugins[i];
    json_array_append_new(
        list,
        json_pack("{s:s, s:s, s:o, s:o, s:s, s:o, s:o, s:b}", "name", h->name,
                  "kind", atr_plugin_kind_name(h->desc->kind), "version",
                  str_or_null(h->desc->version), "description",
                  str_or_null(h->desc->description), "state",
                  atr_plugin_state_name(h->state), "file", str_or_null(h->file),
                  "error", str_or_null(h->error), "health_check",
                  DESC_HAS(h->desc, health) && h->desc->health != NULL));
  }
  pthread_rwlock_unlock(&plugins_lock);
  return list;
}

json_t *atr_loader_options_json(const atr_loader_t *l) {
  json_t *obj = json_object();
  pthread_rwlock_rdlock(&plugins_lock);
  pthread_rwlock_rdlock(&opts_lock);
  for (size_t i = 0; obj && i < l->nplugins; i++) {
    const atr_handle_t *h = l->plugins[i];
    json_object_set_new(obj, h->name,
                        json_pack("{s:b, s:o, s:o}", "enabled", 1, "file",
                                  str_or_null(h->file), "options",
                                  atr_optset_to_json(&h->opts)));
  }
  pthread_rwlock_unlock(&opts_lock);
  pthread_rwlock_unlock(&plugins_lock);
  return obj;
}

const char *atr_plugin_kind_name(atr_plugin_kind_t kind) {
  switch (kind) {
  case ATR_KIND_STORAGE:
    return "storage";
  case ATR_KIND_AUTH:
    return "auth";
  case ATR_KIND_PROVISIONER:
    return "provisioner";
  case ATR_KIND_OBSERVER:
    return "observer";
  }
  return "unknown";
}

const char *atr_plugin_state_name(atr_plugin_state_t state) {
  switch (state) {
  case ATR_PLUGIN_LOADED:
    return "loaded";
  case ATR_PLUGIN_RUNNING:
    return "running";
  case ATR_PLUGIN_FAILED:
    return "failed";
  case ATR_PLUGIN_STOPPED:
    return "stopped";
  }
  return "unknown";
}

void atr_loader_shutdown(atr_loader_t *l) {
  for (size_t i = l->nplugins; i-- > 0;) {
    atr_handle_t *h = l->plugins[i];
    if (h->state == ATR_PLUGIN_RUNNING) {
      atr__observe_remove(h); /* waits for an on_event in progress */
      if (h->desc->fini != NULL)
        h->desc->fini(h->ctx);
      set_state(h, ATR_PLUGIN_STOPPED);
    }
    /* Handlers and metrics point into ctx, which is about to be freed. */
    atr_routes_remove_owner(h->name);
    atr_metrics_remove_owner(h->name);
  }
  pthread_rwlock_wrlock(&plugins_lock);
  for (size_t i = 0; i < l->nplugins; i++)
    handle_free(l->plugins[i]);
  free(l->plugins);
  l->plugins = NULL;
  l->nplugins = 0;
  pthread_rwlock_unlock(&plugins_lock);
  for (size_t i = 0; i < l->ndirs; i++)
    free(l->dirs[i]);
  free(l->dirs);
  memset(l, 0, sizeof(*l));
}
