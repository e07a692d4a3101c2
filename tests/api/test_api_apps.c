/* tests/api/test_api_apps.c — workspace apps through the real server
 * (core/api/api_apps.c, core/domain/apps.c) up to the tunnel: paths and
 * their redirects, share levels (401, 403 audited, on), the app token
 * and its cookie, the pages for an agent that is not connected and an
 * unhealthy app, and the apps' JSON. What goes through the tunnel is
 * tests/agent/apps_e2e.py's.
 *
 * The agent never dials a session here, so a request that passes every
 * check reaches the tunnel and gets its 502 page ("not connected to this
 * server"): how a test sees the request was let through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_ws.h"
#include "builds.h"

static const char SPEC[] =
    "{\"name\":\"main\",\"arch\":\"amd64\",\"directory\":\"\",\"env\":{},"
    "\"connection_timeout_s\":120,\"startup_script\":\"\","
    "\"startup_script_behavior\":\"non-blocking\","
    "\"startup_script_timeout_s\":300,\"shutdown_script\":\"\","
    "\"shutdown_script_timeout_s\":300,\"motd_file\":\"\","
    "\"troubleshooting_url\":\"\",\"metadata\":[],\"apps\":["
    "{\"slug\":\"code\",\"display_name\":\"Code\","
    "\"url\":\"http://localhost:13337/?folder=/home/a\",\"icon\":\"\","
    "\"share\":\"owner\",\"subdomain\":false},"
    "{\"slug\":\"shared\",\"display_name\":\"shared\","
    "\"url\":\"http://127.0.0.1:8000/\",\"icon\":\"\","
    "\"share\":\"authenticated\",\"subdomain\":false,\"healthcheck\":{"
    "\"url\":\"http://127.0.0.1:8000/healthz\",\"interval_s\":5,"
    "\"threshold\":6}},"
    "{\"slug\":\"open\",\"display_name\":\"open\","
    "\"url\":\"http://localhost:8080/\",\"icon\":\"\",\"share\":\"public\","
    "\"subdomain\":false}]}";

#define CODE "/@owner/apps/apps/code/"
#define SHARED "/@owner/apps/apps/shared/"
#define OPEN "/@owner/apps/apps/open/"
#define NOT_HERE "not connected to this server"

static int apps_up(void **state) {
  if (server_up(state) != 0)
    return -1;
  owner_signs_in(*state);
  return 0;
}

static atr_tc_res_t app_get(const srv_t *s, const char *path, const char *token,
                            const char *cookie) {
  return atr_tc_call(
      s->h.port,
      &(atr_tc_req_t){.path = path, .token = token, .cookie = cookie});
}

/* An HTML page with status want that says needle. */
static void assert_page(atr_tc_res_t r, long want, const char *needle) {
  ASSERT_ANSWER(r, want);
  assert_string_equal(r.content_type, "text/html; charset=utf-8");
  assert_contains(r.body, needle);
  atr_tc_res_free(&r);
}

static const char *member_signs_in(const srv_t *s) {
  remember(MEMBER_PW);
  ASSERT_STATUS(201,
                call(s, "POST", "/api/v2/users", s->owner_token,
                     json_pack("{s:s, s:s, s:s}", "email", MEMBER_EMAIL,
                               "username", "member", "password", MEMBER_PW)));
  return login(s, MEMBER_EMAIL, MEMBER_PW);
}

static char *session_cookie(const char *key) {
  char *c = NULL;
  assert_true(asprintf(&c, "atrium_session=%s; theme=dark", key) > 0);
  return c;
}

/* The audit entries of action on workspaces, newest first. */
static json_t *audit_entries(const srv_t *s, const char *action) {
  char path[160];
  snprintf(path, sizeof path,
           "/api/v2/audit?q=action:%s+resource_type:workspace", action);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  json_t *list = json_incref(json_object_get(r.json, "audit_logs"));
  atr_tc_res_free(&r);
  assert_non_null(list);
  return list;
}

static void paths_are_checked_before_anything_is_looked_up(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace_spec(s, "apps", SPEC, &a);
  char loc[256];
  /* a missing slash after the slug: 307, the query kept */
  atr_tc_res_t r = app_get(s, "/@owner/apps/apps/code?x=1&y=%202", NULL, NULL);
  ASSERT_ANSWER(r, 307);
  assert_non_null(atr_tc_header(&r, "Location", loc, sizeof loc));
  assert_string_equal(loc, "/@owner/apps/apps/code/?x=1&y=%202");
  atr_tc_res_free(&r);
  assert_page(app_get(s, "/@owner/apps/apps/c%2Fd/", NULL, NULL), 400,
              "Invalid app path.");
  assert_page(app_get(s, "/@owner/apps/files/code/", NULL, NULL), 404,
              "/@owner/workspace/apps/slug/");
  assert_page(app_get(s, "/@owner/nope/apps/code/", s->owner_token, NULL), 404,
              "Workspace not found.");
  assert_page(app_get(s, "/@nobody/apps/apps/code/", s->owner_token, NULL), 404,
              "Workspace not found.");
  assert_page(app_get(s, "/@owner/apps/apps/nope/", s->owner_token, NULL), 404,
              "App not found.");
  assert_page(app_get(s, "/@owner/apps.other/apps/code/", s->owner_token, NULL),
              404, "App not found.");
  /* the agent's own name works, in any case, as does an encoded @ */
  assert_page(
      app_get(s, "/%40owner/APPS.main/apps/shared/", s->owner_token, NULL), 503,
      "The workspace agent is not connected.");
}

