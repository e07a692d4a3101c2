/* tests/api/test_api_debug.c — the owners' debug routes through the real
 * `atrium server`: the health report and what turns its checks, the
 * effective configuration with its secrets redacted, the plugin list,
 * recent log lines and the metrics snapshot, and who may read them.
 *
 *   test_api_debug sqlite
 *   test_api_debug postgres PGDIR PGSCRIPT
 *       (PGDIR/dsn: the fixture's libpq DSN; PGSCRIPT:
 *        scripts/dev/postgres.sh, which stops and starts the cluster)
 *
 * Each test starts its own server on an empty database with the echo
 * provisioner. On PostgreSQL one test stops the fixture's cluster under
 * the running server: the owner's health call still answers, the database
 * check unhealthy, and turns healthy once the cluster is back. Its
 * teardown starts the cluster again whatever happened. A test ends with
 * SIGTERM, which must exit 0, and the server's log must hold no
 * remembered secret. */
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "suite.h"

/* Planted in the echo provisioner's secret option. */
#define CANARY "Zebra-Canary-d3b9e0f1"

static const char *pg_script;

typedef struct srv_opts {
  const char *daemons;    /* provisioner.daemons; default 3 */
  const char *access_url; /* default: none (http://<http.address>) */
} srv_opts_t;

/* ---- the server ------------------------------------------------------------ */

static int start(void **state, const srv_opts_t *o) {
  char top[600] = "", plugins[200];
  if (o->access_url)
    snprintf(top, sizeof top, "access_url: \"%s\"\n", o->access_url);
  snprintf(top + strlen(top), sizeof top - strlen(top),
           "provisioner:\n  daemons: %s\n  heartbeat_interval: 300ms\n",
           o->daemons ? o->daemons : "3");
  snprintf(plugins, sizeof plugins,
           "  provisioner_echo:\n    enabled: true\n    token: %s\n", CANARY);
  char *cfg = srv_config_text(&(srv_config_t){
      .threads = 8,
      .top = top,
      .plugins = plugins,
      .storage = "    connect_timeout: 2s\n    acquire_timeout: 2s\n"});
  remember(CANARY);
  int rc = srv_start(state, cfg, NULL);
  free(cfg);
  return rc;
}

static int server_up(void **state) {
  static const srv_opts_t o = {0};
  return start(state, &o);
}

static int server_up_no_daemons(void **state) {
  static const srv_opts_t o = {.daemons = "0"};
  return start(state, &o);
}

/* Nothing listens on port 1. */
static int server_up_wrong_access_url(void **state) {
  static const srv_opts_t o = {.access_url = "http://127.0.0.1:1/"};
  return start(state, &o);
}

static int server_up_bad_access_url(void **state) {
  static const srv_opts_t o = {.access_url = "atrium.example.com"};
  return start(state, &o);
}

/* scripts/dev/postgres.sh stop|start on the fixture's cluster. */
static int pg_ctl(const char *action) {
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "bash '%s' %s '%s' >/dev/null 2>&1", pg_script,
           action, atr_harness_pg_dir());
  int st = system(cmd);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The cluster comes back whatever the test did. */
static int server_down_pg_started(void **state) {
  int rc = pg_ctl("start");
  if (rc != 0)
    print_error("cannot start the PostgreSQL fixture again: status %d\n", rc);
  return srv_stop(state) != 0 || rc != 0 ? -1 : 0;
}

/* A user with a site role (NULL: a plain member), signed in. */
static const char *user_with_role(const srv_t *s, const char *name,
                                  const char *role) {
  char email[128], path[128];
  snprintf(email, sizeof email, "%s@example.com", name);
  remember(MEMBER_PW);
  ASSERT_STATUS(201, call(s, "POST", "/api/v2/users", s->owner_token,
                          json_pack("{s:s, s:s, s:s}", "email", email,
                                    "username", name, "password", MEMBER_PW)));
  if (role) {
    snprintf(path, sizeof path, "/api/v2/users/%s/roles", name);
    ASSERT_STATUS(200, call(s, "PUT", path, s->owner_token,
                            json_pack("{s:[s]}", "roles", role)));
  }
  return login(s, email, MEMBER_PW);
}

/* ---- the health report -------------------------------------------------------- */

static atr_tc_res_t health(const srv_t *s, const char *token) {
  return get(s, "/api/v2/debug/health", token);
}

