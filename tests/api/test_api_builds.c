/* tests/api/test_api_builds.c — templates, workspaces and builds through
 * the real `atrium server` with the example echo provisioner, as an API
 * client sees them.
 *
 *   test_api_builds sqlite
 *   test_api_builds postgres PGDIR   (PGDIR/dsn: the fixture's libpq DSN)
 *
 * Each test starts its own server on an empty database with
 * provisioner_echo enabled (its `delay` is how long each apply pretends to
 * work) and provisioner.poll_interval at 10 minutes, so every job that
 * starts within the test was announced, not found by polling. Some tests
 * stop the server and start it again on the same database (SIGKILL for a
 * daemon that died mid-job, SIGTERM for a configuration change). A test
 * ends with SIGTERM, which must exit 0, and the server's log (at debug
 * level) must hold no remembered secret: passwords, session keys and the
 * sensitive parameter value. Waits poll with a deadline. */
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <curl/curl.h>

/* libarchive's header by full path: core/archive.h has the same name. */
#include ATR_TEST_LIBARCHIVE_H
#include <archive_entry.h>

#include "client.h"
#include "harness.h"

#define OWNER_EMAIL "owner@example.com"
#define OWNER_PW "Tangerine-Kiosk-41"
#define MEMBER_EMAIL "member@example.com"
#define MEMBER_PW "Velvet-Orbit-58"
/* Distinctive, so a hit anywhere cannot be chance. */
#define CANARY "Zebra-Canary-7f3a9c1e"
#define CANARY2 "Okapi-Canary-52d0b7aa"
#define MASKED "********"
/* How long a build may take on the fast echo (200 ms), ASan included. */
#define BUILD_MS 15000

static bool on_postgres;
static char pg_dsn[1024];

/* What a server is started with; NULL fields keep the default. */
typedef struct srv_opts {
  const char *delay;   /* provisioner_echo.delay; "200ms" */
  const char *daemons; /* provisioner.daemons; "3" */
  const char *heartbeat_interval, *heartbeat_timeout; /* "500ms", default */
  const char *pending_timeout, *reaper_interval;      /* defaults */
  const char *tags;                                   /* "[pool=gpu]" */
  const char *max_log_size;                           /* default */
  const char *policy_files;                           /* a YAML list of globs */
} srv_opts_t;

static const srv_opts_t FAST = {.delay = "200ms"};
static const srv_opts_t SLOW = {.delay = "30s"};

typedef struct srv {
  atr_harness_t h;
  char owner_id[37];
  char org_id[37];
  const char *owner_token; /* owned by the secrets list */
} srv_t;

/* A template ready for workspaces. */
typedef struct tmpl {
  char id[37];
  char version_id[37];
} tmpl_t;

/* ---- secrets the log must not contain ------------------------------------ */

#define MAX_SECRETS 32
static char *secrets[MAX_SECRETS];
static size_t nsecrets;

static const char *remember(const char *s) {
  assert_true(nsecrets < MAX_SECRETS);
  secrets[nsecrets] = strdup(s);
  assert_non_null(secrets[nsecrets]);
  return secrets[nsecrets++];
}

static void forget_secrets(void) {
  for (size_t i = 0; i < nsecrets; i++)
    free(secrets[i]);
  nsecrets = 0;
}

static int find_secret(const char *text) {
  for (size_t i = 0; text && i < nsecrets; i++)
    if (strstr(text, secrets[i]))
      return (int)i;
  return -1;
}

/* ---- time ------------------------------------------------------------------ */

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* "2026-11-26T07:33:03.123456Z" → microseconds since the epoch; -1 when
 * the value is not such a time. */
static int64_t time_us(const json_t *t) {
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

static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char *text = calloc(1, 4096);
  size_t n = text ? fread(text, 1, 4095, f) : 0;
  fclose(f);
  while (n > 0 && (text[n - 1] == '\n' || text[n - 1] == ' '))
    text[--n] = '\0';
  return text;
}

static int reset_postgres(void) {
  PGconn *c = PQconnectdb(pg_dsn);
  int rc = 0;
  if (PQstatus(c) != CONNECTION_OK) {
    print_error("cannot connect to the test PostgreSQL: %s", PQerrorMessage(c));
    rc = -1;
  } else {
    PGresult *res = PQexec(c, "SET client_min_messages = warning; "
                              "DROP SCHEMA IF EXISTS public CASCADE; "
                              "CREATE SCHEMA public");
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      print_error("cannot reset the schema: %s", PQerrorMessage(c));
      rc = -1;
    }
    PQclear(res);
  }
  PQfinish(c);
  return rc;
}

/* "  key: value\n" when value is set. */
static void opt_line(char *buf, size_t size, const char *key,
                     const char *value) {
  if (value)
    snprintf(buf + strlen(buf), size - strlen(buf), "  %s: %s\n", key, value);
}

static char *config_text(const srv_opts_t *o) {
  char storage[1400], prov[1024] = "";
  if (on_postgres)
    snprintf(storage, sizeof storage,
             "  storage_postgres:\n    enabled: true\n    dsn: \"%s\"\n",
             pg_dsn);
  else
    snprintf(storage, sizeof storage, "  storage_sqlite:\n    enabled: true\n");
  opt_line(prov, sizeof prov, "daemons", o->daemons ? o->daemons : "3");
  opt_line(prov, sizeof prov, "poll_interval", "10m");
  opt_line(prov, sizeof prov, "heartbeat_interval",
           o->heartbeat_interval ? o->heartbeat_interval : "500ms");
  opt_line(prov, sizeof prov, "heartbeat_timeout", o->heartbeat_timeout);
  opt_line(prov, sizeof prov, "pending_timeout", o->pending_timeout);
  opt_line(prov, sizeof prov, "reaper_interval", o->reaper_interval);
  opt_line(prov, sizeof prov, "tags", o->tags);
  opt_line(prov, sizeof prov, "max_log_size", o->max_log_size);
  char policy[600] = "";
  if (o->policy_files)
    snprintf(policy, sizeof policy, "policy:\n  files: %s\n", o->policy_files);
  char *text = NULL;
  if (asprintf(&text,
               "%s"
               "data_dir: data\n"
               "plugin_dirs: [%s]\n"
               "log:\n  level: debug\n"
               "http:\n  threads: 8\n"
               "  rate_limit:\n    login: 0\n    api: 0\n"
               "provisioner:\n%s"
               "plugins:\n%s"
               "  auth_password:\n    enabled: true\n"
               "    memory_cost: 8MiB\n    time_cost: 1\n"
               "  provisioner_echo:\n    enabled: true\n    delay: %s\n",
               policy, ATR_TEST_PLUGIN_DIR, prov, storage,
               o->delay ? o->delay : "200ms") < 0)
    return NULL;
  return text;
}

static int start(void **state, const srv_opts_t *o) {
  if (on_postgres && reset_postgres() != 0)
    return -1;
  srv_t *s = calloc(1, sizeof *s);
  char *cfg = config_text(o);
  if (!s || !cfg) {
    free(s);
    free(cfg);
    return -1;
  }
  atr_harness_init(&s->h, cfg);
  free(cfg);
  atr_harness_start(&s->h, NULL, NULL);
  *state = s;
  return 0;
}

static int server_up(void **state) {
  return start(state, &FAST);
}

static int server_up_slow(void **state) {
  return start(state, &SLOW);
}

/* Long enough to see lines arrive while the build runs. */
static int server_up_follow(void **state) {
  static const srv_opts_t o = {.delay = "1500ms"};
  return start(state, &o);
}

/* Deployment policies: caps.lua in a directory of the test's own. */
static char policy_dir[64];
static char policy_glob[128];

static const char CAPS_LUA[] =
    "function workspace_create(input)\n"
    "  if policy.number(input, 'cpus') > 4 then\n"
    "    policy.deny('at most 4 CPUs here', 'cpus')\n"
    "  end\n"
    "  policy.warn('workspaces stop at night')\n"
    "end\n"
    "function build(input)\n"
    "  if input.transition == 'start' and policy.number(input, 'cpus') > 4 "
    "then\n"
    "    policy.deny('at most 4 CPUs here', 'cpus')\n"
    "  end\n"
    "  if input.transition == 'stop' then policy.warn('stopping ' .. "
    "input.workspace.name) end\n"
    "end\n"
    "function schedule(input)\n"
    "  local n = input.schedule.new\n"
    "  if n.autostart and n.autostart:find('0,6', 1, true) then\n"
    "    policy.deny('no autostart at weekends', 'schedule')\n"
    "  end\n"
    "  if n.ttl_ms and n.ttl_ms > 28800000 then\n"
    "    policy.set('ttl_ms', '28800000')\n"
    "    policy.warn('autostop capped at 8 hours')\n"
    "  end\n"
    "end\n"
    "function template_push(input)\n"
    "  for _, p in ipairs(input.manifest.parameters) do\n"
    "    if p.name == 'forbidden' then policy.deny('no parameter may be "
    "called forbidden') end\n"
    "  end\n"
    "end\n";

static int server_up_policies(void **state) {
  snprintf(policy_dir, sizeof policy_dir, "/tmp/atrium-policies-XXXXXX");
  if (!mkdtemp(policy_dir))
    return -1;
  char path[128];
  snprintf(path, sizeof path, "%s/caps.lua", policy_dir);
  FILE *f = fopen(path, "w");
  if (!f)
    return -1;
  fputs(CAPS_LUA, f);
  fclose(f);
  snprintf(policy_glob, sizeof policy_glob, "[%s/*.lua]", policy_dir);
  static srv_opts_t o = {.delay = "200ms"};
  o.policy_files = policy_glob;
  return start(state, &o);
}

static int server_down(void **state);

static int server_down_policies(void **state) {
  int rc = server_down(state);
  char path[128];
  snprintf(path, sizeof path, "%s/caps.lua", policy_dir);
  unlink(path);
  rmdir(policy_dir);
  return rc;
}

/* The smallest log cap there is. */
static int server_up_small_logs(void **state) {
  static const srv_opts_t o = {.delay = "200ms", .max_log_size = "4096"};
  return start(state, &o);
}

static int server_up_no_daemons(void **state) {
  static const srv_opts_t o = {.daemons = "0"};
  return start(state, &o);
}

/* Stop the server (SIGKILL, or SIGTERM which must exit 0) and start it
 * again on the same database with the options o. */
static void restart(srv_t *s, int sig, const srv_opts_t *o) {
  kill(s->h.pid, sig);
  int status = atr_harness_wait(&s->h, 10000);
  if (sig == SIGTERM && status != 0) {
    char *log = atr_harness_read_log(&s->h);
    print_error("the server exited with %d after SIGTERM; its log:\n%s\n",
                status, log ? log : "");
    free(log);
  }
  assert_int_equal(status, sig == SIGTERM ? 0 : 128 + SIGKILL);
  char *cfg = config_text(o);
  assert_non_null(cfg);
  atr_harness_write_config(&s->h, cfg);
  free(cfg);
  atr_harness_start(&s->h, NULL, NULL);
}

