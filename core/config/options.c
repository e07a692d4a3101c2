/* core/config/options.c — option tables resolved against config, env and
 * flags into option sets: command-line overrides, the resolution of a table
 * against a section, and what a resolved set offers (fill, find, diff).
 * Values are parsed in option_values.c and shown in options_output.c.
 */
#ifndef _GNU_SOURCE /* the top-level CMakeLists.txt may define it */
#define _GNU_SOURCE /* vasprintf, strndup */
#endif
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrium/error.h"
#include "log.h"
#include "options_internal.h"

/* ---- command-line overrides -------------------------------------------- */

/* "--a.b=v", "--a.b v", "--data_dir v": option keys have a dot or an
 * underscore, while the CLI's own flags (--config, --print-config) use
 * dashes, so the two never collide. */
static bool is_override(const char *arg) {
  if (strncmp(arg, "--", 2) != 0)
    return false;
  size_t keylen = strcspn(arg + 2, "=");
  const char *key = arg + 2;
  return keylen && (memchr(key, '.', keylen) || memchr(key, '_', keylen));
}

static void overrides_add(atr_overrides_t *o, char *key, const char *value) {
  o->items = atr__opt_realloc(o->items, (o->n + 1) * sizeof *o->items);
  o->items[o->n++] =
      (atr_override_t){.key = key, .value = atr__opt_strdup(value)};
}

int atr_overrides_from_argv(int argc, char **argv, atr_overrides_t *out,
                            char ***rest, int *nrest, char **err) {
  char **kept = atr__opt_calloc((size_t)argc + 1, sizeof *kept);
  int nkept = 0;
  *out = (atr_overrides_t){0};
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--")) { /* the caller's own option parsing ends */
      while (i < argc)
        kept[nkept++] = argv[i++];
      break;
    }
    if (!is_override(argv[i])) {
      kept[nkept++] = argv[i];
      continue;
    }
    const char *arg = argv[i] + 2, *eq = strchr(arg, '=');
    char *key =
        eq ? atr__opt_strndup(arg, (size_t)(eq - arg)) : atr__opt_strdup(arg);
    if (!eq && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
      *err = atr__opt_fmt(
          "flag --%s needs a value: write --%s=VALUE or --%s VALUE", key, key,
          key);
      free(key);
      free(kept);
      atr_overrides_free(out);
      return ATR_EINVAL;
    }
    overrides_add(out, key, eq ? eq + 1 : argv[++i]);
  }
  if (rest && nrest) {
    *rest = kept;
    *nrest = nkept;
  } else {
    free(kept);
  }
  return 0;
}

void atr_overrides_free(atr_overrides_t *o) {
  if (!o)
    return;
  for (size_t i = 0; i < o->n; i++) {
    free(o->items[i].key);
    free(o->items[i].value);
  }
  free(o->items);
  *o = (atr_overrides_t){0};
}

const char *atr_overrides_first_unused(const atr_overrides_t *o) {
  for (size_t i = 0; o && i < o->n; i++)
    if (!o->items[i].used)
      return o->items[i].key;
  return NULL;
}

/* The value of the last flag for `key` (later flags win, as in most CLIs);
 * every flag for it counts as used. */
static const char *take_flag(atr_overrides_t *flags, const char *key) {
  const char *value = NULL;
  for (size_t i = 0; flags && i < flags->n; i++) {
    if (!strcmp(flags->items[i].key, key)) {
      flags->items[i].used = 1;
      value = flags->items[i].value;
    }
  }
  return value;
}

/* ---- resolving a table -------------------------------------------------- */

typedef struct resolver {
  atr_optset_t *set;
  const atr_conf_node_t *root;
  const atr_conf_node_t *section; /* NULL when the config has none */
  const atr_conf_node_t **found;  /* per option: its node in the config */
  const char *const *reserved;
  const char *const *skip_maps;
  atr_overrides_t *flags;
  atr_getenv_fn env;
  char **err;
} resolver_t;

