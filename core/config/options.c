/* core/options.c — option tables resolved against config, env and flags.
 *
 * Reading order: small helpers, value parsers (one per type), command-line
 * overrides, resolution of a table against a section, then the ways a
 * resolved set or a table is shown (fill, JSON, YAML, Markdown, diff).
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

/* ---- helpers ----------------------------------------------------------- */

/* Options allocate only small strings. Running out of memory while reading
 * the configuration leaves nothing sensible to report or fall back to, so it
 * ends the process (Redis's zmalloc makes the same choice) instead of
 * threading ATR_ENOMEM through every formatter below. */
static void out_of_memory(void) {
  fputs("atrium: out of memory while handling options\n", stderr);
  abort();
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    out_of_memory();
  return q;
}

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p)
    out_of_memory();
  return p;
}

static char *xstrdup(const char *s) {
  char *d = strdup(s);
  if (!d)
    out_of_memory();
  return d;
}

static char *xstrndup(const char *s, size_t n) {
  char *d = strndup(s, n);
  if (!d)
    out_of_memory();
  return d;
}

static char *xvfmt(const char *f, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, f, ap) < 0)
    out_of_memory();
  return s;
}

static char *xfmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *xfmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = xvfmt(f, ap);
  va_end(ap);
  return s;
}

static void strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

static char **strv_push(char **v, size_t *n, char *item) {
  v = xrealloc(v, (*n + 2) * sizeof *v);
  v[(*n)++] = item;
  v[*n] = NULL;
  return v;
}

static char *strv_join(char *const *v, const char *sep) {
  size_t len = 1, seplen = strlen(sep);
  for (size_t i = 0; v && v[i]; i++)
    len += strlen(v[i]) + seplen;
  char *out = xcalloc(len, 1), *p = out;
  for (size_t i = 0; v && v[i]; i++)
    p = stpcpy(stpcpy(p, i ? sep : ""), v[i]);
  return out;
}

static bool is_string_type(atr_option_type_t t) {
  return t == ATR_OPT_STRING || t == ATR_OPT_ENUM || t == ATR_OPT_SECRET;
}

static bool in_list(const char *const *list, const char *s) {
  for (size_t i = 0; list && list[i]; i++)
    if (!strcmp(list[i], s))
      return true;
  return false;
}

static char *full_key_of(const char *section, const char *name) {
  return section && *section ? xfmt("%s.%s", section, name) : xstrdup(name);
}

static void optval_clear(atr_optval_t *v) {
  if (v->opt && is_string_type(v->opt->type))
    free(v->v.s);
  else if (v->opt && v->opt->type == ATR_OPT_LIST)
    strv_free(v->v.list);
  free(v->raw);
  free(v->source);
  const atr_option_t *opt = v->opt;
  memset(v, 0, sizeof *v);
  v->opt = opt;
}

const char *atr_option_type_name(atr_option_type_t type) {
  switch (type) {
  case ATR_OPT_STRING:
    return "string";
  case ATR_OPT_INT:
    return "int";
  case ATR_OPT_BOOL:
    return "bool";
  case ATR_OPT_DOUBLE:
    return "double";
  case ATR_OPT_SIZE:
    return "size";
  case ATR_OPT_DURATION:
    return "duration";
  case ATR_OPT_LIST:
    return "list";
  case ATR_OPT_ENUM:
    return "enum";
  case ATR_OPT_SECRET:
    return "secret";
  }
  return "unknown";
}

char *atr_option_env_name(const char *full_key) {
  char *env = xfmt("ATRIUM_%s", full_key);
  for (char *p = env + 7; *p; p++)
    *p = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
  return env;
}

/* ---- value parsers ----------------------------------------------------- */

int atr_parse_bool(const char *text, bool *out) {
  static const char *const yes[] = {"true", "yes", "on", "1"};
  static const char *const no[] = {"false", "no", "off", "0"};
  for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
    if (!strcasecmp(text, yes[i]) || !strcasecmp(text, no[i])) {
      *out = !strcasecmp(text, yes[i]);
      return 0;
    }
  }
  return ATR_EINVAL;
}

/* "12" or "1.5" at *p, without sign or exponent: the whole part exactly (so
 * large byte counts lose nothing to double rounding) and the fraction. */
