/* core/api/api_audit.c — GET /api/v2/audit; see api_audit.h. */
#include "api_audit.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "atrium/error.h"

#define DEFAULT_LIMIT 50
#define MAX_LIMIT ATR_AUDIT_MAX_LIMIT
#define VALUE_MAX 64 /* longest accepted filter value */

/* ---- filter keys ---------------------------------------------------------- */

enum {
  K_ACTION,
  K_RESOURCE_TYPE,
  K_RESOURCE_ID,
  K_USERNAME,
  K_STATUS_CODE,
  K_SINCE,
  K_UNTIL,
  NKEYS
};

static const char *const key_names[NKEYS] = {
    "action",      "resource_type", "resource_id", "username",
    "status_code", "since",         "until"};

#define KEY_LIST                                                               \
  "action, resource_type, resource_id, username, status_code, since, until"

/* Each filter's raw value and where it came from ("q" or the parameter's
 * own name), before validation. */
typedef struct raw {
  char value[NKEYS][VALUE_MAX + 2]; /* one more than accepted: too long */
  const char *source[NKEYS];        /* NULL: not given */
  json_t *validations;
} raw_t;

/* A validation in the field the caller used: a plain parameter's detail is
 * a sentence; a search term's says which key it is about. */
static void invalid(raw_t *raw, const char *source, const char *key,
                    const char *fmt, ...) ATR_PRINTF(4, 5);

static void invalid(raw_t *raw, const char *source, const char *key,
                    const char *fmt, ...) {
  char msg[300], detail[400];
  va_list ap;
  va_start(ap, fmt);
  /* clang-analyzer 14 reports ap as uninitialized here after va_start. */
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  bool term = strcmp(source, "q") == 0;
  if (term && key)
    snprintf(detail, sizeof detail, "%s: %s", key, msg);
  else
    snprintf(detail, sizeof detail, "%c%s", toupper((unsigned char)msg[0]),
             msg + 1);
  json_array_append_new(raw->validations, json_pack("{s:s, s:s}", "field",
                                                    source, "detail", detail));
}

static int key_index(const char *name, size_t len) {
  for (int k = 0; k < NKEYS; k++)
    if (strlen(key_names[k]) == len &&
        strncasecmp(name, key_names[k], len) == 0)
      return k;
  return -1;
}

static void give(raw_t *raw, int k, const char *value, size_t len,
                 const char *source) {
  char v[VALUE_MAX + 2];
  size_t n = len < sizeof v - 1 ? len : sizeof v - 1;
  memcpy(v, value, n);
  v[n] = '\0';
  if (raw->source[k] && strcmp(raw->value[k], v) != 0) {
    invalid(raw, source, key_names[k],
            "is given twice with different values (\"%s\" and \"%s\"); give "
            "it once",
            raw->value[k], v);
    return;
  }
  memcpy(raw->value[k], v, n + 1);
  raw->source[k] = source;
}

/* Coder's search string: `key:value key:"value with spaces"`. */
static void parse_q(raw_t *raw, const char *q) {
  const char *p = q;
  while (*p) {
    while (*p == ' ' || *p == '\t')
      p++;
    if (!*p)
      break;
    const char *key = p;
    while (*p && *p != ' ' && *p != '\t' && *p != ':')
      p++;
    size_t key_len = (size_t)(p - key);
    if (*p != ':') {
      invalid(raw, "q", NULL,
              "\"%.*s\" is not a filter; write key:value terms with a key "
              "among " KEY_LIST,
              (int)(key_len > VALUE_MAX ? VALUE_MAX : key_len), key);
      continue;
    }
    p++;
    const char *value = p;
    if (*p == '"') {
      value = ++p;
      while (*p && *p != '"')
        p++;
    } else {
      while (*p && *p != ' ' && *p != '\t')
        p++;
    }
    size_t value_len = (size_t)(p - value);
    bool unterminated = value > key + key_len + 1 && *p != '"';
    if (*p == '"')
      p++;
    int k = key_index(key, key_len);
    char name[VALUE_MAX + 1];
    snprintf(name, sizeof name, "%.*s",
             (int)(key_len > VALUE_MAX ? VALUE_MAX : key_len), key);
    if (k < 0)
      invalid(raw, "q", NULL,
              "\"%s\" is not a filter key; use one of " KEY_LIST, name);
    else if (unterminated)
      invalid(raw, "q", name, "the quoted value has no closing quote");
    else if (value_len == 0)
      invalid(raw, "q", name, "needs a value, as in %s:value", name);
    else
      give(raw, k, value, value_len, "q");
  }
}

