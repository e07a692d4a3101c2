/* tests/bench/agents/setup.c — the server the agents connect to, its
 * template and workspaces, and what the server says about itself; see
 * bench_agents.h. */
#include "bench_agents.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench_tar.h"
#include "client.h"

#define PASSWORD "Lantern-Quince-39"
#define SETUP_S 600    /* the whole set-up */
#define IN_FLIGHT 64   /* workspaces being made at once */
#define POLL_MS 200    /* between looks at one build */
#define MAX_TOKEN 256  /* an agent token is 50 characters */
#define WS_NAME_MAX 32 /* "bench-<i>" */

/* One agent: metadata, no scripts (docs/design/agent.md §6). */
static const char TEMPLATE_YAML[] = "name: bench-agents\n"
                                    "provisioner: echo\n"
                                    "agent:\n"
                                    "  metadata:\n"
                                    "    - key: load\n"
                                    "      display_name: Load\n"
                                    "      script: cat /proc/loadavg\n"
                                    "      interval: 10s\n"
                                    "      timeout: 1s\n";

static double setup_deadline;

static void fail(const char *step, const atr_tc_res_t *r) {
  fprintf(stderr, "bench_agents: %s", step);
  if (r)
    fprintf(stderr, ": %ld %.300s", r->status,
            r->status ? r->body : "(no answer)");
  fputc('\n', stderr);
}

static bool late(void) {
  return bench_now_s() > setup_deadline;
}

static atr_tc_res_t call(const bench_server_t *s, const char *method,
                         const char *path, json_t *body) {
  atr_tc_req_t req = {
      .method = method, .path = path, .token = s->owner_token, .body = body};
  atr_tc_res_t r = atr_tc_call(s->h.port, &req);
  json_decref(body);
  return r;
}

/* ---- the server ---------------------------------------------------------------- */

/* The backend from --postgres: the ctest fixture's directory (its `dsn`
 * file) or a DSN, written to such a file for harness_db.c. */
static int choose_backend(const char *postgres, char *tmp, size_t size) {
  if (!postgres)
    return 0;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s", postgres);
  struct stat st;
  if (stat(postgres, &st) != 0 || !S_ISDIR(st.st_mode)) {
    snprintf(tmp, size, "/tmp/atrium-bench-pg-XXXXXX");
    if (!mkdtemp(tmp))
      return -1;
    snprintf(dir, sizeof dir, "%s/dsn", tmp);
    FILE *f = fopen(dir, "w");
    if (!f)
      return -1;
    fprintf(f, "%s\n", postgres);
    fclose(f);
    snprintf(dir, sizeof dir, "%s", tmp);
  }
  char *argv[] = {"bench_agents", "postgres", dir, NULL};
  if (atr_harness_backend(3, argv, "--postgres DSN|DIR") < 0)
    return -1;
  /* The owner is made with POST /users/first: the database starts empty. */
  fprintf(stderr, "bench_agents: PostgreSQL: dropping and making the public "
                  "schema again\n");
  return atr_harness_reset_db();
}

static char *config_text(const bench_server_t *s) {
  char *storage = atr_harness_storage_yaml(NULL);
  char *text = NULL;
  /* warn: a line per request is not what is measured; rate limits would
   * turn the load away */
  int n =
      asprintf(&text,
               "data_dir: data\n"
               "access_url: \"%s\"\n"
               "plugin_dirs: [%s]\n"
               "log:\n  level: warn\n"
               "http:\n"
               "  rate_limit:\n    login: 0\n    api: 0\n"
               "provisioner:\n  daemons: 8\n"
               "plugins:\n%s"
               "  auth_password:\n    enabled: true\n"
               "    memory_cost: 8MiB\n    time_cost: 1\n"
               "  provisioner_echo:\n    enabled: true\n"
               "    agent_env_dir: \"%s\"\n",
               s->url, ATR_TEST_PLUGIN_DIR, storage ? storage : "", s->env_dir);
  free(storage);
  return n < 0 ? NULL : text;
}

