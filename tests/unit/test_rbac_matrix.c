/* Who may call each /api/v2 route, written down here on its own and held
 * against the router's decision (atr_api_route_allows, the function the
 * dispatcher calls). A route added to atr_api_routes without a row here, or
 * a row left behind by a removed route, fails the test by name, so the
 * matrix and the table cannot drift apart silently.
 *
 * Also here: the permission table read directly (atr_rbac_allowed), role
 * names, and how a request path finds its route (atr_api_match). */
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

/* ---- the actors -------------------------------------------------------- */

enum {
  ANON,
  OTHER,
  SELF,
  USER_ADMIN,
  TEMPLATE_ADMIN,
  AUDITOR,
  OWNER,
  ORG_MEMBER,
  ORG_ADMIN,
  NACTORS
};

typedef struct actor {
  const char *name;
  bool signed_in;
  uint32_t roles;     /* site roles: every signed-in user is a member */
  uint32_t org_roles; /* in the route's organization; the dispatcher joins
                         them only on routes with an org_param */
  bool self;          /* the route's {user} is the actor */
} actor_t;

#define M ATR_ROLE_MEMBER
#define ALL_ROLES                                                              \
  (ATR_ROLE_OWNER | ATR_ROLE_USER_ADMIN | ATR_ROLE_TEMPLATE_ADMIN |            \
   ATR_ROLE_AUDITOR | ATR_ROLE_MEMBER | ATR_ROLE_ORG_ADMIN |                   \
   ATR_ROLE_ORG_MEMBER)

/* Site administrators act on someone else, and belong to no organization
 * the route names, so only their site roles count. */
static const actor_t actors[NACTORS] = {
    [ANON] = {"anonymous", false, 0, 0, false},
    [OTHER] = {"member acting on someone else", true, M, 0, false},
    [SELF] = {"member acting on self", true, M, 0, true},
    [USER_ADMIN] = {"user-admin", true, M | ATR_ROLE_USER_ADMIN, 0, false},
    [TEMPLATE_ADMIN] = {"template-admin", true, M | ATR_ROLE_TEMPLATE_ADMIN, 0,
                        false},
    [AUDITOR] = {"auditor", true, M | ATR_ROLE_AUDITOR, 0, false},
    [OWNER] = {"owner", true, M | ATR_ROLE_OWNER, 0, false},
    [ORG_MEMBER] = {"organization-member", true, M, ATR_ROLE_ORG_MEMBER, false},
    [ORG_ADMIN] = {"organization-admin", true, M,
                   ATR_ROLE_ORG_MEMBER | ATR_ROLE_ORG_ADMIN, false},
};

#undef M

/* ---- the matrix ---------------------------------------------------------- */

/* One row per route: a cell per actor, in the order of the column header,
 * then the route as "METHOD /pattern". The columns:
 *   anon   anonymous (no session)
 *   other  a member acting on another user (or an organization they are
 *          not in)
 *   self   a member acting on themselves ({user} = "me"); only on routes
 *          with a self_param
 *   uadm   user-admin          tadm  template-admin
 *   aud    auditor             own   owner
 *   omem   organization-member of the route's organization; only on
 *          routes with an org_param
 *   oadm   organization-admin of the route's organization; same
 * A cell is y (allowed), n (refused) or - (not applicable). A trailing ?
 * marks a questionable cell: it records what the code does today, and the
 * comment above the row says what we think is right. */
typedef struct row {
  const char *cells;
  const char *route;
} row_t;

