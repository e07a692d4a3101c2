/* storage_sqlite: atr_value_t parameters in, typed column values out.
 *
 * SQLite stores what the portable types mean like this:
 *   BIGINT, BOOLEAN   INTEGER (booleans as 0 and 1)
 *   DOUBLE PRECISION  REAL
 *   TEXT, UUID        TEXT
 *   BYTEA             BLOB
 *   TIMESTAMPTZ       TEXT "2026-11-26T06:50:00.123456Z": RFC 3339, UTC,
 *                     always six fraction digits, so that comparing the text
 *                     compares the times and an index orders them.
 * Reading converts back to what the caller wants; anything that does not fit
 * is ATR_EINVAL rather than a silent guess.
 *
 * Threads: pure functions over a statement the caller owns; any thread.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define US_PER_SEC INT64_C(1000000)
#define SEC_PER_DAY INT64_C(86400)

/* Days since 1970-01-01 of a proleptic Gregorian date, and back (Howard
 * Hinnant's algorithms; exact for every year in 0000..9999). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int64_t m) {
  static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : days[m - 1];
}

int ss_time_format(int64_t time_us, char out[SS_TIME_LEN]) {
  int64_t secs = time_us / US_PER_SEC, us = time_us % US_PER_SEC;
  if (us < 0) {
    us += US_PER_SEC;
    secs--;
  }
  int64_t days = secs / SEC_PER_DAY, sod = secs % SEC_PER_DAY;
  if (sod < 0) {
    sod += SEC_PER_DAY;
    days--;
  }
  int64_t y, m, d;
  civil_from_days(days, &y, &m, &d);
  if (y < 0 || y > 9999)
    return ATR_EINVAL;
  char buf[128]; /* the compiler cannot see that every field is small */
  snprintf(buf, sizeof buf,
           "%04" PRId64 "-%02" PRId64 "-%02" PRId64 "T%02" PRId64 ":%02" PRId64
           ":%02" PRId64 ".%06" PRId64 "Z",
           y, m, d, sod / 3600, sod / 60 % 60, sod % 60, us);
  memcpy(out, buf, SS_TIME_LEN);
  return 0;
}

/* n decimal digits at *p into *out; advances *p. */
static bool digits(const char **p, const char *end, int n, int64_t *out) {
  int64_t v = 0;
  for (int i = 0; i < n; i++, (*p)++) {
    if (*p >= end || **p < '0' || **p > '9')
      return false;
    v = v * 10 + (**p - '0');
  }
  *out = v;
  return true;
}

static bool expect(const char **p, const char *end, char c) {
  if (*p >= end || **p != c)
    return false;
  (*p)++;
  return true;
}

/* Fraction digits after '.', as microseconds (beyond six are dropped). */
static bool fraction(const char **p, const char *end, int64_t *us) {
  int n = 0;
  *us = 0;
  for (; *p < end && **p >= '0' && **p <= '9'; (*p)++, n++)
    if (n < 6)
      *us = *us * 10 + (**p - '0');
  if (n == 0 || n > 9)
    return false;
  for (int i = n; i < 6; i++)
    *us *= 10;
  return true;
}

/* "Z", "z", "+HH:MM", "-HH:MM" or nothing (UTC), as seconds east of UTC. */
static bool zone(const char **p, const char *end, int64_t *offset) {
  *offset = 0;
  if (*p == end)
    return true;
  if (**p == 'Z' || **p == 'z') {
    (*p)++;
    return true;
  }
  int64_t sign = **p == '+' ? 1 : **p == '-' ? -1 : 0, hh, mm;
  if (sign == 0)
    return false;
  (*p)++;
  if (!digits(p, end, 2, &hh) || !expect(p, end, ':') ||
      !digits(p, end, 2, &mm) || hh > 23 || mm > 59)
    return false;
  *offset = sign * (hh * 3600 + mm * 60);
  return true;
}