static int sign_in(bench_server_t *s) {
  atr_tc_res_t r =
      call(s, "POST", "/api/v2/users/first",
           json_pack("{s:s, s:s, s:s}", "email", "bench@example.com",
                     "username", "bench", "password", PASSWORD));
  if (r.status != 201)
    fail("POST /api/v2/users/first", &r);
  atr_tc_res_free(&r);
  r = call(s, "POST", "/api/v2/users/login",
           json_pack("{s:s, s:s}", "email", "bench@example.com", "password",
                     PASSWORD));
  const char *t = r.status == 201 ? atr_tc_str(&r, "session_token") : NULL;
  s->owner_token = t ? strdup(t) : NULL;
  if (!s->owner_token)
    fail("POST /api/v2/users/login", &r);
  atr_tc_res_free(&r);
  return s->owner_token ? 0 : -1;
}

/* ---- the template ------------------------------------------------------------- */

/* template.yaml and main.txt as a tar.gz, by tar(1); malloc'd. */
static char *pack(const char *root, size_t *len) {
  char dir[400], path[460], archive[460];
  snprintf(dir, sizeof dir, "%s/template", root);
  snprintf(archive, sizeof archive, "%s/template.tar.gz", root);
  if (mkdir(dir, 0700) != 0)
    return NULL;
  const char *files[][2] = {{"template.yaml", TEMPLATE_YAML},
                            {"main.txt", "echo files\n"}};
  for (size_t i = 0; i < 2; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i][0]);
    FILE *f = fopen(path, "w");
    if (!f || fputs(files[i][1], f) < 0 || fclose(f) != 0)
      return NULL;
  }
  return bench_tar_gz(dir, archive, len);
}

/* GET path until its job has ended (or the set-up's time is up); whether
 * it succeeded. The last answer goes to *last when last is not NULL. */
static bool wait_job(const bench_server_t *s, const char *path,
                     atr_tc_res_t *last) {
  for (;;) {
    atr_tc_res_t r = call(s, "GET", path, NULL);
    json_t *job = json_object_get(r.json, "job");
    if (!job) /* a workspace: its latest build's job */
      job = json_object_get(json_object_get(r.json, "latest_build"), "job");
    const char *st = json_string_value(json_object_get(job, "status"));
    bool ended =
        st && (strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
               strcmp(st, "canceled") == 0);
    if (ended || late()) {
      bool ok = st && strcmp(st, "succeeded") == 0;
      if (!ok)
        fail(late() ? "the set-up ran out of time" : "a job failed", &r);
      if (last)
        *last = r;
      else
        atr_tc_res_free(&r);
      return ok;
    }
    atr_tc_res_free(&r);
    atr_harness_sleep_ms(POLL_MS);
  }
}

/* Upload, import and make the template; its id (malloc'd) or NULL. */
static char *push_template(const bench_server_t *s) {
  size_t len = 0;
  char *tgz = pack(s->h.dir, &len);
  if (!tgz) {
    fail("cannot pack the template", NULL);
    return NULL;
  }
  atr_tc_req_t up = {.method = "POST",
                     .path = "/api/v2/files",
                     .token = s->owner_token,
                     .raw = tgz,
                     .raw_len = len,
                     .content_type = "application/gzip"};
  atr_tc_res_t r = atr_tc_call(s->h.port, &up);
  free(tgz);
  char file[80] = "", org[64] = "", version[64] = "", path[256];
  snprintf(file, sizeof file, "%s", atr_tc_str(&r, "hash") ?: "");
  atr_tc_res_free(&r);
  r = call(s, "GET", "/api/v2/organizations", NULL);
  snprintf(org, sizeof org, "%s",
           json_string_value(json_object_get(json_array_get(r.json, 0), "id"))
               ?: "");
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templateversions", org);
  r = call(s, "POST", path, json_pack("{s:s}", "file_id", file));
  snprintf(version, sizeof version, "%s", atr_tc_str(&r, "id") ?: "");
  if (!version[0])
    fail("POST a template version", &r);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/templateversions/%s", version);
  if (!version[0] || !wait_job(s, path, NULL))
    return NULL;
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", org);
  r = call(s, "POST", path,
           json_pack("{s:s, s:s}", "name", "bench-agents",
                     "template_version_id", version));
  char *id = atr_tc_str(&r, "id") ? strdup(atr_tc_str(&r, "id")) : NULL;
  if (!id)
    fail("POST a template", &r);
  atr_tc_res_free(&r);
  return id;
}

