/* core/plugin/loader_checks.h — the loader's refusals, shared by loader.c
 * and loader_checks.c only (not an interface for the rest of the core).
 *
 * Each check returns 0 or a negative ATR_E* code with *err set to the one
 * line loader.h lists; none of them runs plugin code past the entry symbol.
 * Main thread only.
 */
#ifndef ATRIUM_CORE_LOADER_CHECKS_H
#define ATRIUM_CORE_LOADER_CHECKS_H

#include "atrium/plugin.h"
#include "loader.h"

/* The first minor whose layouts are kept (struct_size heads, option_size):
 * a plugin built against 1.0 is refused. */
#define ATR_ABI_MINOR_FIRST_STABLE 1u

/* Whether a descriptor built against an older SDK has `field` (appended
 * later in the same major): its struct_size covers it. */
#define DESC_HAS(d, field)                                                     \
  ((d)->struct_size >= offsetof(atr_plugin_t, field) + sizeof((d)->field))

/* *err = the formatted message (dropped when err is NULL). */
void atr__loader_set_err(char **err, const char *fmt, ...) ATR_PRINTF(2, 3);

/* Set *err and evaluate to rc; a macro so that static analysis sees which
 * code each refusal returns. */
#define FAIL(err, rc, ...) (atr__loader_set_err((err), __VA_ARGS__), (rc))

/* "d1, d2" for messages, "none" when there is no directory; malloc'd. */
char *atr__loader_dirs_list(const atr_loader_t *l);

/* Steps 1 and 2, on the resolved path (*real, malloc'd). */
int atr__loader_check_file(const atr_loader_t *l, const char *name,
                           const char *path, char **real, char **err);
/* Steps 3 and 4: dlopen and the entry symbol's descriptor. */
int atr__loader_open_object(const char *name, const char *path,
                            const char *real, void **dl,
                            const atr_plugin_t **desc, char **err);
/* Steps 5 to 7: ABI version, descriptor and ops sizes, kind, name, the
 * option table's stride and offsets. */
int atr__loader_check_desc(const char *name, const atr_plugin_t *d, char **err);

/* The stride of d->options (option_size, or the ABI 1.1 layout). */
size_t atr__loader_option_stride(const atr_plugin_t *d);
/* d's options in the host's layout (never NULL unless out of memory);
 * *copy is set when a copy had to be made, and the caller frees it. */
const atr_option_t *atr__loader_options(const atr_plugin_t *d,
                                        atr_option_t **copy);

#endif
