/* tests/plugins/test_provisioner_docker_cancel.c — a pull that hangs,
 * cancel while waiting or pulling, starts in parallel, and secrets kept
 * out of every log. Run by test_provisioner_docker.c's main. */
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

void test_a_failed_pull_reports_the_engine_error(void **state) {
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

void test_cancel_while_waiting_returns_the_state(void **state) {
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

void test_cancel_while_pulling_returns_soon(void **state) {
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

void test_ten_starts_in_parallel_all_run(void **state) {
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

void test_sensitive_values_never_reach_a_log(void **state) {
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

void test_the_process_log_never_shows_a_secret(void **state) {
  (void)state;
  assert_int_equal(fflush(log_stream), 0);
  assert_non_null(log_buf);
  assert_null(strstr(log_buf, CANARY));
  assert_null(strstr(log_buf, AGENT_TOKEN));
}
