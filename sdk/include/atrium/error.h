/* atrium/error.h — error codes shared by the core and every plugin.
 *
 * Functions across the plugin boundary return 0 on success or a negative
 * ATR_E* code. One X-macro table gives each code its value, its name and its
 * message; atr_strerror() and atr_err_name() are generated from it, inline, so
 * a plugin needs no symbol from the host to use them. Where a code alone
 * cannot explain a failure, a function takes `char **err` and sets it to a
 * malloc'd message that the caller frees.
 *
 * Thread safety: everything here is pure and may be called from any thread.
 */
#ifndef ATRIUM_ERROR_H
#define ATRIUM_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, value, message). Append only: values are part of the ABI. */
#define ATR_ERRNO_MAP(X)                                                       \
  X(PERM, -1, "operation not permitted")                                       \
  X(NOENT, -2, "not found")                                                    \
  X(IO, -5, "input/output error")                                              \
  X(AGAIN, -11, "try again")                                                   \
  X(NOMEM, -12, "out of memory")                                               \
  X(ACCES, -13, "permission denied")                                           \
  X(BUSY, -16, "resource busy")                                                \
  X(EXIST, -17, "already exists")                                              \
  X(INVAL, -22, "invalid argument")                                            \
  X(RANGE, -34, "value out of range")                                          \
  X(NOTSUP, -95, "not supported")                                              \
  X(TIMEDOUT, -110, "timed out")                                               \
  X(CANCELED, -125, "canceled")                                                \
  X(ABI, -1001, "plugin ABI mismatch")                                         \
  X(CONFIG, -1002, "configuration error")                                      \
  X(UNAVAIL, -1003, "service unavailable")                                     \
  X(PLUGIN, -1004, "plugin failed")                                            \
  X(CONSTRAINT, -1005, "constraint violation")

typedef enum atr_errno {
#define ATR__ERR_ENUM(name, value, msg) ATR_E##name = (value),
  ATR_ERRNO_MAP(ATR__ERR_ENUM)
#undef ATR__ERR_ENUM
} atr_errno_t;

/* The message for an error code ("not found"), "unknown error" otherwise. */
static inline const char *atr_strerror(int code) {
  switch (code) {
#define ATR__ERR_MSG(name, value, msg)                                         \
  case (value):                                                                \
    return (msg);
    ATR_ERRNO_MAP(ATR__ERR_MSG)
#undef ATR__ERR_MSG
  case 0:
    return "success";
  default:
    return "unknown error";
  }
}

/* The symbolic name of an error code ("ATR_ENOENT"). */
static inline const char *atr_err_name(int code) {
  switch (code) {
#define ATR__ERR_NAME(name, value, msg)                                        \
  case (value):                                                                \
    return "ATR_E" #name;
    ATR_ERRNO_MAP(ATR__ERR_NAME)
#undef ATR__ERR_NAME
  case 0:
    return "ATR_OK";
  default:
    return "ATR_EUNKNOWN";
  }
}

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_ERROR_H */
