/* core/health.c — the health checks; see health.h. */
#include "health.h"

#include <curl/curl.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "integrity.h"
#include "provd.h"
#include "rows.h"

#define DB_ROUNDS 3

static double mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

const char *atr_health_status_name(int status) {
  switch (status) {
  case ATR_HEALTH_HEALTHY:
    return "healthy";
  case ATR_HEALTH_DEGRADED:
    return "degraded";
  default:
    return "unhealthy";
  }
}

/* {"name", "status", "message"}, to which a check adds its details. */
static json_t *check_new(const char *name, int status, const char *message) {
  return json_pack("{s:s, s:s, s:s}", "name", name, "status",
                   atr_health_status_name(status), "message",
                   message ? message : "");
}

/* Milliseconds to the microsecond. */
static json_t *ms_json(double ms) {
  return json_real(round(ms * 1000.0) / 1000.0);
}

/* A time as RFC 3339 UTC, or null for 0. */
static json_t *time_json(int64_t us) {
  if (us == 0)
    return json_null();
  time_t secs = (time_t)(us / 1000000);
  struct tm tm;
  char buf[40];
  gmtime_r(&secs, &tm);
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%06lldZ", (long long)(us % 1000000));
  return json_string(buf);
}

/* ---- database -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of DB_ROUNDS round trips of SELECT 1 on one connection. */
static int round_trip(atr_store_t *store, double *acquire_ms, double *median_ms,
                      char **err) {
  atr_db_t db;
  double t0 = mono_ms();
  int rc = atr_db_open(store, &db, err);
  *acquire_ms = mono_ms() - t0;
  if (rc != 0)
    return rc;
  double took[DB_ROUNDS] = {0};
  for (int i = 0; rc == 0 && i < DB_ROUNDS; i++) {
    int64_t one = 0;
    double start = mono_ms();
    rc = atr_db_query_int(&db, "SELECT 1", NULL, 0, &one, err);
    took[i] = mono_ms() - start;
  }
  atr_db_close(&db);
  qsort(took, DB_ROUNDS, sizeof took[0], cmp_double);
  *median_ms = took[DB_ROUNDS / 2];
  return rc;
}

static json_t *check_database(atr_store_t *store, int *status) {
  double acquire_ms = 0, ms = 0;
  char *err = NULL;
  int rc = round_trip(store, &acquire_ms, &ms, &err);
  char msg[600];
  if (rc != 0) {
    *status = ATR_HEALTH_UNHEALTHY;
    snprintf(msg, sizeof msg, "The database does not answer: %s",
             err ? err : atr_strerror(rc));
  } else if (ms >= ATR_HEALTH_DB_THRESHOLD_MS) {
    *status = ATR_HEALTH_DEGRADED;
    snprintf(msg, sizeof msg,
             "A round trip took %.1f ms, at or over the %.0f ms the Coder "
             "Validated Architecture asks for.",
             ms, ATR_HEALTH_DB_THRESHOLD_MS);
  } else {
    *status = ATR_HEALTH_HEALTHY;
    snprintf(msg, sizeof msg, "A round trip took %.3f ms.", ms);
  }
  free(err);
  json_t *c = check_new("database", *status, msg);
  json_object_set_new(c, "storage", json_string(store->plugin->name));
  json_object_set_new(c, "latency_ms", rc == 0 ? ms_json(ms) : json_null());
  json_object_set_new(c, "acquire_ms", ms_json(acquire_ms));
  json_object_set_new(c, "threshold_ms", json_real(ATR_HEALTH_DB_THRESHOLD_MS));
  return c;
}

/* ---- provisioner daemons ----------------------------------------------------- */

/* How many daemons were seen since `since`, and the latest sighting of
 * any daemon. */
static int daemons_seen(atr_store_t *store, int64_t since, int64_t *count,
                        int64_t *last_us, char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_time(since)};
  rc = atr_db_query_int(&db,
                        "SELECT COUNT(*) FROM provisioner_daemons WHERE "
                        "last_seen_at >= ?",
                        p, 1, count, err);
  atr_db_rows_t *rows = NULL;
  if (rc == 0)
    rc = atr_db_query(&db, "SELECT MAX(last_seen_at) FROM provisioner_daemons",
                      NULL, 0, &rows, err);
  if (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    *last_us = atr_db_get_time(&db, rows, 0);
    rc = 0;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  return rc;
}