/* ---- values ----------------------------------------------------------------- */

/* Ids that are not UUIDs (API key ids) are matched inside
 * additional_fields, so only characters that need no escaping in JSON. */
static bool is_plain_id(const char *s) {
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
      return false;
  return true;
}

static bool read_digits(const char **p, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (!isdigit((unsigned char)(*p)[i]))
      return false;
    v = v * 10 + ((*p)[i] - '0');
  }
  *p += n;
  *out = v;
  return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

/* The clock part after the date: "hh:mm:ss[.frac](Z|±hh:mm)". A space
 * stands for '+', which an unencoded query string turns into one. */
static bool parse_clock(const char *p, int64_t *us) {
  int h, mi, s, oh = 0, om = 0;
  if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi) ||
      *p++ != ':' || !read_digits(&p, 2, &s) || h > 23 || mi > 59 || s > 60)
    return false;
  int64_t frac = 0, scale = 100000;
  if (*p == '.') {
    if (!isdigit((unsigned char)*++p))
      return false;
    for (; isdigit((unsigned char)*p); p++, scale /= 10)
      frac += scale * (*p - '0');
  }
  int sign = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == ' ' || *p == '-') {
    sign = *p++ == '-' ? -1 : 1;
    if (!read_digits(&p, 2, &oh) || *p++ != ':' || !read_digits(&p, 2, &om) ||
        oh > 23 || om > 59)
      return false;
  } else {
    return false;
  }
  if (*p)
    return false;
  int64_t secs = (int64_t)h * 3600 + (int64_t)mi * 60 + s -
                 (int64_t)sign * (oh * 3600 + om * 60);
  *us = secs * 1000000 + frac;
  return true;
}

/* RFC 3339 to microseconds. A bare date is its first microsecond, or its
 * last when end_of_day (an inclusive "until"). */
static bool parse_time(const char *s, bool end_of_day, int64_t *out) {
  const char *p = s;
  int y, m, d;
  if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &m) ||
      *p++ != '-' || !read_digits(&p, 2, &d) || m < 1 || m > 12 || d < 1 ||
      d > days_in_month(y, m))
    return false;
  int64_t day_us = days_from_civil(y, m, d) * 86400 * INT64_C(1000000);
  if (!*p) {
    *out = day_us + (end_of_day ? 86400 * INT64_C(1000000) - 1 : 0);
    return true;
  }
  if (*p != 'T' && *p != 't' && *p != ' ')
    return false;
  int64_t clock_us = 0;
  if (!parse_clock(p + 1, &clock_us))
    return false;
  *out = day_us + clock_us;
  return true;
}

/* A whole number of 0 or more from a plain parameter; -1 when bad. */
static int64_t whole_number(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 18)
    return -1;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return -1;
  return strtoll(s, NULL, 10);
}

/* ---- parsing the request --------------------------------------------------- */

static void check_text(raw_t *raw, int k, char *dest, size_t size) {
  const char *v = raw->value[k];
  if (strlen(v) > VALUE_MAX)
    invalid(raw, raw->source[k], key_names[k], "must be at most %d characters",
            VALUE_MAX);
  else if (k == K_RESOURCE_ID && !atr_uuid_valid(v) && !is_plain_id(v))
    invalid(raw, raw->source[k], key_names[k],
            "must be a UUID or an id of letters, digits, '-', '_' and '.'; "
            "got \"%s\"",
            v);
  else
    snprintf(dest, size, "%s", v);
}

