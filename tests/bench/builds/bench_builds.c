/* tests/bench/builds — what atrium adds to a workspace build: N workspaces
 * created at once through the real `atrium server` (SQLite, the Terraform
 * provisioner, the terraform-local starter template), and in the same run
 * the same `terraform init` + `apply` run directly, N at a time with the
 * same concurrency as the daemons.
 *
 *   bench_builds [--workspaces N] [--daemons D] [--terraform PATH]
 *
 * Prints, per workspace, from the API call: when a daemon took the job
 * (job.started_at), when the provisioner's first log line came (the
 * provisioner starting), and when the build ended (job.completed_at), as
 * p50/p99; the total wall time; and the direct Terraform runs' p50/p99
 * and wall time beside them.
 *
 * Figures only: nothing is asserted on timing. Exit 1 when a build did not
 * succeed or the set-up failed, 77 when terraform is missing. Bounded: N
 * at most 100, every build must end within 5 minutes, and every request
 * goes to 127.0.0.1. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_tar.h"
#include "client.h"
#include "harness.h"

#define MAX_WORKSPACES 100
#define BUILD_DEADLINE_S 300
#define PASSWORD "Bramble-Lantern-84"

typedef struct options {
  int workspaces;
  int daemons;
  const char *terraform;
} options_t;

typedef struct ws {
  int port;
  const char *token;
  const char *template_id;
  int index;
  int64_t called_us; /* just before the create call */
  int64_t started_us, provisioner_us, completed_us;
  char status[16];
  bool ok;
} ws_t;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void fail(const char *what, const atr_tc_res_t *r) {
  fprintf(stderr, "bench_builds: %s", what);
  if (r)
    fprintf(stderr, " (HTTP %ld: %s)", r->status, r->body ? r->body : "");
  fputc('\n', stderr);
}

/* "2026-11-26T08:56:11.170172Z" → microseconds since the epoch; 0 for
 * null or anything else. */
static int64_t parse_time(json_t *j) {
  const char *s = json_string_value(j);
  struct tm tm = {0};
  long us = 0;
  if (!s || sscanf(s, "%d-%d-%dT%d:%d:%d.%6ldZ", &tm.tm_year, &tm.tm_mon,
                   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &us) != 7)
    return 0;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return (int64_t)timegm(&tm) * 1000000 + us;
}

static atr_tc_res_t call(int port, const char *token, const char *method,
                         const char *path, json_t *body) {
  atr_tc_req_t req = {
      .method = method, .path = path, .token = token, .body = body};
  atr_tc_res_t r = atr_tc_call(port, &req);
  json_decref(body);
  return r;
}

/* ---- set-up ------------------------------------------------------------------ */

static char *config_text(int daemons, const char *terraform) {
  char *text = NULL;
  if (asprintf(&text,
               "data_dir: data\n"
               "plugin_dirs: [%s]\n"
               "http:\n  threads: 16\n"
               "  rate_limit:\n    login: 0\n    api: 0\n"
               "provisioner:\n  daemons: %d\n"
               "plugins:\n"
               "  storage_sqlite:\n    enabled: true\n"
               "  auth_password:\n    enabled: true\n"
               "    memory_cost: 8MiB\n    time_cost: 1\n"
               "  provisioner_terraform:\n    enabled: true\n"
               "    binary: %s\n",
               ATR_TEST_PLUGIN_DIR, daemons, terraform) < 0)
    return NULL;
  return text;
}

static char *sign_in(int port) {
  atr_tc_res_t r =
      call(port, NULL, "POST", "/api/v2/users/first",
           json_pack("{s:s, s:s, s:s}", "email", "bench@example.com",
                     "username", "bench", "password", PASSWORD));
  atr_tc_res_free(&r);
  r = call(port, NULL, "POST", "/api/v2/users/login",
           json_pack("{s:s, s:s}", "email", "bench@example.com", "password",
                     PASSWORD));
  const char *t = atr_tc_str(&r, "session_token");
  char *token = t ? strdup(t) : NULL;
  if (!token)
    fail("cannot sign in", &r);
  atr_tc_res_free(&r);
  return token;
}

/* The template directory as a tar.gz, by tar(1). */
static char *pack(const char *dir, size_t *len) {
  char path[] = "/tmp/atrium-bench-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    return NULL;
  close(fd);
  char *data = bench_tar_gz(dir, path, len);
  unlink(path);
  return data;
}

