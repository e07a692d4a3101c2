/* tests/plugins/test_provisioner_docker.c — what provisioner_docker
 * promises a provisioner daemon, against a real Docker Engine.
 *
 * Each test loads the real provisioner_docker.so through the core loader
 * and drives it as the host would: a workdir holding workspace.yaml per
 * job, plan() then apply(), the state of one build given to the next. The
 * engine is the ctest fixture `dockerd` (scripts/dev/dockerd.sh, socket
 * path in ATR_TEST_DOCKER_DIR/socket) with the image atrium-test/busybox:1;
 * workspace containers use network mode none and nothing is ever pulled.
 * The test looks at the engine itself (inspect, list by label, exec) over
 * the same socket with libcurl.
 *
 * Without the fixture's socket the whole test is skipped (exit 77).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atrium/provisioner.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "prov_harness.h"

#define IMAGE "atrium-test/busybox:1"
#define UNHEALTHY_IMAGE "atrium-test/unhealthy:1"
#define CANARY "Canary-dk-7f3a91"
#define LOOP "trap 'exit 0' TERM; while :; do sleep 1; done"

static char sock_path[108];
static FILE *log_stream;
static char *log_buf;
static size_t log_len;
static atomic_int ws_counter;

/* ---- the job: prov_harness.h records log lines and the cancel flag */

static void assert_job_has(atr_prov_job_t *job, int level, const char *stage,
                           const char *needle) {
  const ph_line_t *l = ph_job_find(job, level, needle);
  if (l == NULL) {
    for (size_t i = 0; i < job->n; i++)
      fprintf(stderr, "  [%d %s] %s\n", job->v[i].level, job->v[i].stage,
              job->v[i].line);
    fail_msg("no line with \"%s\" in the job log", needle);
  }
  if (stage != NULL)
    assert_string_equal(l->stage, stage);
}

static void assert_contains(const char *text, const char *needle) {
  if (text == NULL || strstr(text, needle) == NULL)
    fail_msg("\"%s\" does not contain \"%s\"", text ? text : "(null)", needle);
}

/* ---- the engine, seen by the test */

static size_t collect(char *data, size_t size, size_t n, void *ud) {
  FILE *f = ud;
  return fwrite(data, size, n, f);
}

/* METHOD path (unversioned) with an optional JSON body; the raw answer in
 * *raw (may be NULL), the status returned. */
static long eng_raw(const char *method, const char *path, const char *body,
                    char **raw, size_t *rawlen) {
  CURL *h = curl_easy_init();
  assert_non_null(h);
  char *url = NULL;
  assert_true(asprintf(&url, "http://localhost%s", path) >= 0);
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  struct curl_slist *hdr =
      curl_slist_append(NULL, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock_path);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, f);
  if (strcmp(method, "POST") == 0) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
  } else if (strcmp(method, "GET") != 0) {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  }
  CURLcode cc = curl_easy_perform(h);
  long status = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  fclose(f);
  curl_slist_free_all(hdr);
  curl_easy_cleanup(h);
  free(url);
  if (cc != CURLE_OK)
    fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
  if (raw != NULL) {
    *raw = buf;
    if (rawlen)
      *rawlen = len;
  } else {
    free(buf);
  }
  return status;
}

/* The answer as JSON (NULL when it is not), status in *status. */
static json_t *eng(const char *method, const char *path, const char *body,
                   long *status) {
  char *raw = NULL;
  size_t len = 0;
  long st = eng_raw(method, path, body, &raw, &len);
  if (status)
    *status = st;
  json_t *j = json_loadb(raw, len, 0, NULL);
  free(raw);
  return j;
}

static json_t *inspect(const char *kind, const char *name, long *status) {
  char path[512];
  snprintf(path, sizeof path, "/%s/%s%s", kind, name,
           strcmp(kind, "volumes") == 0 ? "" : "/json");
  return eng("GET", path, NULL, status);
}

static bool exists(const char *kind, const char *name) {
  long st = 0;
  json_decref(inspect(kind, name, &st));
  assert_true(st == 200 || st == 404);
  return st == 200;
}

/* Containers (all) or volumes with a label ("key" or "key=value"). */
static json_t *list_by_label(const char *kind, const char *label) {
  CURL *h = curl_easy_init();
  char *filter = NULL;
  assert_true(asprintf(&filter, "{\"label\":[\"%s\"]}", label) >= 0);
  char *q = curl_easy_escape(h, filter, 0);
  char path[1024];
  if (strcmp(kind, "containers") == 0)
    snprintf(path, sizeof path, "/containers/json?all=1&filters=%s", q);
  else
    snprintf(path, sizeof path, "/volumes?filters=%s", q);
  curl_free(q);
  curl_easy_cleanup(h);
  free(filter);
  long st = 0;
  json_t *j = eng("GET", path, NULL, &st);
  assert_int_equal(st, 200);
  if (strcmp(kind, "volumes") == 0) {
    json_t *v = json_incref(json_object_get(j, "Volumes"));
    json_decref(j);
    return json_is_array(v) ? v : (json_decref(v), json_array());
  }
  return j;
}

/* Remove every container and volume atrium made (the engine is the
 * test's own). */
static void engine_clean(void) {
  json_t *cs = list_by_label("containers", "dev.atrium.workspace_id");
  size_t i;
  json_t *c;
  json_array_foreach(cs, i, c) {
    char path[256];
    snprintf(path, sizeof path, "/containers/%s?force=1",
             json_string_value(json_object_get(c, "Id")));
    eng_raw("DELETE", path, NULL, NULL, NULL);
  }
  json_decref(cs);
  json_t *vs = list_by_label("volumes", "dev.atrium.workspace_id");
  json_array_foreach(vs, i, c) {
    char path[256];
    snprintf(path, sizeof path, "/volumes/%s",
             json_string_value(json_object_get(c, "Name")));
    eng_raw("DELETE", path, NULL, NULL, NULL);
  }
  json_decref(vs);
}

/* Run argv in a running container; its exit code, output in *out. */
static int exec_in(const char *container, const char *script, char **out) {
  json_t *body = json_pack("{s:[s,s,s], s:b, s:b}", "Cmd", "/bin/sh", "-c",
                           script, "AttachStdout", 1, "AttachStderr", 1);
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  char path[256];
  snprintf(path, sizeof path, "/containers/%s/exec", container);
  long st = 0;
  json_t *created = eng("POST", path, text, &st);
  free(text);
  assert_int_equal(st, 201);
  char *id = strdup(json_string_value(json_object_get(created, "Id")));
  json_decref(created);
  snprintf(path, sizeof path, "/exec/%s/start", id);
  char *raw = NULL;
  size_t len = 0;
  st = eng_raw("POST", path, "{\"Detach\":false,\"Tty\":false}", &raw, &len);
  assert_int_equal(st, 200);
  /* Frames: [stream, 0, 0, 0, size (big-endian)], then size bytes. */
  size_t olen = 0;
  char *o = calloc(1, len + 1);
  for (size_t p = 0; p + 8 <= len;) {
    const unsigned char *h = (const unsigned char *)raw + p;
    size_t n = ((size_t)h[4] << 24) | ((size_t)h[5] << 16) |
               ((size_t)h[6] << 8) | h[7];
    if (p + 8 + n > len)
      n = len - p - 8;
    memcpy(o + olen, raw + p + 8, n);
    olen += n;
    p += 8 + n;
  }
  free(raw);
  snprintf(path, sizeof path, "/exec/%s/json", id);
  json_t *info = eng("GET", path, NULL, &st);
  int code = (int)json_integer_value(json_object_get(info, "ExitCode"));
  json_decref(info);
  free(id);
  if (out)
    *out = o;
  else
    free(o);
  return code;
}

