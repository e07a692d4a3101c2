/* spec.c — workspace.yaml: read it with libyaml, check its shape, keys
 * and references, and keep every string as written (references not yet
 * expanded) with the line and column where it starts.
 *
 * Every problem is reported, not only the first, each as
 * "workspace.yaml:LINE:COL: what is wrong (what would be right)". Lines
 * and columns count from 1, columns in characters, as editors show them.
 *
 * References: ${param.NAME} for a parameter template.yaml declares, and
 * the facts ${workspace.name}, ${workspace.id}, ${owner.name},
 * ${owner.email}, ${owner.id}, ${template.name}, ${build.number}. $${
 * writes a literal ${. They may appear in any string value (not in keys).
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>

#define DK_SPEC_MAX ((size_t)1024 * 1024)

static const char *const facts[] = {
    "workspace.name", "workspace.id",  "owner.name",   "owner.email",
    "owner.id",       "template.name", "build.number", NULL};

/* Keys of a container's mapping; `containers` only at the top, `name`
 * only in an extra container. Sorted: the error lists them as they are. */
static const char *const main_keys[] = {
    "command", "containers",   "cpus",    "env",         "image", "labels",
    "memory",  "network_mode", "volumes", "working_dir", NULL};
static const char *const extra_keys[] = {
    "command", "cpus",         "env",     "image",       "labels", "memory",
    "name",    "network_mode", "volumes", "working_dir", NULL};

typedef struct loader {
  const char *text; /* the file */
  size_t len;
  yaml_document_t doc;
  const char *const *params;
  size_t nparams;
  dk_errs_t *errs;
  bool oom;
} loader_t;

/* ---- positions */

/* libyaml counts marks in characters; this is the byte offset of the
 * character with that index. */
static size_t byte_at(const loader_t *ld, size_t chars) {
  size_t b = 0;
  for (size_t c = 0; b < ld->len; b++) {
    if (((unsigned char)ld->text[b] & 0xC0) != 0x80) {
      if (c == chars)
        return b;
      c++;
    }
  }
  return b;
}

/* Line and column (from 1, column in characters) of a byte offset. */
static void line_col(const loader_t *ld, size_t at, unsigned *line,
                     unsigned *col) {
  *line = 1;
  *col = 1;
  for (size_t b = 0; b < at && b < ld->len; b++) {
    if (ld->text[b] == '\n') {
      (*line)++;
      *col = 1;
    } else if (((unsigned char)ld->text[b] & 0xC0) != 0x80) {
      (*col)++;
    }
  }
}

static void errf(loader_t *ld, unsigned line, unsigned col, const char *fmt,
                 ...) ATR_PRINTF(4, 5);
static void errf(loader_t *ld, unsigned line, unsigned col, const char *fmt,
                 ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (msg == NULL) {
    ld->oom = true;
    return;
  }
  dk_errs_addf(ld->errs, DK_SPEC_FILE ":%u:%u: %s", line, col, msg);
  free(msg);
}

static void node_pos(const yaml_node_t *n, unsigned *line, unsigned *col) {
  *line = (unsigned)n->start_mark.line + 1;
  *col = (unsigned)n->start_mark.column + 1;
}

#define NODE_ERR(ld, n, ...)                                                   \
  do {                                                                         \
    unsigned l_, c_;                                                           \
    node_pos((n), &l_, &c_);                                                   \
    errf((ld), l_, c_, __VA_ARGS__);                                           \
  } while (0)

/* ---- references */

int dk_refs_walk(const char *raw, const dk_walk_t *w, size_t *bad_at) {
  const char *p = raw, *lit = raw;
  int rc = 0;
  while (rc == 0 && (p = strchr(p, '$')) != NULL) {
    if (p[1] == '$' && p[2] == '{') { /* $${ is a literal ${ */
      rc = w->text(w->ud, lit, (size_t)(p - lit));
      lit = p + 1;
      p += 3;
      continue;
    }
    if (p[1] != '{') {
      p++;
      continue;
    }
    const char *close = strchr(p + 2, '}');
    if (close == NULL) {
      if (bad_at != NULL)
        *bad_at = (size_t)(p - raw);
      return ATR_EINVAL;
    }
    rc = w->text(w->ud, lit, (size_t)(p - lit));
    const char *s = p + 2, *e = close;
    while (s < e && (*s == ' ' || *s == '\t'))
      s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
      e--;
    if (rc == 0)
      rc = w->ref(w->ud, s, (size_t)(e - s), (size_t)(p - raw));
    p = lit = close + 1;
  }
  if (rc == 0)
    rc = w->text(w->ud, lit, strlen(lit));
  return rc;
}

