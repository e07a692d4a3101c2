/* core/manifest.c — template.yaml parsing and parameter value checks.
 *
 * Parsing walks the conf tree once, filling atr_param_t and remembering the
 * nodes that later cross-checks (default vs. type/options/validation) need
 * so every error can point at file:line:col. All problems are collected. */
#include "manifest.h"
#include "manifest_agent.h"
#include "param_regex.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "conf.h"

typedef struct ctx {
  json_t *errors;
} ctx_t;

/* Nodes of one parameter kept for the cross-checks. */
typedef struct pnodes {
  const atr_conf_node_t *self, *name, *type, *def, *options, *required;
  const atr_conf_node_t *min, *max, *regex, *monotonic, *ephemeral;
  bool required_set;
  bool type_ok;
} pnodes_t;

static const char *const top_keys =
    "name, provisioner, parameters, policy, agent";
static const char *const param_keys =
    "name, display_name, description, type, default, mutable, ephemeral, "
    "required, sensitive, options, validation, display_order";
static const char *const option_keys = "name, value, description";
static const char *const validation_keys = "min, max, regex, monotonic, error";

void atr__manifest_error(json_t *errors, const atr_conf_node_t *at,
                         const char *field, const char *fmt, ...) {
  char where[512], msg[1024], detail[1600];
  atr_conf_where(at, where, sizeof where);
  va_list ap;
  va_start(ap, fmt);
  /* clang-analyzer 14 reports ap as uninitialized here after va_start. */
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  snprintf(detail, sizeof detail, "%s: %s", where, msg);
  json_array_append_new(
      errors, json_pack("{s:s, s:s}", "field", field, "detail", detail));
}

#define add_error(c, ...) atr__manifest_error((c)->errors, __VA_ARGS__)

static const atr_conf_node_t *scalar(ctx_t *c, const atr_conf_node_t *n,
                                     const char *field) {
  if (n->type != ATR_CONF_SCALAR || n->is_null) {
    add_error(c, n, field, "must be a single value");
    return NULL;
  }
  return n;
}

static char *take_string(ctx_t *c, const atr_conf_node_t *n,
                         const char *field) {
  return scalar(c, n, field) ? strdup(n->value) : NULL;
}

static bool take_bool(ctx_t *c, const atr_conf_node_t *n, const char *field,
                      bool *out) {
  if (!scalar(c, n, field))
    return false;
  if (strcmp(n->value, "true") == 0 || strcmp(n->value, "false") == 0) {
    *out = n->value[0] == 't';
    return true;
  }
  add_error(c, n, field, "\"%s\" is not a bool; use true or false", n->value);
  return false;
}

/* A decimal number: the whole text, finite, no hex/inf/nan/whitespace. */
static bool parse_number(const char *s, double *out) {
  if (!*s)
    return false;
  for (const char *p = s; *p; p++)
    if (!isdigit((unsigned char)*p) && !strchr("+-.eE", *p))
      return false;
  char *end = NULL;
  double d = strtod(s, &end);
  if (*end || !isfinite(d))
    return false;
  *out = d;
  return true;
}

static bool name_ok(const char *s, const char *extra) {
  return atr__manifest_chars_ok(s, 64, extra);
}

static bool path_ok(const char *s) {
  if (!*s || s[0] == '/')
    return false;
  for (const char *p = s; *p;) {
    size_t len = strcspn(p, "/");
    if (len == 2 && p[0] == '.' && p[1] == '.')
      return false;
    p += len;
    if (*p == '/')
      p++;
  }
  return true;
}

const char *atr_param_type_name(atr_param_type_t t) {
  switch (t) {
  case ATR_PARAM_STRING:
    return "string";
  case ATR_PARAM_NUMBER:
    return "number";
  case ATR_PARAM_BOOL:
    return "bool";
  case ATR_PARAM_LIST_STRING:
    return "list(string)";
  }
  return "?";
}

static bool list_string_ok(const char *text) {
  json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
  bool ok = json_is_array(j);
  for (size_t i = 0; ok && i < json_array_size(j); i++)
    ok = json_is_string(json_array_get(j, i));
  json_decref(j);
  return ok;
}

static void options_text(const atr_param_t *p, char *buf, size_t size) {
  size_t used = 0;
  buf[0] = '\0';
  for (size_t i = 0; i < p->noptions && used < size; i++)
    used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                             p->options[i].value);
}

