/* core/api_debug.c — the owners' debug routes; see api_debug.h. */
#include "api_debug.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "atrium/error.h"
#include "health.h"
#include "log.h"
#include "metrics.h"

#define LOG_LINES_MAX 1000 /* what atr_log_recent keeps */

static int no_app(atr_api_req_t *r) {
  return atr_api_error(r, 501, "Not available in this deployment.",
                       "The server was started without its configuration.");
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int atr_api_debug_health(atr_api_req_t *r) {
  const atr_app_t *app = r->env->app;
  if (!app)
    return no_app(r);
  char *url = atr_app_access_url(app);
  atr_health_config_t cfg = {.store = r->env->dom.store,
                             .loader = r->env->dom.loader,
                             .access_url = url,
                             .builtin_daemons = app->core.prov_daemons};
  int worst = ATR_HEALTH_HEALTHY;
  json_t *checks = atr_health_checks(&cfg, &worst);
  free(url);
  return atr_api_json(
      r, 200,
      json_pack("{s:o, s:s, s:o}", "time", atr_time_json(now_us()), "status",
                atr_health_status_name(worst), "checks", checks));
}

int atr_api_debug_config(atr_api_req_t *r) {
  if (!r->env->app)
    return no_app(r);
  return atr_api_json(r, 200, atr_app_config_json(r->env->app));
}

int atr_api_debug_plugins(atr_api_req_t *r) {
  return atr_api_json(r, 200,
                      json_pack("{s:o}", "plugins",
                                atr_loader_plugins_json(r->env->dom.loader)));
}

/* ---- logs ------------------------------------------------------------------- */

static void add_line(void *ud, const char *line) {
  size_t n = strlen(line);
  while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
    n--;
  json_array_append_new(ud, json_stringn(line, n));
}

int atr_api_debug_logs(atr_api_req_t *r) {
  int64_t limit = 0, offset = 0;
  if (atr_api_list_window(r, LOG_LINES_MAX, &limit, &offset) != 0)
    return 0;
  json_t *all = json_array();
  atr_log_recent(add_line, all);
  /* The newest `limit` lines after skipping the `offset` newest, oldest
   * first. */
  size_t n = json_array_size(all);
  size_t end = (uint64_t)offset >= n ? 0 : n - (size_t)offset;
  size_t begin = (uint64_t)limit >= end ? 0 : end - (size_t)limit;
  json_t *lines = json_array();
  for (size_t i = begin; i < end; i++)
    json_array_append(lines, json_array_get(all, i));
  json_decref(all);
  return atr_api_json(r, 200,
                      json_pack("{s:o, s:I, s:s}", "lines", lines, "count",
                                (json_int_t)n, "level",
                                atr_log_level_name(atr_log_get_level())));
}

/* ---- metrics ---------------------------------------------------------------- */

/* JSON numbers are finite; NaN and infinities go as Prometheus spells
 * them. */
static json_t *number(double v) {
  if (isnan(v))
    return json_string("NaN");
  if (isinf(v))
    return json_string(v > 0 ? "+Inf" : "-Inf");
  return json_real(v);
}

static const char *type_name(atr_metric_type_t t) {
  switch (t) {
  case ATR_METRIC_COUNTER:
    return "counter";
  case ATR_METRIC_GAUGE:
    return "gauge";
  case ATR_METRIC_HISTOGRAM:
    return "histogram";
  }
  return "unknown";
}

static json_t *sample_json(const atr_metric_family_t *f,
                           const atr_metric_sample_t *s) {
  json_t *labels = json_object();
  for (size_t i = 0; i < f->nlabels; i++)
    json_object_set_new(labels, f->label_names[i],
                        json_string(s->label_values[i]));
  if (f->type != ATR_METRIC_HISTOGRAM)
    return json_pack("{s:o, s:o}", "labels", labels, "value", number(s->value));
  json_t *buckets = json_array();
  for (size_t i = 0; i < f->nbuckets; i++)
    json_array_append_new(buckets,
                          json_pack("{s:o, s:I}", "le", number(f->buckets[i]),
                                    "count", (json_int_t)s->bucket_counts[i]));
  return json_pack("{s:o, s:I, s:o, s:o}", "labels", labels, "count",
                   (json_int_t)s->count, "sum", number(s->sum), "buckets",
                   buckets);
}

static void add_family(void *ud, const atr_metric_family_t *f,
                       const atr_metric_sample_t *samples, size_t n) {
  json_t *list = json_array();
  for (size_t i = 0; i < n; i++)
    json_array_append_new(list, sample_json(f, &samples[i]));
  json_array_append_new(
      ud, json_pack("{s:s, s:s, s:s, s:s, s:o}", "name", f->name, "type",
                    type_name(f->type), "help", f->help ? f->help : "", "owner",
                    f->owner ? f->owner : "", "samples", list));
}

int atr_api_debug_metrics(atr_api_req_t *r) {
  json_t *families = json_array();
  atr_metrics_collect(add_family, families);
  return atr_api_json(r, 200,
                      json_pack("{s:o, s:o}", "time", atr_time_json(now_us()),
                                "metrics", families));
}