static const row_t matrix[] = {
    /* anon  other self  uadm  tadm  aud   own   omem  oadm */

    /* signing in */
    {" y     y     -     y     y     y     y     -     -",
     "GET /api/v2/users/first"},
    {" y     y     -     y     y     y     y     -     -",
     "POST /api/v2/users/first"},
    {" y     y     -     y     y     y     y     -     -",
     "POST /api/v2/users/login"},
    {" y     y     -     y     y     y     y     -     -",
     "GET /api/v2/users/authmethods"},
    {" n     y     -     y     y     y     y     -     -",
     "POST /api/v2/users/logout"},

    /* users */
    {" n     n     -     y     y     y     y     -     -", "GET /api/v2/users"},
    {" n     n     -     y     n     n     y     -     -",
     "POST /api/v2/users"},
    {" n     n     y     y     y     y     y     -     -",
     "GET /api/v2/users/{user}"},
    {" n     n     -     y     n     n     y     -     -",
     "DELETE /api/v2/users/{user}"},
    {" n     n     -     y     n     n     y     -     -",
     "PUT /api/v2/users/{user}/status/suspend"},
    {" n     n     -     y     n     n     y     -     -",
     "PUT /api/v2/users/{user}/status/activate"},
    /* uadm n?: a user-admin creates users with passwords, suspends and
     * deletes them, but cannot reset a forgotten password; only owners
     * can. Coder's user-admin may (update_personal on users). If allowed,
     * the handler must then refuse resetting an owner's password, or a
     * user-admin could sign in as an owner. */
    {" n     n     y     n?    n     n     y     -     -",
     "PUT /api/v2/users/{user}/password"},
    /* template admins and auditors see who holds which role */
    {" n     n     y     y     y     y     y     -     -",
     "GET /api/v2/users/{user}/roles"},
    /* user-admins pass this check, but the handler lets only owners grant
     * or take away owner and user-admin (a user-admin cannot promote
     * itself); they may assign template-admin and auditor. */
    {" n     n     -     y     n     n     y     -     -",
     "PUT /api/v2/users/{user}/roles"},

    /* API tokens */
    /* owners pass this check for anyone, but the handler refuses tokens
     * for someone else (impersonation the audit log would blame on the
     * victim); owners may still list and revoke them */
    {" n     n     y     n     n     n     y     -     -",
     "POST /api/v2/users/{user}/keys/tokens"},
    {" n     n     y     n     n     n     y     -     -",
     "GET /api/v2/users/{user}/keys/tokens"},
    {" n     n     y     n     n     n     y     -     -",
     "DELETE /api/v2/users/{user}/keys/{keyid}"},

    /* organizations */
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/organizations"},
    {" n     n     -     n     n     n     y     -     -",
     "POST /api/v2/organizations"},
    {" n     n     -     y     y     y     y     y     y",
     "GET /api/v2/organizations/{organization}"},
    /* template admins and auditors see who is in an organization */
    {" n     n     -     y     y     y     y     y     y",
     "GET /api/v2/organizations/{organization}/members"},
    {" n     n     -     y     n     n     y     n     y",
     "POST /api/v2/organizations/{organization}/members/{user}"},
    {" n     n     -     y     n     n     y     n     y",
     "DELETE /api/v2/organizations/{organization}/members/{user}"},
    /* user-admins add and remove members but do not hand out
     * organization-admin, which controls an organization's templates */
    {" n     n     -     n     n     n     y     n     y",
     "PUT /api/v2/organizations/{organization}/members/{user}/roles"},

    /* files: template authors upload archives */
    {" n     n     -     n     y     n     y     -     -",
     "POST /api/v2/files"},
    {" n     n     -     n     y     n     y     -     -",
     "GET /api/v2/files/{fileid}"},

    /* templates: versions and their import jobs; template admins and organization admins author, every member reads */
    {" n     n     -     n     y     n     y     n     y",
     "POST /api/v2/organizations/{organization}/templateversions"},

    /* the handlers check the version's organization: read for every member, cancel for template authors */
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/templateversions/{templateversion}"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/templateversions/{templateversion}/rich-parameters"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/templateversions/{templateversion}/logs"},
    {" n     y     -     y     y     y     y     -     -",
     "PATCH /api/v2/templateversions/{templateversion}/cancel"},
    {" n     n     -     n     y     n     y     n     y",
     "POST /api/v2/organizations/{organization}/templates"},

    /* other y?: every member may read templates (as in Coder, where members see the templates they may use), also of an organization they are not in */
    {" n     y?    -     y     y     y     y     y     y",
     "GET /api/v2/organizations/{organization}/templates"},
    {" n     y?    -     y     y     y     y     y     y",
     "GET /api/v2/organizations/{organization}/templates/{templatename}"},

    /* the handlers check the template's organization (update and delete: template authors) */
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/templates/{template}"},
    {" n     y     -     y     y     y     y     -     -",
     "PATCH /api/v2/templates/{template}"},
    {" n     y     -     y     y     y     y     -     -",
     "DELETE /api/v2/templates/{template}"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/templates/{template}/versions"},
    {" n     y     -     y     y     y     y     -     -",
     "PATCH /api/v2/templates/{template}/versions"},

    /* workspaces: members create their own; owners for anyone */
    {" n     n     y     n     n     n     y     n     n",
     "POST /api/v2/organizations/{organization}/members/{user}/workspaces"},
    {" n     n     y     n     n     n     y     -     -",
     "POST /api/v2/users/{user}/workspaces"},
    {" n     n     y     n     y     n     y     -     -",
     "GET /api/v2/users/{user}/workspace/{workspacename}"},

    /* the handlers check the workspace: its owner, or a role that may act on anyone's workspaces (read: template admins; everything: owners) */
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/workspaces"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/workspaces/{workspace}"},
    {" n     y     -     y     y     y     y     -     -",
     "POST /api/v2/workspaces/{workspace}/builds"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/workspaces/{workspace}/builds"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/workspacebuilds/{workspacebuild}"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/workspacebuilds/{workspacebuild}/logs"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/workspacebuilds/{workspacebuild}/parameters"},
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/workspacebuilds/{workspacebuild}/resources"},
    {" n     y     -     y     y     y     y     -     -",
     "PATCH /api/v2/workspacebuilds/{workspacebuild}/cancel"},
    {" n     y     -     y     y     y     y     -     -",
     "PUT /api/v2/workspaces/{workspace}/autostart"},
    {" n     y     -     y     y     y     y     -     -",
     "PUT /api/v2/workspaces/{workspace}/ttl"},
    /* the handler also wants update on templates: states hold secrets */
    {" n     y     -     y     y     y     y     -     -",
     "GET /api/v2/workspacebuilds/{workspacebuild}/state"},

    /* audit */
    {" n     n     -     n     n     y     y     -     -", "GET /api/v2/audit"},

    /* debugging: owners only (deployment_config read); the auditor sees
     * the audit log but not the configuration, logs or health */
    {" n     n     -     n     n     n     y     -     -",
     "GET /api/v2/debug/health"},
    {" n     n     -     n     n     n     y     -     -",
     "GET /api/v2/debug/config"},
    {" n     n     -     n     n     n     y     -     -",
     "GET /api/v2/debug/plugins"},
    {" n     n     -     n     n     n     y     -     -",
     "GET /api/v2/debug/logs"},
    {" n     n     -     n     n     n     y     -     -",
     "GET /api/v2/debug/metrics"},
};