/* atrium-test/unhealthy:1: busybox with a health check that never passes
 * (inside a start period of an hour, so it stays "starting"). */
static void make_unhealthy_image(void) {
  if (exists("images", UNHEALTHY_IMAGE))
    return;
  long st = 0;
  json_decref(eng("POST", "/containers/create?name=atr-test-unhealthy-src",
                  "{\"Image\":\"" IMAGE "\",\"Cmd\":[\"/bin/true\"]}", &st));
  assert_int_equal(st, 201);
  json_decref(eng("POST",
                  "/commit?container=atr-test-unhealthy-src&repo=atrium-test/"
                  "unhealthy&tag=1",
                  "{\"Healthcheck\":{\"Test\":[\"CMD\",\"/bin/test\",\"-e\","
                  "\"/nonexistent\"],\"Interval\":1000000000,\"Timeout\":"
                  "1000000000,\"Retries\":3,\"StartPeriod\":3600000000000}}",
                  &st));
  assert_int_equal(st, 201);
  eng_raw("DELETE", "/containers/atr-test-unhealthy-src?force=1", NULL, NULL,
          NULL);
}

/* ---- files */

static char *path2(const char *a, const char *b) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", a, b) >= 0);
  return p;
}

static void write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 1 << 16);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* ---- the plugin */

typedef struct fx {
  ph_plugin_t plugin;
  atr_handle_t *h;
  const atr_provisioner_ops_t *ops;
  void *ctx;
  char *dir; /* the template: workspace.yaml */
} fx_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Load the plugin with `options` (YAML lines under its section, indented
 * by four spaces; NULL: the fixture's engine, allowed_images
 * [atrium-test/], pull_policy never). */
static int fx_try(fx_t *f, const char *options, char **err) {
  memset(f, 0, sizeof *f);
  f->dir = strdup("/tmp/atr-test-dk-XXXXXX");
  assert_non_null(mkdtemp(f->dir));
  char *defaults = NULL;
  assert_true(asprintf(&defaults,
                       "    socket: %s\n"
                       "    allowed_images: [atrium-test/, "
                       "registry.example.com/dev/]\n"
                       "    pull_policy: never\n"
                       "    start_timeout: 20s\n",
                       sock_path) >= 0);
  int rc = ph_plugin_try(&f->plugin, ATR_TEST_PLUGIN_DIR, "provisioner_docker",
                         options ? options : defaults, err);
  free(defaults);
  f->h = f->plugin.h;
  f->ops = f->plugin.ops;
  f->ctx = f->plugin.ctx;
  return rc;
}

static void fx_start(fx_t *f, const char *options) {
  char *err = NULL;
  if (fx_try(f, options, &err) != 0)
    fail_msg("start: %s", err);
}

static void fx_stop(fx_t *f) {
  ph_plugin_stop(&f->plugin);
  nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(f->dir);
}

static void fx_spec(fx_t *f, const char *yaml) {
  char *p = path2(f->dir, "workspace.yaml");
  write_text(p, yaml);
  free(p);
}

/* The starter spec: the contract's example, one container. */
static const char *const starter_spec =
    "image: " IMAGE "\n"
    "command: [\"/bin/sh\", \"-c\", \"" LOOP "\"]\n"
    "working_dir: /home/dev\n"
    "env:\n"
    "  GREETING: \"hello ${owner.name}\"\n"
    "  LITERAL: \"$${HOME}\"\n"
    "cpus: \"${param.cpus}\"\n"
    "memory: \"${param.memory}\"\n"
    "volumes:\n"
    "  - name: home\n"
    "    path: /home/dev\n"
    "labels:\n"
    "  team: \"${param.team}\"\n"
    "network_mode: none\n";

/* ---- parse */

typedef struct parsed {
  atr_prov_job_t job;
  int rc;
  char *err;
} parsed_t;

static void parse(fx_t *f, const char *const *names, size_t n, parsed_t *p) {
  ph_job_init(&p->job);
  atr_prov_parse_request_t req = {.struct_size = sizeof req,
                                  .job = &p->job,
                                  .log = ph_job_log,
                                  .canceled = ph_job_canceled,
                                  .workdir = f->dir,
                                  .param_names = names,
                                  .nparams = n};
  p->err = NULL;
  p->rc = f->ops->parse(f->ctx, &req, &p->err);
}

static void parsed_free(parsed_t *p) {
  free(p->err);
  ph_job_free(&p->job);
}

static const char *const starter_params[] = {"cpus", "memory", "team"};

/* Parse `yaml` with the starter's parameters; the error (malloc'd) or NULL. */
static char *parse_error(fx_t *f, const char *yaml) {
  fx_spec(f, yaml);
  parsed_t p;
  parse(f, starter_params, 3, &p);
  char *err = p.err;
  if (p.rc == 0)
    assert_null(err);
  else
    assert_int_equal(p.rc, ATR_EINVAL);
  /* Each problem is an error line of the job log too. */
  char *line = err ? strdup(err) : NULL;
  for (char *save = NULL, *l = line ? strtok_r(line, "\n", &save) : NULL;
       l != NULL; l = strtok_r(NULL, "\n", &save))
    assert_job_has(&p.job, ATR_LOG_ERROR, "Validating", l);
  free(line);
  p.err = NULL;
  parsed_free(&p);
  return err;
}

/* ---- builds */

typedef struct pv {
  const char *name, *value, *type;
  int sensitive;
} pv_t;

typedef struct ws {
  fx_t *f;
  char id[40];
  char name[32];
  int64_t number;
  char *state;
  size_t state_len;
} ws_t;

typedef struct build {
  atr_transition_t transition;
  const pv_t *params; /* {0}-terminated; NULL: the starter's */
  bool skip_plan;
  /* Out: */
  atr_prov_job_t job;
  int rc;
  char *err;
  atr_prov_apply_result_t res;
} build_t;

static void ws_init(ws_t *ws, fx_t *f, const char *name) {
  memset(ws, 0, sizeof *ws);
  ws->f = f;
  snprintf(ws->id, sizeof ws->id, "6a1f0c2e-0000-4000-8000-%012d",
           atomic_fetch_add(&ws_counter, 1) + 1);
  snprintf(ws->name, sizeof ws->name, "%s", name);
}