static char *node_where(const atr_conf_node_t *n) {
  return atr__opt_fmt("%s:%d:%d", n->file, n->line, n->col);
}

/* "<where>: <section.name>: <why>" into *err. */
static int fail(resolver_t *r, const char *where, const char *name,
                const char *f, ...) __attribute__((format(printf, 4, 5)));
static int fail(resolver_t *r, const char *where, const char *name,
                const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *why = atr__opt_vfmt(f, ap);
  va_end(ap);
  char *key = atr__opt_full_key(r->set->section, name);
  *r->err = atr__opt_fmt("%s: %s: %s", where, key, why);
  free(key);
  free(why);
  return ATR_ECONFIG;
}

static int fail_node(resolver_t *r, const atr_conf_node_t *n, const char *name,
                     const char *why) {
  char *where = node_where(n);
  int rc = fail(r, where, name, "%s", why);
  free(where);
  return rc;
}

static ptrdiff_t option_index(const atr_option_t *table, const char *name) {
  for (ptrdiff_t i = 0; table[i].name; i++)
    if (!strcmp(table[i].name, name))
      return i;
  return -1;
}

/* Is there an option "<prefix>.something"? */
static bool options_under(const atr_option_t *table, const char *prefix) {
  size_t len = strlen(prefix);
  for (size_t i = 0; table[i].name; i++)
    if (!strncmp(table[i].name, prefix, len) && table[i].name[len] == '.')
      return true;
  return false;
}

static int unknown_key(resolver_t *r, const atr_conf_node_t *n,
                       const char *name) {
  char *names = atr__opt_strdup("");
  for (size_t i = 0; r->set->table[i].name; i++) {
    char *more =
        atr__opt_fmt("%s%s%s", names, i ? ", " : "", r->set->table[i].name);
    free(names);
    names = more;
  }
  char *where = node_where(n);
  int rc =
      *names ? fail(r, where, name, "unknown option; valid options: %s", names)
             : fail(r, where, name,
                    "unknown option; no options are accepted here");
  free(where);
  free(names);
  return rc;
}

static int walk_map(resolver_t *r, const atr_conf_node_t *map,
                    const char *prefix);

/* One key of the section; `name` is its dotted path inside the section. */
static int walk_entry(resolver_t *r, const atr_conf_node_t *n,
                      const char *name) {
  ptrdiff_t i = option_index(r->set->table, name);
  if (i >= 0) {
    r->found[i] = n;
    return 0;
  }
  if (!options_under(r->set->table, name))
    return unknown_key(r, n, name);
  if (n->type == ATR_CONF_SCALAR && n->is_null)
    return 0; /* "http:" with nothing under it */
  if (n->type != ATR_CONF_MAP)
    return fail_node(r, n, name,
                     n->type == ATR_CONF_SEQ
                         ? "expected a map of options, not a list"
                         : "expected a map of options, not a single value");
  char *prefix = atr__opt_fmt("%s.", name);
  int rc = walk_map(r, n, prefix);
  free(prefix);
  return rc;
}

static int walk_map(resolver_t *r, const atr_conf_node_t *map,
                    const char *prefix) {
  for (size_t i = 0; i < map->nchildren; i++) {
    const atr_conf_node_t *n = map->children[i];
    if (!*prefix && (atr__opt_in_list(r->reserved, n->key) ||
                     atr__opt_in_list(r->skip_maps, n->key)))
      continue;
    char *name = atr__opt_fmt("%s%s", prefix, n->key);
    int rc = walk_entry(r, n, name);
    free(name);
    if (rc)
      return rc;
  }
  return 0;
}

/* Finds the section and records which config node feeds which option. */
static int walk_section(resolver_t *r) {
  const char *section = r->set->section;
  const atr_conf_node_t *n = r->root ? atr_conf_get(r->root, section) : NULL;
  r->section = n;
  if (!n || (n->type == ATR_CONF_SCALAR && n->is_null))
    return 0;
  if (n->type != ATR_CONF_MAP) {
    char *where = node_where(n);
    *r->err = atr__opt_fmt("%s: %s: expected a map of options, not a %s", where,
                           section,
                           n->type == ATR_CONF_SEQ ? "list" : "single value");
    free(where);
    return ATR_ECONFIG;
  }
  return walk_map(r, n, "");
}