#define NROWS (sizeof matrix / sizeof matrix[0])

typedef enum verdict { CELL_NA, CELL_DENY, CELL_ALLOW } verdict_t;

typedef struct cell {
  verdict_t verdict;
  bool questioned;
} cell_t;

/* Split a row's cells; the number read, or -1 at a token that is not a
 * cell (*bad gets its position). */
static int parse_cells(const char *s, cell_t out[NACTORS], size_t *bad) {
  int n = 0;
  for (const char *p = s; *p;) {
    if (*p == ' ') {
      p++;
      continue;
    }
    if (n == NACTORS || !strchr("yn-", *p) ||
        (p[1] != '\0' && p[1] != ' ' && p[1] != '?') ||
        (p[1] == '?' && (*p == '-' || (p[2] != '\0' && p[2] != ' ')))) {
      *bad = (size_t)(p - s);
      return -1;
    }
    out[n].verdict = *p == 'y' ? CELL_ALLOW : *p == 'n' ? CELL_DENY : CELL_NA;
    out[n].questioned = p[1] == '?';
    n++;
    p += p[1] == '?' ? 2 : 1;
  }
  return n;
}

static bool route_is(const atr_api_route_t *rt, const char *key) {
  size_t m = strlen(rt->method);
  return strncmp(key, rt->method, m) == 0 && key[m] == ' ' &&
         strcmp(key + m + 1, rt->pattern) == 0;
}

