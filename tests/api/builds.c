/* tests/api/builds.c — see builds.h. */
#include "builds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

/* libarchive's header by full path: core/archive.h has the same name. */
#include ATR_TEST_LIBARCHIVE_H
#include <archive_entry.h>

const srv_opts_t FAST = {.delay = "200ms"};

/* "2026-11-26T07:33:03.123456Z" → microseconds since the epoch; -1 when
 * the value is not such a time. */
int64_t time_us(const json_t *t) {
  const char *s = json_string_value(t);
  struct tm tm = {0};
  long us = 0;
  if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%6ldZ", &tm.tm_year, &tm.tm_mon,
                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us) != 7)
    return -1;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm) * 1000000 + us;
}

/* ---- the server ------------------------------------------------------------ */

/* The echo's hold_file: one per test program, in a private directory
 * removed at exit. */
static char hold_dir[64];
static char hold_file[96];

static void remove_hold_dir(void) {
  unlink(hold_file);
  rmdir(hold_dir);
}

static const char *hold_path(void) {
  if (!hold_file[0]) {
    snprintf(hold_dir, sizeof hold_dir, "/tmp/atr-hold-XXXXXX");
    assert_non_null(mkdtemp(hold_dir));
    snprintf(hold_file, sizeof hold_file, "%s/hold", hold_dir);
    atexit(remove_hold_dir);
  }
  return hold_file;
}

void hold_builds(void) {
  FILE *f = fopen(hold_path(), "w");
  assert_non_null(f);
  fclose(f);
}

void release_builds(void) {
  if (unlink(hold_path()) != 0)
    assert_int_equal(errno, ENOENT);
}

/* "  key: value\n" when value is set. */
static void opt_line(char *buf, size_t size, const char *key,
                     const char *value) {
  if (value)
    snprintf(buf + strlen(buf), size - strlen(buf), "  %s: %s\n", key, value);
}

static char *config_text(const srv_opts_t *o) {
  char top[1600] = "", plugins[400];
  if (o->policy_files)
    snprintf(top, sizeof top, "policy:\n  files: %s\n", o->policy_files);
  snprintf(top + strlen(top), sizeof top - strlen(top), "provisioner:\n");
  opt_line(top, sizeof top, "daemons", o->daemons ? o->daemons : "3");
  opt_line(top, sizeof top, "poll_interval", "10m");
  opt_line(top, sizeof top, "heartbeat_interval",
           o->heartbeat_interval ? o->heartbeat_interval : "500ms");
  opt_line(top, sizeof top, "heartbeat_timeout", o->heartbeat_timeout);
  opt_line(top, sizeof top, "pending_timeout", o->pending_timeout);
  opt_line(top, sizeof top, "reaper_interval", o->reaper_interval);
  opt_line(top, sizeof top, "tags", o->tags);
  opt_line(top, sizeof top, "max_log_size", o->max_log_size);
  snprintf(plugins, sizeof plugins,
           "  provisioner_echo:\n    enabled: true\n    delay: %s\n"
           "    hold_file: %s\n",
           o->delay ? o->delay : "200ms", hold_path());
  return srv_config_text(
      &(srv_config_t){.threads = 8, .top = top, .plugins = plugins});
}

int builds_start(void **state, const srv_opts_t *o) {
  release_builds(); /* a hold a failed test left */
  char *cfg = config_text(o);
  int rc = srv_start(state, cfg, NULL);
  free(cfg);
  return rc;
}

int server_up(void **state) {
  return builds_start(state, &FAST);
}

void restart(srv_t *s, int sig, const srv_opts_t *o) {
  char *cfg = config_text(o);
  srv_restart(s, sig, cfg);
  free(cfg);
}

int builds_main(int argc, char **argv, const char *group,
                const struct CMUnitTest *tests, size_t n) {
  if (atr_harness_backend(argc, argv, "sqlite | postgres PGDIR") < 0)
    return 2;
  char name[64];
  snprintf(name, sizeof name, "%s_%s", group,
           atr_harness_on_postgres() ? "postgres" : "sqlite");
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int failed = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
  curl_global_cleanup();
  return failed;
}