static const pv_t starter_values[] = {{"cpus", "1", "number", 0},
                                      {"memory", "64MiB", "string", 0},
                                      {"team", "platform", "string", 0},
                                      {0}};

static void ws_build(ws_t *ws, build_t *b) {
  fx_t *f = ws->f;
  ph_job_init(&b->job);
  const pv_t *pv = b->params ? b->params : starter_values;
  atr_param_value_t params[16];
  size_t np = 0;
  for (; pv[np].name != NULL; np++)
    params[np] =
        (atr_param_value_t){sizeof(atr_param_value_t), pv[np].name,
                            pv[np].value, pv[np].type, pv[np].sensitive};
  atr_prov_apply_request_t req = {
      .struct_size = sizeof req,
      .job = &b->job,
      .log = ph_job_log,
      .canceled = ph_job_canceled,
      .workdir = f->dir,
      .transition = b->transition,
      .build_number = ++ws->number,
      .workspace_id = ws->id,
      .workspace_name = ws->name,
      .owner_id = "6a1f0c2e-0000-4000-8000-00000000000b",
      .owner_name = "Alice",
      .owner_email = "alice@example.com",
      .organization_id = "6a1f0c2e-0000-4000-8000-00000000000c",
      .template_id = "6a1f0c2e-0000-4000-8000-00000000000d",
      .template_name = "docker-dev",
      .template_version_id = "6a1f0c2e-0000-4000-8000-00000000000e",
      .template_version_name = "v1",
      .params = params,
      .nparams = np,
      .prior_state = ws->state,
      .prior_state_len = ws->state_len};
  memset(&b->res, 0, sizeof b->res);
  b->err = NULL;
  b->rc = b->skip_plan ? 0 : f->ops->plan(f->ctx, &req, &b->err);
  if (b->rc == 0)
    b->rc = f->ops->apply(f->ctx, &req, &b->res, &b->err);
  if (b->res.state != NULL) { /* the host keeps what it was given */
    free(ws->state);
    ws->state = strndup(b->res.state, b->res.state_len);
    ws->state_len = b->res.state_len;
  }
}

static void build_free(build_t *b) {
  free(b->err);
  ph_result_release(&b->res); /* as the core reads and frees it */
  ph_job_free(&b->job);
}

/* One build that must succeed; b is freed. */
static void build_ok(ws_t *ws, atr_transition_t t, const pv_t *params) {
  build_t b = {.transition = t, .params = params};
  ws_build(ws, &b);
  if (b.rc != 0) {
    for (size_t i = 0; i < b.job.n; i++)
      fprintf(stderr, "  [%s] %s\n", b.job.v[i].stage, b.job.v[i].line);
    fail_msg("build %lld of %s: %s (%s)", (long long)ws->number, ws->name,
             b.err, atr_err_name(b.rc));
  }
  assert_null(b.err);
  build_free(&b);
}

static void ws_free(ws_t *ws) {
  free(ws->state);
  ws->state = NULL;
}

static char *container_name(const ws_t *ws) {
  char *n = NULL;
  assert_true(asprintf(&n, "atrium-alice-%s", ws->name) >= 0);
  return n;
}

static char *volume_name(const ws_t *ws, const char *v) {
  char *n = NULL;
  assert_true(asprintf(&n, "atrium-%s-%s", ws->id, v) >= 0);
  return n;
}

static size_t count_containers(const ws_t *ws) {
  char label[128];
  snprintf(label, sizeof label, "dev.atrium.workspace_id=%s", ws->id);
  json_t *cs = list_by_label("containers", label);
  size_t n = json_array_size(cs);
  json_decref(cs);
  return n;
}

static const char *label_of(const json_t *c, const char *key) {
  return json_string_value(json_object_get(
      json_object_get(json_object_get(c, "Config"), "Labels"), key));
}

/* ---- tests: the plugin */

static void test_descriptor_is_the_docker_type(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  assert_int_equal(f.h->desc->kind, ATR_KIND_PROVISIONER);
  assert_string_equal(f.ops->type, "docker");
  assert_int_equal(f.ops->struct_size, sizeof(atr_provisioner_ops_t));
  assert_true(ATR_PROVISIONER_HAS_PLAN(f.ops));
  assert_non_null(f.ops->cancel);
  fx_stop(&f);
  /* init said which engine it found. */
  assert_int_equal(fflush(log_stream), 0);
  assert_contains(log_buf, "[provisioner_docker] Docker Engine ");
  assert_contains(log_buf, "(API 1.");
  assert_contains(log_buf, sock_path);
}

static void test_init_warns_and_builds_fail_without_an_engine(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, "    socket: /tmp/atr-test-dk-no/docker.sock\n");
  assert_int_equal(fflush(log_stream), 0);
  assert_contains(log_buf, "cannot reach the Docker engine at "
                           "/tmp/atr-test-dk-no/docker.sock: No such file or "
                           "directory; builds fail until");
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "nowhere");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EUNAVAIL);
  assert_string_equal(b.err, "cannot reach the Docker engine at "
                             "/tmp/atr-test-dk-no/docker.sock: No such file "
                             "or directory");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying",
                 "Error: cannot reach the Docker engine at");
  assert_null(b.res.state); /* the host keeps the prior state */
  build_free(&b);
  ws_free(&ws);
  fx_stop(&f);
}

static void assert_init_fails(const char *options, const char *want) {
  fx_t f;
  char *err = NULL;
  assert_int_not_equal(fx_try(&f, options, &err), 0);
  assert_contains(err, want);
  free(err);
  fx_stop(&f);
}

static void test_invalid_options_fail_init(void **state) {
  (void)state;
  assert_init_fails("    pull_policy: sometimes\n", "pull_policy");
  assert_init_fails("    pull_policy: sometimes\n",
                    "never, if-missing, always");
  assert_init_fails("    label_prefix: Not A Prefix\n",
                    "plugin provisioner_docker: init failed: "
                    "plugins.provisioner_docker.label_prefix: \"Not A "
                    "Prefix\" is not a label prefix");
  assert_init_fails("    socket: docker.sock\n",
                    "plugins.provisioner_docker.socket: \"docker.sock\" is "
                    "not an absolute path");
  assert_init_fails("    start_timeout: 0s\n", "start_timeout");
}

/* ---- tests: parse */

static void test_parse_accepts_the_contract_example(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f,
          "image: atrium-test/busybox:1                 # required\n"
          "command: [\"/bin/sh\", \"-c\", \"" LOOP "\"]\n"
          "working_dir: /home/dev\n"
          "env:\n"
          "  GREETING: \"hello ${owner.name}\"\n"
          "cpus: \"${param.cpus}\"\n"
          "memory: \"${param.memory}\"\n"
          "volumes:\n"
          "  - name: home\n"
          "    path: /home/dev\n"
          "labels:\n"
          "  team: \"${param.team}\"\n"
          "network_mode: none\n"
          "containers:\n"
          "  - name: db\n"
          "    image: atrium-test/busybox:1\n"
          "    command: [\"/bin/sh\", \"-c\", \"while :; do sleep 1; done\"]\n"
          "    volumes:\n"
          "      - name: home\n"
          "        path: /data\n");
  parsed_t p;
  parse(&f, starter_params, 3, &p);
  if (p.rc != 0)
    fail_msg("parse: %s", p.err);
  assert_null(p.err);
  assert_job_has(&p.job, ATR_LOG_INFO, "Validating",
                 "workspace.yaml is valid: image atrium-test/busybox:1; "
                 "extra containers: db; volumes: home at /home/dev, home at "
                 "/data");
  parsed_free(&p);
  fx_stop(&f);
}

