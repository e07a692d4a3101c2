/* units.c — the small languages of workspace.yaml values: CPUs, memory
 * sizes, image references and Docker names. Pure functions, any thread.
 */
#include "internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NANO 1000000000LL
#define DK_MAX_CPUS 4096

/* Leading and trailing blanks skipped: [*s, *e). */
static void trim(const char **s, const char **e) {
  while (*s < *e && isspace((unsigned char)**s))
    (*s)++;
  while (*e > *s && isspace((unsigned char)(*e)[-1]))
    (*e)--;
}

/* "12.345" → 12 and 345000000 (the fraction in billionths). Digits only;
 * returns the end of the number, or NULL when there is none. */
static const char *decimal(const char *p, const char *end, int64_t *whole,
                           int64_t *nanos) {
  const char *start = p;
  *whole = 0;
  *nanos = 0;
  for (; p < end && isdigit((unsigned char)*p); p++) {
    if (*whole > (INT64_MAX - 9) / 10)
      return NULL;
    *whole = *whole * 10 + (*p - '0');
  }
  bool int_digits = p > start;
  if (p < end && *p == '.') {
    p++;
    const char *f = p;
    int64_t scale = NANO / 10;
    for (; p < end && isdigit((unsigned char)*p); p++, scale /= 10)
      *nanos += (*p - '0') * scale;
    if (p == f && !int_digits)
      return NULL;
  } else if (!int_digits) {
    return NULL;
  }
  return p;
}

int dk_parse_cpus(const char *text, int64_t *nano) {
  const char *s = text, *e = text + strlen(text);
  trim(&s, &e);
  *nano = 0;
  if (s == e)
    return 0;
  int64_t whole, frac;
  const char *p = decimal(s, e, &whole, &frac);
  if (p != e || whole > DK_MAX_CPUS)
    return ATR_EINVAL;
  *nano = whole * NANO + frac;
  return 0;
}

int dk_parse_memory(const char *text, int64_t *bytes) {
  static const struct {
    const char *suffix;
    int shift;
  } units[] = {{"", 0},     {"b", 0},   {"k", 10},   {"kb", 10}, {"kib", 10},
               {"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},  {"gb", 30},
               {"gib", 30}, {"t", 40},  {"tb", 40},  {"tib", 40}};
  const char *s = text, *e = text + strlen(text);
  trim(&s, &e);
  *bytes = 0;
  if (s == e)
    return 0;
  int64_t whole, frac;
  const char *p = decimal(s, e, &whole, &frac);
  if (p == NULL)
    return ATR_EINVAL;
  while (p < e && *p == ' ')
    p++;
  for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
    size_t n = strlen(units[i].suffix);
    if ((size_t)(e - p) != n || strncasecmp(p, units[i].suffix, n) != 0)
      continue;
    int shift = units[i].shift;
    if (whole > (INT64_MAX >> shift) - 1)
      return ATR_ERANGE;
    /* A fraction of a byte rounds down. */
    *bytes = (whole << shift) +
             (int64_t)((frac * (double)(1LL << shift)) / (double)NANO);
    return 0;
  }
  return ATR_EINVAL;
}

bool dk_image_valid(const char *image) {
  if (image == NULL || !isalnum((unsigned char)image[0]) ||
      strlen(image) > 512 || strstr(image, "//") != NULL)
    return false;
  for (const char *p = image; *p; p++) {
    if (!isalnum((unsigned char)*p) && strchr("._-/:@", *p) == NULL)
      return false;
  }
  char last = image[strlen(image) - 1];
  return last != '/' && last != ':' && last != '@';
}

/* The reference as the engine reads it: ubuntu → docker.io/library/ubuntu,
 * dev/tools → docker.io/dev/tools; a first part with '.' or ':', or
 * localhost, is a registry and stays. */
static char *full_reference(const char *image) {
  char *out = NULL;
  const char *slash = strchr(image, '/');
  if (slash == NULL) {
    if (asprintf(&out, "docker.io/library/%s", image) < 0)
      out = NULL;
    return out;
  }
  size_t n = (size_t)(slash - image);
  bool registry = memchr(image, '.', n) != NULL ||
                  memchr(image, ':', n) != NULL ||
                  (n == 9 && strncmp(image, "localhost", 9) == 0);
  if (n == 15 && strncmp(image, "index.docker.io", 15) == 0) {
    if (asprintf(&out, "docker.io%s", slash) < 0)
      out = NULL;
  } else if (registry) {
    out = strdup(image);
  } else if (asprintf(&out, "docker.io/%s", image) < 0) {
    out = NULL;
  }
  return out;
}

bool dk_image_allowed(const char *image, const char *const *prefixes) {
  if (prefixes == NULL || prefixes[0] == NULL)
    return true;
  char *full = full_reference(image);
  bool ok = false;
  for (size_t i = 0; prefixes[i] != NULL && !ok; i++) {
    size_t n = strlen(prefixes[i]);
    ok = strncmp(image, prefixes[i], n) == 0 ||
         (full != NULL && strncmp(full, prefixes[i], n) == 0);
  }
  free(full);
  return ok;
}

char *dk_image_refusal(const char *image, const char *const *prefixes) {
  dk_buf_t b = {0};
  dk_buf_printf(&b, "image \"%s\" is not allowed; allowed prefixes: ", image);
  for (size_t i = 0; prefixes != NULL && prefixes[i] != NULL; i++)
    dk_buf_printf(&b, "%s%s", i ? ", " : "", prefixes[i]);
  dk_buf_printf(&b, " (%s.allowed_images)", DK_SECTION);
  return b.data;
}

void dk_format_bytes(int64_t bytes, char *buf, size_t size) {
  static const char *const names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int i = 0;
  double v = (double)bytes;
  while (i < 4 && v >= 1024.0) {
    v /= 1024.0;
    i++;
  }
  snprintf(buf, size, "%.4g %s", v, names[i]);
}

void dk_sanitize_name(char *s) {
  for (; *s; s++) {
    char ch = (char)tolower((unsigned char)*s);
    *s = (isalnum((unsigned char)ch) && (unsigned char)ch < 128) || ch == '_' ||
                 ch == '.' || ch == '-'
             ? ch
             : '-';
  }
}
