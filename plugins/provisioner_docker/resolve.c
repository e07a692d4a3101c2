/* resolve.c — from workspace.yaml as written to the containers and
 * volumes of one build: references expanded with the build's parameter
 * values and facts, values checked, Docker names and labels made.
 *
 * At import (no build yet) the same code runs without values: a value
 * that uses a reference is then not checked (it is, at every build), so
 * an image chosen by a parameter is checked against allowed_images when
 * a workspace starts.
 */
#include "internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
  REF_ANY = 1u << 0,    /* the value uses a reference */
  REF_SECRET = 1u << 1, /* … to a sensitive parameter */
};

typedef struct resolver {
  const dk_ctx_t *c;
  const atr_prov_apply_request_t *req; /* NULL: an import */
  dk_plan_t *plan;
  dk_errs_t *errs;
  bool oom;
} resolver_t;

static void verr(resolver_t *r, const dk_text_t *t, const char *fmt, ...)
    ATR_PRINTF(3, 4);
static void verr(resolver_t *r, const dk_text_t *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (msg == NULL) {
    r->oom = true;
    return;
  }
  dk_errs_addf(r->errs, DK_SPEC_FILE ":%u:%u: %s", t->line, t->col, msg);
  free(msg);
}

static char *xdup(resolver_t *r, const char *s) {
  char *d = strdup(s ? s : "");
  if (d == NULL)
    r->oom = true;
  return d;
}

/* ---- references */

typedef struct expansion {
  const atr_prov_apply_request_t *req;
  dk_buf_t out;
  unsigned flags;
} expansion_t;

static int add_text(void *ud, const char *s, size_t n) {
  expansion_t *x = ud;
  return dk_buf_append(&x->out, s, n);
}

static const char *fact(const atr_prov_apply_request_t *req, const char *name,
                        size_t n, char num[32]) {
  snprintf(num, 32, "%lld", (long long)req->build_number);
  const char *const facts[][2] = {{"workspace.name", req->workspace_name},
                                  {"workspace.id", req->workspace_id},
                                  {"owner.name", req->owner_name},
                                  {"owner.email", req->owner_email},
                                  {"owner.id", req->owner_id},
                                  {"template.name", req->template_name},
                                  {"build.number", num}};
  for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++) {
    if (strlen(facts[i][0]) == n && strncmp(facts[i][0], name, n) == 0)
      return facts[i][1] ? facts[i][1] : "";
  }
  return NULL;
}

static int add_ref(void *ud, const char *name, size_t n, size_t at) {
  (void)at;
  expansion_t *x = ud;
  x->flags |= REF_ANY;
  if (x->req == NULL)
    return 0;
  if (n > 6 && strncmp(name, "param.", 6) == 0) {
    for (size_t i = 0; i < x->req->nparams; i++) {
      const atr_param_value_t *p = atr_param_at(x->req->params, i);
      if (p->name != NULL && strlen(p->name) == n - 6 &&
          strncmp(p->name, name + 6, n - 6) == 0) {
        if (p->sensitive)
          x->flags |= REF_SECRET;
        const char *v = p->value ? p->value : "";
        return dk_buf_append(&x->out, v, strlen(v));
      }
    }
    return ATR_ENOENT; /* dk_spec_load checked them: not reached */
  }
  char num[32];
  const char *v = fact(x->req, name, n, num);
  return v != NULL ? dk_buf_append(&x->out, v, strlen(v)) : ATR_ENOENT;
}

/* The value with its references expanded (malloc'd), or NULL when it is
 * not set. */
static char *expand(resolver_t *r, const dk_text_t *t, unsigned *flags) {
  *flags = 0;
  if (t->raw == NULL)
    return NULL;
  expansion_t x = {.req = r->req};
  dk_walk_t w = {.ud = &x, .text = add_text, .ref = add_ref};
  int rc = dk_refs_walk(t->raw, &w, NULL);
  if (rc == 0 && x.out.data == NULL)
    rc = dk_buf_append(&x.out, "", 0);
  if (rc != 0) { /* dk_spec_load reported a bad reference already */
    dk_buf_free(&x.out);
    r->oom = r->oom || rc == ATR_ENOMEM;
    return NULL;
  }
  *flags = x.flags;
  return x.out.data;
}

/* Whether a value can be checked now: always at a build, at an import
 * only when it uses no reference. */
static bool checkable(const resolver_t *r, unsigned flags) {
  return r->req != NULL || !(flags & REF_ANY);
}

/* ---- names and labels */

static bool plain_name(const char *s, bool lower_only) {
  if (s == NULL || !isalnum((unsigned char)*s) || strlen(s) > 63)
    return false;
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (!(isdigit(ch) || (ch >= 'a' && ch <= 'z') ||
          (!lower_only && ch >= 'A' && ch <= 'Z') || ch == '_' || ch == '.' ||
          ch == '-'))
      return false;
  }
  return true;
}