/* Check one value text against the type, bounds, regex and options; on
 * failure the generic message goes to msg ("must be ..."). */
/* A string value against validation.regex (param_regex.h: bounded). */
static bool regex_ok(const char *pattern, const char *v, char *msg,
                     size_t size) {
  atr_regex_t *re = NULL;
  char why[200];
  if (atr_regex_compile(pattern, &re, why, sizeof why) != 0) {
    snprintf(msg, size, "cannot be checked: bad regex %s", pattern);
    return false;
  }
  int rc = atr_regex_match(re, v, strlen(v));
  atr_regex_free(re);
  if (rc == ATR_ERANGE)
    snprintf(msg, size,
             "cannot be checked against %s: the match would take too long",
             pattern);
  else if (rc != 1)
    snprintf(msg, size, "must match %s", pattern);
  return rc == 1;
}

static bool value_ok(const atr_param_t *p, const char *v, char *msg,
                     size_t size) {
  double d = 0;
  switch (p->type) {
  case ATR_PARAM_NUMBER:
    if (!parse_number(v, &d) || (p->has_min && d < p->min) ||
        (p->has_max && d > p->max)) {
      if (p->has_min && p->has_max)
        snprintf(msg, size, "must be a number between %g and %g", p->min,
                 p->max);
      else if (p->has_min)
        snprintf(msg, size, "must be a number of at least %g", p->min);
      else if (p->has_max)
        snprintf(msg, size, "must be a number of at most %g", p->max);
      else
        snprintf(msg, size, "must be a number");
      return false;
    }
    break;
  case ATR_PARAM_BOOL:
    if (strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
      snprintf(msg, size, "must be true or false");
      return false;
    }
    break;
  case ATR_PARAM_LIST_STRING:
    if (!list_string_ok(v)) {
      snprintf(msg, size, "must be a JSON array of strings");
      return false;
    }
    break;
  case ATR_PARAM_STRING:
    if (p->regex && !regex_ok(p->regex, v, msg, size))
      return false;
    break;
  }
  if (p->noptions) {
    for (size_t i = 0; i < p->noptions; i++) {
      double o = 0;
      /* An option without a value is refused already; the default is
       * still checked against the others. */
      if (!p->options[i].value)
        continue;
      if (strcmp(p->options[i].value, v) == 0 ||
          (p->type == ATR_PARAM_NUMBER &&
           parse_number(p->options[i].value, &o) && o == d))
        return true;
    }
    char opts[512];
    options_text(p, opts, sizeof opts);
    snprintf(msg, size, "must be one of: %s", opts);
    return false;
  }
  return true;
}

/* ---- parsing ---------------------------------------------------------------- */

static void parse_options(ctx_t *c, const atr_conf_node_t *n, const char *field,
                          atr_param_t *p) {
  char f[200];
  if (n->type != ATR_CONF_SEQ) {
    add_error(c, n, field, "must be a list of {name, value, description}");
    return;
  }
  p->options = calloc(n->nchildren ? n->nchildren : 1, sizeof *p->options);
  for (size_t i = 0; i < n->nchildren; i++) {
    const atr_conf_node_t *o = n->children[i];
    snprintf(f, sizeof f, "%s[%zu]", field, i);
    if (o->type != ATR_CONF_MAP) {
      add_error(c, o, f, "must be a map with keys: %s", option_keys);
      continue;
    }
    atr_param_option_t *opt = &p->options[p->noptions++];
    const atr_conf_node_t *vnode = NULL;
    for (size_t k = 0; k < o->nchildren; k++) {
      const atr_conf_node_t *e = o->children[k];
      char ef[256];
      snprintf(ef, sizeof ef, "%s.%s", f, e->key);
      if (strcmp(e->key, "name") == 0)
        opt->name = take_string(c, e, ef);
      else if (strcmp(e->key, "value") == 0) {
        opt->value = take_string(c, e, ef);
        vnode = e;
      } else if (strcmp(e->key, "description") == 0)
        opt->description = take_string(c, e, ef);
      else
        add_error(c, e, ef, "unknown key \"%s\"; valid keys: %s", e->key,
                  option_keys);
    }
    if (!opt->name) {
      snprintf(f, sizeof f, "%s[%zu].name", field, i);
      add_error(c, o, f, "option name is required");
    }
    snprintf(f, sizeof f, "%s[%zu].value", field, i);
    if (!opt->value) {
      add_error(c, o, f, "option value is required");
      continue;
    }
    double d;
    if (p->type == ATR_PARAM_NUMBER && !parse_number(opt->value, &d))
      add_error(c, vnode, f, "option value \"%s\" is not a number", opt->value);
    for (size_t j = 0; j + 1 < p->noptions; j++)
      if (p->options[j].value && strcmp(p->options[j].value, opt->value) == 0)
        add_error(c, vnode, f, "duplicate option value \"%s\" (also %s[%zu])",
                  opt->value, field, j);
  }
}