static void
test_parse_names_an_unknown_reference_with_its_position(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = parse_error(&f, "image: " IMAGE "\n"
                              "env:\n"
                              "  A: \"x ${param.cpu} y\"\n");
  assert_string_equal(err, "workspace.yaml:3:9: unknown reference "
                           "${param.cpu} (parameters: cpus, memory, team)");
  free(err);
  err = parse_error(&f, "image: " IMAGE "\ncpus: ${owner.nmae}\n");
  assert_string_equal(
      err, "workspace.yaml:2:7: unknown reference ${owner.nmae} (facts: "
           "workspace.name, workspace.id, owner.name, owner.email, owner.id, "
           "template.name, build.number; parameters: cpus, memory, team)");
  free(err);
  err =
      parse_error(&f, "image: \"" IMAGE "\"\ncommand: \"echo ${param.team\"\n");
  assert_string_equal(err, "workspace.yaml:2:16: unterminated reference "
                           "\"${param.team\"; close it with }, or write $${ "
                           "for a literal ${");
  free(err);
  /* $${ is a literal: no reference to check. */
  err = parse_error(&f, "image: " IMAGE "\nenv:\n  A: \"$${nothing}\"\n");
  assert_null(err);
  fx_stop(&f);
}

static void
test_parse_rejects_unknown_keys_listing_the_valid_ones(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = parse_error(&f, "image: " IMAGE "\nimgae: x\n");
  assert_string_equal(err, "workspace.yaml:2:1: unknown key \"imgae\"; valid "
                           "keys: command, containers, cpus, env, image, "
                           "labels, memory, network_mode, volumes, "
                           "working_dir");
  free(err);
  err = parse_error(&f, "image: " IMAGE "\ncontainers:\n"
                        "  - name: db\n    image: " IMAGE "\n"
                        "    containers: []\n");
  assert_string_equal(err, "workspace.yaml:5:5: unknown key \"containers\"; "
                           "valid keys: command, cpus, env, image, labels, "
                           "memory, name, network_mode, volumes, working_dir");
  free(err);
  fx_stop(&f);
}

static void test_parse_reports_every_problem_with_its_position(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = parse_error(&f, "image: [a\n");
  assert_contains(err, "workspace.yaml:2:1: did not find expected ',' or ']' "
                       "while parsing a flow sequence");
  free(err);
  err = parse_error(&f, "command: sleep 1\n");
  assert_string_equal(err, "workspace.yaml:1:1: image is required (image: "
                           "registry/name:tag)");
  free(err);
  err = parse_error(&f, "image: " IMAGE "\n"
                        "cpus: lots\n"
                        "memory: 12 parsecs\n"
                        "working_dir: home\n"
                        "volumes:\n"
                        "  - name: \"bad name\"\n"
                        "    path: /x\n"
                        "  - path: /y\n"
                        "labels:\n"
                        "  dev.atrium.workspace_id: other\n"
                        "env: [a]\n");
  assert_string_equal(
      err,
      "workspace.yaml:8:5: a volume needs a name\n"
      "workspace.yaml:11:6: env must be a map of names to values, not a "
      "list\n"
      "workspace.yaml:4:14: working_dir \"home\" is not an absolute path\n"
      "workspace.yaml:2:7: cpus \"lots\" is not a number of CPUs; write it "
      "like 2 or 1.5\n"
      "workspace.yaml:3:9: memory \"12 parsecs\" is not a size; write bytes "
      "or a size with a unit: 512MiB, 1GiB, 256m, 1g\n"
      "workspace.yaml:6:11: volume name \"bad name\" may only hold letters, "
      "digits, '_', '.' and '-', starting with a letter or digit (at most "
      "63)\n"
      "workspace.yaml:10:28: label \"dev.atrium.workspace_id\" starts with "
      "dev.atrium., which atrium keeps for its own labels "
      "(plugins.provisioner_docker.label_prefix); choose another name");
  free(err);
  fx_stop(&f);
}

static void test_parse_needs_workspace_yaml(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  parsed_t p;
  parse(&f, starter_params, 3, &p);
  assert_int_equal(p.rc, ATR_ENOENT);
  assert_string_equal(p.err, "the template has no workspace.yaml next to "
                             "template.yaml; add one that names at least the "
                             "image (image: registry/name:tag)");
  parsed_free(&p);
  fx_stop(&f);
}

static void test_parse_refuses_an_image_outside_allowed_images(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *err = parse_error(&f, "image: evil/miner:1\n");
  assert_string_equal(err, "workspace.yaml:1:8: image \"evil/miner:1\" is not "
                           "allowed; allowed prefixes: atrium-test/, "
                           "registry.example.com/dev/ "
                           "(plugins.provisioner_docker.allowed_images)");
  free(err);
  /* Extra containers too; an allowed registry's image is fine. */
  err = parse_error(&f, "image: registry.example.com/dev/tools:2\n"
                        "containers:\n  - name: db\n    image: postgres:15\n");
  assert_string_equal(err, "workspace.yaml:4:12: image \"postgres:15\" is not "
                           "allowed; allowed prefixes: atrium-test/, "
                           "registry.example.com/dev/ "
                           "(plugins.provisioner_docker.allowed_images)");
  free(err);
  /* From a parameter: checked at the build. */
  const char *const names[] = {"image"};
  fx_spec(&f, "image: \"${param.image}\"\n");
  parsed_t p;
  parse(&f, names, 1, &p);
  assert_int_equal(p.rc, 0);
  parsed_free(&p);
  fx_stop(&f);
}

/* ---- tests: builds */

