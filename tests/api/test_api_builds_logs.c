/* tests/api/test_api_builds_logs.c — job logs: followed as server-sent
 * events while a build writes them, and cut at provisioner.max_log_size.
 * See builds.h. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "builds.h"

/* The smallest log cap there is. */
static int server_up_small_logs(void **state) {
  static const srv_opts_t o = {.delay = "200ms", .max_log_size = "4096"};
  return builds_start(state, &o);
}

/* ---- 5. following logs ---------------------------------------------------------- */

/* GET path (with follow=true) as a stream of events, until the server
 * closes it; the answer's status. */
static long sse_follow(const srv_t *s, const char *path, atr_tc_events_t *out) {
  return atr_tc_events(
      s->h.port, &(atr_tc_req_t){.path = path, .token = s->owner_token}, out);
}

/* The stream: log events numbered first_id, first_id + 1, ..., then one
 * end event with status `status` and nothing after it. The number of log
 * events. */
static size_t check_stream(const atr_tc_events_t *s, json_int_t first_id,
                           const char *status) {
  if (s->n == 0 || strcmp(s->ev[s->n - 1].name, "end") != 0) {
    for (size_t i = 0; i < s->n; i++)
      print_error("event %zu: %s\n", i, s->ev[i].name);
  }
  assert_true(s->n > 0);
  for (size_t i = 0; i + 1 < s->n; i++) {
    assert_string_equal(s->ev[i].name, "log");
    assert_int_equal(json_integer_value(json_object_get(s->ev[i].data, "id")),
                     first_id + (json_int_t)i);
  }
  const atr_tc_event_t *end = &s->ev[s->n - 1];
  assert_string_equal(end->name, "end");
  assert_string_equal(jstr(end->data, "status"), status);
  assert_string_equal(jstr(end->data, "error"), "");
  return s->n - 1;
}

/* When the first log event whose output contains needle arrived. */
static double sse_seen_at(const atr_tc_events_t *s, const char *needle) {
  for (size_t i = 0; i < s->n; i++)
    if (strstr(jstr(s->ev[i].data, "output"), needle))
      return s->ev[i].at_ms;
  print_error("no event with \"%s\"\n", needle);
  fail();
  return -1;
}

/* How long the follower keeps the build held once it has seen it held. */
#define HELD_MS 800

/* On the follower's thread: once the held line has arrived, keep the
 * build running HELD_MS longer, then let it end. */
static void release_when_seen_held(void *ud, const atr_tc_event_t *e) {
  bool *released = ud;
  if (*released || strcmp(e->name, "log") != 0 ||
      !strstr(jstr(e->data, "output"), "echo: held until"))
    return;
  atr_harness_sleep_ms(HELD_MS);
  release_builds();
  *released = true;
}

/* b1 is held (hold_builds) until the follower has seen it running. */
static void follow_a_build_while_it_runs(const srv_t *s, const char *b1) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs?follow=true",
           b1);
  bool released = false;
  atr_tc_events_t live = {.on_event = release_when_seen_held, .ud = &released};
  assert_int_equal(sse_follow(s, path, &live), 200);
  assert_true(released);
  assert_contains(live.content_type, "text/event-stream");
  size_t n = check_stream(&live, 1, "succeeded");
  double start_at = sse_seen_at(&live, "echo: start workspace follow, build 1");
  double done_at = sse_seen_at(&live, "echo: start done");
  double end_at = live.ev[live.n - 1].at_ms;
  /* the build ran HELD_MS after the follower had its start line: lines
   * came while it ran, not all at the end */
  if (end_at - start_at < 700)
    print_error("start line at %.0f ms, end at %.0f ms\n", start_at, end_at);
  assert_true(end_at - start_at >= 700);
  assert_true(done_at > start_at);

  /* the same lines as the plain list */
  build_path(path, sizeof path, b1);
  json_t *lines = job_log(s, path, s->owner_token);
  assert_int_equal(json_array_size(lines), n);
  for (size_t i = 0; i < n; i++)
    assert_string_equal(jstr(json_array_get(lines, i), "output"),
                        jstr(live.ev[i].data, "output"));
  json_decref(lines);
  atr_tc_events_free(&live);
}

