/* atrium/host.h — the functions the host offers a plugin.
 *
 * At init() the host hands the plugin a pointer to one atr_host_t. The table
 * is append-only: new functions only ever go at the end, and the host fills
 * struct_size with sizeof(atr_host_t) as it was compiled. A plugin built
 * against a newer SDK checks ATR_HOST_HAS(host, fn) before it calls a
 * function that an older host may not have.
 *
 * The atr_handle_t passed to init() identifies the plugin in every call: log
 * lines carry its name, and the routes and metrics it registers are owned by
 * it (if init() fails, the host removes them all again).
 *
 * Threads: log, option_get_*, clock_*, metric_add/set/observe,
 * metrics_collect and plugins_each may be called from any thread. route_add
 * and metric_register may only be called from init(). Route handlers run on
 * the HTTP worker threads, several at once.
 *
 * Memory: strings passed in are copied; pointers handed out (option values,
 * request fields) are borrowed and stay valid as documented on each function.
 * Results the plugin hands to the host to release (a provisioner's apply
 * result, an auth plugin's hashes, reasons and identities) come from
 * mem_alloc/mem_calloc/mem_realloc (ABI 1.1), never from the plugin's own
 * allocator: a plugin may link another C library or a C++ runtime whose
 * malloc is not the host's. The atr_mem_* helpers below call them (and
 * fall back to the C library only on a table that lacks them). Messages
 * (*err, a health message) stay malloc'd; the host frees them with free().
 *
 * Arrays the host hands out (metric samples) are walked by their first
 * element's struct_size, not by the plugin's sizeof, so a newer host may
 * grow the element: use atr_metric_sample_at().
 */
#ifndef ATRIUM_HOST_H
#define ATRIUM_HOST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ATR_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define ATR_PRINTF(fmt, args)
#endif

typedef struct atr_handle atr_handle_t; /* one loaded plugin, opaque */
typedef struct atr_metric atr_metric_t; /* one registered metric family */
typedef struct atr_http_exchange atr_http_exchange_t; /* one request, opaque */

typedef enum atr_log_level {
  ATR_LOG_ERROR = 0,
  ATR_LOG_WARN = 1,
  ATR_LOG_INFO = 2,
  ATR_LOG_DEBUG = 3,
} atr_log_level_t;

typedef enum atr_metric_type {
  ATR_METRIC_COUNTER = 1,
  ATR_METRIC_GAUGE = 2,
  ATR_METRIC_HISTOGRAM = 3,
} atr_metric_type_t;

/* What a route handler sees of a request. Borrowed for the call only. */
typedef struct atr_http_request {
  uint32_t struct_size;
  const char *method; /* "GET" */
  const char *path;   /* "/metrics", without the query */
  const char *query;  /* after '?', or NULL */
  const char *body;   /* not NUL-terminated; NULL when empty */
  size_t body_len;
  const char *request_id;
} atr_http_request_t;

/* A route handler answers with host->http_respond() exactly once and returns
 * 0. A negative return without a response becomes a 500 JSON error. */
typedef int (*atr_route_fn)(void *user_data, atr_http_exchange_t *x,
                            const atr_http_request_t *req);

/* One metric family as metrics_collect() shows it to an observer. */
typedef struct atr_metric_family {
  uint32_t struct_size; /* sizeof(atr_metric_family_t) in the host */
  atr_metric_type_t type;
  const char *name;
  const char *help;
  const char *owner;              /* "core" or the plugin's name */
  const char *const *label_names; /* nlabels entries */
  size_t nlabels;
  const double *buckets; /* histogram upper bounds, ascending */
  size_t nbuckets;
} atr_metric_family_t;

/* One labelled series of a family. For histograms, bucket_counts holds
 * nbuckets cumulative counts (the +Inf bucket is `count`). */
typedef struct atr_metric_sample {
  uint32_t struct_size; /* the host's sizeof, also the array's stride */
  const char *const *label_values;
  double value;
  uint64_t count;
  double sum;
  const uint64_t *bucket_counts;
} atr_metric_sample_t;

