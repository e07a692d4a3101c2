/* env.c — the environment of terraform and everything it starts.
 *
 * The server's own environment goes through (PATH, HOME, proxies,
 * TF_PLUGIN_CACHE_DIR, cloud credentials an operator set for Terraform),
 * except its ATRIUM_* variables: they configure the server and may hold
 * its secrets, and templates are written by people who should not see
 * them. Then the plugin's own: TF_IN_AUTOMATION=1, TF_INPUT=0,
 * CHECKPOINT_DISABLE=1 and, for a build, the workspace facts
 * (ATRIUM_WORKSPACE_ID, ...) and every parameter as
 * ATRIUM_PARAM_<NAME> (upper case, anything but letters and digits as
 * "_"), sensitive ones included: this is how a local-exec script reads
 * them.
 */
#include "internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

typedef struct envv {
  char **v;
  size_t n, cap;
  bool failed;
} envv_t;

static void add(envv_t *e, char *entry) {
  if (entry == NULL || e->failed) {
    e->failed = true;
    free(entry);
    return;
  }
  if (e->n + 2 > e->cap) {
    size_t cap = e->cap ? e->cap * 2 : 64;
    char **v = realloc(e->v, cap * sizeof *v);
    if (v == NULL) {
      e->failed = true;
      free(entry);
      return;
    }
    e->v = v;
    e->cap = cap;
  }
  e->v[e->n++] = entry;
  e->v[e->n] = NULL;
}

static void addf(envv_t *e, const char *name, const char *value) {
  if (value == NULL)
    return;
  char *s = NULL;
  if (asprintf(&s, "%s=%s", name, value) < 0)
    s = NULL;
  add(e, s);
}

static bool ours(const char *entry) {
  static const char *const names[] = {
      "TF_IN_AUTOMATION=", "TF_INPUT=", "CHECKPOINT_DISABLE="};
  if (strncmp(entry, "ATRIUM_", 7) == 0)
    return true;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (strncmp(entry, names[i], strlen(names[i])) == 0)
      return true;
  }
  return false;
}

char *tf_env_param_name(const char *param) {
  char *name = NULL;
  if (asprintf(&name, "ATRIUM_PARAM_%s", param) < 0)
    return NULL;
  for (char *c = name + 13; *c != '\0'; c++)
    *c = isalnum((unsigned char)*c) ? (char)toupper((unsigned char)*c) : '_';
  return name;
}

static void add_param(envv_t *e, const atr_param_value_t *p) {
  if (p->name == NULL)
    return;
  char *name = tf_env_param_name(p->name);
  if (name == NULL) {
    e->failed = true;
    return;
  }
  addf(e, name, p->value != NULL ? p->value : "");
  free(name);
}

static void add_facts(envv_t *e, const atr_prov_apply_request_t *req) {
  char build[32];
  snprintf(build, sizeof build, "%" PRId64, req->build_number);
  addf(e, "ATRIUM_WORKSPACE_ID", req->workspace_id);
  addf(e, "ATRIUM_WORKSPACE_NAME", req->workspace_name);
  addf(e, "ATRIUM_OWNER_ID", req->owner_id);
  addf(e, "ATRIUM_OWNER_NAME", req->owner_name);
  addf(e, "ATRIUM_OWNER_EMAIL", req->owner_email);
  addf(e, "ATRIUM_ORGANIZATION_ID", req->organization_id);
  addf(e, "ATRIUM_TEMPLATE_ID", req->template_id);
  addf(e, "ATRIUM_TEMPLATE_NAME", req->template_name);
  addf(e, "ATRIUM_TEMPLATE_VERSION", req->template_version_name);
  addf(e, "ATRIUM_TRANSITION", tf_transition_name(req->transition));
  addf(e, "ATRIUM_BUILD_NUMBER", build);
  for (size_t i = 0; i < req->nparams; i++)
    add_param(e, atr_param_at(req->params, i));
}

char **tf_env_new(const atr_prov_apply_request_t *req) {
  envv_t e = {0};
  for (char **p = environ; p != NULL && *p != NULL; p++) {
    if (!ours(*p))
      add(&e, strdup(*p));
  }
  add(&e, strdup("TF_IN_AUTOMATION=1"));
  add(&e, strdup("TF_INPUT=0"));
  add(&e, strdup("CHECKPOINT_DISABLE=1"));
  if (req != NULL)
    add_facts(&e, req);
  if (e.failed) {
    tf_env_free(e.v);
    return NULL;
  }
  return e.v;
}

void tf_env_free(char **envp) {
  for (char **p = envp; p != NULL && *p != NULL; p++)
    free(*p);
  free(envp);
}
