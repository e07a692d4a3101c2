/* core/api/api_agent_body.c — what an agent's bodies may hold
 * (api_agent_body.h). */
#include "api_agent_body.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api.h"

/* {"field": prefix + name, "detail": detail}: the field as a path
 * ("logs[3].seq"), cut at 95 bytes. */
static void invalid(json_t *v, const char *detail, const char *prefix,
                    const char *name) {
  char field[96];
  snprintf(field, sizeof field, "%s%s", prefix, name);
  atr_api_add_validation(v, field, detail);
}

/* "name[i]" into buf. */
static const char *item(char *buf, size_t size, const char *name, size_t i) {
  snprintf(buf, size, "%s[%zu]", name, i);
  return buf;
}

/* Item i of the list `name`: prefix gets "name[i]." for its fields; false
 * (the item refused with detail) when it is not an object. */
static bool item_object(const json_t *o, const char *name, size_t i,
                        const char *detail, char prefix[40], json_t *v) {
  if (!json_is_object(o)) {
    invalid(v, detail, item(prefix, 40, name, i), "");
    return false;
  }
  snprintf(prefix, 40, "%s[%zu].", name, i);
  return true;
}

static int digits(const char **p, int n) {
  int x = 0;
  for (int i = 0; i < n; i++, (*p)++) {
    if (!isdigit((unsigned char)**p))
      return -1;
    x = x * 10 + (**p - '0');
  }
  return x;
}

int atr__agent_parse_time(const char *s, int64_t *us) {
  const char *p = s;
  int f[6];
  static const char seps[] = "--T::";
  static const int widths[] = {4, 2, 2, 2, 2, 2};
  for (int i = 0; i < 6; i++) {
    if ((f[i] = digits(&p, widths[i])) < 0)
      return -1;
    if (i < 5 && toupper((unsigned char)*p++) != seps[i])
      return -1;
  }
  int64_t frac = 0, scale = 1000000;
  if (*p == '.') {
    p++;
    if (!isdigit((unsigned char)*p))
      return -1;
    for (; isdigit((unsigned char)*p); p++)
      if (scale > 1) {
        scale /= 10;
        frac += (*p - '0') * scale;
      }
  }
  int offset_s = 0;
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    int sign = *p++ == '-' ? -1 : 1;
    int h = digits(&p, 2);
    int m = *p++ == ':' ? digits(&p, 2) : -1;
    if (h < 0 || m < 0 || h > 23 || m > 59)
      return -1;
    offset_s = sign * (h * 3600 + m * 60);
  } else {
    return -1;
  }
  if (*p || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 || f[3] > 23 ||
      f[4] > 59 || f[5] > 60)
    return -1;
  struct tm tm = {.tm_year = f[0] - 1900,
                  .tm_mon = f[1] - 1,
                  .tm_mday = f[2],
                  .tm_hour = f[3],
                  .tm_min = f[4],
                  .tm_sec = f[5]};
  time_t t = timegm(&tm);
  *us = ((int64_t)t - offset_s) * 1000000 + frac;
  return 0;
}

/* ---- field checks ------------------------------------------------------- */

/* A string of at most max bytes; required or absent/null. */
static void check_string(const json_t *o, const char *key, size_t max,
                         bool required, json_t *v, const char *prefix) {
  const json_t *j = json_object_get(o, key);
  if (!j || json_is_null(j)) {
    if (required)
      invalid(v, "Required.", prefix, key);
    return;
  }
  char detail[64];
  snprintf(detail, sizeof detail, "Must be a string of at most %zu bytes.",
           max);
  if (!json_is_string(j) || json_string_length(j) > max ||
      strlen(json_string_value(j)) != json_string_length(j))
    invalid(v, detail, prefix, key);
}