/* ---- template archives -------------------------------------------------------- */

/* A tar.gz of (name, text) pairs ending with a NULL name; malloc'd. */
void *targz(const char *const *files, size_t *len) {
  size_t cap = 1 << 20;
  void *buf = malloc(cap);
  struct archive *a = archive_write_new();
  assert_non_null(buf);
  assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
  assert_int_equal(archive_write_add_filter_gzip(a), ARCHIVE_OK);
  assert_int_equal(archive_write_open_memory(a, buf, cap, len), ARCHIVE_OK);
  for (const char *const *f = files; *f; f += 2) {
    struct archive_entry *e = archive_entry_new();
    archive_entry_set_pathname(e, f[0]);
    archive_entry_set_size(e, (la_int64_t)strlen(f[1]));
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_perm(e, 0644);
    assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
    assert_int_equal(archive_write_data(a, f[1], strlen(f[1])),
                     (la_ssize_t)strlen(f[1]));
    archive_entry_free(e);
  }
  assert_int_equal(archive_write_close(a), ARCHIVE_OK);
  archive_write_free(a);
  return buf;
}

/* The parameters every workspace test uses: cpus (mutable, 1..8), region
 * (immutable), token (sensitive), flavor (one of two, required). */
const char TEMPLATE_YAML[] =
    "name: dev\n"
    "provisioner: echo\n"
    "parameters:\n"
    "  - name: cpus\n"
    "    display_name: CPUs\n"
    "    type: number\n"
    "    default: 2\n"
    "    validation: {min: 1, max: 8}\n"
    "    mutable: true\n"
    "    display_order: 1\n"
    "  - name: region\n"
    "    type: string\n"
    "    default: eu\n"
    "    display_order: 2\n"
    "  - name: token\n"
    "    type: string\n"
    "    default: \"\"\n"
    "    sensitive: true\n"
    "    mutable: true\n"
    "    display_order: 3\n"
    "  - name: flavor\n"
    "    type: string\n"
    "    description: Machine size\n"
    "    options:\n"
    "      - {name: Small, value: small, description: 2 GB RAM}\n"
    "      - {name: Large, value: large}\n"
    "    display_order: 4\n";

/* Upload a tar.gz of files; the file id. */
void upload(const srv_t *s, const char *const *files, char id[64]) {
  size_t len = 0;
  void *data = targz(files, &len);
  atr_tc_res_t r = atr_tc_call(
      s->h.port, &(atr_tc_req_t){.method = "POST",
                                 .path = "/api/v2/files",
                                 .token = s->owner_token,
                                 .raw = data,
                                 .raw_len = len,
                                 .content_type = "application/gzip"});
  free(data);
  if (r.status != 200)
    ASSERT_ANSWER(r, 201);
  snprintf(id, 64, "%s", field(&r, "hash"));
  atr_tc_res_free(&r);
}

void upload_yaml(const srv_t *s, const char *yaml, char id[64]) {
  const char *files[] = {"template.yaml", yaml, "main.txt", "echo files\n",
                         NULL};
  upload(s, files, id);
}

/* POST a template version; body is stolen. */
atr_tc_res_t post_version(const srv_t *s, const char *token, json_t *body) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templateversions",
           s->org_id);
  return call(s, "POST", path, token, body);
}

/* ---- jobs ------------------------------------------------------------------- */

const char *job_status(const atr_tc_res_t *r) {
  return jstr2(r->json, "job", "status");
}

static bool ended(const char *status) {
  return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
         strcmp(status, "canceled") == 0;
}

/* GET path (a version or a build) until its job's status is `want`, or
 * (want NULL) has ended, or timeout_ms passes; the last answer. */