static void test_start_makes_the_volume_and_the_container(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "Dev Box");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  if (b.rc != 0)
    fail_msg("start: %s", b.err);
  const char *name = "atrium-alice-dev-box";
  char *vol = volume_name(&ws, "home");

  long st = 0;
  json_t *c = inspect("containers", name, &st);
  assert_int_equal(st, 200);
  const json_t *host = json_object_get(c, "HostConfig");
  assert_int_equal(json_integer_value(json_object_get(host, "NanoCpus")),
                   1000000000);
  assert_int_equal(json_integer_value(json_object_get(host, "Memory")),
                   64 * 1024 * 1024);
  assert_string_equal(json_string_value(json_object_get(host, "NetworkMode")),
                      "none");
  assert_true(
      json_is_true(json_object_get(json_object_get(c, "State"), "Running")));
  assert_string_equal(label_of(c, "dev.atrium.workspace_id"), ws.id);
  assert_string_equal(label_of(c, "dev.atrium.workspace_name"), "Dev Box");
  assert_string_equal(label_of(c, "dev.atrium.owner_id"),
                      "6a1f0c2e-0000-4000-8000-00000000000b");
  assert_string_equal(label_of(c, "dev.atrium.owner_name"), "Alice");
  assert_string_equal(label_of(c, "dev.atrium.template_id"),
                      "6a1f0c2e-0000-4000-8000-00000000000d");
  assert_string_equal(label_of(c, "dev.atrium.build_number"), "1");
  assert_string_equal(label_of(c, "team"), "platform");
  const json_t *cfg = json_object_get(c, "Config");
  assert_string_equal(json_string_value(json_object_get(cfg, "WorkingDir")),
                      "/home/dev");
  assert_string_equal(json_string_value(json_object_get(cfg, "Hostname")),
                      "dev-box");
  char *env = json_dumps(json_object_get(cfg, "Env"), JSON_COMPACT);
  assert_contains(env, "\"GREETING=hello Alice\"");
  assert_contains(env, "\"LITERAL=${HOME}\"");
  free(env);
  const json_t *m = json_array_get(json_object_get(c, "Mounts"), 0);
  assert_string_equal(json_string_value(json_object_get(m, "Type")), "volume");
  assert_string_equal(json_string_value(json_object_get(m, "Name")), vol);
  assert_string_equal(json_string_value(json_object_get(m, "Destination")),
                      "/home/dev");
  char *id = strdup(json_string_value(json_object_get(c, "Id")));
  json_decref(c);

  json_t *v = inspect("volumes", vol, &st);
  assert_int_equal(st, 200);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(v, "Labels"),
                                        "dev.atrium.workspace_id")),
      ws.id);
  json_decref(v);

  /* The state and the resources say the same. */
  char *want = NULL;
  assert_true(asprintf(&want,
                       "{\"containers\":[{\"name\":\"%s\",\"id\":\"%s\"}],"
                       "\"volumes\":[{\"name\":\"%s\"}],\"image\":\"" IMAGE
                       "\"}",
                       name, id, vol) >= 0);
  assert_string_equal(b.res.state, want);
  assert_int_equal(b.res.state_len, strlen(want));
  assert_int_equal(b.res.nresources, 2);
  const atr_prov_resource_t *r = &b.res.resources[0];
  assert_string_equal(r->type, "docker_container");
  assert_string_equal(r->name, name);
  assert_string_equal(r->id, id);
  assert_int_equal(r->nmetadata, 2);
  assert_string_equal(r->metadata[0].key, "image");
  assert_string_equal(r->metadata[0].value, IMAGE);
  assert_string_equal(r->metadata[1].key, "status");
  assert_string_equal(r->metadata[1].value, "running");
  assert_string_equal(b.res.resources[1].type, "docker_volume");
  assert_string_equal(b.res.resources[1].name, vol);
  assert_string_equal(b.res.resources[1].id, vol);

  /* Each engine step is a line of the build log. */
  assert_job_has(&b.job, ATR_LOG_INFO, "Planning",
                 "Container atrium-alice-dev-box: image " IMAGE
                 "; 1 CPU, 64 MiB memory, network none");
  assert_job_has(&b.job, ATR_LOG_INFO, "Planning",
                 "env: GREETING=hello Alice, LITERAL=${HOME}");
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying",
                 "Image " IMAGE " is present (sha256:");
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying", "Creating volume ");
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying",
                 "Creating container atrium-alice-dev-box from " IMAGE);
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying",
                 "Container atrium-alice-dev-box is running");
  free(want);
  free(id);
  free(vol);
  build_free(&b);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
}

static void test_the_home_volume_outlives_stop_and_start(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "keep");
  char *name = container_name(&ws);
  char *vol = volume_name(&ws, "home");
  build_ok(&ws, ATR_TRANSITION_START, NULL);
  json_t *c = inspect("containers", name, NULL);
  char *id1 = strdup(json_string_value(json_object_get(c, "Id")));
  json_decref(c);
  assert_int_equal(exec_in(name, "echo kept-$((6*7)) > /home/dev/note", NULL),
                   0);

  /* stop: the container is gone, the volume and its file are not. */
  build_t stop = {.transition = ATR_TRANSITION_STOP};
  ws_build(&ws, &stop);
  assert_int_equal(stop.rc, 0);
  assert_false(exists("containers", name));
  assert_true(exists("volumes", vol));
  json_t *v = inspect("volumes", vol, NULL);
  char *note =
      path2(json_string_value(json_object_get(v, "Mountpoint")), "note");
  json_decref(v);
  char *text = read_text(note);
  assert_string_equal(text, "kept-42\n");
  free(text);
  char *want = NULL;
  assert_true(asprintf(&want,
                       "{\"containers\":[],\"volumes\":[{\"name\":\"%s\"}],"
                       "\"image\":\"" IMAGE "\"}",
                       vol) >= 0);
  assert_string_equal(stop.res.state, want);
  free(want);
  assert_int_equal(stop.res.nresources, 1);
  assert_string_equal(stop.res.resources[0].type, "docker_volume");
  assert_job_has(&stop.job, ATR_LOG_INFO, "Applying",
                 "Stopping container atrium-alice-keep");
  assert_job_has(&stop.job, ATR_LOG_INFO, "Applying", "Keeping volume ");
  build_free(&stop);

  /* start: a new container, the same file. */
  build_ok(&ws, ATR_TRANSITION_START, NULL);
  c = inspect("containers", name, NULL);
  assert_string_not_equal(json_string_value(json_object_get(c, "Id")), id1);
  json_decref(c);
  char *out = NULL;
  assert_int_equal(exec_in(name, "cat /home/dev/note", &out), 0);
  assert_string_equal(out, "kept-42\n");
  free(out);

  /* delete: both gone. */
  build_t del = {.transition = ATR_TRANSITION_DELETE};
  ws_build(&ws, &del);
  assert_int_equal(del.rc, 0);
  assert_false(exists("containers", name));
  assert_false(exists("volumes", vol));
  assert_string_equal(del.res.state,
                      "{\"containers\":[],\"volumes\":[],\"image\":\"" IMAGE
                      "\"}");
  assert_int_equal(del.res.nresources, 0);
  assert_job_has(&del.job, ATR_LOG_INFO, "Applying", "Removing volume ");
  build_free(&del);
  free(note);
  free(id1);
  free(name);
  free(vol);
  ws_free(&ws);
  fx_stop(&f);
}

static void test_start_twice_converges_to_one_container(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "retry");
  build_ok(&ws, ATR_TRANSITION_START, NULL);
  /* A retry of the same build, as after a crash: same number, same state. */
  ws.number--;
  build_t again = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &again);
  assert_int_equal(again.rc, 0);
  assert_job_has(&again.job, ATR_LOG_INFO, "Applying",
                 "Removing container atrium-alice-retry (");
  assert_job_has(&again.job, ATR_LOG_INFO, "Applying", "exists; keeping it");
  build_free(&again);
  assert_int_equal(count_containers(&ws), 1);
  build_ok(&ws, ATR_TRANSITION_START, NULL);
  assert_int_equal(count_containers(&ws), 1);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  assert_int_equal(count_containers(&ws), 0);
  ws_free(&ws);
  fx_stop(&f);
}

