/* tests/plugins/terraform_fixture.c — the provisioner_terraform test's
 * file, plugin and build helpers (terraform_fixture.h). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "atrium/provisioner.h"
#include "conf.h"
#include "loader.h"
#include "log.h"
#include "prov_harness.h"
#include "terraform_fixture.h"

FILE *log_stream;
char *log_buf;
size_t log_len;

/* ---- the job: prov_harness.h records log lines and the cancel flag */

void assert_logged(atr_prov_job_t *job, atr_log_level_t level,
                   const char *stage, const char *line) {
  for (size_t i = 0; i < job->n; i++) {
    if (strcmp(job->v[i].line, line) == 0) {
      assert_int_equal(job->v[i].level, level);
      assert_string_equal(job->v[i].stage, stage);
      return;
    }
  }
  fail_msg("not in the job log: \"%s\"", line);
}

/* ---- files */

char *path2(const char *a, const char *b) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/%s", a, b) >= 0);
  return p;
}

void copy_file(const char *from, const char *to, mode_t mode) {
  int in = open(from, O_RDONLY);
  int out = open(to, O_WRONLY | O_CREAT | O_TRUNC, mode);
  assert_true(in >= 0 && out >= 0);
  char buf[8192];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    assert_int_equal(write(out, buf, (size_t)n), n);
  close(in);
  close(out);
}

void copy_tree(const char *from, const char *to) {
  assert_int_equal(mkdir(to, 0700), 0);
  DIR *d = opendir(from);
  assert_non_null(d);
  const struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *a = path2(from, e->d_name), *b = path2(to, e->d_name);
    struct stat st;
    assert_int_equal(stat(a, &st), 0);
    if (S_ISDIR(st.st_mode))
      copy_tree(a, b);
    else
      copy_file(a, b, st.st_mode & 0777);
    free(a);
    free(b);
  }
  closedir(d);
}

int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void rm_tree(const char *path) {
  nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

void write_text(const char *path, const char *text, mode_t mode) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
}

/* The file's text (malloc'd), or NULL when it does not exist. */
char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 1 << 20);
  assert_non_null(buf);
  size_t n = fread(buf, 1, (1 << 20) - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Descriptors open in this process. */
int open_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  assert_non_null(d);
  while (readdir(d) != NULL)
    n++;
  closedir(d);
  return n;
}

/* ---- the plugin */

double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Load the plugin with `options` (YAML lines under its section, indented
 * by four spaces; NULL: the real terraform). 0, or the failing step's
 * code with its message in *err. */
int fx_try(fx_t *f, const char *options, char **err) {
  memset(f, 0, sizeof *f);
  f->base = strdup("/tmp/atr-test-tf-XXXXXX");
  assert_non_null(mkdtemp(f->base));
  f->root = path2(f->base, "root");
  assert_int_equal(mkdir(f->root, 0700), 0);
  int rc = ph_plugin_try(
      &f->plugin, ATR_TEST_PLUGIN_DIR, "provisioner_terraform",
      options ? options : "    binary: " ATR_TEST_TERRAFORM "\n", err);
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
  rm_tree(f->base);
  free(f->base);
  free(f->root);
}

/* A fresh copy of the starter template, as the host unpacks one per job. */
char *fx_workdir(fx_t *f) {
  char name[32];
  snprintf(name, sizeof name, "job-%d", ++f->njobs);
  char *dir = path2(f->base, name);
  copy_tree(TEMPLATE_DIR, dir);
  return dir;
}

/* A script in the test's directory that plays terraform. */
char *fx_fake(const char *body) {
  char dir[] = "/tmp/atr-test-tf-fake-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *path = path2(dir, "terraform");
  char *text = NULL;
  assert_true(asprintf(&text,
                       "#!/bin/sh\n"
                       "if [ \"$1\" = version ]; then\n"
                       "  echo '{\"terraform_version\": \"1.11.4\"}'\n"
                       "  exit 0\n"
                       "fi\n%s",
                       body) >= 0);
  write_text(path, text, 0755);
  free(text);
  return path;
}

/* Shell lines printing each of lines (which hold no ') on stdout. */
char *printing(const char *const *lines, size_t n) {
  char *out = strdup("");
  for (size_t i = 0; i < n; i++) {
    char *more = NULL;
    assert_true(asprintf(&more, "%sprintf '%%s\\n' '%s'\n", out, lines[i]) >=
                0);
    free(out);
    out = more;
  }
  return out;
}

void fake_free(char *path) {
  char *dir = strdup(path);
  *strrchr(dir, '/') = '\0';
  rm_tree(dir);
  free(dir);
  free(path);
}

/* ---- builds */

