/* tests/api/test_api_connect.c — the tunnel routes as a user meets them
 * before any byte is spliced (docs/design/connect.md §3):
 *
 *   GET /api/v2/workspaceagents/{id}/tunnel?kind=ssh|tcp&port=N   (RAW)
 *   GET /api/v2/workspaceagents/{id}/pty?reconnect=UUID&…         (WS)
 *
 * Another member is refused (403) and the refusal is in the audit log; an
 * agent's token is refused (401) on both; a bad query is a 400 naming
 * each field; a missing upgrade is 426 saying what to send; an agent that
 * is not connected is 409 naming the workspace and the status; an agent
 * the database calls connected but whose session no server here holds is
 * 502, audited as opened and ended; the workspace's SSH host key reaches
 * only its agent (never the server's log, a user's answer or the audit
 * log). The bytes themselves are tests/agent's (a real agent).
 *
 *   test_api_connect sqlite
 *   test_api_connect postgres PGDIR */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_ws.h"

#define UUID_A "6c0f8a3e-2b1d-4e5f-9a8b-7c6d5e4f3a2b"

static const char *const RAW[] = {"Connection: Upgrade",
                                  "Upgrade: atrium-tunnel", NULL};
static const char *const WS[] = {
    "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", NULL};

static int connect_up(void **state) {
  if (server_up(state) != 0)
    return -1;
  owner_signs_in(*state);
  return 0;
}

/* GET /workspaceagents/{agent}/<sub> with the token and headers. */
static atr_tc_res_t open_as(const srv_t *s, const agent_ws_t *a,
                            const char *sub, const char *token,
                            const char *const *headers) {
  char path[6000];
  snprintf(path, sizeof path, "/api/v2/workspaceagents/%s/%s", a->agent_id,
           sub);
  return atr_tc_call(s->h.port, &(atr_tc_req_t){.path = path,
                                                .token = token,
                                                .headers = headers,
                                                .timeout_ms = 15000});
}

static const char *member_signs_in(const srv_t *s) {
  remember(MEMBER_PW);
  ASSERT_STATUS(201,
                call(s, "POST", "/api/v2/users", s->owner_token,
                     json_pack("{s:s, s:s, s:s}", "email", MEMBER_EMAIL,
                               "username", "member", "password", MEMBER_PW)));
  return login(s, MEMBER_EMAIL, MEMBER_PW);
}

/* The audit entries of query (as the owner sees them). */
static json_t *audit(const srv_t *s, const char *query) {
  char path[256];
  snprintf(path, sizeof path, "/api/v2/audit?%s", query);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  json_t *list = json_incref(json_object_get(r.json, "audit_logs"));
  atr_tc_res_free(&r);
  return list;
}

static json_t *extra_of(const json_t *entry) {
  return json_object_get(entry, "additional_fields");
}

/* ---- who -------------------------------------------------------------------- */

static void another_member_and_an_agent_are_refused(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "conn", &a);
  agent_connects(s, &a);
  const char *member = member_signs_in(s);
  ASSERT_ERROR(403, "Forbidden.",
               open_as(s, &a, "tunnel?kind=ssh", member, RAW));
  ASSERT_ERROR(403, "Forbidden.",
               open_as(s, &a, "tunnel?kind=tcp&port=8080", member, RAW));
  ASSERT_ERROR(403, "Forbidden.",
               open_as(s, &a, "pty?reconnect=" UUID_A, member, WS));
  json_t *denied =
      audit(s, "action=connect&resource_type=workspace&status_code=403");
  assert_int_equal(json_array_size(denied), 3);
  json_t *e = json_array_get(denied, 0); /* newest first: the pty */
  assert_string_equal(jstr(e, "resource_id"), a.ws);
  assert_string_equal(jstr(extra_of(e), "kind"), "pty");
  assert_string_equal(jstr(extra_of(e), "phase"), "open");
  assert_string_equal(jstr(extra_of(e), "agent_id"), a.agent_id);
  e = json_array_get(denied, 1);
  assert_int_equal(json_integer_value(json_object_get(extra_of(e), "port")),
                   8080);
  json_decref(denied);
  /* a workspace agent's token opens no tunnel, its own workspace's
   * neither (user routes refuse every agent token) */
  ASSERT_ERROR(401, "Agent credentials are not valid here.",
               open_as(s, &a, "tunnel?kind=ssh", a.token, RAW));
  ASSERT_ERROR(401, "Agent credentials are not valid here.",
               open_as(s, &a, "pty?reconnect=" UUID_A, a.token, WS));
  /* and anonymous callers are asked to sign in */
  ASSERT_ERROR(401, "You are not signed in.",
               open_as(s, &a, "tunnel?kind=ssh", NULL, RAW));
}

