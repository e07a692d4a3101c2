/* core/domain/keys.h — a user's long-lived API tokens: making, listing and
 * deleting them (the key format and how a key signs in are session.h's).
 *
 * A token signs in as its user, so only that user may make one (not even
 * an owner may mint a token for someone else: its holder could then act
 * as them, with the audit log blaming them). Listing and deleting follow
 * the permission table (a member: their own). Each call checks the
 * permission itself, records create and delete in the audit log and
 * explains a refusal in *fault. `who` names the user: "me", an id or a
 * username.
 *
 * Threads: any; each call opens its own connection.
 */
#ifndef ATRIUM_CORE_KEYS_H
#define ATRIUM_CORE_KEYS_H

#include <jansson.h>
#include <stdint.h>

#include "actor.h"
#include "domain.h"
#include "fault.h"

/* No lifetime asked for: the longest a token may have. */
#define ATR_TOKEN_LIFETIME_DEFAULT INT64_MIN

/* A new token named name (1 to 32 letters, digits or single hyphens) that
 * lasts lifetime_s seconds (1 to the deployment's token_max_lifetime, or
 * ATR_TOKEN_LIFETIME_DEFAULT). *key gets "id-secret", shown once: wipe and
 * free it. A name the user already has is ATR_ECONSTRAINT. */
int atr_token_create(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *who, const char *name, int64_t lifetime_s,
                     char **key, atr_fault_t *fault);
/* The user's tokens as a new array of {"id", "user_id", "token_name",
 * "created_at", "expires_at", "last_used", "lifetime_seconds"}, oldest
 * first; never their secrets. */
int atr_token_list(const atr_domain_t *dom, const atr_actor_t *actor,
                   const char *who, json_t **out, atr_fault_t *fault);
/* Delete the user's token whose id or name is key (sign-in sessions are
 * not tokens: ATR_ENOENT). */
int atr_token_delete(const atr_domain_t *dom, const atr_actor_t *actor,
                     const char *who, const char *key, atr_fault_t *fault);

#endif