/* ---- workspaces and their tokens ------------------------------------------------ */

typedef struct maker {
  bench_server_t *s;
  const char *template_id;
  atomic_int next;
  atomic_int failed;
} maker_t;

/* The value of ATRIUM_AGENT_TOKEN= in the echo's env file; malloc'd. */
static char *read_token(const char *dir, const char *ws_id) {
  char path[512], line[MAX_TOKEN + 64];
  snprintf(path, sizeof path, "%s/%s.env", dir, ws_id);
  FILE *f = fopen(path, "r");
  char *token = NULL;
  while (f && !token && fgets(line, sizeof line, f)) {
    static const char key[] = "ATRIUM_AGENT_TOKEN=";
    if (strncmp(line, key, sizeof key - 1) != 0)
      continue;
    char *v = line + sizeof key - 1;
    v[strcspn(v, "\r\n")] = '\0';
    size_t n = strlen(v);
    if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
      v[n - 1] = '\0';
      v++;
    }
    token = *v ? strdup(v) : NULL;
  }
  if (f)
    fclose(f);
  return token;
}

/* Make workspace i, wait for its build, read its token. */
static bool make_one(maker_t *m, int i) {
  bench_server_t *s = m->s;
  char name[WS_NAME_MAX], path[128], ws_id[64] = "";
  snprintf(name, sizeof name, "bench-%d", i);
  atr_tc_res_t r =
      call(s, "POST", "/api/v2/users/me/workspaces",
           json_pack("{s:s, s:s, s:[]}", "name", name, "template_id",
                     m->template_id, "rich_parameter_values"));
  snprintf(ws_id, sizeof ws_id, "%s", atr_tc_str(&r, "id") ?: "");
  bool made = r.status == 201 && ws_id[0];
  if (!made)
    fail("POST /api/v2/users/me/workspaces", &r);
  atr_tc_res_free(&r);
  if (!made)
    return false;
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws_id);
  if (!wait_job(s, path, NULL))
    return false;
  s->tokens[i] = read_token(s->env_dir, ws_id);
  if (!s->tokens[i] && !atomic_exchange(&m->failed, 1))
    fprintf(stderr,
            "bench_agents: no ATRIUM_AGENT_TOKEN in %s/%s.env (is the echo's "
            "agent_env_dir there?)\n",
            s->env_dir, ws_id);
  return s->tokens[i] != NULL;
}

static void *maker_thread(void *arg) {
  maker_t *m = arg;
  for (;;) {
    int i = atomic_fetch_add(&m->next, 1);
    if (i >= m->s->n || atomic_load(&m->failed) || late())
      return NULL;
    if (!make_one(m, i))
      atomic_store(&m->failed, 1);
  }
}