/* Parses `text` into *out; `where` becomes its source. */
static int value_from_text(resolver_t *r, atr_optval_t *out, const char *text,
                           const char *where) {
  char *why = NULL;
  if (atr_option_parse(out->opt, text, out, &why)) {
    int rc = fail(r, where, out->opt->name, "%s", why);
    free(why);
    return rc;
  }
  out->source = atr__opt_strdup(where);
  return 0;
}

static int list_from_seq(resolver_t *r, atr_optval_t *out,
                         const atr_conf_node_t *seq) {
  size_t n = 0;
  char **list = atr__opt_calloc(1, sizeof *list);
  for (size_t i = 0; i < seq->nchildren; i++) {
    const atr_conf_node_t *item = seq->children[i];
    if (item->type != ATR_CONF_SCALAR) {
      atr__opt_strv_free(list);
      return fail_node(r, item, out->opt->name,
                       "list items must be single values, not maps or lists");
    }
    list = atr__opt_strv_push(list, &n, atr__opt_strdup(item->value));
  }
  out->set = true;
  out->v.list = list;
  out->raw = atr__opt_strv_join(list, ", ");
  out->source = node_where(seq);
  return 0;
}

static int value_from_node(resolver_t *r, atr_optval_t *out,
                           const atr_conf_node_t *n) {
  bool is_list = out->opt->type == ATR_OPT_LIST;
  if (n->type == ATR_CONF_MAP)
    return fail_node(r, n, out->opt->name,
                     is_list ? "expected a list"
                             : "expected a single value, not a map");
  if (n->type == ATR_CONF_SEQ && !is_list)
    return fail_node(r, n, out->opt->name,
                     "expected a single value, not a list");
  if (n->type == ATR_CONF_SEQ)
    return list_from_seq(r, out, n);
  char *where = node_where(n);
  int rc = value_from_text(r, out, n->value, where);
  free(where);
  return rc;
}

static int missing(resolver_t *r, const char *key, const char *env_name,
                   const char *name) {
  char *where = r->section
                    ? node_where(r->section)
                    : atr__opt_strdup(r->root ? r->root->file : "config");
  int rc = fail(r, where, name,
                "required option is missing; set it in the config file, with "
                "%s or with --%s",
                env_name, key);
  free(where);
  return rc;
}

/* Strongest first: flag, environment, config file, default. */
static int resolve_value(resolver_t *r, atr_optval_t *val,
                         const atr_conf_node_t *node, const char *key,
                         const char *env_name) {
  const atr_option_t *opt = val->opt;
  const char *flag = take_flag(r->flags, key);
  const char *env = r->env ? r->env(env_name) : NULL;
  int rc = 0;
  if (flag) {
    char *where = atr__opt_fmt("flag --%s", key);
    rc = value_from_text(r, val, flag, where);
    free(where);
  } else if (env) {
    char *where = atr__opt_fmt("environment %s", env_name);
    rc = value_from_text(r, val, env, where);
    free(where);
  } else if (node && !(node->type == ATR_CONF_SCALAR && node->is_null)) {
    rc = value_from_node(r, val, node);
  } else if (opt->default_value) {
    return value_from_text(r, val, opt->default_value, "default");
  } else if (opt->flags & ATR_OPT_REQUIRED) {
    return missing(r, key, env_name, opt->name);
  } else {
    return 0; /* optional and unset */
  }
  if (!rc && (opt->flags & ATR_OPT_DEPRECATED))
    atr_log(ATR_LOG_WARN, "config", "%s: %s is deprecated: %s", val->source,
            key, opt->description ? opt->description : "see the docs");
  return rc;
}