static void parse_validation(ctx_t *c, const atr_conf_node_t *n,
                             const char *field, atr_param_t *p, pnodes_t *pn) {
  if (n->type != ATR_CONF_MAP) {
    add_error(c, n, field, "must be a map with keys: %s", validation_keys);
    return;
  }
  for (size_t k = 0; k < n->nchildren; k++) {
    const atr_conf_node_t *e = n->children[k];
    char f[256];
    snprintf(f, sizeof f, "%s.%s", field, e->key);
    bool is_min = strcmp(e->key, "min") == 0;
    if (is_min || strcmp(e->key, "max") == 0) {
      double d;
      if (!scalar(c, e, f))
        continue;
      if (!parse_number(e->value, &d)) {
        add_error(c, e, f, "\"%s\" is not a number", e->value);
        continue;
      }
      if (is_min) {
        p->has_min = true, p->min = d, pn->min = e;
      } else {
        p->has_max = true, p->max = d, pn->max = e;
      }
    } else if (strcmp(e->key, "regex") == 0) {
      p->regex = take_string(c, e, f);
      pn->regex = e;
    } else if (strcmp(e->key, "monotonic") == 0) {
      p->monotonic = take_string(c, e, f);
      pn->monotonic = e;
      if (p->monotonic && strcmp(p->monotonic, "increasing") != 0 &&
          strcmp(p->monotonic, "decreasing") != 0)
        add_error(c, e, f, "\"%s\" is not valid; use increasing or decreasing",
                  p->monotonic);
    } else if (strcmp(e->key, "error") == 0) {
      p->error = take_string(c, e, f);
    } else {
      add_error(c, e, f, "unknown key \"%s\"; valid keys: %s", e->key,
                validation_keys);
    }
  }
}

static void parse_param_key(ctx_t *c, const atr_conf_node_t *e, const char *f,
                            atr_param_t *p, pnodes_t *pn) {
  const char *k = e->key;
  if (strcmp(k, "name") == 0) {
    p->name = take_string(c, e, f);
    pn->name = e;
    if (p->name && !name_ok(p->name, "_-"))
      add_error(c, e, f,
                "\"%s\" is not a valid parameter name; use 1-64 characters "
                "of a-z, 0-9, _ and -",
                p->name);
  } else if (strcmp(k, "display_name") == 0) {
    p->display_name = take_string(c, e, f);
  } else if (strcmp(k, "description") == 0) {
    p->description = take_string(c, e, f);
  } else if (strcmp(k, "type") == 0) {
    pn->type = e;
    if (!scalar(c, e, f))
      return;
    static const atr_param_type_t types[] = {ATR_PARAM_STRING, ATR_PARAM_NUMBER,
                                             ATR_PARAM_BOOL,
                                             ATR_PARAM_LIST_STRING};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
      if (strcmp(e->value, atr_param_type_name(types[i])) == 0) {
        p->type = types[i];
        pn->type_ok = true;
      }
    if (!pn->type_ok)
      add_error(c, e, f,
                "unknown type \"%s\"; use string, number, bool or "
                "list(string)",
                e->value);
  } else if (strcmp(k, "default") == 0) {
    pn->def = e;
  } else if (strcmp(k, "mutable") == 0) {
    take_bool(c, e, f, &p->mutable_);
  } else if (strcmp(k, "ephemeral") == 0) {
    take_bool(c, e, f, &p->ephemeral);
    pn->ephemeral = e;
  } else if (strcmp(k, "required") == 0) {
    pn->required_set = take_bool(c, e, f, &p->required);
    pn->required = e;
  } else if (strcmp(k, "sensitive") == 0) {
    take_bool(c, e, f, &p->sensitive);
  } else if (strcmp(k, "options") == 0) {
    pn->options = e;
  } else if (strcmp(k, "validation") == 0) {
    parse_validation(c, e, f, p, pn);
  } else if (strcmp(k, "display_order") == 0) {
    char *end = NULL;
    if (!scalar(c, e, f))
      return;
    long v = strtol(e->value, &end, 10);
    if (!*e->value || *end || v < -1000000 || v > 1000000)
      add_error(c, e, f, "\"%s\" is not an integer", e->value);
    else
      p->display_order = (int)v;
  } else {
    add_error(c, e, f, "unknown key \"%s\"; valid keys: %s", k, param_keys);
  }
}

