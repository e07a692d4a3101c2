/* core/domain/orgs.h — organizations and their members: listing, creating
 * and reading organizations, adding and removing members, and setting a
 * member's organization roles. JSON shapes follow Coder's codersdk
 * (Organization, OrganizationMemberWithUserData, SlimRole).
 *
 * `org` names an organization by id or name (case-insensitive); `who` a
 * user: "me", an id or a username. Each call checks the actor's
 * permission in that organization (site roles plus their roles there),
 * records what it changed in the audit log and explains a refusal in
 * *fault. Changes that could leave an organization without an
 * organization-admin run in a serializable transaction, so two concurrent
 * removals cannot both pass the "not the last admin" check.
 *
 * Threads: any; each call opens its own connection.
 */
#ifndef ATRIUM_CORE_ORGS_H
#define ATRIUM_CORE_ORGS_H

#include <jansson.h>
#include <stdint.h>

#include "actor.h"
#include "domain.h"
#include "fault.h"

/* What is wrong with an organization name (NULL when nothing): 1 to 32
 * lower-case letters, digits or single hyphens, not "new" or "create". */
const char *atr_org_name_problem(const char *name);
/* What is wrong with a display name (NULL when nothing): at most 64
 * characters, no white space at either end; "" means the name. */
const char *atr_org_display_name_problem(const char *display_name);

typedef struct atr_org_new {
  const char *name;
  const char *display_name; /* NULL or "": the name */
  const char *description;  /* NULL: "" */
  const char *icon;         /* NULL: "" */
} atr_org_new_t;

/* A page of the organizations the actor may see, by name, as a new
 * array: all of them for site roles that may read any organization, else
 * those the actor is a member of. */
int atr_org_list(const atr_domain_t *dom, const atr_actor_t *actor,
                 int64_t limit, int64_t offset, json_t **out,
                 atr_fault_t *fault);
/* A new organization; its creator becomes its organization-admin. */
int atr_org_create(const atr_domain_t *dom, const atr_actor_t *actor,
                   const atr_org_new_t *in, json_t **out, atr_fault_t *fault);
int atr_org_get(const atr_domain_t *dom, const atr_actor_t *actor,
                const char *org, json_t **out, atr_fault_t *fault);

/* A page of the members, by username, as a new array. */
int atr_org_members_list(const atr_domain_t *dom, const atr_actor_t *actor,
                         const char *org, int64_t limit, int64_t offset,
                         json_t **out, atr_fault_t *fault);
/* Add a member; *out is the new member. */
int atr_org_member_add(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *org, const char *who, json_t **out,
                       atr_fault_t *fault);
/* Remove a member (not the last organization-admin). */
int atr_org_member_remove(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *org, const char *who, atr_fault_t *fault);
/* Replace a member's organization roles with roles (assignable
 * organization roles only); *out is the member afterwards. */
int atr_org_member_roles_set(const atr_domain_t *dom, const atr_actor_t *actor,
                             const char *org, const char *who, uint32_t roles,
                             json_t **out, atr_fault_t *fault);

#endif
