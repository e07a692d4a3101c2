/* tests/unit/test_rbac_matrix_routes.c — the route table itself (its
 * parameters name real path segments, every route is reachable) and how
 * atr_api_match finds a route for a request path. Run by
 * test_rbac_matrix.c's main. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "rbac.h"
#include "rbac_matrix.h"

/* ---- the route table itself ----------------------------------------------- */

/* Is {name} one of the pattern's parameters? */
static bool has_param(const char *pattern, const char *name) {
  char want[64];
  snprintf(want, sizeof want, "{%s}", name);
  return strstr(pattern, want) != NULL;
}

void route_parameters_name_real_path_segments(void **state) {
  (void)state;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    if (rt->self_param && !has_param(rt->pattern, rt->self_param))
      fail_msg("%s %s: self_param \"%s\" is not a parameter of the path",
               rt->method, rt->pattern, rt->self_param);
    if (rt->org_param && !has_param(rt->pattern, rt->org_param))
      fail_msg("%s %s: org_param \"%s\" is not a parameter of the path",
               rt->method, rt->pattern, rt->org_param);
    assert_non_null(rt->fn);
    for (size_t j = 0; j < i; j++)
      if (strcmp(rt->method, atr_api_routes[j].method) == 0 &&
          strcmp(rt->pattern, atr_api_routes[j].pattern) == 0)
        fail_msg("%s %s is in the table twice", rt->method, rt->pattern);
  }
}

/* A path for the pattern, each {name} replaced by "v-name". */
static void sample_path(const char *pattern, char *out, size_t size) {
  size_t o = 0;
  for (const char *p = pattern; *p && o + 1 < size;) {
    if (*p == '{') {
      const char *close = strchr(p, '}');
      o += (size_t)snprintf(out + o, size - o, "v-%.*s", (int)(close - p - 1),
                            p + 1);
      p = close + 1;
    } else {
      out[o++] = *p++;
    }
  }
  out[o < size ? o : size - 1] = '\0';
}

/* Catches a {param} route placed before a literal one that it would
 * swallow. */
void every_route_is_reachable_by_its_own_paths(void **state) {
  (void)state;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    char path[512];
    sample_path(rt->pattern, path, sizeof path);
    atr_api_req_t r = {0};
    bool mismatch = false;
    const atr_api_route_t *got = atr_api_match(rt->method, path, &r, &mismatch);
    if (got != rt)
      fail_msg("%s %s is answered by %s", rt->method, path,
               got ? got->pattern : "no route");
    for (size_t k = 0; k < r.nparams; k++) {
      const char *name = r.param_names[k];
      char want[80];
      snprintf(want, sizeof want, "v-%.*s", (int)strcspn(name, "}"), name);
      assert_string_equal(r.param_values[k], want);
    }
  }
}

/* ---- atr_api_match --------------------------------------------------------- */

static const atr_api_route_t *match(const char *method, const char *path,
                                    atr_api_req_t *r, bool *mismatch) {
  memset(r, 0, sizeof *r);
  *mismatch = true; /* must be reset by every call */
  return atr_api_match(method, path, r, mismatch);
}

void literal_paths_win_over_parameters(void **state) {
  (void)state;
  atr_api_req_t r;
  bool mismatch;
  const atr_api_route_t *rt =
      match("GET", "/api/v2/users/first", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern, "/api/v2/users/first");
  assert_int_equal(r.nparams, 0);
  assert_null(atr_api_param(&r, "user"));

  rt = match("GET", "/api/v2/users/authmethods", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern, "/api/v2/users/authmethods");

  /* one more segment and it is the user "first" */
  rt = match("GET", "/api/v2/users/first/roles", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern, "/api/v2/users/{user}/roles");
  assert_string_equal(atr_api_param(&r, "user"), "first");
}

void parameters_are_captured_by_name(void **state) {
  (void)state;
  atr_api_req_t r;
  bool mismatch;
  const atr_api_route_t *rt =
      match("GET", "/api/v2/users/alice", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->method, "GET");
  assert_string_equal(rt->pattern, "/api/v2/users/{user}");
  assert_int_equal(r.nparams, 1);
  assert_string_equal(atr_api_param(&r, "user"), "alice");

  rt = match("DELETE", "/api/v2/users/me/keys/0123456789abcdef", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern, "/api/v2/users/{user}/keys/{keyid}");
  assert_string_equal(atr_api_param(&r, "user"), "me");
  assert_string_equal(atr_api_param(&r, "keyid"), "0123456789abcdef");

  rt = match("PUT", "/api/v2/organizations/acme/members/bob/roles", &r,
             &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern,
                      "/api/v2/organizations/{organization}/members/{user}/"
                      "roles");
  assert_int_equal(r.nparams, 2);
  assert_string_equal(atr_api_param(&r, "organization"), "acme");
  assert_string_equal(atr_api_param(&r, "user"), "bob");
  /* whole names only */
  assert_null(atr_api_param(&r, "org"));
  assert_null(atr_api_param(&r, "users"));
  assert_null(atr_api_param(&r, "keyid"));
}

void another_method_on_a_known_path_is_a_mismatch(void **state) {
  (void)state;
  atr_api_req_t r;
  bool mismatch;
  assert_null(match("PATCH", "/api/v2/users/alice", &r, &mismatch));
  assert_true(mismatch);
  assert_null(match("DELETE", "/api/v2/users", &r, &mismatch));
  assert_true(mismatch);
  assert_null(match("POST", "/api/v2/audit", &r, &mismatch));
  assert_true(mismatch);
  assert_null(match("GET", "/api/v2/users/alice/keys/0123", &r, &mismatch));
  assert_true(mismatch);

  /* A literal that exists only for another method does not stop the
   * {user} route: GET /users/login reads the user named "login" instead of
   * answering 405. Pinned so that a change here is deliberate. */
  const atr_api_route_t *rt =
      match("GET", "/api/v2/users/login", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern, "/api/v2/users/{user}");
  assert_string_equal(atr_api_param(&r, "user"), "login");
}

void one_trailing_slash_is_ignored(void **state) {
  (void)state;
  atr_api_req_t r;
  bool mismatch;
  const atr_api_route_t *rt = match("GET", "/api/v2/users/", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern, "/api/v2/users");

  rt = match("GET", "/api/v2/users/first/", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern, "/api/v2/users/first");

  rt = match("GET", "/api/v2/users/alice/", &r, &mismatch);
  assert_non_null(rt);
  assert_string_equal(rt->pattern, "/api/v2/users/{user}");
  assert_string_equal(atr_api_param(&r, "user"), "alice");

  assert_null(match("GET", "/api/v2/users//", &r, &mismatch));
  assert_false(mismatch);
}

void unknown_paths_match_nothing(void **state) {
  (void)state;
  atr_api_req_t r;
  bool mismatch;
  static const char *const paths[] = {
      "/api/v2/nothing",
      "/api/v2/users/alice/nothing",
      "/api/v2",
      "/api/v2/",
      "/API/V2/USERS",
      "/api/v2/users//roles",
      "",
      "/api/v2/usersx",
      "/api/v1/users",
  };
  for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
    if (match("GET", paths[i], &r, &mismatch))
      fail_msg("GET \"%s\" matched a route", paths[i]);
    if (mismatch)
      fail_msg("GET \"%s\" reported a method mismatch", paths[i]);
  }
  /* a parameter longer than the request can hold matches nothing */
  char path[400] = "/api/v2/users/";
  memset(path + strlen(path), 'a', 300);
  path[sizeof path - 1] = '\0';
  assert_null(match("GET", path, &r, &mismatch));
}
