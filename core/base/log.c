/* core/log.c — one line per message, never interleaved across threads. */
#include "log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "atrium/error.h"

static atomic_int current_level = ATR_LOG_INFO;
static atomic_int current_format = ATR_LOG_FORMAT_AUTO;
static FILE *log_stream; /* NULL means stderr; guarded by stream_lock */
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;

/* The last lines written, for the support bundle; guarded by stream_lock.
 * Always the text form, whatever the output format. */
#define RECENT_MAX 1000
static char *recent[RECENT_MAX];
static size_t recent_next, recent_count;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_tags[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

void atr_log_set_level(atr_log_level_t level) {
  atomic_store(&current_level, (int)level);
}

atr_log_level_t atr_log_get_level(void) {
  return (atr_log_level_t)atomic_load(&current_level);
}

void atr_log_set_stream(FILE *stream) {
  pthread_mutex_lock(&stream_lock);
  log_stream = stream;
  pthread_mutex_unlock(&stream_lock);
}

void atr_log_set_format(atr_log_format_t format) {
  atomic_store(&current_format, (int)format);
}

int atr_log_format_parse(const char *text, atr_log_format_t *out) {
  static const char *const names[] = {"auto", "text", "json"};
  for (int i = 0; i < 3; i++) {
    if (text && strcasecmp(text, names[i]) == 0) {
      *out = (atr_log_format_t)i;
      return 0;
    }
  }
  return ATR_EINVAL;
}

/* auto: text for a person at a terminal, JSON lines for a collector
 * reading stderr. A stream set with atr_log_set_stream (a capture) gets
 * text unless JSON was asked for. */
static bool json_output(FILE *out) {
  /* Whether stderr is a terminal is asked once, not per line (called
   * under stream_lock). */
  static int stderr_tty = -1;
  int f = atomic_load(&current_format);
  if (f != ATR_LOG_FORMAT_AUTO)
    return f == ATR_LOG_FORMAT_JSON;
  if (out != stderr)
    return false;
  if (stderr_tty < 0)
    stderr_tty = isatty(fileno(stderr)) ? 1 : 0;
  return !stderr_tty;
}

static void remember(const char *text_line) {
  char *copy = strdup(text_line);
  if (!copy)
    return;
  free(recent[recent_next]);
  recent[recent_next] = copy;
  recent_next = (recent_next + 1) % RECENT_MAX;
  if (recent_count < RECENT_MAX)
    recent_count++;
}

void atr_log_recent(void (*fn)(void *ud, const char *line), void *ud) {
  pthread_mutex_lock(&stream_lock);
  size_t first = (recent_next + RECENT_MAX - recent_count) % RECENT_MAX;
  for (size_t i = 0; i < recent_count; i++)
    fn(ud, recent[(first + i) % RECENT_MAX]);
  pthread_mutex_unlock(&stream_lock);
}

int atr_log_level_parse(const char *text, atr_log_level_t *out) {
  for (int i = 0; i < 4; i++) {
    if (text && strcasecmp(text, level_names[i]) == 0) {
      *out = (atr_log_level_t)i;
      return 0;
    }
  }
  return ATR_EINVAL;
}

const char *atr_log_level_name(atr_log_level_t level) {
  if ((int)level < 0 || level > ATR_LOG_DEBUG)
    return "unknown";
  return level_names[level];
}

void atr_logv(atr_log_level_t level, const char *component, const char *fmt,
              va_list ap) {
  if ((int)level > atomic_load(&current_level) || (int)level < 0)
    return;
  char stamp[40];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + n, sizeof stamp - n, ".%03ldZ", ts.tv_nsec / 1000000);

  char *msg = NULL;
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  const char *text = msg ? msg : "(out of memory formatting log line)";
  const char *comp = component ? component : "core";
  char *line = NULL;
  int len =
      asprintf(&line, "%s %s [%s] %s\n", stamp, level_tags[level], comp, text);
  char *json = NULL;
  pthread_mutex_lock(&stream_lock);
  FILE *out = log_stream ? log_stream : stderr;
  if (len >= 0 && json_output(out)) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "time", stamp, "level",
                          level_names[level], "component", comp, "msg", text);
    json = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
  }
  if (json) {
    fputs(json, out);
    fputc('\n', out);
  } else if (len >= 0) {
    fwrite(line, 1, (size_t)len, out);
  }
  fflush(out);
  if (len >= 0)
    remember(line);
  pthread_mutex_unlock(&stream_lock);
  free(json);
  free(line);
  free(msg);
}

void atr_log(atr_log_level_t level, const char *component, const char *fmt,
             ...) {
  va_list ap;
  va_start(ap, fmt);
  atr_logv(level, component, fmt, ap);
  va_end(ap);
}