char *dk_volume_name(const char *workspace_id, const char *name) {
  char *v = NULL;
  if (asprintf(&v, "atrium-%s-%s", workspace_id ? workspace_id : "", name) < 0)
    return NULL;
  return v;
}

char *dk_workspace_label(const dk_ctx_t *c, const char *workspace_id) {
  char *v = NULL;
  if (asprintf(&v, "%s.workspace_id=%s", c->label_prefix,
               workspace_id ? workspace_id : "") < 0)
    return NULL;
  return v;
}

static void kv_push(resolver_t *r, dk_kv_t **v, size_t *n, const char *key,
                    char *value_take) {
  dk_kv_t *grown = realloc(*v, (*n + 1) * sizeof *grown);
  char *k = xdup(r, key);
  if (grown == NULL || k == NULL || value_take == NULL) {
    if (grown != NULL)
      *v = grown;
    free(k);
    free(value_take);
    r->oom = true;
    return;
  }
  *v = grown;
  grown[(*n)++] = (dk_kv_t){k, value_take};
}

static void atrium_labels(resolver_t *r, dk_kv_t **v, size_t *n) {
  const atr_prov_apply_request_t *q = r->req;
  if (q == NULL)
    return;
  char num[32];
  snprintf(num, sizeof num, "%lld", (long long)q->build_number);
  const char *const facts[][2] = {
      {"workspace_id", q->workspace_id}, {"workspace_name", q->workspace_name},
      {"owner_id", q->owner_id},         {"owner_name", q->owner_name},
      {"template_id", q->template_id},   {"build_number", num}};
  for (size_t i = 0; i < sizeof facts / sizeof facts[0]; i++) {
    char *key = NULL;
    if (asprintf(&key, "%s.%s", r->c->label_prefix, facts[i][0]) < 0) {
      r->oom = true;
      return;
    }
    kv_push(r, v, n, key, xdup(r, facts[i][1]));
    free(key);
  }
}

/* report: say what is wrong (once per container, not again for the
 * volumes, which get the main container's labels). */
static void spec_labels(resolver_t *r, const dk_csrc_t *s, dk_kv_t **v,
                        size_t *n, bool report) {
  size_t plen = strlen(r->c->label_prefix);
  for (size_t i = 0; i < s->nlabels; i++) {
    const dk_pair_t *p = &s->labels[i];
    if (strncmp(p->key, r->c->label_prefix, plen) == 0 && p->key[plen] == '.') {
      if (report)
        verr(r, &p->value,
             "label \"%s\" starts with %s., which atrium keeps for its own "
             "labels (%s.label_prefix); choose another name",
             p->key, r->c->label_prefix, DK_SECTION);
      continue;
    }
    unsigned flags;
    kv_push(r, v, n, p->key, expand(r, &p->value, &flags));
  }
}

/* ---- one container */

static char *docker_name(resolver_t *r, const char *extra) {
  const atr_prov_apply_request_t *q = r->req;
  char *name = NULL;
  if (asprintf(&name, "atrium-%s-%s%s%s",
               q && q->owner_name ? q->owner_name : "",
               q && q->workspace_name ? q->workspace_name : "",
               extra ? "-" : "", extra ? extra : "") < 0) {
    r->oom = true;
    return NULL;
  }
  dk_sanitize_name(name);
  return name;
}

/* RFC 1123: lower-case letters, digits and '-', at most 63, not starting
 * or ending with '-'. NULL when nothing is left. */
static char *hostname(resolver_t *r, const char *extra) {
  const char *from = extra                              ? extra
                     : r->req && r->req->workspace_name ? r->req->workspace_name
                                                        : "";
  char *h = xdup(r, from);
  if (h == NULL)
    return NULL;
  dk_sanitize_name(h);
  size_t n = 0;
  for (char *p = h; *p; p++) {
    if (*p == '_' || *p == '.')
      *p = '-';
    if (n > 0 || *p != '-')
      h[n++] = *p;
  }
  while (n > 0 && (n > 63 || h[n - 1] == '-'))
    n--;
  h[n] = '\0';
  if (n == 0) {
    free(h);
    return NULL;
  }
  return h;
}

static void resolve_image(resolver_t *r, const dk_csrc_t *s,
                          dk_container_t *out) {
  unsigned f;
  out->image = expand(r, &s->image, &f);
  if (out->image == NULL || !checkable(r, f))
    return;
  if (!dk_image_valid(out->image)) {
    verr(r, &s->image,
         "image \"%s\" is not an image reference; write it like "
         "registry.example.com/team/name:tag",
         out->image);
  } else if (!dk_image_allowed(out->image, r->c->allowed_images)) {
    char *why = dk_image_refusal(out->image, r->c->allowed_images);
    verr(r, &s->image, "%s", why ? why : "image is not allowed");
    free(why);
  }
}