static const json_t *check(const atr_tc_res_t *r, const char *name) {
  size_t i;
  const json_t *c;
  json_array_foreach(json_object_get(r->json, "checks"), i, c) {
    if (strcmp(jstr(c, "name"), name) == 0)
      return c;
  }
  print_error("no check %s in %s\n", name, r->body);
  fail();
  return NULL;
}

static int status_rank(const char *status) {
  if (strcmp(status, "healthy") == 0)
    return 0;
  if (strcmp(status, "degraded") == 0)
    return 1;
  if (strcmp(status, "unhealthy") == 0)
    return 2;
  fail_msg("\"%s\" is not a health status", status);
  return -1;
}

/* The shape every report has: time, a status that is the worst of the
 * checks, and checks with a name, a status and a message. */
static void assert_report_shape(const atr_tc_res_t *r) {
  ASSERT_ANSWER(*r, 200);
  assert_non_null(json_string_value(json_object_get(r->json, "time")));
  const json_t *checks = json_object_get(r->json, "checks");
  assert_true(json_array_size(checks) >= 4);
  int worst = 0;
  size_t i;
  const json_t *c;
  json_array_foreach(checks, i, c) {
    assert_non_null(json_string_value(json_object_get(c, "name")));
    assert_non_null(json_string_value(json_object_get(c, "message")));
    assert_true(strlen(jstr(c, "message")) > 0);
    int rank = status_rank(jstr(c, "status"));
    worst = rank > worst ? rank : worst;
  }
  assert_int_equal(status_rank(jstr(r->json, "status")), worst);
}

/* Whether a health report shows what a test waits for. */
typedef bool (*report_test_t)(const atr_tc_res_t *r, const void *arg);

/* The health report once ok(report, arg) holds, polled every 100 ms; after
 * timeout_ms the last report, having printed what it waited for. */
static atr_tc_res_t wait_report(const srv_t *s, report_test_t ok,
                                const void *arg, const char *what,
                                int timeout_ms) {
  double until = atr_harness_now_ms() + timeout_ms;
  for (;;) {
    atr_tc_res_t r = health(s, s->owner_token);
    if (r.status == 200 && ok(&r, arg))
      return r;
    if (atr_harness_now_ms() > until) {
      print_error("not %s after %d ms: %s\n", what, timeout_ms, r.body);
      return r;
    }
    atr_tc_res_free(&r);
    atr_harness_sleep_ms(100);
  }
}

typedef struct check_is {
  const char *name, *status;
} check_is_t;

static bool check_has_status(const atr_tc_res_t *r, const void *arg) {
  const check_is_t *c = arg;
  return strcmp(jstr(check(r, c->name), "status"), c->status) == 0;
}

/* The health report once `name`'s status is want (or timeout_ms). */
static atr_tc_res_t wait_check(const srv_t *s, const char *name,
                               const char *want, int timeout_ms) {
  char what[128];
  snprintf(what, sizeof what, "check %s %s", name, want);
  return wait_report(s, check_has_status, &(check_is_t){name, want}, what,
                     timeout_ms);
}

/* Every one of the built-in daemons has checked in: one check-in makes the
 * check healthy, so the count, not the status, is what to wait for. */
static bool daemons_counted(const atr_tc_res_t *r, const void *arg) {
  const json_t *pd = check(r, "provisioner_daemons");
  return strcmp(jstr(pd, "status"), "healthy") == 0 &&
         json_integer_value(json_object_get(pd, "count")) == *(const int *)arg;
}

/* last_seen_at of the daemons is later than arg. */
static bool daemons_seen_after(const atr_tc_res_t *r, const void *arg) {
  const char *at = jstr(check(r, "provisioner_daemons"), "last_seen_at");
  return strcmp(at, arg) > 0;
}

/* The storage plugin's, auth_password's and access_url's checks. */
static void assert_plugin_and_url_checks(const srv_t *s, const atr_tc_res_t *r,
                                         const char *storage) {
  /* the storage plugins have a health callback, the others do not */
  const json_t *st = check(r, storage);
  assert_string_equal(jstr(st, "kind"), "storage");
  assert_true(status_rank(jstr(st, "status")) <= 1);
  assert_contains(jstr(st, "message"), atr_harness_on_postgres()
                                           ? "pooled connections"
                                           : "free on its filesystem");
  const json_t *pw = check(r, "plugin:auth_password");
  assert_string_equal(jstr(pw, "status"), "healthy");
  assert_string_equal(jstr(pw, "message"),
                      "Running; the plugin has no health check of its own.");
  assert_string_equal(jstr(pw, "plugin"), "auth_password");

  const json_t *au = check(r, "access_url");
  assert_string_equal(jstr(au, "status"), "healthy");
  assert_int_equal(json_integer_value(json_object_get(au, "status_code")), 200);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", s->h.port);
  assert_string_equal(jstr(au, "url"), url);
}