/* The default as canonical text: list(string) may be written as a YAML
 * list or as JSON text; everything else is the scalar as written. */
static void parse_default(ctx_t *c, const atr_conf_node_t *d, const char *f,
                          atr_param_t *p) {
  if (p->type == ATR_PARAM_LIST_STRING && d->type == ATR_CONF_SEQ) {
    json_t *arr = json_array();
    for (size_t i = 0; i < d->nchildren; i++) {
      const atr_conf_node_t *it = d->children[i];
      if (it->type != ATR_CONF_SCALAR || it->is_null) {
        add_error(c, it, f, "list(string) default items must be strings");
        json_decref(arr);
        return;
      }
      json_array_append_new(arr, json_string(it->value));
    }
    p->default_value = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
  } else if (d->type == ATR_CONF_SCALAR && !d->is_null) {
    p->default_value = strdup(d->value);
  } else {
    add_error(c, d, f, "must be a %s value", atr_param_type_name(p->type));
    return;
  }
  p->has_default = true;
}

static void check_param(ctx_t *c, const char *field, atr_param_t *p,
                        const pnodes_t *pn) {
  char f[160];
  bool num = p->type == ATR_PARAM_NUMBER, str = p->type == ATR_PARAM_STRING;
#define FIELD(sub) (snprintf(f, sizeof f, "%s.%s", field, sub), f)
  if (pn->min && !num)
    add_error(c, pn->min, FIELD("validation.min"),
              "min is only allowed for number parameters");
  if (pn->max && !num)
    add_error(c, pn->max, FIELD("validation.max"),
              "max is only allowed for number parameters");
  if (num && p->has_min && p->has_max && p->min > p->max)
    add_error(c, pn->min, FIELD("validation.min"),
              "min %g is greater than max %g", p->min, p->max);
  if (pn->regex && p->regex) {
    atr_regex_t *re = NULL;
    char why[200];
    if (!str)
      add_error(c, pn->regex, FIELD("validation.regex"),
                "regex is only allowed for string parameters");
    else if (atr_regex_compile(p->regex, &re, why, sizeof why) != 0)
      add_error(c, pn->regex, FIELD("validation.regex"),
                "\"%s\" is not a valid regular expression: %s", p->regex, why);
    atr_regex_free(re);
  }
  if (pn->monotonic && p->monotonic) {
    if (!num)
      add_error(c, pn->monotonic, FIELD("validation.monotonic"),
                "monotonic is only allowed for number parameters");
    else if (!p->mutable_)
      add_error(c, pn->monotonic, FIELD("validation.monotonic"),
                "monotonic requires mutable: true");
  }
  if (pn->options) {
    if (!num && !str)
      add_error(c, pn->options, FIELD("options"),
                "options are only allowed for string and number parameters");
    else
      parse_options(c, pn->options, FIELD("options"), p);
  }
  if (pn->def)
    parse_default(c, pn->def, FIELD("default"), p);
  if (p->ephemeral && (!p->mutable_ || !p->has_default))
    add_error(c, pn->ephemeral, FIELD("ephemeral"),
              "an ephemeral parameter must be mutable: true and have a "
              "default");
  if (pn->required_set && p->required && p->has_default)
    add_error(c, pn->required, FIELD("required"),
              "required: true conflicts with the default; a parameter with "
              "a default is optional");
  else if (pn->required_set && !p->required && !p->has_default &&
           pn->def == NULL)
    add_error(c, pn->required, FIELD("required"),
              "required: false needs a default");
  p->required = !p->has_default;
  char msg[700];
  if (p->has_default && !value_ok(p, p->default_value, msg, sizeof msg))
    add_error(c, pn->def, FIELD("default"), "default \"%s\" %s",
              p->default_value, msg);
#undef FIELD
}

