/* core/plugin/host.c — the function table handed to every plugin (atr_host_t).
 *
 * One static table for all plugins: each call carries the plugin's handle,
 * which gives the log component, the options to read, and the owner of the
 * routes and metrics it registers (so a failed init() can be rolled back).
 * Registration is allowed only while init() runs (state LOADED), because the
 * route table and the registry are read without the plugin's help later.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "host_http.h"
#include "host_jobs.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "plugin_opts.h"
#include "routes.h"

static const char *component(const atr_handle_t *h) {
  return (h != NULL && h->name != NULL) ? h->name : "plugin";
}

static void host_logv(atr_handle_t *h, atr_log_level_t level, const char *fmt,
                      va_list ap) {
  atr_logv(level, component(h), fmt, ap);
}

ATR_PRINTF(3, 4)
static void host_log(atr_handle_t *h, atr_log_level_t level, const char *fmt,
                     ...) {
  va_list ap;
  va_start(ap, fmt);
  atr_logv(level, component(h), fmt, ap);
  va_end(ap);
}

static int option_get_string(atr_handle_t *h, const char *name,
                             const char **out) {
  atr_optval_t val;
  int rc = atr__plugin_option(h, name, &val);
  if (rc != 0)
    return rc;
  atr_option_type_t t = val.opt->type;
  if (t != ATR_OPT_STRING && t != ATR_OPT_ENUM && t != ATR_OPT_SECRET)
    return ATR_EINVAL;
  if (val.v.s == NULL)
    return ATR_ENOENT;
  *out = val.v.s;
  return 0;
}

static int option_get_int(atr_handle_t *h, const char *name, int64_t *out) {
  atr_optval_t val;
  int rc = atr__plugin_option(h, name, &val);
  if (rc != 0)
    return rc;
  switch (val.opt->type) {
  case ATR_OPT_INT:
  case ATR_OPT_DURATION:
    *out = val.v.i;
    return 0;
  case ATR_OPT_SIZE:
    if (val.v.u > (uint64_t)INT64_MAX)
      return ATR_ERANGE;
    *out = (int64_t)val.v.u;
    return 0;
  default:
    return ATR_EINVAL;
  }
}

static int option_get_bool(atr_handle_t *h, const char *name, int *out) {
  atr_optval_t val;
  int rc = atr__plugin_option(h, name, &val);
  if (rc != 0)
    return rc;
  if (val.opt->type != ATR_OPT_BOOL)
    return ATR_EINVAL;
  *out = val.v.b ? 1 : 0;
  return 0;
}

static int option_get_double(atr_handle_t *h, const char *name, double *out) {
  atr_optval_t val;
  int rc = atr__plugin_option(h, name, &val);
  if (rc != 0)
    return rc;
  if (val.opt->type != ATR_OPT_DOUBLE)
    return ATR_EINVAL;
  *out = val.v.d;
  return 0;
}

static int64_t clock_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t clock_monotonic_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Registrations outside init() would escape the rollback that a failed
 * init() relies on, and race with readers that expect a fixed table. */
static bool in_init(atr_handle_t *h, const char *what) {
  if (h != NULL && h->state == ATR_PLUGIN_LOADED)
    return true;
  atr_log(ATR_LOG_WARN, component(h),
          "%s refused: it may only be called from init() (plugin is %s)", what,
          h ? atr_plugin_state_name(h->state) : "unknown");
  return false;
}

static int route_add(atr_handle_t *h, const char *method, const char *path,
                     atr_route_fn fn, void *user_data) {
  if (!in_init(h, "route_add"))
    return ATR_EPERM;
  return atr_routes_add(h->name, method, path, fn, user_data);
}

static int metric_register(atr_handle_t *h, atr_metric_type_t type,
                           const char *name, const char *help,
                           const char *const *label_names,
                           const double *buckets, size_t nbuckets,
                           atr_metric_t **out) {
  if (!in_init(h, "metric_register"))
    return ATR_EPERM;
  return atr_metrics_register(h->name, type, name, help, label_names, buckets,
                              nbuckets, out);
}

/* Set once by the app before any plugin starts; read-only afterwards. */
static char *data_dir_path;

void atr_host_set_data_dir(const char *path) {
  char *copy = path ? strdup(path) : NULL;
  free(data_dir_path);
  data_dir_path = copy;
}

static const char *host_data_dir(atr_handle_t *h) {
  (void)h;
  return data_dir_path ? data_dir_path : ".";
}

static void plugins_each(atr_handle_t *h, atr_plugin_visit_fn visit,
                         void *user_data) {
  if (h != NULL)
    atr_loader_each(h->loader, visit, user_data);
}

/* Set by core/jobs before the daemons start; read by plugin threads. */
static _Atomic(atr_host_job_spawn_fn) job_spawn_impl;

void atr_host_set_job_spawn(atr_host_job_spawn_fn fn) {
  job_spawn_impl = fn;
}

static int job_spawn(atr_handle_t *h, struct atr_prov_job *job,
                     const atr_spawn_t *spec, int *pid) {
  atr_host_job_spawn_fn fn = job_spawn_impl;
  if (fn == NULL) /* a tool that loads plugins but runs no jobs itself */
    return ATR_ENOTSUP;
  if (job == NULL || spec == NULL || pid == NULL) {
    atr_log(ATR_LOG_WARN, component(h), "job_spawn refused: a NULL argument");
    return ATR_EINVAL;
  }
  return fn(job, spec, pid);
}

static const atr_host_t host_table = {
    .struct_size = sizeof(atr_host_t),
    .abi_major = ATR_ABI_MAJOR,
    .abi_minor = ATR_ABI_MINOR,
    .log = host_log,
    .logv = host_logv,
    .option_get_string = option_get_string,
    .option_get_int = option_get_int,
    .option_get_bool = option_get_bool,
    .option_get_double = option_get_double,
    .clock_now_ms = clock_now_ms,
    .clock_monotonic_ns = clock_monotonic_ns,
    .route_add = route_add,
    .http_respond = atr__host_http_respond,
    .http_header = atr__host_http_header,
    .metric_register = metric_register,
    .metric_add = atr_metric_add,
    .metric_set = atr_metric_set,
    .metric_observe = atr_metric_observe,
    .metrics_collect = atr_metrics_collect,
    .data_dir = host_data_dir,
    .plugins_each = plugins_each,
    /* The C library's allocator: what the core releases plugin results
     * with (atr_host_free and friends), so both ends agree. */
    .mem_alloc = malloc,
    .mem_calloc = calloc,
    .mem_realloc = realloc,
    .mem_free = free,
    .job_spawn = job_spawn,
};

const atr_host_t *atr_host_table(void) {
  return &host_table;
}
