/* core/api_routes.c — every /api/v2 route: method, path, handler, and the
 * permission it needs. Literal paths come before parameterised ones that
 * could match them. The RBAC matrix test walks this table, and
 * docs/api.md describes it. */
#include "api.h"
#include "api_audit.h"
#include "api_files.h"
#include "api_orgs.h"
#include "api_users.h"

#define PUBLIC ATR_AUTHZ_PUBLIC, ATR_RES_USER, ATR_ACT_READ, NULL, NULL
#define SIGNED_IN ATR_AUTHZ_SIGNED_IN, ATR_RES_USER, ATR_ACT_READ, NULL, NULL
#define RBAC(res, act) ATR_AUTHZ_RBAC, ATR_RES_##res, ATR_ACT_##act, NULL, NULL
#define RBAC_SELF(res, act)                                                    \
  ATR_AUTHZ_RBAC, ATR_RES_##res, ATR_ACT_##act, "user", NULL
#define RBAC_ORG(res, act)                                                     \
  ATR_AUTHZ_RBAC, ATR_RES_##res, ATR_ACT_##act, NULL, "organization"

const atr_api_route_t atr_api_routes[] = {
    /* signing in */
    {"GET", "/api/v2/users/first", atr_api_first_user_exists, PUBLIC},
    {"POST", "/api/v2/users/first", atr_api_first_user_create, PUBLIC},
    {"POST", "/api/v2/users/login", atr_api_login, PUBLIC},
    {"GET", "/api/v2/users/authmethods", atr_api_auth_methods, PUBLIC},
    {"POST", "/api/v2/users/logout", atr_api_logout, SIGNED_IN},
    /* users */
    {"GET", "/api/v2/users", atr_api_users_list, RBAC(USER, READ)},
    {"POST", "/api/v2/users", atr_api_user_create, RBAC(USER, CREATE)},
    {"GET", "/api/v2/users/{user}", atr_api_user_get, RBAC_SELF(USER, READ)},
    {"DELETE", "/api/v2/users/{user}", atr_api_user_delete, RBAC(USER, DELETE)},
    {"PUT", "/api/v2/users/{user}/status/suspend", atr_api_user_suspend,
     RBAC(USER, UPDATE)},
    {"PUT", "/api/v2/users/{user}/status/activate", atr_api_user_activate,
     RBAC(USER, UPDATE)},
    {"PUT", "/api/v2/users/{user}/password", atr_api_user_password,
     RBAC_SELF(USER_SECRET, UPDATE)},
    {"GET", "/api/v2/users/{user}/roles", atr_api_user_roles_get,
     RBAC_SELF(ROLE_ASSIGNMENT, READ)},
    {"PUT", "/api/v2/users/{user}/roles", atr_api_user_roles_put,
     RBAC(ROLE_ASSIGNMENT, UPDATE)},
    /* API tokens */
    {"POST", "/api/v2/users/{user}/keys/tokens", atr_api_tokens_create,
     RBAC_SELF(API_KEY, CREATE)},
    {"GET", "/api/v2/users/{user}/keys/tokens", atr_api_tokens_list,
     RBAC_SELF(API_KEY, READ)},
    {"DELETE", "/api/v2/users/{user}/keys/{keyid}", atr_api_key_delete,
     RBAC_SELF(API_KEY, DELETE)},
    /* organizations */
    {"GET", "/api/v2/organizations", atr_api_orgs_list, SIGNED_IN},
    {"POST", "/api/v2/organizations", atr_api_org_create,
     RBAC(ORGANIZATION, CREATE)},
    {"GET", "/api/v2/organizations/{organization}", atr_api_org_get,
     RBAC_ORG(ORGANIZATION, READ)},
    {"GET", "/api/v2/organizations/{organization}/members",
     atr_api_org_members_list, RBAC_ORG(ORGANIZATION_MEMBER, READ)},
    {"POST", "/api/v2/organizations/{organization}/members/{user}",
     atr_api_org_member_add, RBAC_ORG(ORGANIZATION_MEMBER, CREATE)},
    {"DELETE", "/api/v2/organizations/{organization}/members/{user}",
     atr_api_org_member_remove, RBAC_ORG(ORGANIZATION_MEMBER, DELETE)},
    {"PUT", "/api/v2/organizations/{organization}/members/{user}/roles",
     atr_api_org_member_roles, RBAC_ORG(ORGANIZATION_MEMBER, UPDATE)},
    /* files: template archives */
    {"POST", "/api/v2/files", atr_api_file_upload, RBAC(FILE, CREATE)},
    {"GET", "/api/v2/files/{fileid}", atr_api_file_get, RBAC(FILE, READ)},
    /* audit */
    {"GET", "/api/v2/audit", atr_api_audit_list, RBAC(AUDIT_LOG, READ)},
};

const size_t atr_api_nroutes = sizeof atr_api_routes / sizeof atr_api_routes[0];
