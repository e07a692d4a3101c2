/* tests/api/test_api_agents_session.c — the agent's session against the
 * real server: the agent's own client (core/agent/agent_conn.c) dials
 * GET /me/rpc with its token, its requests inside the session need no
 * token, user routes stay closed to it, a stop build's shutdown reaches
 * it on its events stream, and the revocation that follows ends the
 * session and refuses the next dial with 401. The client's loop runs in
 * the test's thread; every wait is a bounded poll. Run by
 * test_api_agents.c's main. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent_conn.h"
#include "agent_ws.h"

#define WAIT_MS 20000

typedef struct client {
  uv_loop_t loop;
  uv_timer_t tick;
  int ups, downs, last_down_status, replies, last_status;
  char last_body[2048], events[8][128];
  int nevents;
  bool stopped;
} client_t;

static void on_tick(uv_timer_t *t) {
  (void)t; /* keeps UV_RUN_ONCE returning */
}

static void on_up(void *ud) {
  ((client_t *)ud)->ups++;
}

static void on_down(void *ud, int status, const char *reason) {
  (void)reason;
  client_t *c = ud;
  c->downs++;
  c->last_down_status = status;
}

static void on_event(void *ud, const char *line, size_t len) {
  client_t *c = ud;
  if (c->nevents < 8)
    snprintf(c->events[c->nevents++], sizeof c->events[0], "%.*s", (int)len,
             line);
}

static void on_reply(void *ud, int status, const char *body, size_t len) {
  client_t *c = ud;
  c->replies++;
  c->last_status = status;
  snprintf(c->last_body, sizeof c->last_body, "%.*s", (int)len, body);
}

static void on_stopped(void *ud) {
  ((client_t *)ud)->stopped = true;
}