static void check_values(raw_t *raw, atr_audit_filter_t *f) {
  if (raw->source[K_ACTION])
    check_text(raw, K_ACTION, f->action, sizeof f->action);
  if (raw->source[K_RESOURCE_TYPE])
    check_text(raw, K_RESOURCE_TYPE, f->resource_type, sizeof f->resource_type);
  if (raw->source[K_RESOURCE_ID])
    check_text(raw, K_RESOURCE_ID, f->resource_id, sizeof f->resource_id);
  if (raw->source[K_USERNAME])
    check_text(raw, K_USERNAME, f->username, sizeof f->username);
  if (atr_uuid_valid(f->resource_id))
    for (char *c = f->resource_id; *c; c++)
      *c = (char)tolower((unsigned char)*c);
  if (raw->source[K_STATUS_CODE]) {
    int64_t code = whole_number(raw->value[K_STATUS_CODE]);
    if (code < 100 || code > 599)
      invalid(raw, raw->source[K_STATUS_CODE], "status_code",
              "must be an HTTP status code from 100 to 599; got \"%s\"",
              raw->value[K_STATUS_CODE]);
    f->status_code = (int)code;
  }
  for (int k = K_SINCE; k <= K_UNTIL; k++) {
    if (!raw->source[k])
      continue;
    int64_t *dest = k == K_SINCE ? &f->since_us : &f->until_us;
    bool *has = k == K_SINCE ? &f->has_since : &f->has_until;
    *has = parse_time(raw->value[k], k == K_UNTIL, dest);
    if (!*has)
      invalid(raw, raw->source[k], key_names[k],
              "must be an RFC 3339 time such as 2026-11-26T06:30:00Z or a "
              "date such as 2026-11-26; got \"%s\"",
              raw->value[k]);
  }
  if (f->has_since && f->has_until && f->until_us < f->since_us)
    invalid(raw, raw->source[K_UNTIL], "until",
            "must not be before since (%s); got \"%s\"", raw->value[K_SINCE],
            raw->value[K_UNTIL]);
}

/* limit and offset, plain parameters only. */
static void parse_paging(raw_t *raw, const atr_api_req_t *r,
                         atr_audit_filter_t *f) {
  char buf[32];
  const char *limit = atr_api_query(r, "limit", buf, sizeof buf);
  f->limit = DEFAULT_LIMIT;
  if (limit && *limit) {
    f->limit = whole_number(limit);
    if (f->limit < 0)
      invalid(raw, "limit", NULL,
              "must be a whole number from 0 to %d; got \"%s\"", MAX_LIMIT,
              limit);
    else if (f->limit > MAX_LIMIT)
      f->limit = MAX_LIMIT;
  }
  const char *offset = atr_api_query(r, "offset", buf, sizeof buf);
  f->offset = 0;
  if (offset && *offset) {
    f->offset = whole_number(offset);
    if (f->offset < 0)
      invalid(raw, "offset", NULL,
              "must be a whole number of 0 or more; got \"%s\"", offset);
  }
}

int atr_audit_filter_parse(const atr_api_req_t *r, atr_audit_filter_t *f,
                           json_t **validations) {
  memset(f, 0, sizeof *f);
  raw_t raw = {.validations = json_array()};
  char buf[VALUE_MAX + 2];
  for (int k = 0; k < NKEYS; k++) {
    const char *v = atr_api_query(r, key_names[k], buf, sizeof buf);
    if (v && *v)
      give(&raw, k, v, strlen(v), key_names[k]);
  }
  char q[2048];
  if (atr_api_query(r, "q", q, sizeof q)) {
    if (strlen(q) == sizeof q - 1)
      invalid(&raw, "q", NULL, "must be at most %zu characters", sizeof q - 2);
    else
      parse_q(&raw, q);
  }
  check_values(&raw, f);
  parse_paging(&raw, r, f);
  if (json_array_size(raw.validations) == 0) {
    json_decref(raw.validations);
    *validations = NULL;
    return 0;
  }
  *validations = raw.validations;
  return ATR_EINVAL;
}

/* ---- the handler ------------------------------------------------------------ */

int atr_api_audit_list(atr_api_req_t *r) {
  atr_audit_filter_t f;
  json_t *validations = NULL;
  if (atr_audit_filter_parse(r, &f, &validations) != 0)
    return atr_api_validation(r, "Invalid query parameters.", validations);
  json_t *out = NULL;
  atr_fault_t fault = {0};
  if (atr_audit_list(&r->env->dom, &r->actor, &f, &out, &fault) != 0)
    return atr_api_fault(r, &fault);
  return atr_api_json(r, 200, out);
}
