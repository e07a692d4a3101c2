/* tests/integration/test_server.c — the real `atrium server` binary: its
 * three HTTP answers, SIGTERM draining in-flight requests, SIGHUP
 * reloading, --print-config and start-up errors. Servers run on SQLite
 * through the harness; calls go through tests/api/client.h. */
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "client.h"
#include "harness.h"
#include "version.h"

static char *config_text(const char *delay, const char *level,
                         const char *threads) {
  char *text = NULL;
  if (asprintf(&text,
               "data_dir: data\n"
               "plugin_dirs: [%s, %s]\n"
               "log:\n  level: %s\n"
               "http:\n  threads: %s\n"
               "plugins:\n"
               "  storage_sqlite:\n    enabled: true\n"
               "  fixture_slow:\n    enabled: true\n"
               "    delay: %s\n",
               ATR_TEST_FIXTURE_DIR, ATR_TEST_PLUGIN_DIR, level, threads,
               delay) < 0)
    return NULL;
  return text;
}

/* GET path, with one more header line (NULL for none). */
static atr_tc_res_t http_get(const atr_harness_t *h, const char *path,
                             const char *header) {
  const char *headers[] = {header, NULL};
  return atr_tc_call(h->port,
                     &(atr_tc_req_t){.path = path, .headers = headers});
}

static atr_harness_t *start_default(void) {
  atr_harness_t *h = calloc(1, sizeof *h);
  char *cfg = config_text("1s", "info", "4");
  atr_harness_init(h, cfg);
  free(cfg);
  atr_harness_start(h, NULL, NULL);
  return h;
}

static void stop(atr_harness_t *h) {
  atr_harness_cleanup(h);
  free(h);
}

static void healthz_answers_ok(void **state) {
  (void)state;
  atr_harness_t *h = start_default();
  atr_tc_res_t r = http_get(h, "/healthz", NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "OK");
  atr_tc_res_free(&r);
  stop(h);
}

static void readyz_answers_ok_when_the_database_does(void **state) {
  (void)state;
  atr_harness_t *h = start_default();
  atr_tc_res_t r = http_get(h, "/readyz", NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "OK");
  atr_tc_res_free(&r);
  stop(h);
}

static void buildinfo_reports_version_and_commit(void **state) {
  (void)state;
  atr_harness_t *h = start_default();
  atr_tc_res_t r = http_get(h, "/api/v2/buildinfo", NULL);
  assert_int_equal(r.status, 200);
  json_t *j = json_loads(r.body, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "version")),
                      ATR_VERSION);
  assert_string_equal(json_string_value(json_object_get(j, "commit")),
                      ATR_COMMIT);
  json_decref(j);
  atr_tc_res_free(&r);
  stop(h);
}

static void unknown_path_is_404_json(void **state) {
  (void)state;
  atr_harness_t *h = start_default();
  atr_tc_res_t r = http_get(h, "/api/v2/nothing-here", NULL);
  assert_int_equal(r.status, 404);
  json_t *j = json_loads(r.body, 0, NULL);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "message")),
                      "Route not found.");
  assert_string_equal(json_string_value(json_object_get(j, "detail")),
                      "No route for GET /api/v2/nothing-here.");
  json_decref(j);
  atr_tc_res_free(&r);
  stop(h);
}

typedef struct slow_call {
  atr_harness_t *h;
  atr_tc_res_t r;
} slow_call_t;

static void *call_slow(void *arg) {
  slow_call_t *c = arg;
  c->r = http_get(c->h, "/fixture/slow", NULL);
  return NULL;
}

/* GET /healthz until it answers `want`, for up to timeout_ms; the last
 * answer. */
static atr_tc_res_t wait_healthz(const atr_harness_t *h, long want,
                                 int timeout_ms) {
  double until = atr_harness_now_ms() + timeout_ms;
  for (;;) {
    atr_tc_res_t r = http_get(h, "/healthz", NULL);
    if (r.status == want || atr_harness_now_ms() > until)
      return r;
    atr_tc_res_free(&r);
    atr_harness_sleep_ms(10);
  }
}

static void sigterm_finishes_in_flight_request_and_exits_0(void **state) {
  (void)state;
  atr_harness_t *h = start_default();
  slow_call_t call = {.h = h};
  pthread_t t;
  pthread_create(&t, NULL, call_slow, &call);
  /* the request is inside the handler (1 s) when SIGTERM arrives */
  assert_true(atr_harness_wait_log(h, "slow request began", 5000));
  double sent = atr_harness_now_ms();
  kill(h->pid, SIGTERM);
  /* while it drains, new requests are turned away, not left hanging */
  atr_tc_res_t late = wait_healthz(h, 503, 900);
  assert_int_equal(late.status, 503);
  assert_non_null(
      strstr(late.body, "\"message\":\"Server is shutting down.\""));
  atr_tc_res_free(&late);
  int status = atr_harness_wait(h, 5000);
  double took = atr_harness_now_ms() - sent;
  pthread_join(t, NULL);
  assert_int_equal(status, 0);
  assert_true(took < 5000);
  assert_int_equal(call.r.status, 200);
  assert_string_equal(call.r.body, "slept 1000 ms");
  assert_true(atr_harness_wait_log(
      h, "SIGTERM: finishing 1 in-flight request(s), then exiting", 0));
  atr_tc_res_free(&call.r);
  stop(h);
}