size_t make_params(fx_t *f, const pv_t *extra, atr_param_value_t *out,
                   size_t max) {
  const pv_t base[] = {{"root", f->root, "string", 0},
                       {"greeting", "hello", "string", 0},
                       {"cpus", "2", "number", 0},
                       {"secret_token", CANARY, "string", 1},
                       {"sleep_seconds", "0", "number", 0},
                       {"fail", "false", "bool", 0}};
  size_t n = 0;
  for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
    out[n++] =
        (atr_param_value_t){sizeof(atr_param_value_t), base[i].name,
                            base[i].value, base[i].type, base[i].sensitive};
  for (size_t k = 0; extra != NULL && extra[k].name != NULL; k++) {
    size_t i = 0;
    while (i < n && strcmp(out[i].name, extra[k].name) != 0)
      i++;
    assert_true(i < max);
    out[i] =
        (atr_param_value_t){sizeof(atr_param_value_t), extra[k].name,
                            extra[k].value, extra[k].type, extra[k].sensitive};
    if (i == n)
      n++;
  }
  return n;
}

/* plan() and apply() of the workspace's next build in a fresh workdir. */
void ws_build(ws_t *ws, build_t *b) {
  fx_t *f = ws->f;
  ph_job_init(&b->job);
  b->workdir = fx_workdir(f);
  if (b->extra_tf != NULL) {
    char *p = path2(b->workdir, "agent_extra.tf");
    write_text(p, b->extra_tf, 0644);
    free(p);
  }
  atr_param_value_t params[16];
  size_t np = make_params(f, b->extra, params, 16);
  atr_prov_apply_request_t req = {
      .struct_size = sizeof req,
      .job = &b->job,
      .log = ph_job_log,
      .canceled = ph_job_canceled,
      .workdir = b->workdir,
      .transition = b->transition,
      .build_number = ++ws->number,
      .workspace_id = "6a1f0c2e-0000-4000-8000-00000000000a",
      .workspace_name = ws->name,
      .owner_id = "6a1f0c2e-0000-4000-8000-00000000000b",
      .owner_name = "alice",
      .owner_email = "alice@example.com",
      .organization_id = "6a1f0c2e-0000-4000-8000-00000000000c",
      .template_id = "6a1f0c2e-0000-4000-8000-00000000000d",
      .template_name = "terraform-local",
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

void build_ok(ws_t *ws, build_t *b) {
  ws_build(ws, b);
  if (b->rc != 0)
    fail_msg("build %lld: %s (%s)", (long long)ws->number, b->err,
             atr_err_name(b->rc));
  assert_null(b->err);
}

void build_free(build_t *b) {
  free(b->err);
  ph_result_release(&b->res); /* as the core reads and frees it */
  free(b->workdir);
  ph_job_free(&b->job);
}

/* The resource with metadata address == addr, or NULL. */
const atr_prov_resource_t *resource(const build_t *b, const char *addr) {
  for (size_t i = 0; i < b->res.nresources; i++) {
    const atr_prov_resource_t *r = &b->res.resources[i];
    for (size_t k = 0; k < r->nmetadata; k++) {
      if (strcmp(r->metadata[k].key, "address") == 0 &&
          strcmp(r->metadata[k].value, addr) == 0)
        return r;
    }
  }
  return NULL;
}

char *ws_file(const ws_t *ws, const char *name) {
  char *p = NULL;
  assert_true(asprintf(&p, "%s/alice/%s%s%s", ws->f->root, ws->name,
                       name ? "/" : "", name ? name : "") >= 0);
  return p;
}

char *ws_read(const ws_t *ws, const char *name) {
  char *p = ws_file(ws, name);
  char *text = read_text(p);
  free(p);
  return text;
}

bool ws_has(const ws_t *ws, const char *name) {
  char *p = ws_file(ws, name);
  bool yes = exists(p);
  free(p);
  return yes;
}

/* ---- parse */

void parse(fx_t *f, const char *workdir, const char *const *names, size_t n,
           parsed_t *p) {
  ph_job_init(&p->job);
  atr_prov_parse_request_t req = {.struct_size = sizeof req,
                                  .job = &p->job,
                                  .log = ph_job_log,
                                  .canceled = ph_job_canceled,
                                  .workdir = workdir,
                                  .param_names = names,
                                  .nparams = n};
  p->err = NULL;
  p->rc = f->ops->parse(f->ctx, &req, &p->err);
}

void parsed_free(parsed_t *p) {
  free(p->err);
  ph_job_free(&p->job);
}

const char *const starter_params[] = {"root",         "greeting",      "cpus",
                                      "secret_token", "sleep_seconds", "fail"};
