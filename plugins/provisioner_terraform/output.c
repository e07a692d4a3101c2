/* output.c — what terraform prints, as job log lines.
 *
 * With -json, every stdout line is one UI message: {"@level", "@message",
 * "type", ...}. "@level" becomes the line's level (trace and debug are
 * ATR_LOG_DEBUG); "@message" its text, one log line per line of it.
 * Diagnostics are written out from their parts: "Error: main.tf:2:
 * summary" and the detail, at error or warn level. Lines that are not JSON
 * are logged at info. stderr carries what Terraform prints outside its UI
 * (CLI configuration problems, crashes): boxed "Error:" blocks and panics
 * at error level, the rest at warn.
 *
 * Every line goes through tf_log(), which replaces sensitive parameter
 * values, and then to the job's log, or to the process log when there is
 * no job (init's version check).
 */
#include "internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TF_MASK "********"
/* Longest detail kept in an error message. */
#define TF_DETAIL_MAX 600

/* s with every `what` replaced by TF_MASK; frees s. NULL: no memory. */
static char *replace_all(char *s, const char *what) {
  size_t wn = strlen(what), mn = strlen(TF_MASK), count = 0;
  for (const char *p = strstr(s, what); p != NULL; p = strstr(p + wn, what))
    count++;
  if (count == 0)
    return s;
  char *out = malloc(strlen(s) + count * mn + 1);
  if (out != NULL) {
    char *o = out;
    const char *p = s, *hit;
    while ((hit = strstr(p, what)) != NULL) {
      memcpy(o, p, (size_t)(hit - p));
      o += hit - p;
      memcpy(o, TF_MASK, mn);
      o += mn;
      p = hit + wn;
    }
    memcpy(o, p, strlen(p) + 1);
  }
  free(s);
  return out;
}

char *tf_redact(const tf_job_t *j, const char *line) {
  char *s = strdup(line);
  for (size_t i = 0; s != NULL && i < j->nparams; i++) {
    const atr_param_value_t *p = atr_param_at(j->params, i);
    if (p->sensitive && p->value != NULL && *p->value != '\0')
      s = replace_all(s, p->value);
  }
  if (s != NULL && j->secret != NULL && *j->secret != '\0')
    s = replace_all(s, j->secret);
  return s;
}

void tf_log(tf_job_t *j, atr_log_level_t level, const char *stage,
            const char *line) {
  char *r = tf_redact(j, line);
  const char *text = r != NULL ? r : "(a line was left out: out of memory)";
  if (j->job != NULL && j->log != NULL)
    j->log(j->job, level, stage, text);
  else
    j->c->host->log(j->c->h, level, "%s%s%s", stage ? stage : "",
                    stage ? ": " : "", text);
  free(r);
}

void tf_logf(tf_job_t *j, atr_log_level_t level, const char *stage,
             const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *line = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&line, fmt, ap) < 0)
    line = NULL;
  va_end(ap);
  tf_log(j, level, stage,
         line != NULL ? line : "(a line was left out: out of memory)");
  free(line);
}

