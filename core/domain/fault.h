/* core/domain/fault.h — why a domain call refused, in the words its caller
 * shows the user.
 *
 * A domain function that validates what a user asked for fills an
 * atr_fault_t: an ATR_E… code (the API turns it into a status: ENOENT 404,
 * EPERM 403, EEXIST/ECONSTRAINT/BUSY 409, EINVAL 400, EUNAVAIL 503, any
 * other 500), a message for the user, an optional detail, per-field
 * validations ([{"field", "detail"}]) and extra members for the answer (a
 * policy deny's messages). Internal failures (code 500) keep their detail
 * for the log; callers never show it.
 *
 * Ownership: the fault owns its strings and JSON; atr_fault_clear() frees
 * them. Threads: a fault belongs to one call.
 */
#ifndef ATRIUM_CORE_FAULT_H
#define ATRIUM_CORE_FAULT_H

#include <jansson.h>

typedef struct atr_fault {
  int code;            /* 0 until something failed; ATR_E… */
  char *message;       /* for the user; NULL takes the code's default */
  char *detail;        /* may be NULL */
  json_t *validations; /* [{"field", "detail"}] or NULL */
  json_t *extra;       /* members added to the error answer, or NULL */
} atr_fault_t;

/* Set code, message and a printf-style detail (fmt may be NULL); returns
 * code, so `return atr_fault_set(f, ATR_ENOENT, "...", NULL);` reads well.
 * A fault already set keeps its first cause. f may be NULL. */
int atr_fault_set(atr_fault_t *f, int code, const char *message,
                  const char *detail_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* An internal error (storage, memory): the code and err for the log;
 * err is borrowed. Returns code. */
int atr_fault_internal(atr_fault_t *f, int code, const char *err);
/* Add a validation {"field", "detail"} (printf-style). */
void atr_fault_field(atr_fault_t *f, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether validations were added. */
int atr_fault_has_fields(const atr_fault_t *f);
/* The code (ATR_EINVAL when only validations were added, 0 when none). */
int atr_fault_code(const atr_fault_t *f);
/* The HTTP status the fault answers with (200 for none): 404, 403, 409,
 * 400, 501 or 503 by code when the fault tells the user why, else 500.
 * The API answers with it; the domain records it in audit entries. */
int atr_fault_status(const atr_fault_t *f);
void atr_fault_clear(atr_fault_t *f);

#endif
