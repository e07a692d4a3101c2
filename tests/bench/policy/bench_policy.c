/* tests/bench/policy — what a policy costs: evaluations per second of the
 * 50-line tests/bench/policy/bench.lua on the warm path (compiled once,
 * evaluated many times, each in a fresh sandbox, as the server does), and
 * beside it the same with a compile on every evaluation (the cold path)
 * and an empty hook (the sandbox alone).
 *
 * Then, in the same run, what the policy adds to a workspace create through
 * the API: a real `atrium server` (SQLite, auth_password, provisioner_echo
 * with no delay, one daemon) is started twice, once without policies and
 * once with `policy.files` naming a temporary directory that holds
 * bench.lua; each time the first user signs up, pushes a small echo
 * template and makes N sequential POST /api/v2/users/me/workspaces calls,
 * whose p50/p99/mean are printed with the difference.
 *
 *   bench_policy [--seconds S] [--creates N]
 *     S: seconds per evaluation figure (default 1)
 *     N: workspace creates per server, 1..1000 (default 200)
 *
 * Figures only: nothing is asserted on timing. Exit 1 when the policy does
 * not decide as expected (it must warn and set, and not deny in the
 * evaluations; it must allow, with its warning, every create), when a
 * create does not answer 201, or when the set-up fails. Bounded: at most
 * 1000 creates and 60 s per server, and every request goes to 127.0.0.1;
 * each server is stopped with SIGTERM by its PID. */
#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "client.h"
#include "harness.h"
#include "policy.h"

#define MAX_CREATES 1000
#define SERVER_DEADLINE_S 60.0
#define PASSWORD "Bramble-Lantern-84"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  char *buf = malloc(1 << 16);
  *len = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
  fclose(f);
  if (buf)
    buf[*len] = '\0';
  return buf;
}

typedef struct bench {
  const char *text;
  size_t len;
  atr_policy_t *warm;
  json_t *input;
} bench_t;

/* One evaluation; cold: compile first. 0 when the decision is right. */
static int once(bench_t *b, const atr_policy_t *p, bool cold, bool expect) {
  atr_policy_t *fresh = NULL;
  if (cold &&
      atr_policy_load("bench.lua", b->text, b->len, NULL, &fresh, NULL) != 0)
    return 1;
  atr_decision_t d;
  int rc =
      atr_policy_eval(cold ? fresh : p, "workspace_create", b->input, NULL, &d);
  if (rc == 0 && expect &&
      (d.ndenies != 0 || d.nwarnings != 1 ||
       !atr_decision_get_set(&d, "memory")))
    rc = 1;
  atr_decision_clear(&d);
  atr_policy_unref(fresh);
  return rc;
}

static int measure(const char *what, bench_t *b, const atr_policy_t *p,
                   bool cold, bool expect, double seconds) {
  size_t cap = 1 << 20, n = 0;
  double *lat = malloc(cap * sizeof *lat);
  if (!lat)
    return 1;
  double start = now_s(), end = start + seconds;
  double t = start;
  while (t < end && n < cap) {
    if (once(b, p, cold, expect) != 0) {
      fprintf(stderr, "bench_policy: %s: unexpected decision\n", what);
      free(lat);
      return 1;
    }
    double t2 = now_s();
    lat[n++] = t2 - t;
    t = t2;
  }
  qsort(lat, n, sizeof *lat, cmp_double);
  printf("%-34s %9.0f evaluations/s   p50 %6.1f us   p99 %6.1f us\n", what,
         (double)n / (t - start), lat[n / 2] * 1e6, lat[n * 99 / 100] * 1e6);
  free(lat);
  return 0;
}

/* ---- through the API ---------------------------------------------------------- */

/* The bench template: the echo provisioner and the parameters bench.lua
 * reads, with defaults it allows (2 CPUs, 4 GiB, an allowed image). */
static const char TEMPLATE_YAML[] = "name: bench\n"
                                    "provisioner: echo\n"
                                    "parameters:\n"
                                    "  - name: cpus\n"
                                    "    type: number\n"
                                    "    default: 2\n"
                                    "    validation: {min: 1, max: 16}\n"
                                    "  - name: memory\n"
                                    "    type: number\n"
                                    "    default: 4\n"
                                    "  - name: image\n"
                                    "    type: string\n"
                                    "    default: \"ubuntu:24.04\"\n";

