/* core/config/option_values.c — one typed value: parsing text as an
 * option's type (with its bounds and choices), formatting sizes and
 * durations back, and the small allocation helpers every options file
 * shares (options_internal.h).
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

/* ---- helpers ----------------------------------------------------------- */

/* Options allocate only small strings. Running out of memory while reading
 * the configuration leaves nothing sensible to report or fall back to, so it
 * ends the process (Redis's zmalloc makes the same choice) instead of
 * threading ATR_ENOMEM through every formatter below. */
void atr__opt_oom(void) {
  fputs("atrium: out of memory while handling options\n", stderr);
  abort();
}

void *atr__opt_realloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q)
    atr__opt_oom();
  return q;
}

void *atr__opt_calloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p)
    atr__opt_oom();
  return p;
}

char *atr__opt_strdup(const char *s) {
  char *d = strdup(s);
  if (!d)
    atr__opt_oom();
  return d;
}

char *atr__opt_strndup(const char *s, size_t n) {
  char *d = strndup(s, n);
  if (!d)
    atr__opt_oom();
  return d;
}

char *atr__opt_vfmt(const char *f, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, f, ap) < 0)
    atr__opt_oom();
  return s;
}

char *atr__opt_fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = atr__opt_vfmt(f, ap);
  va_end(ap);
  return s;
}

void atr__opt_strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++)
    free(v[i]);
  free(v);
}

char **atr__opt_strv_push(char **v, size_t *n, char *item) {
  v = atr__opt_realloc(v, (*n + 2) * sizeof *v);
  v[(*n)++] = item;
  v[*n] = NULL;
  return v;
}

char *atr__opt_strv_join(char *const *v, const char *sep) {
  size_t len = 1, seplen = strlen(sep);
  for (size_t i = 0; v && v[i]; i++)
    len += strlen(v[i]) + seplen;
  char *out = atr__opt_calloc(len, 1), *p = out;
  for (size_t i = 0; v && v[i]; i++)
    p = stpcpy(stpcpy(p, i ? sep : ""), v[i]);
  return out;
}

bool atr__opt_is_string(atr_option_type_t t) {
  return t == ATR_OPT_STRING || t == ATR_OPT_ENUM || t == ATR_OPT_SECRET;
}

bool atr__opt_in_list(const char *const *list, const char *s) {
  for (size_t i = 0; list && list[i]; i++)
    if (!strcmp(list[i], s))
      return true;
  return false;
}

char *atr__opt_full_key(const char *section, const char *name) {
  return section && *section ? atr__opt_fmt("%s.%s", section, name)
                             : atr__opt_strdup(name);
}

void atr__optval_clear(atr_optval_t *v) {
  if (v->opt && atr__opt_is_string(v->opt->type))
    free(v->v.s);
  else if (v->opt && v->opt->type == ATR_OPT_LIST)
    atr__opt_strv_free(v->v.list);
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
  char *env = atr__opt_fmt("ATRIUM_%s", full_key);
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
      return atr__opt_fmt("%" PRIu64 "%s", bytes >> shifts[i], names[i]);
  }
  return atr__opt_fmt("%" PRIu64 "B", bytes);
}

char *atr_format_duration(int64_t ms) {
  if (ms == 0)
    return atr__opt_strdup("0s");
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
  return atr__opt_strdup(buf);
}

/* ---- one value of one option ------------------------------------------- */

static int why_fail(char **why, int rc, const char *f, ...)
    __attribute__((format(printf, 3, 4)));
static int why_fail(char **why, int rc, const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  *why = atr__opt_vfmt(f, ap);
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

/* See options_internal.h. */
char *atr__opt_bound_text(const atr_option_t *opt, double b) {
  if (opt->type == ATR_OPT_SIZE)
    return atr_format_size(clamp_u64(b));
  if (opt->type == ATR_OPT_DURATION)
    return atr_format_duration(clamp_i64(b));
  return atr__opt_fmt("%g", b);
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
  char *lo = atr__opt_bound_text(opt, opt->min),
       *hi = atr__opt_bound_text(opt, opt->max);
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
  if (atr__opt_in_list(opt->choices, text)) {
    out->v.s = atr__opt_strdup(text);
    return 0;
  }
  char *choices = atr__opt_strv_join((char *const *)opt->choices, ", ");
  why_fail(why, ATR_EINVAL, "\"%s\" is not allowed; expected one of: %s", text,
           choices);
  free(choices);
  return ATR_EINVAL;
}

/* "a, b,c" → {"a", "b", "c"}; blanks around items and empty items dropped. */
static char **split_list(const char *text) {
  size_t n = 0;
  char **list = atr__opt_calloc(1, sizeof *list);
  while (*text) {
    const char *comma = strchr(text, ',');
    const char *end = comma ? comma : text + strlen(text);
    while (text < end && isspace((unsigned char)*text))
      text++;
    const char *last = end;
    while (last > text && isspace((unsigned char)last[-1]))
      last--;
    if (last > text)
      list = atr__opt_strv_push(list, &n,
                                atr__opt_strndup(text, (size_t)(last - text)));
    text = comma ? comma + 1 : end;
  }
  return list;
}

static int parse_by_type(const atr_option_t *opt, const char *text,
                         atr_optval_t *out, char **why) {
  switch (opt->type) {
  case ATR_OPT_STRING:
  case ATR_OPT_SECRET:
    out->v.s = atr__opt_strdup(text);
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
    atr__optval_clear(&val);
  if (rc)
    return rc;
  val.set = true;
  val.raw = opt->type == ATR_OPT_LIST ? atr__opt_strv_join(val.v.list, ", ")
                                      : atr__opt_strdup(text);
  out->opt = opt;
  out->set = true;
  out->raw = val.raw;
  out->v = val.v;
  return 0;
}
