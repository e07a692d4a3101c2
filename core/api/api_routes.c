/* core/api_routes.c — every /api/v2 route: method, path, handler, and the
 * permission it needs. Literal paths come before parameterised ones that
 * could match them. The RBAC matrix test walks this table, and
 * docs/api.md describes it. */
#include "api.h"
#include "api_agent_me.h"
#include "api_agents.h"
#include "api_audit.h"
#include "api_connect.h"
#include "api_debug.h"
#include "api_files.h"
#include "api_orgs.h"
#include "api_templates.h"
#include "api_users.h"
#include "api_workspaces.h"

#define PUBLIC ATR_AUTHZ_PUBLIC, ATR_RES_USER, ATR_ACT_READ, NULL, NULL, false
#define SIGNED_IN                                                              \
  ATR_AUTHZ_SIGNED_IN, ATR_RES_USER, ATR_ACT_READ, NULL, NULL, false
#define RBAC(res, act)                                                         \
  ATR_AUTHZ_RBAC, ATR_RES_##res, ATR_ACT_##act, NULL, NULL, false
#define RBAC_SELF(res, act)                                                    \
  ATR_AUTHZ_RBAC, ATR_RES_##res, ATR_ACT_##act, "user", NULL, false
#define RBAC_ORG(res, act)                                                     \
  ATR_AUTHZ_RBAC, ATR_RES_##res, ATR_ACT_##act, NULL, "organization", false
#define RBAC_ORG_SELF(res, act)                                                \
  ATR_AUTHZ_RBAC, ATR_RES_##res, ATR_ACT_##act, "user", "organization", false