static void parse_param(ctx_t *c, const atr_conf_node_t *n, size_t idx,
                        atr_manifest_t *m) {
  char field[32], f[160];
  snprintf(field, sizeof field, "parameters[%zu]", idx);
  if (n->type != ATR_CONF_MAP) {
    add_error(c, n, field, "must be a map with keys: %s", param_keys);
    return;
  }
  atr_param_t *p = &m->params[m->nparams++];
  pnodes_t pn = {.self = n};
  for (size_t k = 0; k < n->nchildren; k++) {
    snprintf(f, sizeof f, "%s.%s", field, n->children[k]->key);
    parse_param_key(c, n->children[k], f, p, &pn);
  }
  snprintf(f, sizeof f, "%s.name", field);
  if (!pn.name)
    add_error(c, n, f, "name is required");
  for (size_t j = 0; p->name && j + 1 < m->nparams; j++)
    if (m->params[j].name && strcmp(m->params[j].name, p->name) == 0)
      add_error(c, pn.name, f,
                "duplicate parameter name \"%s\" (also "
                "parameters[%zu])",
                p->name, j);
  snprintf(f, sizeof f, "%s.type", field);
  if (!pn.type)
    add_error(c, n, f,
              "type is required; use string, number, bool or list(string)");
  if (pn.type_ok)
    check_param(c, field, p, &pn);
}

static void parse_top(ctx_t *c, const atr_conf_node_t *root,
                      atr_manifest_t *m) {
  const atr_conf_node_t *name = NULL, *prov = NULL;
  for (size_t i = 0; i < root->nchildren; i++) {
    const atr_conf_node_t *e = root->children[i];
    if (strcmp(e->key, "name") == 0) {
      name = e;
      m->name = take_string(c, e, "name");
      if (m->name && !name_ok(m->name, "-"))
        add_error(c, e, "name",
                  "\"%s\" is not a valid template name; use 1-64 characters "
                  "of a-z, 0-9 and -",
                  m->name);
    } else if (strcmp(e->key, "provisioner") == 0) {
      prov = e;
      m->provisioner = take_string(c, e, "provisioner");
      if (m->provisioner && !*m->provisioner)
        add_error(c, e, "provisioner", "must not be empty");
    } else if (strcmp(e->key, "policy") == 0) {
      m->policy = take_string(c, e, "policy");
      if (m->policy && !path_ok(m->policy))
        add_error(c, e, "policy",
                  "\"%s\" is not a path inside the archive; use a relative "
                  "path without ..",
                  m->policy);
    } else if (strcmp(e->key, "agent") == 0) {
      atr__manifest_agent(c->errors, e, &m->agent_spec);
    } else if (strcmp(e->key, "parameters") == 0) {
      if (e->type != ATR_CONF_SEQ) {
        add_error(c, e, "parameters", "must be a list of parameters");
        continue;
      }
      m->params = calloc(e->nchildren ? e->nchildren : 1, sizeof *m->params);
      for (size_t k = 0; k < e->nchildren; k++)
        parse_param(c, e->children[k], k, m);
    } else {
      add_error(c, e, e->key, "unknown key \"%s\"; valid keys: %s", e->key,
                top_keys);
    }
  }
  if (!name)
    add_error(c, root, "name", "name is required");
  if (!prov)
    add_error(c, root, "provisioner",
              "provisioner is required (e.g. docker, terraform)");
}

int atr_manifest_parse(const char *file_name, const char *text, size_t len,
                       atr_manifest_t *out, json_t **errors) {
  memset(out, 0, sizeof *out);
  *errors = NULL;
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  ctx_t c = {.errors = json_array()};
  if (atr_conf_parse(file_name, text, len, &root, &err) != 0) {
    json_array_append_new(c.errors,
                          json_pack("{s:s, s:s}", "field", "", "detail",
                                    err ? err : "unreadable YAML"));
    free(err);
    *errors = c.errors;
    return ATR_EINVAL;
  }
  parse_top(&c, root, out);
  atr_conf_free(root);
  if (json_array_size(c.errors) > 0) {
    atr_manifest_free(out);
    *errors = c.errors;
    return ATR_EINVAL;
  }
  json_decref(c.errors);
  return 0;
}

