/* core/config/conf.c — YAML config files into a positioned tree (see conf.h).
 *
 * libyaml's event API is used rather than its document API because events
 * carry the anchor and tag of every node, so they can be refused at the place
 * they are written, and because duplicate keys can be caught while the map is
 * being built.
 */
#ifndef _GNU_SOURCE /* the top-level CMakeLists.txt may define it */
#define _GNU_SOURCE /* vasprintf */
#endif
#include "conf.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "atrium/error.h"

/* Deeper nesting than any sane config; stops a hostile file from exhausting
 * the stack through our recursion. */
#define MAX_DEPTH 64

typedef struct parse_ctx {
  yaml_parser_t parser;
  const char *name;
  const char *text; /* for positions of reader errors, which have none */
  size_t len;
  char *err;
} parse_ctx_t;

static char *vfmt(const char *f, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, f, ap) < 0)
    return NULL;
  return s;
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static void record_error(parse_ctx_t *c, yaml_mark_t m, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

/* A macro, so that static analysers (which do not follow variadic calls)
 * see that every failure path returns non-zero. */
#define FAIL_AT(c, m, ...) (record_error((c), (m), __VA_ARGS__), ATR_ECONFIG)

static char *fmt(const char *f, ...) {
  va_list ap;
  va_start(ap, f);
  char *s = vfmt(f, ap);
  va_end(ap);
  return s;
}

/* Records the first error only: later ones are consequences of it. */
static void record_error(parse_ctx_t *c, yaml_mark_t m, const char *f, ...) {
  if (c->err)
    return;
  va_list ap;
  va_start(ap, f);
  char *why = vfmt(f, ap);
  va_end(ap);
  c->err = fmt("%s:%zu:%zu: %s", c->name, m.line + 1, m.column + 1,
               why ? why : "out of memory");
  free(why);
}

static atr_conf_node_t *node_new(parse_ctx_t *c, atr_conf_type_t type,
                                 yaml_mark_t m) {
  atr_conf_node_t *n = calloc(1, sizeof *n);
  if (!n)
    return NULL;
  n->type = type;
  n->file = strdup(c->name);
  n->line = (int)m.line + 1;
  n->col = (int)m.column + 1;
  if (!n->file) {
    free(n);
    return NULL;
  }
  return n;
}

static int node_append(atr_conf_node_t *parent, atr_conf_node_t *child) {
  atr_conf_node_t **grown =
      realloc(parent->children, (parent->nchildren + 1) * sizeof *grown);
  if (!grown)
    return ATR_ENOMEM;
  parent->children = grown;
  parent->children[parent->nchildren++] = child;
  return 0;
}

/* libyaml reports encoding errors with a byte offset only. */
static yaml_mark_t mark_at_offset(const parse_ctx_t *c, size_t offset) {
  yaml_mark_t m = {.index = offset};
  for (size_t i = 0; i < offset && i < c->len; i++) {
    if (c->text[i] == '\n') {
      m.line++;
      m.column = 0;
    } else if (((unsigned char)c->text[i] & 0xC0) != 0x80) {
      m.column++; /* count characters, not UTF-8 continuation bytes */
    }
  }
  return m;
}

static int next_event(parse_ctx_t *c, yaml_event_t *ev) {
  if (yaml_parser_parse(&c->parser, ev))
    return 0;
  const char *problem = c->parser.problem ? c->parser.problem : "invalid YAML";
  yaml_mark_t m = c->parser.error == YAML_READER_ERROR
                      ? mark_at_offset(c, c->parser.problem_offset)
                      : c->parser.problem_mark;
  return FAIL_AT(c, m, "%s", problem);
}

static int is_null_text(const char *s) {
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
         !strcmp(s, "NULL");
}

/* Anchors and tags would give a value a meaning that differs from its text;
 * refusing them keeps "what you see in the file is the value" true. */
static int refuse_extras(parse_ctx_t *c, const yaml_event_t *ev,
                         const yaml_char_t *anchor, const yaml_char_t *tag) {
  if (anchor)
    return FAIL_AT(c, ev->start_mark,
                   "anchor &%s is not supported; write the value out in full",
                   (const char *)anchor);
  static const char core[] = "tag:yaml.org,2002:";
  const char *t = (const char *)tag;
  if (t && !strncmp(t, core, sizeof core - 1))
    return FAIL_AT(c, ev->start_mark,
                   "tag !!%s is not supported; write the plain value",
                   t + sizeof core - 1);
  if (t)
    return FAIL_AT(c, ev->start_mark,
                   "tag %s is not supported; write the plain value", t);
  return 0;
}

static int parse_node(parse_ctx_t *c, yaml_event_t *ev, int depth,
                      atr_conf_node_t **out);

static int parse_scalar(parse_ctx_t *c, yaml_event_t *ev,
                        atr_conf_node_t **out) {
  int rc = refuse_extras(c, ev, ev->data.scalar.anchor, ev->data.scalar.tag);
  if (rc)
    return rc;
  const char *text = (const char *)ev->data.scalar.value;
  /* "\0" in a double-quoted scalar is a NUL byte: every reader of the
   * value would stop there, so say so rather than cut it short. */
  if (memchr(text, '\0', ev->data.scalar.length))
    return FAIL_AT(c, ev->start_mark,
                   "the value contains a NUL character (\\0); remove it");
  atr_conf_node_t *n = node_new(c, ATR_CONF_SCALAR, ev->start_mark);
  if (!n)
    return ATR_ENOMEM;
  n->value = strndup(text, ev->data.scalar.length);
  if (!n->value) {
    atr_conf_free(n);
    return ATR_ENOMEM;
  }
  n->is_null = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
               is_null_text(n->value);
  *out = n;
  return 0;
}

static int parse_seq(parse_ctx_t *c, yaml_event_t *start, int depth,
                     atr_conf_node_t **out) {
  int rc = refuse_extras(c, start, start->data.sequence_start.anchor,
                         start->data.sequence_start.tag);
  if (rc)
    return rc;
  atr_conf_node_t *seq = node_new(c, ATR_CONF_SEQ, start->start_mark);
  if (!seq)
    return ATR_ENOMEM;
  for (;;) {
    yaml_event_t ev;
    atr_conf_node_t *item = NULL;
    if ((rc = next_event(c, &ev)))
      break;
    if (ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      *out = seq;
      return 0;
    }
    rc = parse_node(c, &ev, depth + 1, &item);
    yaml_event_delete(&ev);
    if (!rc && (rc = node_append(seq, item)))
      atr_conf_free(item);
    if (rc)
      break;
  }
  atr_conf_free(seq);
  return rc;
}

static int check_key(parse_ctx_t *c, const atr_conf_node_t *map,
                     const int *key_lines, const yaml_event_t *kev) {
  if (kev->type != YAML_SCALAR_EVENT)
    return FAIL_AT(c, kev->start_mark,
                   "a key must be a single value, not a map or a list");
  const char *key = (const char *)kev->data.scalar.value;
  if (memchr(key, '\0', kev->data.scalar.length))
    return FAIL_AT(c, kev->start_mark,
                   "the key contains a NUL character (\\0); remove it");
  for (size_t i = 0; i < map->nchildren; i++)
    if (!strcmp(map->children[i]->key, key))
      return FAIL_AT(c, kev->start_mark,
                     "duplicate key \"%s\" (first on line %d, again on line "
                     "%zu); keep only one",
                     key, key_lines[i], kev->start_mark.line + 1);
  return refuse_extras(c, kev, kev->data.scalar.anchor, kev->data.scalar.tag);
}

/* One key/value pair; `kev` is the key's event, already read. */
static int parse_entry(parse_ctx_t *c, atr_conf_node_t *map, int **key_lines,
                       yaml_event_t *kev, int depth) {
  int rc = check_key(c, map, *key_lines, kev);
  if (rc)
    return rc;
  int *lines = realloc(*key_lines, (map->nchildren + 1) * sizeof *lines);
  if (!lines)
    return ATR_ENOMEM;
  *key_lines = lines;
  lines[map->nchildren] = (int)kev->start_mark.line + 1;
  yaml_event_t vev;
  atr_conf_node_t *val = NULL;
  if ((rc = next_event(c, &vev)))
    return rc;
  rc = parse_node(c, &vev, depth + 1, &val);
  yaml_event_delete(&vev);
  if (rc)
    return rc;
  val->key = strdup((const char *)kev->data.scalar.value);
  if (!val->key || node_append(map, val)) {
    atr_conf_free(val);
    return ATR_ENOMEM;
  }
  return 0;
}

static int parse_map(parse_ctx_t *c, yaml_event_t *start, int depth,
                     atr_conf_node_t **out) {
  int rc = refuse_extras(c, start, start->data.mapping_start.anchor,
                         start->data.mapping_start.tag);
  if (rc)
    return rc;
  atr_conf_node_t *map = node_new(c, ATR_CONF_MAP, start->start_mark);
  if (!map)
    return ATR_ENOMEM;
  int *key_lines = NULL; /* line of each key, for duplicate-key errors */
  for (;;) {
    yaml_event_t kev;
    if ((rc = next_event(c, &kev)))
      break;
    if (kev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&kev);
      free(key_lines);
      *out = map;
      return 0;
    }
    rc = parse_entry(c, map, &key_lines, &kev, depth);
    yaml_event_delete(&kev);
    if (rc)
      break;
  }
  free(key_lines);
  atr_conf_free(map);
  return rc;
}