static void resolve_command(resolver_t *r, const dk_csrc_t *s,
                            dk_container_t *out) {
  if (s->ncommand == 0)
    return;
  size_t n = s->command_is_list ? s->ncommand : 3;
  out->command = calloc(n, sizeof *out->command);
  if (out->command == NULL) {
    r->oom = true;
    return;
  }
  out->ncommand = n;
  unsigned f;
  if (!s->command_is_list) {
    out->command[0] = xdup(r, "/bin/sh");
    out->command[1] = xdup(r, "-c");
    out->command[2] = expand(r, &s->command[0], &f);
    if (out->command[2] != NULL && checkable(r, f) && *out->command[2] == '\0')
      verr(r, &s->command[0], "command is empty");
    return;
  }
  for (size_t i = 0; i < n; i++)
    out->command[i] = expand(r, &s->command[i], &f);
}

static void resolve_limits(resolver_t *r, const dk_csrc_t *s,
                           dk_container_t *out) {
  unsigned f;
  char *cpus = expand(r, &s->cpus, &f);
  if (cpus != NULL && checkable(r, f) &&
      dk_parse_cpus(cpus, &out->nano_cpus) != 0)
    verr(r, &s->cpus,
         "cpus \"%s\" is not a number of CPUs; write it like 2 or 1.5", cpus);
  free(cpus);
  char *mem = expand(r, &s->memory, &f);
  if (mem != NULL && checkable(r, f) && dk_parse_memory(mem, &out->memory) != 0)
    verr(r, &s->memory,
         "memory \"%s\" is not a size; write bytes or a size with a unit: "
         "512MiB, 1GiB, 256m, 1g",
         mem);
  free(mem);
}

static void resolve_env(resolver_t *r, const dk_csrc_t *s,
                        dk_container_t *out) {
  for (size_t i = 0; i < s->nenv; i++) {
    const dk_pair_t *p = &s->env[i];
    if (strchr(p->key, '=') != NULL) {
      verr(r, &p->value, "env name \"%s\" contains '='", p->key);
      continue;
    }
    unsigned f;
    kv_push(r, &out->env, &out->nenv, p->key, expand(r, &p->value, &f));
    if (f & REF_SECRET)
      out->env_sensitive = true;
  }
}

static void plan_volume(resolver_t *r, const char *docker) {
  for (size_t i = 0; i < r->plan->nvolumes; i++) {
    if (strcmp(r->plan->volumes[i], docker) == 0)
      return;
  }
  char **grown =
      realloc(r->plan->volumes, (r->plan->nvolumes + 1) * sizeof *grown);
  char *d = xdup(r, docker);
  if (grown == NULL || d == NULL) {
    if (grown != NULL)
      r->plan->volumes = grown;
    free(d);
    r->oom = true;
    return;
  }
  r->plan->volumes = grown;
  grown[r->plan->nvolumes++] = d;
}

static void resolve_volume(resolver_t *r, const dk_vol_src_t *v,
                           dk_container_t *out) {
  unsigned fn, fp;
  char *name = expand(r, &v->name, &fn);
  char *path = expand(r, &v->path, &fp);
  bool ok = name != NULL && path != NULL;
  if (ok && checkable(r, fn) && !plain_name(name, false)) {
    verr(r, &v->name,
         "volume name \"%s\" may only hold letters, digits, '_', '.' and "
         "'-', starting with a letter or digit (at most 63)",
         name);
    ok = false;
  }
  if (ok && checkable(r, fp) && path[0] != '/') {
    verr(r, &v->path, "volume path \"%s\" is not an absolute path", path);
    ok = false;
  }
  for (size_t k = 0; ok && k < out->nmounts; k++) {
    if (strcmp(out->mounts[k].path, path) == 0 && checkable(r, fp)) {
      verr(r, &v->path, "two volumes are mounted at %s", path);
      ok = false;
    }
  }
  char *docker =
      ok ? dk_volume_name(r->req ? r->req->workspace_id : "", name) : NULL;
  free(name);
  if (docker == NULL) {
    free(path);
    r->oom = r->oom || ok;
    return;
  }
  plan_volume(r, docker);
  out->mounts[out->nmounts++] = (dk_mount_t){docker, path};
}