/* Upload, import, make the template; its id (malloc'd) or NULL. */
static char *push_template(int port, const char *token) {
  size_t len = 0;
  char *tgz = pack(ATR_TEST_TEMPLATE_DIR, &len);
  if (!tgz) {
    fail("cannot pack " ATR_TEST_TEMPLATE_DIR, NULL);
    return NULL;
  }
  atr_tc_req_t up = {.method = "POST",
                     .path = "/api/v2/files",
                     .token = token,
                     .raw = tgz,
                     .raw_len = len,
                     .content_type = "application/gzip"};
  atr_tc_res_t r = atr_tc_call(port, &up);
  free(tgz);
  char file[64] = "", org[64] = "", version[64] = "";
  snprintf(file, sizeof file, "%s",
           atr_tc_str(&r, "hash") ? atr_tc_str(&r, "hash") : "");
  atr_tc_res_free(&r);
  r = call(port, token, "GET", "/api/v2/organizations", NULL);
  snprintf(org, sizeof org, "%s",
           json_string_value(json_object_get(json_array_get(r.json, 0), "id"))
               ?: "");
  atr_tc_res_free(&r);
  char path[256];
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templateversions", org);
  r = call(port, token, "POST", path, json_pack("{s:s}", "file_id", file));
  snprintf(version, sizeof version, "%s",
           atr_tc_str(&r, "id") ? atr_tc_str(&r, "id") : "");
  atr_tc_res_free(&r);
  /* The import runs terraform init; wait for it. */
  snprintf(path, sizeof path, "/api/v2/templateversions/%s", version);
  const char *status = "";
  for (int i = 0; i < 1200; i++) {
    r = call(port, token, "GET", path, NULL);
    status = json_string_value(
        json_object_get(json_object_get(r.json, "job"), "status"));
    bool done = status && (strcmp(status, "succeeded") == 0 ||
                           strcmp(status, "failed") == 0);
    bool ok = status && strcmp(status, "succeeded") == 0;
    if (done && !ok)
      fail("the template import failed", &r);
    atr_tc_res_free(&r);
    if (done && !ok)
      return NULL;
    if (done)
      break;
    usleep(50000);
  }
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", org);
  r = call(
      port, token, "POST", path,
      json_pack("{s:s, s:s}", "name", "bench", "template_version_id", version));
  char *id = atr_tc_str(&r, "id") ? strdup(atr_tc_str(&r, "id")) : NULL;
  if (!id)
    fail("cannot create the template", &r);
  atr_tc_res_free(&r);
  return id;
}

/* ---- through atrium ------------------------------------------------------------ */

/* The first line the provisioner (not atrium) wrote. */
static int64_t first_provisioner_line(ws_t *w, const char *build_id) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs", build_id);
  atr_tc_res_t r = call(w->port, w->token, "GET", path, NULL);
  int64_t t = 0;
  size_t i;
  json_t *line;
  json_array_foreach(r.json, i, line) {
    const char *src = json_string_value(json_object_get(line, "log_source"));
    if (src && strcmp(src, "provisioner") == 0) {
      t = parse_time(json_object_get(line, "created_at"));
      break;
    }
  }
  atr_tc_res_free(&r);
  return t;
}

static void *create_one(void *arg) {
  ws_t *w = arg;
  char name[32];
  snprintf(name, sizeof name, "bench-%d", w->index);
  json_t *body = json_pack("{s:s, s:s, s:[]}", "name", name, "template_id",
                           w->template_id, "rich_parameter_values");
  w->called_us = now_us();
  atr_tc_res_t r =
      call(w->port, w->token, "POST", "/api/v2/users/me/workspaces", body);
  char ws_id[64] = "";
  snprintf(ws_id, sizeof ws_id, "%s",
           atr_tc_str(&r, "id") ? atr_tc_str(&r, "id") : "");
  if (r.status != 201)
    fail("cannot create a workspace", &r);
  atr_tc_res_free(&r);
  char path[256], build[64] = "";
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", ws_id);
  int64_t deadline = now_us() + (int64_t)BUILD_DEADLINE_S * 1000000;
  while (ws_id[0] && now_us() < deadline) {
    r = call(w->port, w->token, "GET", path, NULL);
    json_t *b = json_object_get(r.json, "latest_build");
    json_t *job = json_object_get(b, "job");
    const char *st = json_string_value(json_object_get(job, "status"));
    snprintf(w->status, sizeof w->status, "%s", st ? st : "?");
    snprintf(build, sizeof build, "%s",
             json_string_value(json_object_get(b, "id")) ?: "");
    w->started_us = parse_time(json_object_get(job, "started_at"));
    w->completed_us = parse_time(json_object_get(job, "completed_at"));
    atr_tc_res_free(&r);
    if (w->completed_us)
      break;
    usleep(20000);
  }
  w->ok = strcmp(w->status, "succeeded") == 0;
  if (w->ok)
    w->provisioner_us = first_provisioner_line(w, build);
  return NULL;
}