static void daemons_message(const atr_health_config_t *cfg, size_t ntypes,
                            int64_t count, int *status, char *msg,
                            size_t size) {
  if (count > 0) {
    *status = ATR_HEALTH_HEALTHY;
    snprintf(
        msg, size, "%lld provisioner daemon%s seen in the last %d seconds.",
        (long long)count, count == 1 ? "" : "s", ATR_HEALTH_DAEMON_WINDOW_S);
  } else if (cfg->builtin_daemons > 0 && ntypes > 0) {
    *status = ATR_HEALTH_UNHEALTHY;
    snprintf(msg, size,
             "No provisioner daemon was seen in the last %d seconds, although "
             "this server runs %lld: they cannot register or heartbeat (see "
             "the server log); template imports and builds stay pending.",
             ATR_HEALTH_DAEMON_WINDOW_S, (long long)cfg->builtin_daemons);
  } else {
    *status = ATR_HEALTH_DEGRADED;
    snprintf(msg, size,
             "No provisioner daemon was seen in the last %d seconds, and this "
             "server runs none (%s): template imports and builds stay "
             "pending until a replica with daemons runs. External daemons are "
             "not supported yet.",
             ATR_HEALTH_DAEMON_WINDOW_S,
             ntypes == 0 ? "no provisioner plugin is running"
                         : "provisioner.daemons is 0");
  }
}

/* The last integrity check (integrity.h): damage is unhealthy; a check that
 * has not run yet is degraded, so nobody reads "healthy" for a file that
 * was never looked at. */
static json_t *check_integrity(int *status) {
  char *found = NULL;
  int64_t at = 0;
  atr_integrity_state_t state = atr_integrity_last(&found, &at);
  static const struct {
    int status;
    const char *message;
  } by_state[] = {
      [ATR_INTEGRITY_UNKNOWN] = {ATR_HEALTH_DEGRADED,
                                 "the integrity check has not run yet"},
      [ATR_INTEGRITY_OK] = {ATR_HEALTH_HEALTHY, "quick_check found nothing"},
      [ATR_INTEGRITY_DAMAGED] = {ATR_HEALTH_UNHEALTHY,
                                 "quick_check found damage: restore the last "
                                 "backup"},
      [ATR_INTEGRITY_NOT_APPLICABLE] = {ATR_HEALTH_HEALTHY,
                                        "not applicable: the database checks "
                                        "its own pages"}};
  *status = by_state[state].status;
  json_t *c = check_new("database_integrity", *status, by_state[state].message);
  if (found && state == ATR_INTEGRITY_DAMAGED)
    json_object_set_new(c, "found", json_string(found));
  json_object_set_new(c, "checked_at", atr_time_json(at));
  free(found);
  return c;
}

static json_t *check_daemons(const atr_health_config_t *cfg, int *status) {
  int64_t now = atr_db_now_us();
  int64_t count = 0, last_us = 0;
  char *err = NULL;
  int rc =
      daemons_seen(cfg->store, now - ATR_HEALTH_DAEMON_WINDOW_S * 1000000LL,
                   &count, &last_us, &err);
  size_t ntypes = 0;
  const char **types = atr_provisioner_types(cfg->loader, &ntypes);
  char msg[600];
  if (rc != 0) {
    *status = ATR_HEALTH_UNHEALTHY;
    snprintf(msg, sizeof msg, "Cannot read the provisioner daemons: %s",
             err ? err : atr_strerror(rc));
  } else {
    daemons_message(cfg, ntypes, count, status, msg, sizeof msg);
  }
  free(err);
  json_t *c = check_new("provisioner_daemons", *status, msg);
  json_t *tj = json_array();
  for (size_t i = 0; types && i < ntypes; i++)
    json_array_append_new(tj, json_string(types[i]));
  free(types);
  json_object_set_new(c, "count", rc == 0 ? json_integer(count) : json_null());
  json_object_set_new(c, "last_seen_at", time_json(last_us));
  json_object_set_new(c, "window_seconds",
                      json_integer(ATR_HEALTH_DAEMON_WINDOW_S));
  json_object_set_new(c, "built_in_daemons",
                      json_integer(ntypes > 0 ? cfg->builtin_daemons : 0));
  json_object_set_new(c, "provisioner_types", tj);
  return c;
}

/* ---- plugins ------------------------------------------------------------------- */