static int scan_number(const char **p, uint64_t *whole, double *frac) {
  const char *s = *p;
  uint64_t w = 0;
  bool over = false;
  for (; isdigit((unsigned char)*s); s++) {
    unsigned d = (unsigned)(*s - '0');
    over = over || w > (UINT64_MAX - d) / 10;
    w = w * 10 + d;
  }
  if (s == *p)
    return ATR_EINVAL;
  double f = 0, place = 0.1;
  if (*s == '.' && isdigit((unsigned char)s[1]))
    for (s++; isdigit((unsigned char)*s); s++, place /= 10)
      f += (*s - '0') * place;
  *p = s;
  *whole = w;
  *frac = f;
  return over ? ATR_ERANGE : 0;
}

/* whole.frac × mult, rounded to the nearest unit, or ATR_ERANGE. */
static int scale(uint64_t whole, double frac, uint64_t mult, uint64_t *out) {
  if (whole && mult > UINT64_MAX / whole)
    return ATR_ERANGE;
  uint64_t v = whole * mult;
  uint64_t f = (uint64_t)(frac * (double)mult + 0.5);
  if (f > UINT64_MAX - v)
    return ATR_ERANGE;
  *out = v + f;
  return 0;
}

typedef struct unit {
  const char *name;
  uint64_t mult;
} unit_t;

static const unit_t size_units[] = {
    {"", 1},
    {"B", 1},
    {"KB", 1000},
    {"MB", 1000000},
    {"GB", 1000000000},
    {"TB", 1000000000000},
    {"KiB", 1u << 10},
    {"MiB", 1u << 20},
    {"GiB", 1u << 30},
    {"TiB", 1ull << 40},
    {"K", 1u << 10},
    {"M", 1u << 20},
    {"G", 1u << 30},
    {"T", 1ull << 40},
};

int atr_parse_size(const char *text, uint64_t *bytes) {
  const char *p = text;
  uint64_t whole;
  double frac;
  int rc = scan_number(&p, &whole, &frac);
  if (rc == ATR_EINVAL)
    return rc;
  while (*p == ' ')
    p++;
  for (size_t i = 0; i < sizeof size_units / sizeof *size_units; i++) {
    if (!strcasecmp(p, size_units[i].name))
      return rc ? rc : scale(whole, frac, size_units[i].mult, bytes);
  }
  return ATR_EINVAL;
}

static const unit_t duration_units[] = {
    {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000}, {"ms", 1},
};

/* The unit at *p; "ms" is tried before "m". */
static const unit_t *scan_duration_unit(const char **p) {
  if (!strncmp(*p, "ms", 2)) {
    *p += 2;
    return &duration_units[4];
  }
  for (size_t i = 0; i < 4; i++) {
    if (**p == duration_units[i].name[0]) {
      (*p)++;
      return &duration_units[i];
    }
  }
  return NULL;
}

int atr_parse_duration(const char *text, int64_t *ms) {
  if (!strcmp(text, "0")) {
    *ms = 0;
    return 0;
  }
  const char *p = text;
  uint64_t total = 0;
  bool range = false;
  do {
    uint64_t whole, part;
    double frac;
    int rc = scan_number(&p, &whole, &frac);
    const unit_t *u = rc == ATR_EINVAL ? NULL : scan_duration_unit(&p);
    if (!u)
      return ATR_EINVAL;
    range = range || rc || scale(whole, frac, u->mult, &part) ||
            part > (uint64_t)INT64_MAX - total;
    if (!range)
      total += part;
  } while (*p);
  if (range)
    return ATR_ERANGE;
  *ms = (int64_t)total;
  return 0;
}

char *atr_format_size(uint64_t bytes) {
  static const char *const names[] = {"TiB", "GiB", "MiB", "KiB"};
  static const unsigned shifts[] = {40, 30, 20, 10};
  for (size_t i = 0; bytes && i < 4; i++) {
    if (bytes % (1ull << shifts[i]) == 0)
      return xfmt("%" PRIu64 "%s", bytes >> shifts[i], names[i]);
  }
  return xfmt("%" PRIu64 "B", bytes);
}

