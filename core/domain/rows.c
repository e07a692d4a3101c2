/* core/domain/rows.c — see rows.h. */
#include "rows.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"

const char *atr_row_text(atr_db_t *db, atr_db_rows_t *rows, size_t i) {
  const char *s = atr_db_get_text(db, rows, i);
  return s ? s : "";
}

int atr_select_list(atr_db_t *db, const atr_select_t *s, const char *where,
                    const atr_value_t *p, size_t n, json_t **out, char **err) {
  char *sql = NULL;
  *out = NULL;
  if (asprintf(&sql, "%s%s", s->sql, where) < 0)
    return ATR_ENOMEM;
  atr_db_rows_t *rows = NULL;
  json_t *a = json_array();
  int rc = atr_db_query(db, sql, p, n, &rows, err);
  free(sql);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_array_append_new(a, s->row(db, rows));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  size_t i;
  json_t *item;
  json_array_foreach(a, i, item) {
    if (rc == 0 && s->complete)
      rc = s->complete(db, item, err);
  }
  if (rc < 0) {
    json_decref(a);
    return rc;
  }
  *out = a;
  return 0;
}

int atr_select_one(atr_db_t *db, const atr_select_t *s, const char *where,
                   const atr_value_t *p, size_t n, json_t **out, char **err) {
  json_t *a = NULL;
  int rc = atr_select_list(db, s, where, p, n, &a, err);
  if (rc == 0 && json_array_size(a) == 0)
    rc = ATR_ENOENT;
  if (rc == 0)
    *out = json_incref(json_array_get(a, 0));
  json_decref(a);
  return rc;
}

int atr_select_object(atr_db_t *db, const char *sql, const atr_value_t *p,
                      size_t n, json_t *into, char **err) {
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, sql, p, n, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_object_set_new(into, atr_row_text(db, rows, 0),
                        json_string(atr_row_text(db, rows, 1)));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

json_t *atr_time_json(int64_t us) {
  if (us == 0)
    return json_null();
  time_t secs = (time_t)(us / 1000000);
  struct tm tm;
  char buf[40];
  gmtime_r(&secs, &tm);
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%06lldZ", (long long)(us % 1000000));
  return json_string(buf);
}

const char *atr_name_problem(const char *s) {
  size_t n = s ? strlen(s) : 0;
  if (n == 0)
    return "Required.";
  bool ok = n <= 32 && s[0] != '-' && s[n - 1] != '-';
  for (size_t i = 0; ok && i < n; i++)
    ok = isalnum((unsigned char)s[i]) || (s[i] == '-' && s[i + 1] != '-');
  return ok ? NULL
            : "Must be 1 to 32 letters, digits or single hyphens, not "
              "starting or ending with a hyphen.";
}

const char *atr_json_str(const json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : "";
}
