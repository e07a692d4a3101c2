/* Who may call each /api/v2 route, written down here on its own and held
 * against the router's decision (atr_api_route_allows, the function the
 * dispatcher calls). A route added to atr_api_routes without a row here, or
 * a row left behind by a removed route, fails the test by name, so the
 * matrix and the table cannot drift apart silently.
 *
 * Also here: the permission table read directly (atr_rbac_allowed), role
 * names, and how a request path finds its route (atr_api_match).
 *
 * One program: this file holds the matrix, its tests against the router
 * and main; test_rbac_matrix_routes.c and test_rbac_matrix_table.c the
 * route table and permission table tests (rbac_matrix.h lists them). */
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
  AGENT,
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
    /* a workspace agent's token: no user, no roles */
    [AGENT] = {"workspace agent", false, 0, 0, false},
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
 *   agent  a workspace agent (its token or its session): only the agent
 *          routes under /api/v2/workspaceagents/me/, where no user passes
 * A cell is y (allowed), n (refused) or - (not applicable). A trailing ?
 * marks a questionable cell: it records what the code does today, and the
 * comment above the row says what we think is right. */
typedef struct row {
  const char *cells;
  const char *route;
} row_t;

static const row_t matrix[] = {
    /* anon  other self  uadm  tadm  aud   own   omem  oadm  agent */

    /* signing in */
    {" y     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/users/first"},
    {" y     y     -     y     y     y     y     -     -     n",
     "POST /api/v2/users/first"},
    {" y     y     -     y     y     y     y     -     -     n",
     "POST /api/v2/users/login"},
    {" y     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/users/authmethods"},
    {" n     y     -     y     y     y     y     -     -     n",
     "POST /api/v2/users/logout"},

    /* users */
    {" n     n     -     y     y     y     y     -     -     n",
     "GET /api/v2/users"},
    {" n     n     -     y     n     n     y     -     -     n",
     "POST /api/v2/users"},
    {" n     n     y     y     y     y     y     -     -     n",
     "GET /api/v2/users/{user}"},
    {" n     n     -     y     n     n     y     -     -     n",
     "DELETE /api/v2/users/{user}"},
    {" n     n     -     y     n     n     y     -     -     n",
     "PUT /api/v2/users/{user}/status/suspend"},
    {" n     n     -     y     n     n     y     -     -     n",
     "PUT /api/v2/users/{user}/status/activate"},
    /* uadm n?: a user-admin creates users with passwords, suspends and
     * deletes them, but cannot reset a forgotten password; only owners
     * can. Coder's user-admin may (update_personal on users). If allowed,
     * the handler must then refuse resetting an owner's password, or a
     * user-admin could sign in as an owner. */
    {" n     n     y     n?    n     n     y     -     -     n",
     "PUT /api/v2/users/{user}/password"},
    /* template admins and auditors see who holds which role */
    {" n     n     y     y     y     y     y     -     -     n",
     "GET /api/v2/users/{user}/roles"},
    /* user-admins pass this check, but the handler lets only owners grant
     * or take away owner and user-admin (a user-admin cannot promote
     * itself); they may assign template-admin and auditor. */
    {" n     n     -     y     n     n     y     -     -     n",
     "PUT /api/v2/users/{user}/roles"},

    /* API tokens */
    /* owners pass this check for anyone, but the handler refuses tokens
     * for someone else (impersonation the audit log would blame on the
     * victim); owners may still list and revoke them */
    {" n     n     y     n     n     n     y     -     -     n",
     "POST /api/v2/users/{user}/keys/tokens"},
    {" n     n     y     n     n     n     y     -     -     n",
     "GET /api/v2/users/{user}/keys/tokens"},
    {" n     n     y     n     n     n     y     -     -     n",
     "DELETE /api/v2/users/{user}/keys/{keyid}"},

    /* organizations */
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/organizations"},
    {" n     n     -     n     n     n     y     -     -     n",
     "POST /api/v2/organizations"},
    {" n     n     -     y     y     y     y     y     y     n",
     "GET /api/v2/organizations/{organization}"},
    /* template admins and auditors see who is in an organization */
    {" n     n     -     y     y     y     y     y     y     n",
     "GET /api/v2/organizations/{organization}/members"},
    {" n     n     -     y     n     n     y     n     y     n",
     "POST /api/v2/organizations/{organization}/members/{user}"},
    {" n     n     -     y     n     n     y     n     y     n",
     "DELETE /api/v2/organizations/{organization}/members/{user}"},
    /* user-admins add and remove members but do not hand out
     * organization-admin, which controls an organization's templates */
    {" n     n     -     n     n     n     y     n     y     n",
     "PUT /api/v2/organizations/{organization}/members/{user}/roles"},

    /* files: template authors upload archives */
    {" n     n     -     n     y     n     y     -     -     n",
     "POST /api/v2/files"},
    {" n     n     -     n     y     n     y     -     -     n",
     "GET /api/v2/files/{fileid}"},

    /* templates: versions and their import jobs; template admins and organization admins author, every member reads */
    {" n     n     -     n     y     n     y     n     y     n",
     "POST /api/v2/organizations/{organization}/templateversions"},

    /* the handlers check the version's organization: read for every member, cancel for template authors */
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/templateversions/{templateversion}"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/templateversions/{templateversion}/rich-parameters"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/templateversions/{templateversion}/logs"},
    {" n     y     -     y     y     y     y     -     -     n",
     "PATCH /api/v2/templateversions/{templateversion}/cancel"},
    {" n     n     -     n     y     n     y     n     y     n",
     "POST /api/v2/organizations/{organization}/templates"},

    /* an organization's templates are read by its members (as in Coder,
     * where the organization's everyone group holds them), template admins
     * and owners; not by a member of another organization */
    {" n     n     -     n     y     n     y     y     y     n",
     "GET /api/v2/organizations/{organization}/templates"},
    {" n     n     -     n     y     n     y     y     y     n",
     "GET /api/v2/organizations/{organization}/templates/{templatename}"},

    /* the handlers check the template's organization (update and delete: template authors) */
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/templates/{template}"},
    {" n     y     -     y     y     y     y     -     -     n",
     "PATCH /api/v2/templates/{template}"},
    {" n     y     -     y     y     y     y     -     -     n",
     "DELETE /api/v2/templates/{template}"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/templates/{template}/versions"},
    {" n     y     -     y     y     y     y     -     -     n",
     "PATCH /api/v2/templates/{template}/versions"},

    /* workspaces: members create their own; owners for anyone */
    {" n     n     y     n     n     n     y     n     n     n",
     "POST /api/v2/organizations/{organization}/members/{user}/workspaces"},
    {" n     n     y     n     n     n     y     -     -     n",
     "POST /api/v2/users/{user}/workspaces"},
    {" n     n     y     n     y     n     y     -     -     n",
     "GET /api/v2/users/{user}/workspace/{workspacename}"},

    /* the handlers check the workspace: its owner, or a role that may act on anyone's workspaces (read: template admins; everything: owners) */
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaces"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaces/{workspace}"},
    {" n     y     -     y     y     y     y     -     -     n",
     "POST /api/v2/workspaces/{workspace}/builds"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaces/{workspace}/builds"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspacebuilds/{workspacebuild}"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspacebuilds/{workspacebuild}/logs"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspacebuilds/{workspacebuild}/parameters"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspacebuilds/{workspacebuild}/resources"},
    {" n     y     -     y     y     y     y     -     -     n",
     "PATCH /api/v2/workspacebuilds/{workspacebuild}/cancel"},
    {" n     y     -     y     y     y     y     -     -     n",
     "PUT /api/v2/workspaces/{workspace}/autostart"},
    {" n     y     -     y     y     y     y     -     -     n",
     "PUT /api/v2/workspaces/{workspace}/ttl"},
    /* the handler also wants update on templates: states hold secrets */
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspacebuilds/{workspacebuild}/state"},

    /* workspace agents: the agent's own routes; no user, whatever roles */
    {" n     n     -     n     n     n     n     -     -     y",
     "GET /api/v2/workspaceagents/me/rpc"},
    {" n     n     -     n     n     n     n     -     -     y",
     "GET /api/v2/workspaceagents/me/manifest"},
    {" n     n     -     n     n     n     n     -     -     y",
     "POST /api/v2/workspaceagents/me/startup"},
    {" n     n     -     n     n     n     n     -     -     y",
     "POST /api/v2/workspaceagents/me/report-lifecycle"},
    {" n     n     -     n     n     n     n     -     -     y",
     "PATCH /api/v2/workspaceagents/me/logs"},
    {" n     n     -     n     n     n     n     -     -     y",
     "GET /api/v2/workspaceagents/me/logs/state"},
    {" n     n     -     n     n     n     n     -     -     y",
     "POST /api/v2/workspaceagents/me/metadata"},
    {" n     n     -     n     n     n     n     -     -     y",
     "POST /api/v2/workspaceagents/me/report-stats"},
    {" n     n     -     n     n     n     n     -     -     y",
     "POST /api/v2/workspaceagents/me/app-health"},
    {" n     n     -     n     n     n     n     -     -     y",
     "POST /api/v2/workspaceagents/me/listening-ports"},
    {" n     n     -     n     n     n     n     -     -     y",
     "GET /api/v2/workspaceagents/me/events"},
    /* what users read of an agent: the domain checks its workspace */
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaceagents/{workspaceagent}"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaceagents/{workspaceagent}/logs"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaceagents/{workspaceagent}/listening-ports"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaceagents/{workspaceagent}/metadata"},
    /* tunnels into a workspace: any signed-in user reaches the handler;
     * the domain lets in only the workspace's owner and site owners
     * (connect.h, tests/unit/test_connect_domain.c) */
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaceagents/{workspaceagent}/tunnel"},
    {" n     y     -     y     y     y     y     -     -     n",
     "GET /api/v2/workspaceagents/{workspaceagent}/pty"},

    /* audit */
    {" n     n     -     n     n     y     y     -     -     n",
     "GET /api/v2/audit"},

    /* debugging: owners only (deployment_config read); the auditor sees
     * the audit log but not the configuration, logs or health */
    {" n     n     -     n     n     n     y     -     -     n",
     "GET /api/v2/debug/health"},
    {" n     n     -     n     n     n     y     -     -     n",
     "GET /api/v2/debug/config"},
    {" n     n     -     n     n     n     y     -     -     n",
     "GET /api/v2/debug/plugins"},
    {" n     n     -     n     n     n     y     -     -     n",
     "GET /api/v2/debug/logs"},
    {" n     n     -     n     n     n     y     -     -     n",
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
  if (a == &actors[AGENT])
    return atr_api_route_allows_agent(rt);
  uint32_t roles = a->roles | (rt->org_param ? a->org_roles : 0);
  return atr_api_route_allows(rt, a->signed_in, roles, a->self);
}

/* ---- the matrix against the route table ------------------------------------ */

void every_route_has_a_row_and_every_row_a_route(void **state) {
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

void rows_mark_exactly_the_columns_that_do_not_apply(void **state) {
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

void each_route_allows_exactly_the_actors_of_its_row(void **state) {
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

void self_counts_only_where_the_route_names_a_user(void **state) {
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

void without_a_session_only_public_routes_answer(void **state) {
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
void only_owner_reads_authenticate_while_the_database_is_down(void **state) {
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

/* The agent routes are exactly those under /workspaceagents/me/: an agent
 * token must not open any other route, nor a user's key one of these. */
static void agent_routes_are_exactly_the_me_routes(void **state) {
  (void)state;
  static const char me[] = "/api/v2/workspaceagents/me/";
  size_t n = 0;
  for (size_t i = 0; i < atr_api_nroutes; i++) {
    const atr_api_route_t *rt = &atr_api_routes[i];
    bool under_me = strncmp(rt->pattern, me, sizeof me - 1) == 0;
    n += under_me;
    if (under_me != atr_api_route_allows_agent(rt))
      fail_msg("%s %s: %s", rt->method, rt->pattern,
               under_me ? "an agent route that agents may not call"
                        : "agents may call a route outside /me/");
    if (under_me && atr_api_route_allows(rt, true, ALL_ROLES, true))
      fail_msg("%s %s: a user with every role passes", rt->method, rt->pattern);
  }
  assert_int_equal(n, 11);
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
      cmocka_unit_test(agent_routes_are_exactly_the_me_routes),
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