static void build_logs_can_be_followed_as_they_are_written(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  tmpl_t t;
  make_template(s, "dev", &t);
  char ws[37], b1[37], path[256];
  hold_builds();
  new_workspace(s, "follow", &t, VALUES("flavor", "small"), ws, b1);
  follow_a_build_while_it_runs(s, b1);

  /* an ended job: its lines and the end at once */
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs?follow=true",
           b1);
  atr_tc_events_t again = {0};
  assert_int_equal(sse_follow(s, path, &again), 200);
  size_t n = check_stream(&again, 1, "succeeded");
  assert_true(n >= 5);
  assert_true(again.ev[again.n - 1].at_ms < 2000);
  atr_tc_events_free(&again);

  /* after=N skips the first N lines, followed or not */
  snprintf(path, sizeof path,
           "/api/v2/workspacebuilds/%s/logs?follow=true&after=3", b1);
  atr_tc_events_t after = {0};
  assert_int_equal(sse_follow(s, path, &after), 200);
  assert_int_equal(check_stream(&after, 4, "succeeded"), n - 3);
  atr_tc_events_free(&after);
  snprintf(path, sizeof path, "/api/v2/workspacebuilds/%s/logs?after=3", b1);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), n - 3);
  assert_int_equal(
      json_integer_value(json_object_get(json_array_get(r.json, 0), "id")), 4);
  atr_tc_res_free(&r);

  /* an import's log follows the same way */
  snprintf(path, sizeof path, "/api/v2/templateversions/%s/logs?follow=true",
           t.version_id);
  atr_tc_events_t import = {0};
  assert_int_equal(sse_follow(s, path, &import), 200);
  check_stream(&import, 1, "succeeded");
  atr_tc_events_free(&import);
}

/* ---- the log cap ------------------------------------------------------------------ */

/* A build whose log passes provisioner.max_log_size keeps what came before
 * the cap, ends with one line saying where it was cut, and its job says
 * logs_overflowed; the build itself is not harmed. Echo writes one line
 * per parameter, so 150 long parameter names make about 7 KiB. */
static void a_long_log_is_cut_at_the_cap(void **state) {
  srv_t *s = *state;
  owner_signs_in(s);
  char *yaml = strdup("name: chatty\nprovisioner: echo\nparameters:\n");
  for (int i = 0; i < 150; i++) {
    char *next = NULL;
    assert_true(asprintf(&next,
                         "%s  - name: a_rather_long_parameter_name_%03d\n"
                         "    type: string\n    default: x\n",
                         yaml, i) > 0);
    free(yaml);
    yaml = next;
  }
  char file[64], version[37], path[128];
  upload_yaml(s, yaml, file);
  free(yaml);
  create_version(s, file, "v1", NULL, version);
  version_path(path, sizeof path, version);
  atr_tc_res_t r = wait_end(s, path, "succeeded", BUILD_MS);
  atr_tc_res_free(&r);
  snprintf(path, sizeof path, "/api/v2/organizations/%s/templates", s->org_id);
  r = call(s, "POST", path, s->owner_token,
           json_pack("{s:s, s:s}", "name", "chatty", "template_version_id",
                     version));
  ASSERT_ANSWER(r, 201);
  tmpl_t t;
  snprintf(t.id, sizeof t.id, "%s", field(&r, "id"));
  atr_tc_res_free(&r);

  char ws[37], b1[37];
  new_workspace(s, "chatty", &t, json_array(), ws, b1);
  wait_build(s, b1, "running");
  build_path(path, sizeof path, b1);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  assert_true(json_is_true(
      json_object_get(json_object_get(r.json, "job"), "logs_overflowed")));
  atr_tc_res_free(&r);

  json_t *lines = job_log(s, path, s->owner_token);
  size_t n = json_array_size(lines), kept = 0, cuts = 0;
  for (size_t i = 0; i < n; i++) {
    const char *out = jstr(json_array_get(lines, i), "output");
    if (strstr(out, "the log was cut here")) {
      cuts++;
      assert_int_equal(i, n - 1); /* nothing after the note */
      assert_contains(out, "4096 bytes (provisioner.max_log_size)");
    } else {
      kept += strlen(out);
    }
  }
  assert_int_equal(cuts, 1);
  assert_true(kept <= 4096);
  assert_true(kept > 3000); /* what came before the cap is all there */
  json_decref(lines);
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, server_up, srv_stop)
#define T_WITH(f, up) cmocka_unit_test_setup_teardown(f, up, srv_stop)
#define T_WITH2(f, up, down) cmocka_unit_test_setup_teardown(f, up, down)
  const struct CMUnitTest tests[] = {
      T(build_logs_can_be_followed_as_they_are_written),
      T_WITH(a_long_log_is_cut_at_the_cap, server_up_small_logs),
  };
#undef T
#undef T_WITH
#undef T_WITH2
  return BUILDS_MAIN("api_builds_logs", tests);
}