static void sighup_applies_reloadable_options_and_logs_them(void **state) {
  (void)state;
  atr_harness_t *h = start_default();
  char *cfg = config_text("100ms", "debug", "8");
  atr_harness_write_config(h, cfg);
  free(cfg);
  kill(h->pid, SIGHUP);
  assert_true(atr_harness_wait_log(
      h, "option log.level changed from info to debug", 5000));
  assert_true(atr_harness_wait_log(
      h, "option http.threads changed in the config but needs a restart",
      1000));
  assert_true(atr_harness_wait_log(
      h, "plugin fixture_slow: option delay changed from 1s to 100ms", 1000));
  atr_tc_res_t r = http_get(h, "/fixture/slow", NULL);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "slept 100 ms");
  atr_tc_res_free(&r);
  kill(h->pid, SIGTERM);
  assert_int_equal(atr_harness_wait(h, 5000), 0);
  stop(h);
}

/* Not on a terminal, with log.format auto (the default), every line is a
 * JSON object a collector can read. */
static void log_is_json_lines_when_not_a_terminal(void **state) {
  (void)state;
  atr_harness_t *h = calloc(1, sizeof *h);
  char *cfg = config_text("1s", "info", "4");
  atr_harness_init(h, cfg);
  atr_harness_start(h, NULL,
                    (const char *const[]){"ATRIUM_LOG_FORMAT=auto", NULL});
  atr_tc_res_t r = http_get(h, "/api/v2/buildinfo", NULL);
  atr_tc_res_free(&r);
  assert_true(atr_harness_wait_log(h, "/api/v2/buildinfo 200", 5000));
  char *log = atr_harness_read_log(h);
  assert_non_null(log);
  size_t lines = 0;
  for (char *save = NULL, *line = strtok_r(log, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    json_error_t e;
    json_t *o = json_loads(line, 0, &e);
    if (!o)
      fail_msg("not a JSON line: %s", line);
    assert_non_null(json_string_value(json_object_get(o, "time")));
    assert_non_null(json_string_value(json_object_get(o, "level")));
    assert_non_null(json_string_value(json_object_get(o, "component")));
    assert_non_null(json_string_value(json_object_get(o, "msg")));
    json_decref(o);
    lines++;
  }
  assert_true(lines >= 3);
  free(log);
  kill(h->pid, SIGTERM);
  assert_int_equal(atr_harness_wait(h, 5000), 0);
  free(cfg);
  stop(h);
}

static void sighup_with_broken_config_keeps_running_values(void **state) {
  (void)state;
  atr_harness_t *h = start_default();
  atr_harness_write_config(h, "log:\n  level: loud\n");
  kill(h->pid, SIGHUP);
  assert_true(atr_harness_wait_log(
      h, "reload failed, keeping the running configuration", 5000));
  assert_true(atr_harness_wait_log(h, "log.level: \"loud\" is not allowed", 0));
  atr_tc_res_t r = http_get(h, "/healthz", NULL);
  assert_int_equal(r.status, 200);
  atr_tc_res_free(&r);
  stop(h);
}

static void print_config_redacts_secrets_and_names_sources(void **state) {
  (void)state;
  atr_harness_t h;
  char *cfg = config_text("2s", "info", "4");
  atr_harness_init(&h, cfg);
  free(cfg);
  const char *args[] = {"server",
                        "--config",
                        h.config,
                        "--print-config",
                        "--http.address=127.0.0.1:4999",
                        NULL};
  const char *env[] = {"ATRIUM_PLUGINS_FIXTURE_SLOW_TOKEN=hunter2-secret",
                       "ATRIUM_LOG_LEVEL=warn", NULL};
  char *out = NULL;
  assert_int_equal(atr_run_cli(args, env, &out), 0);
  assert_null(strstr(out, "hunter2"));
  assert_non_null(strstr(out, "token: (redacted)"));
  assert_non_null(strstr(out, "address: 127.0.0.1:4999"));
  assert_non_null(strstr(out, "flag --http.address"));
  assert_non_null(strstr(out, "level: warn"));
  assert_non_null(strstr(out, "environment ATRIUM_LOG_LEVEL"));
  assert_non_null(strstr(out, "delay: 2s"));
  free(out);
  atr_harness_cleanup(&h);
}

static void bad_config_value_names_file_line_and_column(void **state) {
  (void)state;
  atr_harness_t h;
  atr_harness_init(&h, "http:\n  threads: lots\n");
  const char *args[] = {"server", "--config", h.config, NULL};
  char *out = NULL;
  assert_int_equal(atr_run_cli(args, NULL, &out), 1);
  char want[512];
  snprintf(want, sizeof want,
           "%s:2:12: http.threads: \"lots\" is not an integer", h.config);
  assert_non_null(strstr(out, want));
  free(out);
  atr_harness_cleanup(&h);
}

static void unknown_flag_is_refused(void **state) {
  (void)state;
  atr_harness_t h;
  atr_harness_init(&h, "plugin_dirs: []\nplugins: {}\n");
  const char *args[] = {"server", "--config", h.config, "--htp.address=x",
                        NULL};
  char *out = NULL;
  assert_int_equal(atr_run_cli(args, NULL, &out), 1);
  assert_non_null(strstr(out, "flag --htp.address: unknown option"));
  free(out);
  atr_harness_cleanup(&h);
}

static void oversized_headers_get_431(void **state) {
  (void)state;
  atr_harness_t *h = start_default();
  char *big = malloc(10001);
  memset(big, 'a', 10000);
  big[10000] = '\0';
  char *header = NULL;
  assert_true(asprintf(&header, "X-Big: %s", big) > 0);
  atr_tc_res_t r = http_get(h, "/healthz", header);
  assert_int_equal(r.status, 431);
  assert_non_null(strstr(r.body, "Request header fields too large."));
  atr_tc_res_free(&r);
  free(header);
  free(big);
  stop(h);
}

static void a_body_over_the_limit_gets_413(void **state) {
  (void)state;
  atr_harness_t h;
  char *cfg = config_text("1s", "info", "4");
  atr_harness_init(&h, cfg);
  free(cfg);
  const char *extra[] = {"--http.max_body_size=1KiB", NULL};
  atr_harness_start(&h, extra, NULL);
  char body[2048];
  memset(body, ' ', sizeof body);
  body[0] = '{';
  body[sizeof body - 1] = '}';
  atr_tc_res_t r =
      atr_tc_call(h.port, &(atr_tc_req_t){.method = "POST",
                                          .path = "/api/v2/users/login",
                                          .raw = body,
                                          .raw_len = sizeof body,
                                          .content_type = "application/json"});
  assert_int_equal(r.status, 413);
  assert_non_null(strstr(r.body, "Request body too large."));
  atr_tc_res_free(&r);
  atr_harness_cleanup(&h);
}

static void a_server_without_storage_refuses_to_start(void **state) {
  (void)state;
  atr_harness_t h;
  atr_harness_init(&h, "plugins: {}\n");
  const char *args[] = {"server", "--config", h.config, NULL};
  char *out = NULL;
  assert_int_equal(atr_run_cli(args, NULL, &out), 1);
  assert_non_null(strstr(out, "cannot start: no storage plugin is enabled"));
  free(out);
  atr_harness_cleanup(&h);
}

static void address_in_use_is_a_clear_error(void **state) {
  (void)state;
  atr_harness_t *a = start_default();
  atr_harness_t b;
  char *cfg = config_text("1s", "info", "4");
  atr_harness_init(&b, cfg);
  free(cfg);
  char addr[64];
  snprintf(addr, sizeof addr, "--http.address=127.0.0.1:%d", a->port);
  const char *args[] = {"server", "--config", b.config, addr, NULL};
  char *out = NULL;
  assert_int_equal(atr_run_cli(args, NULL, &out), 1);
  char want[128];
  snprintf(want, sizeof want, "http.address: cannot listen on 127.0.0.1:%d",
           a->port);
  assert_non_null(strstr(out, want));
  free(out);
  atr_harness_cleanup(&b);
  stop(a);
}

int main(void) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(healthz_answers_ok),
      cmocka_unit_test(readyz_answers_ok_when_the_database_does),
      cmocka_unit_test(buildinfo_reports_version_and_commit),
      cmocka_unit_test(unknown_path_is_404_json),
      cmocka_unit_test(sigterm_finishes_in_flight_request_and_exits_0),
      cmocka_unit_test(sighup_applies_reloadable_options_and_logs_them),
      cmocka_unit_test(sighup_with_broken_config_keeps_running_values),
      cmocka_unit_test(log_is_json_lines_when_not_a_terminal),
      cmocka_unit_test(print_config_redacts_secrets_and_names_sources),
      cmocka_unit_test(bad_config_value_names_file_line_and_column),
      cmocka_unit_test(unknown_flag_is_refused),
      cmocka_unit_test(oversized_headers_get_431),
      cmocka_unit_test(a_body_over_the_limit_gets_413),
      cmocka_unit_test(a_server_without_storage_refuses_to_start),
      cmocka_unit_test(address_in_use_is_a_clear_error),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  curl_global_cleanup();
  return failed;
}
