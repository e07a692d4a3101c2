/* core/plugin/loader_checks.c — the loader's refusals (steps 1 to 7 of
 * loader.h): where the file lies and who may write it, dlopen and the entry
 * symbol, the ABI version, and every size the descriptor declares.
 *
 * The file and every directory above it must be owned by root or the
 * server's user and writable by no one else (the plugin directory
 * strictly; a sticky /tmp above it is accepted).
 *
 * Everything here reads only what the plugin declared (the descriptor, its
 * ops header, its option table) and runs no plugin code past the entry
 * symbol. Each refusal is one line; tests/abi/test_loader.c asserts them.
 * Main thread only, like the rest of the loader's loading path.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* vasprintf, open_memstream */
#endif
#include "loader_checks.h"

#include <dlfcn.h>
#include <errno.h>
#include <pwd.h>
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

#define DESC_MIN_SIZE (offsetof(atr_plugin_t, ops) + sizeof(void *))

void atr__loader_set_err(char **err, const char *fmt, ...) {
  va_list ap;
  char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (err != NULL)
    *err = msg;
  else
    free(msg);
}

/* "d1, d2" for messages; "none" when no directory exists. */
char *atr__loader_dirs_list(const atr_loader_t *l) {
  char *s = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&s, &len);
  if (f == NULL)
    return NULL;
  fputs(l->ndirs ? "" : "none", f);
  for (size_t i = 0; i < l->ndirs; i++)
    fprintf(f, "%s%s", i ? ", " : "", l->dirs[i]);
  if (fclose(f) != 0) {
    free(s);
    return NULL;
  }
  return s;
}

static bool inside_dirs(const atr_loader_t *l, const char *real) {
  const char *slash = strrchr(real, '/');
  size_t len = slash == real ? 1 : (size_t)(slash - real);
  for (size_t i = 0; i < l->ndirs; i++)
    if (strlen(l->dirs[i]) == len && strncmp(l->dirs[i], real, len) == 0)
      return true;
  return false;
}

/* Who may own the plugin file and every directory above it: root, or the
 * user the server runs as. Anyone else could swap the code under us. */
static bool trusted_owner(uid_t uid) {
  return uid == 0 || uid == geteuid();
}

/* "uid 999 (atrium-build)", or "uid 999" when the name is unknown. */
static void uid_text(uid_t uid, char *buf, size_t size) {
  struct passwd pw, *found = NULL;
  char names[1024];
  if (getpwuid_r(uid, &pw, names, sizeof(names), &found) == 0 && found)
    snprintf(buf, size, "uid %u (%s)", (unsigned)uid, found->pw_name);
  else
    snprintf(buf, size, "uid %u", (unsigned)uid);
}

static int owner_refusal(const char *name, const char *what, const char *path,
                         uid_t owner, char **err) {
  char who[300], self[300];
  uid_text(owner, who, sizeof(who));
  uid_text(geteuid(), self, sizeof(self));
  return FAIL(err, ATR_EACCES,
              "plugin %s: %s%s is owned by %s, not by root or the server's "
              "user (%s); run chown root %s",
              name, what, path, who, self, path);
}

/* One directory on the way up from the file. The plugin directory itself
 * must be writable by its owner alone. Above it, a world-writable
 * directory is accepted only with the sticky bit and a trusted owner
 * (/tmp): then nobody else may rename or remove the entry below it, which
 * is ours. OpenSSH's safe_path makes no such exception; tests and
 * developers keep build trees under /tmp, and the sticky bit closes the
 * same hole. */
static int check_dir(const char *name, const char *dir, bool plugin_dir,
                     char **err) {
  struct stat st;
  const char *what = plugin_dir ? "the plugin directory " : "the directory ";
  if (lstat(dir, &st) != 0)
    return FAIL(err, ATR_EACCES, "plugin %s: cannot check %s%s: %s", name, what,
                dir, strerror(errno));
  if (!S_ISDIR(st.st_mode)) /* realpath resolved it a moment ago */
    return FAIL(err, ATR_EACCES,
                "plugin %s: %s%s is no longer a directory; is it being "
                "changed?",
                name, what, dir);
  if (!trusted_owner(st.st_uid))
    return owner_refusal(name, what, dir, st.st_uid, err);
  bool sticky = (st.st_mode & S_ISVTX) != 0;
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) && (plugin_dir || !sticky))
    return FAIL(err, ATR_EACCES,
                "plugin %s: %s%s is group- or world-writable (mode %04o); run "
                "chmod go-w %s",
                name, what, dir, (unsigned)(st.st_mode & 07777), dir);
  return 0;
}

