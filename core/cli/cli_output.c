/* core/cli/cli_output.c — what the commands print (cli_output.h). */
#include "cli_output.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"

const char *atr__cli_str(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

const char *atr__cli_txt(const json_t *obj, const char *key) {
  const char *s = atr__cli_str(obj, key);
  return s ? s : "-";
}

void atr__cli_print_json(const json_t *j) {
  if (!j)
    return;
  json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  fputc('\n', stdout);
}

/* ---- times ------------------------------------------------------------------ */

const char *atr__cli_time(const char *iso, char buf[32], const char *none) {
  if (!iso || !*iso)
    return none;
  if (strlen(iso) < 19)
    return iso;
  snprintf(buf, 32, "%.19sZ", iso);
  return buf;
}

/* RFC 3339 UTC ("…Z", optional fraction) → seconds since the epoch. */
static bool parse_time(const char *iso, double *out) {
  struct tm tm = {0};
  int n = 0;
  if (!iso || sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
                     &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
    return false;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  double frac = 0;
  if (iso[n] == '.')
    frac = strtod(iso + n, NULL);
  *out = (double)timegm(&tm) + frac;
  return true;
}

double atr__cli_seconds(const char *a, const char *b) {
  double ta, tb;
  if (!parse_time(a, &ta) || !parse_time(b, &tb))
    return -1;
  return tb > ta ? tb - ta : 0;
}

const char *atr__cli_ago(const char *iso, char buf[32]) {
  double t;
  if (!parse_time(iso, &t))
    return NULL;
  double d = difftime(time(NULL), (time_t)t);
  if (d < 0)
    d = 0;
  if (d < 60)
    snprintf(buf, 32, "%.0fs ago", d);
  else if (d < 3600)
    snprintf(buf, 32, "%.0fm ago", d / 60);
  else if (d < 86400)
    snprintf(buf, 32, "%.0fh ago", d / 3600);
  else
    snprintf(buf, 32, "%.0fd ago", d / 86400);
  return buf;
}

/* ---- tables ----------------------------------------------------------------- */

#define MAX_COLS 8

int atr__cli_table_add(atr__cli_table_t *t, const char *const *row) {
  char **grown = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof *grown);
  if (!grown)
    return ATR_ENOMEM;
  t->cells = grown;
  for (size_t c = 0; c < t->ncols; c++) {
    const char *v = row[c] && *row[c] ? row[c] : "-";
    if (!(grown[t->nrows * t->ncols + c] = strdup(v))) {
      while (c-- > 0)
        free(grown[t->nrows * t->ncols + c]);
      return ATR_ENOMEM;
    }
  }
  t->nrows++;
  return 0;
}

void atr__cli_table_print(const atr__cli_table_t *t) {
  size_t width[MAX_COLS] = {0};
  for (size_t c = 0; c < t->ncols && c < MAX_COLS; c++) {
    width[c] = strlen(t->head[c]);
    for (size_t r = 0; r < t->nrows; r++) {
      size_t n = strlen(t->cells[r * t->ncols + c]);
      width[c] = n > width[c] ? n : width[c];
    }
  }
  for (size_t r = 0; r <= t->nrows; r++)
    for (size_t c = 0; c < t->ncols && c < MAX_COLS; c++) {
      const char *v = r == 0 ? t->head[c] : t->cells[(r - 1) * t->ncols + c];
      if (c + 1 < t->ncols)
        printf("%-*s  ", (int)width[c], v);
      else
        printf("%s\n", v);
    }
}

void atr__cli_table_free(atr__cli_table_t *t) {
  for (size_t i = 0; i < t->nrows * t->ncols; i++)
    free(t->cells[i]);
  free(t->cells);
  t->cells = NULL;
  t->nrows = 0;
}
