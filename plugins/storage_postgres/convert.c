/* convert.c — values between atrium and PostgreSQL's text formats.
 *
 * Parameters go out as text (blobs as binary) and results come back as
 * text, so these functions are the whole type mapping. Sessions run with
 * TimeZone UTC, DateStyle ISO, bytea_output hex and extra_float_digits 1
 * (pool.c), which makes every conversion here exact: times to the
 * microsecond, doubles to the last bit.
 *
 * Dates use the proleptic Gregorian calendar, converted with Howard
 * Hinnant's days_from_civil/civil_from_days, so neither the process's TZ
 * nor timegm() is involved.
 *
 * Threads: pure functions.
 */
#include "storage_postgres.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define US_PER_S 1000000LL
#define S_PER_DAY 86400LL

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = (unsigned)(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = (unsigned)(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void spg_format_time(int64_t time_us, char *buf, size_t size) {
  int64_t secs = time_us / US_PER_S, frac = time_us % US_PER_S;
  if (frac < 0) {
    frac += US_PER_S;
    secs--;
  }
  int64_t days = secs / S_PER_DAY, sod = secs % S_PER_DAY;
  if (sod < 0) {
    sod += S_PER_DAY;
    days--;
  }
  int64_t y;
  unsigned m, d;
  civil_from_days(days, &y, &m, &d);
  bool bc = y <= 0; /* year 0 is 1 BC */
  snprintf(buf, size, "%04lld-%02u-%02uT%02d:%02d:%02d.%06lldZ%s",
           (long long)(bc ? 1 - y : y), m, d, (int)(sod / 3600),
           (int)(sod / 60 % 60), (int)(sod % 60), (long long)frac,
           bc ? " BC" : "");
}

/* Exactly `n` digits (n > 0) at *p, advancing it. */
static bool digits(const char **p, int n, int *out) {
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

/* "+05", "+05:30", "-0330", "+05:30:15", "Z" → seconds east of UTC. */
static bool zone(const char **p, int64_t *offset) {
  if (**p == 'Z' || **p == 'z') {
    (*p)++;
    *offset = 0;
    return true;
  }
  if (**p != '+' && **p != '-') {
    *offset = 0; /* no zone: a timestamp without one is taken as UTC */
    return true;
  }
  int sign = **p == '-' ? -1 : 1, h = 0, mi = 0, s = 0;
  (*p)++;
  if (!digits(p, 2, &h))
    return false;
  if (**p == ':')
    (*p)++;
  if (isdigit((unsigned char)**p) && !digits(p, 2, &mi))
    return false;
  if (**p == ':')
    (*p)++;
  if (isdigit((unsigned char)**p) && !digits(p, 2, &s))
    return false;
  *offset = sign * (h * 3600LL + mi * 60LL + s);
  return true;
}

int spg_parse_time(const char *text, int64_t *out) {
  const char *p = text;
  while (*p == ' ')
    p++;
  int64_t year = 0;
  int ndig = 0;
  for (; isdigit((unsigned char)*p) && ndig < 7; p++, ndig++)
    year = year * 10 + (*p - '0');
  int mon = 0, day = 0, h = 0, mi = 0, s = 0;
  if (ndig < 4 || *p++ != '-' || !digits(&p, 2, &mon) || *p++ != '-' ||
      !digits(&p, 2, &day))
    return ATR_EINVAL;
  int64_t frac = 0, offset = 0;
  if (*p == ' ' || *p == 'T' || *p == 't') {
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi) ||
        *p++ != ':' || !digits(&p, 2, &s))
      return ATR_EINVAL;
    if (*p == '.') {
      p++;
      int n = 0;
      for (; isdigit((unsigned char)*p); p++, n++)
        if (n < 6)
          frac = frac * 10 + (*p - '0');
      if (n == 0)
        return ATR_EINVAL;
      for (; n < 6; n++)
        frac *= 10;
    }
    if (!zone(&p, &offset))
      return ATR_EINVAL;
  }
  if (strcmp(p, " BC") == 0) {
    year = 1 - year;
    p += 3;
  }
  if (*p != '\0' || mon < 1 || mon > 12 || day < 1 || day > 31 || h > 24 ||
      mi > 59 || s > 60)
    return ATR_EINVAL;
  int64_t days = days_from_civil(year, (unsigned)mon, (unsigned)day);
  int64_t secs = days * S_PER_DAY + h * 3600LL + mi * 60LL + s - offset;
  *out = secs * US_PER_S + frac;
  return 0;
}

int spg_parse_int(const char *text, int64_t *out) {
  char *end = NULL;
  errno = 0;
  long long v = strtoll(text, &end, 10);
  if (end == text || errno != 0)
    return ATR_EINVAL;
  const char *rest = end;
  if (*rest == '.') { /* numeric with a scale: "12.000" */
    rest++;
    while (*rest == '0')
      rest++;
  }
  if (*rest != '\0')
    return ATR_EINVAL;
  *out = (int64_t)v;
  return 0;
}

int spg_parse_double(const char *text, double *out) {
  char *end = NULL;
  /* Also "NaN", "Infinity", "-Infinity". PostgreSQL prints only values a
   * double holds, so ERANGE (set for subnormals) is no error here. */
  double v = strtod(text, &end);
  if (end == text || *end != '\0')
    return ATR_EINVAL;
  *out = v;
  return 0;
}

int spg_parse_bool(Oid type, const char *text, int *out) {
  if (type == SPG_OID_INT2 || type == SPG_OID_INT4 || type == SPG_OID_INT8) {
    int64_t v;
    if (spg_parse_int(text, &v) != 0)
      return ATR_EINVAL;
    *out = v != 0;
    return 0;
  }
  static const char *const yes[] = {"t", "true", "1", "yes", "on", "y"};
  static const char *const no[] = {"f", "false", "0", "no", "off", "n"};
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    if (strcasecmp(text, yes[i]) == 0) {
      *out = 1;
      return 0;
    }
    if (strcasecmp(text, no[i]) == 0) {
      *out = 0;
      return 0;
    }
  }
  return ATR_EINVAL;
}

static int hexval(unsigned char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

unsigned char *spg_decode_bytea(const char *text, size_t text_len,
                                size_t *len) {
  if (text_len >= 2 && text[0] == '\\' && text[1] == 'x') {
    size_t n = (text_len - 2) / 2;
    if ((text_len - 2) % 2 != 0)
      return NULL;
    unsigned char *out = malloc(n + 1);
    if (out == NULL)
      return NULL;
    const unsigned char *in = (const unsigned char *)text + 2;
    for (size_t i = 0; i < n; i++) {
      int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        free(out);
        return NULL;
      }
      out[i] = (unsigned char)(hi << 4 | lo);
    }
    out[n] = '\0';
    *len = n;
    return out;
  }
  /* bytea_output = escape (a server that overrides our session setting). */
  size_t n = 0;
  unsigned char *raw = PQunescapeBytea((const unsigned char *)text, &n);
  if (raw == NULL)
    return NULL;
  unsigned char *out = malloc(n + 1);
  if (out != NULL) {
    memcpy(out, raw, n);
    out[n] = '\0';
    *len = n;
  }
  PQfreemem(raw);
  return out;
}
