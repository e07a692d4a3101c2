/* tests/plugins/test_provisioner_terraform_cancel.c — a failing apply,
 * cancel of a running or not yet started job, and a terraform that
 * ignores SIGINT. Run by test_provisioner_terraform.c's main. */
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

/* ---- failure and cancel */

void test_a_failing_apply_returns_its_error_and_the_state(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  ws_t ws = {.f = &f, .name = "failing"};
  const pv_t fail[] = {{"fail", "true", "bool", 0}, {0}};
  build_t b = {.transition = ATR_TRANSITION_START, .extra = fail};
  ws_build(&ws, &b);
  assert_int_equal(b.rc, ATR_EPLUGIN);
  assert_non_null(b.err);
  assert_true(strncmp(b.err, "terraform apply failed (exit status 1): main.tf:",
                      48) == 0);
  assert_non_null(strstr(b.err, ": local-exec provisioner error: Error "
                                "running command './scripts/start.sh': exit "
                                "status 3."));
  assert_non_null(strstr(b.err, "failing on purpose because fail is true"));
  /* The state says what exists: the home, and a tainted running. */
  assert_non_null(b.res.state);
  assert_non_null(strstr(b.res.state, "\"tainted\""));
  assert_non_null(strstr(b.res.state, "\"home\""));
  assert_int_equal(b.res.nresources, 0);
  assert_non_null(ph_job_find(&b.job, ATR_LOG_ERROR, "Error: main.tf:"));
  assert_true(ws_has(&ws, NULL));
  build_free(&b);
  free(ws.state);
  fx_stop(&f);
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

/* Wait (up to 30 s) for a job log line containing needle. */
static void wait_for_line(atr_prov_job_t *job, const char *needle) {
  for (int i = 0; i < 3000 && ph_job_find(job, -1, needle) == NULL; i++)
    usleep(10 * 1000);
  if (ph_job_find(job, -1, needle) == NULL)
    fail_msg("no \"%s\" in the job log within 30 s", needle);
}

/* Whether a process runs with exactly this command line. */
static bool process_running(const char *a0, const char *a1) {
  bool found = false;
  DIR *d = opendir("/proc");
  const struct dirent *e;
  while (d != NULL && (e = readdir(d)) != NULL && !found) {
    char path[300], buf[256] = {0};
    snprintf(path, sizeof path, "/proc/%s/cmdline", e->d_name);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
      continue;
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    fclose(fp);
    size_t l0 = strlen(a0);
    found = n == l0 + strlen(a1) + 2 && strcmp(buf, a0) == 0 &&
            strcmp(buf + l0 + 1, a1) == 0;
  }
  if (d != NULL)
    closedir(d);
  return found;
}

void test_cancel_stops_one_job_and_returns_the_state(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  /* Two workspaces at once: one sleeps 37 s and is canceled, the other
   * sleeps 2 s and must finish untouched. */
  ws_t slow_ws = {.f = &f, .name = "slow"}, quick_ws = {.f = &f, .name = "ok"};
  const pv_t slow_p[] = {{"sleep_seconds", "37", "number", 0}, {0}};
  const pv_t quick_p[] = {{"sleep_seconds", "2", "number", 0}, {0}};
  build_t slow = {.transition = ATR_TRANSITION_START, .extra = slow_p};
  build_t quick = {.transition = ATR_TRANSITION_START, .extra = quick_p};
  bg_t gs = {.ws = &slow_ws, .b = &slow}, gq = {.ws = &quick_ws, .b = &quick};
  int fds = open_fds();
  assert_int_equal(pthread_create(&gs.thread, NULL, bg_run, &gs), 0);
  assert_int_equal(pthread_create(&gq.thread, NULL, bg_run, &gq), 0);
  wait_for_line(&slow.job, "sleeping 37s");
  assert_true(process_running("sleep", "37"));

  double t0 = now_s();
  atomic_store(&slow.job.canceled, 1); /* the host's order: flag, then call */
  f.ops->cancel(f.ctx, &slow.job);
  pthread_join(gs.thread, NULL);
  pthread_join(gq.thread, NULL);
  double took = gs.done_at - t0;
  if (took > 5.0)
    fail_msg("cancel took %.1f s", took);

  assert_int_equal(slow.rc, ATR_ECANCELED);
  assert_string_equal(slow.err, "terraform apply was canceled");
  assert_non_null(slow.res.state);
  assert_non_null(strstr(slow.res.state, "\"tainted\""));
  assert_non_null(
      ph_job_find(&slow.job, ATR_LOG_INFO, "Canceling: sent SIGINT"));
  assert_non_null(ph_job_find(&slow.job, ATR_LOG_INFO, "Interrupt received."));
  if (quick.rc != 0)
    fail_msg("the other job: %s", quick.err);
  assert_int_equal(quick.res.nresources, 3);
  assert_null(ph_job_find(&quick.job, -1, "Canceling"));

  /* Nothing is left behind: no child to reap, no sleep running. */
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  assert_int_equal(errno, ECHILD);
  for (int i = 0; i < 200 && process_running("sleep", "37"); i++)
    usleep(10 * 1000);
  assert_false(process_running("sleep", "37"));
  assert_int_equal(open_fds(), fds);
  build_free(&slow);
  build_free(&quick);
  free(slow_ws.state);
  free(quick_ws.state);
  fx_stop(&f);
}

void test_a_canceled_job_runs_nothing(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, NULL);
  char *workdir = fx_workdir(&f);
  atr_prov_job_t job;
  ph_job_init(&job);
  atomic_store(&job.canceled, 1);
  atr_param_value_t params[16];
  size_t np = make_params(&f, NULL, params, 16);
  atr_prov_apply_request_t req = {.struct_size = sizeof req,
                                  .job = &job,
                                  .log = ph_job_log,
                                  .canceled = ph_job_canceled,
                                  .workdir = workdir,
                                  .transition = ATR_TRANSITION_START,
                                  .build_number = 1,
                                  .workspace_name = "early",
                                  .owner_name = "alice",
                                  .params = params,
                                  .nparams = np};
  char *err = NULL;
  assert_int_equal(f.ops->plan(f.ctx, &req, &err), ATR_ECANCELED);
  assert_string_equal(err, "the build was canceled before terraform ran");
  assert_int_equal(job.n, 0); /* not even the command line */
  free(err);
  free(workdir);
  ph_job_free(&job);
  fx_stop(&f);
}