atr_tc_res_t wait_job(const srv_t *s, const char *path, const char *want,
                      int timeout_ms) {
  double until = atr_harness_now_ms() + timeout_ms;
  for (;;) {
    atr_tc_res_t r = get(s, path, s->owner_token);
    ASSERT_ANSWER(r, 200);
    const char *st = job_status(&r);
    if ((want ? strcmp(st, want) == 0 : ended(st)) ||
        atr_harness_now_ms() > until)
      return r;
    atr_tc_res_free(&r);
    atr_harness_sleep_ms(20);
  }
}

/* The same, failing the test unless the job ended with `status`. */
atr_tc_res_t wait_end(const srv_t *s, const char *path, const char *status,
                      int timeout_ms) {
  atr_tc_res_t r = wait_job(s, path, NULL, timeout_ms);
  if (strcmp(job_status(&r), status) != 0) {
    print_error("job of %s: want %s within %d ms, got %s\n", path, status,
                timeout_ms, r.body);
    atr_harness_print_log_tail(&s->h, 30);
    char got[16];
    snprintf(got, sizeof got, "%s", job_status(&r));
    atr_tc_res_free(&r);
    assert_string_equal(got, status);
  }
  return r;
}

/* The job log of path ("/api/v2/workspacebuilds/<id>"), as the array. */
json_t *job_log(const srv_t *s, const char *path, const char *token) {
  char logs[256];
  snprintf(logs, sizeof logs, "%s/logs", path);
  atr_tc_res_t r = get(s, logs, token);
  ASSERT_ANSWER(r, 200);
  assert_true(json_is_array(r.json));
  json_t *lines = json_incref(r.json);
  atr_tc_res_free(&r);
  return lines;
}

/* How many lines of the log contain needle. */
size_t lines_with(const json_t *lines, const char *needle) {
  size_t n = 0, i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    if (strstr(jstr(l, "output"), needle))
      n++;
  }
  return n;
}

void dump_log(const json_t *lines) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    print_error("  %lld %s %s\n",
                (long long)json_integer_value(json_object_get(l, "id")),
                jstr(l, "log_level"), jstr(l, "output"));
  }
}

/* The log of path has exactly `want` lines containing needle. */
void assert_log_lines(const srv_t *s, const char *path, const char *needle,
                      size_t want) {
  json_t *lines = job_log(s, path, s->owner_token);
  size_t n = lines_with(lines, needle);
  if (n != want) {
    print_error("%zu lines with \"%s\" (want %zu) in the log of %s:\n", n,
                needle, want, path);
    dump_log(lines);
  }
  json_decref(lines);
  assert_int_equal(n, want);
}

/* Poll the log of path until a line contains needle. */
bool wait_log(const srv_t *s, const char *path, const char *needle,
              int timeout_ms) {
  double until = atr_harness_now_ms() + timeout_ms;
  do {
    json_t *lines = job_log(s, path, s->owner_token);
    size_t n = lines_with(lines, needle);
    json_decref(lines);
    if (n > 0)
      return true;
    atr_harness_sleep_ms(20);
  } while (atr_harness_now_ms() < until);
  return false;
}

/* ---- templates ---------------------------------------------------------------- */

/* Create a version of the archive `file` (template_id may be NULL); its id. */
void create_version(const srv_t *s, const char *file, const char *name,
                    const char *template_id, char id[37]) {
  json_t *body = json_pack("{s:s, s:s}", "file_id", file, "name", name);
  if (template_id)
    json_object_set_new(body, "template_id", json_string(template_id));
  atr_tc_res_t r = post_version(s, s->owner_token, body);
  ASSERT_ANSWER(r, 201);
  snprintf(id, 37, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
}

void version_path(char *buf, size_t size, const char *id) {
  snprintf(buf, size, "/api/v2/templateversions/%s", id);
}

/* An imported version of TEMPLATE_YAML made into template `name`. */
void make_template(const srv_t *s, const char *name, tmpl_t *t) {
  char file[64], path[128];
  upload_yaml(s, TEMPLATE_YAML, file);
  create_version(s, file, "v1", NULL, t->version_id);
  version_path(path, sizeof path, t->version_id);
  atr_tc_res_t r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  r = call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s}", "name", name, "template_version_id",
                     t->version_id));
  ASSERT_ANSWER(r, 201);
  snprintf(t->id, sizeof t->id, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
}