static const row_t *row_for(const atr_api_route_t *rt) {
  for (size_t i = 0; i < NROWS; i++)
    if (route_is(rt, matrix[i].route))
      return &matrix[i];
  return NULL;
}

static const atr_api_route_t *route_for(const row_t *row) {
  for (size_t i = 0; i < atr_api_nroutes; i++)
    if (route_is(&atr_api_routes[i], row->route))
      return &atr_api_routes[i];
  return NULL;
}

/* Does this actor's column apply to the route? */
static bool applies(const atr_api_route_t *rt, int a) {
  if (a == SELF)
    return rt->self_param != NULL;
  if (a == ORG_MEMBER || a == ORG_ADMIN)
    return rt->org_param != NULL;
  return true;
}

/* The router's decision for an actor, with the roles the dispatcher would
 * pass. */
static bool router_allows(const atr_api_route_t *rt, const actor_t *a) {
  uint32_t roles = a->roles | (rt->org_param ? a->org_roles : 0);
  return atr_api_route_allows(rt, a->signed_in, roles, a->self);
}

/* ---- the matrix against the route table ------------------------------------ */

static void every_route_has_a_row_and_every_row_a_route(void **state) {
  (void)state;
  size_t problems = 0;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    if (!row_for(rt)) {
      print_error("route %s %s has no row in the RBAC matrix; add one to "
                  "tests/unit/test_rbac_matrix.c\n",
                  rt->method, rt->pattern);
      problems++;
    }
  }
  for (size_t i = 0; i < NROWS; i++) {
    if (!route_for(&matrix[i])) {
      print_error("matrix row \"%s\" names no route in atr_api_routes; "
                  "remove it or fix its method and pattern\n",
                  matrix[i].route);
      problems++;
    }
    for (size_t j = 0; j < i; j++)
      if (strcmp(matrix[i].route, matrix[j].route) == 0) {
        print_error("matrix row \"%s\" appears twice\n", matrix[i].route);
        problems++;
      }
  }
  if (problems)
    fail_msg("%zu mismatches between the RBAC matrix and the route table",
             problems);
}

static void rows_mark_exactly_the_columns_that_do_not_apply(void **state) {
  (void)state;
  size_t problems = 0;
  for (size_t i = 0; i < NROWS; i++) {
    const atr_api_route_t *rt = route_for(&matrix[i]);
    cell_t c[NACTORS];
    size_t bad = 0;
    int n = parse_cells(matrix[i].cells, c, &bad);
    if (n != NACTORS) {
      print_error("row \"%s\": %s\n", matrix[i].route,
                  n < 0 ? "a cell is not y, n, -, y? or n?"
                        : "wrong number of cells");
      problems++;
      continue;
    }
    for (int a = 0; rt && a < NACTORS; a++) {
      if ((c[a].verdict == CELL_NA) == applies(rt, a)) {
        print_error("row \"%s\", %s: %s\n", matrix[i].route, actors[a].name,
                    applies(rt, a) ? "the column applies to this route; "
                                     "write y or n"
                                   : "the column does not apply to this "
                                     "route; write -");
        problems++;
      }
    }
  }
  if (problems)
    fail_msg("%zu malformed cells in the RBAC matrix", problems);
}

