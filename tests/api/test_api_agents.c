/* tests/api/test_api_agents.c — workspace agents over the API, as an agent
 * and as its user see them: every agent route as plain HTTP/1.1 with a
 * real token; each token kind refused (401) on the other's routes, over
 * the whole route table; a revoked token refused; the agent in
 * resources[].agents[]; a followed agent log ending when the agent is
 * off; what `atrium show`, `list` and `logs --agent` print (golden).
 * See agent_ws.h for how the agent is made. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_ws.h"
#include "api.h"

#define GOLDEN_DIR ATR_TEST_SOURCE_DIR "/tests/api/golden"

/* The server, the owner signed in, a workspace with its agent. */
static int agent_up(void **state) {
  if (server_up(state) != 0)
    return -1;
  srv_t *s = *state;
  owner_signs_in(s);
  return 0;
}

static json_t *line(int64_t seq, const char *output) {
  return json_pack("{s:I, s:s, s:s, s:s}", "seq", (json_int_t)seq, "created_at",
                   "2026-12-07T21:50:01Z", "output", output, "level", "info");
}

static json_t *logs_body(const agent_ws_t *a, json_t *lines) {
  return json_pack("{s:s, s:o}", "log_source_id", a->source_id, "logs", lines);
}

static void report(const srv_t *s, const agent_ws_t *a, const char *state,
                   const char *at, long want) {
  json_t *b = json_pack("{s:s}", "state", state);
  if (at)
    json_object_set_new(b, "changed_at", json_string(at));
  ASSERT_STATUS(want, agent_call(s, a, "POST", me("report-lifecycle"), b));
}

/* GET /workspaceagents/{id}<sub> as the owner. */
static atr_tc_res_t user_get(const srv_t *s, const agent_ws_t *a,
                             const char *sub) {
  char path[160];
  snprintf(path, sizeof path, "/api/v2/workspaceagents/%s%s", a->agent_id, sub);
  return get(s, path, s->owner_token);
}

/* ---- the agent's routes ----------------------------------------------------- */

static void agent_reports(const srv_t *s, const agent_ws_t *a) {
  ASSERT_STATUS(204,
                agent_call(s, a, "POST", me("startup"),
                           json_pack("{s:s, s:s, s:[s]}", "version", "0.9.0",
                                     "expanded_directory", "/home/coder",
                                     "subsystems", "envbox")));
  report(s, a, "starting", "2026-12-07T21:50:00Z", 204);
  atr_tc_res_t r = agent_call(
      s, a, "PATCH", me("logs"),
      logs_body(a, json_pack("[o, o]", line(1, "one"), line(2, "two"))));
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "acked_seq")), 2);
  atr_tc_res_free(&r);
  /* the answer was lost: the agent sends the batch again, with one more */
  r = agent_call(s, a, "PATCH", me("logs"),
                 logs_body(a, json_pack("[o, o, o]", line(1, "one"),
                                        line(2, "two"), line(3, "three"))));
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_integer_value(json_object_get(r.json, "acked_seq")), 3);
  atr_tc_res_free(&r);
  report(s, a, "ready", "2026-12-07T21:50:04.2Z", 204);
  report(s, a, "ready", NULL, 204); /* the same again: a no-op */
  report(s, a, "start_error", NULL, 409);
}