/* ---- the query ------------------------------------------------------------------ */

static void a_bad_query_names_each_field(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "query", &a);
  static const struct {
    const char *sub;
    const char *field, *detail;
    bool ws;
  } bad[] = {
      {"tunnel", "kind", "ssh or tcp", false},
      {"tunnel?kind=pty", "kind", "ssh or tcp", false},
      {"tunnel?kind=tcp", "port", "1 to 65535", false},
      {"tunnel?kind=tcp&port=0", "port", "1 to 65535", false},
      {"tunnel?kind=tcp&port=65536", "port", "1 to 65535", false},
      {"tunnel?kind=tcp&port=80x", "port", "1 to 65535", false},
      {"tunnel?kind=tcp&port=-1", "port", "1 to 65535", false},
      {"tunnel?kind=ssh&port=22", "port", "Only a tcp tunnel", false},
      {"pty", "reconnect", "UUID", true},
      {"pty?reconnect=abc", "reconnect", "UUID", true},
      {"pty?reconnect=" UUID_A "&width=0", "width", "1 to 1000", true},
      {"pty?reconnect=" UUID_A "&height=1001", "height", "1 to 1000", true},
      {"pty?reconnect=" UUID_A "&command=%FF%FE", "command", "UTF-8", true},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    atr_tc_res_t r =
        open_as(s, &a, bad[i].sub, s->owner_token, bad[i].ws ? WS : RAW);
    const char *f[] = {bad[i].field}, *d[] = {bad[i].detail};
    if (r.status != 400)
      print_error("GET …/%s\n", bad[i].sub);
    assert_validations(&r, f, d, 1);
    atr_tc_res_free(&r);
  }
  /* every bad field at once */
  atr_tc_res_t r = open_as(s, &a, "pty?reconnect=x&width=1001&height=abc",
                           s->owner_token, WS);
  const char *f3[] = {"reconnect", "width", "height"};
  assert_validations(&r, f3, NULL, 3);
  atr_tc_res_free(&r);
  /* a command of 4097 bytes is one too many */
  char sub[4200];
  int n = snprintf(sub, sizeof sub, "pty?reconnect=%s&command=", UUID_A);
  memset(sub + n, 'x', 4097);
  sub[n + 4097] = '\0';
  r = open_as(s, &a, sub, s->owner_token, WS);
  const char *fc[] = {"command"}, *dc[] = {"4096"};
  assert_validations(&r, fc, dc, 1);
  atr_tc_res_free(&r);
  /* 4096 passes the query: the agent is what is missing then */
  sub[n + 4096] = '\0';
  r = open_as(s, &a, sub, s->owner_token, WS);
  ASSERT_ANSWER(r, 409);
  atr_tc_res_free(&r);
}

static void a_missing_upgrade_says_what_to_send(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "upgrade", &a);
  char up[32];
  atr_tc_res_t r = open_as(s, &a, "tunnel?kind=ssh", s->owner_token, NULL);
  ASSERT_ANSWER(r, 426);
  assert_string_equal(field(&r, "message"), "Upgrade required.");
  assert_contains(field(&r, "detail"), "Upgrade: atrium-tunnel");
  assert_string_equal(atr_tc_header(&r, "Upgrade", up, sizeof up),
                      "atrium-tunnel");
  atr_tc_res_free(&r);
  /* a WebSocket is not the tunnel's upgrade */
  ASSERT_STATUS(426,
                open_as(s, &a, "tunnel?kind=tcp&port=22", s->owner_token, WS));
  r = open_as(s, &a, "pty?reconnect=" UUID_A, s->owner_token, RAW);
  ASSERT_ANSWER(r, 426);
  assert_contains(field(&r, "detail"), "WebSocket");
  assert_string_equal(atr_tc_header(&r, "Upgrade", up, sizeof up), "websocket");
  atr_tc_res_free(&r);
}

/* ---- the agent --------------------------------------------------------------------- */

