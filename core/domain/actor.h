/* core/domain/actor.h — who acts: a user signed in through some key, or
 * the system itself (the scheduler, the reaper), and where the action came
 * from, for the audit log.
 *
 * An actor is a plain value. Its roles are the site roles (rbac.h); the
 * roles it holds in an organization are looked up per call by
 * atr_actor_allowed(), so a domain function checks the organization of the
 * object it touches, whatever route or caller brought it there.
 *
 * Threads: pure values; atr_actor_allowed() uses the connection it is
 * given.
 */
#ifndef ATRIUM_CORE_ACTOR_H
#define ATRIUM_CORE_ACTOR_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "rbac.h"

typedef struct atr_actor {
  char user_id[37];  /* "" for an anonymous caller or the system */
  char username[65]; /* the system's actors: "system:<what>" */
  uint32_t roles;    /* site roles (rbac.h) */
  char key_id[17];   /* the API key that authenticated the caller, or "" */
  bool system;       /* the server itself; every permission is granted */
  /* Where the action came from, for the audit log (borrowed; may be
   * NULL): the caller's address, user agent and request id, and the
   * organization the caller named, which an entry that names none is
   * recorded under. */
  const char *ip;
  const char *user_agent;
  const char *request_id;
  const char *org_id;
  /* A workspace agent authenticated by its token (agents.h): no roles, so
   * every user-facing domain function refuses it; the agent functions
   * accept it for this agent only. */
  bool agent;
  char agent_id[37];
  char workspace_id[37];
  char build_id[37];
} atr_actor_t;

/* The server acting on its own (what: "scheduler", "reaper", ...). */
atr_actor_t atr_actor_system(const char *what);

/* Whether an actor is a signed-in user (not anonymous, not the system). */
bool atr_actor_is_user(const atr_actor_t *actor);

/* The actor's roles for something in org_id (NULL or "": site roles
 * only): site roles plus the roles the actor holds in that organization. */
int atr_actor_roles(atr_db_t *db, const atr_actor_t *actor, const char *org_id,
                    uint32_t *roles, char **err);

/* The organization named org (an id or a name, case-insensitive) into
 * org_id, and the roles the actor holds in it (0 for a non-member), on a
 * connection of its own. ATR_ENOENT when there is no such organization. */
int atr_actor_org_roles(atr_store_t *store, const atr_actor_t *actor,
                        const char *org, char org_id[37], uint32_t *roles,
                        char **err);

/* May the actor do act on res in org_id (NULL or "" for none)? self: the
 * target is the actor's own. 0 when allowed; ATR_EPERM with *err naming
 * what was refused when not; another ATR_E… when the roles could not be
 * read. */
int atr_actor_allowed(atr_db_t *db, const atr_actor_t *actor,
                      const char *org_id, atr_resource_t res, atr_action_t act,
                      bool self, char **err);

#endif