/* The format ss_time_format writes, and what other writers of RFC 3339 (or
 * SQLite's own CURRENT_TIMESTAMP, with a space and no zone) produce. */
int ss_time_parse(const char *s, size_t len, int64_t *time_us) {
  const char *p = s, *end = s + len;
  int64_t y, mo, d, h, mi, sec, us = 0, offset;
  if (!digits(&p, end, 4, &y) || !expect(&p, end, '-') ||
      !digits(&p, end, 2, &mo) || !expect(&p, end, '-') ||
      !digits(&p, end, 2, &d))
    return ATR_EINVAL;
  if (p >= end || (*p != 'T' && *p != 't' && *p != ' '))
    return ATR_EINVAL;
  p++;
  if (!digits(&p, end, 2, &h) || !expect(&p, end, ':') ||
      !digits(&p, end, 2, &mi) || !expect(&p, end, ':') ||
      !digits(&p, end, 2, &sec))
    return ATR_EINVAL;
  if (p < end && *p == '.' && (p++, !fraction(&p, end, &us)))
    return ATR_EINVAL;
  if (!zone(&p, end, &offset) || p != end)
    return ATR_EINVAL;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
      mi > 59 || sec > 59)
    return ATR_EINVAL;
  int64_t secs = days_from_civil(y, mo, d) * SEC_PER_DAY + h * 3600 + mi * 60 +
                 sec - offset;
  *time_us = secs * US_PER_SEC + us;
  return 0;
}

static const char *type_name(atr_value_type_t t) {
  static const char *const names[] = {"NULL", "INT",  "DOUBLE", "BOOL",
                                      "TEXT", "BLOB", "TIME"};
  return (unsigned)t < sizeof(names) / sizeof(names[0]) ? names[t] : "unknown";
}

static int bind_one(sqlite3_stmt *st, int i, const atr_value_t *v, bool copy,
                    char **err) {
  sqlite3_destructor_type how = copy ? SQLITE_TRANSIENT : SQLITE_STATIC;
  const void *ptr = v->v.bytes.ptr ? v->v.bytes.ptr : ""; /* empty, not NULL */
  char when[SS_TIME_LEN];
  if ((v->type == ATR_VAL_TEXT || v->type == ATR_VAL_BLOB) &&
      v->v.bytes.ptr == NULL && v->v.bytes.len > 0)
    return ss_failf(err, ATR_EINVAL,
                    "parameter %d: %zu bytes of %s at a NULL pointer", i,
                    v->v.bytes.len, type_name(v->type));
  switch (v->type) {
  case ATR_VAL_NULL:
    return sqlite3_bind_null(st, i);
  case ATR_VAL_INT:
    return sqlite3_bind_int64(st, i, v->v.i);
  case ATR_VAL_DOUBLE:
    return sqlite3_bind_double(st, i, v->v.d);
  case ATR_VAL_BOOL:
    return sqlite3_bind_int(st, i, v->v.b != 0);
  case ATR_VAL_TEXT:
    return sqlite3_bind_text64(st, i, ptr, v->v.bytes.len, how, SQLITE_UTF8);
  case ATR_VAL_BLOB:
    return sqlite3_bind_blob64(st, i, ptr, v->v.bytes.len, how);
  case ATR_VAL_TIME:
    if (ss_time_format(v->v.time_us, when) != 0)
      return ss_failf(err, ATR_EINVAL,
                      "parameter %d: time %" PRId64
                      " us is outside the years 0000 to 9999",
                      i, v->v.time_us);
    return sqlite3_bind_text(st, i, when, -1, SQLITE_TRANSIENT);
  }
  return ss_failf(err, ATR_EINVAL,
                  "parameter %d has unknown type %d; expected an "
                  "atr_value_type_t",
                  i, (int)v->type);
}

