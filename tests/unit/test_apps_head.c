/* tests/unit/test_apps_head.c — the pure parts of workspace apps
 * (core/api/api_apps_head.c): the /@ path, the app's URL, the cookies
 * and the request head the app receives, each against exact outputs;
 * and the share levels' decision (core/domain/apps.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api_apps.h"
#include "apps.h"
#include "atrium/error.h"

/* ---- the path ------------------------------------------------------------ */

static void a_path_splits_into_owner_workspace_agent_slug_rest(void **state) {
  (void)state;
  atr_app_path_t p;
  const char *why = NULL;
  const char *t = "/@Alice/dev.main/apps/code-server/static/x.js?v=1&w=%202";
  assert_int_equal(atr_api_app_path_parse(t, &p, &why), 0);
  assert_string_equal(p.owner, "Alice");
  assert_string_equal(p.workspace, "dev");
  assert_string_equal(p.agent, "main");
  assert_string_equal(p.slug, "code-server");
  assert_int_equal(p.prefix_len, strlen("/@Alice/dev.main/apps/code-server"));
  assert_ptr_equal(p.prefix, t);
  assert_int_equal(p.rest_len, strlen("/static/x.js"));
  assert_memory_equal(p.rest, "/static/x.js", p.rest_len);
  assert_string_equal(p.query, "v=1&w=%202");
}

static void an_encoded_at_sign_and_no_agent_parse_too(void **state) {
  (void)state;
  atr_app_path_t p;
  const char *why = NULL;
  /* VS Code web encodes the @ (Coder routes /%40 too) */
  assert_int_equal(atr_api_app_path_parse("/%40bob/ws/apps/j/", &p, &why), 0);
  assert_string_equal(p.owner, "bob");
  assert_string_equal(p.workspace, "ws");
  assert_string_equal(p.agent, "");
  assert_int_equal(p.rest_len, 1);
  assert_null(p.query);
  /* the absolute form counts from its path */
  assert_int_equal(
      atr_api_app_path_parse("http://h:3000/@bob/ws/apps/j/a", &p, &why), 0);
  assert_string_equal(p.slug, "j");
  assert_memory_equal(p.rest, "/a", 2);
}

static void a_missing_slash_after_the_slug_leaves_the_rest_empty(void **state) {
  (void)state;
  atr_app_path_t p;
  const char *why = NULL;
  assert_int_equal(atr_api_app_path_parse("/@bob/ws/apps/j?x=1", &p, &why), 0);
  assert_int_equal(p.rest_len, 0);
  assert_string_equal(p.query, "x=1");
  assert_int_equal(p.prefix_len, strlen("/@bob/ws/apps/j"));
}

static void bad_paths_say_why(void **state) {
  (void)state;
  atr_app_path_t p;
  const char *why = NULL;
  static const struct {
    const char *target;
    int rc;
  } cases[] = {
      {"/@bob/ws/files/j/", ATR_ENOENT}, /* not an app path */
      {"/@bob/ws", ATR_ENOENT},
      {"/@bob", ATR_ENOENT},
      {"/@/ws/apps/j/", ATR_EINVAL},        /* no owner */
      {"/@bob//apps/j/", ATR_EINVAL},       /* no workspace */
      {"/@bob/ws./apps/j/", ATR_EINVAL},    /* empty agent */
      {"/@bob/ws.a.b/apps/j/", ATR_EINVAL}, /* a dot in the agent */
      {"/@bob/ws/apps/j%2Fk/", ATR_EINVAL}, /* an encoded slash */
      {"/@bob/ws/apps/j%00/", ATR_EINVAL},  /* an encoded NUL */
      {"/@bob/ws/apps/j%4/", ATR_EINVAL},   /* a cut escape */
      {"/@b<b/ws/apps/j/", ATR_EINVAL},     /* markup */
      {"/@bob/ws/apps/"
       "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
       "aaaaaaaaaaaaa/",
       ATR_EINVAL}, /* a 65-character slug */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    why = NULL;
    int rc = atr_api_app_path_parse(cases[i].target, &p, &why);
    if (rc != cases[i].rc)
      fail_msg("%s: %d, want %d", cases[i].target, rc, cases[i].rc);
    assert_non_null(why);
  }
}