static void every_agent_route_answers_as_plain_http(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "agentws", &a);
  atr_tc_res_t r = agent_call(s, &a, "GET", me("manifest"), NULL);
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "agent_id"), a.agent_id);
  assert_string_equal(field(&r, "agent_name"), "main");
  assert_string_equal(field(&r, "workspace_id"), a.ws);
  atr_tc_res_free(&r);
  agent_reports(s, &a);

  r = agent_call(s, &a, "GET", me("logs/state"), NULL);
  ASSERT_ANSWER(r, 200);
  size_t i, found = 0;
  json_t *src;
  json_array_foreach(json_object_get(r.json, "sources"), i, src) {
    bool ours = strcmp(jstr(src, "log_source_id"), a.source_id) == 0;
    found += ours;
    assert_int_equal(json_integer_value(json_object_get(src, "last_seq")),
                     ours ? 3 : 0);
  }
  assert_int_equal(found, 1);
  atr_tc_res_free(&r);
  ASSERT_STATUS(
      204, agent_call(s, &a, "POST", me("metadata"),
                      json_pack("{s:[{s:s, s:s, s:s, s:i}]}", "metadata", "key",
                                "load", "value", "0.42", "collected_at",
                                "2026-12-07T21:50:05Z", "age", 1)));
  r = agent_call(s, &a, "POST", me("report-stats"),
                 json_pack("{s:{}, s:i, s:i}", "connections_by_proto",
                           "connection_count", 0, "rx_bytes", 10));
  ASSERT_ANSWER(r, 200);
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "report_interval")),
      INT64_C(30000000000));
  atr_tc_res_free(&r);
  ASSERT_STATUS(204, agent_call(s, &a, "POST", me("app-health"),
                                json_pack("{s:{}}", "healths")));
  ASSERT_STATUS(204, agent_call(s, &a, "POST", me("listening-ports"),
                                json_pack("{s:[{s:s, s:s, s:i}]}", "ports",
                                          "process_name", "code-server",
                                          "network", "tcp", "port", 13337)));
  ASSERT_ERROR(400, "Events come only inside a session.",
               agent_call(s, &a, "GET", me("events"), NULL));

  /* what the owner reads */
  r = user_get(s, &a, "");
  ASSERT_ANSWER(r, 200);
  assert_string_equal(field(&r, "lifecycle_state"), "ready");
  assert_string_equal(field(&r, "version"), "0.9.0");
  assert_string_equal(field(&r, "status"), "connecting"); /* never dialed */
  atr_tc_res_free(&r);
  r = user_get(s, &a, "/logs?after=1&limit=1");
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 1);
  assert_string_equal(jstr(json_array_get(r.json, 0), "output"), "two");
  atr_tc_res_free(&r);
  r = user_get(s, &a, "/logs");
  ASSERT_ANSWER(r, 200);
  assert_int_equal(json_array_size(r.json), 3); /* each line once */
  atr_tc_res_free(&r);
  r = user_get(s, &a, "/listening-ports");
  ASSERT_ANSWER(r, 200);
  json_t *port = json_array_get(json_object_get(r.json, "ports"), 0);
  assert_int_equal(json_integer_value(json_object_get(port, "port")), 13337);
  atr_tc_res_free(&r);
  /* metadata is committed by the agent writer within ~200 ms of the 204
   * (agent_writer.h): wait for it, bounded */
  for (int tries = 0;; tries++) {
    r = user_get(s, &a, "/metadata");
    ASSERT_ANSWER(r, 200);
    if (tries >= 100 ||
        strcmp(jstr(json_array_get(r.json, 0), "value"), "0.42") == 0)
      break;
    atr_tc_res_free(&r);
    usleep(100 * 1000);
  }
  assert_string_equal(jstr(json_array_get(r.json, 0), "value"), "0.42");
  atr_tc_res_free(&r);

  /* resources[].agents[] in the workspace's JSON */
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaces/%s", a.ws);
  r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  json_t *res = json_array_get(
      json_object_get(json_object_get(r.json, "latest_build"), "resources"), 0);
  json_t *agent = json_array_get(json_object_get(res, "agents"), 0);
  assert_string_equal(jstr(agent, "id"), a.agent_id);
  assert_string_equal(jstr(agent, "name"), "main");
  atr_tc_res_free(&r);
}

/* ---- bodies ------------------------------------------------------------------- */

static void bodies_are_checked_field_by_field(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "bodies", &a);
  atr_tc_res_t r =
      agent_call(s, &a, "PATCH", me("logs"),
                 logs_body(&a, json_pack("[{s:i, s:s}, {s:i, s:s, s:s}]", "seq",
                                         0, "output", "x", "seq", 1, "output",
                                         "y", "level", "loud")));
  const char *f1[] = {"logs[0].seq", "logs[1].level"};
  const char *d1[] = {"1 or more", "trace, debug, info, warn, error"};
  assert_validations(&r, f1, d1, 2);
  atr_tc_res_free(&r);

  r = agent_call(
      s, &a, "POST", me("report-lifecycle"),
      json_pack("{s:s, s:s}", "state", "napping", "changed_at", "yesterday"));
  const char *f2[] = {"state", "changed_at"};
  const char *d2[] = {"starting", "RFC 3339"};
  assert_validations(&r, f2, d2, 2);
  atr_tc_res_free(&r);

  r = agent_call(
      s, &a, "POST", me("listening-ports"),
      json_pack("{s:[{s:s, s:i}]}", "ports", "network", "udp", "port", 70000));
  const char *f3[] = {"ports[0].network", "ports[0].port"};
  assert_validations(&r, f3, NULL, 2);
  atr_tc_res_free(&r);

  r = agent_call(s, &a, "POST", me("startup"), json_pack("{}"));
  const char *f4[] = {"version"};
  assert_validations(&r, f4, NULL, 1);
  atr_tc_res_free(&r);

  json_t *many = json_array();
  for (int i = 1; i <= 101; i++)
    json_array_append_new(many, line(i, "x"));
  r = agent_call(s, &a, "PATCH", me("logs"), logs_body(&a, many));
  const char *f5[] = {"logs"};
  const char *d5[] = {"at most 100"};
  assert_validations(&r, f5, d5, 1);
  atr_tc_res_free(&r);
}

