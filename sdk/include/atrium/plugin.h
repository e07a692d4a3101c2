/* atrium/plugin.h — the plugin descriptor and the single entry symbol.
 *
 * A plugin is a shared object that exports exactly one function,
 *
 *     const atr_plugin_t *atrium_plugin_entry(void);
 *
 * returning a pointer to a static descriptor. The loader reads the descriptor
 * and checks it (ABI major equal, minor not newer than the host's, struct
 * sizes large enough, unique name, options valid) before it calls anything
 * else in the plugin. Then it allocates ctx_size zeroed bytes, fills option
 * fields by offset, and calls init(). fini() is called once at shutdown,
 * only after a successful init(). Code is never unloaded while running.
 *
 * Compatibility: ATR_ABI_MAJOR changes when something existing changes
 * meaning or layout; ATR_ABI_MINOR when something is appended (docs/sdk.md
 * states the rule). Descriptor, host table, every ops table and every struct
 * that crosses the boundary in an array or as a result begin with their
 * struct_size, so either side can tell what the other knows. ABI 1.1 is the
 * first stable layout: the loader refuses a plugin built against 1.0.
 *
 * C++: every header is wrapped in extern "C", and ATR_PLUGIN_DEFINE gives
 * the entry C linkage, so a plugin written in C++ exports the unmangled
 * atrium_plugin_entry.
 *
 * Threads: entry() and init() run on the main thread before serving starts;
 * fini() on the main thread after serving stopped. Kind ops say their own.
 */
#ifndef ATRIUM_PLUGIN_H
#define ATRIUM_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "atrium/error.h"
#include "atrium/host.h"
#include "atrium/option.h"

#ifdef __cplusplus
extern "C" {
#endif

#define ATR_ABI_MAJOR 1
#define ATR_ABI_MINOR 3

#define ATR_PLUGIN_ENTRY_SYMBOL "atrium_plugin_entry"

#if defined(__GNUC__)
#define ATR_EXPORT __attribute__((visibility("default")))
#else
#define ATR_EXPORT
#endif

typedef enum atr_plugin_kind {
  ATR_KIND_STORAGE = 1,
  ATR_KIND_AUTH = 2,
  ATR_KIND_PROVISIONER = 3,
  ATR_KIND_OBSERVER = 4,
} atr_plugin_kind_t;

/* Every kind's ops table starts with this. */
typedef struct atr_ops_header {
  uint32_t struct_size;
} atr_ops_header_t;

typedef struct atr_plugin {
  uint32_t abi_major;   /* ATR_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;   /* ATR_ABI_MINOR the plugin was built with */
  uint32_t struct_size; /* sizeof(atr_plugin_t) the plugin was built with */
  atr_plugin_kind_t kind;
  const char *name;    /* unique; [a-z][a-z0-9_]*, e.g. "provisioner_echo" */
  const char *version; /* the plugin's own version, e.g. "1.2.0" */
  const char *description;     /* one line */
  const atr_option_t *options; /* {0}-terminated, or NULL for none */
  size_t ctx_size;             /* bytes of the context the host allocates */
  /* Set up. ctx has its option fields filled. On failure return a negative
   * ATR_E* and set *err to a malloc'd message; the host undoes whatever the
   * plugin registered and never calls fini(). */
  int (*init)(atr_handle_t *h, const atr_host_t *host, void *ctx, char **err);
  void (*fini)(void *ctx);
  /* Optional: called on the main thread after SIGHUP changed reloadable
   * options (their fields are already updated). NULL if not needed. */
  int (*reload)(void *ctx, char **err);
  const void *ops; /* the kind's ops table; starts with atr_ops_header_t */
  /* Optional, appended in ABI 1.0 (the host reads it only when struct_size
   * covers it): how the plugin is doing, for the health report (GET
   * /api/v2/debug/health). Return ATR_HEALTH_HEALTHY, ATR_HEALTH_DEGRADED
   * or ATR_HEALTH_UNHEALTHY, and set *message to a malloc'd line saying
   * why (the host frees it; NULL says nothing). Called on HTTP worker
   * threads, several at once, only while the plugin runs: answer from
   * state at hand within milliseconds, never block on the network for
   * long, and never put a secret in the message. NULL: the plugin counts
   * as healthy while it runs. */
  int (*health)(void *ctx, char **message);
  /* Appended in ABI 1.1: sizeof(atr_option_t) as the plugin was built,
   * the stride the host walks `options` with; 0 means the ABI 1.1 layout. */
  size_t option_size;
} atr_plugin_t;

/* What health() returns. */
enum {
  ATR_HEALTH_HEALTHY = 0,
  ATR_HEALTH_DEGRADED = 1,
  ATR_HEALTH_UNHEALTHY = 2,
};

typedef const atr_plugin_t *(*atr_plugin_entry_fn)(void);

/* The one symbol a plugin exports (ATR_PLUGIN_DEFINE defines it). Declared
 * here, inside extern "C", so its linkage is C in a C++ plugin too. */
ATR_EXPORT const atr_plugin_t *atrium_plugin_entry(void);

/* Fill the ABI fields of a descriptor. */
#define ATR_PLUGIN_ABI                                                         \
  .abi_major = ATR_ABI_MAJOR, .abi_minor = ATR_ABI_MINOR,                      \
  .struct_size = sizeof(atr_plugin_t)

/* Declare the entry symbol returning `desc`. */
#ifdef __cplusplus
#define ATR__EXTERN_C extern "C"
#else
#define ATR__EXTERN_C
#endif
#define ATR_PLUGIN_DEFINE(desc)                                                \
  ATR__EXTERN_C ATR_EXPORT const atr_plugin_t *atrium_plugin_entry(void);      \
  ATR__EXTERN_C ATR_EXPORT const atr_plugin_t *atrium_plugin_entry(void) {     \
    return &(desc);                                                            \
  }

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_PLUGIN_H */