static void the_health_report_names_every_check(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  /* the daemons register once the first user made the organization */
  static const int three = 3;
  atr_tc_res_t r = wait_report(s, daemons_counted, &three,
                               "3 provisioner daemons counted", 10000);
  assert_report_shape(&r);
  const char *storage = atr_harness_on_postgres() ? "plugin:storage_postgres"
                                                  : "plugin:storage_sqlite";
  const char *const order[] = {
      "database",  "database_integrity",   "provisioner_daemons",
      storage,     "plugin:auth_password", "plugin:provisioner_echo",
      "access_url"};
  const json_t *checks = json_object_get(r.json, "checks");
  assert_int_equal(json_array_size(checks), 7);
  for (size_t i = 0; i < 7; i++)
    assert_string_equal(jstr(json_array_get(checks, i), "name"), order[i]);

  const json_t *db = check(&r, "database");
  assert_true(json_is_number(json_object_get(db, "latency_ms")));
  assert_true(json_number_value(json_object_get(db, "threshold_ms")) == 10.0);
  assert_string_equal(jstr(db, "storage"), atr_harness_on_postgres()
                                               ? "storage_postgres"
                                               : "storage_sqlite");
  /* fast or slow, it answered */
  assert_true(status_rank(jstr(db, "status")) <= 1);
  assert_contains(jstr(db, "message"), "A round trip took");

  const json_t *pd = check(&r, "provisioner_daemons");
  assert_int_equal(json_integer_value(json_object_get(pd, "count")), 3);
  assert_int_equal(json_integer_value(json_object_get(pd, "built_in_daemons")),
                   3);
  assert_non_null(json_string_value(json_object_get(pd, "last_seen_at")));
  assert_string_equal(json_string_value(json_array_get(
                          json_object_get(pd, "provisioner_types"), 0)),
                      "echo");
  assert_contains(jstr(pd, "message"), "3 provisioner daemons seen");
  assert_plugin_and_url_checks(s, &r, storage);
  atr_tc_res_free(&r);

  /* /healthz stays the cheap liveness answer */
  atr_tc_res_t hz = atr_tc_call(s->h.port, &(atr_tc_req_t){.path = "/healthz"});
  assert_int_equal(hz.status, 200);
  assert_string_equal(hz.body, "OK");
  atr_tc_res_free(&hz);
}

static void daemons_keep_being_seen(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  atr_tc_res_t r = wait_check(s, "provisioner_daemons", "healthy", 10000);
  const char *first = jstr(check(&r, "provisioner_daemons"), "last_seen_at");
  char seen[64];
  snprintf(seen, sizeof seen, "%s", first);
  atr_tc_res_free(&r);
  /* the keeper touches last_seen_at every heartbeat interval (300 ms) */
  r = wait_report(s, daemons_seen_after, seen, "daemons seen again", 5000);
  ASSERT_ANSWER(r, 200);
  const char *later = jstr(check(&r, "provisioner_daemons"), "last_seen_at");
  if (strcmp(later, seen) <= 0)
    print_error("last_seen_at did not move: %s then %s\n", seen, later);
  assert_true(strcmp(later, seen) > 0);
  atr_tc_res_free(&r);
}

static void without_daemons_the_deployment_is_degraded(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  atr_tc_res_t r = wait_check(s, "provisioner_daemons", "degraded", 5000);
  assert_report_shape(&r);
  const json_t *pd = check(&r, "provisioner_daemons");
  assert_string_equal(jstr(pd, "status"), "degraded");
  assert_int_equal(json_integer_value(json_object_get(pd, "count")), 0);
  assert_true(json_is_null(json_object_get(pd, "last_seen_at")));
  assert_int_equal(json_integer_value(json_object_get(pd, "built_in_daemons")),
                   0);
  assert_contains(jstr(pd, "message"), "provisioner.daemons is 0");
  assert_contains(jstr(pd, "message"), "External daemons are not supported");
  assert_string_equal(jstr(r.json, "status"), "degraded");
  atr_tc_res_free(&r);
}

