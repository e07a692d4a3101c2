/* core/schema.c — see schema.h. */
#include "params.h"

#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

static char *dup_or_null(const char *s) {
  return s && *s ? strdup(s) : NULL;
}

static char *member(json_t *o, const char *key) {
  const char *s = json_string_value(json_object_get(o, key));
  return strdup(s ? s : "");
}

static int read_options(const char *text, atr_param_t *p) {
  json_t *a = json_loads(text ? text : "[]", 0, NULL);
  size_t n = json_array_size(a);
  p->options = n ? calloc(n, sizeof *p->options) : NULL;
  if (n && !p->options) {
    json_decref(a);
    return ATR_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *o = json_array_get(a, i);
    p->options[i].name = member(o, "name");
    p->options[i].value = member(o, "value");
    p->options[i].description = member(o, "description");
  }
  p->noptions = n;
  json_decref(a);
  return 0;
}

static int read_param(atr_db_t *db, atr_db_rows_t *rows, atr_param_t *p) {
  p->name = strdup(atr_db_get_text(db, rows, 0));
  p->display_name = dup_or_null(atr_db_get_text(db, rows, 1));
  p->description = dup_or_null(atr_db_get_text(db, rows, 2));
  p->type = atr_param_type_parse(atr_db_get_text(db, rows, 3));
  p->mutable_ = atr_db_get_bool(db, rows, 4);
  p->required = atr_db_get_bool(db, rows, 13);
  p->has_default = !p->required;
  const char *def = atr_db_get_text(db, rows, 5);
  p->default_value = p->has_default ? strdup(def ? def : "") : NULL;
  p->regex = dup_or_null(atr_db_get_text(db, rows, 7));
  p->has_min = !atr_db_is_null(db, rows, 8);
  p->min = atr_db_get_double(db, rows, 8);
  p->has_max = !atr_db_is_null(db, rows, 9);
  p->max = atr_db_get_double(db, rows, 9);
  p->error = dup_or_null(atr_db_get_text(db, rows, 10));
  p->monotonic = dup_or_null(atr_db_get_text(db, rows, 11));
  p->display_order = (int)atr_db_get_int(db, rows, 12);
  p->ephemeral = atr_db_get_bool(db, rows, 14);
  p->sensitive = atr_db_get_bool(db, rows, 15);
  if (!p->name || p->type == 0)
    return ATR_ENOMEM;
  return read_options(atr_db_get_text(db, rows, 6), p);
}

int atr_schema_load(atr_db_t *db, const char *version_id, atr_manifest_t *m,
                    char **err) {
  memset(m, 0, sizeof *m);
  atr_value_t k[] = {atr_v_text(version_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT name, display_name, description, type, mutable, default_value, "
      "options, validation_regex, validation_min, validation_max, "
      "validation_error, validation_monotonic, display_order, required, "
      "ephemeral, sensitive FROM template_version_parameters WHERE "
      "template_version_id = ? ORDER BY display_order, name",
      k, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    atr_param_t *ps = realloc(m->params, (m->nparams + 1) * sizeof *ps);
    if (!ps) {
      rc = ATR_ENOMEM;
      break;
    }
    m->params = ps;
    memset(&ps[m->nparams], 0, sizeof *ps);
    rc = read_param(db, rows, &ps[m->nparams]);
    m->nparams++;
  }
  atr_db_rows_close(db, rows);
  if (rc < 0)
    atr_manifest_free(m);
  return rc < 0 ? rc : 0;
}

json_t *atr_schema_param_json(const atr_param_t *p) {
  json_t *opts = json_array();
  for (size_t i = 0; i < p->noptions; i++)
    json_array_append_new(opts, json_pack("{s:s, s:s, s:s}", "name",
                                          p->options[i].name, "value",
                                          p->options[i].value, "description",
                                          p->options[i].description));
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:b, s:s, s:o, s:s, s:o, s:o, s:s, s:s, s:b, "
      "s:b, s:b, s:i}",
      "name", p->name, "display_name", p->display_name ? p->display_name : "",
      "description", p->description ? p->description : "", "type",
      atr_param_type_name(p->type), "mutable", p->mutable_, "default_value",
      p->default_value ? p->default_value : "", "options", opts,
      "validation_regex", p->regex ? p->regex : "", "validation_min",
      p->has_min ? json_real(p->min) : json_null(), "validation_max",
      p->has_max ? json_real(p->max) : json_null(), "validation_error",
      p->error ? p->error : "", "validation_monotonic",
      p->monotonic ? p->monotonic : "", "required", p->required, "ephemeral",
      p->ephemeral, "sensitive", p->sensitive, "display_order",
      p->display_order);
}
