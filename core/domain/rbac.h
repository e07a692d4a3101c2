/* core/rbac.h — who may do what: one permission table, consulted by every
 * API handler through its route's (resource, action).
 *
 * Site roles (users.user_roles): owner, user-admin, template-admin, auditor;
 * every active user is also a member. Organization roles
 * (organization_member_roles): organization-admin; every organization
 * member is also an organization-member. Roles are a bitmask.
 *
 * A permission is allowed when any of the actor's roles allows it. Members
 * act on their own things (their user, their API keys, their workspaces)
 * through the "self" column: allowed when the target belongs to the actor.
 *
 * Threads: pure functions over static tables; any thread.
 */
#ifndef ATRIUM_CORE_RBAC_H
#define ATRIUM_CORE_RBAC_H

#include <stdbool.h>
#include <stdint.h>

typedef enum atr_role {
  ATR_ROLE_OWNER = 1u << 0,
  ATR_ROLE_USER_ADMIN = 1u << 1,
  ATR_ROLE_TEMPLATE_ADMIN = 1u << 2,
  ATR_ROLE_AUDITOR = 1u << 3,
  ATR_ROLE_MEMBER = 1u << 4,
  ATR_ROLE_ORG_ADMIN = 1u << 5,
  ATR_ROLE_ORG_MEMBER = 1u << 6,
} atr_role_t;

#define ATR_RESOURCE_MAP(X)                                                    \
  X(USER, "user")                                                              \
  X(USER_SECRET, "user_secret")                                                \
  X(ROLE_ASSIGNMENT, "role_assignment")                                        \
  X(API_KEY, "api_key")                                                        \
  X(ORGANIZATION, "organization")                                              \
  X(ORGANIZATION_MEMBER, "organization_member")                                \
  X(AUDIT_LOG, "audit_log")                                                    \
  X(TEMPLATE, "template")                                                      \
  X(WORKSPACE, "workspace")                                                    \
  X(DEPLOYMENT_CONFIG, "deployment_config")                                    \
  X(FILE, "file")

typedef enum atr_resource {
#define ATR__RES_ENUM(name, text) ATR_RES_##name,
  ATR_RESOURCE_MAP(ATR__RES_ENUM)
#undef ATR__RES_ENUM
      ATR_RES_COUNT
} atr_resource_t;

typedef enum atr_action {
  ATR_ACT_CREATE = 0,
  ATR_ACT_READ = 1,
  ATR_ACT_UPDATE = 2,
  ATR_ACT_DELETE = 3,
  ATR_ACT_COUNT
} atr_action_t;

/* Role names as the API spells them ("owner", "user-admin", ...); NULL for
 * a bit that is not exactly one role. */
const char *atr_role_name(uint32_t role);
/* "owner" → ATR_ROLE_OWNER; 0 for an unknown name. Site roles only when
 * `org` is false, organization roles only when it is true. */
uint32_t atr_role_parse(const char *name, bool org);
/* Roles a caller may assign: site roles except member (implied). */
bool atr_role_assignable(uint32_t role, bool org);

const char *atr_resource_name(atr_resource_t res);
const char *atr_action_name(atr_action_t act);

/* May an actor with `roles` do `act` on `res`? `self`: the target is the
 * actor's own (their user record, their API key). */
bool atr_rbac_allowed(uint32_t roles, atr_resource_t res, atr_action_t act,
                      bool self);

#endif