int ss_bind(sqlite3_stmt *st, const atr_value_t *params, size_t nparams,
            bool copy, char **err) {
  int expected = sqlite3_bind_parameter_count(st);
  if ((size_t)expected != nparams)
    return ss_failf(err, ATR_EINVAL,
                    "the statement has %d parameter%s but %zu value%s given",
                    expected, expected == 1 ? "" : "s", nparams,
                    nparams == 1 ? " was" : "s were");
  for (size_t i = 0; i < nparams; i++) {
    int rc = bind_one(st, (int)i + 1, &params[i], copy, err);
    if (rc < 0)
      return rc; /* our own refusal, *err already set */
    if (rc != SQLITE_OK) {
      char prefix[64];
      snprintf(prefix, sizeof prefix, "parameter %zu (%s): ", i + 1,
               type_name(params[i].type));
      return ss_fail_db(err, sqlite3_db_handle(st), rc, false, prefix);
    }
  }
  return 0;
}

/* A whole TEXT value that is a decimal int64. */
static bool text_int(const char *s, size_t len, int64_t *out) {
  size_t i = 0;
  bool neg = len > 0 && s[0] == '-';
  if (len > 0 && (s[0] == '-' || s[0] == '+'))
    i = 1;
  if (i == len)
    return false;
  uint64_t v = 0, limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9')
      return false;
    unsigned digit = (unsigned)(s[i] - '0');
    if (v > (limit - digit) / 10)
      return false;
    v = v * 10 + digit;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

static int column_bytes(sqlite3_stmt *st, int col, int type,
                        atr_value_type_t want, atr_value_t *out) {
  if (type != SQLITE_TEXT && !(want == ATR_VAL_BLOB && type == SQLITE_BLOB))
    return ATR_EINVAL;
  const void *p = want == ATR_VAL_TEXT
                      ? (const void *)sqlite3_column_text(st, col)
                      : sqlite3_column_blob(st, col);
  size_t len = (size_t)sqlite3_column_bytes(st, col);
  out->type = want;
  out->v.bytes.ptr = p ? p : ""; /* an empty value is not a NULL one */
  out->v.bytes.len = len;
  return 0;
}

int ss_column(sqlite3_stmt *st, size_t col, atr_value_type_t want,
              atr_value_t *out) {
  if (col >= (size_t)sqlite3_column_count(st))
    return ATR_EINVAL;
  int c = (int)col, type = sqlite3_column_type(st, c);
  if (type == SQLITE_NULL) {
    out->type = ATR_VAL_NULL;
    return 0;
  }
  int64_t i;
  switch (want) {
  case ATR_VAL_INT:
    if (type == SQLITE_INTEGER)
      i = sqlite3_column_int64(st, c);
    else if (type != SQLITE_TEXT ||
             !text_int((const char *)sqlite3_column_text(st, c),
                       (size_t)sqlite3_column_bytes(st, c), &i))
      return ATR_EINVAL;
    out->type = ATR_VAL_INT;
    out->v.i = i;
    return 0;
  case ATR_VAL_BOOL:
    i = type == SQLITE_INTEGER ? sqlite3_column_int64(st, c) : -1;
    if (i != 0 && i != 1)
      return ATR_EINVAL;
    out->type = ATR_VAL_BOOL;
    out->v.b = (int)i;
    return 0;
  case ATR_VAL_DOUBLE:
    if (type != SQLITE_FLOAT && type != SQLITE_INTEGER)
      return ATR_EINVAL;
    out->type = ATR_VAL_DOUBLE;
    out->v.d = sqlite3_column_double(st, c);
    return 0;
  case ATR_VAL_TIME:
    if (type != SQLITE_TEXT ||
        ss_time_parse((const char *)sqlite3_column_text(st, c),
                      (size_t)sqlite3_column_bytes(st, c), &i) != 0)
      return ATR_EINVAL;
    out->type = ATR_VAL_TIME;
    out->v.time_us = i;
    return 0;
  case ATR_VAL_TEXT:
  case ATR_VAL_BLOB:
    return column_bytes(st, c, type, want, out);
  case ATR_VAL_NULL:
    break;
  }
  return ATR_EINVAL;
}
