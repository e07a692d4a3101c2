/* tests/abi/test_metrics.c — the metric registry as observers and plugins
 * see it: what collect() shows after counters, gauges and histograms are
 * used, which names are refused, and rollback by owner. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, vasprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "loader.h"
#include "metrics.h"

/* collect() rendered as text, one line per series, so a test can compare
 * everything an observer would see with one string. */
typedef struct dump {
  char *text;
  size_t len;
  FILE *f;
} dump_t;

static void dump_labels(FILE *f, const atr_metric_family_t *fam,
                        const atr_metric_sample_t *s) {
  fputc('{', f);
  for (size_t i = 0; i < fam->nlabels; i++)
    fprintf(f, "%s%s=%s", i ? "," : "", fam->label_names[i],
            s->label_values[i]);
  fputc('}', f);
}

static void visit(void *ud, const atr_metric_family_t *fam,
                  const atr_metric_sample_t *samples, size_t n) {
  dump_t *d = ud;
  fprintf(d->f, "# %s %d %s (%s)\n", fam->name, (int)fam->type, fam->help,
          fam->owner);
  for (size_t i = 0; i < n; i++) {
    fputs(fam->name, d->f);
    dump_labels(d->f, fam, &samples[i]);
    if (fam->type != ATR_METRIC_HISTOGRAM) {
      fprintf(d->f, " %g\n", samples[i].value);
      continue;
    }
    fprintf(d->f,
            " count=%llu sum=%g buckets=", (unsigned long long)samples[i].count,
            samples[i].sum);
    for (size_t b = 0; b < fam->nbuckets; b++)
      fprintf(d->f, "%s%g:%llu", b ? "," : "", fam->buckets[b],
              (unsigned long long)samples[i].bucket_counts[b]);
    fputc('\n', d->f);
  }
}

static char *collect_text(void) {
  dump_t d = {0};
  d.f = open_memstream(&d.text, &d.len);
  assert_non_null(d.f);
  atr_metrics_collect(visit, &d);
  fclose(d.f);
  return d.text;
}

static void assert_collect(const char *expected) {
  char *got = collect_text();
  assert_string_equal(got, expected);
  free(got);
}

static int teardown(void **state) {
  atr_metrics_reset();
  return 0;
}

static void counters_with_labels_sum_per_series(void **state) {
  atr_metric_t *m = NULL;
  const char *labels[] = {"method", "code", NULL};
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_COUNTER,
                                        "requests_total", "Requests.", labels,
                                        NULL, 0, &m),
                   0);
  const char *get200[] = {"GET", "200"}, *post500[] = {"POST", "500"};
  atr_metric_add(m, get200, 1);
  atr_metric_add(m, post500, 2);
  atr_metric_add(m, get200, 3);
  atr_metric_add(m, get200, -1);  /* counters never go down */
  atr_metric_set(m, get200, 100); /* set is for gauges */
  atr_metric_observe(m, get200, 1);
  atr_metric_add(m, NULL, 1); /* missing label values: dropped */
  assert_collect("# requests_total 1 Requests. (core)\n"
                 "requests_total{method=GET,code=200} 4\n"
                 "requests_total{method=POST,code=500} 2\n");
}

static void gauges_set_and_add(void **state) {
  atr_metric_t *g = NULL;
  assert_int_equal(atr_metrics_register("storage_sqlite", ATR_METRIC_GAUGE,
                                        "pool_open", "Open connections.", NULL,
                                        NULL, 0, &g),
                   0);
  atr_metric_set(g, NULL, 5);
  atr_metric_add(g, NULL, -2);
  assert_collect("# pool_open 2 Open connections. (storage_sqlite)\n"
                 "pool_open{} 3\n");
}

static void histograms_count_cumulative_buckets(void **state) {
  atr_metric_t *h = NULL, *d = NULL;
  const double b[] = {1, 5};
  const char *labels[] = {"op", NULL}, *apply[] = {"apply"};
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_HISTOGRAM,
                                        "job_seconds", "Jobs.", labels, b, 2,
                                        &h),
                   0);
  atr_metric_observe(h, apply, 0.5);
  atr_metric_observe(h, apply, 3);
  atr_metric_observe(h, apply, 7);
  atr_metric_add(h, apply, 1); /* add is not for histograms */
  assert_collect("# job_seconds 3 Jobs. (core)\n"
                 "job_seconds{op=apply} count=3 sum=10.5 buckets=1:1,5:2\n");

  assert_int_equal(atr_metrics_register("core", ATR_METRIC_HISTOGRAM,
                                        "latency_seconds", "Latency.", NULL,
                                        NULL, 0, &d),
                   0);
  atr_metric_observe(d, NULL, 0.2);
  char *got = collect_text();
  assert_non_null(strstr(got, "latency_seconds{} count=1 sum=0.2 buckets="
                              "0.005:0,0.01:0,0.025:0,0.05:0,0.1:0,0.25:1,"
                              "0.5:1,1:1,2.5:1,5:1,10:1\n"));
  free(got);
}

static void collect_sorts_families_by_name(void **state) {
  const char *names[] = {"zeta", "alpha", "mid:dle", "beta"};
  for (size_t i = 0; i < 4; i++)
    assert_int_equal(atr_metrics_register("core", ATR_METRIC_GAUGE, names[i],
                                          NULL, NULL, NULL, 0, NULL),
                     0);
  assert_collect("# alpha 2  (core)\n# beta 2  (core)\n"
                 "# mid:dle 2  (core)\n# zeta 2  (core)\n");
}