typedef void (*atr_metric_visit_fn)(void *user_data,
                                    const atr_metric_family_t *family,
                                    const atr_metric_sample_t *samples,
                                    size_t nsamples);

/* Sample i of an array the host handed out, stepping by its struct_size. */
static inline const atr_metric_sample_t *
atr_metric_sample_at(const atr_metric_sample_t *samples, size_t i) {
  return (const atr_metric_sample_t *)(const void *)((const char *)samples +
                                                     i * samples->struct_size);
}

/* One plugin as plugins_each() shows it. Borrowed for the call only. */
typedef struct atr_plugin_info {
  uint32_t struct_size; /* sizeof(atr_plugin_info_t) in the host */
  const char *name;     /* "storage_sqlite" */
  const char *kind;     /* "storage", "auth", "provisioner", "observer" */
  const char *version;  /* the plugin's own version */
  const char *state;    /* "loaded", "running", "failed", "stopped" */
} atr_plugin_info_t;

typedef void (*atr_plugin_visit_fn)(void *user_data,
                                    const atr_plugin_info_t *info);

struct atr_prov_job; /* atrium/provisioner.h's atr_prov_job_t */

/* A child process for job_spawn() (ABI 1.2). Borrowed for the call. */
typedef struct atr_spawn {
  uint32_t struct_size; /* sizeof(atr_spawn_t) in the plugin */
  const char *path;     /* the program, an absolute path */
  char *const *argv;    /* NULL-terminated, argv[0] included */
  char *const *envp;    /* NULL-terminated */
  const char *cwd;      /* NULL: the job's working directory */
  int fd_in;            /* the child's 0, 1 and 2; -1: /dev/null */
  int fd_out;
  int fd_err;
} atr_spawn_t;

typedef struct atr_host {
  uint32_t struct_size; /* sizeof(atr_host_t) in the host */
  uint32_t abi_major;
  uint32_t abi_minor;

  /* Logging: one line, prefixed with the plugin's name. */
  void (*log)(atr_handle_t *h, atr_log_level_t level, const char *fmt, ...)
      ATR_PRINTF(3, 4);
  void (*logv)(atr_handle_t *h, atr_log_level_t level, const char *fmt,
               va_list ap);

  /* Typed option access by name, current values (after a reload too).
   * Strings stay valid until the plugin's fini(). Return ATR_ENOENT for an
   * option that is not in the table or is unset, ATR_EINVAL for a type that
   * does not match (INT, SIZE and DURATION read as int64; SIZE as bytes,
   * DURATION as milliseconds). */
  int (*option_get_string)(atr_handle_t *h, const char *name, const char **out);
  int (*option_get_int)(atr_handle_t *h, const char *name, int64_t *out);
  int (*option_get_bool)(atr_handle_t *h, const char *name, int *out);
  int (*option_get_double)(atr_handle_t *h, const char *name, double *out);

  /* Clocks: wall time in milliseconds since the epoch; monotonic ns. */
  int64_t (*clock_now_ms)(void);
  uint64_t (*clock_monotonic_ns)(void);

  /* HTTP: serve `method path` (exact path; the core's own routes win).
   * ATR_EEXIST when another plugin or the core already serves it. */
  int (*route_add)(atr_handle_t *h, const char *method, const char *path,
                   atr_route_fn fn, void *user_data);
  /* Send the whole response; body is copied. Returns 0 or ATR_EINVAL when
   * called twice. */
  int (*http_respond)(atr_http_exchange_t *x, int status,
                      const char *content_type, const char *body,
                      size_t body_len);
  /* A request header's value (case-insensitive name) or NULL. */
  const char *(*http_header)(atr_http_exchange_t *x, const char *name);

  /* Metrics. The name follows Prometheus rules ([a-zA-Z_:][a-zA-Z0-9_:]*);
   * label_names is NULL-terminated or NULL; buckets only for histograms
   * (NULL for the default latency buckets). ATR_EEXIST when the name is
   * taken, ATR_EINVAL for a bad name or label. */
  int (*metric_register)(atr_handle_t *h, atr_metric_type_t type,
                         const char *name, const char *help,
                         const char *const *label_names, const double *buckets,
                         size_t nbuckets, atr_metric_t **out);
  /* label_values: exactly as many as the family's label names (NULL when it
   * has none). add: counters (v >= 0) and gauges; set: gauges; observe:
   * histograms. A call that does not fit the type is ignored. */
  void (*metric_add)(atr_metric_t *m, const char *const *label_values,
                     double v);
  void (*metric_set)(atr_metric_t *m, const char *const *label_values,
                     double v);
  void (*metric_observe)(atr_metric_t *m, const char *const *label_values,
                         double v);
  /* Visit every family and its series (for observers that expose them),
   * sorted by name, under a consistent snapshot. */
  void (*metrics_collect)(atr_metric_visit_fn visit, void *user_data);

  /* The server's data directory (the core's data_dir option, absolute),
   * where a plugin keeps local files such as a SQLite database. Valid for
   * the plugin's lifetime. */
  const char *(*data_dir)(atr_handle_t *h);

  /* Visit every plugin the host has opened (the caller too), in load order,
   * under a lock that keeps the list still: the visitor must not call back
   * into the host's plugin functions. */
  void (*plugins_each)(atr_handle_t *h, atr_plugin_visit_fn visit,
                       void *user_data);

  /* Appended in ABI 1.1. The host's allocator, for the results the plugin
   * hands over for the host to release (provisioner and auth results). Any
   * thread. Prefer the atr_mem_* helpers below. */
  void *(*mem_alloc)(size_t size);
  void *(*mem_calloc)(size_t n, size_t size);
  void *(*mem_realloc)(void *p, size_t size);
  void (*mem_free)(void *p);

  /* Appended in ABI 1.2. Start a child process for a provisioner job, on
   * the thread of the op that runs the job. The child leads a process
   * group of its own, has only the three descriptors of spec, default
   * signal handling and an empty mask, starts in spec->cwd, and runs as
   * the build user when the server runs as root (provisioner.run_as; its
   * HOME is then a directory inside the job's). The host records the
   * group before the program starts, so that it can kill the group when
   * the job ends and, after a crash, at the server's next start. The
   * caller owns the child: it reaps it (waitpid) and may signal its group
   * (kill(-pid, sig)) until then. Returns 0 and *pid, or an ATR_E* code
   * (ATR_EIO with errno's reason in the log when exec failed). */
  int (*job_spawn)(atr_handle_t *h, struct atr_prov_job *job,
                   const atr_spawn_t *spec, int *pid);
} atr_host_t;

