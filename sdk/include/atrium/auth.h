/* atrium/auth.h — the auth kind.
 *
 * An auth plugin turns credentials into a verdict the core trusts. One or
 * more may be enabled; each names its method ("password", "ldap", "oidc").
 *
 * Methods whose secret the core stores (password) implement hash_secret,
 * verify_secret and check_secret_policy: the core keeps the plugin's
 * self-describing hash string in users.hashed_password and never sees or
 * stores the secret itself. Methods that ask another system (LDAP) implement
 * authenticate() instead. Unused entries are NULL.
 *
 * Rules: never log a secret or a hash; a wrong secret and an unknown user
 * must be indistinguishable to the caller (the core makes sure of that by
 * verifying against a dummy hash when the user does not exist, so
 * verify_secret must take the same time for any wrong secret).
 *
 * Threads: every function may be called from any HTTP worker thread,
 * concurrently. Memory: outputs (hashes, reasons, identity fields) are
 * allocated with the host's allocator (atr_mem_strdup and friends in
 * host.h); *err messages are malloc'd. The host releases both.
 */
#ifndef ATRIUM_AUTH_H
#define ATRIUM_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "atrium/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Who an authenticate() call proved the caller to be. The host zeroes it
 * and sets struct_size (its sizeof) before the call; the plugin fills only
 * the fields that fit in that size. */
typedef struct atr_auth_identity {
  uint32_t struct_size;
  char *subject;  /* stable id at the source (LDAP DN, OIDC sub) */
  char *username; /* suggested username */
  char *email;
  char *name;
  char **groups; /* NULL-terminated, may be NULL */
} atr_auth_identity_t;

typedef struct atr_auth_ops {
  uint32_t struct_size;
  const char *method; /* "password", "ldap", ... */

  /* A new hash for `secret` (e.g. "$argon2id$v=19$m=65536,t=3,p=1$..."). */
  int (*hash_secret)(void *ctx, const char *secret, size_t secret_len,
                     char **out_hash, char **err);
  /* 0 when secret matches hash, ATR_EPERM when it does not, ATR_EINVAL for
   * a hash this plugin cannot read. *needs_rehash (may be NULL) is set when
   * the hash was made with weaker parameters than the current options. */
  int (*verify_secret)(void *ctx, const char *secret, size_t secret_len,
                       const char *hash, int *needs_rehash, char **err);
  /* ATR_EINVAL with *why (one sentence for the user: what is wrong and
   * what is required) when secret is not acceptable for this user. */
  int (*check_secret_policy)(void *ctx, const char *secret, size_t secret_len,
                             const char *username, const char *email,
                             char **why);

  /* Methods that ask another system: 0 and *out filled, ATR_EPERM for
   * wrong credentials, ATR_EUNAVAIL when the other system is down. */
  int (*authenticate)(void *ctx, const char *username, const char *secret,
                      size_t secret_len, atr_auth_identity_t *out, char **err);
} atr_auth_ops_t;

#define ATR_AUTH_OPS_MIN_SIZE                                                  \
  (offsetof(atr_auth_ops_t, authenticate) + sizeof(void (*)(void)))

#ifdef __cplusplus
}
#endif

#endif /* ATRIUM_AUTH_H */
