/* tests/abi/loader_fixture.c — the setting test_loader.c runs in: a
 * private plugin directory holding copies of the fixture_*.so (mode 0755),
 * scratch directories, the log captured per test, and the helpers that
 * open, configure and start plugins or assert a refusal. See
 * loader_fixture.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, vasprintf, open_memstream */
#endif
#include "loader_fixture.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>

#include "log.h"
#include "metrics.h"
#include "routes.h"

char *plugdir;           /* realpath of the private plugin directory */
static char *scratch[8]; /* other temp dirs, removed at the end */
static size_t nscratch;
static char *log_text; /* what the loader logged during a test */
static size_t log_len;
static FILE *log_stream;

/* ---- helpers --- */

ATR_PRINTF(1, 2)
char *fmt(const char *f, ...) {
  va_list ap;
  char *s = NULL;
  va_start(ap, f);
  assert_true(vasprintf(&s, f, ap) >= 0);
  va_end(ap);
  return s;
}

void copy_file(const char *src, const char *dst, mode_t mode) {
  FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
  assert_non_null(in);
  assert_non_null(out);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
    assert_int_equal(fwrite(buf, 1, n, out), n);
  fclose(in);
  fclose(out);
  assert_int_equal(chmod(dst, mode), 0);
}

char *new_dir(void) {
  char tmpl[] = "/tmp/atr-loader-XXXXXX";
  assert_non_null(mkdtemp(tmpl));
  char *real = realpath(tmpl, NULL);
  assert_non_null(real);
  assert_int_equal(chmod(real, 0755), 0);
  return real;
}

char *scratch_dir(void) {
  assert_true(nscratch < sizeof(scratch) / sizeof(scratch[0]));
  return scratch[nscratch++] = new_dir();
}

/* A copy of fixture `name` in `dir` with `mode`; returns its path. */
char *copy_fixture(const char *name, const char *dir, mode_t mode) {
  char *src = fmt("%s/%s.so", ATR_FIXTURE_DIR, name);
  char *dst = fmt("%s/%s.so", dir, name);
  copy_file(src, dst, mode);
  free(src);
  return dst;
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  return remove(path);
}

void rm_tree(char *dir) {
  if (dir != NULL)
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

const char *no_env(const char *name) {
  return NULL;
}

const char *test_env(const char *name) {
  if (strcmp(name, "ATRIUM_PLUGINS_FIXTURE_OPTS_ENDPOINT") == 0)
    return "http://env.example";
  return NULL;
}

atr_conf_node_t *yaml(const char *text) {
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  int rc = atr_conf_parse("test.yaml", text, strlen(text), &root, &err);
  if (rc != 0)
    fail_msg("%s", err ? err : "parse failed");
  return root;
}

void loader_in(atr_loader_t *l, const char *dir) {
  const char *dirs[] = {dir};
  char *err = NULL;
  assert_int_equal(atr_loader_init(l, dirs, 1, &err), 0);
  assert_null(err);
}

/* Open must refuse with exactly `expected` and keep nothing. */
void expect_refusal(atr_loader_t *l, const char *name, const char *file,
                    const char *expected) {
  atr_handle_t *h = (atr_handle_t *)1;
  char *err = NULL;
  size_t before = l->nplugins;
  assert_int_not_equal(atr_loader_open(l, name, file, &h, &err), 0);
  assert_null(h);
  assert_non_null(err);
  assert_string_equal(err, expected);
  assert_int_equal(l->nplugins, before);
  free(err);
}

atr_handle_t *open_ok(atr_loader_t *l, const char *name) {
  atr_handle_t *h = NULL;
  char *err = NULL;
  int rc = atr_loader_open(l, name, NULL, &h, &err);
  if (rc != 0)
    fail_msg("%s", err);
  assert_non_null(h);
  return h;
}

void configure_ok(atr_handle_t *h, const char *text) {
  atr_conf_node_t *root = yaml(text);
  char *err = NULL;
  int rc = atr_loader_configure(h, root, NULL, no_env, &err);
  atr_conf_free(root);
  if (rc != 0)
    fail_msg("%s", err);
}

void start_ok(atr_handle_t *h) {
  char *err = NULL;
  if (atr_loader_start(h, &err) != 0)
    fail_msg("%s", err);
  assert_int_equal(h->state, ATR_PLUGIN_RUNNING);
}

/* Configure must fail with exactly `expected`, marking the plugin failed. */
void expect_config_error(const char *text, const char *expected) {
  atr_loader_t l;
  loader_in(&l, plugdir);
  atr_handle_t *h = open_ok(&l, "fixture_opts");
  atr_conf_node_t *root = yaml(text);
  char *err = NULL;
  assert_int_equal(atr_loader_configure(h, root, NULL, no_env, &err),
                   ATR_ECONFIG);
  assert_string_equal(err, expected);
  assert_int_equal(h->state, ATR_PLUGIN_FAILED);
  assert_string_equal(h->error, expected);
  free(err);
  atr_conf_free(root);
  atr_loader_shutdown(&l);
}

void log_reset(void) {
  if (log_stream != NULL)
    fclose(log_stream);
  free(log_text);
  log_text = NULL;
  log_len = 0;
  log_stream = open_memstream(&log_text, &log_len);
  assert_non_null(log_stream);
  atr_log_set_stream(log_stream);
}

const char *log_get(void) {
  fflush(log_stream);
  return log_text ? log_text : "";
}

void assert_logged(const char *line) {
  if (strstr(log_get(), line) == NULL)
    fail_msg("log lacks \"%s\"; it has:\n%s", line, log_get());
}

char *read_text(const char *path) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return NULL;
  char *buf = calloc(1, 4096);
  assert_non_null(buf);
  size_t n = fread(buf, 1, 4095, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

/* ---- fixtures of the suite --- */

int suite_setup(void **state) {
  plugdir = new_dir();
  DIR *d = opendir(ATR_FIXTURE_DIR);
  assert_non_null(d);
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    size_t len = strlen(e->d_name);
    if (len > 3 && strcmp(e->d_name + len - 3, ".so") == 0) {
      char *name = strndup(e->d_name, len - 3);
      free(copy_fixture(name, plugdir, 0755));
      free(name);
    }
  }
  closedir(d);
  return 0;
}

int suite_teardown(void **state) {
  rm_tree(plugdir);
  for (size_t i = 0; i < nscratch; i++)
    rm_tree(scratch[i]);
  atr_log_set_stream(NULL);
  if (log_stream != NULL)
    fclose(log_stream);
  free(log_text);
  return 0;
}

int test_setup(void **state) {
  log_reset();
  return 0;
}

/* Every test shuts its loader down, which must leave no route or metric. */
int test_teardown(void **state) {
  assert_int_equal(atr_routes_count(), 0);
  assert_null(atr_metrics_find("fixture_good_inits_total"));
  assert_null(atr_metrics_find("fixture_initfail_up"));
  atr_routes_reset();
  atr_metrics_reset();
  return 0;
}