static json_t *check_plugin(const atr_handle_t *h, int *status) {
  char *message = NULL;
  int rc = atr_loader_health(h, &message);
  char fallback[80];
  const char *msg = message;
  if (rc == ATR_ENOTSUP) {
    *status = ATR_HEALTH_HEALTHY;
    msg = "Running; the plugin has no health check of its own.";
  } else if (rc < ATR_HEALTH_HEALTHY || rc > ATR_HEALTH_UNHEALTHY) {
    *status = ATR_HEALTH_UNHEALTHY;
    snprintf(fallback, sizeof fallback,
             "Its health check answered %d, which is not a status.", rc);
    msg = fallback;
  } else {
    *status = rc;
  }
  char name[128];
  snprintf(name, sizeof name, "plugin:%s", h->name);
  json_t *c = check_new(name, *status, msg ? msg : "");
  json_object_set_new(c, "plugin", json_string(h->name));
  json_object_set_new(c, "kind",
                      json_string(atr_plugin_kind_name(h->desc->kind)));
  free(message);
  return c;
}

/* ---- access URL ------------------------------------------------------------------ */

static size_t discard(char *data, size_t size, size_t n, void *ud) {
  (void)data;
  (void)ud;
  return size * n;
}

static json_t *check_access_url(const char *base, int *status) {
  char url[1024], msg[1600];
  long code = 0;
  double ms = 0;
  snprintf(url, sizeof url, "%s/healthz", base ? base : "");
  bool http = base && (strncmp(base, "http://", 7) == 0 ||
                       strncmp(base, "https://", 8) == 0);
  CURL *curl = http ? curl_easy_init() : NULL;
  if (!http) {
    *status = ATR_HEALTH_UNHEALTHY;
    snprintf(msg, sizeof msg,
             "access_url \"%s\" is not an http:// or https:// URL; set it to "
             "the URL people reach this deployment at.",
             base ? base : "");
  } else if (!curl) {
    *status = ATR_HEALTH_UNHEALTHY;
    snprintf(msg, sizeof msg, "Cannot make an HTTP client.");
  } else {
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS,
                     (long)ATR_HEALTH_ACCESS_TIMEOUT_MS);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "atrium-health-check");
    double t0 = mono_ms();
    CURLcode cc = curl_easy_perform(curl);
    ms = mono_ms() - t0;
    if (cc == CURLE_OK)
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    if (cc != CURLE_OK) {
      *status = ATR_HEALTH_UNHEALTHY;
      snprintf(msg, sizeof msg, "GET %s failed: %s", url,
               errbuf[0] ? errbuf : curl_easy_strerror(cc));
    } else if (code != 200) {
      *status = ATR_HEALTH_UNHEALTHY;
      snprintf(msg, sizeof msg,
               "GET %s answered %ld, not 200: is access_url this deployment?",
               url, code);
    } else {
      *status = ATR_HEALTH_HEALTHY;
      snprintf(msg, sizeof msg, "GET %s answered 200 in %.0f ms.", url, ms);
    }
    curl_easy_cleanup(curl);
  }
  json_t *c = check_new("access_url", *status, msg);
  json_object_set_new(c, "url", json_string(base ? base : ""));
  json_object_set_new(c, "status_code",
                      code ? json_integer(code) : json_null());
  json_object_set_new(c, "latency_ms", code ? ms_json(ms) : json_null());
  return c;
}

/* ---- the report ------------------------------------------------------------------- */

static void add(json_t *checks, json_t *check, int status, int *worst) {
  json_array_append_new(checks, check);
  if (status > *worst)
    *worst = status;
}

json_t *atr_health_checks(const atr_health_config_t *cfg, int *worst) {
  json_t *checks = json_array();
  int status = ATR_HEALTH_HEALTHY;
  *worst = ATR_HEALTH_HEALTHY;
  /* The database first: its round trip also tells a storage plugin's
   * pool whether the server is back, which that plugin's check reports. */
  json_t *c = check_database(cfg->store, &status);
  add(checks, c, status, worst);
  c = check_integrity(&status);
  add(checks, c, status, worst);
  c = check_daemons(cfg, &status);
  add(checks, c, status, worst);
  for (size_t i = 0; i < cfg->loader->nplugins; i++) {
    const atr_handle_t *h = cfg->loader->plugins[i];
    if (h->state != ATR_PLUGIN_RUNNING)
      continue;
    c = check_plugin(h, &status);
    add(checks, c, status, worst);
  }
  c = check_access_url(cfg->access_url, &status);
  add(checks, c, status, worst);
  return checks;
}
