/* tests/plugins/test_observer_prometheus.c — what Prometheus sees.
 *
 * Each test loads the real observer_prometheus.so from the build's plugin
 * directory through the core loader (open, configure from YAML, start) on
 * 127.0.0.1 port 0, reads the port it got from its log line, scrapes it
 * over loopback with libcurl and shuts the loader down. Metrics are
 * registered the two ways the core and plugins do: atr_metrics_register
 * (the core) and host->metric_register with a plugin's handle.
 *
 * `promtool check metrics` (Debian package prometheus) judges one full
 * scrape; without promtool that test is skipped with a message. The real
 * Prometheus server scraping the real `atrium server` is
 * tests/plugins/prometheus_scrape.sh.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"

#define PLUGIN "observer_prometheus"
#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define SERVING "serving metrics on http://127.0.0.1:"

static FILE *log_stream;
static char *log_buf;
static size_t log_len;

/* ---- harness */

typedef struct fx {
  atr_loader_t loader;
  atr_conf_node_t *conf;
  atr_handle_t *h;
  int port;
} fx_t;

typedef struct resp {
  long status;
  char *body;
  size_t len;
  char *content_type;
  char allow[64];
} resp_t;

static const char *no_env(const char *name) {
  (void)name;
  return NULL;
}

/* The port of the newest "serving metrics on" line in the log. */
static int logged_port(void) {
  assert_int_equal(fflush(log_stream), 0);
  const char *last = NULL;
  for (const char *p = log_buf; p && (p = strstr(p, SERVING)) != NULL; p++)
    last = p;
  if (last == NULL)
    fail_msg("no \"%s\" line in the log:\n%s", SERVING, log_buf);
  return atoi(last + strlen(SERVING));
}

/* Open, configure and start the plugin with `options` (YAML lines under its
 * section, indented by four spaces; listen_address defaults to port 0).
 * 0, or the failing step's code with its message in *err. */
static int fx_try(fx_t *f, const char *options, char **err) {
  memset(f, 0, sizeof *f);
  const char *dirs[] = {ATR_TEST_PLUGIN_DIR};
  assert_int_equal(atr_loader_init(&f->loader, dirs, 1, err), 0);
  int rc = atr_loader_open(&f->loader, PLUGIN, NULL, &f->h, err);
  if (rc != 0)
    fail_msg("open: %s", *err);
  char *text = NULL;
  assert_true(
      asprintf(&text, "plugins:\n  " PLUGIN ":\n    enabled: true\n%s",
               options ? options : "    listen_address: 127.0.0.1:0\n") >= 0);
  rc = atr_conf_parse("test.yaml", text, strlen(text), &f->conf, err);
  free(text);
  if (rc != 0)
    fail_msg("yaml: %s", *err);
  rc = atr_loader_configure(f->h, f->conf, NULL, no_env, err);
  if (rc == 0)
    rc = atr_loader_start(f->h, err);
  if (rc == 0)
    f->port = logged_port();
  return rc;
}

static void fx_start(fx_t *f, const char *options) {
  char *err = NULL;
  if (fx_try(f, options, &err) != 0)
    fail_msg("start: %s", err);
}

static void fx_stop(fx_t *f) {
  atr_loader_shutdown(&f->loader);
  atr_conf_free(f->conf);
  atr_metrics_reset();
}

static size_t on_body(char *data, size_t size, size_t n, void *ud) {
  resp_t *r = ud;
  char *grown = realloc(r->body, r->len + size * n + 1);
  if (grown == NULL)
    return 0;
  r->body = grown;
  memcpy(r->body + r->len, data, size * n);
  r->len += size * n;
  r->body[r->len] = '\0';
  return size * n;
}

static size_t on_header(char *data, size_t size, size_t n, void *ud) {
  resp_t *r = ud;
  size_t len = size * n;
  if (len > 7 && strncasecmp(data, "Allow: ", 7) == 0)
    snprintf(r->allow, sizeof r->allow, "%.*s", (int)(len - 9), data + 7);
  return len;
}

/* METHOD path on the plugin's port; status 0 when nothing answered. */
static resp_t request(int port, const char *method, const char *path) {
  resp_t r = {0};
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
  CURL *c = curl_easy_init();
  assert_non_null(c);
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
  if (strcmp(method, "HEAD") == 0)
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
  }
  if (curl_easy_perform(c) == CURLE_OK) {
    char *ct = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    r.content_type = ct ? strdup(ct) : NULL;
  }
  curl_easy_cleanup(c);
  return r;
}