/* ---- the app's URL ------------------------------------------------------------ */

static void app_urls_give_host_port_path_query(void **state) {
  (void)state;
  atr_app_url_t u;
  const char *why = NULL;
  assert_int_equal(
      atr_api_app_url_parse("http://localhost:13337?folder=/home/a", &u, &why),
      0);
  assert_string_equal(u.host, "localhost");
  assert_int_equal(u.port, 13337);
  assert_true(u.loopback);
  assert_string_equal(u.path, "/");
  assert_string_equal(u.query, "folder=/home/a");
  assert_int_equal(
      atr_api_app_url_parse("http://10.1.2.3/@a/dev/apps/jupyter/", &u, &why),
      0);
  assert_int_equal(u.port, 80);
  assert_false(u.loopback);
  assert_string_equal(u.path, "/@a/dev/apps/jupyter/");
  assert_int_equal(atr_api_app_url_parse("http://[::1]:8080/", &u, &why), 0);
  assert_string_equal(u.host, "::1");
  assert_false(u.loopback); /* named to the agent: its default is v4 */
  assert_int_equal(
      atr_api_app_url_parse("http://me:pw@LocalHost:9/x", &u, &why), 0);
  assert_string_equal(u.host, "LocalHost");
  assert_int_equal(u.port, 9);
  assert_true(u.loopback);
  assert_string_equal(u.path, "/x");
  assert_int_equal(atr_api_app_url_parse("https://localhost:1/", &u, &why),
                   ATR_EINVAL);
  assert_non_null(strstr(why, "http://"));
  assert_int_equal(atr_api_app_url_parse("http://h:0/", &u, &why), ATR_EINVAL);
  assert_int_equal(atr_api_app_url_parse("http://h:99999/", &u, &why),
                   ATR_EINVAL);
  assert_int_equal(atr_api_app_url_parse("http://:80/", &u, &why), ATR_EINVAL);
}

static void app_url_paths_take_the_workspaces_names(void **state) {
  (void)state;
  char out[64];
  assert_true(atr_api_app_path_expand("/@{owner}/{workspace}/apps/{slug}/",
                                      "alice", "dev", "main", "jupyter", out,
                                      sizeof out));
  assert_string_equal(out, "/@alice/dev/apps/jupyter/");
  assert_true(atr_api_app_path_expand("/{agent}/{x}/{", "a", "w", "main", "s",
                                      out, sizeof out));
  assert_string_equal(out, "/main/{x}/{");
  assert_false(atr_api_app_path_expand(
      "/{workspace}{workspace}", "a",
      "0123456789012345678901234567890123456789", "m", "s", out, sizeof out));
}

/* ---- cookies and the head ------------------------------------------------- */

static void our_cookies_never_reach_the_app(void **state) {
  (void)state;
  char out[256];
  assert_int_equal(
      atr_api_app_strip_cookies("atrium_session=k1-s; theme=dark;"
                                "  atrium_app_token=T ;ATRIUM_CSRF=c; x=1 ",
                                out, sizeof out),
      2);
  assert_string_equal(out, "theme=dark; x=1");
  assert_int_equal(
      atr_api_app_strip_cookies("atrium_session=a", out, sizeof out), 0);
  assert_string_equal(out, "");
  /* what the app set comes back whole, in a buffer just large enough */
  static const char only[] = "_xsrf=2|a5|af|17; b=c";
  char exact[sizeof only];
  assert_int_equal(atr_api_app_strip_cookies(only, exact, sizeof exact), 2);
  assert_string_equal(exact, only);
}

