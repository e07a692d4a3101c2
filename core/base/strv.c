/* core/strv.c — see strv.h. */
#include "strv.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

int atr_strv_take(atr_strv_t *sv, char *s) {
  if (!s)
    return ATR_ENOMEM;
  if (sv->n + 1 >= sv->cap) {
    size_t cap = sv->cap ? sv->cap * 2 : 8;
    char **grown = realloc(sv->v, cap * sizeof *grown);
    if (!grown) {
      free(s);
      return ATR_ENOMEM;
    }
    sv->v = grown;
    sv->cap = cap;
  }
  sv->v[sv->n++] = s;
  sv->v[sv->n] = NULL;
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

void atr_strv_sort_unique(atr_strv_t *sv) {
  if (sv->n == 0)
    return;
  qsort(sv->v, sv->n, sizeof *sv->v, cmp_str);
  size_t out = 1;
  for (size_t i = 1; i < sv->n; i++) {
    if (strcmp(sv->v[out - 1], sv->v[i]) == 0)
      free(sv->v[i]);
    else
      sv->v[out++] = sv->v[i];
  }
  sv->n = out;
  sv->v[out] = NULL;
}

void atr_strv_clear(atr_strv_t *sv) {
  for (size_t i = 0; i < sv->n; i++)
    free(sv->v[i]);
  free(sv->v);
  *sv = (atr_strv_t){0};
}

int atr_strv_add_plugin_files(atr_strv_t *sv, const char *dir) {
  DIR *d = opendir(dir);
  if (!d)
    return 0;
  int rc = 0;
  struct dirent *e;
  while (rc == 0 && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0)
      rc = atr_strv_take(sv, strndup(e->d_name, len - 3));
  }
  closedir(d);
  return rc;
}
