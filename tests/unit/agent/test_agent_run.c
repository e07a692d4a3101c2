/* tests/unit/agent/test_agent_run.c — the agent's parts that run on a
 * loop, against the test double of its transport (fake_agent_conn.h):
 * log batching, acks and resume; lifecycle reports in order; scripts (exit
 * codes, lines, timeouts); and whole runs of the agent from manifest to
 * exit. Every wait is for an event, never for a time. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_internal.h"
#include "agent_lifecycle.h"
#include "agent_logs.h"
#include "agent_scripts.h"
#include "fake_agent_conn.h"

static void close_conn(uv_loop_t *loop, agent_conn_t *c) {
  uv_close((uv_handle_t *)&c->tick, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  fake_conn_free(c);
}

static json_int_t batch_first(const fake_req_t *r, size_t *count) {
  json_t *j = json_loads(r->body, 0, NULL);
  json_t *logs = json_object_get(j, "logs");
  *count = json_array_size(logs);
  json_int_t first =
      json_integer_value(json_object_get(json_array_get(logs, 0), "seq"));
  json_decref(j);
  return first;
}

static void add_lines(agent_logs_t *l, agent_log_source_t *s, int n) {
  for (int i = 0; i < n; i++) {
    char line[32];
    snprintf(line, sizeof line, "line %d", i + 1);
    assert_true(agent_logs_add(l, s, "info", line, strlen(line), 1));
  }
}

static void test_logs_batches_acks(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  agent_conn_t *c = fake_conn_new(&loop, true);
  agent_logs_t l;
  agent_logs_init(&l, &loop, c, 0, 0);
  agent_log_source_t *s = agent_logs_source(&l, "src-1");
  add_lines(&l, s, 250);
  /* nothing goes before the resume point is known */
  assert_int_equal(c->n, 0);
  json_t *st = json_loads(
      "{\"sources\":[{\"log_source_id\":\"src-1\",\"last_seq\":10}]}", 0, NULL);
  agent_logs_resume(&l, st);
  json_decref(st);
  /* one batch in flight: 100 lines from seq 11 */
  assert_int_equal(c->n, 1);
  size_t count;
  assert_int_equal(batch_first(&c->reqs[0], &count), 11);
  assert_int_equal(count, 100);
  assert_string_equal(c->reqs[0].method, "PATCH");
  add_lines(&l, s, 1);
  assert_int_equal(c->n, 1);
  fake_reply(c, 0, 200, "{\"acked_seq\":110}");
  assert_int_equal(c->n, 2);
  assert_int_equal(batch_first(&c->reqs[1], &count), 111);
  /* the answer is lost: the same batch again once up */
  fake_down(c);
  assert_int_equal(c->n, 2);
  fake_up(c);
  agent_logs_kick(&l);
  assert_int_equal(c->n, 3);
  assert_int_equal(batch_first(&c->reqs[2], &count), 111);
  assert_int_equal(count, 100);
  fake_reply(c, 2, 200, "{\"acked_seq\":210}");
  assert_int_equal(batch_first(&c->reqs[3], &count), 211);
  assert_int_equal(count, 51);
  assert_false(agent_logs_idle(&l));
  fake_reply(c, 3, 200, "{\"acked_seq\":261}");
  assert_true(agent_logs_idle(&l));
  assert_int_equal(l.bytes, 0);
  agent_logs_close(&l);
  close_conn(&loop, c);
  agent_logs_free(&l);
  uv_loop_close(&loop);
}