static int server_down(void **state) {
  srv_t *s = *state;
  kill(s->h.pid, SIGTERM);
  int status = atr_harness_wait(&s->h, 15000);
  char *log = atr_harness_read_log(&s->h);
  int leaked = find_secret(log);
  if (leaked >= 0)
    print_error("remembered secret #%d (%s) is in the server log %s\n", leaked,
                secrets[leaked], s->h.log);
  if (status != 0)
    print_error("the server exited with %d after SIGTERM; its log:\n%s\n",
                status, log ? log : "");
  free(log);
  atr_harness_cleanup(&s->h);
  forget_secrets();
  free(s);
  return leaked >= 0 || status != 0 ? -1 : 0;
}

/* The last n lines of the server's log, for a failure's context. */
static void print_log_tail(const srv_t *s, int n) {
  char *log = atr_harness_read_log(&s->h);
  const char *from = log ? log + strlen(log) : "";
  while (log && from > log && n >= 0)
    if (*--from == '\n')
      n--;
  print_error("server log (%s), last lines:\n%s\n", s->h.log, from);
  free(log);
}

/* ---- calls ------------------------------------------------------------------ */

/* method path with token in Atrium-Session-Token; body is stolen. */
static atr_tc_res_t call(const srv_t *s, const char *method, const char *path,
                         const char *token, json_t *body) {
  atr_tc_res_t r = atr_tc_call(s->h.port, &(atr_tc_req_t){.method = method,
                                                          .path = path,
                                                          .token = token,
                                                          .body = body});
  json_decref(body);
  return r;
}

static atr_tc_res_t get(const srv_t *s, const char *path, const char *token) {
  return call(s, "GET", path, token, NULL);
}

static const char *field(const atr_tc_res_t *r, const char *key) {
  const char *v = atr_tc_str(r, key);
  return v ? v : "(missing)";
}

static const char *jstr(const json_t *o, const char *key) {
  const char *v = json_string_value(json_object_get(o, key));
  return v ? v : "(missing)";
}

/* o.a.b as a string ("(missing)" when absent). */
static const char *jstr2(const json_t *o, const char *a, const char *b) {
  return jstr(json_object_get(o, a), b);
}

#define ASSERT_ANSWER(res, want)                                               \
  do {                                                                         \
    if ((res).status != (want))                                                \
      print_error("answer: %s\n", (res).body ? (res).body : "");               \
    assert_int_equal((res).status, (want));                                    \
  } while (0)

#define ASSERT_STATUS(want, expr)                                              \
  do {                                                                         \
    atr_tc_res_t r_ = (expr);                                                  \
    ASSERT_ANSWER(r_, want);                                                   \
    atr_tc_res_free(&r_);                                                      \
  } while (0)

/* An error answer: status and message. */
#define ASSERT_ERROR(want, msg, expr)                                          \
  do {                                                                         \
    atr_tc_res_t r_ = (expr);                                                  \
    ASSERT_ANSWER(r_, want);                                                   \
    assert_string_equal(field(&r_, "message"), (msg));                         \
    atr_tc_res_free(&r_);                                                      \
  } while (0)

/* s contains needle, or the test fails showing s. */
static void assert_contains(const char *s, const char *needle) {
  if (!s || !strstr(s, needle))
    print_error("\"%s\" is not in: %s\n", needle, s ? s : "(null)");
  assert_non_null(s);
  assert_non_null(strstr(s, needle));
}

/* A 400 naming each of fields exactly once, and nothing else; the detail
 * of fields[i] contains details[i] (when not NULL). */
static void assert_validations(const atr_tc_res_t *r, const char *const *fields,
                               const char *const *details, size_t n) {
  if (r->status != 400)
    print_error("answer: %s\n", r->body);
  assert_int_equal(r->status, 400);
  json_t *list = json_object_get(r->json, "validations");
  if (json_array_size(list) != n)
    print_error("want %zu validations: %s\n", n, r->body);
  assert_int_equal(json_array_size(list), n);
  for (size_t f = 0; f < n; f++) {
    size_t seen = 0, i;
    json_t *v;
    json_array_foreach(list, i, v) {
      if (strcmp(jstr(v, "field"), fields[f]) != 0)
        continue;
      seen++;
      assert_true(strlen(jstr(v, "detail")) > 0);
      if (details && details[f])
        assert_contains(jstr(v, "detail"), details[f]);
    }
    if (seen != 1)
      print_error("field %s: %zu entries in %s\n", fields[f], seen, r->body);
    assert_int_equal(seen, 1);
  }
}

static const char *login(const srv_t *s, const char *email,
                         const char *password) {
  atr_tc_res_t r =
      call(s, "POST", "/api/v2/users/login", NULL,
           json_pack("{s:s, s:s}", "email", email, "password", password));
  ASSERT_ANSWER(r, 201);
  const char *token = remember(field(&r, "session_token"));
  atr_tc_res_free(&r);
  return token;
}

static void owner_signs_in(srv_t *s) {
  remember(OWNER_PW);
  atr_tc_res_t r = call(s, "POST", "/api/v2/users/first", NULL,
                        json_pack("{s:s, s:s, s:s}", "email", OWNER_EMAIL,
                                  "username", "owner", "password", OWNER_PW));
  ASSERT_ANSWER(r, 201);
  snprintf(s->owner_id, sizeof s->owner_id, "%s", field(&r, "user_id"));
  snprintf(s->org_id, sizeof s->org_id, "%s", field(&r, "organization_id"));
  atr_tc_res_free(&r);
  s->owner_token = login(s, OWNER_EMAIL, OWNER_PW);
}

/* ---- template archives -------------------------------------------------------- */

/* A tar.gz of (name, text) pairs ending with a NULL name; malloc'd. */
static void *targz(const char *const *files, size_t *len) {
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
static const char TEMPLATE_YAML[] =
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
static void upload(const srv_t *s, const char *const *files, char id[64]) {
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

static void upload_yaml(const srv_t *s, const char *yaml, char id[64]) {
  const char *files[] = {"template.yaml", yaml, "main.txt", "echo files\n",
                         NULL};
  upload(s, files, id);
}

/* POST a template version; body is stolen. */
static atr_tc_res_t post_version(const srv_t *s, const char *token,
                                 json_t *body) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templateversions",
           s->org_id);
  return call(s, "POST", path, token, body);
}

/* ---- jobs ------------------------------------------------------------------- */

static const char *job_status(const atr_tc_res_t *r) {
  return jstr2(r->json, "job", "status");
}

static bool ended(const char *status) {
  return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
         strcmp(status, "canceled") == 0;
}

/* GET path (a version or a build) until its job's status is `want`, or
 * (want NULL) has ended, or timeout_ms passes; the last answer. */
static atr_tc_res_t wait_job(const srv_t *s, const char *path, const char *want,
                             int timeout_ms) {
  double until = now_ms() + timeout_ms;
  for (;;) {
    atr_tc_res_t r = get(s, path, s->owner_token);
    ASSERT_ANSWER(r, 200);
    const char *st = job_status(&r);
    if ((want ? strcmp(st, want) == 0 : ended(st)) || now_ms() > until)
      return r;
    atr_tc_res_free(&r);
    sleep_ms(20);
  }
}

/* The same, failing the test unless the job ended with `status`. */
static atr_tc_res_t wait_end(const srv_t *s, const char *path,
                             const char *status, int timeout_ms) {
  atr_tc_res_t r = wait_job(s, path, NULL, timeout_ms);
  if (strcmp(job_status(&r), status) != 0) {
    print_error("job of %s: want %s within %d ms, got %s\n", path, status,
                timeout_ms, r.body);
    print_log_tail(s, 30);
    char got[16];
    snprintf(got, sizeof got, "%s", job_status(&r));
    atr_tc_res_free(&r);
    assert_string_equal(got, status);
  }
  return r;
}

/* The job log of path ("/api/v2/workspacebuilds/<id>"), as the array. */
static json_t *job_log(const srv_t *s, const char *path, const char *token) {
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
static size_t lines_with(const json_t *lines, const char *needle) {
  size_t n = 0, i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    if (strstr(jstr(l, "output"), needle))
      n++;
  }
  return n;
}

static void dump_log(const json_t *lines) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    print_error("  %lld %s %s\n",
                (long long)json_integer_value(json_object_get(l, "id")),
                jstr(l, "log_level"), jstr(l, "output"));
  }
}