static void each_route_allows_exactly_the_actors_of_its_row(void **state) {
  (void)state;
  size_t problems = 0, checked = 0, questioned = 0;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    const row_t *row = row_for(rt);
    cell_t c[NACTORS];
    size_t bad = 0;
    if (!row || parse_cells(row->cells, c, &bad) != NACTORS)
      continue; /* reported by the two tests above */
    for (int a = 0; a < NACTORS; a++) {
      if (c[a].verdict == CELL_NA)
        continue;
      bool want = c[a].verdict == CELL_ALLOW;
      bool got = router_allows(rt, &actors[a]);
      checked++;
      questioned += c[a].questioned;
      if (want != got) {
        print_error("%s %s, %s: the matrix says %s, the router says %s\n",
                    rt->method, rt->pattern, actors[a].name,
                    want ? "allow" : "deny", got ? "allow" : "deny");
        problems++;
      }
    }
  }
  print_message("%zu cells checked, %zu of them marked questionable\n", checked,
                questioned);
  assert_true(checked > 0);
  if (problems)
    fail_msg("%zu cells differ from the RBAC matrix", problems);
}

/* ---- properties of the router's decision ------------------------------------ */

static void self_counts_only_where_the_route_names_a_user(void **state) {
  (void)state;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    if (rt->self_param)
      continue;
    for (int a = 0; a < NACTORS; a++) {
      uint32_t roles = actors[a].roles | actors[a].org_roles;
      if (atr_api_route_allows(rt, actors[a].signed_in, roles, true) !=
          atr_api_route_allows(rt, actors[a].signed_in, roles, false))
        fail_msg("%s %s has no self_param, yet \"self\" changes the "
                 "decision for %s",
                 rt->method, rt->pattern, actors[a].name);
    }
  }
}

static void without_a_session_only_public_routes_answer(void **state) {
  (void)state;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    bool public_route = rt->authz == ATR_AUTHZ_PUBLIC;
    /* roles without a session never count */
    if (atr_api_route_allows(rt, false, ALL_ROLES, true) != public_route)
      fail_msg("%s %s: signed out with every role, expected %s", rt->method,
               rt->pattern, public_route ? "allow" : "deny");
  }
}

/* The owner key cache stands in for the database only on routes that
 * read, need no database and only owners may call: every route so marked
 * must be a GET that no actor but the owner passes. */
static void
only_owner_reads_authenticate_while_the_database_is_down(void **state) {
  (void)state;
  size_t marked = 0;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    if (!rt->auth_when_db_down)
      continue;
    marked++;
    if (strcmp(rt->method, "GET") != 0 || rt->authz != ATR_AUTHZ_RBAC)
      fail_msg("%s %s authenticates while the database is down but is not "
               "an RBAC-guarded GET",
               rt->method, rt->pattern);
    for (int a = 0; a < NACTORS; a++)
      if (a != OWNER && applies(rt, a) && router_allows(rt, &actors[a]))
        fail_msg("%s %s authenticates while the database is down, yet "
                 "allows %s",
                 rt->method, rt->pattern, actors[a].name);
    if (strncmp(rt->pattern, "/api/v2/debug/", 14) != 0)
      fail_msg("%s %s: only the debug routes need no database; a route "
               "that reads it has no use for the owner key cache",
               rt->method, rt->pattern);
  }
  assert_int_equal(marked, 5); /* the debug routes */
}

/* ---- the route table itself ----------------------------------------------- */

/* Is {name} one of the pattern's parameters? */
static bool has_param(const char *pattern, const char *name) {
  char want[64];
  snprintf(want, sizeof want, "{%s}", name);
  return strstr(pattern, want) != NULL;
}