static void test_stop_and_delete_of_nothing_succeed(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  ws_t ws;
  ws_init(&ws, &f, "never-started");
  build_t stop = {.transition = ATR_TRANSITION_STOP};
  ws_build(&ws, &stop);
  assert_int_equal(stop.rc, 0);
  assert_job_has(&stop.job, ATR_LOG_INFO, "Applying",
                 "The workspace has no containers");
  build_free(&stop);
  build_t del = {.transition = ATR_TRANSITION_DELETE};
  ws_build(&ws, &del);
  assert_int_equal(del.rc, 0);
  assert_job_has(&del.job, ATR_LOG_INFO, "Applying",
                 "The workspace has no volumes");
  build_free(&del);
  /* A state naming objects that are gone is fine too. */
  free(ws.state);
  ws.state = strdup("{\"containers\":[{\"name\":\"atrium-alice-gone\",\"id\":"
                    "\"0123456789ab\"}],\"volumes\":[{\"name\":\"atrium-gone-"
                    "home\"}],\"image\":\"" IMAGE "\"}");
  ws.state_len = strlen(ws.state);
  build_ok(&ws, ATR_TRANSITION_STOP, NULL);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  /* And stop and delete work when the template became unusable. */
  fx_spec(&f, "image: evil/miner:1\n");
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
}

static void
test_an_image_from_a_parameter_is_checked_at_the_build(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: \"${param.image}\"\ncommand: \"" LOOP "\"\n");
  const pv_t evil[] = {{"image", "evil/miner:1", "string", 0}, {0}};
  const char *want = "workspace.yaml:1:8: image \"evil/miner:1\" is not "
                     "allowed; allowed prefixes: atrium-test/, "
                     "registry.example.com/dev/ "
                     "(plugins.provisioner_docker.allowed_images)";
  ws_t ws;
  ws_init(&ws, &f, "param-image");
  build_t b = {.transition = ATR_TRANSITION_START, .params = evil};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EINVAL);
  assert_string_equal(b.err, want);
  assert_job_has(&b.job, ATR_LOG_ERROR, "Planning", want);
  build_free(&b);
  /* apply() checks it too (a host without plan()). */
  build_t a = {
      .transition = ATR_TRANSITION_START, .params = evil, .skip_plan = true};
  ws_build(&ws, &a);
  assert_int_equal(a.rc, ATR_EINVAL);
  assert_string_equal(a.err, want);
  assert_job_has(&a.job, ATR_LOG_ERROR, "Applying", want);
  assert_null(a.res.state);
  build_free(&a);
  assert_int_equal(count_containers(&ws), 0);
  ws_free(&ws);
  fx_stop(&f);
}

static void test_a_missing_image_with_pull_policy_never_fails(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: atrium-test/missing:1\n");
  ws_t ws;
  ws_init(&ws, &f, "missing");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_ENOENT);
  assert_contains(b.err, "No such image: atrium-test/missing:1");
  assert_contains(b.err, "pull_policy is never");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying",
                 "Error: No such image: atrium-test/missing:1");
  /* Nothing was made; the state says so. */
  assert_string_equal(b.res.state,
                      "{\"containers\":[],\"volumes\":[],\"image\":"
                      "\"atrium-test/missing:1\"}");
  build_free(&b);
  ws_free(&ws);
  fx_stop(&f);
}

static void test_engine_errors_reach_the_log_in_its_words(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: " IMAGE "\nmemory: 1m\nvolumes:\n"
              "  - {name: home, path: /home/dev}\n");
  ws_t ws;
  ws_init(&ws, &f, "tiny");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EPLUGIN);
  assert_string_equal(b.err, "creating container atrium-alice-tiny: Minimum "
                             "memory limit allowed is 6MB");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying",
                 "Error: creating container atrium-alice-tiny: Minimum "
                 "memory limit allowed is 6MB");
  /* The volume was made before: the state lists it. */
  char *vol = volume_name(&ws, "home");
  assert_contains(b.res.state, vol);
  build_free(&b);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  assert_false(exists("volumes", vol));
  free(vol);
  ws_free(&ws);
  fx_stop(&f);
}

static void test_a_command_that_exits_fails_the_start(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: " IMAGE "\n"
              "command: \"echo starting >&2; echo boom >&2; exit 3\"\n");
  ws_t ws;
  ws_init(&ws, &f, "crash");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EPLUGIN);
  assert_string_equal(b.err, "container atrium-alice-crash exited with code "
                             "3 before it was up; its last output: starting "
                             "| boom");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying", "atrium-alice-crash: boom");
  /* The exited container stays (for docker logs) and is in the state. */
  assert_contains(b.res.state, "\"name\":\"atrium-alice-crash\"");
  assert_int_equal(b.res.nresources, 1);
  assert_string_equal(b.res.resources[0].metadata[1].value, "exited");
  build_free(&b);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  assert_int_equal(count_containers(&ws), 0);
  ws_free(&ws);
  fx_stop(&f);
}

static void
test_a_foreign_container_with_the_name_is_not_removed(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  long st = 0;
  json_decref(eng("POST", "/containers/create?name=atrium-alice-taken",
                  "{\"Image\":\"" IMAGE "\",\"Cmd\":[\"/bin/true\"]}", &st));
  assert_int_equal(st, 201);
  ws_t ws;
  ws_init(&ws, &f, "taken");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EEXIST);
  assert_string_equal(b.err, "a container named atrium-alice-taken exists "
                             "that is not this workspace's (it has no "
                             "plugins.provisioner_docker labels); remove it "
                             "(docker rm -f atrium-alice-taken) or rename "
                             "the workspace");
  assert_true(exists("containers", "atrium-alice-taken"));
  build_free(&b);
  eng_raw("DELETE", "/containers/atrium-alice-taken?force=1", NULL, NULL, NULL);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  ws_free(&ws);
  fx_stop(&f);
}

/* A "registry" on loopback that accepts connections and never answers,
 * so a pull hangs until it is canceled. */
typedef struct mute_server {
  int fd;
  int port;
  pthread_t thread;
  atomic_bool stop;
} mute_server_t;

static void *mute_run(void *arg) {
  mute_server_t *m = arg;
  int held[64];
  int n = 0;
  while (!atomic_load(&m->stop)) {
    struct pollfd p = {.fd = m->fd, .events = POLLIN};
    if (poll(&p, 1, 50) == 1 && n < 64) {
      int c = accept(m->fd, NULL, NULL);
      if (c >= 0)
        held[n++] = c;
    }
  }
  while (n > 0)
    close(held[--n]);
  return NULL;
}