/* The log of path has exactly `want` lines containing needle. */
static void assert_log_lines(const srv_t *s, const char *path,
                             const char *needle, size_t want) {
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
static bool wait_log(const srv_t *s, const char *path, const char *needle,
                     int timeout_ms) {
  double until = now_ms() + timeout_ms;
  do {
    json_t *lines = job_log(s, path, s->owner_token);
    size_t n = lines_with(lines, needle);
    json_decref(lines);
    if (n > 0)
      return true;
    sleep_ms(20);
  } while (now_ms() < until);
  return false;
}

/* ---- templates ---------------------------------------------------------------- */

/* Create a version of the archive `file` (template_id may be NULL); its id. */
static void create_version(const srv_t *s, const char *file, const char *name,
                           const char *template_id, char id[37]) {
  json_t *body = json_pack("{s:s, s:s}", "file_id", file, "name", name);
  if (template_id)
    json_object_set_new(body, "template_id", json_string(template_id));
  atr_tc_res_t r = post_version(s, s->owner_token, body);
  ASSERT_ANSWER(r, 201);
  snprintf(id, 37, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
}

static void version_path(char *buf, size_t size, const char *id) {
  snprintf(buf, size, "/api/v2/templateversions/%s", id);
}

/* An imported version of TEMPLATE_YAML made into template `name`. */
static void make_template(const srv_t *s, const char *name, tmpl_t *t) {
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
static json_t *values_of(const char *const *pairs) {
  json_t *a = json_array();
  for (const char *const *p = pairs; p[0] && p[1]; p += 2)
    json_array_append_new(a,
                          json_pack("{s:s, s:s}", "name", p[0], "value", p[1]));
  return a;
}

#define VALUES(...) values_of((const char *const[]){__VA_ARGS__, NULL})

/* POST /users/{user}/workspaces; vals is stolen. */
static atr_tc_res_t create_workspace(const srv_t *s, const char *token,
                                     const char *user, const char *name,
                                     const char *template_id, json_t *vals) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/users/%s/workspaces", user);
  return call(s, "POST", path, token,
              json_pack("{s:s, s:s, s:o}", "name", name, "template_id",
                        template_id, "rich_parameter_values", vals));
}

/* A new workspace of the owner's; its id and its first build's id. */
static void new_workspace(const srv_t *s, const char *name, const tmpl_t *t,
                          json_t *vals, char ws[37], char build[37]) {
  atr_tc_res_t r = create_workspace(s, s->owner_token, "me", name, t->id, vals);
  ASSERT_ANSWER(r, 201);
  snprintf(ws, 37, "%s", field(&r, "id"));
  snprintf(build, 37, "%s", jstr2(r.json, "latest_build", "id"));
  atr_tc_res_free(&r);
}

static void build_path(char *buf, size_t size, const char *id) {
  snprintf(buf, size, "/api/v2/workspacebuilds/%s", id);
}

/* POST a build; vals (may be NULL) is stolen. */
static atr_tc_res_t post_build(const srv_t *s, const char *token,
                               const char *ws, const char *transition,
                               json_t *vals) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/builds", ws);
  json_t *body = json_pack("{s:s}", "transition", transition);
  if (vals)
    json_object_set_new(body, "rich_parameter_values", vals);
  return call(s, "POST", path, token, body);
}

/* A build that must be accepted; its id. */
static void build(const srv_t *s, const char *ws, const char *transition,
                  json_t *vals, char id[37]) {
  atr_tc_res_t r = post_build(s, s->owner_token, ws, transition, vals);
  ASSERT_ANSWER(r, 201);
  snprintf(id, 37, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
}

/* Wait for the build to end; it must have the workspace status `status`. */
static void wait_build(const srv_t *s, const char *id, const char *status) {
  char path[128];
  build_path(path, sizeof path, id);
  atr_tc_res_t r = wait_job(s, path, NULL, BUILD_MS);
  if (strcmp(field(&r, "status"), status) != 0) {
    print_error("build %s: want %s, got %s\n", id, status, r.body);
    print_log_tail(s, 30);
    json_t *lines = job_log(s, path, s->owner_token);
    dump_log(lines);
    json_decref(lines);
  }
  assert_string_equal(field(&r, "status"), status);
  atr_tc_res_free(&r);
}

static size_t count_builds(const srv_t *s, const char *ws) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/builds", ws);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  size_t n = json_array_size(r.json);
  atr_tc_res_free(&r);
  return n;
}

/* GET /api/v2/workspaces<query> as the token sees it: the count. */
static json_int_t count_workspaces(const srv_t *s, const char *token,
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
static const char *param(const json_t *list, const char *name) {
  size_t i;
  json_t *p;
  json_array_foreach(list, i, p) {
    if (strcmp(jstr(p, "name"), name) == 0)
      return jstr(p, "value");
  }
  return "(missing)";
}

/* ---- 1. imports ------------------------------------------------------------------ */

static void assert_param(const json_t *p, const char *name, const char *type,
                         bool mutable_, bool sensitive, bool required,
                         const char *def) {
  assert_string_equal(jstr(p, "name"), name);
  assert_string_equal(jstr(p, "type"), type);
  assert_int_equal(json_is_true(json_object_get(p, "mutable")), mutable_);
  assert_int_equal(json_is_true(json_object_get(p, "sensitive")), sensitive);
  assert_int_equal(json_is_true(json_object_get(p, "required")), required);
  assert_false(json_is_true(json_object_get(p, "ephemeral")));
  assert_string_equal(jstr(p, "default_value"), def);
}

static void check_schema(const srv_t *s, const char *version) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/templateversions/%s/rich-parameters",
           version);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 4);
  json_t *cpus = json_array_get(r.json, 0);
  assert_param(cpus, "cpus", "number", true, false, false, "2");
  assert_string_equal(jstr(cpus, "display_name"), "CPUs");
  assert_true(json_number_value(json_object_get(cpus, "validation_min")) == 1);
  assert_true(json_number_value(json_object_get(cpus, "validation_max")) == 8);
  assert_int_equal(json_integer_value(json_object_get(cpus, "display_order")),
                   1);
  json_t *region = json_array_get(r.json, 1);
  assert_param(region, "region", "string", false, false, false, "eu");
  assert_true(json_is_null(json_object_get(region, "validation_min")));
  assert_true(json_is_null(json_object_get(region, "validation_max")));
  assert_param(json_array_get(r.json, 2), "token", "string", true, true, false,
               "");
  json_t *flavor = json_array_get(r.json, 3);
  assert_param(flavor, "flavor", "string", false, false, true, "");
  assert_string_equal(jstr(flavor, "description"), "Machine size");
  json_t *opts = json_object_get(flavor, "options");
  assert_int_equal(json_array_size(opts), 2);
  assert_string_equal(jstr(json_array_get(opts, 0), "name"), "Small");
  assert_string_equal(jstr(json_array_get(opts, 0), "value"), "small");
  assert_string_equal(jstr(json_array_get(opts, 0), "description"), "2 GB RAM");
  assert_string_equal(jstr(json_array_get(opts, 1), "value"), "large");
  atr_tc_res_free(&r);
}

/* The import's job as the version shows it once it succeeded. */
static void check_import_job(const atr_tc_res_t *r, const char *file) {
  json_t *job = json_object_get(r->json, "job");
  assert_string_equal(jstr(job, "type"), "template_version_import");
  assert_string_equal(jstr(job, "provisioner"), "echo");
  assert_string_equal(jstr(job, "file_id"), file);
  assert_string_equal(jstr(job, "error"), "");
  assert_int_equal(strlen(jstr(job, "worker_id")), 36);
  int64_t created = time_us(json_object_get(job, "created_at"));
  int64_t started = time_us(json_object_get(job, "started_at"));
  int64_t completed = time_us(json_object_get(job, "completed_at"));
  assert_true(created > 0 && started >= created && completed >= started);
  assert_true(json_is_null(json_object_get(job, "canceled_at")));
}

/* Log lines are numbered from 1 without gaps and name their source. */
static void check_log_shape(const json_t *lines) {
  size_t i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    assert_int_equal(json_integer_value(json_object_get(l, "id")),
                     (json_int_t)i + 1);
    const char *src = jstr(l, "log_source");
    assert_true(strcmp(src, "provisioner_daemon") == 0 ||
                strcmp(src, "provisioner") == 0);
    assert_true(time_us(json_object_get(l, "created_at")) > 0);
  }
}

/* The template update's audit entry; polled, as entries land after the
 * answer. */
static void check_update_audit(const srv_t *s, const char *template_id) {
  json_t *found = NULL;
  atr_tc_res_t r = {0};
  for (double until = now_ms() + 5000; !found && now_ms() < until;) {
    atr_tc_res_free(&r);
    r = get(s, "/api/v2/audit?limit=1000", s->owner_token);
    ASSERT_ANSWER(r, 200);
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(r.json, "audit_logs"), i, e) {
      if (strcmp(jstr(e, "action"), "write") == 0 &&
          strcmp(jstr(e, "resource_type"), "template") == 0 &&
          json_object_get(json_object_get(e, "diff"), "name"))
        found = e;
    }
    if (!found)
      sleep_ms(20);
  }
  if (!found)
    print_error("no template write entry with a name diff: %s\n", r.body);
  assert_non_null(found);
  assert_string_equal(jstr(found, "resource_id"), template_id);
  assert_string_equal(jstr2(found, "user", "username"), "owner");
  assert_int_equal(json_integer_value(json_object_get(found, "status_code")),
                   200);
  json_t *diff = json_object_get(found, "diff");
  assert_string_equal(jstr2(diff, "name", "old"), "docker-dev");
  assert_string_equal(jstr2(diff, "name", "new"), "dev-box");
  assert_string_equal(jstr2(diff, "description", "new"), "Updated.");
  assert_string_equal(jstr2(diff, "default_ttl_ms", "old"), "3600000");
  assert_string_equal(jstr2(diff, "default_ttl_ms", "new"), "7200000");
  atr_tc_res_free(&r);
}

/* Version v1 of file: answered, imported, logged, its schema learnt. */
static void import_v1(const srv_t *s, const char *file, char v1[37]) {
  atr_tc_res_t r =
      post_version(s, s->owner_token,
                   json_pack("{s:s, s:s, s:s}", "file_id", file, "name", "v1",
                             "message", "First cut"));
  ASSERT_ANSWER(r, 201);
  snprintf(v1, 37, "%s", field(&r, "id"));
  assert_string_equal(field(&r, "name"), "v1");
  assert_string_equal(field(&r, "message"), "First cut");
  assert_string_equal(field(&r, "provisioner"), "echo");
  assert_string_equal(field(&r, "organization_id"), s->org_id);
  assert_true(json_is_null(json_object_get(r.json, "template_id")));
  assert_string_equal(jstr2(r.json, "created_by", "username"), "owner");
  atr_tc_res_free(&r);

  char path[128];
  version_path(path, sizeof path, v1);
  r = wait_end(s, path, "succeeded", BUILD_MS);
  check_import_job(&r, file);
  atr_tc_res_free(&r);
  json_t *lines = job_log(s, path, s->owner_token);
  assert_true(json_array_size(lines) >= 3);
  check_log_shape(lines);
  assert_int_equal(lines_with(lines, " taken by "), 1);
  assert_int_equal(lines_with(lines, "provisioner echo, 4 parameters"), 1);
  assert_int_equal(lines_with(lines, "Job succeeded."), 1);
  json_decref(lines);
  check_schema(s, v1);
}

/* Template docker-dev from v1: created, listed, found by name. */
static void create_template(const srv_t *s, const char *v1, char tid[37]) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  atr_tc_res_t r =
      call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", "docker-dev",
                     "display_name", "Docker dev", "description", "For work.",
                     "template_version_id", v1, "default_ttl_ms", 3600000));
  ASSERT_ANSWER(r, 201);
  snprintf(tid, 37, "%s", field(&r, "id"));
  assert_string_equal(field(&r, "active_version_id"), v1);
  assert_string_equal(field(&r, "provisioner"), "echo");
  assert_string_equal(field(&r, "display_name"), "Docker dev");
  assert_string_equal(field(&r, "created_by_name"), "owner");
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "default_ttl_ms")), 3600000);
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "workspace_count")), 0);
  atr_tc_res_free(&r);
  /* a version belongs to one template */
  r = call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s}", "name", "again", "template_version_id", v1));
  static const char *const version_field[] = {"template_version_id"};
  assert_validations(&r, version_field, NULL, 1);
  atr_tc_res_free(&r);

  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 1);
  assert_string_equal(jstr(json_array_get(r.json, 0), "id"), tid);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates/docker-dev",
           s->org_id);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "id"), tid);
  assert_string_equal(field(&r, "description"), "For work.");
  atr_tc_res_free(&r);
}