static int make_workspaces(bench_server_t *s, const char *template_id) {
  maker_t m = {.s = s, .template_id = template_id};
  pthread_t th[IN_FLIGHT];
  int started = 0;
  double t0 = bench_now_s();
  for (; started < IN_FLIGHT && started < s->n; started++)
    if (pthread_create(&th[started], NULL, maker_thread, &m) != 0)
      break;
  for (int i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  int made = 0;
  for (int i = 0; i < s->n; i++)
    made += s->tokens[i] != NULL;
  printf("setup: %d workspaces built, their tokens read, in %.1f s\n", made,
         bench_now_s() - t0);
  return made == s->n ? 0 : -1;
}

int bench_setup(bench_server_t *s, const bench_opts_t *o) {
  memset(s, 0, sizeof *s);
  setup_deadline = bench_now_s() + SETUP_S;
  char pg_tmp[64] = "";
  if (choose_backend(o->postgres, pg_tmp, sizeof pg_tmp) != 0) {
    fail("cannot use the PostgreSQL database", NULL);
    return -1;
  }
  atr_harness_init(&s->h, NULL);
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", s->h.port);
  snprintf(s->env_dir, sizeof s->env_dir, "%s/agent-env", s->h.dir);
  if (mkdir(s->env_dir, 0700) != 0)
    return -1;
  char *cfg = config_text(s);
  atr_harness_write_config(&s->h, cfg);
  free(cfg);
  atr_harness_start(&s->h, NULL, NULL);
  s->n = o->agents;
  s->tokens = calloc((size_t)s->n, sizeof *s->tokens);
  if (!s->tokens || sign_in(s) != 0)
    return -1;
  char *template_id = push_template(s);
  int rc = template_id ? make_workspaces(s, template_id) : -1;
  free(template_id);
  if (pg_tmp[0]) {
    char path[128];
    snprintf(path, sizeof path, "%s/dsn", pg_tmp);
    unlink(path);
    rmdir(pg_tmp);
  }
  return rc;
}

int bench_restart(bench_server_t *s) {
  if (s->h.pid <= 0 || kill(s->h.pid, SIGKILL) != 0)
    return -1;
  atr_harness_wait(&s->h, 10000);
  atr_harness_start(&s->h, NULL, NULL);
  return 0;
}

void bench_teardown(bench_server_t *s) {
  if (s->h.pid > 0) {
    double t0 = atr_harness_now_ms();
    int st = atr_harness_stop(&s->h, 30000);
    printf("shutdown: SIGTERM to exit in %.2f s (status %d)\n",
           (atr_harness_now_ms() - t0) / 1000, st);
    if (st != 0) {
      fprintf(stderr, "bench_agents: the server did not stop cleanly\n");
      atr_harness_print_log_tail(&s->h, 15);
    }
  }
  for (int i = 0; s->tokens && i < s->n; i++)
    free(s->tokens[i]);
  free(s->tokens);
  free(s->owner_token);
  atr_harness_cleanup(&s->h); /* env_dir is inside */
}

/* ---- what the server says ---------------------------------------------------- */

/* The samples of metric `name` in GET /api/v2/debug/metrics (a new
 * reference), or NULL. */
static json_t *metric_samples(const bench_server_t *s, const char *name) {
  atr_tc_res_t r = call(s, "GET", "/api/v2/debug/metrics", NULL);
  json_t *found = NULL, *family;
  size_t i;
  json_array_foreach(json_object_get(r.json, "metrics"), i, family) {
    const char *n = json_string_value(json_object_get(family, "name"));
    if (n && strcmp(n, name) == 0) {
      found = json_incref(json_object_get(family, "samples"));
      break;
    }
  }
  atr_tc_res_free(&r);
  return found;
}

double bench_server_metric(const bench_server_t *s, const char *name) {
  json_t *samples = metric_samples(s, name), *sample;
  if (!samples)
    return -1;
  double sum = 0;
  size_t i;
  json_array_foreach(samples, i, sample) {
    sum += json_number_value(json_object_get(sample, "value"));
  }
  json_decref(samples);
  return sum;
}

int64_t bench_server_connected(const bench_server_t *s) {
  /* sampled on the loop; atrium_agent_sessions lags it by up to 1 s */
  double held = bench_server_metric(s, "atrium_http_sessions_open");
  if (held < 0)
    held = bench_server_metric(s, "atrium_agent_sessions");
  if (held >= 0)
    return (int64_t)held;
  json_t *samples = metric_samples(s, "atrium_agents"), *sample;
  int64_t n = -1;
  size_t i;
  json_array_foreach(samples, i, sample) {
    const char *st = json_string_value(
        json_object_get(json_object_get(sample, "labels"), "status"));
    if (st && strcmp(st, "connected") == 0)
      n = (int64_t)json_number_value(json_object_get(sample, "value"));
  }
  json_decref(samples);
  return n;
}

long bench_server_rss_kb(const bench_server_t *s) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)s->h.pid);
  FILE *f = fopen(path, "r");
  long kb = -1;
  while (f && fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  if (f)
    fclose(f);
  return kb;
}
