/* atrium/option.h — typed option tables.
 *
 * A plugin (and the core itself) declares its configuration as a static,
 * {0}-terminated array of atr_option_t. The host uses the table to validate a
 * config section (unknown keys are refused with the list of valid ones, a
 * missing required key names itself, a value of the wrong type says what is
 * allowed), to apply defaults, to fill the plugin's context struct by offset
 * before init() runs, to print `atrium plugins describe`, to generate
 * docs/configuration.md and to redact secrets everywhere.
 *
 * Storage written at `offset` inside the plugin's context, by type:
 *   ATR_OPT_STRING, ATR_OPT_ENUM, ATR_OPT_SECRET  const char *   (host-owned,
 *                                  valid until fini; NULL when unset)
 *   ATR_OPT_INT                    int64_t
 *   ATR_OPT_BOOL                   bool
 *   ATR_OPT_DOUBLE                 double
 *   ATR_OPT_SIZE                   uint64_t  bytes      ("64MiB", "1.5GB", "512")
 *   ATR_OPT_DURATION               int64_t   milliseconds ("5m", "1h30m", "250ms")
 *   ATR_OPT_LIST                   const char *const *  NULL-terminated (host-owned)
 *
 * Use ATR_OPT_NO_OFFSET for an option the plugin reads through the host's
 * option_get_* functions instead.
 *
 * Growth: fields are only ever appended to atr_option_t. The host walks a
 * plugin's table with the stride the descriptor declares in option_size
 * (sizeof(atr_option_t) as the plugin was built; 0 means the ABI 1.1
 * layout), so a table built against an older SDK still reads right.
 */
#ifndef ATRIUM_OPTION_H
#define ATRIUM_OPTION_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum atr_option_type {
  ATR_OPT_STRING = 1,
  ATR_OPT_INT = 2,
  ATR_OPT_BOOL = 3,
  ATR_OPT_DOUBLE = 4,
  ATR_OPT_SIZE = 5,
  ATR_OPT_DURATION = 6,
  ATR_OPT_LIST = 7,
  ATR_OPT_ENUM = 8,
  ATR_OPT_SECRET = 9,
} atr_option_type_t;

enum atr_option_flag {
  ATR_OPT_REQUIRED = 1u << 0,   /* no default: the config must set it */
  ATR_OPT_RELOADABLE = 1u << 1, /* SIGHUP applies a new value while running */
  ATR_OPT_DEPRECATED = 1u << 2, /* still accepted, with a warning in the log */
};

#define ATR_OPT_NO_OFFSET ((size_t)-1)

typedef struct atr_option {
  atr_option_type_t type;
  const char *name; /* snake_case; the core's own use dots: "http.address" */
  const char *default_value; /* as it would be written in YAML; NULL for none */
  uint32_t flags;            /* enum atr_option_flag */
  size_t offset;             /* offsetof(ctx, field) or ATR_OPT_NO_OFFSET */
  const char *description; /* one sentence; shown by describe and in the docs */
  const char *const *choices; /* ATR_OPT_ENUM: NULL-terminated allowed values */
  double min;                 /* INT, DOUBLE, SIZE, DURATION (ms): bounds, */
  double max;                 /* checked only when min < max */
} atr_option_t;

/* The entry that ends a table: {0} in C, {} in C++ (where 0 is no enum). */
#ifdef __cplusplus
#define ATR_OPTIONS_END                                                        \
  {}
#else
#define ATR_OPTIONS_END                                                        \
  { 0 }
#endif

/* The smallest option entry the host accepts: the ABI 1.1 layout. */
#define ATR_OPTION_MIN_SIZE (offsetof(atr_option_t, max) + sizeof(double))

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_OPTION_H */