/* The position of the k-th reference (from 0) of a scalar, found in its
 * source text the way dk_refs_walk finds it in the value. */
static void ref_pos(const loader_t *ld, const yaml_node_t *n, size_t k,
                    unsigned *line, unsigned *col) {
  size_t b = byte_at(ld, n->start_mark.index);
  size_t end = byte_at(ld, n->end_mark.index);
  size_t seen = 0;
  for (; b + 1 < end; b++) {
    if (ld->text[b] != '$')
      continue;
    if (ld->text[b + 1] == '$' && b + 2 < end && ld->text[b + 2] == '{') {
      b += 2;
      continue;
    }
    if (ld->text[b + 1] == '{' && seen++ == k) {
      line_col(ld, b, line, col);
      return;
    }
  }
  node_pos(n, line, col);
}

static bool in_list(const char *name, size_t n, const char *const *list,
                    size_t count) {
  for (size_t i = 0; list != NULL && (count ? i < count : list[i] != NULL);
       i++) {
    if (list[i] != NULL && strlen(list[i]) == n &&
        strncmp(list[i], name, n) == 0)
      return true;
  }
  return false;
}

typedef struct ref_check {
  loader_t *ld;
  const yaml_node_t *node;
  size_t k;
} ref_check_t;

static int ignore_text(void *ud, const char *s, size_t n) {
  (void)ud;
  (void)s;
  (void)n;
  return 0;
}

static void params_list(const loader_t *ld, dk_buf_t *b) {
  for (size_t i = 0; i < ld->nparams; i++)
    dk_buf_printf(b, "%s%s", i ? ", " : "", ld->params[i]);
}

static void unknown_ref(loader_t *ld, const ref_check_t *rc, const char *name,
                        size_t n) {
  unsigned line, col;
  ref_pos(ld, rc->node, rc->k, &line, &col);
  dk_buf_t why = {0};
  bool param = n > 6 && strncmp(name, "param.", 6) == 0;
  if (!param) {
    dk_buf_printf(&why, "facts: ");
    for (size_t i = 0; facts[i]; i++)
      dk_buf_printf(&why, "%s%s", i ? ", " : "", facts[i]);
    dk_buf_printf(&why, "; ");
  }
  if (ld->nparams == 0) {
    dk_buf_printf(&why, "template.yaml declares no parameters");
  } else {
    dk_buf_printf(&why, "parameters: ");
    params_list(ld, &why);
  }
  errf(ld, line, col, "unknown reference ${%.*s} (%s)", (int)n, name,
       why.data ? why.data : "");
  dk_buf_free(&why);
}

static int check_ref(void *ud, const char *name, size_t n, size_t at) {
  (void)at;
  ref_check_t *rc = ud;
  bool ok = n > 6 && strncmp(name, "param.", 6) == 0
                ? in_list(name + 6, n - 6, rc->ld->params, rc->ld->nparams)
                : in_list(name, n, facts, 0);
  if (!ok)
    unknown_ref(rc->ld, rc, name, n);
  rc->k++;
  return 0;
}

static void check_refs(loader_t *ld, const yaml_node_t *n, const char *value) {
  ref_check_t rc = {.ld = ld, .node = n};
  dk_walk_t w = {.ud = &rc, .text = ignore_text, .ref = check_ref};
  size_t bad = 0;
  if (dk_refs_walk(value, &w, &bad) == ATR_EINVAL) {
    unsigned line, col;
    ref_pos(ld, n, rc.k, &line, &col);
    errf(ld, line, col,
         "unterminated reference \"%.20s\"; close it with }, or write $${ "
         "for a literal ${",
         value + bad);
  }
}