/* ---- the session route's refusals --------------------------------------------- */

static void rpc_refuses_before_any_upgrade(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "rpc", &a);
  atr_tc_res_t r = agent_call(s, &a, "GET", me("rpc?version=2.0"), NULL);
  ASSERT_ANSWER(r, 400);
  json_t *v = json_array_get(json_object_get(r.json, "validations"), 0);
  assert_string_equal(jstr(v, "field"), "version");
  assert_contains(jstr(v, "detail"), "2.0");
  assert_contains(jstr(v, "detail"), "1.0");
  atr_tc_res_free(&r);
  ASSERT_STATUS(400, agent_call(s, &a, "GET", me("rpc"), NULL));
  r = agent_call(s, &a, "GET", me("rpc?version=1.0"), NULL);
  ASSERT_ANSWER(r, 426);
  char up[32];
  assert_string_equal(atr_tc_header(&r, "Upgrade", up, sizeof up), "websocket");
  atr_tc_res_free(&r);
  static const char *const upgrade[] = {
      "Connection: Upgrade",
      "Upgrade: websocket",
      "Sec-WebSocket-Version: 13",
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Protocol: atrium-agent.h2",
      NULL};
  ASSERT_ERROR(
      401, "Agent token is not valid.",
      atr_tc_call(s->h.port, &(atr_tc_req_t){.path = me("rpc?version=1.0"),
                                             .token = "atragt_" CANARY,
                                             .headers = upgrade}));
}

/* ---- each token on the other's routes -------------------------------------------- */

/* The route's pattern with every {param} a made-up id. */
static void sample_path(const char *pattern, char *out, size_t size) {
  size_t o = 0;
  for (const char *p = pattern; *p && o + 40 < size;) {
    if (*p == '{') {
      o += (size_t)snprintf(out + o, size - o, "%s",
                            "0b7e3b5e-8f7c-4a3e-9d2c-5f0e1a2b3c4d");
      p = strchr(p, '}') + 1;
    } else {
      out[o++] = *p++;
    }
  }
  out[o] = '\0';
}

static long status_of(const srv_t *s, const atr_api_route_t *rt,
                      const char *token, const char *bearer) {
  char path[256];
  sample_path(rt->pattern, path, sizeof path);
  json_t *body = json_object();
  atr_tc_res_t r = atr_tc_call(s->h.port, &(atr_tc_req_t){.method = rt->method,
                                                          .path = path,
                                                          .token = token,
                                                          .bearer = bearer,
                                                          .body = body});
  long status = r.status;
  atr_tc_res_free(&r);
  json_decref(body);
  return status;
}

static void tokens_open_only_their_own_routes(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "matrix", &a);
  size_t checked = 0;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    bool agent_route = atr_api_route_allows_agent(rt);
    /* a user's key (header or bearer) on an agent route; the agent's
     * token on a user route, public ones included */
    long got[] = {agent_route ? status_of(s, rt, s->owner_token, NULL)
                              : status_of(s, rt, a.token, NULL),
                  agent_route ? status_of(s, rt, NULL, s->owner_token)
                              : status_of(s, rt, NULL, a.token)};
    for (size_t k = 0; k < 2; k++)
      if (got[k] != 401)
        fail_msg("%s %s with %s (%s): %ld, not 401", rt->method, rt->pattern,
                 agent_route ? "the owner's key" : "an agent token",
                 k ? "bearer" : "header", got[k]);
    checked++;
  }
  assert_true(checked > 70);
  /* the agent's own route opens with its token, until it is revoked */
  ASSERT_STATUS(200, agent_call(s, &a, "GET", me("manifest"), NULL));
  agent_revoke(s, &a);
  ASSERT_ERROR(401, "Agent token is not valid.",
               agent_call(s, &a, "GET", me("manifest"), NULL));
  ASSERT_ERROR(401, "Agent token is not valid.",
               agent_call(s, &a, "POST", me("report-lifecycle"),
                          json_pack("{s:s}", "state", "starting")));
  ASSERT_ERROR(401, "Agent token required.",
               atr_tc_call(s->h.port, &(atr_tc_req_t){.path = me("manifest")}));
}

/* ---- following the agent's log ------------------------------------------------------ */

typedef struct follower {
  const srv_t *s;
  char path[160];
  atr_tc_events_t ev;
  atomic_int seen;
} follower_t;