static void resp_free(resp_t *r) {
  free(r->body);
  free(r->content_type);
  memset(r, 0, sizeof *r);
}

/* GET the metrics; fails the test unless it is a 200 in format 0.0.4. */
static char *scrape(const fx_t *f) {
  resp_t r = request(f->port, "GET", "/metrics");
  if (r.status != 200)
    fail_msg("GET /metrics: status %ld", r.status);
  assert_non_null(r.content_type);
  assert_string_equal(r.content_type, CONTENT_TYPE);
  assert_non_null(r.body);
  char *body = r.body;
  r.body = NULL;
  resp_free(&r);
  return body;
}

/* True when `line` is one whole line of `text`. */
static bool has_line(const char *text, const char *line) {
  size_t n = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
    if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
      return true;
  return false;
}

static void expect_line(const char *text, const char *line) {
  if (!has_line(text, line))
    fail_msg("the scrape lacks the line\n  %s\nin:\n%s", line, text);
}

static int count_lines(const char *text, const char *line) {
  int n = 0;
  size_t len = strlen(line);
  for (const char *p = text; (p = strstr(p, line)) != NULL; p += len)
    if ((p == text || p[-1] == '\n') && (p[len] == '\n' || p[len] == '\0'))
      n++;
  return n;
}

/* The value of the unlabelled or fully-labelled `series` ("name{...}"). */
static double value_of(const char *text, const char *series) {
  size_t n = strlen(series);
  for (const char *p = text; (p = strstr(p, series)) != NULL; p++)
    if ((p == text || p[-1] == '\n') && p[n] == ' ')
      return strtod(p + n + 1, NULL);
  fail_msg("the scrape has no series %s:\n%s", series, text);
  return 0;
}

/* ---- tests */

/* A labelled counter, a gauge and a histogram registered by the core, and a
 * counter registered by a plugin through the host table, each appear with
 * HELP, TYPE and their exact values. */
static void test_registered_metrics_appear_with_values(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  static const char *const req_labels[] = {"method", "code", NULL};
  static const char *const route_labels[] = {"route", NULL};
  static const double buckets[] = {0.1, 1};
  atr_metric_t *req = NULL, *depth = NULL, *dur = NULL, *hooks = NULL;
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_COUNTER,
                                        "atrium_test_requests_total",
                                        "Requests, by method and code.",
                                        req_labels, NULL, 0, &req),
                   0);
  assert_int_equal(
      atr_metrics_register("core", ATR_METRIC_GAUGE, "atrium_test_queue_depth",
                           "Items waiting.", NULL, NULL, 0, &depth),
      0);
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_HISTOGRAM,
                                        "atrium_test_duration_seconds",
                                        "Time per route.", route_labels,
                                        buckets, 2, &dur),
                   0);
  atr_handle_t fixture = {.name = "fixture_plugin", .state = ATR_PLUGIN_LOADED};
  const atr_host_t *host = atr_host_table();
  assert_int_equal(
      host->metric_register(&fixture, ATR_METRIC_COUNTER, "fixture_hooks_total",
                            "Hooks the fixture ran.", NULL, NULL, 0, &hooks),
      0);
  const char *get200[] = {"GET", "200"}, *post500[] = {"POST", "500"};
  atr_metric_add(req, get200, 3);
  atr_metric_add(req, post500, 1);
  atr_metric_set(depth, NULL, 7.5);
  const char *route[] = {"/api/v2/users"};
  /* Binary fractions, so the sum is exact. */
  atr_metric_observe(dur, route, 0.0625);
  atr_metric_observe(dur, route, 0.5);
  atr_metric_observe(dur, route, 4);
  host->metric_add(hooks, NULL, 2);

  char *body = scrape(&f);
  expect_line(body, "# HELP atrium_test_requests_total Requests, by method "
                    "and code.");
  expect_line(body, "# TYPE atrium_test_requests_total counter");
  expect_line(body,
              "atrium_test_requests_total{method=\"GET\",code=\"200\"} 3");
  expect_line(body,
              "atrium_test_requests_total{method=\"POST\",code=\"500\"} 1");
  expect_line(body, "# TYPE atrium_test_queue_depth gauge");
  expect_line(body, "atrium_test_queue_depth 7.5");
  expect_line(body, "# HELP atrium_test_duration_seconds Time per route.");
  expect_line(body, "# TYPE atrium_test_duration_seconds histogram");
  static const char want[] =
      "atrium_test_duration_seconds_bucket{route=\"/api/v2/users\",le=\"0.1\"} "
      "1\n"
      "atrium_test_duration_seconds_bucket{route=\"/api/v2/users\",le=\"1\"} "
      "2\n"
      "atrium_test_duration_seconds_bucket{route=\"/api/v2/"
      "users\",le=\"+Inf\"} 3\n"
      "atrium_test_duration_seconds_sum{route=\"/api/v2/users\"} 4.5625\n"
      "atrium_test_duration_seconds_count{route=\"/api/v2/users\"} 3\n";
  const char *hist = strstr(body, "atrium_test_duration_seconds_bucket");
  assert_non_null(hist);
  assert_memory_equal(hist, want, sizeof want - 1);
  expect_line(body, "# HELP fixture_hooks_total Hooks the fixture ran.");
  expect_line(body, "# TYPE fixture_hooks_total counter");
  expect_line(body, "fixture_hooks_total 2");
  free(body);

  /* A later scrape sees later values. */
  atr_metric_add(req, get200, 1);
  body = scrape(&f);
  expect_line(body,
              "atrium_test_requests_total{method=\"GET\",code=\"200\"} 4");
  free(body);
  fx_stop(&f);
}