/* ---- nodes */

static yaml_node_t *node(loader_t *ld, int index) {
  return yaml_document_get_node(&ld->doc, index);
}

static const char *kind_name(const yaml_node_t *n) {
  return n->type == YAML_MAPPING_NODE    ? "a map"
         : n->type == YAML_SEQUENCE_NODE ? "a list"
                                         : "a single value";
}

static bool is_null(const yaml_node_t *n) {
  if (n->type != YAML_SCALAR_NODE ||
      n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
    return false;
  const char *v = (const char *)n->data.scalar.value;
  return *v == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
         strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

/* A string value: references checked, position kept. A null leaves
 * out->raw NULL unless empty_ok (then ""). */
static void text_of(loader_t *ld, const yaml_node_t *n, const char *key,
                    dk_text_t *out, bool empty_ok) {
  node_pos(n, &out->line, &out->col);
  if (n->type != YAML_SCALAR_NODE) {
    NODE_ERR(ld, n, "%s must be a single value, not %s", key, kind_name(n));
    return;
  }
  if (is_null(n) && !empty_ok)
    return;
  const char *v = is_null(n) ? "" : (const char *)n->data.scalar.value;
  if (strlen(v) != n->data.scalar.length) {
    NODE_ERR(ld, n, "%s contains a NUL character", key);
    return;
  }
  out->raw = strdup(v);
  if (out->raw == NULL)
    ld->oom = true;
  else
    check_refs(ld, n, v);
}

/* Iterate a mapping: each key must be a scalar and appear once. */
typedef void (*pair_fn)(loader_t *ld, const char *key, const yaml_node_t *k,
                        const yaml_node_t *v, void *ud);

static void each_pair(loader_t *ld, const yaml_node_t *map, pair_fn fn,
                      void *ud) {
  for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
       p < map->data.mapping.pairs.top; p++) {
    const yaml_node_t *k = node(ld, p->key), *v = node(ld, p->value);
    if (k == NULL || v == NULL)
      continue;
    if (k->type != YAML_SCALAR_NODE) {
      NODE_ERR(ld, k, "a key must be a single value, not %s", kind_name(k));
      continue;
    }
    const char *key = (const char *)k->data.scalar.value;
    bool dup = false;
    for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && !dup;
         q++) {
      const yaml_node_t *qk = node(ld, q->key);
      dup = qk != NULL && qk->type == YAML_SCALAR_NODE &&
            strcmp((const char *)qk->data.scalar.value, key) == 0;
    }
    if (dup) {
      NODE_ERR(ld, k, "duplicate key \"%s\"", key);
      continue;
    }
    fn(ld, key, k, v, ud);
  }
}

typedef struct pairs_out {
  const char *what; /* "env", "labels" */
  dk_pair_t **v;
  size_t *n;
} pairs_out_t;

static void one_pair(loader_t *ld, const char *key, const yaml_node_t *k,
                     const yaml_node_t *v, void *ud) {
  pairs_out_t *o = ud;
  if (*key == '\0') {
    NODE_ERR(ld, k, "%s has an empty name", o->what);
    return;
  }
  dk_pair_t *grown = realloc(*o->v, (*o->n + 1) * sizeof *grown);
  if (grown == NULL) {
    ld->oom = true;
    return;
  }
  *o->v = grown;
  dk_pair_t *p = &grown[(*o->n)++];
  memset(p, 0, sizeof *p);
  p->key = strdup(key);
  char *what = NULL;
  if (asprintf(&what, "%s.%s", o->what, key) < 0)
    what = NULL;
  text_of(ld, v, what ? what : o->what, &p->value, true);
  free(what);
  if (p->key == NULL)
    ld->oom = true;
}

static void pairs_of(loader_t *ld, const yaml_node_t *n, const char *what,
                     dk_pair_t **v, size_t *count) {
  if (is_null(n))
    return;
  if (n->type != YAML_MAPPING_NODE) {
    NODE_ERR(ld, n, "%s must be a map of names to values, not %s", what,
             kind_name(n));
    return;
  }
  pairs_out_t o = {what, v, count};
  each_pair(ld, n, one_pair, &o);
}