static int parse_node(parse_ctx_t *c, yaml_event_t *ev, int depth,
                      atr_conf_node_t **out) {
  if (depth > MAX_DEPTH)
    return FAIL_AT(c, ev->start_mark, "nesting deeper than %d levels",
                   MAX_DEPTH);
  switch (ev->type) {
  case YAML_SCALAR_EVENT:
    return parse_scalar(c, ev, out);
  case YAML_SEQUENCE_START_EVENT:
    return parse_seq(c, ev, depth, out);
  case YAML_MAPPING_START_EVENT:
    return parse_map(c, ev, depth, out);
  case YAML_ALIAS_EVENT:
    return FAIL_AT(c, ev->start_mark,
                   "alias *%s is not supported; write the value out in full",
                   (const char *)ev->data.alias.anchor);
  default:
    return FAIL_AT(c, ev->start_mark, "unexpected YAML event");
  }
}

/* The document's top node; an empty or null document is an empty map. */
static int parse_top(parse_ctx_t *c, atr_conf_node_t **out) {
  yaml_event_t ev;
  int rc = next_event(c, &ev);
  if (rc)
    return rc;
  if (ev.type == YAML_SCALAR_EVENT && !ev.data.scalar.anchor &&
      !ev.data.scalar.tag && ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
      is_null_text((const char *)ev.data.scalar.value)) {
    *out = node_new(c, ATR_CONF_MAP, ev.start_mark);
    rc = *out ? 0 : ATR_ENOMEM;
  } else if (ev.type == YAML_SCALAR_EVENT ||
             ev.type == YAML_SEQUENCE_START_EVENT) {
    rc = FAIL_AT(c, ev.start_mark,
                 "the top level must be a map of keys (such as \"http:\"), "
                 "not a %s",
                 ev.type == YAML_SCALAR_EVENT ? "single value" : "list");
  } else {
    rc = parse_node(c, &ev, 0, out);
  }
  yaml_event_delete(&ev);
  return rc;
}