/* ---- terraform directly ------------------------------------------------------ */

typedef struct direct {
  const char *terraform;
  const char *root;
  int index;
  int64_t ms;
  bool ok;
} direct_t;

static void *direct_one(void *arg) {
  direct_t *d = arg;
  char dir[512], cmd[4096];
  snprintf(dir, sizeof dir, "%s/direct-%d", d->root, d->index);
  /* The same files atrium unpacks, the same init and apply (atrium plans
   * to a file first, which direct `apply -auto-approve` also does). */
  /* The values atrium would write to atrium.auto.tfvars.json. */
  snprintf(cmd, sizeof cmd,
           "set -e; mkdir -p '%s/w'; cp -r '%s'/. '%s/w'; cd '%s/w'; "
           "printf '{\"root\": \"%s/roots\", \"greeting\": \"hello\", "
           "\"cpus\": 2, \"secret_token\": \"\", \"sleep_seconds\": 0, "
           "\"fail\": false, \"atrium_owner_name\": \"bench\", "
           "\"atrium_workspace_name\": \"direct-%d\", "
           "\"atrium_workspace_id\": \"direct-%d\", "
           "\"atrium_transition\": \"start\"}' > direct.auto.tfvars.json; "
           "export TF_IN_AUTOMATION=1 TF_INPUT=0 CHECKPOINT_DISABLE=1; "
           "'%s' init -input=false -no-color >/dev/null; "
           "'%s' apply -input=false -auto-approve -no-color >/dev/null",
           dir, ATR_TEST_TEMPLATE_DIR, dir, dir, dir, d->index, d->index,
           d->terraform, d->terraform);
  int64_t t0 = now_us();
  d->ok = system(cmd) == 0;
  d->ms = (now_us() - t0) / 1000;
  return NULL;
}

/* ---- figures ------------------------------------------------------------------ */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

static void percentiles(int64_t *v, int n, double *p50, double *p99) {
  qsort(v, (size_t)n, sizeof *v, cmp_i64);
  *p50 = (double)v[(n - 1) / 2];
  *p99 = (double)v[(n * 99 + 99) / 100 - 1];
}

static void row(const char *what, int64_t *v, int n) {
  double p50, p99;
  percentiles(v, n, &p50, &p99);
  printf("%-44s %10.1f %10.1f\n", what, p50, p99);
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_builds [--workspaces N (1..%d)] "
          "[--daemons D (1..64)] [--terraform PATH]\n",
          MAX_WORKSPACES);
}

static int parse_options(int argc, char **argv, options_t *o) {
  *o = (options_t){
      .workspaces = 10, .daemons = 3, .terraform = "/usr/local/bin/terraform"};
  for (int i = 1; i + 1 < argc + 1; i += 2) {
    if (i + 1 >= argc) {
      usage();
      return -1;
    }
    const char *flag = argv[i], *value = argv[i + 1];
    long n = strtol(value, NULL, 10);
    if (strcmp(flag, "--workspaces") == 0 && n >= 1 && n <= MAX_WORKSPACES)
      o->workspaces = (int)n;
    else if (strcmp(flag, "--daemons") == 0 && n >= 1 && n <= 64)
      o->daemons = (int)n;
    else if (strcmp(flag, "--terraform") == 0)
      o->terraform = value;
    else {
      usage();
      return -1;
    }
  }
  return 0;
}

