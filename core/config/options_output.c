/* core/config/options_output.c — how options are shown: a value for
 * people (secrets redacted), a resolved set as JSON or YAML, and a table
 * as JSON or Markdown (`atrium plugins describe`, docs/configuration.md).
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

/* ---- showing values ----------------------------------------------------- */

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

/* ---- YAML output -------------------------------------------------------- */

/* Could `s` be written unquoted and read back as the same string? Kept
 * conservative: anything unusual is quoted. */
static bool yaml_plain_ok(const char *s) {
  static const char *const nulls[] = {"~", "null", "Null", "NULL", NULL};
  size_t len = strlen(s);
  if (!len || atr__opt_in_list(nulls, s) || isspace((unsigned char)s[0]) ||
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
    char *sub = atr__opt_strndup(name, headlen);
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
  char *key = atr__opt_full_key(section, opt->name);
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
    char *lo = atr__opt_bound_text(opt, opt->min),
         *hi = atr__opt_bound_text(opt, opt->max);
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
  char *key = atr__opt_full_key(section, opt->name);
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