/* docker-dev becomes dev-box, with an audit entry saying so. */
static void update_template(const srv_t *s, const char *tid) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/templates/%s", tid);
  atr_tc_res_t r =
      call(s, "PATCH", path, s->owner_token,
           json_pack("{s:s, s:s, s:i}", "name", "dev-box", "description",
                     "Updated.", "default_ttl_ms", 7200000));
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "name"), "dev-box");
  assert_string_equal(field(&r, "description"), "Updated.");
  assert_string_equal(field(&r, "display_name"), "Docker dev");
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "default_ttl_ms")), 7200000);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates/docker-dev",
           s->org_id);
  ASSERT_ERROR(404, "Template not found.", get(s, path, s->owner_token));
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates/dev-box",
           s->org_id);
  ASSERT_STATUS(200, get(s, path, s->owner_token));
  check_update_audit(s, tid);
}

/* A second version of the template, listed first and made active. */
static void promote_v2(const srv_t *s, const char *file, const char *tid) {
  char v2[37], path[256];
  create_version(s, file, "v2", tid, v2);
  version_path(path, sizeof path, v2);
  atr_tc_res_t r = wait_end(s, path, "succeeded", BUILD_MS);
  assert_string_equal(field(&r, "template_id"), tid);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/templates/%s/versions", tid);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 2);
  assert_string_equal(jstr(json_array_get(r.json, 0), "name"), "v2");
  assert_string_equal(jstr(json_array_get(r.json, 1), "name"), "v1");
  assert_string_equal(jstr(json_array_get(r.json, 1), "template_id"), tid);
  atr_tc_res_free(&r);
  r = call(s, "PATCH", path, s->owner_token,
           json_pack("{s:s}", "id", "00000000-0000-4000-8000-000000000000"));
  static const char *const id_field[] = {"id"};
  assert_validations(&r, id_field, NULL, 1);
  atr_tc_res_free(&r);
  r = call(s, "PATCH", path, s->owner_token, json_pack("{s:s}", "id", v2));
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "message"), "Updated the active version.");
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/templates/%s", tid);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "active_version_id"), v2);
  atr_tc_res_free(&r);
}

static void a_template_is_imported_created_updated_and_promoted(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64], v1[37], tid[37];
  upload_yaml(s, TEMPLATE_YAML, file);
  import_v1(s, file, v1);
  create_template(s, v1, tid);
  update_template(s, tid);
  promote_v2(s, file, tid);
}

/* The create answers show the job as it was queued: pending. */
static void new_jobs_are_answered_as_pending(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char file[64], version_job[16], build_job[16], build_status[16];
  upload_yaml(s, TEMPLATE_YAML, file);
  atr_tc_res_t r =
      post_version(s, s->owner_token,
                   json_pack("{s:s, s:s}", "file_id", file, "name", "v2"));
  ASSERT_ANSWER(r, 201);
  snprintf(version_job, sizeof version_job, "%s", job_status(&r));
  atr_tc_res_free(&r);
  r = create_workspace(s, s->owner_token, "me", "ws1", t.id,
                       VALUES("flavor", "small"));
  ASSERT_ANSWER(r, 201);
  json_t *latest = json_object_get(r.json, "latest_build");
  assert_int_equal(json_integer_value(json_object_get(latest, "build_number")),
                   1);
  assert_string_equal(jstr(latest, "transition"), "start");
  snprintf(build_status, sizeof build_status, "%s", jstr(latest, "status"));
  snprintf(build_job, sizeof build_job, "%s", jstr2(latest, "job", "status"));
  atr_tc_res_free(&r);
  print_message("answered: version job %s; build %s, its job %s\n", version_job,
                build_status, build_job);
  assert_string_equal(version_job, "pending");
  assert_string_equal(build_status, "pending");
  assert_string_equal(build_job, "pending");
}

/* ---- the log cap ------------------------------------------------------------------ */

/* A build whose log passes provisioner.max_log_size keeps what came before
 * the cap, ends with one line saying where it was cut, and its job says
 * logs_overflowed; the build itself is not harmed. Echo writes one line
 * per parameter, so 150 long parameter names make about 7 KiB. */
static void a_long_log_is_cut_at_the_cap(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char *yaml = strdup("name: chatty\nprovisioner: echo\nparameters:\n");
  for (int i = 0; i < 150; i++) {
    char *next = NULL;
    assert_true(asprintf(&next,
                         "%s  - name: a_rather_long_parameter_name_%03d\n"
                         "    type: string\n    default: x\n",
                         yaml, i) > 0);
    free(yaml);
    yaml = next;
  }
  char file[64], version[37], path[128];
  upload_yaml(s, yaml, file);
  free(yaml);
  create_version(s, file, "v1", NULL, version);
  version_path(path, sizeof path, version);
  atr_tc_res_t r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  r = call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s}", "name", "chatty", "template_version_id",
                     version));
  ASSERT_ANSWER(r, 201);
  tmpl_t t;
  snprintf(t.id, sizeof t.id, "%s", field(&r, "id"));
  atr_tc_res_free(&r);

  char ws[37], b1[37];
  new_workspace(s, "chatty", &t, json_array(), ws, b1);
  wait_build(s, b1, "running");
  build_path(path, sizeof path, b1);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_true(json_is_true(
      json_object_get(json_object_get(r.json, "job"), "logs_overflowed")));
  atr_tc_res_free(&r);

  json_t *lines = job_log(s, path, s->owner_token);
  size_t n = json_array_size(lines), kept = 0, cuts = 0;
  for (size_t i = 0; i < n; i++) {
    const char *out = jstr(json_array_get(lines, i), "output");
    if (strstr(out, "the log was cut here")) {
      cuts++;
      assert_int_equal(i, n - 1); /* nothing after the note */
      assert_contains(out, "4096 bytes (provisioner.max_log_size)");
    } else {
      kept += strlen(out);
    }
  }
  assert_int_equal(cuts, 1);
  assert_true(kept <= 4096);
  assert_true(kept > 3000); /* what came before the cap is all there */
  json_decref(lines);
}

/* ---- 2. import errors ----------------------------------------------------------- */

/* Two problems: a default outside the bounds and an unknown type. */
static const char BAD_YAML[] = "name: bad\n"
                               "provisioner: echo\n"
                               "parameters:\n"
                               "  - name: cpus\n"
                               "    type: number\n"
                               "    default: 12\n"
                               "    validation: {min: 1, max: 8}\n"
                               "  - name: gpu\n"
                               "    type: float\n";

/* Lines of the log that report a template.yaml problem with field_name
 * and (when not NULL) saying what. */
static size_t problem_lines(const json_t *lines, const char *field_name,
                            const char *what) {
  char prefix[128];
  snprintf(prefix, sizeof prefix, "template.yaml: %s", field_name);
  size_t n = 0, i;
  json_t *l;
  json_array_foreach(lines, i, l) {
    const char *out = jstr(l, "output");
    if (strncmp(out, prefix, strlen(prefix)) == 0 &&
        (!what || strstr(out, what))) {
      assert_string_equal(jstr(l, "log_level"), "error");
      n++;
    }
  }
  return n;
}

static void a_bad_manifest_fails_its_import_naming_each_problem(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64], bad[37], path[256];
  upload_yaml(s, BAD_YAML, file);
  create_version(s, file, "broken", NULL, bad);
  version_path(path, sizeof path, bad);
  atr_tc_res_t r = wait_end(s, path, "failed", BUILD_MS);
  const char *error = jstr2(r.json, "job", "error");
  assert_contains(error, "parameters[0].default");
  assert_contains(error, "2 problems");
  atr_tc_res_free(&r);
  json_t *lines = job_log(s, path, s->owner_token);
  /* one line per problem, each naming its field and what is wrong */
  size_t all = problem_lines(lines, "", NULL),
         dflt =
             problem_lines(lines, "parameters[0].default: ",
                           "default \"12\" must be a number between 1 and 8"),
         type = problem_lines(lines,
                              "parameters[1].type: ", "unknown type \"float\"");
  if (all != 2 || dflt != 1 || type != 1)
    dump_log(lines);
  assert_int_equal(all, 2);
  assert_int_equal(dflt, 1);
  assert_int_equal(type, 1);
  json_decref(lines);
  /* nothing was learnt from it */
  snprintf(path, sizeof path, "/api/v2/templateversions/%s/rich-parameters",
           bad);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 0);
  atr_tc_res_free(&r);

  /* a failed version cannot become a template */
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  r = call(
      s, "POST", path, s->owner_token,
      json_pack("{s:s, s:s}", "name", "broken", "template_version_id", bad));
  static const char *const version_field[] = {"template_version_id"};
  static const char *const not_succeeded[] = {"did not succeed"};
  assert_validations(&r, version_field, not_succeeded, 1);
  atr_tc_res_free(&r);
}

static void
a_version_needs_an_enabled_provisioner_and_a_manifest(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64];
  upload_yaml(s, TEMPLATE_YAML, file);
  /* a provisioner no plugin has, named by the body or by template.yaml:
   * refused, naming the enabled ones */
  atr_tc_res_t r = post_version(
      s, s->owner_token,
      json_pack("{s:s, s:s}", "file_id", file, "provisioner", "docker"));
  static const char *const prov_field[] = {"provisioner"};
  static const char *const enabled_echo[] = {"enabled: echo"};
  assert_validations(&r, prov_field, enabled_echo, 1);
  assert_contains(
      jstr(json_array_get(json_object_get(r.json, "validations"), 0), "detail"),
      "\"docker\"");
  atr_tc_res_free(&r);
  char nomad[64];
  upload_yaml(s, "name: n\nprovisioner: nomad\n", nomad);
  r = post_version(s, s->owner_token, json_pack("{s:s}", "file_id", nomad));
  assert_validations(&r, prov_field, enabled_echo, 1);
  atr_tc_res_free(&r);

  /* no such file, and an archive without template.yaml */
  static const char *const file_field[] = {"file_id"};
  r = post_version(
      s, s->owner_token,
      json_pack("{s:s}", "file_id", "00000000-0000-4000-8000-000000000000"));
  assert_validations(&r, file_field, NULL, 1);
  atr_tc_res_free(&r);
  char bare[64];
  const char *no_yaml[] = {"main.txt", "no manifest\n", NULL};
  upload(s, no_yaml, bare);
  r = post_version(s, s->owner_token, json_pack("{s:s}", "file_id", bare));
  assert_validations(&r, file_field, NULL, 1);
  atr_tc_res_free(&r);
}

/* ---- 3. the workspace lifecycle ------------------------------------------------- */

/* A refused create: each named field once, and no workspace made. */
static void refused_create(const srv_t *s, const tmpl_t *t, json_t *vals,
                           const char *const *fields,
                           const char *const *details, size_t n) {
  atr_tc_res_t r =
      create_workspace(s, s->owner_token, "me", "ws1", t->id, vals);
  assert_validations(&r, fields, details, n);
  atr_tc_res_free(&r);
  assert_int_equal(count_workspaces(s, s->owner_token, ""), 0);
  assert_int_equal(count_workspaces(s, s->owner_token, "?deleted=true"), 0);
}