void atr_manifest_free(atr_manifest_t *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->nparams; i++) {
    atr_param_t *p = &m->params[i];
    free(p->name);
    free(p->display_name);
    free(p->description);
    free(p->default_value);
    for (size_t j = 0; j < p->noptions; j++) {
      free(p->options[j].name);
      free(p->options[j].value);
      free(p->options[j].description);
    }
    free(p->options);
    free(p->regex);
    free(p->monotonic);
    free(p->error);
  }
  free(m->params);
  free(m->name);
  free(m->provisioner);
  free(m->policy);
  free(m->agent_spec);
  memset(m, 0, sizeof *m);
}

/* ---- values ------------------------------------------------------------------ */

static const atr_param_t *find_param(const atr_manifest_t *m,
                                     const char *name) {
  for (size_t i = 0; i < m->nparams; i++)
    if (strcmp(m->params[i].name, name) == 0)
      return &m->params[i];
  return NULL;
}

static bool same_value(const atr_param_t *p, const char *a, const char *b) {
  double x, y;
  if (p->type == ATR_PARAM_NUMBER && parse_number(a, &x) && parse_number(b, &y))
    return x == y;
  return strcmp(a, b) == 0;
}

/* Checks one parameter; returns the value to use, or NULL with msg set. */
static const char *check_one(const atr_param_t *p, json_t *values,
                             json_t *previous, char *msg, size_t size) {
  json_t *jv = json_object_get(values, p->name);
  json_t *jp = previous ? json_object_get(previous, p->name) : NULL;
  const char *prev = json_is_string(jp) ? json_string_value(jp) : NULL;
  const char *v = NULL;
  if (jv && !json_is_string(jv)) {
    snprintf(msg, size, "must be given as a string");
    return NULL;
  }
  v = json_string_value(jv);
  if (!v && prev && !p->ephemeral)
    v = prev; /* an omitted value keeps the last build's */
  if (!v)
    v = p->default_value;
  if (!v) {
    snprintf(msg, size, "is required");
    return NULL;
  }
  if (!value_ok(p, v, msg, size)) {
    if (p->error)
      snprintf(msg, size, "%s", p->error);
    return NULL;
  }
  if (!prev || p->ephemeral)
    return v;
  if (!p->mutable_ && !same_value(p, v, prev)) {
    snprintf(msg, size,
             "cannot change after the workspace is created (it is immutable)");
    return NULL;
  }
  double now, was;
  if (p->monotonic && parse_number(v, &now) && parse_number(prev, &was)) {
    bool inc = strcmp(p->monotonic, "increasing") == 0;
    if (inc ? now < was : now > was) {
      if (p->error)
        snprintf(msg, size, "%s", p->error);
      else
        snprintf(msg, size, "may only %s (was %s)",
                 inc ? "increase" : "decrease", prev);
      return NULL;
    }
  }
  return v;
}

int atr_manifest_check_values(const atr_manifest_t *m, json_t *values,
                              json_t *previous, json_t **resolved,
                              json_t **errors) {
  json_t *errs = json_array();
  json_t *res = json_object();
  *resolved = NULL;
  *errors = NULL;
  if (values && !json_is_object(values)) {
    json_array_append_new(errs, json_pack("{s:s, s:s}", "field", "", "detail",
                                          "values must be a JSON object"));
  } else {
    const char *key;
    json_t *val;
    json_object_foreach(values, key, val) {
      if (!find_param(m, key))
        json_array_append_new(errs,
                              json_pack("{s:s, s:s}", "field", key, "detail",
                                        "is not a parameter of this "
                                        "template"));
    }
    for (size_t i = 0; i < m->nparams; i++) {
      char msg[1024];
      const atr_param_t *p = &m->params[i];
      const char *v = check_one(p, values, previous, msg, sizeof msg);
      if (v)
        json_object_set_new(res, p->name, json_string(v));
      else
        json_array_append_new(
            errs, json_pack("{s:s, s:s}", "field", p->name, "detail", msg));
    }
  }
  if (json_array_size(errs) > 0) {
    json_decref(res);
    *errors = errs;
    return ATR_EINVAL;
  }
  json_decref(errs);
  *resolved = res;
  return 0;
}

atr_param_type_t atr_param_type_parse(const char *name) {
  for (int t = ATR_PARAM_STRING; t <= ATR_PARAM_LIST_STRING; t++)
    if (name && strcmp(name, atr_param_type_name((atr_param_type_t)t)) == 0)
      return (atr_param_type_t)t;
  return 0;
}