static void an_access_url_that_does_not_answer_is_unhealthy(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  atr_tc_res_t r = health(s, s->owner_token);
  assert_report_shape(&r);
  const json_t *au = check(&r, "access_url");
  assert_string_equal(jstr(au, "status"), "unhealthy");
  assert_string_equal(jstr(au, "url"), "http://127.0.0.1:1");
  assert_true(json_is_null(json_object_get(au, "status_code")));
  assert_contains(jstr(au, "message"), "GET http://127.0.0.1:1/healthz failed");
  assert_string_equal(jstr(r.json, "status"), "unhealthy");
  atr_tc_res_free(&r);
}

static void an_access_url_without_scheme_is_unhealthy(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  atr_tc_res_t r = health(s, s->owner_token);
  assert_report_shape(&r);
  const json_t *au = check(&r, "access_url");
  assert_string_equal(jstr(au, "status"), "unhealthy");
  assert_contains(jstr(au, "message"),
                  "access_url \"atrium.example.com\" is not an http:// or "
                  "https:// URL");
  atr_tc_res_free(&r);
}

/* ---- who may read ---------------------------------------------------------- */

static const char *const debug_paths[] = {
    "/api/v2/debug/health", "/api/v2/debug/config", "/api/v2/debug/plugins",
    "/api/v2/debug/logs", "/api/v2/debug/metrics"};

static void only_owners_read_the_debug_routes(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  const char *member = user_with_role(s, "member", NULL);
  const char *auditor = user_with_role(s, "auditor", "auditor");
  const char *uadmin = user_with_role(s, "uadmin", "user-admin");
  for (size_t i = 0; i < 5; i++) {
    atr_tc_res_t r = get(s, debug_paths[i], NULL);
    ASSERT_ANSWER(r, 401);
    atr_tc_res_free(&r);
    const char *refused[] = {member, auditor, uadmin};
    for (size_t k = 0; k < 3; k++) {
      r = get(s, debug_paths[i], refused[k]);
      ASSERT_ANSWER(r, 403);
      assert_string_equal(jstr(r.json, "message"), "Forbidden.");
      assert_string_equal(jstr(r.json, "detail"),
                          "Your roles do not allow read on deployment_config.");
      atr_tc_res_free(&r);
    }
    ASSERT_STATUS(200, get(s, debug_paths[i], s->owner_token));
    ASSERT_STATUS(405, call(s, "POST", debug_paths[i], s->owner_token, NULL));
  }
}

/* ---- config, plugins, logs, metrics ------------------------------------------- */

static const json_t *option(const json_t *options, const char *name) {
  const json_t *o = json_object_get(options, name);
  if (!o)
    fail_msg("no option %s", name);
  return o;
}