/* A refused build: the one field, and no build made. */
static void refused_build(const srv_t *s, const char *ws, json_t *vals,
                          const char *name, const char *detail) {
  size_t before = count_builds(s, ws);
  atr_tc_res_t r = post_build(s, s->owner_token, ws, "start", vals);
  const char *fields[] = {name}, *details[] = {detail};
  assert_validations(&r, fields, details, 1);
  atr_tc_res_free(&r);
  assert_int_equal(count_builds(s, ws), before);
}

static void the_first_build_runs_with_the_values_given(const srv_t *s,
                                                       const tmpl_t *t,
                                                       char ws[37]) {
  atr_tc_res_t r =
      create_workspace(s, s->owner_token, "me", "ws1", t->id,
                       VALUES("cpus", "4", "region", "us", "flavor", "large"));
  ASSERT_ANSWER(r, 201);
  snprintf(ws, 37, "%s", field(&r, "id"));
  char b1[37];
  json_t *latest = json_object_get(r.json, "latest_build");
  snprintf(b1, sizeof b1, "%s", jstr(latest, "id"));
  assert_int_equal(json_integer_value(json_object_get(latest, "build_number")),
                   1);
  assert_string_equal(jstr(latest, "transition"), "start");
  assert_string_equal(field(&r, "name"), "ws1");
  assert_string_equal(field(&r, "owner_name"), "owner");
  assert_string_equal(field(&r, "template_id"), t->id);
  assert_string_equal(field(&r, "template_name"), "dev");
  assert_false(json_is_true(json_object_get(r.json, "deleted")));
  atr_tc_res_free(&r);
  wait_build(s, b1, "running");

  char path[256];
  build_path(path, sizeof path, b1);
  json_t *lines = job_log(s, path, s->owner_token);
  assert_int_equal(lines_with(lines, "echo: start workspace ws1, build 1"), 1);
  assert_int_equal(lines_with(lines, "echo: prior state (none)"), 1);
  assert_int_equal(lines_with(lines, "echo: parameter cpus = 4"), 1);
  assert_int_equal(lines_with(lines, "echo: parameter region = us"), 1);
  assert_int_equal(lines_with(lines, "echo: parameter flavor = large"), 1);
  assert_int_equal(lines_with(lines, "echo: start done"), 1);
  json_decref(lines);

  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/resources", b1);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 1);
  json_t *res = json_array_get(r.json, 0);
  assert_string_equal(jstr(res, "type"), "echo");
  assert_string_equal(jstr(res, "name"), "ws1");
  assert_string_equal(jstr(res, "transition"), "start");
  json_t *md = json_array_get(json_object_get(res, "metadata"), 0);
  assert_string_equal(jstr(md, "key"), "id");
  assert_string_equal(jstr(md, "value"), ws);
  atr_tc_res_free(&r);

  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/parameters", b1);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 4);
  assert_string_equal(param(r.json, "cpus"), "4");
  assert_string_equal(param(r.json, "region"), "us");
  assert_string_equal(param(r.json, "flavor"), "large");
  assert_string_equal(param(r.json, "token"), MASKED);
  atr_tc_res_free(&r);
}

/* The template counts `n` workspaces; it can be deleted only without
 * any. */
static void template_in_use(const srv_t *s, const char *tid, json_int_t n) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/templates/%s", tid);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "workspace_count")), n);
  atr_tc_res_free(&r);
  r = call(s, "DELETE", path, s->owner_token, NULL);
  if (n == 0) {
    ASSERT_ANSWER(r, 204);
    ASSERT_ERROR(404, "Template not found.", get(s, path, s->owner_token));
  } else {
    ASSERT_ANSWER(r, 400);
    assert_contains(field(&r, "detail"), "1 workspace still uses it");
  }
  atr_tc_res_free(&r);
}

static void a_workspace_is_built_stopped_started_and_deleted(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);

  static const char *const three[] = {"cpus", "gpus", "flavor"};
  static const char *const three_why[] = {
      "between 1 and 8", "is not a parameter", "must be one of: small, large"};
  refused_create(s, &t, VALUES("cpus", "99", "gpus", "1", "flavor", "medium"),
                 three, three_why, 3);
  static const char *const flavor[] = {"flavor"};
  static const char *const required[] = {"is required"};
  refused_create(s, &t, VALUES("cpus", "4"), flavor, required, 1);

  char ws[37], b2[37], b3[37], b4[37], path[256];
  the_first_build_runs_with_the_values_given(s, &t, ws);

  refused_build(s, ws, VALUES("region", "eu"), "region", "immutable");
  refused_build(s, ws, VALUES("cpus", "0"), "cpus", "between 1 and 8");

  atr_tc_res_t r = post_build(s, s->owner_token, ws, "stop", NULL);
  ASSERT_ANSWER(r, 201);
  snprintf(b2, sizeof b2, "%s", field(&r, "id"));
  assert_int_equal(json_integer_value(json_object_get(r.json, "build_number")),
                   2);
  assert_string_equal(field(&r, "transition"), "stop");
  atr_tc_res_free(&r);
  /* one build at a time */
  ASSERT_STATUS(409, post_build(s, s->owner_token, ws, "start", NULL));
  assert_int_equal(count_builds(s, ws), 2);
  wait_build(s, b2, "stopped");
  build_path(path, sizeof path, b2);
  assert_log_lines(s, path, "echo: prior state echo:start:1", 1);

  /* the state of build 2 comes back to build 3; a mutable value changes */
  build(s, ws, "start", VALUES("cpus", "6"), b3);
  wait_build(s, b3, "running");
  build_path(path, sizeof path, b3);
  assert_log_lines(s, path, "echo: prior state echo:stop:2", 1);
  assert_log_lines(s, path, "echo: parameter cpus = 6", 1);
  assert_log_lines(s, path, "echo: parameter region = us", 1);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(jstr2(r.json, "latest_build", "id"), b3);
  assert_string_equal(jstr2(r.json, "latest_build", "status"), "running");
  atr_tc_res_free(&r);
  template_in_use(s, t.id, 1);

  build(s, ws, "delete", NULL, b4);
  wait_build(s, b4, "deleted");
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_true(json_is_true(json_object_get(r.json, "deleted")));
  atr_tc_res_free(&r);
  assert_int_equal(count_workspaces(s, s->owner_token, ""), 0);
  assert_int_equal(count_workspaces(s, s->owner_token, "?deleted=true"), 1);
  ASSERT_STATUS(400, post_build(s, s->owner_token, ws, "start", NULL));
  assert_int_equal(count_builds(s, ws), 4);
  template_in_use(s, t.id, 0);
}

/* ---- 4. sensitive values ------------------------------------------------------- */

/* GET path: 200, and no remembered secret in the answer. */
static void assert_clean(const srv_t *s, const char *path) {
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  int found = find_secret(r.body);
  if (found >= 0)
    print_error("secret %s in GET %s: %s\n", secrets[found], path, r.body);
  assert_int_equal(found, -1);
  atr_tc_res_free(&r);
}

static void assert_build_clean(const srv_t *s, const char *id) {
  char path[256];
  build_path(path, sizeof path, id);
  assert_clean(s, path);
  static const char *const subs[] = {"logs", "parameters", "resources"};
  for (size_t i = 0; i < 3; i++) {
    char sub[300];
    snprintf(sub, sizeof sub, "%s/%s", path, subs[i]);
    assert_clean(s, sub);
  }
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/parameters", id);
  atr_tc_res_t r = get(s, path, s->owner_token);
  assert_string_equal(param(r.json, "token"), MASKED);
  atr_tc_res_free(&r);
}

static void a_sensitive_value_is_never_shown(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  remember(CANARY);
  remember(CANARY2);
  tmpl_t t;
  make_template(s, "dev", &t);
  /* refused with it: the answer does not echo it */
  atr_tc_res_t r = create_workspace(
      s, s->owner_token, "me", "secret", t.id,
      VALUES("token", CANARY, "cpus", "99", "flavor", "small"));
  ASSERT_ANSWER(r, 400);
  assert_int_equal(find_secret(r.body), -1);
  atr_tc_res_free(&r);

  char ws[37], b1[37], b2[37], b3[37], path[256];
  new_workspace(s, "secret", &t, VALUES("token", CANARY, "flavor", "small"), ws,
                b1);
  wait_build(s, b1, "running");
  build(s, ws, "stop", NULL, b2);
  wait_build(s, b2, "stopped");
  build(s, ws, "start", VALUES("token", CANARY2), b3);
  wait_build(s, b3, "running");
  const char *const builds[] = {b1, b2, b3};
  for (size_t i = 0; i < 3; i++) {
    build_path(path, sizeof path, builds[i]);
    assert_log_lines(s, path, "echo: parameter token = (sensitive)", 1);
    assert_build_clean(s, builds[i]);
  }
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  assert_clean(s, path);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/builds", ws);
  assert_clean(s, path);
  assert_clean(s, "/api/v2/workspaces");
  assert_clean(s, "/api/v2/users/me/workspace/secret");
  assert_clean(s, "/api/v2/audit?limit=1000");

  char *log = atr_harness_read_log(&s->h);
  int found = find_secret(log);
  free(log);
  assert_int_equal(found, -1); /* and again after shutdown */
}

/* ---- 5. following logs ---------------------------------------------------------- */

#define SSE_MAX 256

typedef struct sse_event {
  char name[16];
  json_t *data;
  double at_ms; /* since the request was sent */
} sse_event_t;

typedef struct sse {
  char *buf;
  size_t len;
  sse_event_t ev[SSE_MAX];
  size_t n;
  double t0;
} sse_t;

/* One frame ("event: x\ndata: {...}"); comments (": keepalive") alone
 * make no event. */
static void sse_frame(sse_t *s, char *frame) {
  sse_event_t e = {.name = "message"};
  bool any = false;
  for (char *line = strtok(frame, "\n"); line; line = strtok(NULL, "\n")) {
    if (strncmp(line, "event: ", 7) == 0) {
      snprintf(e.name, sizeof e.name, "%s", line + 7);
      any = true;
    } else if (strncmp(line, "data: ", 6) == 0) {
      json_decref(e.data);
      e.data = json_loads(line + 6, 0, NULL);
      any = true;
    }
  }
  if (!any || s->n == SSE_MAX) {
    json_decref(e.data);
    return;
  }
  e.at_ms = now_ms() - s->t0;
  s->ev[s->n++] = e;
}

static size_t sse_on_data(char *data, size_t size, size_t n, void *ud) {
  sse_t *s = ud;
  size_t add = size * n;
  char *grown = realloc(s->buf, s->len + add + 1);
  if (!grown)
    return 0;
  s->buf = grown;
  memcpy(s->buf + s->len, data, add);
  s->len += add;
  s->buf[s->len] = '\0';
  char *end;
  while ((end = strstr(s->buf, "\n\n")) != NULL) {
    *end = '\0';
    size_t used = (size_t)(end + 2 - s->buf);
    char *frame = strdup(s->buf);
    if (frame)
      sse_frame(s, frame);
    free(frame);
    memmove(s->buf, s->buf + used, s->len - used + 1);
    s->len -= used;
  }
  return add;
}