static void test_logs_cap_and_refusal(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  agent_conn_t *c = fake_conn_new(&loop, true);
  agent_logs_t l;
  /* room for about 10 short lines */
  agent_logs_init(&l, &loop, c, 10 * (sizeof(agent_log_line_t) + 8), 0);
  agent_log_source_t *s = agent_logs_source(&l, "src");
  int kept = 0;
  for (int i = 0; i < 30; i++)
    kept += agent_logs_add(&l, s, "info", "line", 4, 1);
  assert_int_equal(kept, 10);
  assert_int_equal(s->dropped, 20);
  agent_logs_resume(&l, NULL);
  /* the ack makes room: the warn line goes next, numbered on */
  fake_reply(c, 0, 200, "{\"acked_seq\":10}");
  assert_true(agent_logs_add(&l, s, "info", "after", 5, 1));
  json_t *j = json_loads(c->reqs[1].body, 0, NULL);
  json_t *logs = json_object_get(j, "logs");
  assert_int_equal(json_array_size(logs), 1);
  json_t *w = json_array_get(logs, 0);
  assert_int_equal(json_integer_value(json_object_get(w, "seq")), 11);
  assert_string_equal(json_string_value(json_object_get(w, "level")), "warn");
  assert_string_equal(json_string_value(json_object_get(w, "output")),
                      "20 lines dropped: the agent's buffer was full");
  json_decref(j);
  fake_reply(c, 1, 200, "{\"acked_seq\":11}");
  j = json_loads(c->reqs[2].body, 0, NULL);
  w = json_array_get(json_object_get(j, "logs"), 0);
  assert_int_equal(json_integer_value(json_object_get(w, "seq")), 12);
  assert_string_equal(json_string_value(json_object_get(w, "output")), "after");
  json_decref(j);
  /* a batch the server refuses for good is dropped, not resent forever */
  fake_reply(c, 2, 400, "{}");
  assert_true(agent_logs_idle(&l));
  agent_logs_close(&l);
  close_conn(&loop, c);
  agent_logs_free(&l);
  uv_loop_close(&loop);
}

static void test_lifecycle_order(void **state) {
  (void)state;
  uv_loop_t loop;
  uv_loop_init(&loop);
  agent_conn_t *c = fake_conn_new(&loop, false);
  agent_lifecycle_t lc;
  agent_lifecycle_init(&lc, &loop, c);
  assert_true(agent_lifecycle_set(&lc, AGENT_STARTING, 1000000));
  assert_true(agent_lifecycle_set(&lc, AGENT_READY, 2000000));
  /* backwards, or a second end of the start: ignored */
  assert_false(agent_lifecycle_set(&lc, AGENT_STARTING, 3000000));
  assert_false(agent_lifecycle_set(&lc, AGENT_START_ERROR, 3000000));
  assert_int_equal(c->n, 0); /* no session yet */
  fake_up(c);
  agent_lifecycle_kick(&lc);
  assert_int_equal(c->n, 1);
  assert_string_equal(c->reqs[0].body, "{\"state\":\"starting\",\"changed_at\":"
                                       "\"1970-01-01T00:00:01.000000Z\"}");
  /* lost: sent again, still first */
  fake_down(c);
  fake_up(c);
  agent_lifecycle_kick(&lc);
  assert_int_equal(c->n, 2);
  assert_non_null(strstr(c->reqs[1].body, "starting"));
  fake_reply(c, 1, 204, NULL);
  assert_int_equal(c->n, 3);
  assert_non_null(strstr(c->reqs[2].body, "\"ready\""));
  assert_non_null(strstr(c->reqs[2].body, "00:00:02.000000Z"));
  /* 409: the server is ahead; counts as acked */
  fake_reply(c, 2, 409, NULL);
  assert_true(agent_lifecycle_idle(&lc));
  assert_true(agent_lifecycle_set(&lc, AGENT_SHUTTING_DOWN, 4000000));
  assert_true(agent_lifecycle_set(&lc, AGENT_OFF, 5000000));
  assert_true(agent_state_final(lc.state));
  assert_false(agent_lifecycle_set(&lc, AGENT_SHUTDOWN_ERROR, 6000000));
  fake_reply(c, 3, 204, NULL);
  assert_non_null(strstr(c->reqs[4].body, "\"off\""));
  fake_reply(c, 4, 204, NULL);
  assert_true(agent_lifecycle_idle(&lc));
  agent_lifecycle_close(&lc);
  close_conn(&loop, c);
  uv_loop_close(&loop);
}

typedef struct script_result {
  bool done;
  agent_script_end_t end;
  int64_t code;
  char out[256];
} script_result_t;

static void on_line(void *ud, bool is_stderr, const char *line, size_t len) {
  script_result_t *r = ud;
  size_t n = strlen(r->out);
  snprintf(r->out + n, sizeof r->out - n, "%s:%.*s;", is_stderr ? "E" : "O",
           (int)len, line);
}