static void mute_start(mute_server_t *m) {
  m->fd = socket(AF_INET, SOCK_STREAM, 0);
  assert_true(m->fd >= 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  assert_int_equal(bind(m->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(m->fd, 16), 0);
  assert_int_equal(getsockname(m->fd, (struct sockaddr *)&a, &len), 0);
  m->port = ntohs(a.sin_port);
  atomic_init(&m->stop, false);
  assert_int_equal(pthread_create(&m->thread, NULL, mute_run, m), 0);
}

static void mute_stop(mute_server_t *m) {
  atomic_store(&m->stop, true);
  pthread_join(m->thread, NULL);
  close(m->fd);
}

static void test_a_failed_pull_reports_the_engine_error(void **state) {
  (void)state;
  /* Port 1 on loopback: nothing listens, the pull fails at once. */
  char *opts = NULL;
  assert_true(asprintf(&opts,
                       "    socket: %s\n"
                       "    allowed_images: [127.0.0.1:1/]\n"
                       "    pull_policy: if-missing\n",
                       sock_path) >= 0);
  fx_t f;
  fx_start(&f, opts);
  fx_spec(&f, "image: 127.0.0.1:1/nothing:1\n");
  ws_t ws;
  ws_init(&ws, &f, "pull");
  build_t b = {.transition = ATR_TRANSITION_START};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EPLUGIN);
  assert_contains(b.err, "pulling 127.0.0.1:1/nothing:1: ");
  assert_contains(b.err, "connection refused");
  assert_job_has(&b.job, ATR_LOG_INFO, "Applying",
                 "Pulling image 127.0.0.1:1/nothing:1");
  assert_job_has(&b.job, ATR_LOG_ERROR, "Applying",
                 "Error: pulling 127.0.0.1:1/nothing:1: ");
  assert_int_equal(count_containers(&ws), 0);
  build_free(&b);
  ws_free(&ws);
  fx_stop(&f);
  free(opts);
}

typedef struct bg {
  ws_t *ws;
  build_t *b;
  pthread_t thread;
  double done_at;
} bg_t;

static void *bg_run(void *arg) {
  bg_t *g = arg;
  ws_build(g->ws, g->b);
  g->done_at = now_s();
  return NULL;
}

static void wait_for_line(atr_prov_job_t *job, const char *needle) {
  for (int i = 0; i < 3000 && ph_job_find(job, -1, needle) == NULL; i++)
    usleep(10 * 1000);
  if (ph_job_find(job, -1, needle) == NULL)
    fail_msg("no \"%s\" in the job log within 30 s", needle);
}

static void test_cancel_while_waiting_returns_the_state(void **state) {
  (void)state;
  make_unhealthy_image();
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: " UNHEALTHY_IMAGE "\n"
              "command: \"" LOOP "\"\n"
              "volumes:\n  - {name: home, path: /home/dev}\n");
  ws_t ws;
  ws_init(&ws, &f, "patience");
  build_t b = {.transition = ATR_TRANSITION_START};
  bg_t g = {.ws = &ws, .b = &b};
  assert_int_equal(pthread_create(&g.thread, NULL, bg_run, &g), 0);
  wait_for_line(&b.job, "Waiting for container atrium-alice-patience");
  usleep(500 * 1000); /* it is waiting for the health check now */
  double t0 = now_s();
  atomic_store(&b.job.canceled, 1); /* the host's order: flag, then call */
  f.ops->cancel(f.ctx, &b.job);
  pthread_join(g.thread, NULL);
  if (g.done_at - t0 > 3.0)
    fail_msg("cancel took %.1f s", g.done_at - t0);
  assert_int_equal(b.rc, ATR_ECANCELED);
  assert_string_equal(b.err, "the build was canceled while waiting for the "
                             "containers to be running");
  assert_job_has(&b.job, ATR_LOG_WARN, "Applying",
                 "Canceled; the state lists what exists now");
  /* The state says what exists: the container and the volume. */
  json_t *c = inspect("containers", "atrium-alice-patience", NULL);
  char *want = NULL;
  char *vol = volume_name(&ws, "home");
  assert_true(asprintf(&want,
                       "{\"containers\":[{\"name\":\"atrium-alice-patience\","
                       "\"id\":\"%s\"}],\"volumes\":[{\"name\":\"%s\"}],"
                       "\"image\":\"" UNHEALTHY_IMAGE "\"}",
                       json_string_value(json_object_get(c, "Id")), vol) >= 0);
  json_decref(c);
  assert_string_equal(b.res.state, want);
  free(want);
  free(vol);
  build_free(&b);
  build_ok(&ws, ATR_TRANSITION_DELETE, NULL);
  assert_int_equal(count_containers(&ws), 0);
  ws_free(&ws);
  fx_stop(&f);
}

static void test_cancel_while_pulling_returns_soon(void **state) {
  (void)state;
  mute_server_t m;
  mute_start(&m);
  char *opts = NULL;
  assert_true(asprintf(&opts,
                       "    socket: %s\n"
                       "    allowed_images: [\"127.0.0.1:\"]\n"
                       "    pull_policy: always\n",
                       sock_path) >= 0);
  fx_t f;
  fx_start(&f, opts);
  char *spec = NULL;
  assert_true(asprintf(&spec, "image: 127.0.0.1:%d/slow:1\n", m.port) >= 0);
  fx_spec(&f, spec);
  ws_t ws;
  ws_init(&ws, &f, "slow-pull");
  build_t b = {.transition = ATR_TRANSITION_START};
  bg_t g = {.ws = &ws, .b = &b};
  assert_int_equal(pthread_create(&g.thread, NULL, bg_run, &g), 0);
  wait_for_line(&b.job, "Pulling image 127.0.0.1:");
  usleep(300 * 1000);
  double t0 = now_s();
  atomic_store(&b.job.canceled, 1);
  f.ops->cancel(f.ctx, &b.job);
  pthread_join(g.thread, NULL);
  if (g.done_at - t0 > 3.0)
    fail_msg("cancel took %.1f s", g.done_at - t0);
  assert_int_equal(b.rc, ATR_ECANCELED);
  assert_contains(b.err, "the build was canceled while pulling 127.0.0.1:");
  /* Nothing was made; the state says so. */
  assert_contains(b.res.state, "{\"containers\":[],\"volumes\":[],");
  assert_job_has(&b.job, ATR_LOG_WARN, "Applying",
                 "Canceled; the state lists what exists now");
  build_free(&b);
  ws_free(&ws);
  fx_stop(&f);
  free(spec);
  free(opts);
  mute_stop(&m);
}