char *atr_format_duration(int64_t ms) {
  if (ms == 0)
    return xstrdup("0s");
  uint64_t left = ms < 0 ? -(uint64_t)ms : (uint64_t)ms;
  char buf[128];
  size_t n = 0;
  if (ms < 0)
    buf[n++] = '-';
  for (size_t i = 0; i < sizeof duration_units / sizeof *duration_units; i++) {
    uint64_t q = left / duration_units[i].mult;
    left %= duration_units[i].mult;
    if (q)
      n += (size_t)snprintf(buf + n, sizeof buf - n, "%" PRIu64 "%s", q,
                            duration_units[i].name);
  }
  buf[n] = '\0';
  return xstrdup(buf);
}

/* ---- one value of one option ------------------------------------------- */

static int why_fail(char **why, int rc, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static int why_fail(char **why, int rc, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  *why = xvfmt(f, ap);
  va_end(ap);
  return rc;
}

/* Double-to-integer conversions that stay defined for a table that uses a
 * huge bound to mean "no limit". */
static uint64_t clamp_u64(double d) {
  if (d <= 0)
    return 0;
  return d >= 0x1p64 ? UINT64_MAX : (uint64_t)d;
}

static int64_t clamp_i64(double d) {
  if (d <= -0x1p63)
    return INT64_MIN;
  return d >= 0x1p63 ? INT64_MAX : (int64_t)d;
}

/* A bound in the option's own units: "1KiB", "30s", "65535". */
static char *bound_text(const atr_option_t *opt, double b) {
  if (opt->type == ATR_OPT_SIZE)
    return atr_format_size(clamp_u64(b));
  if (opt->type == ATR_OPT_DURATION)
    return atr_format_duration(clamp_i64(b));
  return xfmt("%g", b);
}

static int check_bounds(const atr_option_t *opt, const char *text,
                        const atr_optval_t *val, char **why) {
  double x;
  switch (opt->type) {
  case ATR_OPT_INT:
  case ATR_OPT_DURATION:
    x = (double)val->v.i;
    break;
  case ATR_OPT_DOUBLE:
    x = val->v.d;
    break;
  case ATR_OPT_SIZE:
    x = (double)val->v.u;
    break;
  default:
    return 0;
  }
  if (!(opt->min < opt->max) || (x >= opt->min && x <= opt->max))
    return 0;
  char *lo = bound_text(opt, opt->min), *hi = bound_text(opt, opt->max);
  why_fail(why, ATR_ERANGE,
           "%s is out of range; expected a value between %s and %s", text, lo,
           hi);
  free(lo);
  free(hi);
  return ATR_ERANGE;
}

static int parse_int(const char *text, atr_optval_t *out, char **why) {
  const char *digits = text + (*text == '-' || *text == '+');
  char *end = NULL;
  long long v = 0;
  errno = 0;
  if (isdigit((unsigned char)*digits)) /* strtoll would skip blanks */
    v = strtoll(text, &end, 10);
  if (!end || *end)
    return why_fail(why, ATR_EINVAL,
                    "\"%s\" is not an integer; expected a whole number", text);
  if (errno == ERANGE)
    return why_fail(why, ATR_ERANGE,
                    "%s is out of range; expected a value between %" PRId64
                    " and %" PRId64,
                    text, INT64_MIN, INT64_MAX);
  out->v.i = v;
  return 0;
}

static int parse_double(const char *text, atr_optval_t *out, char **why) {
  char *end;
  errno = 0;
  double d = strtod(text, &end);
  /* strtod also takes hex floats, "nan" and "inf"; a config value should be
   * plain decimal (x, n: hex, nan, inf, infinity). */
  bool numeric = *text && !isspace((unsigned char)*text) && !*end &&
                 strpbrk(text, "0123456789") && !strpbrk(text, "xXnN");
  if (!numeric)
    return why_fail(why, ATR_EINVAL,
                    "\"%s\" is not a number; expected a decimal number such "
                    "as 0.5",
                    text);
  if (!isfinite(d))
    return why_fail(why, ATR_ERANGE,
                    "%s is out of range; expected a value between %g and %g",
                    text, -DBL_MAX, DBL_MAX);
  out->v.d = d;
  return 0;
}

static int parse_size(const char *text, atr_optval_t *out, char **why) {
  int rc = atr_parse_size(text, &out->v.u);
  if (rc == ATR_ERANGE)
    return why_fail(why, rc,
                    "%s is out of range; expected at most %" PRIu64 "B", text,
                    UINT64_MAX);
  if (rc)
    return why_fail(why, rc,
                    "\"%s\" is not a size; expected a number with a unit B, "
                    "KB, KiB, MB, MiB, GB, GiB, TB or TiB (e.g. \"64MiB\")",
                    text);
  return 0;
}

static int parse_duration(const char *text, atr_optval_t *out, char **why) {
  int rc = atr_parse_duration(text, &out->v.i);
  if (rc == ATR_ERANGE) {
    char *max = atr_format_duration(INT64_MAX);
    why_fail(why, rc, "%s is out of range; expected at most %s", text, max);
    free(max);
    return rc;
  }
  if (rc)
    return why_fail(why, rc,
                    "\"%s\" is not a duration; expected a number with a unit "
                    "ms, s, m, h or d (e.g. \"30s\", \"5m\", \"1h30m\")",
                    text);
  return 0;
}

static int parse_enum(const atr_option_t *opt, const char *text,
                      atr_optval_t *out, char **why) {
  if (in_list(opt->choices, text)) {
    out->v.s = xstrdup(text);
    return 0;
  }
  char *choices = strv_join((char *const *)opt->choices, ", ");
  why_fail(why, ATR_EINVAL, "\"%s\" is not allowed; expected one of: %s", text,
           choices);
  free(choices);
  return ATR_EINVAL;
}

/* "a, b,c" → {"a", "b", "c"}; blanks around items and empty items dropped. */
static char **split_list(const char *text) {
  size_t n = 0;
  char **list = xcalloc(1, sizeof *list);
  while (*text) {
    const char *comma = strchr(text, ',');
    const char *end = comma ? comma : text + strlen(text);
    while (text < end && isspace((unsigned char)*text))
      text++;
    const char *last = end;
    while (last > text && isspace((unsigned char)last[-1]))
      last--;
    if (last > text)
      list = strv_push(list, &n, xstrndup(text, (size_t)(last - text)));
    text = comma ? comma + 1 : end;
  }
  return list;
}

static int parse_by_type(const atr_option_t *opt, const char *text,
                         atr_optval_t *out, char **why) {
  switch (opt->type) {
  case ATR_OPT_STRING:
  case ATR_OPT_SECRET:
    out->v.s = xstrdup(text);
    return 0;
  case ATR_OPT_ENUM:
    return parse_enum(opt, text, out, why);
  case ATR_OPT_INT:
    return parse_int(text, out, why);
  case ATR_OPT_BOOL:
    if (!atr_parse_bool(text, &out->v.b))
      return 0;
    return why_fail(why, ATR_EINVAL,
                    "\"%s\" is not a boolean; expected true or false", text);
  case ATR_OPT_DOUBLE:
    return parse_double(text, out, why);
  case ATR_OPT_SIZE:
    return parse_size(text, out, why);
  case ATR_OPT_DURATION:
    return parse_duration(text, out, why);
  case ATR_OPT_LIST:
    out->v.list = split_list(text);
    return 0;
  }
  return why_fail(why, ATR_EINVAL, "option type %d is unknown", opt->type);
}

int atr_option_parse(const atr_option_t *opt, const char *text,
                     atr_optval_t *out, char **why) {
  atr_optval_t val = {.opt = opt};
  *why = NULL;
  int rc = parse_by_type(opt, text, &val, why);
  if (!rc && (rc = check_bounds(opt, text, &val, why)))
    optval_clear(&val);
  if (rc)
    return rc;
  val.set = true;
  val.raw =
      opt->type == ATR_OPT_LIST ? strv_join(val.v.list, ", ") : xstrdup(text);
  out->opt = opt;
  out->set = true;
  out->raw = val.raw;
  out->v = val.v;
  return 0;
}

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
  o->items = xrealloc(o->items, (o->n + 1) * sizeof *o->items);
  o->items[o->n++] = (atr_override_t){.key = key, .value = xstrdup(value)};
}