static void share_levels_decide_who_gets_through(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace_spec(s, "apps", SPEC, &a);
  agent_connects(s, &a);
  const char *member = member_signs_in(s);
  char *member_cookie = session_cookie(member);
  /* owner: nobody signed in is asked to; another member is refused */
  assert_page(app_get(s, CODE, NULL, NULL), 401, "Sign in to open this app.");
  assert_page(app_get(s, CODE, NULL, "atrium_session=0123456789-nope"), 401,
              "Sign in");
  assert_page(app_get(s, CODE, member, NULL), 403,
              "You may not open this app.");
  assert_page(app_get(s, CODE, NULL, member_cookie), 403,
              "You may not open this app.");
  json_t *denied = audit_entries(s, "connect");
  assert_int_equal(json_array_size(denied), 2);
  json_t *e = json_array_get(denied, 0);
  assert_int_equal(json_integer_value(json_object_get(e, "status_code")), 403);
  assert_string_equal(jstr2(e, "user", "username"), "member");
  assert_string_equal(jstr(e, "resource_id"), a.ws);
  assert_string_equal(jstr2(e, "additional_fields", "slug"), "code");
  assert_string_equal(jstr2(e, "additional_fields", "kind"), "app");
  assert_string_equal(jstr2(e, "additional_fields", "phase"), "open");
  json_decref(denied);
  /* authenticated: any signed-in user; public: anyone */
  assert_page(app_get(s, SHARED, NULL, NULL), 401, "Sign in");
  assert_page(app_get(s, SHARED, member, NULL), 502, NOT_HERE);
  assert_page(app_get(s, OPEN, NULL, NULL), 502, NOT_HERE);
  assert_page(app_get(s, OPEN, NULL, "atrium_session=0123456789-stale"), 502,
              NOT_HERE);
  /* the owner, and site owners, open owner apps (by header: no token) */
  assert_page(app_get(s, CODE "x", s->owner_token, NULL), 502, NOT_HERE);
  free(member_cookie);
}

/* The Set-Cookie of the app token: its value into token. */
static void assert_token_cookie(const atr_tc_res_t *r, const char *path,
                                char token[64]) {
  const char *line = strstr(r->set_cookies, "atrium_app_token=");
  assert_non_null(line);
  size_t n = strcspn(line + 17, ";");
  assert_int_equal(n, 43);
  memcpy(token, line + 17, n);
  token[n] = '\0';
  remember(token);
  char want[256];
  snprintf(want, sizeof want, "; Path=%s; Max-Age=", path);
  assert_contains(line, want);
  assert_contains(line, "; HttpOnly; SameSite=Lax");
  /* nothing else is set: the API's cookies stay as they are */
  assert_null(strstr(r->set_cookies, "atrium_session"));
}

static void a_browser_trades_its_session_for_an_app_token(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace_spec(s, "apps", SPEC, &a);
  agent_connects(s, &a);
  char *cookie = session_cookie(s->owner_token);
  char loc[256], token[64], with_token[128];
  atr_tc_res_t r = app_get(s, CODE "a/b?c=1", NULL, cookie);
  ASSERT_ANSWER(r, 303);
  assert_non_null(atr_tc_header(&r, "Location", loc, sizeof loc));
  assert_string_equal(loc, CODE "a/b?c=1");
  assert_token_cookie(&r, CODE, token);
  atr_tc_res_free(&r);
  /* the token (with the session cookie still there) goes straight on */
  snprintf(with_token, sizeof with_token, "atrium_app_token=%s", token);
  char *both = NULL;
  assert_true(asprintf(&both, "%s; %s", cookie, with_token) > 0);
  assert_page(app_get(s, CODE "a/b?c=1", NULL, both), 502, NOT_HERE);
  assert_page(app_get(s, CODE "x", NULL, with_token), 502, NOT_HERE);
  /* one audit entry for the app session, none for its requests */
  json_t *opened = audit_entries(s, "connect");
  assert_int_equal(json_array_size(opened), 1);
  json_t *e = json_array_get(opened, 0);
  assert_int_equal(json_integer_value(json_object_get(e, "status_code")), 200);
  assert_string_equal(jstr2(e, "user", "username"), "owner");
  assert_string_equal(jstr2(e, "additional_fields", "slug"), "code");
  assert_string_equal(jstr2(e, "additional_fields", "agent_id"), a.agent_id);
  json_decref(opened);
  /* scoped to its app: on another it signs nobody in */
  assert_page(app_get(s, SHARED, NULL, with_token), 401, "Sign in");
  /* signing out ends it */
  ASSERT_STATUS(200,
                call(s, "POST", "/api/v2/users/logout", s->owner_token, NULL));
  assert_page(app_get(s, CODE, NULL, with_token), 401, "Sign in");
  free(both);
  free(cookie);
}