/* Every directory from the file's own up to /, on the resolved path. */
static int check_dirs(const char *name, const char *real, char **err) {
  char *dir = strdup(real);
  int rc = dir ? 0 : FAIL(err, ATR_ENOMEM, "plugin %s: out of memory", name);
  bool plugin_dir = true;
  for (char *slash = dir ? strrchr(dir, '/') : NULL; rc == 0 && slash;
       slash = strrchr(dir, '/')) {
    slash[slash == dir ? 1 : 0] = '\0';
    rc = check_dir(name, dir, plugin_dir, err);
    plugin_dir = false;
    if (slash == dir)
      break;
  }
  free(dir);
  return rc;
}

/* Steps 1 and 2, on the resolved path so a symlink cannot lead outside. The
 * checks leave no one but root and the server's user able to change the
 * file or any directory above it, so what dlopen opens next is what was
 * checked (no descriptor trick needed; see docs/security.md). */
int atr__loader_check_file(const atr_loader_t *l, const char *name,
                           const char *path, char **real, char **err) {
  struct stat st;
  *real = realpath(path, NULL);
  if (*real == NULL || lstat(*real, &st) != 0)
    return FAIL(err, ATR_ENOENT, "plugin %s: cannot load %s: %s", name, path,
                strerror(errno));
  if (!inside_dirs(l, *real)) {
    char *dl = atr__loader_dirs_list(l);
    int rc = FAIL(err, ATR_EACCES,
                  "plugin %s: %s is outside the plugin directories (%s)", name,
                  path, dl ? dl : "?");
    free(dl);
    return rc;
  }
  if (!S_ISREG(st.st_mode))
    return FAIL(err, ATR_EACCES, "plugin %s: %s is not a regular file", name,
                path);
  if (st.st_mode & (S_IWGRP | S_IWOTH))
    return FAIL(err, ATR_EACCES,
                "plugin %s: %s is group- or world-writable (mode %04o); run "
                "chmod go-w %s",
                name, path, (unsigned)(st.st_mode & 07777), path);
  if (!trusted_owner(st.st_uid))
    return owner_refusal(name, "", path, st.st_uid, err);
  return check_dirs(name, *real, err);
}

/* Steps 3 and 4. */
int atr__loader_open_object(const char *name, const char *path,
                            const char *real, void **dl,
                            const atr_plugin_t **desc, char **err) {
  dlerror();
  *dl = dlopen(real, RTLD_NOW | RTLD_LOCAL);
  if (*dl == NULL) {
    const char *why = dlerror();
    return FAIL(err, ATR_EPLUGIN, "plugin %s: cannot load %s: %s", name, path,
                why ? why : "unknown error");
  }
  atr_plugin_entry_fn entry =
      (atr_plugin_entry_fn)dlsym(*dl, ATR_PLUGIN_ENTRY_SYMBOL);
  if (entry == NULL)
    return FAIL(err, ATR_EPLUGIN,
                "plugin %s: %s has no " ATR_PLUGIN_ENTRY_SYMBOL
                " symbol; is it an atrium plugin?",
                name, path);
  *desc = entry();
  if (*desc != NULL)
    return 0;
  return FAIL(err, ATR_EPLUGIN,
              "plugin %s: " ATR_PLUGIN_ENTRY_SYMBOL " in %s returned no "
              "descriptor",
              name, path);
}

static size_t ops_min_size(atr_plugin_kind_t kind) {
  switch (kind) {
  case ATR_KIND_STORAGE:
    return ATR_STORAGE_OPS_MIN_SIZE;
  case ATR_KIND_AUTH:
    return ATR_AUTH_OPS_MIN_SIZE;
  case ATR_KIND_PROVISIONER:
    return ATR_PROVISIONER_OPS_MIN_SIZE;
  case ATR_KIND_OBSERVER:
    return ATR_OBSERVER_OPS_MIN_SIZE;
  }
  return 0;
}

/* Step 5, 6 and the descriptor's size: read only the three fields every ABI
 * version has in front before trusting anything else. */
static int check_abi(const char *name, const atr_plugin_t *d, char **err) {
  if (d->abi_major != ATR_ABI_MAJOR)
    return FAIL(err, ATR_EABI,
                "plugin %s: ABI major version %u does not match the host's "
                "%u; rebuild the plugin against this SDK",
                name, (unsigned)d->abi_major, (unsigned)ATR_ABI_MAJOR);
  if (d->abi_minor < ATR_ABI_MINOR_FIRST_STABLE)
    return FAIL(err, ATR_EABI,
                "plugin %s: ABI version %u.%u predates %u.%u, the first "
                "stable layout; rebuild the plugin against this SDK",
                name, (unsigned)d->abi_major, (unsigned)d->abi_minor,
                (unsigned)ATR_ABI_MAJOR, ATR_ABI_MINOR_FIRST_STABLE);
  if (d->abi_minor > ATR_ABI_MINOR)
    return FAIL(err, ATR_EABI,
                "plugin %s: ABI minor version %u is newer than the host's %u; "
                "upgrade atrium or build against an older SDK",
                name, (unsigned)d->abi_minor, (unsigned)ATR_ABI_MINOR);
  if (d->struct_size < DESC_MIN_SIZE)
    return FAIL(err, ATR_EABI,
                "plugin %s: descriptor struct_size %u is smaller than %zu "
                "required for ABI %u.%u",
                name, (unsigned)d->struct_size, DESC_MIN_SIZE,
                (unsigned)d->abi_major, (unsigned)d->abi_minor);
  return 0;
}