void test_a_terraform_ignoring_sigint_is_killed_after_the_grace(void **state) {
  (void)state;
  static const char *const said[] = {
      "{\"@level\":\"info\",\"@message\":\"stubborn\"}"};
  char *print = printing(said, 1);
  char *body = NULL;
  assert_true(asprintf(&body, "trap '' INT\n%sexec sleep 41\n", print) >= 0);
  char *fake = fx_fake(body);
  free(print);
  free(body);
  char *opts = NULL;
  assert_true(asprintf(&opts, "    binary: %s\n    cancel_grace: 1s\n", fake) >=
              0);
  fx_t f;
  fx_start(&f, opts);
  ws_t ws = {.f = &f, .name = "stubborn"};
  build_t b = {.transition = ATR_TRANSITION_START};
  bg_t g = {.ws = &ws, .b = &b};
  int fds = open_fds();
  assert_int_equal(pthread_create(&g.thread, NULL, bg_run, &g), 0);
  wait_for_line(&b.job, "stubborn");
  /* Only the host's flag, no cancel() call: the plugin sees it itself. */
  double t0 = now_s();
  atomic_store(&b.job.canceled, 1);
  pthread_join(g.thread, NULL);
  double took = g.done_at - t0;
  if (took < 0.9 || took > 5.0)
    fail_msg("returned %.2f s after the cancel; expected 1 s of grace", took);
  assert_int_equal(b.rc, ATR_ECANCELED);
  assert_non_null(ph_job_find(&b.job, ATR_LOG_WARN, "sent SIGKILL"));
  assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
  for (int i = 0; i < 200 && process_running("sleep", "41"); i++)
    usleep(10 * 1000);
  assert_false(process_running("sleep", "41"));
  assert_int_equal(open_fds(), fds);
  build_free(&b);
  free(ws.state);
  fx_stop(&f);
  free(opts);
  fake_free(fake);
}
