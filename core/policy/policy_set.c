/* core/policy_set.c — the policies of one request and how their decisions
 * merge: deployment policies first, then the template's, which can only
 * narrow (see atr_policy_set_eval in policy.h). */
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "atrium/error.h"
#include "policy.h"
#include "policy_internal.h"

void atr_policy_set_init(atr_policy_set_t *s) {
  memset(s, 0, sizeof *s);
}

int atr_policy_set_add(atr_policy_set_t *s, atr_policy_t *p,
                       atr_policy_scope_t scope) {
  if (!s || !p ||
      (scope != ATR_POLICY_DEPLOYMENT && scope != ATR_POLICY_TEMPLATE))
    return ATR_EINVAL;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 4;
    struct atr_policy_set_item *grown =
        realloc(s->items, cap * sizeof *s->items);
    if (!grown)
      return ATR_ENOMEM;
    s->items = grown;
    s->cap = cap;
  }
  s->items[s->n].policy = atr_policy_ref(p);
  s->items[s->n].scope = scope;
  s->n++;
  return 0;
}

int atr_policy_set_add_all(atr_policy_set_t *s, const atr_policy_set_t *src) {
  if (!s || !src)
    return ATR_EINVAL;
  size_t before = s->n;
  for (size_t i = 0; i < src->n; i++) {
    int rc = atr_policy_set_add(s, src->items[i].policy, src->items[i].scope);
    if (rc != 0) {
      while (s->n > before)
        atr_policy_unref(s->items[--s->n].policy);
      return rc;
    }
  }
  return 0;
}

void atr_policy_set_clear(atr_policy_set_t *s) {
  if (!s)
    return;
  for (size_t i = 0; i < s->n; i++)
    atr_policy_unref(s->items[i].policy);
  free(s->items);
  atr_policy_set_init(s);
}

/* "policy <path>:2: ...": the message of a file's load error with its
 * whole path where it names the file by its base name. */
static char *load_error(const char *path, const char *why) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  size_t nbase = strlen(base), npath = strlen(path);
  char *out = NULL;
  int n;
  if (strncmp(why, path, npath) == 0)
    n = asprintf(&out, "policy %s", why);
  else if (strncmp(why, base, nbase) == 0 && why[nbase] == ':')
    n = asprintf(&out, "policy %s%s", path, why + nbase);
  else
    n = asprintf(&out, "policy %s: %s", path, why);
  return n < 0 ? NULL : out;
}

/* Whether the directory part of a pattern exists ("config/policies" for
 * the default pattern); a pattern without one is in ".". */
static bool dir_exists(const char *pattern) {
  const char *slash = strrchr(pattern, '/');
  if (!slash)
    return true;
  char dir[4096];
  snprintf(dir, sizeof dir, "%.*s", (int)(slash - pattern), pattern);
  struct stat st;
  return stat(dir[0] ? dir : "/", &st) == 0 || errno != ENOENT;
}

static int load_pattern(atr_policy_set_t *into, const char *pattern,
                        atr_policy_scope_t scope,
                        const atr_policy_limits_t *lim, char **err) {
  glob_t gl;
  int g = glob(pattern, GLOB_ERR, NULL, &gl);
  if (g == GLOB_NOMATCH) {
    globfree(&gl);
    if (strpbrk(pattern, "*?["))
      return 0; /* a directory without policies */
    if (err && asprintf(err, "%s: %s", pattern, strerror(ENOENT)) < 0)
      *err = NULL;
    return ATR_ENOENT;
  }
  if (g == GLOB_ABORTED && strpbrk(pattern, "*?[") && !dir_exists(pattern)) {
    globfree(&gl);
    return 0; /* no such directory: no policies (the default's case) */
  }
  if (g != 0) {
    globfree(&gl);
    if (err && asprintf(err, "%s: cannot list the matching files", pattern) < 0)
      *err = NULL;
    return g == GLOB_NOSPACE ? ATR_ENOMEM : ATR_EIO;
  }
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < gl.gl_pathc; i++) {
    atr_policy_t *p = NULL;
    char *why = NULL;
    rc = atr_policy_load_file(gl.gl_pathv[i], lim, &p, &why);
    if (rc == 0)
      rc = atr_policy_set_add(into, p, scope);
    else if (err)
      *err = load_error(gl.gl_pathv[i], why ? why : atr_strerror(rc));
    free(why);
    atr_policy_unref(p);
  }
  globfree(&gl);
  return rc;
}