/* A workspace agent's own routes: its token or its session, never a user. */
#define AGENT ATR_AUTHZ_AGENT, ATR_RES_USER, ATR_ACT_READ, NULL, NULL, false
/* Owners only, and also while the database is down (auth_when_db_down). */
#define OWNERS_EVEN_WITHOUT_DB                                                 \
  ATR_AUTHZ_RBAC, ATR_RES_DEPLOYMENT_CONFIG, ATR_ACT_READ, NULL, NULL, true

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
    /* template versions and templates */
    {"POST", "/api/v2/organizations/{organization}/templateversions",
     atr_api_template_version_create, RBAC_ORG(TEMPLATE, CREATE)},
    {"GET", "/api/v2/templateversions/{templateversion}",
     atr_api_template_version_get, SIGNED_IN},
    {"GET", "/api/v2/templateversions/{templateversion}/rich-parameters",
     atr_api_template_version_params, SIGNED_IN},
    {"GET", "/api/v2/templateversions/{templateversion}/logs",
     atr_api_template_version_logs, SIGNED_IN},
    {"PATCH", "/api/v2/templateversions/{templateversion}/cancel",
     atr_api_template_version_cancel, SIGNED_IN},
    {"POST", "/api/v2/organizations/{organization}/templates",
     atr_api_template_create, RBAC_ORG(TEMPLATE, CREATE)},
    {"GET", "/api/v2/organizations/{organization}/templates",
     atr_api_templates_list, RBAC_ORG(TEMPLATE, READ)},
    {"GET", "/api/v2/organizations/{organization}/templates/{templatename}",
     atr_api_template_by_name, RBAC_ORG(TEMPLATE, READ)},
    {"GET", "/api/v2/templates/{template}", atr_api_template_get, SIGNED_IN},
    {"PATCH", "/api/v2/templates/{template}", atr_api_template_update,
     SIGNED_IN},
    {"DELETE", "/api/v2/templates/{template}", atr_api_template_delete,
     SIGNED_IN},
    {"GET", "/api/v2/templates/{template}/versions",
     atr_api_template_versions_list, SIGNED_IN},
    {"PATCH", "/api/v2/templates/{template}/versions",
     atr_api_template_version_promote, SIGNED_IN},
    /* workspaces and builds */
    {"POST", "/api/v2/organizations/{organization}/members/{user}/workspaces",
     atr_api_workspace_create, RBAC_ORG_SELF(WORKSPACE, CREATE)},
    {"POST", "/api/v2/users/{user}/workspaces", atr_api_workspace_create,
     RBAC_SELF(WORKSPACE, CREATE)},
    {"GET", "/api/v2/users/{user}/workspace/{workspacename}",
     atr_api_workspace_by_name, RBAC_SELF(WORKSPACE, READ)},
    {"GET", "/api/v2/workspaces", atr_api_workspaces_list, SIGNED_IN},
    {"GET", "/api/v2/workspaces/{workspace}", atr_api_workspace_get, SIGNED_IN},
    {"POST", "/api/v2/workspaces/{workspace}/builds",
     atr_api_workspace_build_create, SIGNED_IN},
    {"GET", "/api/v2/workspaces/{workspace}/builds",
     atr_api_workspace_builds_list, SIGNED_IN},
    {"GET", "/api/v2/workspacebuilds/{workspacebuild}", atr_api_build_get,
     SIGNED_IN},
    {"GET", "/api/v2/workspacebuilds/{workspacebuild}/logs", atr_api_build_logs,
     SIGNED_IN},
    {"GET", "/api/v2/workspacebuilds/{workspacebuild}/parameters",
     atr_api_build_params, SIGNED_IN},
    {"GET", "/api/v2/workspacebuilds/{workspacebuild}/resources",
     atr_api_build_resources, SIGNED_IN},
    {"PATCH", "/api/v2/workspacebuilds/{workspacebuild}/cancel",
     atr_api_build_cancel, SIGNED_IN},
    {"PUT", "/api/v2/workspaces/{workspace}/autostart",
     atr_api_workspace_autostart, SIGNED_IN},
    {"PUT", "/api/v2/workspaces/{workspace}/ttl", atr_api_workspace_ttl,
     SIGNED_IN},
    {"GET", "/api/v2/workspacebuilds/{workspacebuild}/state",
     atr_api_build_state, SIGNED_IN},
    /* workspace agents: the agent's own routes (literal "me" first) */
    {"GET", "/api/v2/workspaceagents/me/rpc", atr_api_agent_rpc, AGENT},
    {"GET", "/api/v2/workspaceagents/me/manifest", atr_api_agent_manifest,
     AGENT},
    {"POST", "/api/v2/workspaceagents/me/startup", atr_api_agent_startup,
     AGENT},
    {"POST", "/api/v2/workspaceagents/me/report-lifecycle",
     atr_api_agent_lifecycle, AGENT},
    {"PATCH", "/api/v2/workspaceagents/me/logs", atr_api_agent_logs_patch,
     AGENT},
    {"GET", "/api/v2/workspaceagents/me/logs/state", atr_api_agent_logs_state,
     AGENT},
    {"POST", "/api/v2/workspaceagents/me/metadata", atr_api_agent_metadata_post,
     AGENT},
    {"POST", "/api/v2/workspaceagents/me/report-stats", atr_api_agent_stats,
     AGENT},
    {"POST", "/api/v2/workspaceagents/me/app-health", atr_api_agent_app_health,
     AGENT},
    {"POST", "/api/v2/workspaceagents/me/listening-ports",
     atr_api_agent_ports_post, AGENT},
    {"GET", "/api/v2/workspaceagents/me/events", atr_api_agent_events, AGENT},
    /* workspace agents: what users read (the domain checks the workspace) */
    {"GET", "/api/v2/workspaceagents/{workspaceagent}",
     atr_api_workspace_agent_get, SIGNED_IN},
    {"GET", "/api/v2/workspaceagents/{workspaceagent}/logs",
     atr_api_workspace_agent_logs, SIGNED_IN},
    {"GET", "/api/v2/workspaceagents/{workspaceagent}/listening-ports",
     atr_api_workspace_agent_ports, SIGNED_IN},
    {"GET", "/api/v2/workspaceagents/{workspaceagent}/metadata",
     atr_api_workspace_agent_metadata, SIGNED_IN},
    /* tunnels into the workspace (the domain lets in only the workspace's
     * owner and site owners, connect.h) */
    {"GET", "/api/v2/workspaceagents/{workspaceagent}/tunnel",
     atr_api_workspace_agent_tunnel, SIGNED_IN},
    {"GET", "/api/v2/workspaceagents/{workspaceagent}/pty",
     atr_api_workspace_agent_pty, SIGNED_IN},
    /* audit */
    {"GET", "/api/v2/audit", atr_api_audit_list, RBAC(AUDIT_LOG, READ)},
    /* debugging: health and the support bundle */
    {"GET", "/api/v2/debug/health", atr_api_debug_health,
     OWNERS_EVEN_WITHOUT_DB},
    {"GET", "/api/v2/debug/config", atr_api_debug_config,
     OWNERS_EVEN_WITHOUT_DB},
    {"GET", "/api/v2/debug/plugins", atr_api_debug_plugins,
     OWNERS_EVEN_WITHOUT_DB},
    {"GET", "/api/v2/debug/logs", atr_api_debug_logs, OWNERS_EVEN_WITHOUT_DB},
    {"GET", "/api/v2/debug/metrics", atr_api_debug_metrics,
     OWNERS_EVEN_WITHOUT_DB},
};

const size_t atr_api_nroutes = sizeof atr_api_routes / sizeof atr_api_routes[0];
