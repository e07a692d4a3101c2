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

/* Text lines ("2026-11-26T09:00:00.000Z INFO  [http] ...") or JSON lines
 * ({"time", "level", "component", "msg"}); auto: JSON when writing to a
 * stderr that is not a terminal, text otherwise. */
typedef enum atr_log_format {
  ATR_LOG_FORMAT_AUTO = 0,
  ATR_LOG_FORMAT_TEXT = 1,
  ATR_LOG_FORMAT_JSON = 2,
} atr_log_format_t;
void atr_log_set_format(atr_log_format_t format);
int atr_log_format_parse(const char *text, atr_log_format_t *out);
/* The last lines written (at most 1000, oldest first, in text form),
 * each passed to fn under the log's lock: fn must not log. */
void atr_log_recent(void (*fn)(void *ud, const char *line), void *ud);
/* "error", "warn", "info", "debug" → level; ATR_EINVAL otherwise. */
int atr_log_level_parse(const char *text, atr_log_level_t *out);
const char *atr_log_level_name(atr_log_level_t level);

void atr_log(atr_log_level_t level, const char *component, const char *fmt, ...)
    ATR_PRINTF(3, 4);
void atr_logv(atr_log_level_t level, const char *component, const char *fmt,
              va_list ap);

#endif