static void route_parameters_name_real_path_segments(void **state) {
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
static void every_route_is_reachable_by_its_own_paths(void **state) {
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

static void literal_paths_win_over_parameters(void **state) {
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

static void parameters_are_captured_by_name(void **state) {
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

static void another_method_on_a_known_path_is_a_mismatch(void **state) {
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

static void one_trailing_slash_is_ignored(void **state) {
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

static void unknown_paths_match_nothing(void **state) {
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

/* ---- the permission table, cell by cell ----------------------------------- */

static void permission_table_cells(void **state) {
  (void)state;
  /* the audit log: owners and auditors read it */
  assert_true(
      atr_rbac_allowed(ATR_ROLE_OWNER, ATR_RES_AUDIT_LOG, ATR_ACT_READ, false));
  assert_true(atr_rbac_allowed(ATR_ROLE_AUDITOR, ATR_RES_AUDIT_LOG,
                               ATR_ACT_READ, false));
  assert_false(
      atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_AUDIT_LOG, ATR_ACT_READ, true));
  assert_false(atr_rbac_allowed(ATR_ROLE_USER_ADMIN, ATR_RES_AUDIT_LOG,
                                ATR_ACT_READ, false));
  /* a member: their own password and keys, nobody else's */
  assert_true(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_USER_SECRET,
                               ATR_ACT_UPDATE, true));
  assert_false(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_USER_SECRET,
                                ATR_ACT_UPDATE, false));
  for (int act = 0; act < ATR_ACT_COUNT; act++) {
    assert_true(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_API_KEY,
                                 (atr_action_t)act, true));
    assert_false(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_API_KEY,
                                  (atr_action_t)act, false));
  }
  assert_true(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_WORKSPACE,
                               ATR_ACT_CREATE, true));
  assert_false(atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_WORKSPACE,
                                ATR_ACT_READ, false));
  assert_true(
      atr_rbac_allowed(ATR_ROLE_MEMBER, ATR_RES_TEMPLATE, ATR_ACT_READ, false));
  /* user admins manage people, not their secrets */
  assert_true(atr_rbac_allowed(ATR_ROLE_USER_ADMIN, ATR_RES_USER,
                               ATR_ACT_DELETE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_USER_ADMIN, ATR_RES_USER_SECRET,
                                ATR_ACT_UPDATE, false));
  /* template admins: templates, and a look at workspaces */
  assert_true(atr_rbac_allowed(ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_TEMPLATE,
                               ATR_ACT_DELETE, false));
  assert_true(atr_rbac_allowed(ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_WORKSPACE,
                               ATR_ACT_READ, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_WORKSPACE,
                                ATR_ACT_UPDATE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_USER,
                                ATR_ACT_CREATE, false));
  /* organization roles */
  assert_true(atr_rbac_allowed(ATR_ROLE_ORG_MEMBER, ATR_RES_ORGANIZATION,
                               ATR_ACT_READ, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_ORG_MEMBER, ATR_RES_ORGANIZATION,
                                ATR_ACT_UPDATE, false));
  assert_false(atr_rbac_allowed(
      ATR_ROLE_ORG_MEMBER, ATR_RES_ORGANIZATION_MEMBER, ATR_ACT_CREATE, false));
  assert_true(atr_rbac_allowed(ATR_ROLE_ORG_ADMIN, ATR_RES_ORGANIZATION,
                               ATR_ACT_UPDATE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_ORG_ADMIN, ATR_RES_ORGANIZATION,
                                ATR_ACT_DELETE, false));
  /* deployment configuration: owners read and change it, nobody deletes */
  assert_true(atr_rbac_allowed(ATR_ROLE_OWNER, ATR_RES_DEPLOYMENT_CONFIG,
                               ATR_ACT_UPDATE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_OWNER, ATR_RES_DEPLOYMENT_CONFIG,
                                ATR_ACT_DELETE, false));
  assert_false(atr_rbac_allowed(ATR_ROLE_AUDITOR, ATR_RES_DEPLOYMENT_CONFIG,
                                ATR_ACT_READ, false));
  /* roles add up */
  uint32_t both = ATR_ROLE_AUDITOR | ATR_ROLE_TEMPLATE_ADMIN;
  assert_true(atr_rbac_allowed(both, ATR_RES_TEMPLATE, ATR_ACT_CREATE, false));
  assert_true(atr_rbac_allowed(both, ATR_RES_AUDIT_LOG, ATR_ACT_READ, false));
  /* an action outside the table is nobody's */
  assert_false(atr_rbac_allowed(ALL_ROLES, ATR_RES_USER, ATR_ACT_COUNT, true));
}

