/* core/log.h — the process log.
 *
 * One line per message on stderr (or a FILE set by the caller):
 *   2026-11-26T06:30:00.123Z INFO  [core] listening on 127.0.0.1:3000
 * The component in brackets is "core", a subsystem, or a plugin's name.
 * Messages must never contain secrets: callers redact before logging.
 *
 * Threads: every function may be called from any thread; a line is written
 * with one fwrite under a lock so lines never interleave.
 */
#ifndef ATRIUM_CORE_LOG_H
#define ATRIUM_CORE_LOG_H

#include <stdarg.h>
#include <stdio.h>

#include "atrium/host.h"

void atr_log_set_level(atr_log_level_t level);
atr_log_level_t atr_log_get_level(void);
/* Where lines go; NULL restores stderr. */
void atr_log_set_stream(FILE *stream);
/* "error", "warn", "info", "debug" → level; ATR_EINVAL otherwise. */
int atr_log_level_parse(const char *text, atr_log_level_t *out);
const char *atr_log_level_name(atr_log_level_t level);

void atr_log(atr_log_level_t level, const char *component, const char *fmt, ...)
    ATR_PRINTF(3, 4);
void atr_logv(atr_log_level_t level, const char *component, const char *fmt,
              va_list ap);

#endif