static int resolve_one(resolver_t *r, size_t i) {
  atr_optval_t *val = &r->set->vals[i];
  char *key = atr__opt_full_key(r->set->section, val->opt->name);
  char *env_name = atr_option_env_name(key);
  int rc = resolve_value(r, val, r->found[i], key, env_name);
  free(key);
  free(env_name);
  return rc;
}

int atr_optset_resolve(atr_optset_t *set, const atr_option_t *table,
                       const char *section, const atr_conf_node_t *root,
                       const char *const *reserved,
                       const char *const *skip_maps, atr_overrides_t *flags,
                       atr_getenv_fn env, char **err) {
  *set = (atr_optset_t){.table = table,
                        .section = atr__opt_strdup(section ? section : "")};
  while (table[set->n].name)
    set->n++;
  set->vals = atr__opt_calloc(set->n, sizeof *set->vals);
  for (size_t i = 0; i < set->n; i++)
    set->vals[i].opt = &table[i];
  resolver_t r = {.set = set,
                  .root = root,
                  .reserved = reserved,
                  .skip_maps = skip_maps,
                  .flags = flags,
                  .env = env,
                  .err = err};
  r.found = atr__opt_calloc(set->n, sizeof *r.found);
  int rc = walk_section(&r);
  for (size_t i = 0; !rc && i < set->n; i++)
    rc = resolve_one(&r, i);
  free(r.found);
  if (rc)
    atr_optset_free(set);
  return rc;
}

void atr_optset_free(atr_optset_t *set) {
  if (!set)
    return;
  for (size_t i = 0; i < set->n; i++)
    atr__optval_clear(&set->vals[i]);
  free(set->vals);
  free(set->section);
  *set = (atr_optset_t){0};
}

const atr_optval_t *atr_optset_find(const atr_optset_t *set, const char *name) {
  for (size_t i = 0; i < set->n; i++)
    if (!strcmp(set->vals[i].opt->name, name))
      return &set->vals[i];
  return NULL;
}

/* ---- showing values ----------------------------------------------------- */

/* The width of the context field each type fills (see atrium/option.h). */
static size_t field_size(atr_option_type_t type) {
  switch (type) {
  case ATR_OPT_STRING:
  case ATR_OPT_ENUM:
  case ATR_OPT_SECRET:
    return sizeof(const char *);
  case ATR_OPT_LIST:
    return sizeof(const char *const *);
  case ATR_OPT_BOOL:
    return sizeof(bool);
  case ATR_OPT_DOUBLE:
    return sizeof(double);
  case ATR_OPT_INT:
  case ATR_OPT_DURATION:
  case ATR_OPT_SIZE:
    return sizeof(int64_t);
  }
  return 0;
}

/* Every member of the value union starts at its first byte, so copying the
 * field's width out of it yields that member; unset writes NULL, 0 or false.
 * memcpy because nothing promises the field is aligned. */
void atr_optset_fill(const atr_optset_t *set, void *ctx) {
  static const atr_optval_t unset;
  for (size_t i = 0; i < set->n; i++) {
    const atr_optval_t *v = &set->vals[i];
    if (v->opt->offset == ATR_OPT_NO_OFFSET)
      continue;
    memcpy((char *)ctx + v->opt->offset, v->set ? &v->v : &unset.v,
           field_size(v->opt->type));
  }
}

void atr_optset_diff(const atr_optset_t *old_set, const atr_optset_t *new_set,
                     void (*cb)(void *ud, const atr_optval_t *old_val,
                                const atr_optval_t *new_val),
                     void *ud) {
  size_t n = old_set->n < new_set->n ? old_set->n : new_set->n;
  for (size_t i = 0; i < n; i++) {
    const atr_optval_t *a = &old_set->vals[i], *b = &new_set->vals[i];
    bool same =
        a->set == b->set &&
        (!a->raw || !b->raw ? a->raw == b->raw : !strcmp(a->raw, b->raw));
    if (!same)
      cb(ud, a, b);
  }
}