static void check_time(const json_t *o, const char *key, bool required,
                       json_t *v, const char *prefix) {
  const json_t *j = json_object_get(o, key);
  int64_t us = 0;
  if (!j || json_is_null(j)) {
    if (required)
      invalid(v, "Required.", prefix, key);
  } else if (!json_is_string(j) ||
             atr__agent_parse_time(json_string_value(j), &us) != 0) {
    invalid(v, "Must be an RFC 3339 time (2026-12-07T21:51:50.123Z).", prefix,
            key);
  }
}

/* An array of at most max items; NULL (and a validation when required)
 * when absent or not one. */
static const json_t *check_array(const json_t *o, const char *key, size_t max,
                                 bool required, json_t *v) {
  const json_t *j = json_object_get(o, key);
  char detail[64];
  snprintf(detail, sizeof detail, "Must be a list of at most %zu items.", max);
  if (!j || json_is_null(j)) {
    if (required)
      invalid(v, detail, "", key);
    return NULL;
  }
  if (!json_is_array(j) || json_array_size(j) > max) {
    invalid(v, detail, "", key);
    return NULL;
  }
  return j;
}

static bool one_of(const char *s, const char *const *names) {
  for (; s && *names; names++)
    if (strcmp(s, *names) == 0)
      return true;
  return false;
}

/* ---- the bodies ---------------------------------------------------------- */

void atr__agent_check_startup(const json_t *body, json_t *v) {
  check_string(body, "version", 64, true, v, "");
  check_string(body, "expanded_directory", 4096, false, v, "");
  const json_t *subs =
      check_array(body, "subsystems", ATR_AGENT_MAX_SUBSYSTEMS, false, v);
  size_t i;
  const json_t *s;
  char buf[40];
  json_array_foreach(subs, i, s) {
    if (!json_is_string(s) || json_string_length(s) > 32)
      invalid(v, "Must be a string of at most 32 bytes.",
              item(buf, sizeof buf, "subsystems", i), "");
  }
}

void atr__agent_check_lifecycle(const json_t *body, json_t *v) {
  const json_t *s = json_object_get(body, "state");
  if (!json_is_string(s) || atr_agent_lifecycle_parse(json_string_value(s)) < 0)
    invalid(v,
            "Must be one of created, starting, start_timeout, start_error, "
            "ready, shutting_down, shutdown_timeout, shutdown_error, off.",
            "", "state");
  check_time(body, "changed_at", false, v, "");
  const json_t *code = json_object_get(body, "startup_script_exit_code");
  if (code && !json_is_null(code) &&
      (!json_is_integer(code) || json_integer_value(code) < 0 ||
       json_integer_value(code) > 255))
    invalid(v, "Must be an integer from 0 to 255.", "",
            "startup_script_exit_code");
}

static const char *const log_levels[] = {"trace", "debug", "info",
                                         "warn",  "error", NULL};

static void check_line(const json_t *line, size_t i, json_t *v) {
  char prefix[40];
  if (!item_object(line, "logs", i,
                   "Must be an object {seq, created_at, output, level}.",
                   prefix, v))
    return;
  const json_t *seq = json_object_get(line, "seq");
  if (!json_is_integer(seq) || json_integer_value(seq) < 1)
    invalid(v, "Must be a whole number, 1 or more.", prefix, "seq");
  check_time(line, "created_at", false, v, prefix);
  check_string(line, "output", ATR_AGENT_MAX_LOG_OUTPUT, true, v, prefix);
  const json_t *level = json_object_get(line, "level");
  if (level && !json_is_null(level) &&
      !one_of(json_string_value(level), log_levels))
    invalid(v, "Must be one of trace, debug, info, warn, error.", prefix,
            "level");
}

void atr__agent_check_logs(const json_t *body, json_t *v) {
  check_string(body, "log_source_id", 36, true, v, "");
  const json_t *logs =
      check_array(body, "logs", ATR_AGENT_MAX_LOG_LINES, true, v);
  size_t i;
  const json_t *line;
  json_array_foreach(logs, i, line) {
    check_line(line, i, v);
  }
}