typedef struct server_run {
  double *ms; /* each create's latency */
  int n;      /* creates that answered 201 */
  bool stopped_early;
} server_run_t;

static void api_fail(const char *what, const atr_tc_res_t *r) {
  fprintf(stderr, "bench_policy: %s", what);
  if (r)
    fprintf(stderr, " (HTTP %ld: %s)", r->status, r->body ? r->body : "");
  fputc('\n', stderr);
}

static atr_tc_res_t call(int port, const char *token, const char *method,
                         const char *path, json_t *body) {
  atr_tc_req_t req = {
      .method = method, .path = path, .token = token, .body = body};
  atr_tc_res_t r = atr_tc_call(port, &req);
  json_decref(body);
  return r;
}

static bool write_file(const char *path, const char *text, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f)
    return false;
  bool ok = fwrite(text, 1, len, f) == len;
  return fclose(f) == 0 && ok;
}

static void remove_tree(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "bench_policy: cannot remove %s\n", dir);
}

static char *config_text(const char *policy_dir) {
  char policy[400] = "";
  if (policy_dir)
    snprintf(policy, sizeof policy, "policy:\n  files: [%s/*.lua]\n",
             policy_dir);
  char *text = NULL;
  if (asprintf(&text,
               "%s"
               "data_dir: data\n"
               "plugin_dirs: [%s]\n"
               "http:\n  rate_limit:\n    login: 0\n    api: 0\n"
               "provisioner:\n  daemons: 1\n"
               "plugins:\n"
               "  storage_sqlite:\n    enabled: true\n"
               "  auth_password:\n    enabled: true\n"
               "    memory_cost: 8MiB\n    time_cost: 1\n"
               "  provisioner_echo:\n    enabled: true\n    delay: 0s\n",
               policy, ATR_TEST_PLUGIN_DIR) < 0)
    return NULL;
  return text;
}

static char *sign_up(int port) {
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
    api_fail("cannot sign in", &r);
  atr_tc_res_free(&r);
  return token;
}

/* template.yaml in a temporary directory as a tar.gz, by tar(1). */
static char *pack_template(size_t *len) {
  char dir[] = "/tmp/atrium-bench-tpl-XXXXXX";
  if (!mkdtemp(dir))
    return NULL;
  char path[256], yaml[300], tgz[256];
  snprintf(path, sizeof path, "%s/src", dir);
  snprintf(yaml, sizeof yaml, "%s/template.yaml", path);
  snprintf(tgz, sizeof tgz, "%s/template.tar.gz", dir);
  char *data = NULL;
  if (mkdir(path, 0700) == 0 &&
      write_file(yaml, TEMPLATE_YAML, sizeof TEMPLATE_YAML - 1)) {
    char cmd[700];
    snprintf(cmd, sizeof cmd, "tar -C '%s' -czf '%s' .", path, tgz);
    if (system(cmd) == 0)
      data = read_file(tgz, len);
  }
  remove_tree(dir);
  return data;
}

/* Upload, import (waiting until deadline), make the template; its id
 * (malloc'd) or NULL. */
