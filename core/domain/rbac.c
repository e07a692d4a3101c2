/* core/rbac.c — the permission table. Read it as: for each role, the
 * actions it may take on each resource, on anyone's ("all") or only on
 * its own ("self"). */
#include "rbac.h"

#include <string.h>

#define C (1u << ATR_ACT_CREATE)
#define R (1u << ATR_ACT_READ)
#define U (1u << ATR_ACT_UPDATE)
#define D (1u << ATR_ACT_DELETE)
#define CRUD (C | R | U | D)

typedef struct grant {
  uint32_t role;
  atr_resource_t res;
  unsigned all;  /* actions on anyone's */
  unsigned self; /* actions on the actor's own */
} grant_t;

static const grant_t grants[] = {
    /* the owner may do everything */
    {ATR_ROLE_OWNER, ATR_RES_USER, CRUD, 0},
    {ATR_ROLE_OWNER, ATR_RES_USER_SECRET, CRUD, 0},
    {ATR_ROLE_OWNER, ATR_RES_ROLE_ASSIGNMENT, CRUD, 0},
    {ATR_ROLE_OWNER, ATR_RES_API_KEY, CRUD, 0},
    {ATR_ROLE_OWNER, ATR_RES_ORGANIZATION, CRUD, 0},
    {ATR_ROLE_OWNER, ATR_RES_ORGANIZATION_MEMBER, CRUD, 0},
    {ATR_ROLE_OWNER, ATR_RES_AUDIT_LOG, R, 0},
    {ATR_ROLE_OWNER, ATR_RES_TEMPLATE, CRUD, 0},
    {ATR_ROLE_OWNER, ATR_RES_WORKSPACE, CRUD, 0},
    {ATR_ROLE_OWNER, ATR_RES_DEPLOYMENT_CONFIG, R | U, 0},
    {ATR_ROLE_OWNER, ATR_RES_FILE, C | R, 0},
    /* user admins manage people, not their secrets */
    {ATR_ROLE_USER_ADMIN, ATR_RES_USER, CRUD, 0},
    {ATR_ROLE_USER_ADMIN, ATR_RES_ROLE_ASSIGNMENT, R | U, 0},
    {ATR_ROLE_USER_ADMIN, ATR_RES_ORGANIZATION, R, 0},
    /* ...and not organization roles: organization-admin controls an
     * organization's templates, which is more than managing people */
    {ATR_ROLE_USER_ADMIN, ATR_RES_ORGANIZATION_MEMBER, C | R | D, 0},
    /* template admins manage templates and may look at workspaces */
    {ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_TEMPLATE, CRUD, 0},
    {ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_FILE, C | R, 0},
    {ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_WORKSPACE, R, 0},
    {ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_USER, R, 0},
    {ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_ORGANIZATION, R, 0},
    {ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_ORGANIZATION_MEMBER, R, 0},
    {ATR_ROLE_TEMPLATE_ADMIN, ATR_RES_ROLE_ASSIGNMENT, R, 0},
    /* auditors read the audit log and who is who */
    {ATR_ROLE_AUDITOR, ATR_RES_AUDIT_LOG, R, 0},
    {ATR_ROLE_AUDITOR, ATR_RES_USER, R, 0},
    {ATR_ROLE_AUDITOR, ATR_RES_ORGANIZATION, R, 0},
    {ATR_ROLE_AUDITOR, ATR_RES_ORGANIZATION_MEMBER, R, 0},
    {ATR_ROLE_AUDITOR, ATR_RES_ROLE_ASSIGNMENT, R, 0},
    /* every member: themselves, their keys, their workspaces */
    {ATR_ROLE_MEMBER, ATR_RES_USER, 0, R | U},
    {ATR_ROLE_MEMBER, ATR_RES_USER_SECRET, 0, U},
    {ATR_ROLE_MEMBER, ATR_RES_ROLE_ASSIGNMENT, 0, R},
    {ATR_ROLE_MEMBER, ATR_RES_API_KEY, 0, CRUD},
    {ATR_ROLE_MEMBER, ATR_RES_WORKSPACE, 0, CRUD},
    /* organization roles */
    {ATR_ROLE_ORG_ADMIN, ATR_RES_ORGANIZATION, R | U, 0},
    {ATR_ROLE_ORG_ADMIN, ATR_RES_ORGANIZATION_MEMBER, CRUD, 0},
    {ATR_ROLE_ORG_ADMIN, ATR_RES_TEMPLATE, CRUD, 0},
    {ATR_ROLE_ORG_ADMIN, ATR_RES_WORKSPACE, R, 0},
    /* an organization's templates are for its members only */
    {ATR_ROLE_ORG_MEMBER, ATR_RES_TEMPLATE, R, 0},
    {ATR_ROLE_ORG_MEMBER, ATR_RES_ORGANIZATION, R, 0},
    {ATR_ROLE_ORG_MEMBER, ATR_RES_ORGANIZATION_MEMBER, R, 0},
};

static const struct {
  const char *name;
  uint32_t role;
  bool org;
  bool assignable;
} roles[] = {
    {"owner", ATR_ROLE_OWNER, false, true},
    {"user-admin", ATR_ROLE_USER_ADMIN, false, true},
    {"template-admin", ATR_ROLE_TEMPLATE_ADMIN, false, true},
    {"auditor", ATR_ROLE_AUDITOR, false, true},
    {"member", ATR_ROLE_MEMBER, false, false},
    {"organization-admin", ATR_ROLE_ORG_ADMIN, true, true},
    {"organization-member", ATR_ROLE_ORG_MEMBER, true, false},
};

const char *atr_role_name(uint32_t role) {
  for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
    if (roles[i].role == role)
      return roles[i].name;
  return NULL;
}

uint32_t atr_role_parse(const char *name, bool org) {
  for (size_t i = 0; name && i < sizeof roles / sizeof roles[0]; i++)
    if (roles[i].org == org && strcmp(roles[i].name, name) == 0)
      return roles[i].role;
  return 0;
}

bool atr_role_assignable(uint32_t role, bool org) {
  for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
    if (roles[i].role == role)
      return roles[i].org == org && roles[i].assignable;
  return false;
}

const char *atr_resource_name(atr_resource_t res) {
  static const char *const names[] = {
#define ATR__RES_NAME(name, text) text,
      ATR_RESOURCE_MAP(ATR__RES_NAME)
#undef ATR__RES_NAME
  };
  return (unsigned)res < ATR_RES_COUNT ? names[res] : "unknown";
}

const char *atr_action_name(atr_action_t act) {
  static const char *const names[] = {"create", "read", "update", "delete"};
  return (unsigned)act < ATR_ACT_COUNT ? names[act] : "unknown";
}

bool atr_rbac_allowed(uint32_t actor_roles, atr_resource_t res,
                      atr_action_t act, bool self) {
  unsigned bit = 1u << act;
  for (size_t i = 0; i < sizeof grants / sizeof grants[0]; i++) {
    const grant_t *g = &grants[i];
    if (!(actor_roles & g->role) || g->res != res)
      continue;
    if ((g->all & bit) || (self && (g->self & bit)))
      return true;
  }
  return false;
}
