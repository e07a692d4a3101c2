/* observer_prometheus/exposition.c — the Prometheus text format 0.0.4.
 *
 * Families come from host->metrics_collect() already sorted by name. Each
 * gets its "# HELP" and "# TYPE" lines, then one line per series (a
 * histogram: cumulative _bucket lines ending in le="+Inf", then _sum and
 * _count). A family without labels that has never been touched is written
 * with zeros, so a rate() over it works from the first scrape on instead of
 * the series appearing only after the first event.
 *
 * The visitor runs under the registry's lock: it only appends to the
 * scrape's own buffer and never calls back into the host.
 */
#include "internal.h"

#include <string.h>

/* The families this plugin writes itself, unless the registry has them. */
static const char *const own_names[] = {
    "atrium_plugin_info",
    "process_cpu_seconds_total",
    "process_max_fds",
    "process_open_fds",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_virtual_memory_bytes",
};
#define NOWN (sizeof(own_names) / sizeof(own_names[0]))

typedef struct render {
  op_buf_t *out;
  bool taken[NOWN]; /* the registry has a family of that name */
} render_t;

/* The text format escapes only these; everything else is written as is. */
static void put_escaped(op_buf_t *out, const char *s, bool quote) {
  const char *run = s;
  for (; *s; s++) {
    const char *rep = NULL;
    if (*s == '\\')
      rep = "\\\\";
    else if (*s == '\n')
      rep = "\\n";
    else if (quote && *s == '"')
      rep = "\\\"";
    if (rep == NULL)
      continue;
    op_buf_put(out, run, (size_t)(s - run));
    op_buf_puts(out, rep);
    run = s + 1;
  }
  op_buf_put(out, run, (size_t)(s - run));
}

void op_write_header(op_buf_t *out, const char *name, const char *help,
                     const char *type) {
  op_buf_printf(out, "# HELP %s ", name);
  put_escaped(out, help ? help : "", false);
  op_buf_printf(out, "\n# TYPE %s %s\n", name, type);
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
  return "untyped";
}

/* name{a="x",b="y"[,le="..."]} — the braces only when there is a label. */
static void put_series(op_buf_t *out, const char *name, const char *suffix,
                       const atr_metric_family_t *f, const char *const *values,
                       const char *le) {
  op_buf_puts(out, name);
  op_buf_puts(out, suffix);
  if (f->nlabels == 0 && le == NULL)
    return;
  op_buf_puts(out, "{");
  for (size_t i = 0; i < f->nlabels; i++) {
    op_buf_printf(out, "%s%s=\"", i ? "," : "", f->label_names[i]);
    put_escaped(out, values ? values[i] : "", true);
    op_buf_puts(out, "\"");
  }
  if (le != NULL)
    op_buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
  op_buf_puts(out, "}");
}

static void put_value(op_buf_t *out, double v) {
  char num[32];
  op_format_double(v, num);
  op_buf_printf(out, " %s\n", num);
}

static void put_histogram(op_buf_t *out, const atr_metric_family_t *f,
                          const atr_metric_sample_t *s) {
  char le[32];
  for (size_t i = 0; i < f->nbuckets; i++) {
    op_format_double(f->buckets[i], le);
    put_series(out, f->name, "_bucket", f, s->label_values, le);
    put_value(out, s->bucket_counts ? (double)s->bucket_counts[i] : 0);
  }
  put_series(out, f->name, "_bucket", f, s->label_values, "+Inf");
  put_value(out, (double)s->count);
  put_series(out, f->name, "_sum", f, s->label_values, NULL);
  put_value(out, s->sum);
  put_series(out, f->name, "_count", f, s->label_values, NULL);
  put_value(out, (double)s->count);
}

static void put_family(op_buf_t *out, const atr_metric_family_t *f,
                       const atr_metric_sample_t *samples, size_t n) {
  static const atr_metric_sample_t zero = {.struct_size = sizeof(zero)};
  op_write_header(out, f->name, f->help, type_name(f->type));
  if (n == 0 && f->nlabels == 0) {
    samples = &zero;
    n = 1;
  }
  for (size_t i = 0; i < n; i++) {
    /* By the host's stride: a newer host may have grown the sample. */
    const atr_metric_sample_t *s = atr_metric_sample_at(samples, i);
    if (f->type == ATR_METRIC_HISTOGRAM) {
      put_histogram(out, f, s);
    } else {
      put_series(out, f->name, "", f, s->label_values, NULL);
      put_value(out, s->value);
    }
  }
}

static void visit_family(void *ud, const atr_metric_family_t *f,
                         const atr_metric_sample_t *samples, size_t n) {
  render_t *r = ud;
  for (size_t i = 0; i < NOWN; i++)
    if (strcmp(f->name, own_names[i]) == 0)
      r->taken[i] = true;
  put_family(r->out, f, samples, n);
}

static bool taken(void *ud, const char *name) {
  const render_t *r = ud;
  for (size_t i = 0; i < NOWN; i++)
    if (strcmp(name, own_names[i]) == 0)
      return r->taken[i];
  return false;
}

static void visit_plugin(void *ud, const atr_plugin_info_t *p) {
  op_buf_t *out = ud;
  static const char *const labels[] = {"name", "kind", "version"};
  static const atr_metric_family_t fam = {.type = ATR_METRIC_GAUGE,
                                          .name = "atrium_plugin_info",
                                          .label_names = labels,
                                          .nlabels = 3};
  if (strcmp(p->state, "running") != 0)
    return;
  const char *values[] = {p->name, p->kind, p->version};
  put_series(out, fam.name, "", &fam, values, NULL);
  put_value(out, 1);
}

void op_render(const op_ctx_t *c, op_buf_t *out) {
  render_t r = {.out = out};
  c->host->metrics_collect(visit_family, &r);
  if (!taken(&r, "atrium_plugin_info") && ATR_HOST_HAS(c->host, plugins_each)) {
    op_write_header(out, "atrium_plugin_info",
                    "Always 1 for each running plugin; labels carry its "
                    "kind and version.",
                    "gauge");
    c->host->plugins_each(c->h, visit_plugin, out);
  }
  op_process_render(out, taken, &r);
}