static char *push_template(int port, const char *token, double deadline) {
  size_t len = 0;
  char *tgz = pack_template(&len);
  if (!tgz) {
    api_fail("cannot pack the template", NULL);
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
  char file[80] = "", org[64] = "", version[64] = "", path[256];
  const char *v = atr_tc_str(&r, "hash");
  snprintf(file, sizeof file, "%s", v ? v : "");
  if (!file[0])
    api_fail("cannot upload the template", &r);
  atr_tc_res_free(&r);
  if (!file[0])
    return NULL;
  r = call(port, token, "GET", "/api/v2/organizations", NULL);
  v = json_string_value(json_object_get(json_array_get(r.json, 0), "id"));
  snprintf(org, sizeof org, "%s", v ? v : "");
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templateversions", org);
  r = call(port, token, "POST", path, json_pack("{s:s}", "file_id", file));
  v = atr_tc_str(&r, "id");
  snprintf(version, sizeof version, "%s", v ? v : "");
  if (!version[0])
    api_fail("cannot create the template version", &r);
  atr_tc_res_free(&r);
  if (!version[0])
    return NULL;
  snprintf(path, sizeof path, "/api/v2/templateversions/%s", version);
  bool ok = false;
  while (now_s() < deadline) {
    r = call(port, token, "GET", path, NULL);
    const char *st = json_string_value(
        json_object_get(json_object_get(r.json, "job"), "status"));
    ok = st && strcmp(st, "succeeded") == 0;
    bool failed =
        !st || strcmp(st, "failed") == 0 || strcmp(st, "canceled") == 0;
    if (failed)
      api_fail("the template import did not succeed", &r);
    atr_tc_res_free(&r);
    if (ok || failed)
      break;
    usleep(20000);
  }
  if (!ok) {
    if (now_s() >= deadline)
      api_fail("the template import did not end in time", NULL);
    return NULL;
  }
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", org);
  r = call(
      port, token, "POST", path,
      json_pack("{s:s, s:s}", "name", "bench", "template_version_id", version));
  v = atr_tc_str(&r, "id");
  char *id = v ? strdup(v) : NULL;
  if (!id)
    api_fail("cannot create the template", &r);
  atr_tc_res_free(&r);
  return id;
}

/* N sequential creates; false on any answer but 201, or when a create
 * with policies does not carry the policy's warning (the policy ran) or
 * one without does. */
static bool creates(int port, const char *token, const char *template_id,
                    bool policies, double deadline, server_run_t *run) {
  for (int i = 0; i < run->n; i++) {
    if (now_s() >= deadline) {
      run->stopped_early = true;
      run->n = i;
      break;
    }
    char name[32];
    snprintf(name, sizeof name, "ws-%d", i);
    json_t *body =
        json_pack("{s:s, s:s}", "name", name, "template_id", template_id);
    double t0 = now_s();
    atr_tc_res_t r =
        call(port, token, "POST", "/api/v2/users/me/workspaces", body);
    run->ms[i] = (now_s() - t0) * 1e3;
    size_t warnings = json_array_size(json_object_get(r.json, "warnings"));
    bool ok = r.status == 201 && (warnings > 0) == policies;
    if (!ok)
      api_fail(r.status != 201 ? "a create did not answer 201"
               : policies      ? "a create carried no policy warning"
                               : "a create without policies carried a warning",
               &r);
    atr_tc_res_free(&r);
    if (!ok)
      return false;
  }
  return run->n > 0;
}

/* One server, with policies when policy_dir is not NULL. */
static bool run_server(const char *policy_dir, server_run_t *run) {
  double deadline = now_s() + SERVER_DEADLINE_S;
  char *cfg = config_text(policy_dir);
  if (!cfg)
    return false;
  atr_harness_t h;
  atr_harness_init(&h, cfg);
  free(cfg);
  atr_harness_start(&h, NULL, NULL);
  char *token = sign_up(h.port);
  char *template_id = token ? push_template(h.port, token, deadline) : NULL;
  bool ok = template_id && creates(h.port, token, template_id,
                                   policy_dir != NULL, deadline, run);
  free(template_id);
  free(token);
  kill(h.pid, SIGTERM);
  if (atr_harness_wait(&h, 20000) != 0)
    fprintf(stderr, "bench_policy: the server did not stop cleanly (log %s)\n",
            h.log);
  atr_harness_cleanup(&h);
  return ok;
}

typedef struct figures {
  double p50, p99, mean;
} figures_t;

static figures_t summarize(const char *what, server_run_t *run) {
  figures_t f = {0};
  int n = run->n;
  qsort(run->ms, (size_t)n, sizeof *run->ms, cmp_double);
  for (int i = 0; i < n; i++)
    f.mean += run->ms[i] / n;
  f.p50 = run->ms[(n - 1) / 2];
  f.p99 = run->ms[(n * 99 + 99) / 100 - 1];
  printf("%-34s %6d creates   p50 %7.2f ms   p99 %7.2f ms   mean %7.2f ms%s\n",
         what, n, f.p50, f.p99, f.mean,
         run->stopped_early ? "   (stopped at the 60 s bound)" : "");
  return f;
}

/* Both servers, and the figures; 0 when every create answered 201. */
static int measure_creates(const bench_t *b, int n) {
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  char dir[] = "/tmp/atrium-bench-policy-XXXXXX";
  server_run_t bare = {.n = n}, with = {.n = n};
  bare.ms = calloc((size_t)n, sizeof *bare.ms);
  with.ms = calloc((size_t)n, sizeof *with.ms);
  bool made = bare.ms && with.ms && mkdtemp(dir) != NULL;
  bool ok = made;
  if (ok) {
    char path[300];
    snprintf(path, sizeof path, "%s/bench.lua", dir);
    ok = write_file(path, b->text, b->len);
    if (!ok)
      fprintf(stderr, "bench_policy: cannot write %s\n", path);
  }
  printf("\nworkspace create through the API (%d sequential creates per "
         "server, echo provisioner, SQLite):\n",
         n);
  ok = ok && run_server(NULL, &bare);
  ok = ok && run_server(dir, &with);
  if (ok) {
    figures_t fb = summarize("without policies", &bare);
    figures_t fw = summarize("with bench.lua (policy.files)", &with);
    printf("added by policies: %+.2f ms p50, %+.2f ms p99, %+.2f ms mean\n",
           fw.p50 - fb.p50, fw.p99 - fb.p99, fw.mean - fb.mean);
  }
  if (made)
    remove_tree(dir);
  free(bare.ms);
  free(with.ms);
  curl_global_cleanup();
  return ok ? 0 : 1;
}

int main(int argc, char **argv) {
  double seconds = 1;
  int ncreates = 200;
  for (int i = 1; i < argc; i++) {
    bool value = i + 1 < argc;
    long n = value ? strtol(argv[i + 1], NULL, 10) : 0;
    if (value && strcmp(argv[i], "--seconds") == 0)
      seconds = atof(argv[++i]);
    else if (value && strcmp(argv[i], "--creates") == 0 && n >= 1 &&
             n <= MAX_CREATES) {
      ncreates = (int)n;
      i++;
    } else {
      fprintf(stderr,
              "usage: bench_policy [--seconds S] [--creates N (1..%d)]\n",
              MAX_CREATES);
      return 2;
    }
  }
  bench_t b = {0};
  char *text = read_file(ATR_BENCH_POLICY, &b.len);
  b.text = text;
  b.input = json_pack(
      "{s:{s:s, s:s, s:[s], s:[s, s]}, s:{s:s}, s:{s:s, s:s}, s:{s:s},"
      " s:s, s:{s:n, s:{s:s, s:s, s:s}}}",
      "user", "name", "alice", "email", "alice@example.com", "roles", "member",
      "groups", "dev", "gpu-users", "organization", "name", "default",
      "template", "id", "7d1c", "name", "docker-dev", "workspace", "name",
      "alice-dev", "transition", "start", "parameters", "old", "new", "cpus",
      "8", "memory", "128", "image", "ubuntu:24.04");
  char *err = NULL;
  atr_policy_t *empty = NULL;
  static const char empty_text[] = "function workspace_create(input) end\n";
  if (!text || !b.input ||
      atr_policy_load("bench.lua", b.text, b.len, NULL, &b.warm, &err) != 0 ||
      atr_policy_load("empty.lua", empty_text, sizeof empty_text - 1, NULL,
                      &empty, &err) != 0) {
    fprintf(stderr, "bench_policy: %s\n", err ? err : "set-up failed");
    return 1;
  }
  printf("policy: %s (50 lines), hook workspace_create, %.1f s each\n",
         ATR_BENCH_POLICY, seconds);
  int rc = measure("warm (compiled once)", &b, b.warm, false, true, seconds);
  if (rc == 0)
    rc = measure("cold (compile + evaluate)", &b, NULL, true, true, seconds);
  if (rc == 0)
    rc = measure("empty hook (the sandbox alone)", &b, empty, false, false,
                 seconds);
  if (rc == 0)
    rc = measure_creates(&b, ncreates);
  atr_policy_unref(b.warm);
  atr_policy_unref(empty);
  json_decref(b.input);
  free(text);
  return rc;
}