static void test_ten_starts_in_parallel_all_run(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, starter_spec);
  enum { N = 10 };
  ws_t ws[N];
  build_t b[N];
  bg_t g[N];
  for (int i = 0; i < N; i++) {
    char name[32];
    snprintf(name, sizeof name, "par-%d", i);
    ws_init(&ws[i], &f, name);
    b[i] = (build_t){.transition = ATR_TRANSITION_START};
    g[i] = (bg_t){.ws = &ws[i], .b = &b[i]};
    assert_int_equal(pthread_create(&g[i].thread, NULL, bg_run, &g[i]), 0);
  }
  for (int i = 0; i < N; i++)
    pthread_join(g[i].thread, NULL);
  for (int i = 0; i < N; i++) {
    if (b[i].rc != 0)
      fail_msg("start %d: %s", i, b[i].err);
    char *name = container_name(&ws[i]);
    json_t *c = inspect("containers", name, NULL);
    assert_true(
        json_is_true(json_object_get(json_object_get(c, "State"), "Running")));
    json_decref(c);
    free(name);
    assert_int_equal(count_containers(&ws[i]), 1);
    build_free(&b[i]);
  }
  for (int i = 0; i < N; i++) {
    b[i] = (build_t){.transition = ATR_TRANSITION_DELETE};
    assert_int_equal(pthread_create(&g[i].thread, NULL, bg_run, &g[i]), 0);
  }
  for (int i = 0; i < N; i++) {
    pthread_join(g[i].thread, NULL);
    assert_int_equal(b[i].rc, 0);
    assert_int_equal(count_containers(&ws[i]), 0);
    build_free(&b[i]);
    ws_free(&ws[i]);
  }
  fx_stop(&f);
}

static void test_sensitive_values_never_reach_a_log(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  fx_spec(&f, "image: " IMAGE "\n"
              "command: \"" LOOP "\"\n"
              "env:\n"
              "  TOKEN: \"${param.token}\"\n"
              "  GREETING: hello\n"
              "labels:\n"
              "  token: \"${param.token}\"\n");
  const pv_t secret[] = {{"token", CANARY, "string", 1}, {0}};
  ws_t ws;
  ws_init(&ws, &f, "secret");
  build_t b = {.transition = ATR_TRANSITION_START, .params = secret};
  ws_build(&ws, &b);
  if (b.rc != 0)
    fail_msg("start: %s", b.err);
  /* The container has it; no log line does, not even the other values. */
  json_t *c = inspect("containers", "atrium-alice-secret", NULL);
  char *env = json_dumps(json_object_get(json_object_get(c, "Config"), "Env"),
                         JSON_COMPACT);
  assert_contains(env, "\"TOKEN=" CANARY "\"");
  free(env);
  json_decref(c);
  assert_job_has(&b.job, ATR_LOG_INFO, "Planning",
                 "env: TOKEN, GREETING (values not shown: they use a "
                 "sensitive parameter)");
  assert_null(ph_job_find(&b.job, -1, "GREETING=hello"));
  for (size_t i = 0; i < b.job.n; i++)
    assert_null(strstr(b.job.v[i].line, CANARY));
  build_free(&b);
  /* A failing build's error is redacted too. */
  fx_spec(&f, "image: " IMAGE "\ncpus: \"${param.token}\"\n");
  build_t bad = {.transition = ATR_TRANSITION_START, .params = secret};
  ws_build(&ws, &bad);
  assert_int_equal(bad.rc, ATR_EINVAL);
  assert_string_equal(bad.err, "workspace.yaml:2:7: cpus \"********\" is not "
                               "a number of CPUs; write it like 2 or 1.5");
  for (size_t i = 0; i < bad.job.n; i++)
    assert_null(strstr(bad.job.v[i].line, CANARY));
  build_free(&bad);
  build_ok(&ws, ATR_TRANSITION_DELETE, secret);
  ws_free(&ws);
  fx_stop(&f);
}

static void test_the_process_log_never_shows_a_secret(void **state) {
  (void)state;
  assert_int_equal(fflush(log_stream), 0);
  assert_non_null(log_buf);
  assert_null(strstr(log_buf, CANARY));
}

/* ---- main */

static bool engine_answers(void) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  snprintf(a.sun_path, sizeof a.sun_path, "%s", sock_path);
  bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0)
    close(fd);
  return ok;
}

int main(void) {
  char *where = path2(ATR_TEST_DOCKER_DIR, "socket");
  char *text = read_text(where);
  if (text != NULL)
    text[strcspn(text, "\n")] = '\0';
  if (text == NULL || *text == '\0' || strlen(text) >= sizeof sock_path) {
    printf("the test Docker engine is not running (no socket path in %s); "
           "run scripts/dev/dockerd.sh start %s, or ctest with its dockerd "
           "fixture; skipping\n",
           where, ATR_TEST_DOCKER_DIR);
    free(where);
    free(text);
    return 77;
  }
  snprintf(sock_path, sizeof sock_path, "%s", text);
  free(text);
  if (!engine_answers()) {
    printf("the test Docker engine does not answer on %s (from %s); "
           "skipping\n",
           sock_path, where);
    free(where);
    return 77;
  }
  free(where);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  if (!exists("images", IMAGE)) {
    printf("the test Docker engine has no image %s; run "
           "scripts/dev/dockerd.sh start again; skipping\n",
           IMAGE);
    return 77;
  }
  engine_clean();
  log_stream = open_memstream(&log_buf, &log_len);
  if (log_stream == NULL)
    return 1;
  atr_log_set_level(ATR_LOG_DEBUG);
  atr_log_set_stream(log_stream);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor_is_the_docker_type),
      cmocka_unit_test(test_init_warns_and_builds_fail_without_an_engine),
      cmocka_unit_test(test_invalid_options_fail_init),
      cmocka_unit_test(test_parse_accepts_the_contract_example),
      cmocka_unit_test(test_parse_names_an_unknown_reference_with_its_position),
      cmocka_unit_test(test_parse_rejects_unknown_keys_listing_the_valid_ones),
      cmocka_unit_test(test_parse_reports_every_problem_with_its_position),
      cmocka_unit_test(test_parse_needs_workspace_yaml),
      cmocka_unit_test(test_parse_refuses_an_image_outside_allowed_images),
      cmocka_unit_test(test_start_makes_the_volume_and_the_container),
      cmocka_unit_test(test_the_home_volume_outlives_stop_and_start),
      cmocka_unit_test(test_start_twice_converges_to_one_container),
      cmocka_unit_test(test_stop_and_delete_of_nothing_succeed),
      cmocka_unit_test(test_an_image_from_a_parameter_is_checked_at_the_build),
      cmocka_unit_test(test_a_missing_image_with_pull_policy_never_fails),
      cmocka_unit_test(test_engine_errors_reach_the_log_in_its_words),
      cmocka_unit_test(test_a_command_that_exits_fails_the_start),
      cmocka_unit_test(test_a_foreign_container_with_the_name_is_not_removed),
      cmocka_unit_test(test_a_failed_pull_reports_the_engine_error),
      cmocka_unit_test(test_cancel_while_waiting_returns_the_state),
      cmocka_unit_test(test_cancel_while_pulling_returns_soon),
      cmocka_unit_test(test_ten_starts_in_parallel_all_run),
      cmocka_unit_test(test_sensitive_values_never_reach_a_log),
      /* Last: it reads what every test before it logged. */
      cmocka_unit_test(test_the_process_log_never_shows_a_secret),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  engine_clean();
  atr_log_set_stream(NULL);
  fclose(log_stream);
  free(log_buf);
  curl_global_cleanup();
  return failed;
}