/* GET path (with follow=true) as a stream, until the server closes it;
 * the answer's status and content type. */
static long sse_follow(const srv_t *s, const char *path, sse_t *out,
                       char ctype[64]) {
  char url[512], header[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s->h.port, path);
  snprintf(header, sizeof header, "Atrium-Session-Token: %s", s->owner_token);
  struct curl_slist *headers = curl_slist_append(NULL, header);
  CURL *c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  out->t0 = now_ms();
  long status = 0;
  CURLcode rc = curl_easy_perform(c);
  if (rc != CURLE_OK)
    print_error("following %s: %s\n", path, curl_easy_strerror(rc));
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  char *type = NULL;
  curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type);
  snprintf(ctype, 64, "%s", type ? type : "");
  curl_easy_cleanup(c);
  curl_slist_free_all(headers);
  return status;
}

static void sse_free(sse_t *s) {
  for (size_t i = 0; i < s->n; i++)
    json_decref(s->ev[i].data);
  free(s->buf);
  memset(s, 0, sizeof *s);
}

/* The stream: log events numbered first_id, first_id + 1, ..., then one
 * end event with status `status` and nothing after it. The number of log
 * events. */
static size_t check_stream(const sse_t *s, json_int_t first_id,
                           const char *status) {
  if (s->n == 0 || strcmp(s->ev[s->n - 1].name, "end") != 0) {
    for (size_t i = 0; i < s->n; i++)
      print_error("event %zu: %s\n", i, s->ev[i].name);
  }
  assert_true(s->n > 0);
  for (size_t i = 0; i + 1 < s->n; i++) {
    assert_string_equal(s->ev[i].name, "log");
    assert_int_equal(json_integer_value(json_object_get(s->ev[i].data, "id")),
                     first_id + (json_int_t)i);
  }
  const sse_event_t *end = &s->ev[s->n - 1];
  assert_string_equal(end->name, "end");
  assert_string_equal(jstr(end->data, "status"), status);
  assert_string_equal(jstr(end->data, "error"), "");
  return s->n - 1;
}

/* When the first log event whose output contains needle arrived. */
static double sse_seen_at(const sse_t *s, const char *needle) {
  for (size_t i = 0; i < s->n; i++)
    if (strstr(jstr(s->ev[i].data, "output"), needle))
      return s->ev[i].at_ms;
  print_error("no event with \"%s\"\n", needle);
  fail();
  return -1;
}

static void follow_a_build_while_it_runs(const srv_t *s, const char *b1) {
  char path[256], ctype[64];
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs?follow=true",
           b1);
  sse_t live = {0};
  assert_int_equal(sse_follow(s, path, &live, ctype), 200);
  assert_contains(ctype, "text/event-stream");
  size_t n = check_stream(&live, 1, "succeeded");
  double start_at = sse_seen_at(&live, "echo: start workspace follow, build 1");
  double done_at = sse_seen_at(&live, "echo: start done");
  double end_at = live.ev[live.n - 1].at_ms;
  /* the apply takes 1.5 s: lines came while it ran, not all at the end */
  if (end_at - start_at < 700)
    print_error("start line at %.0f ms, end at %.0f ms\n", start_at, end_at);
  assert_true(end_at - start_at >= 700);
  assert_true(done_at > start_at);

  /* the same lines as the plain list */
  build_path(path, sizeof path, b1);
  json_t *lines = job_log(s, path, s->owner_token);
  assert_int_equal(json_array_size(lines), n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(jstr(json_array_get(lines, i), "output"),
                        jstr(live.ev[i].data, "output"));
  json_decref(lines);
  sse_free(&live);
}

static void build_logs_can_be_followed_as_they_are_written(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b1[37], path[256], ctype[64];
  new_workspace(s, "follow", &t, VALUES("flavor", "small"), ws, b1);
  follow_a_build_while_it_runs(s, b1);

  /* an ended job: its lines and the end at once */
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs?follow=true",
           b1);
  sse_t again = {0};
  assert_int_equal(sse_follow(s, path, &again, ctype), 200);
  size_t n = check_stream(&again, 1, "succeeded");
  assert_true(n >= 5);
  assert_true(again.ev[again.n - 1].at_ms < 2000);
  sse_free(&again);

  /* after=N skips the first N lines, followed or not */
  snprintf(path, sizeof path,
           "/api/v2/workspacebuilds/%s/logs?follow=true&after=3", b1);
  sse_t after = {0};
  assert_int_equal(sse_follow(s, path, &after, ctype), 200);
  assert_int_equal(check_stream(&after, 4, "succeeded"), n - 3);
  sse_free(&after);
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs?after=3", b1);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), n - 3);
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(r.json, 0), "id")), 4);
  atr_tc_res_free(&r);

  /* an import's log follows the same way */
  snprintf(path, sizeof path, "/api/v2/templateversions/%s/logs?follow=true",
           t.version_id);
  sse_t import = {0};
  assert_int_equal(sse_follow(s, path, &import, ctype), 200);
  check_stream(&import, 1, "succeeded");
  sse_free(&import);
}

/* ---- 6. cancel ------------------------------------------------------------------- */

static void a_running_build_is_canceled_and_the_next_one_works(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b1[37], b2[37], path[256], cancel[300];
  new_workspace(s, "cancelme", &t, VALUES("flavor", "small"), ws, b1);
  build_path(path, sizeof path, b1);
  /* the 30 s apply has begun */
  assert_true(wait_log(s, path, "echo: start workspace cancelme", BUILD_MS));

  snprintf(cancel, sizeof cancel, "%s/cancel", path);
  double asked = now_ms();
  atr_tc_res_t r = call(s, "PATCH", cancel, s->owner_token, NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "message"), "Job canceled.");
  atr_tc_res_free(&r);
  r = wait_job(s, path, "canceled", 5000);
  double took = now_ms() - asked;
  print_message("cancel took %.0f ms\n", took);
  assert_string_equal(job_status(&r), "canceled");
  assert_string_equal(field(&r, "status"), "canceled");
  assert_true(time_us(json_object_get(json_object_get(r.json, "job"),
                                      "canceled_at")) > 0);
  assert_string_equal(jstr2(r.json, "job", "error"), "");
  atr_tc_res_free(&r);
  /* the plugin stopped early: it says so, well before its 30 s */
  assert_true(atr_harness_wait_log(&s->h, "workspace cancelme: canceled", 100));
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  r = get(s, path, s->owner_token);
  assert_string_equal(jstr2(r.json, "latest_build", "status"), "canceled");
  atr_tc_res_free(&r);
  ASSERT_ERROR(400, "The job has already ended or is being canceled.",
               call(s, "PATCH", cancel, s->owner_token, NULL));

  /* with a quick provisioner again, the workspace starts */
  restart(s, SIGTERM, &FAST);
  build(s, ws, "start", NULL, b2);
  wait_build(s, b2, "running");
  build_path(path, sizeof path, b2);
  assert_log_lines(s, path, "echo: start workspace cancelme, build 2", 1);
}

static void a_pending_import_is_canceled_at_once(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64], v[37], path[256];
  upload_yaml(s, TEMPLATE_YAML, file);
  create_version(s, file, "v1", NULL, v);
  version_path(path, sizeof path, v);
  atr_tc_res_t r = get(s, path, s->owner_token);
  assert_string_equal(job_status(&r), "pending");
  atr_tc_res_free(&r);

  char cancel[300];
  snprintf(cancel, sizeof cancel, "%s/cancel", path);
  r = call(s, "PATCH", cancel, s->owner_token, NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "message"), "Job canceled.");
  atr_tc_res_free(&r);
  r = get(s, path, s->owner_token);
  assert_string_equal(job_status(&r), "canceled");
  json_t *job = json_object_get(r.json, "job");
  assert_true(time_us(json_object_get(job, "canceled_at")) > 0);
  assert_true(time_us(json_object_get(job, "completed_at")) > 0);
  assert_true(json_is_null(json_object_get(job, "started_at")));
  assert_true(json_is_null(json_object_get(job, "worker_id")));
  atr_tc_res_free(&r);
  ASSERT_STATUS(400, call(s, "PATCH", cancel, s->owner_token, NULL));
  json_t *lines = job_log(s, path, s->owner_token);
  assert_int_equal(json_array_size(lines), 0);
  json_decref(lines);
}

/* ---- 7. the reaper --------------------------------------------------------------- */

