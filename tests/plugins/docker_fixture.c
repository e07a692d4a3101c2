/* tests/plugins/docker_fixture.c — the provisioner_docker test's engine,
 * file, plugin and build helpers (docker_fixture.h). */
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
#include "docker_fixture.h"
#include "loader.h"
#include "log.h"
#include "prov_harness.h"

char sock_path[108];
FILE *log_stream;
char *log_buf;
size_t log_len;
atomic_int ws_counter;

/* ---- the job: prov_harness.h records log lines and the cancel flag */

void assert_job_has(atr_prov_job_t *job, int level, const char *stage,
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

void assert_contains(const char *text, const char *needle) {
  if (text == NULL || strstr(text, needle) == NULL)
    fail_msg("\"%s\" does not contain \"%s\"", text ? text : "(null)", needle);
}

/* ---- the engine, seen by the test */

size_t collect(char *data, size_t size, size_t n, void *ud) {
  FILE *f = ud;
  return fwrite(data, size, n, f);
}

/* METHOD path (unversioned) with an optional JSON body; the raw answer in
 * *raw (may be NULL), the status returned. */
long eng_raw(const char *method, const char *path, const char *body, char **raw,
             size_t *rawlen) {
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
json_t *eng(const char *method, const char *path, const char *body,
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

json_t *inspect(const char *kind, const char *name, long *status) {
  char path[512];
  snprintf(path, sizeof path, "/%s/%s%s", kind, name,
           strcmp(kind, "volumes") == 0 ? "" : "/json");
  return eng("GET", path, NULL, status);
}

bool exists(const char *kind, const char *name) {
  long st = 0;
  json_decref(inspect(kind, name, &st));
  assert_true(st == 200 || st == 404);
  return st == 200;
}

/* Containers (all) or volumes with a label ("key" or "key=value"). */
json_t *list_by_label(const char *kind, const char *label) {
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
void engine_clean(void) {
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
int exec_in(const char *container, const char *script, char **out) {
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
void make_unhealthy_image(void) {
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

char *path2(const char *a, const char *b) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", a, b) >= 0);
  return p;
}

void write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 1 << 16);
  size_t n = fread(buf, 1, (1 << 16) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

/* ---- the plugin */

double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Load the plugin with `options` (YAML lines under its section, indented
 * by four spaces; NULL: the fixture's engine, allowed_images
 * [atrium-test/], pull_policy never). */
int fx_try(fx_t *f, const char *options, char **err) {
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

void fx_start(fx_t *f, const char *options) {
  char *err = NULL;
  if (fx_try(f, options, &err) != 0)
    fail_msg("start: %s", err);
}

void fx_stop(fx_t *f) {
  ph_plugin_stop(&f->plugin);
  nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(f->dir);
}

void fx_spec(fx_t *f, const char *yaml) {
  char *p = path2(f->dir, "workspace.yaml");
  write_text(p, yaml);
  free(p);
}

/* The starter spec: the contract's example, one container. */
const char *const starter_spec =
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

void parse(fx_t *f, const char *const *names, size_t n, parsed_t *p) {
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

void parsed_free(parsed_t *p) {
  free(p->err);
  ph_job_free(&p->job);
}

const char *const starter_params[] = {"cpus", "memory", "team"};

/* Parse `yaml` with the starter's parameters; the error (malloc'd) or NULL. */
char *parse_error(fx_t *f, const char *yaml) {
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

void ws_init(ws_t *ws, fx_t *f, const char *name) {
  memset(ws, 0, sizeof *ws);
  ws->f = f;
  snprintf(ws->id, sizeof ws->id, "6a1f0c2e-0000-4000-8000-%012d",
           atomic_fetch_add(&ws_counter, 1) + 1);
  snprintf(ws->name, sizeof ws->name, "%s", name);
}

const pv_t starter_values[] = {{"cpus", "1", "number", 0},
                               {"memory", "64MiB", "string", 0},
                               {"team", "platform", "string", 0},
                               {0}};

void ws_build(ws_t *ws, build_t *b) {
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
      .prior_state_len = ws->state_len,
      .agent = b->agent};
  b->rc = ph_plan_apply(f->ops, f->ctx, &req, b->skip_plan, &b->res, &b->err,
                        &ws->state, &ws->state_len);
}

void build_free(build_t *b) {
  free(b->err);
  ph_result_release(&b->res); /* as the core reads and frees it */
  ph_job_free(&b->job);
}

/* One build that must succeed; b is freed. */
void build_ok(ws_t *ws, atr_transition_t t, const pv_t *params) {
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

void ws_free(ws_t *ws) {
  free(ws->state);
  ws->state = NULL;
}

char *container_name(const ws_t *ws) {
  char *n = NULL;
  assert_true(asprintf(&n, "atrium-alice-%s", ws->name) >= 0);
  return n;
}

char *volume_name(const ws_t *ws, const char *v) {
  char *n = NULL;
  assert_true(asprintf(&n, "atrium-%s-%s", ws->id, v) >= 0);
  return n;
}

size_t count_containers(const ws_t *ws) {
  char label[128];
  snprintf(label, sizeof label, "dev.atrium.workspace_id=%s", ws->id);
  json_t *cs = list_by_label("containers", label);
  size_t n = json_array_size(cs);
  json_decref(cs);
  return n;
}

const char *label_of(const json_t *c, const char *key) {
  return json_string_value(json_object_get(
      json_object_get(json_object_get(c, "Config"), "Labels"), key));
}