int atr_policy_set_load_files(atr_policy_set_t *s, const char *const *globs,
                              atr_policy_scope_t scope,
                              const atr_policy_limits_t *lim, char **err) {
  if (err)
    *err = NULL;
  if (!s)
    return ATR_EINVAL;
  atr_policy_set_t loaded;
  atr_policy_set_init(&loaded);
  int rc = 0;
  for (size_t i = 0; rc == 0 && globs && globs[i]; i++)
    rc = load_pattern(&loaded, globs[i], scope, lim, err);
  if (rc == 0)
    rc = atr_policy_set_add_all(s, &loaded);
  atr_policy_set_clear(&loaded);
  if (rc == ATR_ENOMEM && err && !*err)
    *err = strdup(atr_strerror(rc));
  return rc;
}

/* ---- merging ------------------------------------------------------------- */

typedef enum pass { PASS_DEPLOYMENT, PASS_TEMPLATE, PASS_RECHECK } pass_t;

typedef struct merge {
  const char *hook;
  const char *target; /* "parameters", "schedule", or NULL: nothing to set */
  json_t *input;      /* what the next policy sees */
  json_t *owned;      /* a copy of the input once a value changed */
  json_t *dep_sets;   /* name → the deployment policy that set it */
  const atr_policy_limits_t *lim;
  atr_decision_t *out;
  bool template_changed;
} merge_t;

static bool same_msg(const atr_policy_msg_t *a, const atr_policy_msg_t *b) {
  return strcmp(a->message, b->message) == 0 &&
         strcmp(a->policy, b->policy) == 0 &&
         (a->parameter ? b->parameter && !strcmp(a->parameter, b->parameter)
                       : !b->parameter);
}