static void nobody_may_change_the_audit_log(void **state) {
  (void)state;
  for (uint32_t roles = 0; roles <= ALL_ROLES; roles++)
    for (int act = 0; act < ATR_ACT_COUNT; act++)
      if (act != ATR_ACT_READ &&
          atr_rbac_allowed(roles, ATR_RES_AUDIT_LOG, (atr_action_t)act, true))
        fail_msg("roles 0x%x may %s the audit log", roles,
                 atr_action_name((atr_action_t)act));
}

static void no_roles_allow_nothing(void **state) {
  (void)state;
  for (int res = 0; res < ATR_RES_COUNT; res++)
    for (int act = 0; act < ATR_ACT_COUNT; act++)
      assert_false(
          atr_rbac_allowed(0, (atr_resource_t)res, (atr_action_t)act, true));
}

/* "self" only ever adds, and a set of roles may do exactly what one of
 * them may. */
static void self_only_adds_and_roles_combine_as_a_union(void **state) {
  (void)state;
  for (uint32_t a = 1; a <= ATR_ROLE_ORG_MEMBER; a <<= 1)
    for (uint32_t b = 1; b <= ATR_ROLE_ORG_MEMBER; b <<= 1)
      for (int res = 0; res < ATR_RES_COUNT; res++)
        for (int act = 0; act < ATR_ACT_COUNT; act++)
          for (int self = 0; self < 2; self++) {
            atr_resource_t rs = (atr_resource_t)res;
            atr_action_t ac = (atr_action_t)act;
            bool alone = atr_rbac_allowed(a, rs, ac, self);
            assert_int_equal(atr_rbac_allowed(a | b, rs, ac, self),
                             alone || atr_rbac_allowed(b, rs, ac, self));
            if (alone && !self)
              assert_true(atr_rbac_allowed(a, rs, ac, true));
          }
}

/* ---- roles and names -------------------------------------------------------- */

static void role_names_round_trip(void **state) {
  (void)state;
  static const struct {
    const char *name;
    uint32_t role;
    bool org;
  } known[] = {
      {"owner", ATR_ROLE_OWNER, false},
      {"user-admin", ATR_ROLE_USER_ADMIN, false},
      {"template-admin", ATR_ROLE_TEMPLATE_ADMIN, false},
      {"auditor", ATR_ROLE_AUDITOR, false},
      {"member", ATR_ROLE_MEMBER, false},
      {"organization-admin", ATR_ROLE_ORG_ADMIN, true},
      {"organization-member", ATR_ROLE_ORG_MEMBER, true},
  };
  for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
    assert_string_equal(atr_role_name(known[i].role), known[i].name);
    assert_int_equal(atr_role_parse(known[i].name, known[i].org),
                     known[i].role);
    /* site names are not organization roles, and the other way round */
    assert_int_equal(atr_role_parse(known[i].name, !known[i].org), 0);
  }
  assert_null(atr_role_name(0));
  assert_null(atr_role_name(ATR_ROLE_OWNER | ATR_ROLE_MEMBER));
  assert_null(atr_role_name(1u << 7));
  assert_int_equal(atr_role_parse("Owner", false), 0);
  assert_int_equal(atr_role_parse("admin", false), 0);
  assert_int_equal(atr_role_parse("", false), 0);
  assert_int_equal(atr_role_parse(NULL, false), 0);
  assert_int_equal(atr_role_parse(NULL, true), 0);
}