static void on_done(void *ud, agent_script_end_t end, int64_t code) {
  script_result_t *r = ud;
  r->done = true;
  r->end = end;
  r->code = code;
}

static script_result_t run_script(const char *script, int64_t timeout_ms) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  script_result_t r = {0};
  agent_script_opts_t o = {.script = script,
                           .dir = "/tmp",
                           .timeout_ms = timeout_ms,
                           .kill_grace_ms = 200};
  agent_script_cbs_t cbs = {.on_line = on_line, .on_done = on_done};
  agent_script_t *s;
  assert_int_equal(agent_script_run(&loop, &o, &cbs, &r, &s), 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  assert_true(r.done);
  assert_int_equal(uv_loop_close(&loop), 0);
  return r;
}

static void test_scripts(void **state) {
  (void)state;
  script_result_t r = run_script("pwd; echo oops >&2; exit 3", 0);
  assert_int_equal(r.end, AGENT_SCRIPT_EXITED);
  assert_int_equal(r.code, 3);
  assert_non_null(strstr(r.out, "O:/tmp;"));
  assert_non_null(strstr(r.out, "E:oops;"));
  /* the timeout kills the whole group, the background child too, and
   * done comes without waiting for the 30 s */
  r = run_script("sleep 30 & sleep 30", 100);
  assert_int_equal(r.end, AGENT_SCRIPT_TIMEOUT);
  /* a script ignoring SIGTERM gets SIGKILL after the grace */
  r = run_script("trap '' TERM; echo started; sleep 30", 100);
  assert_int_equal(r.end, AGENT_SCRIPT_TIMEOUT);
  assert_string_equal(r.out, "O:started;");
  r = run_script("printf 'no newline'", 0);
  assert_string_equal(r.out, "O:no newline;");
  assert_int_equal(r.code, 0);
}

/* A whole run: manifest -> script -> report -> shutdown event -> exit. */
static bool exit_on_final = true;

static agent_conn_t *run_agent_init(const char *manifest, const char *after,
                                    char **init_argv, int want_rc) {
  fake_auto_next = true;
  fake_manifest_next = manifest;
  fake_shutdown_after_next = after;
  agent_config_t cfg = {.url = strdup("http://test"),
                        .token = strdup("atragt_test"),
                        .exit_on_final = exit_on_final,
                        .ports_ms = 60000,
                        .stats_ms = 60000,
                        .flush_ms = 0,
                        .kill_grace_ms = 200,
                        .final_wait_ms = 10000,
                        .proc_dir = "/proc",
                        .cgroup_dir = "/nonexistent",
                        .init_argv = init_argv};
  assert_int_equal(agent_run(&cfg), want_rc);
  free(cfg.url);
  free(cfg.token);
  return fake_last_conn;
}

static agent_conn_t *run_agent(const char *manifest, const char *after) {
  return run_agent_init(manifest, after, NULL, 0);
}

static const char *manifest_fmt =
    "{\"agent_id\":\"a1\",\"workspace_name\":\"ws\",\"directory\":\"/tmp\","
    "\"environment_variables\":{\"GREETING\":\"hi there\"},"
    "\"log_sources\":[{\"id\":\"s-start\",\"display_name\":\"Startup "
    "Script\"},{\"id\":\"s-stop\",\"display_name\":\"Shutdown Script\"},"
    "{\"id\":\"s-agent\",\"display_name\":\"Agent\"}],"
    "\"scripts\":[{\"log_source_id\":\"s-start\",\"script\":\"%s\","
    "\"timeout_seconds\":%d,\"run_on_start\":true,\"run_on_stop\":false},"
    "{\"log_source_id\":\"s-stop\",\"script\":\"echo saving\","
    "\"timeout_seconds\":5,\"run_on_start\":false,\"run_on_stop\":true}],"
    "\"metadata\":[],\"apps\":[]}";