/* ---- workspaces ----------------------------------------------------------------- */

/* [{"name": n, "value": v}, ...] from name, value, ..., NULL. */
json_t *values_of(const char *const *pairs) {
  json_t *a = json_array();
  for (const char *const *p = pairs; p[0] && p[1]; p += 2)
    json_array_append_new(a,
                          json_pack("{s:s, s:s}", "name", p[0], "value", p[1]));
  return a;
}

/* POST /users/{user}/workspaces; vals is stolen. */
atr_tc_res_t create_workspace(const srv_t *s, const char *token,
                              const char *user, const char *name,
                              const char *template_id, json_t *vals) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/users/%s/workspaces", user);
  return call(s, "POST", path, token,
              json_pack("{s:s, s:s, s:o}", "name", name, "template_id",
                        template_id, "rich_parameter_values", vals));
}

/* A new workspace of the owner's; its id and its first build's id. */
void new_workspace(const srv_t *s, const char *name, const tmpl_t *t,
                   json_t *vals, char ws[37], char build[37]) {
  atr_tc_res_t r = create_workspace(s, s->owner_token, "me", name, t->id, vals);
  ASSERT_ANSWER(r, 201);
  snprintf(ws, 37, "%s", field(&r, "id"));
  snprintf(build, 37, "%s", jstr2(r.json, "latest_build", "id"));
  atr_tc_res_free(&r);
}

void build_path(char *buf, size_t size, const char *id) {
  snprintf(buf, size, "/api/v2/workspacebuilds/%s", id);
}

/* POST a build; vals (may be NULL) is stolen. */
atr_tc_res_t post_build(const srv_t *s, const char *token, const char *ws,
                        const char *transition, json_t *vals) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/builds", ws);
  json_t *body = json_pack("{s:s}", "transition", transition);
  if (vals)
    json_object_set_new(body, "rich_parameter_values", vals);
  return call(s, "POST", path, token, body);
}

/* A build that must be accepted; its id. */
void build(const srv_t *s, const char *ws, const char *transition, json_t *vals,
           char id[37]) {
  atr_tc_res_t r = post_build(s, s->owner_token, ws, transition, vals);
  ASSERT_ANSWER(r, 201);
  snprintf(id, 37, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
}

/* Wait for the build to end; it must have the workspace status `status`. */
void wait_build(const srv_t *s, const char *id, const char *status) {
  char path[128];
  build_path(path, sizeof path, id);
  atr_tc_res_t r = wait_job(s, path, NULL, BUILD_MS);
  if (strcmp(field(&r, "status"), status) != 0) {
    print_error("build %s: want %s, got %s\n", id, status, r.body);
    atr_harness_print_log_tail(&s->h, 30);
    json_t *lines = job_log(s, path, s->owner_token);
    dump_log(lines);
    json_decref(lines);
  }
  assert_string_equal(field(&r, "status"), status);
  atr_tc_res_free(&r);
}

size_t count_builds(const srv_t *s, const char *ws) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/builds", ws);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  size_t n = json_array_size(r.json);
  atr_tc_res_free(&r);
  return n;
}

/* GET /api/v2/workspaces<query> as the token sees it: the count. */
json_int_t count_workspaces(const srv_t *s, const char *token,
                            const char *query) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaces%s", query);
  atr_tc_res_t r = get(s, path, token);
  ASSERT_ANSWER(r, 200);
  json_int_t n = json_integer_value(json_object_get(r.json, "count"));
  assert_int_equal(json_array_size(json_object_get(r.json, "workspaces")), n);
  atr_tc_res_free(&r);
  return n;
}

/* The value of parameter name in a [{"name", "value"}] array. */
const char *param(const json_t *list, const char *name) {
  size_t i;
  json_t *p;
  json_array_foreach(list, i, p) {
    if (strcmp(jstr(p, "name"), name) == 0)
      return jstr(p, "value");
  }
  return "(missing)";
}
