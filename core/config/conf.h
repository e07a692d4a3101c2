/* core/config/conf.h — configuration files as a tree with positions.
 *
 * The config is YAML (libyaml). The main file is read first, then every
 * conf.d/ *.yaml beside it in name order, each merged over what came before:
 * maps merge key by key, recursively; a scalar or a list replaces. Every node
 * remembers the file, line and column it came from (1-based) so an error can
 * point at it. Anchors, aliases, tags and multi-document streams are refused.
 *
 * Environment variables and --flags are not part of the tree; they are
 * applied per option by options.c (see atr_overrides_t there).
 *
 * Ownership: a tree owns all its nodes and strings; atr_conf_free() frees it.
 * Threads: no shared state; a tree is used by one thread at a time.
 */
#ifndef ATRIUM_CORE_CONF_H
#define ATRIUM_CORE_CONF_H

#include <stddef.h>

typedef enum atr_conf_type {
  ATR_CONF_SCALAR = 1,
  ATR_CONF_MAP = 2,
  ATR_CONF_SEQ = 3,
} atr_conf_type_t;

typedef struct atr_conf_node {
  atr_conf_type_t type;
  char *key;   /* its key in the parent map; NULL in a sequence or the root */
  char *value; /* SCALAR only: the text as written ("" for an empty value) */
  int is_null; /* SCALAR written as ~, null or nothing */
  char *file;  /* the file it came from (own copy) */
  int line;    /* 1-based */
  int col;     /* 1-based */
  struct atr_conf_node **children; /* MAP: entries in order; SEQ: items */
  size_t nchildren;
} atr_conf_node_t;

/* Parse YAML text; `name` is used as the file in positions and errors. The
 * top level must be a map (an empty document gives an empty map). */
int atr_conf_parse(const char *name, const char *text, size_t len,
                   atr_conf_node_t **out, char **err);
int atr_conf_parse_file(const char *path, atr_conf_node_t **out, char **err);

/* Read `main_path` and then <dir of main_path>/conf.d/ *.yaml in name order,
 * merged. A missing conf.d is fine; an unreadable one is an error. If
 * `main_path` is NULL, `fallback_text` (the embedded default) is parsed as
 * `fallback_name` and conf.d is looked for in the current directory's
 * config/conf.d. */
int atr_conf_load(const char *main_path, const char *fallback_name,
                  const char *fallback_text, atr_conf_node_t **out, char **err);

/* Merge `src` into `dst` (both maps); `src` is consumed. */
void atr_conf_merge(atr_conf_node_t *dst, atr_conf_node_t *src);

/* The node at a dotted path ("http.address"), or NULL. Only maps are
 * descended. */
const atr_conf_node_t *atr_conf_get(const atr_conf_node_t *root,
                                    const char *dotted);

/* "file:line:col" of a node into buf. */
void atr_conf_where(const atr_conf_node_t *node, char *buf, size_t size);

void atr_conf_free(atr_conf_node_t *node);

#endif