/* Run the loop until cond holds, at most WAIT_MS. */
#define WAIT_UNTIL(c, cond)                                                    \
  do {                                                                         \
    double end_ = atr_harness_now_ms() + WAIT_MS;                              \
    bool held_ = false;                                                        \
    while (!(held_ = (cond)) && atr_harness_now_ms() < end_)                   \
      uv_run(&(c)->loop, UV_RUN_ONCE);                                         \
    if (!held_)                                                                \
      fail_msg("timed out waiting for %s", #cond);                             \
  } while (0)

/* A request inside the session; its status (body in c->last_body). */
static int session_call(client_t *c, agent_conn_t *conn, const char *method,
                        const char *path, const char *body) {
  int before = c->replies;
  assert_int_equal(agent_conn_request(conn, method, path, body, on_reply, c),
                   0);
  WAIT_UNTIL(c, c->replies > before);
  return c->last_status;
}

static const char *agent_status(const srv_t *s, const agent_ws_t *a) {
  static char status[32];
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaceagents/%s", a->agent_id);
  atr_tc_res_t r = get(s, path, s->owner_token);
  snprintf(status, sizeof status, "%s", field(&r, "status"));
  atr_tc_res_free(&r);
  return status;
}

static bool build_ended(const srv_t *s, const char *build_id) {
  char path[128];
  build_path(path, sizeof path, build_id);
  atr_tc_res_t r = get(s, path, s->owner_token);
  const char *st = job_status(&r);
  bool ended = strcmp(st, "succeeded") == 0 || strcmp(st, "failed") == 0 ||
               strcmp(st, "canceled") == 0;
  atr_tc_res_free(&r);
  return ended;
}

static agent_conn_t *dial_after(const srv_t *s, const agent_ws_t *a,
                                client_t *c, int64_t backoff_ms) {
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d", s->h.port);
  agent_conn_opts_t o = {.url = url,
                         .token = a->token,
                         .version = ATR_TEST_AGENT_API_VERSION,
                         .heartbeat_ms = 1000,
                         .backoff_min_ms = backoff_ms,
                         .backoff_max_ms = backoff_ms * 10};
  static const agent_conn_cbs_t cbs = {on_up, on_down, on_event};
  agent_conn_t *conn = NULL;
  char *err = NULL;
  assert_int_equal(agent_conn_new(&c->loop, &o, &cbs, c, &conn, &err), 0);
  agent_conn_start(conn);
  return conn;
}

static agent_conn_t *dial(const srv_t *s, const agent_ws_t *a, client_t *c) {
  return dial_after(s, a, c, 20);
}

static client_t *client_new(void) {
  client_t *c = calloc(1, sizeof *c);
  uv_loop_init(&c->loop);
  uv_timer_init(&c->loop, &c->tick);
  uv_timer_start(&c->tick, on_tick, 5, 5);
  return c;
}

static void client_free(client_t *c, agent_conn_t *conn) {
  c->stopped = false;
  agent_conn_stop(conn, on_stopped, c);
  WAIT_UNTIL(c, c->stopped);
  agent_conn_free(conn);
  uv_close((uv_handle_t *)&c->tick, NULL);
  uv_run(&c->loop, UV_RUN_DEFAULT);
  uv_loop_close(&c->loop);
  free(c);
}

void a_session_carries_the_agent_until_its_shutdown(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "session", &a);
  client_t *c = client_new();
  agent_conn_t *conn = dial(s, &a, c);
  WAIT_UNTIL(c, c->ups == 1);
  assert_string_equal(agent_status(s, &a), "connected");

  /* inside the session: no token, the session is the agent */
  assert_int_equal(
      session_call(c, conn, "GET", "/api/v2/workspaceagents/me/manifest", NULL),
      200);
  assert_non_null(strstr(c->last_body, a.agent_id));
  assert_int_equal(session_call(c, conn, "POST",
                                "/api/v2/workspaceagents/me/report-lifecycle",
                                "{\"state\":\"ready\"}"),
                   204);
  assert_int_equal(session_call(c, conn, "GET", "/api/v2/users/me", NULL), 401);

  /* a stop build asks it to shut down, and waits for it */
  char stop[37];
  build(s, a.ws, "stop", NULL, stop);
  WAIT_UNTIL(c, c->nevents > 0);
  assert_string_equal(c->events[0], "{\"type\":\"shutdown\"}");
  assert_false(build_ended(s, stop));
  assert_int_equal(session_call(c, conn, "POST",
                                "/api/v2/workspaceagents/me/report-lifecycle",
                                "{\"state\":\"shutting_down\"}"),
                   204);
  assert_int_equal(session_call(c, conn, "POST",
                                "/api/v2/workspaceagents/me/report-lifecycle",
                                "{\"state\":\"off\"}"),
                   204);
  /* the build goes on, revokes the token: the session ends, and the next
   * dial is refused */
  WAIT_UNTIL(c, c->downs > 0 && c->last_down_status == 401);
  wait_build(s, stop, "stopped");
  assert_string_equal(agent_status(s, &a), "disconnected");

  client_free(c, conn);
}

/* How many sessions were replaced, from the metrics. */
static double replaced(const srv_t *s) {
  atr_tc_res_t r = get(s, "/api/v2/debug/metrics", s->owner_token);
  double n = 0;
  size_t i, j;
  const json_t *f, *smp;
  json_array_foreach(json_object_get(r.json, "metrics"), i, f) {
    if (strcmp(jstr(f, "name"), "atrium_agent_connection_errors_total") != 0)
      continue;
    json_array_foreach(json_object_get(f, "samples"), j, smp) {
      if (strcmp(jstr2(smp, "labels", "reason"), "replaced") == 0)
        n = json_number_value(json_object_get(smp, "value"));
    }
  }
  atr_tc_res_free(&r);
  return n;
}

void a_replaced_session_leaves_the_agent_connected(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "replaced", &a);
  /* the first dials once (its next try would be a minute away) */
  client_t *first = client_new();
  agent_conn_t *one = dial_after(s, &a, first, 60000);
  WAIT_UNTIL(first, first->ups == 1);
  client_t *second = client_new();
  agent_conn_t *two = dial(s, &a, second);
  WAIT_UNTIL(second, second->ups == 1);
  WAIT_UNTIL(first, first->downs == 1);
  /* the server has closed the first session */
  WAIT_UNTIL(second, replaced(s) == 1);
  assert_string_equal(agent_status(s, &a), "connected");
  assert_int_equal(session_call(second, two, "GET",
                                "/api/v2/workspaceagents/me/manifest", NULL),
                   200);
  client_free(first, one);
  client_free(second, two);
}