int atr_overrides_from_argv(int argc, char **argv, atr_overrides_t *out,
                            char ***rest, int *nrest, char **err) {
  char **kept = xcalloc((size_t)argc + 1, sizeof *kept);
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
    char *key = eq ? xstrndup(arg, (size_t)(eq - arg)) : xstrdup(arg);
    if (!eq && (i + 1 >= argc || !strncmp(argv[i + 1], "--", 2))) {
      *err = xfmt("flag --%s needs a value: write --%s=VALUE or --%s VALUE",
                  key, key, key);
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
  return xfmt("%s:%d:%d", n->file, n->line, n->col);
}

/* "<where>: <section.name>: <why>" into *err. */
static int fail(resolver_t *r, const char *where, const char *name,
                const char *f, ...) __attribute__((format(printf, 4, 5)));
static int fail(resolver_t *r, const char *where, const char *name,
                const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *why = xvfmt(f, ap);
  va_end(ap);
  char *key = full_key_of(r->set->section, name);
  *r->err = xfmt("%s: %s: %s", where, key, why);
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
  char *names = xstrdup("");
  for (size_t i = 0; r->set->table[i].name; i++) {
    char *more = xfmt("%s%s%s", names, i ? ", " : "", r->set->table[i].name);
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
  char *prefix = xfmt("%s.", name);
  int rc = walk_map(r, n, prefix);
  free(prefix);
  return rc;
}

static int walk_map(resolver_t *r, const atr_conf_node_t *map,
                    const char *prefix) {
  for (size_t i = 0; i < map->nchildren; i++) {
    const atr_conf_node_t *n = map->children[i];
    if (!*prefix &&
        (in_list(r->reserved, n->key) || in_list(r->skip_maps, n->key)))
      continue;
    char *name = xfmt("%s%s", prefix, n->key);
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
    *r->err = xfmt("%s: %s: expected a map of options, not a %s", where,
                   section, n->type == ATR_CONF_SEQ ? "list" : "single value");
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
  out->source = xstrdup(where);
  return 0;
}

static int list_from_seq(resolver_t *r, atr_optval_t *out,
                         const atr_conf_node_t *seq) {
  size_t n = 0;
  char **list = xcalloc(1, sizeof *list);
  for (size_t i = 0; i < seq->nchildren; i++) {
    const atr_conf_node_t *item = seq->children[i];
    if (item->type != ATR_CONF_SCALAR) {
      strv_free(list);
      return fail_node(r, item, out->opt->name,
                       "list items must be single values, not maps or lists");
    }
    list = strv_push(list, &n, xstrdup(item->value));
  }
  out->set = true;
  out->v.list = list;
  out->raw = strv_join(list, ", ");
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
  char *where = r->section ? node_where(r->section)
                           : xstrdup(r->root ? r->root->file : "config");
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
    char *where = xfmt("flag --%s", key);
    rc = value_from_text(r, val, flag, where);
    free(where);
  } else if (env) {
    char *where = xfmt("environment %s", env_name);
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
  char *key = full_key_of(r->set->section, val->opt->name);
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
                        .section = xstrdup(section ? section : "")};
  while (table[set->n].name)
    set->n++;
  set->vals = xcalloc(set->n, sizeof *set->vals);
  for (size_t i = 0; i < set->n; i++)
    set->vals[i].opt = &table[i];
  resolver_t r = {.set = set,
                  .root = root,
                  .reserved = reserved,
                  .skip_maps = skip_maps,
                  .flags = flags,
                  .env = env,
                  .err = err};
  r.found = xcalloc(set->n, sizeof *r.found);
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
    optval_clear(&set->vals[i]);
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

const char *atr_optval_display(const atr_optval_t *val) {
  if (!val || !val->set)
    return "(unset)";
  if (val->opt && val->opt->type == ATR_OPT_SECRET)
    return "(redacted)";
  return val->raw ? val->raw : "";
}

/* json_string() refuses invalid UTF-8, which an environment value may be. */
static json_t *jstr(const char *s) {
  json_t *j = s ? json_string(s) : NULL;
  return j ? j : json_null();
}

static json_t *value_json(const atr_optval_t *v) {
  if (!v->set)
    return json_null();
  switch (v->opt->type) {
  case ATR_OPT_STRING:
  case ATR_OPT_ENUM:
    return jstr(v->v.s);
  case ATR_OPT_SECRET:
    return json_string("(redacted)");
  case ATR_OPT_INT:
  case ATR_OPT_DURATION:
    return json_integer(v->v.i);
  case ATR_OPT_BOOL:
    return json_boolean(v->v.b);
  case ATR_OPT_DOUBLE:
    return json_real(v->v.d);
  case ATR_OPT_SIZE: /* json_int_t is signed: beyond it, keep the text */
    return v->v.u <= INT64_MAX ? json_integer((json_int_t)v->v.u)
                               : jstr(v->raw);
  case ATR_OPT_LIST: {
    json_t *a = json_array();
    for (size_t i = 0; v->v.list[i]; i++)
      json_array_append_new(a, jstr(v->v.list[i]));
    return a;
  }
  }
  return json_null();
}

json_t *atr_optset_to_json(const atr_optset_t *set) {
  json_t *obj = json_object();
  for (size_t i = 0; i < set->n; i++) {
    const atr_optval_t *v = &set->vals[i];
    json_object_set_new(obj, v->opt->name,
                        json_pack("{s:o, s:o}", "value", value_json(v),
                                  "source", jstr(v->source)));
  }
  return obj;
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

/* ---- YAML output -------------------------------------------------------- */

/* Could `s` be written unquoted and read back as the same string? Kept
 * conservative: anything unusual is quoted. */
static bool yaml_plain_ok(const char *s) {
  static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
  size_t len = strlen(s);
  if (!len || in_list(nulls, s) || isspace((unsigned char)s[0]) ||
      isspace((unsigned char)s[len - 1]) || s[len - 1] == ':')
    return false;
  if (strchr("?:!&*|>'\"%@`", s[0]) ||
      (s[0] == '-' && !isdigit((unsigned char)s[1])))
    return false;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    if (*p < 0x20 || *p == 0x7f || strchr(",[]{}#\\", *p) ||
        (*p == ':' && p[1] == ' '))
      return false;
  return true;
}

static void yaml_scalar(const char *s, FILE *out) {
  if (yaml_plain_ok(s)) {
    fputs(s, out);
    return;
  }
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f)
      fprintf(out, "\\x%02x", *p);
    else
      fputc(*p, out);
  }
  fputc('"', out);
}

static void yaml_value(const atr_optval_t *v, FILE *out) {
  if (!v->set) {
    fputs("~", out);
  } else if (v->opt->type == ATR_OPT_SECRET) {
    fputs("(redacted)", out);
  } else if (v->opt->type == ATR_OPT_LIST) {
    fputc('[', out);
    for (size_t i = 0; v->v.list[i]; i++) {
      fputs(i ? ", " : "", out);
      yaml_scalar(v->v.list[i], out);
    }
    fputc(']', out);
  } else {
    yaml_scalar(v->raw, out);
  }
}

/* Was the map `prefix` + `part` + "." already opened by an earlier option? */
static bool opened_before(const atr_optset_t *set, size_t before,
                          const char *head, size_t headlen) {
  for (size_t j = 0; j < before; j++)
    if (!strncmp(set->vals[j].opt->name, head, headlen))
      return true;
  return false;
}

/* Every option under `prefix` (e.g. "http."), nested by its dots, in table
 * order; a map is written once, where its first option appears. */
static void write_level(const atr_optset_t *set, const char *prefix, int indent,
                        FILE *out) {
  size_t plen = strlen(prefix);
  for (size_t i = 0; i < set->n; i++) {
    const atr_optval_t *v = &set->vals[i];
    const char *name = v->opt->name;
    if (strncmp(name, prefix, plen) != 0)
      continue;
    const char *rest = name + plen, *dot = strchr(rest, '.');
    if (!dot) {
      fprintf(out, "%*s%s: ", indent, "", rest);
      yaml_value(v, out);
      fprintf(out, "  # %s\n", v->source ? v->source : "not set");
      continue;
    }
    size_t headlen = (size_t)(dot - name) + 1; /* "http." */
    if (opened_before(set, i, name, headlen))
      continue;
    char *sub = xstrndup(name, headlen);
    fprintf(out, "%*s%.*s:\n", indent, "", (int)(dot - rest), rest);
    write_level(set, sub, indent + 2, out);
    free(sub);
  }
}

void atr_optset_write_yaml(const atr_optset_t *set, int indent, FILE *out) {
  write_level(set, "", indent, out);
}

/* ---- describing a table ------------------------------------------------- */

static bool bounded(const atr_option_t *opt) {
  return opt->min < opt->max &&
         (opt->type == ATR_OPT_INT || opt->type == ATR_OPT_DOUBLE ||
          opt->type == ATR_OPT_SIZE || opt->type == ATR_OPT_DURATION);
}

/* Whole bounds as JSON integers, so 65535 is not shown as 65535.0. */
static json_t *number_json(double d) {
  if (d == floor(d) && fabs(d) < 9e15)
    return json_integer((json_int_t)d);
  return json_real(d);
}

/* A secret's default is still a secret (it may be a shared dev token). */
static const char *shown_default(const atr_option_t *opt) {
  if (!opt->default_value)
    return NULL;
  return opt->type == ATR_OPT_SECRET ? "(secret)" : opt->default_value;
}

static json_t *describe_one(const atr_option_t *opt, const char *section) {
  char *key = full_key_of(section, opt->name);
  char *env = atr_option_env_name(key);
  json_t *o = json_pack(
      "{s:s, s:s, s:o, s:b, s:b, s:b, s:b, s:o, s:o}", "name", opt->name,
      "type", atr_option_type_name(opt->type), "default",
      jstr(shown_default(opt)), "required", !!(opt->flags & ATR_OPT_REQUIRED),
      "reloadable", !!(opt->flags & ATR_OPT_RELOADABLE), "deprecated",
      !!(opt->flags & ATR_OPT_DEPRECATED), "secret",
      opt->type == ATR_OPT_SECRET, "description",
      jstr(opt->description ? opt->description : ""), "env", jstr(env));
  if (opt->type == ATR_OPT_ENUM) {
    json_t *choices = json_array();
    for (size_t i = 0; opt->choices && opt->choices[i]; i++)
      json_array_append_new(choices, jstr(opt->choices[i]));
    json_object_set_new(o, "choices", choices);
  }
  if (bounded(opt)) {
    json_object_set_new(o, "min", number_json(opt->min));
    json_object_set_new(o, "max", number_json(opt->max));
  }
  free(key);
  free(env);
  return o;
}

json_t *atr_options_describe_json(const atr_option_t *table,
                                  const char *section) {
  json_t *a = json_array();
  for (size_t i = 0; table[i].name; i++)
    json_array_append_new(a, describe_one(&table[i], section));
  return a;
}

/* A table cell: a '|' would end the cell and a newline the row. */
static void md_cell(const char *s, FILE *out) {
  for (; *s; s++) {
    if (*s == '|')
      fputs("\\|", out);
    else
      fputc(*s == '\n' ? ' ' : *s, out);
  }
}

static void md_description(const atr_option_t *opt, FILE *out) {
  md_cell(opt->description ? opt->description : "", out);
  if (opt->type == ATR_OPT_ENUM) {
    fputs(" One of:", out);
    for (size_t i = 0; opt->choices && opt->choices[i]; i++) {
      fputs(i ? ", `" : " `", out);
      md_cell(opt->choices[i], out);
      fputc('`', out);
    }
    fputc('.', out);
  }
  if (bounded(opt)) {
    char *lo = bound_text(opt, opt->min), *hi = bound_text(opt, opt->max);
    fprintf(out, " Between %s and %s.", lo, hi);
    free(lo);
    free(hi);
  }
  static const struct {
    uint32_t flag;
    const char *word;
  } marks[] = {
      {ATR_OPT_REQUIRED, "required"},
      {ATR_OPT_RELOADABLE, "reloadable"},
      {ATR_OPT_DEPRECATED, "deprecated"},
  };
  for (size_t i = 0; i < sizeof marks / sizeof *marks; i++)
    if (opt->flags & marks[i].flag)
      fprintf(out, " *%s*", marks[i].word);
}

static void md_row(const atr_option_t *opt, const char *section, FILE *out) {
  char *key = full_key_of(section, opt->name);
  char *env = atr_option_env_name(key);
  const char *def = shown_default(opt);
  fputs("| `", out);
  md_cell(key, out);
  fprintf(out, "` | %s | ", atr_option_type_name(opt->type));
  if (def && opt->type == ATR_OPT_SECRET) {
    fputs(def, out);
  } else if (def) { /* an empty default shown as what it means */
    fputc('`', out);
    md_cell(*def ? def : opt->type == ATR_OPT_LIST ? "[]" : "\"\"", out);
    fputc('`', out);
  }
  fprintf(out, " | `%s` | ", env);
  md_description(opt, out);
  fputs(" |\n", out);
  free(key);
  free(env);
}

void atr_options_write_markdown(const atr_option_t *table, const char *section,
                                FILE *out) {
  fputs("| Option | Type | Default | Env | Description |\n"
        "| --- | --- | --- | --- | --- |\n",
        out);
  for (size_t i = 0; table[i].name; i++)
    md_row(&table[i], section, out);
}