/* Expects the event after the document's top node. */
static int parse_document_end(parse_ctx_t *c) {
  yaml_event_t ev;
  int rc = next_event(c, &ev); /* DOCUMENT-END */
  if (rc)
    return rc;
  yaml_event_delete(&ev);
  if ((rc = next_event(c, &ev)))
    return rc;
  if (ev.type != YAML_STREAM_END_EVENT)
    rc = FAIL_AT(c, ev.start_mark,
                 "a second document is not supported; keep one document per "
                 "file (use conf.d/ for more files)");
  yaml_event_delete(&ev);
  return rc;
}

static int parse_stream(parse_ctx_t *c, atr_conf_node_t **out) {
  yaml_event_t ev;
  int rc = next_event(c, &ev); /* STREAM-START */
  if (rc)
    return rc;
  yaml_event_delete(&ev);
  if ((rc = next_event(c, &ev)))
    return rc;
  yaml_event_type_t type = ev.type;
  yaml_event_delete(&ev);
  if (type == YAML_STREAM_END_EVENT) { /* nothing but comments */
    *out = node_new(c, ATR_CONF_MAP, (yaml_mark_t){0});
    return *out ? 0 : ATR_ENOMEM;
  }
  atr_conf_node_t *top = NULL;
  if ((rc = parse_top(c, &top)))
    return rc;
  if ((rc = parse_document_end(c))) {
    atr_conf_free(top);
    return rc;
  }
  *out = top;
  return 0;
}