static void resolve_container(resolver_t *r, const dk_csrc_t *s,
                              dk_container_t *out, bool main) {
  unsigned f;
  char *extra = NULL;
  if (!main) {
    extra = expand(r, &s->name, &f);
    if (extra != NULL && checkable(r, f) && !plain_name(extra, true))
      verr(r, &s->name,
           "container name \"%s\" may only hold lower-case letters, digits, "
           "'_', '.' and '-', starting with a letter or digit (at most 63)",
           extra);
  }
  out->name = docker_name(r, main ? NULL : extra ? extra : "");
  out->hostname = hostname(r, main ? NULL : extra);
  free(extra);
  resolve_image(r, s, out);
  resolve_command(r, s, out);
  out->working_dir = expand(r, &s->working_dir, &f);
  if (out->working_dir != NULL && checkable(r, f) && out->working_dir[0] != '/')
    verr(r, &s->working_dir, "working_dir \"%s\" is not an absolute path",
         out->working_dir);
  resolve_env(r, s, out);
  resolve_limits(r, s, out);
  out->network_mode = expand(r, &s->network_mode, &f);
  if (out->network_mode == NULL)
    out->network_mode = xdup(r, r->c->network_mode);
  else if (checkable(r, f) && *out->network_mode == '\0')
    verr(r, &s->network_mode,
         "network_mode is empty; write none, host or a network's name");
  out->mounts = calloc(s->nvolumes ? s->nvolumes : 1, sizeof *out->mounts);
  if (out->mounts == NULL)
    r->oom = true;
  for (size_t i = 0; out->mounts != NULL && i < s->nvolumes; i++)
    resolve_volume(r, &s->volumes[i], out);
  atrium_labels(r, &out->labels, &out->nlabels);
  spec_labels(r, s, &out->labels, &out->nlabels, true);
}

/* Extra containers' names once each (a clash would replace a container
 * of the same workspace). */
static void check_unique_names(resolver_t *r, const dk_spec_t *spec) {
  for (size_t i = 1; i < r->plan->ncontainers; i++) {
    for (size_t k = 0; k < i; k++) {
      const char *a = r->plan->containers[i].name;
      const char *b = r->plan->containers[k].name;
      if (a != NULL && b != NULL && strcmp(a, b) == 0 &&
          (r->req != NULL || spec->containers[i].name.raw == NULL ||
           strstr(spec->containers[i].name.raw, "${") == NULL)) {
        verr(r, &spec->containers[i].name,
             "two containers have the name %s; give each extra container "
             "its own name",
             a);
        break;
      }
    }
  }
}

int dk_plan_make(const dk_ctx_t *c, const dk_spec_t *spec,
                 const atr_prov_apply_request_t *req, dk_plan_t *plan,
                 dk_errs_t *errs) {
  memset(plan, 0, sizeof *plan);
  if (spec->ncontainers == 0) /* workspace.yaml was not a map */
    return 0;
  resolver_t r = {.c = c, .req = req, .plan = plan, .errs = errs};
  size_t before = errs->n;
  plan->containers = calloc(spec->ncontainers, sizeof *plan->containers);
  if (plan->containers == NULL)
    return ATR_ENOMEM;
  plan->ncontainers = spec->ncontainers;
  for (size_t i = 0; i < spec->ncontainers; i++)
    resolve_container(&r, &spec->containers[i], &plan->containers[i], i == 0);
  if (req != NULL)
    check_unique_names(&r, spec);
  atrium_labels(&r, &plan->volume_labels, &plan->nvolume_labels);
  spec_labels(&r, &spec->containers[0], &plan->volume_labels,
              &plan->nvolume_labels, false);
  int rc = r.oom ? ATR_ENOMEM : errs->n > before ? ATR_EINVAL : 0;
  if (rc != 0 || req == NULL)
    dk_plan_free(plan);
  return rc;
}

static void kv_free(dk_kv_t *v, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(v[i].key);
    free(v[i].value);
  }
  free(v);
}

void dk_plan_free(dk_plan_t *p) {
  for (size_t i = 0; i < p->ncontainers; i++) {
    dk_container_t *c = &p->containers[i];
    free(c->name);
    free(c->image);
    for (size_t k = 0; k < c->ncommand; k++)
      free(c->command[k]);
    free(c->command);
    free(c->working_dir);
    kv_free(c->env, c->nenv);
    for (size_t k = 0; k < c->nmounts; k++) {
      free(c->mounts[k].volume);
      free(c->mounts[k].path);
    }
    free(c->mounts);
    kv_free(c->labels, c->nlabels);
    free(c->network_mode);
    free(c->hostname);
  }
  free(p->containers);
  for (size_t i = 0; i < p->nvolumes; i++)
    free(p->volumes[i]);
  free(p->volumes);
  kv_free(p->volume_labels, p->nvolume_labels);
  memset(p, 0, sizeof *p);
}