static void the_app_urls_query_opens_its_root(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace_spec(s, "apps", SPEC, &a);
  agent_connects(s, &a);
  char loc[256];
  atr_tc_res_t r = app_get(s, CODE, s->owner_token, NULL);
  ASSERT_ANSWER(r, 307);
  assert_non_null(atr_tc_header(&r, "Location", loc, sizeof loc));
  assert_string_equal(loc, CODE "?folder=/home/a");
  atr_tc_res_free(&r);
  assert_page(app_get(s, CODE "?folder=/x", s->owner_token, NULL), 502,
              NOT_HERE);
}

/* The app's id, and its health into health (may be NULL). */
static const char *app_id(const srv_t *s, const agent_ws_t *a, const char *slug,
                          char out[37], char *health) {
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaceagents/%s", a->agent_id);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  size_t i;
  json_t *app;
  out[0] = '\0';
  json_array_foreach(json_object_get(r.json, "apps"), i, app) {
    if (strcmp(jstr(app, "slug"), slug) != 0)
      continue;
    snprintf(out, 37, "%s", jstr(app, "id"));
    if (health)
      snprintf(health, 16, "%s", jstr(app, "health"));
  }
  atr_tc_res_free(&r);
  assert_int_equal(strlen(out), 36);
  return out;
}

static void pages_say_when_the_app_cannot_be_reached(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace_spec(s, "apps", SPEC, &a);
  /* the agent never connected */
  assert_page(app_get(s, SHARED, s->owner_token, NULL), 503,
              "The workspace agent is not connected.");
  agent_connects(s, &a);
  char id[37];
  app_id(s, &a, "shared", id, NULL);
  atr_tc_res_t r =
      agent_call(s, &a, "POST", me("app-health"),
                 json_pack("{s:{s:s}}", "healths", id, "unhealthy"));
  ASSERT_ANSWER(r, 204);
  atr_tc_res_free(&r);
  /* reports are written behind the answer (the agent writer): wait */
  char health[16] = "";
  for (int i = 0; i < 500 && strcmp(health, "unhealthy") != 0; i++) {
    if (i)
      usleep(20 * 1000);
    app_id(s, &a, "shared", id, health);
  }
  assert_string_equal(health, "unhealthy");
  assert_page(app_get(s, SHARED, s->owner_token, NULL), 503,
              "The app is unhealthy.");
  /* a refusal comes before the app's state is told */
  assert_page(app_get(s, SHARED, NULL, NULL), 401, "Sign in");
  /* a stopped workspace: its agent's token is revoked */
  agent_revoke(s, &a);
  assert_page(app_get(s, SHARED, s->owner_token, NULL), 503,
              "The workspace is not running.");
}

static void apps_carry_coders_fields(void **state) {
  srv_t *s = *state;
  agent_ws_t a;
  agent_workspace_spec(s, "apps", SPEC, &a);
  char path[128];
  snprintf(path, sizeof path, "/api/v2/workspaceagents/%s", a.agent_id);
  atr_tc_res_t r = get(s, path, s->owner_token);
  ASSERT_ANSWER(r, 200);
  json_t *app = json_array_get(json_object_get(r.json, "apps"), 0);
  assert_string_equal(jstr(app, "slug"), "code");
  assert_string_equal(jstr(app, "display_name"), "Code");
  assert_string_equal(jstr(app, "url"),
                      "http://localhost:13337/?folder=/home/a");
  assert_true(json_is_false(json_object_get(app, "subdomain")));
  assert_string_equal(jstr(app, "sharing_level"), "owner");
  assert_string_equal(jstr(app, "health"), "disabled");
  app = json_array_get(json_object_get(r.json, "apps"), 2);
  assert_string_equal(jstr(app, "sharing_level"), "public");
  atr_tc_res_free(&r);
}

int main(int argc, char **argv) {
#define T(f) cmocka_unit_test_setup_teardown(f, apps_up, srv_stop)
  const struct CMUnitTest tests[] = {
      T(paths_are_checked_before_anything_is_looked_up),
      T(share_levels_decide_who_gets_through),
      T(a_browser_trades_its_session_for_an_app_token),
      T(the_app_urls_query_opens_its_root),
      T(pages_say_when_the_app_cannot_be_reached),
      T(apps_carry_coders_fields),
  };
#undef T
  return BUILDS_MAIN("api_apps", tests);
}