int atr_conf_parse(const char *name, const char *text, size_t len,
                   atr_conf_node_t **out, char **err) {
  if (!text) /* libyaml asserts on a NULL input, even an empty one */
    text = "";
  parse_ctx_t c = {.name = name, .text = text, .len = len};
  *out = NULL;
  if (!yaml_parser_initialize(&c.parser)) {
    *err = strdup("out of memory");
    return ATR_ENOMEM;
  }
  yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
  int rc = parse_stream(&c, out);
  yaml_parser_delete(&c.parser);
  if (rc) {
    *err = c.err ? c.err : strdup(atr_strerror(rc));
    return rc;
  }
  return 0;
}

static int read_error(const char *path, int errnum, char **err) {
  *err = fmt("cannot read %s: %s", path, strerror(errnum));
  return errnum == ENOENT ? ATR_ENOENT : ATR_EIO;
}

static int read_file(const char *path, char **text, size_t *len, char **err) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return read_error(path, errno, err);
  char *buf = NULL;
  size_t n = 0, cap = 0;
  int errnum = 0;
  while (!errnum) {
    if (n == cap) {
      char *grown = realloc(buf, cap = cap ? cap * 2 : 4096);
      if (!grown) {
        errnum = ENOMEM;
        break;
      }
      buf = grown;
    }
    n += fread(buf + n, 1, cap - n, f);
    if (ferror(f))
      errnum = errno ? errno : EIO;
    else if (feof(f))
      break;
  }
  fclose(f);
  if (errnum) {
    free(buf);
    return read_error(path, errnum, err);
  }
  *text = buf;
  *len = n;
  return 0;
}

int atr_conf_parse_file(const char *path, atr_conf_node_t **out, char **err) {
  char *text = NULL;
  size_t len = 0;
  *out = NULL;
  int rc = read_file(path, &text, &len, err);
  if (rc)
    return rc;
  rc = atr_conf_parse(path, text, len, out, err);
  free(text);
  return rc;
}

static int is_yaml_name(const char *name) {
  size_t n = strlen(name);
  return n > 5 && !strcmp(name + n - 5, ".yaml");
}