static void an_agent_not_connected_is_a_clear_error(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "offline", &a);
  const char *want = "The agent of workspace owner/offline is not connected "
                     "(status: connecting).";
  ASSERT_ERROR(409, want,
               open_as(s, &a, "tunnel?kind=ssh", s->owner_token, RAW));
  ASSERT_ERROR(409, want,
               open_as(s, &a, "pty?reconnect=" UUID_A, s->owner_token, WS));
  /* an unknown agent */
  agent_ws_t none = a;
  snprintf(none.agent_id, sizeof none.agent_id, "%s", UUID_A);
  ASSERT_ERROR(404, "Workspace agent not found.",
               open_as(s, &none, "tunnel?kind=ssh", s->owner_token, RAW));
}

/* The database says connected (as a session on another server would have
 * it), but this server holds no session of the agent. */
static void no_session_here_is_502_and_audited(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "elsewhere", &a);
  agent_connects(s, &a);
  ASSERT_ERROR(
      502, "The agent is not connected to this server.",
      open_as(s, &a, "tunnel?kind=tcp&port=8080", s->owner_token, RAW));
  ASSERT_ERROR(502, "The agent is not connected to this server.",
               open_as(s, &a, "pty?reconnect=" UUID_A "&width=120&height=40",
                       s->owner_token, WS));
  json_t *list = audit(s, "action=connect&resource_type=workspace");
  assert_int_equal(json_array_size(list), 4);
  /* newest first: the pty's end and open, the tcp's end and open */
  json_t *end = extra_of(json_array_get(list, 0)),
         *open = extra_of(json_array_get(list, 1));
  assert_string_equal(jstr(end, "phase"), "end");
  assert_string_equal(jstr(end, "reason"), "no_agent");
  assert_string_equal(jstr(open, "phase"), "open");
  assert_string_equal(jstr(open, "kind"), "pty");
  assert_string_equal(jstr(end, "connection_id"), jstr(open, "connection_id"));
  assert_int_equal(json_integer_value(
                       json_object_get(json_array_get(list, 0), "status_code")),
                   502);
  assert_string_equal(jstr(extra_of(json_array_get(list, 3)), "kind"), "tcp");
  json_decref(list);
}

/* ---- the host key --------------------------------------------------------------------- */

static void the_host_key_reaches_only_the_agent(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace(s, "hostkey", &a);
  atr_tc_res_t r = agent_call(s, &a, "GET", me("manifest"), NULL);
  ASSERT_ANSWER(r, 200);
  const char *pem = field(&r, "ssh_host_key");
  static const char head[] = "-----BEGIN OPENSSH PRIVATE KEY-----\n";
  assert_memory_equal(pem, head, strlen(head));
  /* 40 base64 characters of the private seed (bytes 161–192 of OpenSSH's
   * format, on the key's 4th line of 70): the server's log must never
   * show them */
  assert_true(strlen(pem) > strlen(head) + 3 * 71 + 46);
  char body[41];
  snprintf(body, sizeof body, "%.40s", pem + strlen(head) + 3 * 71 + 6);
  assert_null(strchr(body, '\n'));
  remember(body);
  atr_tc_res_free(&r);
  r = agent_call(s, &a, "GET", me("manifest"), NULL);
  assert_contains(field(&r, "ssh_host_key"), body); /* the same key */
  atr_tc_res_free(&r);
  char path[160];
  snprintf(path, sizeof path, "/api/v2/workspaceagents/%s", a.agent_id);
  const char *paths[] = {path, "/api/v2/workspaces",
                         "/api/v2/audit?limit=1000"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    r = get(s, paths[i], s->owner_token);
    ASSERT_ANSWER(r, 200);
    if (strstr(r.body, body) || strstr(r.body, "PRIVATE KEY"))
      fail_msg("GET %s shows the host key: %s", paths[i], r.body);
    atr_tc_res_free(&r);
  }
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, connect_up, srv_stop)
  const struct CMUnitTest tests[] = {
      T(another_member_and_an_agent_are_refused),
      T(a_bad_query_names_each_field),
      T(a_missing_upgrade_says_what_to_send),
      T(an_agent_not_connected_is_a_clear_error),
      T(no_session_here_is_502_and_audited),
      T(the_host_key_reaches_only_the_agent),
  };
#undef T
  return BUILDS_MAIN("api_connect", tests);
}
