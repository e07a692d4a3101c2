/* core/domain/fault.c — see fault.h. */
#include "fault.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

static char *vformat(const char *fmt, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0)
    return NULL;
  return s;
}

int atr_fault_set(atr_fault_t *f, int code, const char *message,
                  const char *detail_fmt, ...) {
  if (!f || f->code != 0)
    return code;
  f->code = code;
  f->message = message ? strdup(message) : NULL;
  if (detail_fmt) {
    va_list ap;
    va_start(ap, detail_fmt);
    f->detail = vformat(detail_fmt, ap);
    va_end(ap);
  }
  return code;
}

int atr_fault_internal(atr_fault_t *f, int code, const char *err) {
  if (!f || f->code != 0)
    return code;
  f->code = code;
  f->detail = strdup(err && *err ? err : atr_strerror(code));
  return code;
}

void atr_fault_field(atr_fault_t *f, const char *field, const char *fmt, ...) {
  if (!f)
    return;
  va_list ap;
  va_start(ap, fmt);
  char *detail = vformat(fmt, ap);
  va_end(ap);
  if (!f->validations)
    f->validations = json_array();
  json_array_append_new(f->validations,
                        json_pack("{s:s, s:s}", "field", field ? field : "",
                                  "detail", detail ? detail : ""));
  free(detail);
}

int atr_fault_has_fields(const atr_fault_t *f) {
  return f && f->validations && json_array_size(f->validations) > 0;
}

int atr_fault_code(const atr_fault_t *f) {
  if (!f)
    return 0;
  if (f->code)
    return f->code;
  return atr_fault_has_fields(f) ? ATR_EINVAL : 0;
}

void atr_fault_clear(atr_fault_t *f) {
  if (!f)
    return;
  free(f->message);
  free(f->detail);
  json_decref(f->validations);
  json_decref(f->extra);
  memset(f, 0, sizeof *f);
}

int atr_fault_status(const atr_fault_t *fault) {
  int code = atr_fault_code(fault);
  if (code == 0)
    return 200;
  bool told = fault->message || atr_fault_has_fields(fault);
  switch (code) {
  case ATR_ENOENT:
    return 404;
  case ATR_EPERM:
    return 403;
  case ATR_EACCES:
    return told ? 403 : 500;
  case ATR_EEXIST:
  case ATR_ECONSTRAINT:
    return 409;
  case ATR_EBUSY:
    return told ? 409 : 500;
  case ATR_EINVAL:
    return 400;
  case ATR_ERANGE:
    return told ? 400 : 500;
  case ATR_ENOTSUP:
    return told ? 501 : 500;
  case ATR_EUNAVAIL:
    return 503;
  default:
    return 500;
  }
}