static void only_explicit_roles_are_assignable(void **state) {
  (void)state;
  assert_true(atr_role_assignable(ATR_ROLE_OWNER, false));
  assert_true(atr_role_assignable(ATR_ROLE_USER_ADMIN, false));
  assert_true(atr_role_assignable(ATR_ROLE_TEMPLATE_ADMIN, false));
  assert_true(atr_role_assignable(ATR_ROLE_AUDITOR, false));
  assert_true(atr_role_assignable(ATR_ROLE_ORG_ADMIN, true));
  /* implied for everyone */
  assert_false(atr_role_assignable(ATR_ROLE_MEMBER, false));
  assert_false(atr_role_assignable(ATR_ROLE_ORG_MEMBER, true));
  /* in the wrong scope */
  assert_false(atr_role_assignable(ATR_ROLE_OWNER, true));
  assert_false(atr_role_assignable(ATR_ROLE_ORG_ADMIN, false));
  /* not one role */
  assert_false(atr_role_assignable(0, false));
  assert_false(atr_role_assignable(ATR_ROLE_OWNER | ATR_ROLE_AUDITOR, false));
}

static void resources_and_actions_have_names(void **state) {
  (void)state;
  assert_string_equal(atr_resource_name(ATR_RES_USER), "user");
  assert_string_equal(atr_resource_name(ATR_RES_USER_SECRET), "user_secret");
  assert_string_equal(atr_resource_name(ATR_RES_ROLE_ASSIGNMENT),
                      "role_assignment");
  assert_string_equal(atr_resource_name(ATR_RES_API_KEY), "api_key");
  assert_string_equal(atr_resource_name(ATR_RES_ORGANIZATION), "organization");
  assert_string_equal(atr_resource_name(ATR_RES_ORGANIZATION_MEMBER),
                      "organization_member");
  assert_string_equal(atr_resource_name(ATR_RES_AUDIT_LOG), "audit_log");
  assert_string_equal(atr_resource_name(ATR_RES_TEMPLATE), "template");
  assert_string_equal(atr_resource_name(ATR_RES_WORKSPACE), "workspace");
  assert_string_equal(atr_resource_name(ATR_RES_DEPLOYMENT_CONFIG),
                      "deployment_config");
  assert_string_equal(atr_resource_name(ATR_RES_COUNT), "unknown");
  assert_string_equal(atr_action_name(ATR_ACT_CREATE), "create");
  assert_string_equal(atr_action_name(ATR_ACT_READ), "read");
  assert_string_equal(atr_action_name(ATR_ACT_UPDATE), "update");
  assert_string_equal(atr_action_name(ATR_ACT_DELETE), "delete");
  assert_string_equal(atr_action_name(ATR_ACT_COUNT), "unknown");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(every_route_has_a_row_and_every_row_a_route),
      cmocka_unit_test(rows_mark_exactly_the_columns_that_do_not_apply),
      cmocka_unit_test(each_route_allows_exactly_the_actors_of_its_row),
      cmocka_unit_test(self_counts_only_where_the_route_names_a_user),
      cmocka_unit_test(without_a_session_only_public_routes_answer),
      cmocka_unit_test(
          only_owner_reads_authenticate_while_the_database_is_down),
      cmocka_unit_test(route_parameters_name_real_path_segments),
      cmocka_unit_test(every_route_is_reachable_by_its_own_paths),
      cmocka_unit_test(literal_paths_win_over_parameters),
      cmocka_unit_test(parameters_are_captured_by_name),
      cmocka_unit_test(another_method_on_a_known_path_is_a_mismatch),
      cmocka_unit_test(one_trailing_slash_is_ignored),
      cmocka_unit_test(unknown_paths_match_nothing),
      cmocka_unit_test(permission_table_cells),
      cmocka_unit_test(nobody_may_change_the_audit_log),
      cmocka_unit_test(no_roles_allow_nothing),
      cmocka_unit_test(self_only_adds_and_roles_combine_as_a_union),
      cmocka_unit_test(role_names_round_trip),
      cmocka_unit_test(only_explicit_roles_are_assignable),
      cmocka_unit_test(resources_and_actions_have_names),
  };
  return cmocka_run_group_tests_name("rbac_matrix", tests, NULL, NULL);
}