/* True when the host's table is long enough to contain `field`. */
#define ATR_HOST_HAS(host, field)                                              \
  ((host)->struct_size >=                                                      \
       offsetof(atr_host_t, field) + sizeof((host)->field) &&                  \
   (host)->field != NULL)

/* The host's allocator when it has one (ABI 1.1), else the C library's,
 * which is what an ABI 1.0 host released with. host may be NULL. */
static inline void *atr_mem_alloc(const atr_host_t *host, size_t size) {
  return host && ATR_HOST_HAS(host, mem_alloc) ? host->mem_alloc(size)
                                               : malloc(size);
}

static inline void *atr_mem_calloc(const atr_host_t *host, size_t n,
                                   size_t size) {
  return host && ATR_HOST_HAS(host, mem_calloc) ? host->mem_calloc(n, size)
                                                : calloc(n, size);
}

static inline void *atr_mem_realloc(const atr_host_t *host, void *p,
                                    size_t size) {
  return host && ATR_HOST_HAS(host, mem_realloc) ? host->mem_realloc(p, size)
                                                 : realloc(p, size);
}

static inline void atr_mem_free(const atr_host_t *host, void *p) {
  if (host && ATR_HOST_HAS(host, mem_free))
    host->mem_free(p);
  else
    free(p);
}

/* A copy of s (NULL for NULL) in the host's memory. */
static inline char *atr_mem_strdup(const atr_host_t *host, const char *s) {
  if (s == NULL)
    return NULL;
  size_t n = strlen(s) + 1;
  char *copy = (char *)atr_mem_alloc(host, n);
  if (copy != NULL)
    memcpy(copy, s, n);
  return copy;
}

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_HOST_H */