static int add_msgs(atr_policy_msg_t **v, size_t *n,
                    const atr_policy_msg_t *add, size_t nadd, bool dedupe) {
  for (size_t i = 0; i < nadd; i++) {
    bool seen = false;
    for (size_t k = 0; dedupe && !seen && k < *n; k++)
      seen = same_msg(&(*v)[k], &add[i]);
    if (seen)
      continue;
    int rc = atr__decision_add(v, n, add[i].message, add[i].parameter,
                               add[i].policy);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* input[target].new, made writable (copied once); NULL on ENOMEM. */
static json_t *writable_target(merge_t *m) {
  if (!m->owned) {
    m->owned = json_deep_copy(m->input);
    if (!m->owned)
      return NULL;
    m->input = m->owned;
  }
  json_t *t = json_object_get(m->input, m->target);
  if (!json_is_object(t)) {
    t = json_object();
    if (!t || json_object_set_new(m->input, m->target, t) != 0)
      return NULL;
  }
  json_t *values = json_object_get(t, "new");
  if (!json_is_object(values)) {
    values = json_object();
    if (!values || json_object_set_new(t, "new", values) != 0)
      return NULL;
  }
  return values;
}

/* The current value of name as text into buf; false when it has none. */
static bool current_value(const merge_t *m, const char *name, char *buf,
                          size_t n) {
  const char *set = atr_decision_get_set(m->out, name);
  if (set) {
    snprintf(buf, n, "%s", set);
    return true;
  }
  json_t *v = json_object_get(
      json_object_get(json_object_get(m->input, m->target), "new"), name);
  if (json_is_string(v))
    snprintf(buf, n, "%s", json_string_value(v));
  else if (json_is_integer(v))
    snprintf(buf, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
  else
    return false;
  return true;
}

/* Record name = value (from policy) and show it to the next policies. A
 * field that is a number in the input stays a number when it can. */
static int apply_set(merge_t *m, const char *name, const char *value,
                     const char *policy) {
  int rc = atr__decision_set(m->out, name, value, policy);
  if (rc != 0)
    return rc;
  json_t *values = writable_target(m);
  if (!values)
    return ATR_ENOMEM;
  json_t *old = json_object_get(values, name), *nv = NULL;
  char *end = NULL;
  long long i = strtoll(value, &end, 10);
  if (json_is_number(old) && *value && end && *end == '\0')
    nv = json_integer((json_int_t)i);
  else
    nv = json_string(value);
  return nv && json_object_set_new(values, name, nv) == 0 ? 0 : ATR_ENOMEM;
}

static int merge_sets(merge_t *m, const atr_decision_t *d, pass_t pass) {
  for (size_t i = 0; i < d->nsets; i++) {
    const atr_policy_setting_t *s = &d->sets[i];
    char cur[1024] = "";
    bool has = current_value(m, s->name, cur, sizeof cur);
    bool differs = !has || strcmp(cur, s->value) != 0;
    int rc = 0;
    if (pass == PASS_DEPLOYMENT) {
      rc = apply_set(m, s->name, s->value, s->policy);
      if (rc == 0 && json_object_set_new(m->dep_sets, s->name,
                                         json_string(s->policy)) != 0)
        rc = ATR_ENOMEM;
    } else if (pass == PASS_TEMPLATE) {
      json_t *by = json_object_get(m->dep_sets, s->name);
      if (by && differs) {
        char *msg = NULL;
        if (asprintf(&msg,
                     "policy.set(\"%s\", \"%s\") was ignored: the deployment "
                     "policy %s set it to \"%s\"",
                     s->name, s->value, json_string_value(by), cur) < 0)
          return ATR_ENOMEM;
        rc = atr__decision_add(&m->out->warnings, &m->out->nwarnings, msg, NULL,
                               s->policy);
        free(msg);
      } else if (!by && differs) {
        rc = apply_set(m, s->name, s->value, s->policy);
        m->template_changed = true;
      }
    } else if (differs) { /* a deployment policy adjusts the final value */
      rc = apply_set(m, s->name, s->value, s->policy);
    }
    if (rc != 0)
      return rc;
  }
  return 0;
}

static int run_one(merge_t *m, const atr_policy_t *p, pass_t pass) {
  atr_decision_t d;
  int rc = atr_policy_eval(p, m->hook, m->input, m->lim, &d);
  bool again = pass == PASS_RECHECK;
  if (rc == 0)
    rc =
        add_msgs(&m->out->denies, &m->out->ndenies, d.denies, d.ndenies, again);
  if (rc == 0)
    rc = add_msgs(&m->out->warnings, &m->out->nwarnings, d.warnings,
                  d.nwarnings, again);
  if (rc == 0 && !again)
    rc =
        add_msgs(&m->out->output, &m->out->noutput, d.output, d.noutput, false);
  if (rc == 0 && m->target)
    rc = merge_sets(m, &d, pass);
  atr_decision_clear(&d);
  return rc;
}

static int run_scope(merge_t *m, const atr_policy_set_t *s,
                     atr_policy_scope_t scope, pass_t pass) {
  for (size_t i = 0; i < s->n; i++) {
    if (s->items[i].scope != scope)
      continue;
    int rc = run_one(m, s->items[i].policy, pass);
    if (rc != 0)
      return rc;
  }
  return 0;
}

int atr_policy_set_eval(const atr_policy_set_t *s, const char *hook,
                        json_t *input, const atr_policy_limits_t *lim,
                        atr_decision_t *out) {
  if (!out)
    return ATR_EINVAL;
  atr_decision_init(out);
  if (!s || !atr_policy_hook_valid(hook) || !json_is_object(input))
    return ATR_EINVAL;
  merge_t m = {.hook = hook, .input = input, .lim = lim, .out = out};
  if (strcmp(hook, "schedule") == 0)
    m.target = "schedule";
  else if (strcmp(hook, "template_push") != 0)
    m.target = "parameters";
  m.dep_sets = json_object();
  int rc = m.dep_sets ? 0 : ATR_ENOMEM;
  if (rc == 0)
    rc = run_scope(&m, s, ATR_POLICY_DEPLOYMENT, PASS_DEPLOYMENT);
  if (rc == 0)
    rc = run_scope(&m, s, ATR_POLICY_TEMPLATE, PASS_TEMPLATE);
  if (rc == 0 && m.template_changed)
    rc = run_scope(&m, s, ATR_POLICY_DEPLOYMENT, PASS_RECHECK);
  json_decref(m.dep_sets);
  json_decref(m.owned);
  return rc;
}
