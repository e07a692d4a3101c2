/* core/log.c — one line per message, never interleaved across threads. */
#include "log.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "atrium/error.h"

static atomic_int current_level = ATR_LOG_INFO;
static FILE *log_stream; /* NULL means stderr; guarded by stream_lock */
static pthread_mutex_t stream_lock = PTHREAD_MUTEX_INITIALIZER;

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
  char *line = NULL;
  int len = asprintf(&line, "%s %s [%s] %s\n", stamp, level_tags[level],
                     component ? component : "core",
                     msg ? msg : "(out of memory formatting log line)");
  free(msg);
  if (len < 0)
    return;
  pthread_mutex_lock(&stream_lock);
  FILE *out = log_stream ? log_stream : stderr;
  fwrite(line, 1, (size_t)len, out);
  fflush(out);
  pthread_mutex_unlock(&stream_lock);
  free(line);
}

void atr_log(atr_log_level_t level, const char *component, const char *fmt,
             ...) {
  va_list ap;
  va_start(ap, fmt);
  atr_logv(level, component, fmt, ap);
  va_end(ap);
}
