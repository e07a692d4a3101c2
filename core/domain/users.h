/* core/domain/users.h — users: the first user, signing in and out, reading
 * and managing users, their passwords and their site roles.
 *
 * Every function takes the deployment, the actor and plain values (see
 * domain.h). It checks the actor's permission itself with the one
 * permission table (a member may read and change only their own user),
 * applies the rules (no one suspends or deletes themselves, only an
 * owner acts on an owner or hands out owner and user-admin, the last
 * owner stays one), records the audit entry with the status code the API
 * answers, and explains a refusal in *fault. Passwords go to the password
 * auth plugin for hashing and checking; they are never stored, logged or
 * echoed. `who` names a user: "me" (the actor), an id or a username.
 *
 * Users are returned as the API shows them: {"id", "username", "email",
 * "name", "created_at", "updated_at", "last_seen_at", "status",
 * "login_type", "avatar_url", "roles": [{"name"}]}; *out is new.
 *
 * Threads: any; each call opens its own connection.
 */
#ifndef ATRIUM_CORE_USERS_H
#define ATRIUM_CORE_USERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "actor.h"
#include "domain.h"
#include "fault.h"

/* What a new user is made of; NULL strings are missing values. */
typedef struct atr_user_new {
  const char *email;
  const char *username;
  const char *name;     /* NULL: "" */
  const char *password; /* hashed by the password plugin, then wiped */
  /* atr_user_create: the organization to join (id or name; NULL: the
   * default one). atr_user_first_create: the name of the organization
   * made with the first user (NULL: "default"). */
  const char *organization;
} atr_user_new_t;

/* ---- signing in (login.c) ---------------------------------------------- */

/* Whether password sign-in is available (the auth_password plugin runs). */
bool atr_auth_password_enabled(const atr_domain_t *dom);
/* 0 when it is; ATR_ENOTSUP with the fault saying how to enable it. */
int atr_auth_password_require(const atr_domain_t *dom, atr_fault_t *fault);
/* Whether the first user exists. */
int atr_user_first_exists(const atr_domain_t *dom, const atr_actor_t *actor,
                          bool *exists, atr_fault_t *fault);
/* The first user, an owner, with its organization (organization-admin
 * there); anyone may call it until a user exists, then ATR_EEXIST. */
int atr_user_first_create(const atr_domain_t *dom, const atr_actor_t *actor,
                          const atr_user_new_t *in, char user_id[37],
                          char org_id[37], atr_fault_t *fault);
/* Sign in by email and password: *key gets a new session key (wipe and
 * free it). ATR_EACCES when the email, the password or the account's
 * status is wrong, without saying which (the API answers 401). Records
 * login or login_failed for the actor's origin. */
int atr_user_login(const atr_domain_t *dom, const atr_actor_t *actor,
                   const char *email, const char *password, char **key,
                   atr_fault_t *fault);
/* End the session the actor signed in with; records logout. */
int atr_user_logout(const atr_domain_t *dom, const atr_actor_t *actor,
                    atr_fault_t *fault);

/* ---- reading and managing users (users.c, users_admin.c) -------------- */

int atr_user_get(const atr_domain_t *dom, const atr_actor_t *actor,
                 const char *who, json_t **out, atr_fault_t *fault);
/* {"users": [...], "count": n}: users whose username or email contains
 * search (NULL: all), by username; count ignores limit and offset. */
int atr_user_list(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *search, int64_t limit, int64_t offset,
                  json_t **out, atr_fault_t *fault);
/* A new active user with a password, a member of in->organization. */
int atr_user_create(const atr_domain_t *dom, const atr_actor_t *actor,
                    const atr_user_new_t *in, json_t **out, atr_fault_t *fault);
/* Delete a user (and every key of theirs). */
int atr_user_delete(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *who, atr_fault_t *fault);
/* Suspend or activate a user; *out is the user afterwards. */
int atr_user_suspend(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *who, json_t **out, atr_fault_t *fault);
int atr_user_activate(const atr_domain_t *dom, const atr_actor_t *actor,
                      const char *who, json_t **out, atr_fault_t *fault);
/* Set a user's password. A user changing their own proves the old one;
 * their other sign-in sessions end (tokens stay). */
int atr_user_password_set(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *who, const char *old_password,
                          const char *password, atr_fault_t *fault);
/* {"roles": ["owner", ...]}: the user's site roles. */
int atr_user_roles_get(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *who, json_t **out, atr_fault_t *fault);
/* Replace the user's site roles with roles (assignable site roles only);
 * *out is the user afterwards. */
int atr_user_roles_set(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *who, uint32_t roles, json_t **out,
                       atr_fault_t *fault);

#endif