/* One log line per line of text; empty lines are left out. */
static void log_lines(tf_job_t *j, atr_log_level_t level, const char *stage,
                      const char *text) {
  char *copy = strdup(text);
  if (copy == NULL)
    return;
  char *save = NULL;
  for (char *l = strtok_r(copy, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    if (strspn(l, " \t\r") != strlen(l))
      tf_log(j, level, stage, l);
  }
  free(copy);
}

static atr_log_level_t level_of(const char *s) {
  if (s == NULL)
    return ATR_LOG_INFO;
  if (strcmp(s, "error") == 0)
    return ATR_LOG_ERROR;
  if (strcmp(s, "warn") == 0 || strcmp(s, "warning") == 0)
    return ATR_LOG_WARN;
  if (strcmp(s, "debug") == 0 || strcmp(s, "trace") == 0)
    return ATR_LOG_DEBUG;
  return ATR_LOG_INFO;
}

/* "main.tf:2: " for a diagnostic with a range, "" without. */
static void where(const json_t *diag, char *buf, size_t size) {
  const json_t *range = json_object_get(diag, "range");
  const char *file = json_string_value(json_object_get(range, "filename"));
  json_int_t line = json_integer_value(
      json_object_get(json_object_get(range, "start"), "line"));
  if (file != NULL && line > 0)
    snprintf(buf, size, "%s:%lld: ", file, (long long)line);
  else if (file != NULL)
    snprintf(buf, size, "%s: ", file);
  else
    buf[0] = '\0';
}

/* text on one line (runs of white space as one space), at most max bytes. */
static char *one_line(const char *text, size_t max) {
  char *out = malloc(max + 4);
  if (out == NULL)
    return NULL;
  size_t n = 0;
  bool space = false;
  for (const char *p = text; *p != '\0' && n < max; p++) {
    if (isspace((unsigned char)*p)) {
      space = n > 0;
      continue;
    }
    if (space)
      out[n++] = ' ';
    space = false;
    if (n < max)
      out[n++] = *p;
  }
  out[n] = '\0';
  if (n >= max)
    memcpy(out + n, "...", 4);
  return out;
}

static void remember_error(tf_job_t *j, const char *loc, const char *summary,
                           const char *detail) {
  if (j->first_error != NULL)
    return;
  char *d = one_line(detail, TF_DETAIL_MAX);
  char *msg = NULL;
  if (asprintf(&msg, "%s%s%s%s", loc, summary, d && *d ? ": " : "",
               d ? d : "") < 0)
    msg = NULL;
  if (msg != NULL)
    j->first_error = tf_redact(j, msg);
  free(msg);
  free(d);
}

void tf_out_diagnostic(tf_job_t *j, const char *stage, const json_t *diag) {
  const char *sev = json_string_value(json_object_get(diag, "severity"));
  const char *summary = json_string_value(json_object_get(diag, "summary"));
  const char *detail = json_string_value(json_object_get(diag, "detail"));
  bool error = sev == NULL || strcmp(sev, "warning") != 0;
  char loc[512];
  where(diag, loc, sizeof loc);
  if (summary == NULL)
    summary = "(no summary)";
  tf_logf(j, error ? ATR_LOG_ERROR : ATR_LOG_WARN, stage, "%s: %s%s",
          error ? "Error" : "Warning", loc, summary);
  if (detail != NULL)
    log_lines(j, error ? ATR_LOG_ERROR : ATR_LOG_WARN, stage, detail);
  if (error)
    remember_error(j, loc, summary, detail ? detail : "");
}

void tf_out_json_line(tf_job_t *j, const char *stage, const char *line) {
  if (strspn(line, " \t") == strlen(line))
    return;
  json_t *m = line[0] == '{' ? json_loads(line, 0, NULL) : NULL;
  if (!json_is_object(m)) {
    json_decref(m);
    tf_log(j, ATR_LOG_INFO, stage, line);
    return;
  }
  const char *type = json_string_value(json_object_get(m, "type"));
  const json_t *diag = json_object_get(m, "diagnostic");
  const char *msg = json_string_value(json_object_get(m, "@message"));
  if (type != NULL && strcmp(type, "diagnostic") == 0 && json_is_object(diag))
    tf_out_diagnostic(j, stage, diag);
  else if (msg != NULL)
    log_lines(j, level_of(json_string_value(json_object_get(m, "@level"))),
              stage, msg);
  json_decref(m);
}

/* line without the box Terraform draws around diagnostics ("╷", "│ ",
 * "╵", each 3 bytes in UTF-8) and leading blanks. */
static const char *unboxed(const char *line) {
  static const char *const box[] = {"\xe2\x95\xb7", "\xe2\x94\x82",
                                    "\xe2\x95\xb5"};
  for (size_t i = 0; i < sizeof box / sizeof box[0]; i++) {
    if (strncmp(line, box[i], 3) == 0) {
      line += 3;
      break;
    }
  }
  return line + strspn(line, " \t");
}

void tf_out_stderr_line(tf_job_t *j, const char *stage, atr_log_level_t *level,
                        const char *line) {
  const char *t = unboxed(line);
  bool is_error = strncmp(t, "Error:", 6) == 0 || strncmp(t, "panic:", 6) == 0;
  if (is_error)
    *level = ATR_LOG_ERROR;
  else if (strncmp(t, "Warning:", 8) == 0)
    *level = ATR_LOG_WARN;
  bool block_end = strncmp(line, "\xe2\x95\xb5", 3) == 0;
  if (*t != '\0') {
    tf_log(j, *level, stage, t);
    if (j->first_stderr == NULL || (is_error && !j->first_stderr_error)) {
      free(j->first_stderr);
      j->first_stderr = tf_redact(j, t);
      j->first_stderr_error = is_error;
    }
  }
  if (block_end)
    *level = ATR_LOG_WARN;
}