void atr__agent_log_lines(const json_t *logs, atr_agent_log_line_t *lines) {
  size_t i;
  const json_t *line;
  json_array_foreach(logs, i, line) {
    int64_t at = 0;
    const char *t = json_string_value(json_object_get(line, "created_at"));
    if (t)
      atr__agent_parse_time(t, &at);
    const char *level = json_string_value(json_object_get(line, "level"));
    lines[i] = (atr_agent_log_line_t){
        .seq = json_integer_value(json_object_get(line, "seq")),
        .created_at_us = at,
        .level = level ? level : "info",
        .output = json_string_value(json_object_get(line, "output"))};
  }
}

void atr__agent_check_metadata(const json_t *body, json_t *v) {
  const json_t *md =
      check_array(body, "metadata", ATR_AGENT_MAX_METADATA, true, v);
  size_t i;
  const json_t *m;
  json_array_foreach(md, i, m) {
    char prefix[40];
    if (!item_object(m, "metadata", i,
                     "Must be an object {key, collected_at, age, value, "
                     "error}.",
                     prefix, v))
      continue;
    check_string(m, "key", 128, true, v, prefix);
    /* longer values are cut to 2,048 bytes by the domain, not refused */
    check_string(m, "value", ATR_AGENT_MAX_LOG_OUTPUT, false, v, prefix);
    check_string(m, "error", ATR_AGENT_MAX_LOG_OUTPUT, false, v, prefix);
    check_time(m, "collected_at", false, v, prefix);
    const json_t *age = json_object_get(m, "age");
    if (age && !json_is_null(age) && !json_is_integer(age))
      invalid(v, "Must be a whole number of seconds.", prefix, "age");
  }
}

void atr__agent_check_stats(const json_t *body, json_t *v) {
  const char *key;
  const json_t *val;
  json_object_foreach((json_t *)body, key, val) {
    bool ok = strcmp(key, "connections_by_proto") == 0
                  ? json_is_object(val) || json_is_null(val)
                  : json_is_number(val) || json_is_null(val);
    if (!ok)
      invalid(v,
              strcmp(key, "connections_by_proto") == 0
                  ? "Must be an object of counts."
                  : "Must be a number.",
              "", key);
  }
}

static const char *const app_healths[] = {"initializing", "healthy",
                                          "unhealthy", NULL};

void atr__agent_check_app_health(const json_t *body, json_t *v) {
  const json_t *h = json_object_get(body, "healths");
  if (!json_is_object(h) || json_object_size(h) > ATR_AGENT_MAX_APPS) {
    invalid(v,
            "Must be an object {\"<app id>\": \"healthy\", ...} of at most 64 "
            "apps.",
            "", "healths");
    return;
  }
  const char *id;
  const json_t *state;
  json_object_foreach((json_t *)h, id, state) {
    if (strlen(id) > 36 || !one_of(json_string_value(state), app_healths))
      invalid(v, "Must be initializing, healthy or unhealthy, for an app id.",
              "healths.", id);
  }
}

void atr__agent_check_ports(const json_t *body, json_t *v) {
  const json_t *ports =
      check_array(body, "ports", ATR_AGENT_MAX_PORTS, true, v);
  size_t i;
  const json_t *p;
  json_array_foreach(ports, i, p) {
    char prefix[40];
    if (!item_object(p, "ports", i,
                     "Must be an object {process_name, network, port}.", prefix,
                     v))
      continue;
    check_string(p, "process_name", 256, false, v, prefix);
    const char *net = json_string_value(json_object_get(p, "network"));
    if (!net || strcmp(net, "tcp") != 0)
      invalid(v, "Must be \"tcp\".", prefix, "network");
    const json_t *port = json_object_get(p, "port");
    if (!json_is_integer(port) || json_integer_value(port) < 1 ||
        json_integer_value(port) > 65535)
      invalid(v, "Must be a port number, 1 to 65535.", prefix, "port");
  }
}