static void on_event(void *ud, const atr_tc_event_t *e) {
  follower_t *f = ud;
  if (strcmp(e->name, "log") == 0)
    atomic_fetch_add(&f->seen, 1);
}

static void *follow(void *ud) {
  follower_t *f = ud;
  f->ev.on_event = on_event;
  f->ev.ud = f;
  atr_tc_events(f->s->h.port,
                &(atr_tc_req_t){.path = f->path, .token = f->s->owner_token},
                &f->ev);
  return NULL;
}

static void a_followed_agent_log_ends_when_the_agent_is_off(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "follow", &a);
  agent_reports(s, &a); /* lines 1–3, ready */
  follower_t *f = calloc(1, sizeof *f);
  f->s = s;
  snprintf(f->path, sizeof f->path,
           "/api/v2/workspaceagents/%s/logs?follow=true", a.agent_id);
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, follow, f), 0);
  double until = atr_harness_now_ms() + 10000;
  while (atomic_load(&f->seen) < 3 && atr_harness_now_ms() < until)
    atr_harness_sleep_ms(20);
  assert_int_equal(atomic_load(&f->seen), 3); /* it follows, not ended */
  ASSERT_STATUS(200,
                agent_call(s, &a, "PATCH", me("logs"),
                           logs_body(&a, json_pack("[o]", line(4, "bye")))));
  report(s, &a, "shutting_down", NULL, 204);
  report(s, &a, "off", NULL, 204);
  pthread_join(t, NULL);
  assert_int_equal(f->ev.status, 200);
  assert_int_equal(f->ev.n, 5);
  for (size_t i = 0; i < 4; i++) {
    assert_string_equal(f->ev.ev[i].name, "log");
    assert_int_equal(
        json_integer_value(json_object_get(f->ev.ev[i].data, "id")),
        (json_int_t)i + 1);
  }
  assert_string_equal(jstr(f->ev.ev[3].data, "output"), "bye");
  assert_string_equal(f->ev.ev[4].name, "end");
  assert_string_equal(jstr(f->ev.ev[4].data, "agent_id"), a.agent_id);
  atr_tc_events_free(&f->ev);
  free(f);
}

/* ---- metrics ------------------------------------------------------------------------- */

/* The sample of family name whose label key is value, or NULL. */
static const json_t *sample_of(const json_t *metrics, const char *name,
                               const char *key, const char *value) {
  size_t i, j;
  const json_t *f, *smp;
  json_array_foreach(json_object_get(metrics, "metrics"), i, f) {
    if (strcmp(jstr(f, "name"), name) != 0)
      continue;
    json_array_foreach(json_object_get(f, "samples"), j, smp) {
      if (!key || strcmp(jstr2(smp, "labels", key), value) == 0)
        return smp;
    }
  }
  return NULL;
}

static void startups_and_refused_sessions_are_counted(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "metrics", &a);
  agent_reports(s, &a); /* ready 4.2 s after starting; then resent */
  ASSERT_STATUS(400, agent_call(s, &a, "GET", me("rpc?version=2.0"), NULL));
  ASSERT_STATUS(
      401, atr_tc_call(s->h.port, &(atr_tc_req_t){.path = me("rpc?version=1.0"),
                                                  .token = "atragt_nobody"}));
  atr_tc_res_t r = get(s, "/api/v2/debug/metrics", s->owner_token);
  ASSERT_ANSWER(r, 200);
  const json_t *up =
      sample_of(r.json, "atrium_agent_startup_seconds", "result", "ready");
  assert_non_null(up);
  assert_int_equal(json_integer_value(json_object_get(up, "count")), 1);
  assert_true(json_number_value(json_object_get(up, "sum")) > 4.19 &&
              json_number_value(json_object_get(up, "sum")) < 4.21);
  static const char *const reasons[] = {"version", "unauthorized"};
  for (size_t i = 0; i < 2; i++) {
    const json_t *e = sample_of(r.json, "atrium_agent_connection_errors_total",
                                "reason", reasons[i]);
    assert_non_null(e);
    assert_true(json_number_value(json_object_get(e, "value")) == 1.0);
  }
  assert_non_null(sample_of(r.json, "atrium_agent_sessions", NULL, NULL));
  atr_tc_res_free(&r);
}

/* ---- the CLI ------------------------------------------------------------------------ */