static void check_states(agent_conn_t *c, const char *const *want) {
  size_t n = 0;
  while (want[n])
    n++;
  assert_int_equal(c->nstates, n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(c->states[i], want[i]);
}

static void test_agent_ready_then_off(void **state) {
  (void)state;
  char m[2048];
  snprintf(m, sizeof m, manifest_fmt, "echo $GREETING from $(pwd)", 10);
  agent_conn_t *c = run_agent(m, "ready");
  const char *const want[] = {"starting", "ready", "shutting_down", "off",
                              NULL};
  check_states(c, want);
  assert_non_null(strstr(c->log_text, "hi there from /tmp\n"));
  assert_non_null(strstr(c->log_text, "saving\n"));
  assert_int_equal(fake_count(c, "/startup"), 1);
  fake_conn_free(c);
}

static void test_agent_start_error(void **state) {
  (void)state;
  char m[2048];
  snprintf(m, sizeof m, manifest_fmt, "echo failing; exit 3", 10);
  agent_conn_t *c = run_agent(m, "start_error");
  const char *const want[] = {"starting", "start_error", "shutting_down", "off",
                              NULL};
  check_states(c, want);
  assert_non_null(
      strstr(c->log_text, "failing\nstartup script exited with code 3\n"));
  fake_conn_free(c);
}

static void test_agent_start_timeout(void **state) {
  (void)state;
  char m[2048];
  snprintf(m, sizeof m, manifest_fmt, "sleep 30", 1);
  agent_conn_t *c = run_agent(m, "start_timeout");
  const char *const want[] = {"starting", "start_timeout", "shutting_down",
                              "off", NULL};
  check_states(c, want);
  assert_non_null(strstr(c->log_text, "startup script timed out"));
  fake_conn_free(c);
}

/* --init: the workload leaves an orphan that exits at once; the agent
 * reaps it (it is a subreaper here, PID 1 in a container), shuts down when
 * the workload exits, and exits with the workload's status. */
static void test_init_workload_exits(void **state) {
  (void)state;
  char flag[] = "/tmp/atrium-agent-initXXXXXX";
  assert_non_null(mkdtemp(flag));
  char m[2048], ready[300], work[512];
  snprintf(ready, sizeof ready, "%s/ready", flag);
  snprintf(m, sizeof m, manifest_fmt, "true", 10);
  /* the workload waits (bounded) until the server stored "ready" */
  snprintf(work, sizeof work,
           "i=0; while [ ! -e %s ] && [ $i -lt 600 ]; do "
           "sleep 0.05; i=$((i+1)); done; /bin/sh -c 'exit 0' & exit 7",
           ready);
  char *argv[] = {"/bin/sh", "-c", work, NULL};
  fake_touch_on_ready_next = ready;
  agent_conn_t *c = run_agent_init(m, NULL, argv, 7);
  fake_touch_on_ready_next = NULL;
  const char *const want[] = {"starting", "ready", "shutting_down", "off",
                              NULL};
  check_states(c, want);
  fake_conn_free(c);
  int st;
  errno = 0;
  assert_int_equal(waitpid(-1, &st, WNOHANG), -1);
  assert_int_equal(errno, ECHILD); /* no zombie left behind */
  snprintf(work, sizeof work, "rm -rf %s", flag);
  assert_int_equal(system(work), 0);
}

/* --init: a shutdown while the workload runs: the shutdown script first,
 * then SIGTERM to the workload; its status (143) is the agent's. */
static void test_init_shutdown_stops_workload(void **state) {
  (void)state;
  char m[2048];
  snprintf(m, sizeof m, manifest_fmt, "true", 10);
  char *argv[] = {"/bin/sleep", "30", NULL};
  agent_conn_t *c = run_agent_init(m, "ready", argv, 128 + SIGTERM);
  const char *const want[] = {"starting", "ready", "shutting_down", "off",
                              NULL};
  check_states(c, want);
  assert_non_null(strstr(c->log_text, "saving\n"));
  fake_conn_free(c);
}

/* Without --env-file or --init the agent stays after a shutdown the server
 * asked for (off); a SIGTERM then ends it at once. */
static void test_plain_mode_sigterm_after_off(void **state) {
  (void)state;
  char m[2048];
  snprintf(m, sizeof m, manifest_fmt, "true", 10);
  exit_on_final = false;
  fake_sigterm_after_next = "off";
  agent_conn_t *c = run_agent(m, "ready");
  fake_sigterm_after_next = NULL;
  exit_on_final = true;
  const char *const want[] = {"starting", "ready", "shutting_down", "off",
                              NULL};
  check_states(c, want);
  fake_conn_free(c);
}

/* A one-thread HTTP server for health checks: answers every request with
 * 200 until told to stop. */
typedef struct http_stub {
  int fd;
  int port;
  pthread_t thread;
} http_stub_t;

static void *stub_main(void *ud) {
  http_stub_t *h = ud;
  for (;;) {
    int c = accept(h->fd, NULL, NULL);
    if (c < 0)
      return NULL;
    char buf[2048];
    ssize_t n = read(c, buf, sizeof buf);
    if (n > 0) {
      static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                               "Connection: close\r\n\r\nok";
      ssize_t w = write(c, ok, sizeof ok - 1);
      (void)w;
    }
    close(c);
  }
}

static void stub_start(http_stub_t *h) {
  h->fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(h->fd, (struct sockaddr *)&a, sizeof a), 0);
  assert_int_equal(listen(h->fd, 16), 0);
  socklen_t len = sizeof a;
  getsockname(h->fd, (struct sockaddr *)&a, &len);
  h->port = ntohs(a.sin_port);
  pthread_create(&h->thread, NULL, stub_main, h);
}