static void a_dead_daemons_job_is_reaped(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b1[37], b2[37], path[256];
  new_workspace(s, "orphaned", &t, VALUES("flavor", "small"), ws, b1);
  build_path(path, sizeof path, b1);
  assert_true(wait_log(s, path, "echo: start workspace orphaned", BUILD_MS));

  static const srv_opts_t reaping = {.delay = "200ms",
                                     .heartbeat_interval = "200ms",
                                     .heartbeat_timeout = "1s",
                                     .pending_timeout = "2s",
                                     .reaper_interval = "100ms"};
  restart(s, SIGKILL, &reaping);
  atr_tc_res_t r = wait_end(s, path, "failed", 10000);
  const char *error = jstr2(r.json, "job", "error");
  assert_contains(error, "reaped");
  assert_contains(error, "heartbeat");
  assert_string_equal(field(&r, "status"), "failed");
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  r = get(s, path, s->owner_token);
  assert_string_equal(jstr2(r.json, "latest_build", "status"), "failed");
  atr_tc_res_free(&r);
  build(s, ws, "start", NULL, b2);
  wait_build(s, b2, "running");

  /* a job no daemon may take: reaped after pending_timeout */
  char file[64], v[37];
  upload_yaml(s, TEMPLATE_YAML, file);
  r = post_version(
      s, s->owner_token,
      json_pack("{s:s, s:{s:s}}", "file_id", file, "tags", "pool", "nobody"));
  ASSERT_ANSWER(r, 201);
  snprintf(v, sizeof v, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
  version_path(path, sizeof path, v);
  r = wait_end(s, path, "failed", 10000);
  json_t *job = json_object_get(r.json, "job");
  assert_contains(jstr(job, "error"), "reaped");
  assert_contains(jstr(job, "error"), "pending_timeout");
  /* No daemon ran it; the reaper marks it started as it ends it (the
   * schema: a finished job was started or canceled). */
  assert_true(json_is_null(json_object_get(job, "worker_id")));
  assert_string_equal(jstr(job, "started_at"), jstr(job, "completed_at"));
  int64_t waited = time_us(json_object_get(job, "completed_at")) -
                   time_us(json_object_get(job, "created_at"));
  assert_true(waited >= 2000000);
  atr_tc_res_free(&r);
}

/* ---- 8. tags ----------------------------------------------------------------------- */

static void a_tagged_job_waits_for_a_daemon_with_its_tags(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char file[64], gpu[37], plain[37], gpu_path[256], path[256];
  upload_yaml(s, TEMPLATE_YAML, file);
  atr_tc_res_t r =
      post_version(s, s->owner_token,
                   json_pack("{s:s, s:s, s:{s:s}}", "file_id", file, "name",
                             "gpu", "tags", "pool", "gpu"));
  ASSERT_ANSWER(r, 201);
  snprintf(gpu, sizeof gpu, "%s", field(&r, "id"));
  assert_string_equal(jstr2(json_object_get(r.json, "job"), "tags", "pool"),
                      "gpu");
  atr_tc_res_free(&r);
  /* the daemons are awake: they take an untagged job posted after it */
  create_version(s, file, "plain", NULL, plain);
  version_path(path, sizeof path, plain);
  r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
  version_path(gpu_path, sizeof gpu_path, gpu);
  r = get(s, gpu_path, s->owner_token);
  assert_string_equal(job_status(&r), "pending");
  json_t *job = json_object_get(r.json, "job");
  assert_true(json_is_null(json_object_get(job, "started_at")));
  assert_true(json_is_null(json_object_get(job, "worker_id")));
  atr_tc_res_free(&r);

  static const srv_opts_t gpu_pool = {.delay = "200ms", .tags = "[pool=gpu]"};
  restart(s, SIGTERM, &gpu_pool);
  r = wait_end(s, gpu_path, "succeeded", BUILD_MS);
  assert_int_equal(strlen(jstr2(r.json, "job", "worker_id")), 36);
  atr_tc_res_free(&r);
  /* jobs without tags fit these daemons too */
  char plain2[37];
  create_version(s, file, "plain2", NULL, plain2);
  version_path(path, sizeof path, plain2);
  r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
}

/* ---- 9. concurrency ---------------------------------------------------------------- */

#define CONCURRENT 20

typedef struct creator {
  const srv_t *s;
  const char *template_id;
  char name[16];
  atr_tc_res_t res;
} creator_t;

static void *create_one(void *arg) {
  creator_t *c = arg;
  json_t *body =
      json_pack("{s:s, s:s, s:[{s:s, s:s}]}", "name", c->name, "template_id",
                c->template_id, "rich_parameter_values", "name", "flavor",
                "value", "small");
  c->res = atr_tc_call(c->s->h.port,
                       &(atr_tc_req_t){.method = "POST",
                                       .path = "/api/v2/users/me/workspaces",
                                       .token = c->s->owner_token,
                                       .body = body});
  json_decref(body);
  return NULL;
}

/* Each workspace's build has a worker, ran once, and reached running. */
static void check_claimed_once(const srv_t *s, creator_t *cs) {
  char workers[CONCURRENT][37];
  size_t nworkers = 0;
  for (int i = 0; i < CONCURRENT; i++) {
    char b[37], path[256];
    snprintf(b, sizeof b, "%s", jstr2(cs[i].res.json, "latest_build", "id"));
    wait_build(s, b, "running");
    build_path(path, sizeof path, b);
    atr_tc_res_t r = get(s, path, s->owner_token);
    const char *w = jstr2(r.json, "job", "worker_id");
    assert_int_equal(strlen(w), 36);
    size_t k = 0;
    while (k < nworkers && strcmp(workers[k], w) != 0)
      k++;
    if (k == nworkers && nworkers < CONCURRENT)
      snprintf(workers[nworkers++], 37, "%s", w);
    atr_tc_res_free(&r);
    assert_log_lines(s, path, " taken by ", 1);
    assert_log_lines(s, path, "echo: start done", 1);
  }
  print_message("%d builds ran on %zu daemons\n", CONCURRENT, nworkers);
  assert_true(nworkers >= 1 && nworkers <= 3);
}

static void twenty_workspaces_created_at_once_all_run(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  creator_t cs[CONCURRENT];
  pthread_t th[CONCURRENT];
  for (int i = 0; i < CONCURRENT; i++) {
    cs[i] = (creator_t){.s = s, .template_id = t.id};
    snprintf(cs[i].name, sizeof cs[i].name, "ws-%02d", i);
    assert_int_equal(pthread_create(&th[i], NULL, create_one, &cs[i]), 0);
  }
  for (int i = 0; i < CONCURRENT; i++)
    pthread_join(th[i], NULL);
  for (int i = 0; i < CONCURRENT; i++)
    ASSERT_ANSWER(cs[i].res, 201);
  check_claimed_once(s, cs);
  assert_int_equal(count_workspaces(s, s->owner_token, ""), CONCURRENT);
  for (int i = 0; i < CONCURRENT; i++)
    atr_tc_res_free(&cs[i].res);
}

/* ---- 10. announced jobs ------------------------------------------------------------ */

static void a_new_build_starts_without_waiting_for_a_poll(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b1[37], path[256];
  double created = now_ms();
  new_workspace(s, "quick", &t, VALUES("flavor", "small"), ws, b1);
  build_path(path, sizeof path, b1);
  /* poll_interval is 10 minutes: only the announcement can start it */
  atr_tc_res_t r = get(s, path, s->owner_token);
  json_t *job = json_object_get(r.json, "job");
  while (json_is_null(json_object_get(job, "started_at")) &&
         now_ms() - created < 2000) {
    sleep_ms(5);
    atr_tc_res_free(&r);
    r = get(s, path, s->owner_token);
    ASSERT_ANSWER(r, 200);
    job = json_object_get(r.json, "job");
  }
  double seen = now_ms() - created;
  assert_false(json_is_null(json_object_get(job, "started_at")));
  int64_t latency = time_us(json_object_get(job, "started_at")) -
                    time_us(json_object_get(job, "created_at"));
  print_message("created -> started: %.3f ms on the server, seen by the "
                "client after %.0f ms\n",
                (double)latency / 1000.0, seen);
  assert_true(latency >= 0 && latency < 2000000);
  atr_tc_res_free(&r);
  wait_build(s, b1, "running");
}

/* ---- 11. permissions --------------------------------------------------------------- */

static void member_checks_on_owner_workspace(const srv_t *s, const char *member,
                                             const char *ws, const char *b) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  atr_tc_res_t r = get(s, path, member);
  assert_true(r.status == 403 || r.status == 404);
  atr_tc_res_free(&r);
  r = get(s, "/api/v2/users/owner/workspace/ownerws", member);
  assert_true(r.status == 403 || r.status == 404);
  atr_tc_res_free(&r);
  r = post_build(s, member, ws, "stop", NULL);
  assert_true(r.status == 403 || r.status == 404);
  atr_tc_res_free(&r);
  static const char *const subs[] = {"", "/logs", "/parameters", "/resources"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s%s", b, subs[i]);
    r = get(s, path, member);
    if (r.status != 403 && r.status != 404)
      print_error("member GET %s: %ld %s\n", path, r.status, r.body);
    assert_true(r.status == 403 || r.status == 404);
    atr_tc_res_free(&r);
  }
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/cancel", b);
  r = call(s, "PATCH", path, member, NULL);
  assert_true(r.status == 403 || r.status == 404);
  atr_tc_res_free(&r);
  assert_int_equal(count_builds(s, ws), 1);
}

static void members_build_only_their_own_workspaces(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b[37], file[64], path[256];
  new_workspace(s, "ownerws", &t, VALUES("flavor", "small"), ws, b);
  wait_build(s, b, "running");

  remember(MEMBER_PW);
  ASSERT_STATUS(201,
                call(s, "POST", "/api/v2/users", s->owner_token,
                     json_pack("{s:s, s:s, s:s}", "email", MEMBER_EMAIL,
                               "username", "member", "password", MEMBER_PW)));
  const char *member = login(s, MEMBER_EMAIL, MEMBER_PW);
  member_checks_on_owner_workspace(s, member, ws, b);
  assert_int_equal(count_workspaces(s, member, ""), 0);
  assert_int_equal(count_workspaces(s, member, "?owner=owner"), 0);

  /* not a template author */
  upload_yaml(s, TEMPLATE_YAML, file);
  ASSERT_STATUS(403,
                post_version(s, member, json_pack("{s:s}", "file_id", file)));
  ASSERT_STATUS(403, create_workspace(s, member, "owner", "forowner", t.id,
                                      VALUES("flavor", "small")));

  /* but a user of the template */
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  atr_tc_res_t r = get(s, path, member);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 1);
  atr_tc_res_free(&r);
  r = create_workspace(s, member, "me", "mine", t.id,
                       VALUES("flavor", "large"));
  ASSERT_ANSWER(r, 201);
  assert_string_equal(field(&r, "owner_name"), "member");
  char mb[37];
  snprintf(mb, sizeof mb, "%s", jstr2(r.json, "latest_build", "id"));
  atr_tc_res_free(&r);
  wait_build(s, mb, "running");
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs", mb);
  ASSERT_STATUS(200, get(s, path, member));
  snprintf(path, sizeof path, "/api/v2/organizations/%s/members/me/workspaces",
           s->org_id);
  r = call(s, "POST", path, member,
           json_pack("{s:s, s:s, s:o}", "name", "mine2", "template_id", t.id,
                     "rich_parameter_values", VALUES("flavor", "small")));
  ASSERT_ANSWER(r, 201);
  atr_tc_res_free(&r);
  assert_int_equal(count_workspaces(s, member, ""), 2);
  assert_int_equal(count_workspaces(s, s->owner_token, ""), 3);
}

/* A version whose import failed has no schema: nothing is built from it. */
static void a_failed_version_cannot_be_built(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char file[64], bad[37], path[128], ws[37], b1[37];
  upload_yaml(s, BAD_YAML, file);
  create_version(s, file, "broken", t.id, bad);
  version_path(path, sizeof path, bad);
  atr_tc_res_t r = wait_end(s, path, "failed", BUILD_MS);
  atr_tc_res_free(&r);
  new_workspace(s, "ws1", &t, VALUES("flavor", "small"), ws, b1);
  wait_build(s, b1, "running");
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/builds", ws);
  r = call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s}", "transition", "start", "template_version_id",
                     bad));
  ASSERT_ANSWER(r, 400);
  json_t *v = json_array_get(json_object_get(r.json, "validations"), 0);
  assert_string_equal(jstr(v, "field"), "template_version_id");
  assert_contains(jstr(v, "detail"), "has not succeeded");
  atr_tc_res_free(&r);
  assert_int_equal(count_builds(s, ws), 1);
}

/* The template's own policy: it asks for the large flavor in eu, and tries
 * to lift the deployment's CPU cap by setting cpus to 2 on a request for
 * 8 — which does not undo the deployment's deny. */
static const char TEMPLATE_POLICY_LUA[] =
    "function workspace_create(input)\n"
    "  if input.parameters.new.region == 'eu' then policy.set('flavor', "
    "'large') end\n"
    "  if policy.number(input, 'cpus') > 4 then policy.set('cpus', '2') end\n"
    "end\n";