static void command_of(loader_t *ld, const yaml_node_t *n, dk_csrc_t *c) {
  if (is_null(n))
    return;
  if (n->type == YAML_SCALAR_NODE) {
    c->command = calloc(1, sizeof *c->command);
    if (c->command == NULL) {
      ld->oom = true;
      return;
    }
    c->ncommand = 1;
    text_of(ld, n, "command", &c->command[0], true);
    return;
  }
  if (n->type != YAML_SEQUENCE_NODE) {
    NODE_ERR(ld, n,
             "command must be a list of strings or a string (run by /bin/sh "
             "-c), not %s",
             kind_name(n));
    return;
  }
  size_t count =
      (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  if (count == 0) {
    NODE_ERR(ld, n,
             "command is an empty list; leave it out to run the "
             "image's own command");
    return;
  }
  c->command = calloc(count, sizeof *c->command);
  if (c->command == NULL) {
    ld->oom = true;
    return;
  }
  c->command_is_list = true;
  c->ncommand = count;
  for (size_t i = 0; i < count; i++) {
    const yaml_node_t *item = node(ld, n->data.sequence.items.start[i]);
    if (item != NULL)
      text_of(ld, item, "command item", &c->command[i], true);
  }
}

static void volume_key(loader_t *ld, const char *key, const yaml_node_t *k,
                       const yaml_node_t *v, void *ud) {
  dk_vol_src_t *vol = ud;
  if (strcmp(key, "name") == 0)
    text_of(ld, v, "volume name", &vol->name, false);
  else if (strcmp(key, "path") == 0)
    text_of(ld, v, "volume path", &vol->path, false);
  else
    NODE_ERR(ld, k, "unknown key \"%s\" in a volume; valid keys: name, path",
             key);
}

static void volumes_of(loader_t *ld, const yaml_node_t *n, dk_csrc_t *c) {
  if (is_null(n))
    return;
  if (n->type != YAML_SEQUENCE_NODE) {
    NODE_ERR(ld, n, "volumes must be a list of {name, path}, not %s",
             kind_name(n));
    return;
  }
  size_t count =
      (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  c->volumes = calloc(count ? count : 1, sizeof *c->volumes);
  if (c->volumes == NULL) {
    ld->oom = true;
    return;
  }
  for (size_t i = 0; i < count; i++) {
    const yaml_node_t *item = node(ld, n->data.sequence.items.start[i]);
    if (item == NULL)
      continue;
    if (item->type != YAML_MAPPING_NODE) {
      NODE_ERR(ld, item, "a volume must be a map {name, path}, not %s",
               kind_name(item));
      continue;
    }
    dk_vol_src_t *vol = &c->volumes[c->nvolumes++];
    each_pair(ld, item, volume_key, vol);
    if (vol->name.raw == NULL)
      NODE_ERR(ld, item, "a volume needs a name");
    if (vol->path.raw == NULL)
      NODE_ERR(ld, item, "a volume needs a path (where it is mounted)");
  }
}

static void unknown_key(loader_t *ld, const yaml_node_t *k, const char *key,
                        const char *const *valid) {
  dk_buf_t b = {0};
  for (size_t i = 0; valid[i]; i++)
    dk_buf_printf(&b, "%s%s", i ? ", " : "", valid[i]);
  NODE_ERR(ld, k, "unknown key \"%s\"; valid keys: %s", key,
           b.data ? b.data : "");
  dk_buf_free(&b);
}

static void containers_of(loader_t *ld, const yaml_node_t *n, dk_spec_t *s);

/* By index: `containers` grows the array while the main one is read. */
typedef struct container_ud {
  dk_spec_t *spec;
  size_t index;
  bool main;
} container_ud_t;

static void container_key(loader_t *ld, const char *key, const yaml_node_t *k,
                          const yaml_node_t *v, void *ud) {
  container_ud_t *cu = ud;
  dk_csrc_t *c = &cu->spec->containers[cu->index];
  struct {
    const char *key;
    dk_text_t *field;
  } texts[] = {{"image", &c->image},
               {"working_dir", &c->working_dir},
               {"cpus", &c->cpus},
               {"memory", &c->memory},
               {"network_mode", &c->network_mode},
               {"name", cu->main ? NULL : &c->name}};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    if (texts[i].field != NULL && strcmp(key, texts[i].key) == 0) {
      text_of(ld, v, key, texts[i].field, false);
      return;
    }
  }
  if (strcmp(key, "command") == 0)
    command_of(ld, v, c);
  else if (strcmp(key, "env") == 0)
    pairs_of(ld, v, "env", &c->env, &c->nenv);
  else if (strcmp(key, "labels") == 0)
    pairs_of(ld, v, "labels", &c->labels, &c->nlabels);
  else if (strcmp(key, "volumes") == 0)
    volumes_of(ld, v, c);
  else if (cu->main && strcmp(key, "containers") == 0)
    containers_of(ld, v, cu->spec);
  else
    unknown_key(ld, k, key, cu->main ? main_keys : extra_keys);
}

static void container_of(loader_t *ld, const yaml_node_t *n, dk_spec_t *s,
                         size_t index) {
  node_pos(n, &s->containers[index].line, &s->containers[index].col);
  container_ud_t cu = {.spec = s, .index = index, .main = index == 0};
  each_pair(ld, n, container_key, &cu);
  const dk_csrc_t *c = &s->containers[index];
  if (index > 0 && c->name.raw == NULL)
    NODE_ERR(ld, n, "an extra container needs a name (name: db)");
  if (c->image.raw == NULL && index == 0)
    NODE_ERR(ld, n, "image is required (image: registry/name:tag)");
  else if (c->image.raw == NULL)
    NODE_ERR(ld, n,
             "container \"%s\" needs an image (image: "
             "registry/name:tag)",
             c->name.raw ? c->name.raw : "");
}

static void containers_of(loader_t *ld, const yaml_node_t *n, dk_spec_t *s) {
  if (is_null(n))
    return;
  if (n->type != YAML_SEQUENCE_NODE) {
    NODE_ERR(ld, n, "containers must be a list of containers, not %s",
             kind_name(n));
    return;
  }
  size_t count =
      (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
  dk_csrc_t *grown =
      realloc(s->containers, (s->ncontainers + count) * sizeof *grown);
  if (grown == NULL) {
    ld->oom = true;
    return;
  }
  s->containers = grown;
  for (size_t i = 0; i < count; i++) {
    const yaml_node_t *item = node(ld, n->data.sequence.items.start[i]);
    if (item == NULL)
      continue;
    if (item->type != YAML_MAPPING_NODE) {
      NODE_ERR(ld, item, "a container must be a map (name, image, …), not %s",
               kind_name(item));
      continue;
    }
    memset(&s->containers[s->ncontainers], 0, sizeof *s->containers);
    container_of(ld, item, s, s->ncontainers++);
  }
}

/* ---- the file */

static int read_file(const char *path, char **out, size_t *len,
                     dk_errs_t *errs) {
  struct stat st;
  if (stat(path, &st) != 0 && errno == ENOENT) {
    dk_errs_addf(errs,
                 "the template has no " DK_SPEC_FILE " next to template.yaml; "
                 "add one that names at least the image (image: "
                 "registry/name:tag)");
    return ATR_ENOENT;
  }
  FILE *f = fopen(path, "rb");
  if (f == NULL || (stat(path, &st) == 0 && !S_ISREG(st.st_mode))) {
    dk_errs_addf(errs, "cannot read " DK_SPEC_FILE ": %s",
                 f ? "not a regular file" : strerror(errno));
    if (f)
      fclose(f);
    return ATR_EINVAL;
  }
  if ((size_t)st.st_size > DK_SPEC_MAX) {
    fclose(f);
    dk_errs_addf(errs, DK_SPEC_FILE " is larger than 1 MiB");
    return ATR_EINVAL;
  }
  char *buf = malloc((size_t)st.st_size + 1);
  size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
  fclose(f);
  if (buf == NULL)
    return ATR_ENOMEM;
  buf[n] = '\0';
  *out = buf;
  *len = n;
  return 0;
}

static int parse_yaml(loader_t *ld) {
  yaml_parser_t p;
  if (!yaml_parser_initialize(&p))
    return ATR_ENOMEM;
  yaml_parser_set_input_string(&p, (const unsigned char *)ld->text, ld->len);
  int rc = 0;
  if (!yaml_parser_load(&p, &ld->doc)) {
    unsigned line = (unsigned)p.problem_mark.line + 1;
    unsigned col = (unsigned)p.problem_mark.column + 1;
    if (p.context != NULL)
      errf(ld, line, col, "%s %s", p.problem ? p.problem : "invalid YAML",
           p.context);
    else
      errf(ld, line, col, "%s", p.problem ? p.problem : "invalid YAML");
    rc = ATR_EINVAL;
  } else {
    yaml_document_t more;
    if (yaml_parser_load(&p, &more)) {
      const yaml_node_t *r = yaml_document_get_root_node(&more);
      if (r != NULL)
        NODE_ERR(ld, r,
                 "a second YAML document; " DK_SPEC_FILE " holds only one");
      yaml_document_delete(&more);
    }
  }
  yaml_parser_delete(&p);
  return rc;
}

int dk_spec_load(const char *dir, const char *const *params, size_t nparams,
                 dk_spec_t *out, dk_errs_t *errs) {
  memset(out, 0, sizeof *out);
  char *path = NULL;
  if (asprintf(&path, "%s/%s", dir, DK_SPEC_FILE) < 0)
    return ATR_ENOMEM;
  loader_t ld = {.params = params, .nparams = nparams, .errs = errs};
  char *text = NULL;
  int rc = read_file(path, &text, &ld.len, errs);
  free(path);
  if (rc != 0)
    return rc;
  ld.text = text;
  size_t before = errs->n;
  rc = parse_yaml(&ld);
  if (rc == 0) {
    const yaml_node_t *root = yaml_document_get_root_node(&ld.doc);
    if (root == NULL || is_null(root)) {
      dk_errs_addf(errs, DK_SPEC_FILE " is empty; it needs at least the "
                                      "image (image: registry/name:tag)");
    } else if (root->type != YAML_MAPPING_NODE) {
      NODE_ERR(&ld, root, DK_SPEC_FILE " must be a map (image: …), not %s",
               kind_name(root));
    } else if ((out->containers = calloc(1, sizeof *out->containers)) == NULL) {
      ld.oom = true;
    } else {
      out->ncontainers = 1;
      container_of(&ld, root, out, 0);
    }
    yaml_document_delete(&ld.doc);
  }
  free(text);
  if (ld.oom)
    rc = ATR_ENOMEM;
  else if (errs->n > before)
    rc = ATR_EINVAL;
  if (rc != 0 && rc != ATR_EINVAL)
    dk_spec_free(out);
  return rc;
}

/* ---- freeing */

static void text_free(dk_text_t *t) {
  free(t->raw);
  t->raw = NULL;
}

static void pairs_free(dk_pair_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(p[i].key);
    text_free(&p[i].value);
  }
  free(p);
}

static void csrc_free(dk_csrc_t *c) {
  dk_text_t *texts[] = {&c->name, &c->image,  &c->working_dir,
                        &c->cpus, &c->memory, &c->network_mode};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    text_free(texts[i]);
  for (size_t i = 0; i < c->ncommand; i++)
    text_free(&c->command[i]);
  free(c->command);
  pairs_free(c->env, c->nenv);
  pairs_free(c->labels, c->nlabels);
  for (size_t i = 0; i < c->nvolumes; i++) {
    text_free(&c->volumes[i].name);
    text_free(&c->volumes[i].path);
  }
  free(c->volumes);
}

void dk_spec_free(dk_spec_t *s) {
  for (size_t i = 0; i < s->ncontainers; i++)
    csrc_free(&s->containers[i]);
  free(s->containers);
  s->containers = NULL;
  s->ncontainers = 0;
}