static char *cli(const srv_t *s, const char *const *args) {
  char url[64], token[128], dir[300];
  snprintf(url, sizeof url, "ATRIUM_URL=http://127.0.0.1:%d", s->h.port);
  snprintf(token, sizeof token, "ATRIUM_SESSION_TOKEN=%s", s->owner_token);
  snprintf(dir, sizeof dir, "ATRIUM_CONFIG_DIR=%s", s->h.dir);
  const char *const env[] = {url, token, dir, NULL};
  char *out = NULL;
  int rc = atr_run_cli(args, env, &out);
  if (rc != 0)
    fail_msg("atrium %s %s exited %d:\n%s", args[1], args[2], rc, out);
  return out;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  char *buf = calloc(1, 1 << 16);
  if (f && buf)
    buf[fread(buf, 1, (1 << 16) - 1, f)] = '\0';
  if (f)
    fclose(f);
  return buf;
}

/* From the first line starting with `from` to the end, against the
 * golden file. */
static void assert_golden(const char *out, const char *from, const char *name) {
  const char *at = strstr(out, from);
  if (!at) {
    fail_msg("no \"%s\" in:\n%s", from, out);
    return;
  }
  char path[512];
  snprintf(path, sizeof path, "%s/%s", GOLDEN_DIR, name);
  char *want = slurp(path);
  if (strcmp(at, want) != 0)
    print_error("got:\n%s\nwant (%s):\n%s\n", at, path, want);
  assert_string_equal(at, want);
  free(want);
}

/* A failed start carries the script's exit code: in the agent JSON and
 * beside the lifecycle in `atrium show`; a new start forgets it. */
static void a_failed_start_keeps_its_exit_code(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "failing", &a);
  atr_tc_res_t r = agent_call(s, &a, "POST", me("report-lifecycle"),
                              json_pack("{s:s, s:i}", "state", "start_error",
                                        "startup_script_exit_code", 256));
  const char *f[] = {"startup_script_exit_code"};
  const char *d[] = {"0 to 255"};
  assert_validations(&r, f, d, 1);
  atr_tc_res_free(&r);
  report(s, &a, "starting", NULL, 204);
  r = user_get(s, &a, "");
  ASSERT_ANSWER(r, 200);
  assert_true(
      json_is_null(json_object_get(r.json, "startup_script_exit_code")));
  atr_tc_res_free(&r);
  ASSERT_STATUS(204, agent_call(s, &a, "POST", me("report-lifecycle"),
                                json_pack("{s:s, s:i}", "state", "start_error",
                                          "startup_script_exit_code", 3)));
  r = user_get(s, &a, "");
  ASSERT_ANSWER(r, 200);
  assert_string_equal(
      json_string_value(json_object_get(r.json, "lifecycle_state")),
      "start_error");
  assert_int_equal(
      json_integer_value(json_object_get(r.json, "startup_script_exit_code")),
      3);
  atr_tc_res_free(&r);
  char *out = cli(s, (const char *const[]){"show", "failing", NULL});
  assert_contains(out, "start_error (startup script exited 3)");
  free(out);
}

static void the_cli_shows_the_agent(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "clients", &a);
  char *out = cli(s, (const char *const[]){"list", NULL});
  assert_contains(out, "running (agent connecting)");
  free(out);
  agent_connects(s, &a);
  agent_reports(s, &a);
  out = cli(s,
            (const char *const[]){"show", "clients", "--log-lines", "2", NULL});
  assert_golden(out, "agent main:", "show_agent.txt");
  free(out);
  out = cli(s, (const char *const[]){"list", NULL});
  assert_contains(out, " running ");
  assert_null(strstr(out, "(agent"));
  free(out);
  out = cli(s, (const char *const[]){"logs", "clients", "--agent", NULL});
  assert_golden(out, "one", "logs_agent.txt");
  free(out);
  /* -f follows until the agent writes no more: once it is off, at once */
  report(s, &a, "shutting_down", NULL, 204);
  report(s, &a, "off", NULL, 204);
  out = cli(s, (const char *const[]){"logs", "clients", "--agent", "-f", NULL});
  assert_golden(out, "one", "logs_agent.txt");
  free(out);
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, agent_up, srv_stop)
  const struct CMUnitTest tests[] = {
      T(every_agent_route_answers_as_plain_http),
      T(bodies_are_checked_field_by_field),
      T(rpc_refuses_before_any_upgrade),
      T(tokens_open_only_their_own_routes),
      T(a_followed_agent_log_ends_when_the_agent_is_off),
      T(startups_and_refused_sessions_are_counted),
      T(a_session_carries_the_agent_until_its_shutdown),
      T(a_replaced_session_leaves_the_agent_connected),
      T(the_cli_shows_the_agent),
      T(a_failed_start_keeps_its_exit_code),
  };
#undef T
  return BUILDS_MAIN("api_agents", tests);
}