static void the_configuration_is_redacted_and_says_where_from(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  atr_tc_res_t r = get(s, "/api/v2/debug/config", s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(find_secret(r.body), -1); /* the canary, the DSN */
  const char *dsn = atr_harness_pg_dsn();
  assert_null(strstr(r.body, dsn[0] ? dsn : "\x01"));
  assert_string_equal(jstr(r.json, "config_file"), s->h.config);
  const json_t *core = json_object_get(r.json, "core");
  const json_t *addr = option(core, "http.address");
  assert_string_equal(jstr(addr, "source"), "flag --http.address");
  const json_t *level = option(core, "log.level");
  assert_string_equal(jstr(level, "value"), "debug");
  assert_contains(jstr(level, "source"), s->h.config);
  assert_string_equal(jstr(option(core, "access_url"), "source"), "default");
  assert_int_equal(json_integer_value(
                       json_object_get(option(core, "http.threads"), "value")),
                   8);

  const json_t *plugins = json_object_get(r.json, "plugins");
  const json_t *echo = json_object_get(plugins, "provisioner_echo");
  assert_true(json_is_true(json_object_get(echo, "enabled")));
  assert_contains(jstr(echo, "file"), "provisioner_echo.so");
  const json_t *token = option(json_object_get(echo, "options"), "token");
  assert_string_equal(jstr(token, "value"), "(redacted)");
  assert_contains(jstr(token, "source"), s->h.config);
  assert_string_equal(
      jstr(option(json_object_get(echo, "options"), "greeting"), "source"),
      "default");
  if (atr_harness_on_postgres()) {
    const json_t *pg = json_object_get(plugins, "storage_postgres");
    assert_string_equal(
        jstr(option(json_object_get(pg, "options"), "dsn"), "value"),
        "(redacted)");
  }
  atr_tc_res_free(&r);
}

/* The three plugins, in load order, the echo one in detail. */
static void plugins_are_listed(const srv_t *s) {
  atr_tc_res_t r = get(s, "/api/v2/debug/plugins", s->owner_token);
  ASSERT_ANSWER(r, 200);
  const json_t *list = json_object_get(r.json, "plugins");
  assert_int_equal(json_array_size(list), 3);
  const json_t *echo = json_array_get(list, 2);
  assert_string_equal(jstr(echo, "name"), "provisioner_echo");
  assert_string_equal(jstr(echo, "kind"), "provisioner");
  assert_string_equal(jstr(echo, "version"), "1.0.0");
  assert_string_equal(jstr(echo, "state"), "running");
  assert_contains(jstr(echo, "file"), "/provisioner_echo.so");
  assert_true(json_is_null(json_object_get(echo, "error")));
  assert_true(json_is_false(json_object_get(echo, "health_check")));
  assert_true(
      json_is_true(json_object_get(json_array_get(list, 0), "health_check")));
  atr_tc_res_free(&r);
}

/* The newest log lines, a bad limit refused. */
static void logs_are_listed(const srv_t *s) {
  atr_tc_res_t r;
  /* the newest lines, oldest first; this server logs each request (its
   * access line is written just after the answer is sent, so the line of
   * the request before may still be on its way: look a few times) */
  bool seen = false;
  for (int i = 0; i < 40 && !seen; i++) {
    r = get(s, "/api/v2/debug/logs?limit=3", s->owner_token);
    ASSERT_ANSWER(r, 200);
    const json_t *lines = json_object_get(r.json, "lines");
    assert_int_equal(json_array_size(lines), 3);
    assert_true(json_integer_value(json_object_get(r.json, "count")) > 3);
    assert_string_equal(jstr(r.json, "level"), "debug");
    for (size_t k = 0; k < 3; k++) {
      const char *line = json_string_value(json_array_get(lines, k));
      assert_null(strchr(line, '\n'));
      if (strstr(line, "GET /api/v2/debug/plugins 200"))
        seen = true;
    }
    atr_tc_res_free(&r);
    if (!seen)
      atr_harness_sleep_ms(50);
  }
  assert_true(seen);
  r = get(s, "/api/v2/debug/logs", s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_contains(r.body, "[provisioner_echo] ready: greeting");
  assert_int_equal(find_secret(r.body), -1);
  atr_tc_res_free(&r);
  r = get(s, "/api/v2/debug/logs?limit=ten", s->owner_token);
  ASSERT_ANSWER(r, 400);
  assert_string_equal(
      jstr(json_array_get(json_object_get(r.json, "validations"), 0), "field"),
      "limit");
  atr_tc_res_free(&r);
}

/* The metrics snapshot: build info and a histogram. */
static void metrics_are_listed(const srv_t *s) {
  atr_tc_res_t r = get(s, "/api/v2/debug/metrics", s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_non_null(json_string_value(json_object_get(r.json, "time")));
  size_t i;
  const json_t *f, *info = NULL, *hist = NULL;
  json_array_foreach(json_object_get(r.json, "metrics"), i, f) {
    if (strcmp(jstr(f, "name"), "atrium_build_info") == 0)
      info = f;
    if (strcmp(jstr(f, "type"), "histogram") == 0 && !hist)
      hist = f;
  }
  assert_non_null(info);
  assert_string_equal(jstr(info, "type"), "gauge");
  assert_string_equal(jstr(info, "owner"), "core");
  const json_t *sample = json_array_get(json_object_get(info, "samples"), 0);
  assert_true(json_number_value(json_object_get(sample, "value")) == 1.0);
  assert_non_null(json_string_value(
      json_object_get(json_object_get(sample, "labels"), "version")));
  assert_non_null(hist);
  const json_t *hs = json_array_get(json_object_get(hist, "samples"), 0);
  if (hs) {
    assert_true(json_is_integer(json_object_get(hs, "count")));
    assert_true(json_array_size(json_object_get(hs, "buckets")) > 0);
  }
  atr_tc_res_free(&r);
}

static void plugins_logs_and_metrics_are_listed(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  plugins_are_listed(s);
  logs_are_listed(s);
  metrics_are_listed(s);
}

/* ---- the database goes away (PostgreSQL) -------------------------------------- */

static void while_postgres_is_down_the_owner_sees_it(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  const char *member = user_with_role(s, "member", NULL);
  atr_tc_res_t r = wait_check(s, "database", "healthy", 10000);
  assert_string_equal(jstr(check(&r, "database"), "status"), "healthy");
  atr_tc_res_free(&r);

  assert_int_equal(pg_ctl("stop"), 0);
  r = health(s, s->owner_token);
  assert_report_shape(&r); /* 200, not 503 */
  const json_t *db = check(&r, "database");
  assert_string_equal(jstr(db, "status"), "unhealthy");
  assert_contains(jstr(db, "message"), "The database does not answer:");
  assert_true(json_is_null(json_object_get(db, "latency_ms")));
  assert_string_equal(jstr(check(&r, "provisioner_daemons"), "status"),
                      "unhealthy");
  assert_string_equal(jstr(check(&r, "plugin:storage_postgres"), "status"),
                      "unhealthy");
  assert_string_equal(jstr(check(&r, "access_url"), "status"), "healthy");
  assert_string_equal(jstr(r.json, "status"), "unhealthy");
  assert_int_equal(find_secret(r.body), -1);
  atr_tc_res_free(&r);
  /* the rest of the debug routes need no database either */
  for (size_t i = 1; i < 5; i++)
    ASSERT_STATUS(200, get(s, debug_paths[i], s->owner_token));
  /* only the debug routes take the remembered owner key */
  ASSERT_STATUS(503, get(s, "/api/v2/users/me", s->owner_token));
  /* a member was never remembered; a key never seen cannot be checked */
  ASSERT_STATUS(503, health(s, member));
  ASSERT_STATUS(503, health(s, "AAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAA"));
  ASSERT_STATUS(401, health(s, NULL));

  assert_int_equal(pg_ctl("start"), 0);
  r = wait_check(s, "database", "healthy", 30000);
  assert_report_shape(&r);
  assert_string_equal(jstr(check(&r, "database"), "status"), "healthy");
  atr_tc_res_free(&r);
  r = wait_check(s, "provisioner_daemons", "healthy", 10000);
  assert_string_equal(jstr(check(&r, "plugin:storage_postgres"), "status"),
                      "healthy");
  /* nothing is unhealthy any more (a slow round trip would be degraded) */
  assert_true(status_rank(jstr(r.json, "status")) <= 1);
  atr_tc_res_free(&r);
  ASSERT_STATUS(200, get(s, "/api/v2/users/me", s->owner_token));
  ASSERT_STATUS(403, health(s, member));
}

int main(int argc, char **argv) {
  int next =
      atr_harness_backend(argc, argv, "sqlite | postgres PGDIR PGSCRIPT");
  if (next < 0)
    return 2;
  bool on_postgres = atr_harness_on_postgres();
  if (on_postgres && next >= argc) {
    fprintf(stderr, "usage: test_api_debug sqlite | postgres PGDIR PGSCRIPT\n");
    return 2;
  }
  pg_script = on_postgres ? argv[next] : NULL;
  curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
#define T_WITH(f, up) cmocka_unit_test_setup_teardown(f, up, srv_stop)
  const struct CMUnitTest all[] = {
      T(the_health_report_names_every_check),
      T(daemons_keep_being_seen),
      T_WITH(without_daemons_the_deployment_is_degraded, server_up_no_daemons),
      T_WITH(an_access_url_that_does_not_answer_is_unhealthy,
             server_up_wrong_access_url),
      T_WITH(an_access_url_without_scheme_is_unhealthy,
             server_up_bad_access_url),
      T(only_owners_read_the_debug_routes),
      T(the_configuration_is_redacted_and_says_where_from),
      T(plugins_logs_and_metrics_are_listed),
  };
  const struct CMUnitTest pg_only[] = {
      cmocka_unit_test_setup_teardown(while_postgres_is_down_the_owner_sees_it,
                                      server_up, server_down_pg_started),
  };
#undef T
#undef T_WITH
  int failed = cmocka_run_group_tests_name(
      atr_harness_on_postgres() ? "api_debug_postgres" : "api_debug_sqlite",
      all, NULL, NULL);
  if (atr_harness_on_postgres())
    failed += cmocka_run_group_tests_name("api_debug_postgres_outage", pg_only,
                                          NULL, NULL);
  curl_global_cleanup();
  return failed;
}
