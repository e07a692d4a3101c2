/* core/domain/session.h — API keys: sessions (from login) and long-lived tokens.
 *
 * A key is "<id>-<secret>": a 10-character id and a 22-character secret,
 * both base62 from OpenSSL's RAND_bytes. The database keeps the id and a
 * SHA-256 of the secret only; lookups compare the hash in constant time.
 * Sessions slide: each use pushes expires_at to now + lifetime (written at
 * most once a minute). Tokens have a fixed expiry. A suspended or deleted
 * user's keys stop working on the next request, because every request
 * reads the user's status.
 *
 * Threads: any; each call uses its own connection.
 */
#ifndef ATRIUM_CORE_SESSION_H
#define ATRIUM_CORE_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "actor.h"
#include "db.h"

#define ATR_KEY_ID_LEN 10
#define ATR_KEY_SECRET_LEN 22

/* Create a key for user_id; *out_key gets "id-secret" (malloc'd; show it
 * once, never log it). token_name "" makes a session. */
int atr_session_create(atr_store_t *store, const char *user_id,
                       const char *token_name, int64_t lifetime_ms,
                       const char *ip, char **out_key, char **err);
/* Resolve a presented key to its actor; ATR_EPERM for anything that does
 * not authenticate (unknown, wrong secret, expired, user not active),
 * with *err a reason fit for the log but not the client. */
int atr_session_authenticate(atr_store_t *store, const char *key,
                             atr_actor_t *actor, char **err);
/* Delete the key with this id (logout). */
int atr_session_delete(atr_store_t *store, const char *key_id, char **err);
/* The organization named `org` (an id or a name, case-insensitive):
 * its id into org_id, and the user's roles in it (organization-member
 * for members, plus organization-admin and others from
 * organization_member_roles; 0 for non-members). ATR_ENOENT when there is
 * no such organization. */
int atr_org_roles(atr_db_t *db, const char *org, const char *user_id,
                  char org_id[37], uint32_t *roles, char **err);
/* The site roles of a user (member included for active users). */
int atr_user_roles(atr_db_t *db, const char *user_id, uint32_t *roles,
                   char **err);

#endif