static size_t policy_audits(const srv_t *s) {
  atr_tc_res_t r = get(s, "/api/v2/audit?limit=1000", s->owner_token);
  size_t n = 0, i;
  json_t *e;
  json_array_foreach(json_object_get(r.json, "audit_logs"), i, e) {
    if (strcmp(jstr(e, "action"), "policy") == 0)
      n++;
  }
  atr_tc_res_free(&r);
  return n;
}

/* A deployment policy and a template policy together deny, warn and set on
 * create and on build; the template cannot loosen the deployment's deny;
 * every such decision is audited; template_push denies an import. */
static void policies_deny_warn_and_set(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char yaml[2048];
  snprintf(yaml, sizeof yaml, "%spolicy: policy.lua\n", TEMPLATE_YAML);
  const char *files[] = {"template.yaml", yaml, "policy.lua",
                         TEMPLATE_POLICY_LUA, NULL};
  char file[64], version[37], path[128];
  upload(s, files, file);
  create_version(s, file, "v1", NULL, version);
  version_path(path, sizeof path, version);
  atr_tc_res_t r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  r = call(
      s, "POST", path, s->owner_token,
      json_pack("{s:s, s:s}", "name", "pol", "template_version_id", version));
  ASSERT_ANSWER(r, 201);
  tmpl_t t;
  snprintf(t.id, sizeof t.id, "%s", field(&r, "id"));
  atr_tc_res_free(&r);

  /* create with 8 CPUs: denied, although the template set 2 */
  r = create_workspace(s, s->owner_token, "me", "big", t.id,
                       VALUES("cpus", "8", "flavor", "small"));
  ASSERT_ANSWER(r, 403);
  assert_string_equal(field(&r, "message"), "Denied by policy.");
  json_t *v = json_array_get(json_object_get(r.json, "validations"), 0);
  assert_string_equal(jstr(v, "field"), "cpus");
  assert_string_equal(jstr(v, "detail"), "at most 4 CPUs here");
  json_t *d = json_array_get(json_object_get(r.json, "denies"), 0);
  assert_string_equal(jstr(d, "policy"), "caps.lua");
  atr_tc_res_free(&r);
  r = get(s, "/api/v2/users/me/workspace/big", s->owner_token);
  assert_int_equal(r.status, 404);
  atr_tc_res_free(&r);

  /* create with 2: allowed, warned, and the template set flavor */
  r = create_workspace(s, s->owner_token, "me", "ok", t.id,
                       VALUES("cpus", "2", "flavor", "small"));
  ASSERT_ANSWER(r, 201);
  json_t *w = json_array_get(json_object_get(r.json, "warnings"), 0);
  assert_string_equal(jstr(w, "message"), "workspaces stop at night");
  assert_string_equal(jstr(w, "policy"), "caps.lua");
  char ws[37], b1[37];
  snprintf(ws, sizeof ws, "%s", field(&r, "id"));
  snprintf(b1, sizeof b1, "%s", jstr2(r.json, "latest_build", "id"));
  atr_tc_res_free(&r);
  wait_build(s, b1, "running");
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/parameters", b1);
  r = get(s, path, s->owner_token);
  size_t i;
  json_t *p;
  bool large = false;
  json_array_foreach(r.json, i, p) {
    if (strcmp(jstr(p, "name"), "flavor") == 0)
      large = strcmp(jstr(p, "value"), "large") == 0;
  }
  assert_true(large);
  atr_tc_res_free(&r);

  /* a build asking for 6: denied by the build hook; nothing queued */
  size_t before = count_builds(s, ws);
  r = post_build(s, s->owner_token, ws, "start", VALUES("cpus", "6"));
  ASSERT_ANSWER(r, 403);
  assert_contains(field(&r, "detail"), "caps.lua: at most 4 CPUs here");
  atr_tc_res_free(&r);
  assert_int_equal(count_builds(s, ws), before);

  /* stop: warned by name */
  r = post_build(s, s->owner_token, ws, "stop", NULL);
  ASSERT_ANSWER(r, 201);
  w = json_array_get(json_object_get(r.json, "warnings"), 0);
  assert_string_equal(jstr(w, "message"), "stopping ok");
  char b2[37];
  snprintf(b2, sizeof b2, "%s", field(&r, "id"));
  atr_tc_res_free(&r);
  wait_build(s, b2, "stopped");

  /* schedule: a weekend autostart is denied, a long autostop capped */
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/autostart", ws);
  r = call(s, "PUT", path, s->owner_token,
           json_pack("{s:s}", "schedule", "30 8 * * 0,6"));
  ASSERT_ANSWER(r, 403);
  assert_contains(field(&r, "detail"), "no autostart at weekends");
  atr_tc_res_free(&r);
  r = call(s, "PUT", path, s->owner_token,
           json_pack("{s:s}", "schedule", "CRON_TZ=Europe/Paris 30 8 * * 1-5"));
  ASSERT_ANSWER(r, 200);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s/ttl", ws);
  r = call(s, "PUT", path, s->owner_token,
           json_pack("{s:I}", "ttl_ms", (json_int_t)36000000));
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "ttl_ms")),
                   28800000);
  w = json_array_get(json_object_get(r.json, "warnings"), 0);
  assert_string_equal(jstr(w, "message"), "autostop capped at 8 hours");
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws);
  r = get(s, path, s->owner_token);
  assert_int_equal(json_integer_value(json_object_get(r.json, "ttl_ms")),
                   28800000);
  assert_string_equal(jstr(r.json, "autostart_schedule"),
                      "CRON_TZ=Europe/Paris 30 8 * * 1-5");
  atr_tc_res_free(&r);

  /* deny (create), warn+set (create), deny (build), warn (stop), deny
   * (autostart), warn+set (ttl) */
  assert_int_equal(policy_audits(s), 6);

  /* template_push: the deployment refuses a parameter name */
  snprintf(yaml, sizeof yaml,
           "name: bad\nprovisioner: echo\nparameters:\n"
           "  - name: forbidden\n    type: string\n    default: x\n");
  upload_yaml(s, yaml, file);
  create_version(s, file, "v2", NULL, version);
  version_path(path, sizeof path, version);
  r = wait_end(s, path, "failed", BUILD_MS);
  assert_contains(jstr(json_object_get(r.json, "job"), "error"),
                  "no parameter may be called forbidden");
  atr_tc_res_free(&r);
}

static void write_policy(const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/caps.lua", policy_dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
}

/* SIGHUP reloads the deployment policies; a file that does not compile
 * keeps the running ones and the log says why. */
static void policies_reload_on_sighup(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  atr_tc_res_t r = create_workspace(s, s->owner_token, "me", "a", t.id,
                                    VALUES("cpus", "8", "flavor", "small"));
  ASSERT_ANSWER(r, 403);
  atr_tc_res_free(&r);

  write_policy("function workspace_create(input)\n  policy.deny('x' end\n");
  kill(s->h.pid, SIGHUP);
  assert_true(atr_harness_wait_log(
      &s->h, "reload failed, the previous policies stay in force", 5000));
  assert_true(atr_harness_wait_log(&s->h, "caps.lua:2:", 0));
  r = create_workspace(s, s->owner_token, "me", "a", t.id,
                       VALUES("cpus", "8", "flavor", "small"));
  ASSERT_ANSWER(r, 403);
  assert_contains(field(&r, "detail"), "at most 4 CPUs here");
  atr_tc_res_free(&r);

  write_policy("function workspace_create(input)\n"
               "  policy.deny('closed for maintenance')\nend\n");
  kill(s->h.pid, SIGHUP);
  /* the new policy answers within a few seconds */
  bool changed = false;
  for (int i = 0; i < 100 && !changed; i++) {
    char name[16]; /* a new name each time: an early try may succeed */
    snprintf(name, sizeof name, "b%d", i);
    r = create_workspace(s, s->owner_token, "me", name, t.id,
                         VALUES("cpus", "2", "flavor", "small"));
    changed = r.status == 403 &&
              strstr(field(&r, "detail"), "closed for maintenance") != NULL;
    atr_tc_res_free(&r);
    if (!changed)
      usleep(50000);
  }
  assert_true(changed);
  write_policy(CAPS_LUA);
}

int main(int argc, char **argv) {
  if (argc >= 2 && strcmp(argv[1], "sqlite") == 0) {
    on_postgres = false;
  } else if (argc >= 3 && strcmp(argv[1], "postgres") == 0) {
    char path[1024];
    snprintf(path, sizeof path, "%s/dsn", argv[2]);
    char *dsn = read_file(path);
    if (!dsn || !*dsn) {
      fprintf(stderr, "test_api_builds: no DSN in %s\n", path);
      free(dsn);
      return 1;
    }
    snprintf(pg_dsn, sizeof pg_dsn, "%s", dsn);
    free(dsn);
    on_postgres = true;
  } else {
    fprintf(stderr, "usage: test_api_builds sqlite | postgres PGDIR\n");
    return 2;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(f) cmocka_unit_test_setup_teardown(f, server_up, server_down)
#define T_WITH(f, up) cmocka_unit_test_setup_teardown(f, up, server_down)
#define T_WITH2(f, up, down) cmocka_unit_test_setup_teardown(f, up, down)
  const struct CMUnitTest tests[] = {
      T(a_template_is_imported_created_updated_and_promoted),
      T(new_jobs_are_answered_as_pending),
      T(a_bad_manifest_fails_its_import_naming_each_problem),
      T(a_version_needs_an_enabled_provisioner_and_a_manifest),
      T(a_workspace_is_built_stopped_started_and_deleted),
      T(a_sensitive_value_is_never_shown),
      T_WITH(build_logs_can_be_followed_as_they_are_written, server_up_follow),
      T_WITH(a_running_build_is_canceled_and_the_next_one_works,
             server_up_slow),
      T_WITH(a_pending_import_is_canceled_at_once, server_up_no_daemons),
      T_WITH(a_dead_daemons_job_is_reaped, server_up_slow),
      T(a_tagged_job_waits_for_a_daemon_with_its_tags),
      T(twenty_workspaces_created_at_once_all_run),
      T(a_new_build_starts_without_waiting_for_a_poll),
      T(members_build_only_their_own_workspaces),
      T_WITH(a_long_log_is_cut_at_the_cap, server_up_small_logs),
      T(a_failed_version_cannot_be_built),
      T_WITH2(policies_deny_warn_and_set, server_up_policies,
              server_down_policies),
      T_WITH2(policies_reload_on_sighup, server_up_policies,
              server_down_policies),
  };
#undef T
#undef T_WITH
#undef T_WITH2
  int failed = cmocka_run_group_tests_name(on_postgres ? "api_builds_postgres"
                                                       : "api_builds_sqlite",
                                           tests, NULL, NULL);
  curl_global_cleanup();
  return failed;
}
