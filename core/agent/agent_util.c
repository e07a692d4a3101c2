/* core/agent/agent_util.c — helpers (agent_util.h). */
#include "agent_util.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int64_t agent_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void agent_time_format(int64_t us, char *buf, size_t size) {
  time_t secs = (time_t)(us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char base[24];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, size, "%s.%06dZ", base, (int)(us % 1000000));
}

/* The length of the valid UTF-8 sequence at s (1-4), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n) {
  unsigned c = s[0];
  size_t need;
  unsigned min;
  if (c >= 0x01 && c < 0x80)
    return 1;
  if (c >= 0xc2 && c < 0xe0) {
    need = 2;
    min = 0x80;
  } else if (c >= 0xe0 && c < 0xf0) {
    need = 3;
    min = 0x800;
  } else if (c >= 0xf0 && c < 0xf5) {
    need = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (n < need)
    return 0;
  unsigned cp = c & (0x7f >> need);
  for (size_t i = 1; i < need; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
    return 0;
  return need;
}

char *agent_utf8_repair(const char *s, size_t len, size_t *out_len) {
  /* Each bad byte grows to 3: the worst case is 3 * len. */
  char *out = malloc(len * 3 + 1);
  if (!out)
    return NULL;
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    size_t k = utf8_seq(p + i, len - i);
    if (k == 0) {
      memcpy(out + o, "\xef\xbf\xbd", 3);
      o += 3;
      i++;
    } else {
      memcpy(out + o, p + i, k);
      o += k;
      i += k;
    }
  }
  out[o] = '\0';
  *out_len = o;
  return out;
}

int64_t agent_env_ms(const char *name, int64_t def) {
  const char *v = getenv(name);
  if (!v || !*v)
    return def;
  char *end;
  double n = strtod(v, &end);
  if (end == v || n < 0)
    return def;
  if (strcmp(end, "") == 0 || strcmp(end, "ms") == 0)
    return (int64_t)n;
  if (strcmp(end, "s") == 0)
    return (int64_t)(n * 1000);
  if (strcmp(end, "m") == 0)
    return (int64_t)(n * 60000);
  return def;
}

int64_t agent_json_seconds(const json_t *o, const char *k1, const char *k2) {
  json_t *v = json_object_get(o, k1);
  if (!json_is_number(v))
    v = json_object_get(o, k2);
  return json_is_number(v) ? (int64_t)json_number_value(v) : 0;
}

static bool usable_shell(const char *sh) {
  if (!sh || sh[0] != '/' || access(sh, X_OK) != 0)
    return false;
  const char *base = strrchr(sh, '/') + 1;
  /* A service account's nologin would end every session at once (the
   * build user that runs terraform-local's agent has one). */
  return strcmp(base, "nologin") != 0 && strcmp(base, "false") != 0;
}

char *agent_user_shell(const char *cfg_shell) {
  if (cfg_shell && cfg_shell[0] == '/')
    return strdup(cfg_shell);
  struct passwd pw, *res = NULL;
  char buf[4096];
  if (getpwuid_r(getuid(), &pw, buf, sizeof buf, &res) == 0 && res &&
      usable_shell(res->pw_shell))
    return strdup(res->pw_shell);
  return strdup("/bin/sh");
}

char *agent_strf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *out = NULL;
  if (vasprintf(&out, fmt, ap) < 0)
    out = NULL;
  va_end(ap);
  return out;
}