/* A family without labels that nothing has touched yet is written as 0 (so
 * rate() works from the first scrape); a labelled one has HELP and TYPE
 * and no series until a label set is used. */
static void test_untouched_families_are_zero_or_empty(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  static const char *const labels[] = {"state", NULL};
  static const double buckets[] = {0.01};
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_COUNTER,
                                        "atrium_test_reaped_total", "Reaped.",
                                        NULL, NULL, 0, NULL),
                   0);
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_HISTOGRAM,
                                        "atrium_test_query_seconds", "Query.",
                                        NULL, buckets, 1, NULL),
                   0);
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_GAUGE,
                                        "atrium_test_jobs", "Jobs.", labels,
                                        NULL, 0, NULL),
                   0);
  char *body = scrape(&f);
  expect_line(body, "atrium_test_reaped_total 0");
  expect_line(body, "atrium_test_query_seconds_bucket{le=\"0.01\"} 0");
  expect_line(body, "atrium_test_query_seconds_bucket{le=\"+Inf\"} 0");
  expect_line(body, "atrium_test_query_seconds_sum 0");
  expect_line(body, "atrium_test_query_seconds_count 0");
  expect_line(body, "# TYPE atrium_test_jobs gauge");
  assert_null(strstr(body, "atrium_test_jobs{"));
  free(body);
  fx_stop(&f);
}

/* Label values and help texts are escaped as the text format requires. */
static void test_label_values_and_help_are_escaped(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  static const char *const labels[] = {"route", NULL};
  atr_metric_t *m = NULL;
  assert_int_equal(
      atr_metrics_register("core", ATR_METRIC_COUNTER, "atrium_test_odd_total",
                           "Help with a \\ backslash\nand a second line.",
                           labels, NULL, 0, &m),
      0);
  const char *odd[] = {"a\"b\\c\nd"};
  atr_metric_add(m, odd, 1);
  char *body = scrape(&f);
  expect_line(body, "# HELP atrium_test_odd_total Help with a \\\\ backslash"
                    "\\nand a second line.");
  expect_line(body, "atrium_test_odd_total{route=\"a\\\"b\\\\c\\nd\"} 1");
  free(body);
  fx_stop(&f);
}

