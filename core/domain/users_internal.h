/* core/domain/users_internal.h — what the people modules (users.c,
 * users_admin.c, login.c, keys.c, orgs.c, orgs_members.c, audit_query.c)
 * share and nobody else should call: finding a target user, the user as
 * JSON, the password plugin, and turning a refusal into the status code
 * the audit log keeps.
 *
 * Threads: pure helpers over the connection they are given.
 */
#ifndef ATRIUM_CORE_USERS_INTERNAL_H
#define ATRIUM_CORE_USERS_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "actor.h"
#include "atrium/auth.h"
#include "db.h"
#include "domain.h"
#include "fault.h"
#include "rbac.h"

/* A user a call acts on. */
typedef struct atr__user_ref {
  char id[37];
  char username[65];
  char status[16];
} atr__user_ref_t;

/* The user named by who ("me" for the actor, an id or a username; not
 * deleted). ATR_ENOENT when there is none. */
int atr__user_find(atr_db_t *db, const atr_actor_t *actor, const char *who,
                   atr__user_ref_t *t, char **err);
/* atr__user_find, refusing with "User not found." (404) naming who as
 * the actor's id stands for "me"; other errors as internal faults. */
int atr__user_target(atr_db_t *db, const atr_actor_t *actor, const char *who,
                     atr__user_ref_t *t, atr_fault_t *fault);
/* The user with this id as GET /users/{user} shows it, roles included. */
int atr__user_json(atr_db_t *db, const char *user_id, json_t **out, char **err);
/* Site roles as ["owner", ...] (member, implied, left out). */
json_t *atr__role_names(uint32_t roles);

/* atr_actor_allowed as a fault: 403 "Forbidden." with what was refused. */
int atr__allowed(atr_db_t *db, const atr_actor_t *actor, const char *org_id,
                 atr_resource_t res, atr_action_t act, bool self,
                 atr_fault_t *fault);

/* Open a connection, find the organization named org (id or name; 404
 * "Organization not found." naming it) into org_id and check act on res
 * there; on failure the connection is closed and the fault says why. */
int atr__org_open(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *org, atr_resource_t res, atr_action_t act,
                  atr_db_t *db, char org_id[37], atr_fault_t *fault);

/* The password auth plugin and its context, or NULL when it is not
 * running. */
const atr_auth_ops_t *atr__password_auth(const atr_domain_t *dom, void **ctx);
/* Validations of a new user's email, username and password (the plugin's
 * policy) as fields of the fault; true when there were none. */
bool atr__user_new_check(const atr_auth_ops_t *ops, void *ctx,
                         const char *email, const char *username,
                         const char *password, atr_fault_t *fault);
/* Usernames (and token names) as Coder allows them. */
bool atr__username_valid(const char *s);
/* Wipe and free a secret string. */
void atr__secret_free(char *s);

#endif