static void stub_stop(http_stub_t *h) {
  shutdown(h->fd, SHUT_RDWR);
  close(h->fd);
  pthread_join(h->thread, NULL);
}

/* Health checks: an app that answers 200 turns healthy, one whose port
 * refuses turns unhealthy after its threshold; both in one report. */
static void test_app_health(void **state) {
  (void)state;
  http_stub_t h;
  stub_start(&h);
  /* a port nothing listens on: bound, never listening */
  int closed_fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  bind(closed_fd, (struct sockaddr *)&a, sizeof a);
  socklen_t len = sizeof a;
  getsockname(closed_fd, (struct sockaddr *)&a, &len);
  char m[4096], apps[1024];
  snprintf(apps, sizeof apps,
           "\"apps\":[{\"id\":\"app-ok\",\"healthcheck\":{\"url\":"
           "\"http://127.0.0.1:%d/healthz\",\"interval\":1,\"threshold\":1}},"
           "{\"id\":\"app-bad\",\"healthcheck\":{\"url\":"
           "\"http://127.0.0.1:%d/\",\"interval\":1,\"threshold\":2}}]}",
           h.port, ntohs(a.sin_port));
  snprintf(m, sizeof m, manifest_fmt, "true", 10);
  char *tail = strstr(m, "\"apps\":[]}");
  assert_non_null(tail);
  snprintf(tail, sizeof m - (size_t)(tail - m), "%s", apps);
  fake_event_when_next[0] = "\"app-ok\":\"healthy\"";
  fake_event_when_next[1] = "\"app-bad\":\"unhealthy\"";
  agent_conn_t *c = run_agent(m, NULL);
  fake_event_when_next[0] = fake_event_when_next[1] = NULL;
  size_t first = 0;
  for (size_t i = 0; i < c->n; i++)
    if (strstr(c->reqs[i].path, "/app-health")) {
      first = first ? first : i + 1;
    }
  assert_true(first > 0);
  assert_non_null(strstr(c->reqs[first - 1].body, "initializing"));
  assert_int_equal(c->events_sent, 1);
  fake_conn_free(c);
  close(closed_fd);
  stub_stop(&h);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_logs_batches_acks),
      cmocka_unit_test(test_logs_cap_and_refusal),
      cmocka_unit_test(test_lifecycle_order),
      cmocka_unit_test(test_scripts),
      cmocka_unit_test(test_agent_ready_then_off),
      cmocka_unit_test(test_agent_start_error),
      cmocka_unit_test(test_agent_start_timeout),
      cmocka_unit_test(test_init_workload_exits),
      cmocka_unit_test(test_init_shutdown_stops_workload),
      cmocka_unit_test(test_app_health),
      cmocka_unit_test(test_plain_mode_sigterm_after_off),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