static int cmp_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n) {
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

/* The *.yaml names in dir, sorted; a missing dir gives none. */
static int list_yaml(const char *dir, char ***names, size_t *count,
                     char **err) {
  *names = NULL;
  *count = 0;
  DIR *d = opendir(dir);
  if (!d)
    return errno == ENOENT ? 0 : read_error(dir, errno, err);
  struct dirent *de;
  int rc = 0;
  while (!rc && (de = readdir(d))) {
    if (!is_yaml_name(de->d_name))
      continue;
    char **grown = realloc(*names, (*count + 1) * sizeof *grown);
    if (!grown || !(grown[*count] = strdup(de->d_name))) {
      if (grown)
        *names = grown;
      rc = read_error(dir, ENOMEM, err);
      break;
    }
    *names = grown;
    (*count)++;
  }
  closedir(d);
  if (rc) {
    free_names(*names, *count);
    *names = NULL;
    *count = 0;
    return rc;
  }
  if (*count > 1) /* qsort's pointer must not be NULL, even for 0 items */
    qsort(*names, *count, sizeof **names, cmp_names);
  return 0;
}

static int merge_dir(atr_conf_node_t *root, const char *dir, char **err) {
  char **names;
  size_t n;
  int rc = list_yaml(dir, &names, &n, err);
  for (size_t i = 0; !rc && i < n; i++) {
    char *path = fmt("%s/%s", dir, names[i]);
    atr_conf_node_t *part = NULL;
    if (!path) {
      *err = strdup("out of memory");
      rc = ATR_ENOMEM;
      break;
    }
    rc = atr_conf_parse_file(path, &part, err);
    free(path);
    if (!rc)
      atr_conf_merge(root, part);
  }
  free_names(names, n);
  return rc;
}

/* conf.d beside the main file: "a/b/atrium.yaml" → "a/b/conf.d". */
static char *confd_beside(const char *main_path) {
  const char *slash = strrchr(main_path, '/');
  if (!slash)
    return strdup("conf.d");
  return fmt("%.*s/conf.d", (int)(slash - main_path), main_path);
}

int atr_conf_load(const char *main_path, const char *fallback_name,
                  const char *fallback_text, atr_conf_node_t **out,
                  char **err) {
  atr_conf_node_t *root = NULL;
  int rc;
  *out = NULL;
  if (main_path)
    rc = atr_conf_parse_file(main_path, &root, err);
  else
    rc = atr_conf_parse(fallback_name, fallback_text,
                        fallback_text ? strlen(fallback_text) : 0, &root, err);
  if (rc)
    return rc;
  char *dir = main_path ? confd_beside(main_path) : strdup("config/conf.d");
  if (!dir) {
    atr_conf_free(root);
    *err = strdup("out of memory");
    return ATR_ENOMEM;
  }
  rc = merge_dir(root, dir, err);
  free(dir);
  if (rc) {
    atr_conf_free(root);
    return rc;
  }
  *out = root;
  return 0;
}

static atr_conf_node_t *map_find(const atr_conf_node_t *map, const char *key,
                                 size_t keylen) {
  for (size_t i = 0; i < map->nchildren; i++) {
    const char *k = map->children[i]->key;
    if (strlen(k) == keylen && !memcmp(k, key, keylen))
      return map->children[i];
  }
  return NULL;
}

void atr_conf_merge(atr_conf_node_t *dst, atr_conf_node_t *src) {
  for (size_t i = 0; i < src->nchildren; i++) {
    atr_conf_node_t *s = src->children[i];
    size_t j = 0;
    while (j < dst->nchildren && strcmp(dst->children[j]->key, s->key) != 0)
      j++;
    if (j == dst->nchildren) {
      if (node_append(dst, s))
        atr_conf_free(s); /* out of memory: the entry is lost, not leaked */
      continue;
    }
    atr_conf_node_t *d = dst->children[j];
    if (d->type == ATR_CONF_MAP && s->type == ATR_CONF_MAP) {
      atr_conf_merge(d, s);
    } else {
      dst->children[j] = s; /* keeps the key's place in the file order */
      atr_conf_free(d);
    }
  }
  src->nchildren = 0; /* every child was moved or freed above */
  atr_conf_free(src);
}

const atr_conf_node_t *atr_conf_get(const atr_conf_node_t *root,
                                    const char *dotted) {
  const atr_conf_node_t *n = root;
  const char *p = dotted;
  while (n && p && *p) {
    if (n->type != ATR_CONF_MAP)
      return NULL;
    const char *dot = strchr(p, '.');
    size_t len = dot ? (size_t)(dot - p) : strlen(p);
    n = map_find(n, p, len);
    p = dot ? dot + 1 : NULL;
  }
  return n;
}

void atr_conf_where(const atr_conf_node_t *node, char *buf, size_t size) {
  if (!node) {
    snprintf(buf, size, "(nowhere)");
    return;
  }
  snprintf(buf, size, "%s:%d:%d", node->file, node->line, node->col);
}

void atr_conf_free(atr_conf_node_t *node) {
  if (!node)
    return;
  for (size_t i = 0; i < node->nchildren; i++)
    atr_conf_free(node->children[i]);
  free(node->children);
  free(node->key);
  free(node->value);
  free(node->file);
  free(node);
}
