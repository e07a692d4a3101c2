/* core/config/options_internal.h — helpers shared by the options files
 * (option_values.c, options.c, options_output.c) and nothing else.
 *
 * Options allocate only small strings; running out of memory while reading
 * the configuration ends the process (see atr__opt_oom), so these helpers
 * never return NULL. Threads: no shared state. */
#ifndef ATRIUM_CORE_OPTIONS_INTERNAL_H
#define ATRIUM_CORE_OPTIONS_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "options.h"

void atr__opt_oom(void);
void *atr__opt_realloc(void *p, size_t n);
void *atr__opt_calloc(size_t n, size_t size);
char *atr__opt_strdup(const char *s);
char *atr__opt_strndup(const char *s, size_t n);
char *atr__opt_vfmt(const char *f, va_list ap);
char *atr__opt_fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));

/* NULL-terminated string vectors: free, append (taking item), join. */
void atr__opt_strv_free(char **v);
char **atr__opt_strv_push(char **v, size_t *n, char *item);
char *atr__opt_strv_join(char *const *v, const char *sep);

/* STRING, ENUM and SECRET hold a char *. */
bool atr__opt_is_string(atr_option_type_t t);
bool atr__opt_in_list(const char *const *list, const char *s);
/* "section.name", or name alone in the core's section "". */
char *atr__opt_full_key(const char *section, const char *name);
/* A bound in the option's own units: "1KiB", "30s", "65535" (malloc'd). */
char *atr__opt_bound_text(const atr_option_t *opt, double b);
/* Free what val holds and zero it, keeping val->opt. */
void atr__optval_clear(atr_optval_t *v);

#endif