/* process_* come from /proc/self of this very process. */
static void test_process_metrics_describe_this_process(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *body = scrape(&f);
  expect_line(body, "# TYPE process_cpu_seconds_total counter");
  expect_line(body, "# TYPE process_resident_memory_bytes gauge");
  expect_line(body, "# TYPE process_open_fds gauge");
  expect_line(body, "# TYPE process_max_fds gauge");
  expect_line(body, "# TYPE process_start_time_seconds gauge");
  expect_line(body, "# TYPE process_virtual_memory_bytes gauge");
  double rss = value_of(body, "process_resident_memory_bytes");
  assert_true(rss > 1024 * 1024 && rss < 4.0 * 1024 * 1024 * 1024);
  assert_true(value_of(body, "process_virtual_memory_bytes") >= rss);
  assert_true(value_of(body, "process_cpu_seconds_total") >= 0);
  struct rlimit rl;
  assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
  assert_true(value_of(body, "process_max_fds") == (double)rl.rlim_cur);
  double fds = value_of(body, "process_open_fds");
  assert_true(fds >= 3 && fds <= (double)rl.rlim_cur);
  /* One more open descriptor shows up in the next scrape. */
  FILE *extra = fopen("/dev/null", "r");
  assert_non_null(extra);
  char *again = scrape(&f);
  fclose(extra);
  assert_true(value_of(again, "process_open_fds") >= fds + 1);
  double start = value_of(body, "process_start_time_seconds");
  double now = (double)time(NULL);
  assert_true(start <= now + 1 && start > now - 3600);
  free(again);
  free(body);
  fx_stop(&f);
}

static void visit_plugin(void *ud, const atr_plugin_info_t *p) {
  FILE *out = ud;
  fprintf(out, "%s %s %s %s\n", p->name, p->kind, p->version, p->state);
}

/* atrium_plugin_info lists the running plugins with kind and version, and
 * only those; host->plugins_each shows every state. */
static void test_plugin_info_lists_running_plugins(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = NULL;
  atr_handle_t *echo = NULL;
  int rc = atr_loader_open(&f.loader, "provisioner_echo", NULL, &echo, &err);
  if (rc != 0)
    fail_msg("open provisioner_echo: %s", err);
  assert_int_equal(atr_loader_configure(echo, f.conf, NULL, no_env, &err), 0);

  char *listed = NULL;
  size_t listed_len = 0;
  FILE *out = open_memstream(&listed, &listed_len);
  atr_host_table()->plugins_each(f.h, visit_plugin, out);
  fclose(out);
  assert_string_equal(listed, "observer_prometheus observer 1.0.0 running\n"
                              "provisioner_echo provisioner 1.0.0 loaded\n");
  free(listed);

  char *body = scrape(&f);
  expect_line(body, "# HELP atrium_plugin_info Always 1 for each running "
                    "plugin; labels carry its kind and version.");
  expect_line(body, "# TYPE atrium_plugin_info gauge");
  expect_line(body, "atrium_plugin_info{name=\"observer_prometheus\","
                    "kind=\"observer\",version=\"1.0.0\"} 1");
  assert_null(strstr(body, "name=\"provisioner_echo\""));
  free(body);

  if (atr_loader_start(echo, &err) != 0)
    fail_msg("start provisioner_echo: %s", err);
  body = scrape(&f);
  expect_line(body, "atrium_plugin_info{name=\"provisioner_echo\","
                    "kind=\"provisioner\",version=\"1.0.0\"} 1");
  /* What the plugin registered in its init() is there too. */
  expect_line(body, "# TYPE atrium_echo_requests_total counter");
  free(body);
  fx_stop(&f);
}

/* When the registry already has a family of a name the plugin would write
 * itself, that family is written once, from the registry. */
static void test_registry_families_win_over_own(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_metric_t *m = NULL;
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_GAUGE,
                                        "process_open_fds", "From the core.",
                                        NULL, NULL, 0, &m),
                   0);
  atr_metric_set(m, NULL, 42);
  char *body = scrape(&f);
  assert_int_equal(count_lines(body, "# TYPE process_open_fds gauge"), 1);
  expect_line(body, "# HELP process_open_fds From the core.");
  expect_line(body, "process_open_fds 42");
  free(body);
  fx_stop(&f);
}

/* HEAD answers the headers only; other paths are 404 and other methods 405
 * with Allow; a custom path moves the endpoint. */
static void test_only_get_and_head_on_the_path(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, "    listen_address: 127.0.0.1:0\n    path: /prom\n");
  resp_t r = request(f.port, "GET", "/prom");
  assert_int_equal(r.status, 200);
  assert_string_equal(r.content_type, CONTENT_TYPE);
  assert_non_null(strstr(r.body, "# TYPE process_open_fds gauge\n"));
  resp_free(&r);

  r = request(f.port, "HEAD", "/prom");
  assert_int_equal(r.status, 200);
  assert_string_equal(r.content_type, CONTENT_TYPE);
  assert_null(r.body);
  resp_free(&r);

  r = request(f.port, "GET", "/metrics");
  assert_int_equal(r.status, 404);
  assert_string_equal(r.body, "Not found: the metrics are at /prom\n");
  resp_free(&r);

  r = request(f.port, "POST", "/prom");
  assert_int_equal(r.status, 405);
  assert_string_equal(r.allow, "GET, HEAD");
  assert_string_equal(r.body, "Method POST is not allowed on /prom\n");
  resp_free(&r);
  fx_stop(&f);
}

