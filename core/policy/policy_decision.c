/* core/policy_decision.c — a decision: denies, warnings and values set, as
 * plain C for the callers and as JSON for the audit log and the CLI. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "policy.h"
#include "policy_internal.h"

void atr_decision_init(atr_decision_t *d) {
  memset(d, 0, sizeof *d);
}

static void msgs_free(atr_policy_msg_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].message);
    free(v[i].parameter);
    free(v[i].policy);
  }
  free(v);
}

void atr_decision_clear(atr_decision_t *d) {
  if (!d)
    return;
  msgs_free(d->denies, d->ndenies);
  msgs_free(d->warnings, d->nwarnings);
  msgs_free(d->output, d->noutput);
  for (size_t i = 0; i < d->nsets; i++) {
    free(d->sets[i].name);
    free(d->sets[i].value);
    free(d->sets[i].policy);
  }
  free(d->sets);
  atr_decision_init(d);
}

bool atr_decision_denied(const atr_decision_t *d) {
  return d && d->ndenies > 0;
}

const char *atr_decision_get_set(const atr_decision_t *d, const char *name) {
  for (size_t i = 0; d && name && i < d->nsets; i++)
    if (strcmp(d->sets[i].name, name) == 0)
      return d->sets[i].value;
  return NULL;
}

/* A copy cut at ATR__POLICY_MAX_MESSAGE bytes, on a UTF-8 boundary, with
 * "…" after the cut. */
static char *cut_copy(const char *s) {
  size_t n = strlen(s);
  if (n <= ATR__POLICY_MAX_MESSAGE)
    return strdup(s);
  n = ATR__POLICY_MAX_MESSAGE;
  while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
    n--;
  char *out = malloc(n + 4);
  if (out)
    snprintf(out, n + 4, "%.*s\xe2\x80\xa6", (int)n, s);
  return out;
}

int atr__decision_add(atr_policy_msg_t **v, size_t *n, const char *message,
                      const char *parameter, const char *policy) {
  atr_policy_msg_t m = {cut_copy(message ? message : ""),
                        parameter ? strdup(parameter) : NULL,
                        strdup(policy ? policy : "")};
  atr_policy_msg_t *grown = realloc(*v, (*n + 1) * sizeof **v);
  if (!m.message || (parameter && !m.parameter) || !m.policy || !grown) {
    free(m.message);
    free(m.parameter);
    free(m.policy);
    if (grown)
      *v = grown;
    return ATR_ENOMEM;
  }
  *v = grown;
  (*v)[(*n)++] = m;
  return 0;
}

int atr__decision_set(atr_decision_t *d, const char *name, const char *value,
                      const char *policy) {
  char *v = strdup(value), *p = strdup(policy ? policy : "");
  if (!v || !p) {
    free(v);
    free(p);
    return ATR_ENOMEM;
  }
  for (size_t i = 0; i < d->nsets; i++) {
    if (strcmp(d->sets[i].name, name) == 0) {
      free(d->sets[i].value);
      free(d->sets[i].policy);
      d->sets[i].value = v;
      d->sets[i].policy = p;
      return 0;
    }
  }
  char *n = strdup(name);
  atr_policy_setting_t *grown =
      realloc(d->sets, (d->nsets + 1) * sizeof *d->sets);
  if (!n || !grown) {
    free(n);
    free(v);
    free(p);
    if (grown)
      d->sets = grown;
    return ATR_ENOMEM;
  }
  d->sets = grown;
  d->sets[d->nsets++] = (atr_policy_setting_t){n, v, p};
  return 0;
}

static json_t *msgs_json(const atr_policy_msg_t *v, size_t n, bool param) {
  json_t *arr = json_array();
  for (size_t i = 0; arr && i < n; i++) {
    json_t *o = json_object();
    bool bad = !o ||
               json_object_set_new(o, "message", json_string(v[i].message)) ||
               (param &&
                json_object_set_new(o, "parameter",
                                    v[i].parameter ? json_string(v[i].parameter)
                                                   : json_null())) ||
               json_object_set_new(o, "policy", json_string(v[i].policy));
    if (bad)
      json_decref(o);
    if (bad || json_array_append_new(arr, o) != 0) {
      json_decref(arr);
      return NULL;
    }
  }
  return arr;
}

json_t *atr_decision_to_json(const atr_decision_t *d) {
  json_t *sets = json_object(), *by = json_object();
  for (size_t i = 0; sets && by && i < d->nsets; i++) {
    if (json_object_set_new(sets, d->sets[i].name,
                            json_string(d->sets[i].value)) != 0 ||
        json_object_set_new(by, d->sets[i].name,
                            json_string(d->sets[i].policy)) != 0) {
      json_decref(sets);
      sets = NULL;
    }
  }
  json_t *denies = msgs_json(d->denies, d->ndenies, true);
  json_t *warnings = msgs_json(d->warnings, d->nwarnings, false);
  if (!sets || !by || !denies || !warnings) {
    json_decref(sets);
    json_decref(by);
    json_decref(denies);
    json_decref(warnings);
    return NULL;
  }
  return json_pack("{s:o, s:o, s:o, s:o}", "denies", denies, "warnings",
                   warnings, "sets", sets, "set_by", by);
}