static const char *const names[] = {"Host",
                                    "User-Agent",
                                    "Cookie",
                                    "Atrium-Session-Token",
                                    "Authorization",
                                    "Connection",
                                    "Keep-Alive",
                                    "X-Trace",
                                    "X-Forwarded-For",
                                    "Content-Length",
                                    "Accept"};
static const char *const values[] = {
    "atrium.example:3000",
    "curl/8",
    "atrium_session=0123456789-abcdefghijklmnopqrstuv; a=b",
    "0123456789-abcdefghijklmnopqrstuv",
    "Bearer 0123456789-abcdefghijklmnopqrstuv",
    "keep-alive, X-Trace",
    "timeout=5",
    "t1",
    "6.6.6.6",
    "5",
    "*/*"};

static atr_app_head_t sample(void) {
  return (atr_app_head_t){.method = "POST",
                          .app_path = "/",
                          .rest = "/api/x?y",
                          .rest_len = 6,
                          .query = "q=1",
                          .names = names,
                          .values = values,
                          .nheaders = sizeof names / sizeof names[0],
                          .client_ip = "192.0.2.7",
                          .proto = "https",
                          .app_host = "127.0.0.1:8080",
                          .strip_authorization = true,
                          .body_len = -1};
}

static void the_head_is_rewritten_exactly(void **state) {
  (void)state;
  atr_app_head_t h = sample();
  size_t len = 0;
  char *head = atr_api_app_head(&h, &len);
  assert_non_null(head);
  assert_string_equal(head, "POST /api/x?q=1 HTTP/1.1\r\n"
                            "Host: atrium.example:3000\r\n"
                            "User-Agent: curl/8\r\n"
                            "Cookie: a=b\r\n"
                            "Content-Length: 5\r\n"
                            "Accept: */*\r\n"
                            "X-Forwarded-For: 192.0.2.7\r\n"
                            "X-Forwarded-Proto: https\r\n"
                            "X-Forwarded-Host: atrium.example:3000\r\n"
                            "Connection: close\r\n"
                            "\r\n");
  assert_int_equal(len, strlen(head));
  free(head);
}

static void
an_app_path_is_joined_and_a_websocket_keeps_its_upgrade(void **state) {
  (void)state;
  static const char *const n[] = {"Upgrade", "Connection", "Sec-WebSocket-Key",
                                  "Authorization"};
  static const char *const v[] = {"websocket", "Upgrade",
                                  "dGhlIHNhbXBsZQ==", "Bearer app-own-token"};
  atr_app_head_t h = {.method = "GET",
                      .app_path = "/@a/dev/apps/j/",
                      .rest = "/api/kernels/1/channels",
                      .rest_len = strlen("/api/kernels/1/channels"),
                      .names = n,
                      .values = v,
                      .nheaders = 4,
                      .client_ip = "::1",
                      .proto = "http",
                      .app_host = "localhost:8888",
                      .websocket = true,
                      .body_len = -1};
  size_t len = 0;
  char *head = atr_api_app_head(&h, &len);
  assert_non_null(head);
  assert_string_equal(head,
                      "GET /@a/dev/apps/j/api/kernels/1/channels HTTP/1.1\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZQ==\r\n"
                      "Authorization: Bearer app-own-token\r\n"
                      "Host: localhost:8888\r\n"
                      "X-Forwarded-For: ::1\r\n"
                      "X-Forwarded-Proto: http\r\n"
                      "X-Forwarded-Host: localhost:8888\r\n"
                      "Connection: Upgrade\r\n"
                      "Upgrade: websocket\r\n"
                      "\r\n");
  free(head);
}