static bool find_promtool(char *out, size_t size) {
  const char *path = getenv("PATH");
  char *copy = strdup(path ? path : "/usr/bin:/bin");
  char *save = NULL;
  bool found = false;
  for (char *d = strtok_r(copy, ":", &save); d && !found;
       d = strtok_r(NULL, ":", &save)) {
    snprintf(out, size, "%s/promtool", d);
    found = access(out, X_OK) == 0;
  }
  free(copy);
  return found;
}

/* `promtool check metrics` finds nothing wrong with a full scrape that has
 * labelled counters, histograms, the plugin list and the process metrics. */
static void test_promtool_accepts_a_scrape(void **state) {
  (void)state;
  char promtool[512];
  if (!find_promtool(promtool, sizeof promtool)) {
    print_message("SKIP: promtool is not installed (Debian package "
                  "prometheus); the exposition was not checked by it\n");
    skip();
  }
  fx_t f;
  fx_start(&f, NULL);
  static const char *const labels[] = {"method", "route", "code", NULL};
  static const char *const dur_labels[] = {"method", "route", NULL};
  atr_metric_t *req = NULL, *dur = NULL;
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_COUNTER,
                                        "atrium_api_requests_total",
                                        "API requests.", labels, NULL, 0, &req),
                   0);
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_HISTOGRAM,
                                        "atrium_api_request_duration_seconds",
                                        "API latency.", dur_labels, NULL, 0,
                                        &dur),
                   0);
  const char *v[] = {"GET", "/api/v2/users/{user}", "200"};
  atr_metric_add(req, v, 5);
  atr_metric_observe(dur, v, 0.003);
  char *body = scrape(&f);
  char dir[] = "/tmp/atrium-promtool-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char file[300], report[300], *cmd = NULL;
  snprintf(file, sizeof file, "%s/scrape.txt", dir);
  snprintf(report, sizeof report, "%s/report.txt", dir);
  FILE *fp = fopen(file, "w");
  assert_non_null(fp);
  fputs(body, fp);
  fclose(fp);
  assert_true(asprintf(&cmd, "'%s' check metrics < '%s' > '%s' 2>&1", promtool,
                       file, report) >= 0);
  int status = system(cmd);
  free(cmd);
  char text[4096] = "";
  fp = fopen(report, "r");
  if (fp != NULL) {
    text[fread(text, 1, sizeof text - 1, fp)] = '\0';
    fclose(fp);
  }
  unlink(file);
  unlink(report);
  rmdir(dir);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    fail_msg("promtool check metrics failed (status %d):\n%s\non:\n%s", status,
             text, body);
  free(body);
  fx_stop(&f);
}

typedef struct scraper {
  int port;
  int ok;
} scraper_t;

static void *scrape_loop(void *ud) {
  scraper_t *s = ud;
  double last = -1;
  for (int i = 0; i < 25; i++) {
    resp_t r = request(s->port, "GET", "/metrics");
    const char *line =
        r.body ? strstr(r.body, "\natrium_test_ticks_total ") : NULL;
    double v =
        line ? strtod(line + strlen("\natrium_test_ticks_total "), NULL) : -1;
    if (r.status == 200 && v >= last && r.body[r.len - 1] == '\n') {
      s->ok++;
      last = v;
    }
    resp_free(&r);
  }
  return NULL;
}

/* Scrapes on several connections at once, while a counter climbs, each
 * get a whole answer with a value that never goes down. */
static void test_concurrent_scrapes_while_updating(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  atr_metric_t *ticks = NULL;
  assert_int_equal(atr_metrics_register("core", ATR_METRIC_COUNTER,
                                        "atrium_test_ticks_total", "Ticks.",
                                        NULL, NULL, 0, &ticks),
                   0);
  pthread_t t[4];
  scraper_t s[4];
  for (int i = 0; i < 4; i++) {
    s[i] = (scraper_t){.port = f.port};
    assert_int_equal(pthread_create(&t[i], NULL, scrape_loop, &s[i]), 0);
  }
  for (int i = 0; i < 20000; i++)
    atr_metric_add(ticks, NULL, 1);
  for (int i = 0; i < 4; i++) {
    pthread_join(t[i], NULL);
    assert_int_equal(s[i].ok, 25);
  }
  char *body = scrape(&f);
  expect_line(body, "atrium_test_ticks_total 20000");
  free(body);
  fx_stop(&f);
}

