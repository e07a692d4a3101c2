/* core/domain/actor.c — see actor.h. */
#include "actor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "session.h"

atr_actor_t atr_actor_system(const char *what) {
  atr_actor_t a = {.system = true, .roles = ATR_ROLE_OWNER};
  snprintf(a.username, sizeof a.username, "system:%s", what ? what : "server");
  return a;
}

bool atr_actor_is_user(const atr_actor_t *actor) {
  return actor && !actor->system && actor->user_id[0] != '\0';
}

int atr_actor_roles(atr_db_t *db, const atr_actor_t *actor, const char *org_id,
                    uint32_t *roles, char **err) {
  *roles = actor ? actor->roles : 0;
  if (!atr_actor_is_user(actor) || !org_id || !*org_id)
    return 0;
  char resolved[37];
  uint32_t org_roles = 0;
  int rc = atr_org_roles(db, org_id, actor->user_id, resolved, &org_roles, err);
  if (rc == ATR_ENOENT) /* no such organization: no roles in it */
    return 0;
  if (rc == 0)
    *roles |= org_roles;
  return rc;
}

int atr_actor_org_roles(atr_store_t *store, const atr_actor_t *actor,
                        const char *org, char org_id[37], uint32_t *roles,
                        char **err) {
  *roles = 0;
  org_id[0] = '\0';
  atr_db_t db = {0};
  int rc = atr_db_open(store, &db, err);
  if (rc == 0)
    rc = atr_org_roles(&db, org, actor->user_id, org_id, roles, err);
  atr_db_close(&db);
  return rc;
}

int atr_actor_allowed(atr_db_t *db, const atr_actor_t *actor,
                      const char *org_id, atr_resource_t res, atr_action_t act,
                      bool self, char **err) {
  if (actor && actor->system)
    return 0;
  uint32_t roles = 0;
  int rc = atr_actor_roles(db, actor, org_id, &roles, err);
  if (rc != 0)
    return rc;
  if (atr_rbac_allowed(roles, res, act, self))
    return 0;
  if (err && asprintf(err, "Your roles do not allow %s on %s.",
                      atr_action_name(act), atr_resource_name(res)) < 0)
    *err = NULL;
  return ATR_EPERM;
}