static bool run_atrium(const options_t *o, const char *root, int64_t *wall) {
  /* The template's root is the operator's (TF_VAR_root), not a parameter;
   * builds may run as the build user, who must be able to make
   * <root>/<owner>/<workspace> in it. */
  setenv("TF_VAR_root", root, 1);
  chmod(root, 01777);
  char *cfg = config_text(o->daemons, o->terraform);
  atr_harness_t h;
  atr_harness_init(&h, cfg);
  free(cfg);
  atr_harness_start(&h, NULL, NULL);
  char *token = sign_in(h.port);
  char *template_id = token ? push_template(h.port, token) : NULL;
  bool ok = template_id != NULL;
  int n = o->workspaces;
  ws_t *ws = calloc((size_t)n, sizeof *ws);
  pthread_t *th = calloc((size_t)n, sizeof *th);
  int64_t t0 = now_us();
  for (int i = 0; ok && i < n; i++) {
    ws[i] = (ws_t){
        .port = h.port, .token = token, .template_id = template_id, .index = i};
    pthread_create(&th[i], NULL, create_one, &ws[i]);
  }
  for (int i = 0; ok && i < n; i++)
    pthread_join(th[i], NULL);
  *wall = (now_us() - t0) / 1000;
  int64_t *claim = calloc((size_t)n, sizeof *claim);
  int64_t *prov = calloc((size_t)n, sizeof *prov);
  int64_t *total = calloc((size_t)n, sizeof *total);
  for (int i = 0; ok && i < n; i++) {
    if (!ws[i].ok) {
      fprintf(stderr, "bench_builds: workspace %d ended %s\n", i, ws[i].status);
      ok = false;
      break;
    }
    claim[i] = (ws[i].started_us - ws[i].called_us) / 1000;
    prov[i] = (ws[i].provisioner_us - ws[i].called_us) / 1000;
    total[i] = (ws[i].completed_us - ws[i].called_us) / 1000;
  }
  if (ok) {
    printf("%-44s %10s %10s\n", "through atrium (ms from the API call)", "p50",
           "p99");
    row("  a daemon takes the job", claim, n);
    row("  the provisioner starts (its first line)", prov, n);
    row("  the build ends", total, n);
  }
  free(claim);
  free(prov);
  free(total);
  free(ws);
  free(th);
  free(template_id);
  free(token);
  kill(h.pid, SIGTERM);
  atr_harness_wait(&h, 20000);
  atr_harness_cleanup(&h);
  return ok;
}

static bool run_direct(const options_t *o, const char *root, int64_t *wall) {
  int n = o->workspaces;
  direct_t *d = calloc((size_t)n, sizeof *d);
  pthread_t *th = calloc((size_t)n, sizeof *th);
  int64_t *ms = calloc((size_t)n, sizeof *ms);
  int64_t t0 = now_us();
  bool ok = true;
  /* As many at once as atrium has daemons. */
  for (int first = 0; first < n; first += o->daemons) {
    int last = first + o->daemons < n ? first + o->daemons : n;
    for (int i = first; i < last; i++) {
      d[i] = (direct_t){.terraform = o->terraform, .root = root, .index = i};
      pthread_create(&th[i], NULL, direct_one, &d[i]);
    }
    for (int i = first; i < last; i++) {
      pthread_join(th[i], NULL);
      ok = ok && d[i].ok;
      ms[i] = d[i].ms;
    }
  }
  *wall = (now_us() - t0) / 1000;
  if (ok)
    row("terraform init + apply directly (ms each)", ms, n);
  else
    fprintf(stderr, "bench_builds: a direct terraform run failed\n");
  free(ms);
  free(th);
  free(d);
  return ok;
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_options(argc, argv, &o) != 0)
    return 2;
  if (access(o.terraform, X_OK) != 0) {
    printf("bench_builds: %s not found; skipping\n", o.terraform);
    return 77;
  }
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  char root[] = "/tmp/atrium-bench-builds-XXXXXX";
  if (!mkdtemp(root))
    return 1;
  printf("%d workspaces, %d daemons, %s\n\n", o.workspaces, o.daemons,
         o.terraform);
  int64_t atrium_wall = 0, direct_wall = 0;
  bool ok = run_atrium(&o, root, &atrium_wall);
  ok = ok && run_direct(&o, root, &direct_wall);
  if (ok)
    printf("\nwall time for all %d: through atrium %lld ms, terraform "
           "directly %lld ms (%.2fx)\n",
           o.workspaces, (long long)atrium_wall, (long long)direct_wall,
           direct_wall ? (double)atrium_wall / (double)direct_wall : 0.0);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_builds: cannot remove %s\n", root);
  curl_global_cleanup();
  return ok ? 0 : 1;
}