/* After shutdown nothing listens on the port any more. */
static void test_shutdown_closes_the_listener(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  int port = f.port;
  resp_t r = request(port, "GET", "/metrics");
  assert_int_equal(r.status, 200);
  resp_free(&r);
  fx_stop(&f);
  r = request(port, "GET", "/metrics");
  assert_int_equal(r.status, 0);
  resp_free(&r);
}

/* A listener that cannot bind fails init() with the address, the reason
 * and what to do; nothing of the plugin stays registered. */
static void test_a_taken_port_fails_init(void **state) {
  (void)state;
  int sock = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(sock >= 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  assert_int_equal(bind(sock, (struct sockaddr *)&sa, sizeof sa), 0);
  assert_int_equal(listen(sock, 1), 0);
  assert_int_equal(getsockname(sock, (struct sockaddr *)&sa, &len), 0);
  int port = ntohs(sa.sin_port);
  char options[128], prefix[256];
  snprintf(options, sizeof options, "    listen_address: 127.0.0.1:%d\n", port);
  snprintf(prefix, sizeof prefix,
           "plugin observer_prometheus: init failed: "
           "plugins.observer_prometheus.listen_address: cannot listen on "
           "127.0.0.1:%d: ",
           port);
  fx_t f;
  char *err = NULL;
  assert_int_equal(fx_try(&f, options, &err), ATR_EIO);
  assert_non_null(err);
  if (strncmp(err, prefix, strlen(prefix)) != 0)
    fail_msg("unexpected message: %s", err);
  const char *tail = "; free the port or choose another address";
  assert_string_equal(err + strlen(err) - strlen(tail), tail);
  assert_int_equal(f.h->state, ATR_PLUGIN_FAILED);
  free(err);
  close(sock);
  fx_stop(&f);
}

/* Option values that cannot work are refused with the option's name. */
static void test_bad_options_are_refused(void **state) {
  (void)state;
  static const struct {
    const char *yaml, *message;
  } cases[] = {
      {"    path: metrics\n",
       "plugin observer_prometheus: init failed: "
       "plugins.observer_prometheus.path: \"metrics\" is not a URL path; use "
       "one that starts with / such as /metrics"},
      {"    listen_address: \"127.0.0.1:1,127.0.0.1:2\"\n",
       "plugin observer_prometheus: init failed: "
       "plugins.observer_prometheus.listen_address: \"127.0.0.1:1,127.0.0.1:2\""
       " is not one host:port; use one address such as 127.0.0.1:2112"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    fx_t f;
    char *err = NULL;
    assert_int_equal(fx_try(&f, cases[i].yaml, &err), ATR_ECONFIG);
    assert_string_equal(err, cases[i].message);
    free(err);
    fx_stop(&f);
  }
}

int main(void) {
  log_stream = open_memstream(&log_buf, &log_len);
  if (log_stream == NULL)
    return 1;
  atr_log_set_level(ATR_LOG_DEBUG);
  atr_log_set_stream(log_stream);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_registered_metrics_appear_with_values),
      cmocka_unit_test(test_untouched_families_are_zero_or_empty),
      cmocka_unit_test(test_label_values_and_help_are_escaped),
      cmocka_unit_test(test_process_metrics_describe_this_process),
      cmocka_unit_test(test_plugin_info_lists_running_plugins),
      cmocka_unit_test(test_registry_families_win_over_own),
      cmocka_unit_test(test_only_get_and_head_on_the_path),
      cmocka_unit_test(test_promtool_accepts_a_scrape),
      cmocka_unit_test(test_concurrent_scrapes_while_updating),
      cmocka_unit_test(test_shutdown_closes_the_listener),
      cmocka_unit_test(test_a_taken_port_fails_init),
      cmocka_unit_test(test_bad_options_are_refused),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  atr_log_set_stream(NULL);
  fclose(log_stream);
  free(log_buf);
  return failed;
}