static size_t option_field_size(atr_option_type_t type) {
  switch (type) {
  case ATR_OPT_BOOL:
    return sizeof(bool);
  case ATR_OPT_INT:
  case ATR_OPT_DURATION:
    return sizeof(int64_t);
  case ATR_OPT_SIZE:
    return sizeof(uint64_t);
  case ATR_OPT_DOUBLE:
    return sizeof(double);
  default:
    return sizeof(void *);
  }
}

/* The stride of the plugin's option table: its declared option_size, or
 * the ABI 1.1 layout when the descriptor predates the field or leaves it 0. */
size_t atr__loader_option_stride(const atr_plugin_t *d) {
  if (!DESC_HAS(d, option_size) || d->option_size == 0)
    return ATR_OPTION_MIN_SIZE;
  return d->option_size;
}

static const atr_option_t *option_at(const atr_plugin_t *d, size_t i) {
  size_t stride = atr__loader_option_stride(d);
  return (const atr_option_t *)(const void *)((const char *)d->options +
                                              i * stride);
}

/* The host writes option fields into ctx by offset; a field past ctx_size
 * would be a heap overflow in the host, so refuse it here. Entries are
 * read with the plugin's stride, which must hold the ABI 1.1 layout. */
static int check_options(const char *name, const atr_plugin_t *d, char **err) {
  size_t stride = atr__loader_option_stride(d);
  if (d->options != NULL && stride < ATR_OPTION_MIN_SIZE)
    return FAIL(err, ATR_EABI,
                "plugin %s: option_size %zu is smaller than %zu required for "
                "ABI %u.%u",
                name, stride, ATR_OPTION_MIN_SIZE, (unsigned)d->abi_major,
                (unsigned)d->abi_minor);
  for (size_t i = 0; d->options && option_at(d, i)->name; i++) {
    const atr_option_t *o = option_at(d, i);
    if (o->offset == ATR_OPT_NO_OFFSET)
      continue;
    size_t size = option_field_size(o->type);
    if (o->offset > d->ctx_size || d->ctx_size - o->offset < size)
      return FAIL(err, ATR_EABI,
                  "plugin %s: option %s at offset %zu does not fit in "
                  "ctx_size %zu",
                  name, o->name, o->offset, d->ctx_size);
  }
  return 0;
}

/* The plugin's options in the host's layout: the table itself when the
 * strides agree, else a copy (fields the plugin lacks stay zero), which
 * *copy owns. */
const atr_option_t *atr__loader_options(const atr_plugin_t *d,
                                        atr_option_t **copy) {
  static const atr_option_t none[] = {{0}};
  size_t stride = atr__loader_option_stride(d);
  *copy = NULL;
  if (d->options == NULL)
    return none;
  if (stride == sizeof(atr_option_t))
    return d->options;
  size_t n = 0;
  while (option_at(d, n)->name)
    n++;
  *copy = calloc(n + 1, sizeof(atr_option_t));
  if (*copy == NULL)
    return NULL;
  size_t keep = stride < sizeof(atr_option_t) ? stride : sizeof(atr_option_t);
  for (size_t i = 0; i < n; i++)
    memcpy(&(*copy)[i], option_at(d, i), keep);
  return *copy;
}

/* The rest of step 7: kind, name, ops table, option fields. */
int atr__loader_check_desc(const char *name, const atr_plugin_t *d,
                           char **err) {
  int rc = check_abi(name, d, err);
  if (rc != 0)
    return rc;
  if (d->kind < ATR_KIND_STORAGE || d->kind > ATR_KIND_OBSERVER)
    return FAIL(err, ATR_EABI, "plugin %s: unknown kind %d", name,
                (int)d->kind);
  if (d->name == NULL || strcmp(d->name, name) != 0)
    return FAIL(err, ATR_ECONFIG,
                "plugin %s: the file declares the name \"%s\"; rename the "
                "file or the config section",
                name, d->name ? d->name : "");
  const char *kind = atr_plugin_kind_name(d->kind);
  if (d->ops == NULL)
    return FAIL(err, ATR_EABI, "plugin %s: the descriptor has no %s ops table",
                name, kind);
  uint32_t ops_size = ((const atr_ops_header_t *)d->ops)->struct_size;
  if (ops_size < ops_min_size(d->kind))
    return FAIL(err, ATR_EABI,
                "plugin %s: %s ops struct_size %u is smaller than %zu "
                "required for ABI %u.%u",
                name, kind, (unsigned)ops_size, ops_min_size(d->kind),
                (unsigned)d->abi_major, (unsigned)d->abi_minor);
  return check_options(name, d, err);
}