static void a_body_already_read_is_framed_by_its_length(void **state) {
  (void)state;
  static const char *const n[] = {"Host", "Transfer-Encoding"};
  static const char *const v[] = {"h", "chunked"};
  atr_app_head_t h = {.method = "PUT",
                      .app_path = "/base",
                      .rest = "/",
                      .rest_len = 1,
                      .names = n,
                      .values = v,
                      .nheaders = 2,
                      .client_ip = "127.0.0.1",
                      .proto = "http",
                      .app_host = "localhost:1",
                      .body_len = 11};
  size_t len = 0;
  char *head = atr_api_app_head(&h, &len);
  assert_non_null(head);
  assert_string_equal(head, "PUT /base/ HTTP/1.1\r\n"
                            "Host: h\r\n"
                            "Content-Length: 11\r\n"
                            "X-Forwarded-For: 127.0.0.1\r\n"
                            "X-Forwarded-Proto: http\r\n"
                            "X-Forwarded-Host: h\r\n"
                            "Connection: close\r\n"
                            "\r\n");
  free(head);
}

static void a_header_with_a_line_break_is_refused(void **state) {
  (void)state;
  static const char *const n[] = {"X-Evil"};
  static const char *const v[] = {"a\r\nCookie: atrium_session=x"};
  atr_app_head_t h = sample();
  h.names = n;
  h.values = v;
  h.nheaders = 1;
  size_t len = 0;
  assert_null(atr_api_app_head(&h, &len));
}

/* ---- share levels ----------------------------------------------------------- */

static void share_levels_decide_who_opens(void **state) {
  (void)state;
  const char *owner = "11111111-1111-1111-1111-111111111111";
  atr_actor_t anon = {0};
  atr_actor_t alice = {.roles = ATR_ROLE_MEMBER};
  strcpy(alice.user_id, owner);
  strcpy(alice.username, "alice");
  atr_actor_t bob = {.roles = ATR_ROLE_MEMBER};
  strcpy(bob.user_id, "22222222-2222-2222-2222-222222222222");
  strcpy(bob.username, "bob");
  atr_actor_t admin = bob;
  admin.roles |= ATR_ROLE_OWNER;
  atr_actor_t template_admin = bob;
  template_admin.roles |= ATR_ROLE_TEMPLATE_ADMIN;
  assert_int_equal(atr_app_allowed("public", owner, &anon), 0);
  assert_int_equal(atr_app_allowed("public", owner, &bob), 0);
  assert_int_equal(atr_app_allowed("authenticated", owner, &anon), ATR_EACCES);
  assert_int_equal(atr_app_allowed("authenticated", owner, &bob), 0);
  assert_int_equal(atr_app_allowed("owner", owner, &anon), ATR_EACCES);
  assert_int_equal(atr_app_allowed("owner", owner, &alice), 0);
  assert_int_equal(atr_app_allowed("owner", owner, &bob), ATR_EPERM);
  assert_int_equal(atr_app_allowed("owner", owner, &template_admin), ATR_EPERM);
  assert_int_equal(atr_app_allowed("owner", owner, &admin), 0);
  /* an unknown level is the strictest */
  assert_int_equal(atr_app_allowed("organization", owner, &bob), ATR_EPERM);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_path_splits_into_owner_workspace_agent_slug_rest),
      cmocka_unit_test(an_encoded_at_sign_and_no_agent_parse_too),
      cmocka_unit_test(a_missing_slash_after_the_slug_leaves_the_rest_empty),
      cmocka_unit_test(bad_paths_say_why),
      cmocka_unit_test(app_urls_give_host_port_path_query),
      cmocka_unit_test(app_url_paths_take_the_workspaces_names),
      cmocka_unit_test(our_cookies_never_reach_the_app),
      cmocka_unit_test(the_head_is_rewritten_exactly),
      cmocka_unit_test(an_app_path_is_joined_and_a_websocket_keeps_its_upgrade),
      cmocka_unit_test(a_body_already_read_is_framed_by_its_length),
      cmocka_unit_test(a_header_with_a_line_break_is_refused),
      cmocka_unit_test(share_levels_decide_who_opens),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