static void series_keep_insertion_order(void **state) {
  atr_metric_t *m = NULL;
  const char *labels[] = {"k", NULL};
  const char *c[] = {"c"}, *a[] = {"a"}, *b[] = {"b"};
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_GAUGE, "order", "",
                                        labels, NULL, 0, &m),
                   0);
  atr_metric_set(m, c, 1);
  atr_metric_set(m, a, 2);
  atr_metric_set(m, b, 3);
  atr_metric_set(m, c, 4);
  assert_collect("# order 2  (core)\norder{k=c} 4\norder{k=a} 2\n"
                 "order{k=b} 3\n");
}

static int reg(const char *name, const char *const *labels,
               atr_metric_type_t type) {
  return atr_metrics_register("core", type, name, "", labels, NULL, 0, NULL);
}

static void bad_names_and_labels_are_refused(void **state) {
  const char *dunder[] = {"__name", NULL}, *digit[] = {"1x", NULL};
  const char *dash[] = {"a-b", NULL}, *dup[] = {"a", "a", NULL};
  const char *le[] = {"le", NULL};
  assert_int_equal(reg("", NULL, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg(NULL, NULL, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg("1abc", NULL, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg("a-b", NULL, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg("a b", NULL, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg("ok", dunder, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg("ok", digit, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg("ok", dash, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg("ok", dup, ATR_METRIC_COUNTER), ATR_EINVAL);
  assert_int_equal(reg("ok", le, ATR_METRIC_HISTOGRAM), ATR_EINVAL);
  assert_int_equal(reg("ok", NULL, (atr_metric_type_t)7), ATR_EINVAL);
  const double desc[] = {5, 1};
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_HISTOGRAM, "ok", "",
                                        NULL, desc, 2, NULL),
                   ATR_EINVAL);
  assert_null(atr_metrics_find("ok"));
  /* What is allowed: colons in names, le on non-histograms, _x labels. */
  const char *fine[] = {"le", "_x", "A9", NULL};
  assert_int_equal(reg("ns:sub_total9", fine, ATR_METRIC_COUNTER), 0);
}

static void a_taken_name_is_eexist(void **state) {
  atr_metric_t *first = NULL, *second = (atr_metric_t *)1;
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_COUNTER, "dup", "",
                                        NULL, NULL, 0, &first),
                   0);
  assert_int_equal(atr_metrics_register("plugin_x", ATR_METRIC_GAUGE, "dup", "",
                                        NULL, NULL, 0, &second),
                   ATR_EEXIST);
  assert_null(second);
  assert_ptr_equal(atr_metrics_find("dup"), first);
}

static void remove_owner_drops_only_its_families(void **state) {
  assert_int_equal(atr_metrics_register("auth_x", ATR_METRIC_COUNTER, "a1", "",
                                        NULL, NULL, 0, NULL),
                   0);
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_COUNTER, "b1", "",
                                        NULL, NULL, 0, NULL),
                   0);
  assert_int_equal(atr_metrics_register("auth_x", ATR_METRIC_HISTOGRAM, "c1",
                                        "", NULL, NULL, 0, NULL),
                   0);
  assert_int_equal(atr_metrics_remove_owner("auth_x"), 2);
  assert_int_equal(atr_metrics_remove_owner("auth_x"), 0);
  assert_null(atr_metrics_find("a1"));
  assert_null(atr_metrics_find("c1"));
  assert_non_null(atr_metrics_find("b1"));
  /* The name is free again. */
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_GAUGE, "a1", "",
                                        NULL, NULL, 0, NULL),
                   0);
}

/* Through the host table: a plugin may register only while init() runs. */
static void host_registers_only_during_init(void **state) {
  atr_handle_t h = {.name = "observer_x", .state = ATR_PLUGIN_LOADED};
  const atr_host_t *host = atr_host_table();
  atr_metric_t *m = NULL;
  assert_int_equal(host->metric_register(&h, ATR_METRIC_COUNTER, "x_total",
                                         "X.", NULL, NULL, 0, &m),
                   0);
  host->metric_add(m, NULL, 2);
  h.state = ATR_PLUGIN_RUNNING;
  assert_int_equal(host->metric_register(&h, ATR_METRIC_COUNTER, "y_total",
                                         "Y.", NULL, NULL, 0, &m),
                   ATR_EPERM);
  host->metric_add(atr_metrics_find("x_total"), NULL, 1);
  dump_t d = {0};
  d.f = open_memstream(&d.text, &d.len);
  host->metrics_collect(visit, &d);
  fclose(d.f);
  assert_string_equal(d.text, "# x_total 1 X. (observer_x)\nx_total{} 3\n");
  free(d.text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_teardown(counters_with_labels_sum_per_series, teardown),
      cmocka_unit_test_teardown(gauges_set_and_add, teardown),
      cmocka_unit_test_teardown(histograms_count_cumulative_buckets, teardown),
      cmocka_unit_test_teardown(collect_sorts_families_by_name, teardown),
      cmocka_unit_test_teardown(series_keep_insertion_order, teardown),
      cmocka_unit_test_teardown(bad_names_and_labels_are_refused, teardown),
      cmocka_unit_test_teardown(a_taken_name_is_eexist, teardown),
      cmocka_unit_test_teardown(remove_owner_drops_only_its_families, teardown),
      cmocka_unit_test_teardown(host_registers_only_during_init, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
