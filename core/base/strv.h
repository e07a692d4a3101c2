/* core/strv.h — a growable, NULL-terminated vector of owned strings.
 * Threads: no shared state. */
#ifndef ATRIUM_CORE_STRV_H
#define ATRIUM_CORE_STRV_H

#include <stddef.h>

typedef struct atr_strv {
  char **v; /* NULL-terminated once anything was pushed; owned */
  size_t n;
  size_t cap;
} atr_strv_t;

/* Takes ownership of s (NULL is refused). 0 or ATR_ENOMEM (s freed). */
int atr_strv_take(atr_strv_t *sv, char *s);
/* Sort with strcmp and drop duplicates. */
void atr_strv_sort_unique(atr_strv_t *sv);
/* Frees the strings and the array; leaves sv empty. */
void atr_strv_clear(atr_strv_t *sv);
/* Push the name (without ".so") of every *.so file in dir; a missing or
 * unreadable directory adds nothing. */
int atr_strv_add_plugin_files(atr_strv_t *sv, const char *dir);

#endif
