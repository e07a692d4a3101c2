/* plugins/auth_password/hash.c — argon2id hashes in the standard encoding.
 *
 * A hash is the string libargon2 writes,
 *   $argon2id$v=19$m=65536,t=3,p=1$<salt, base64>$<hash, base64>
 * so it carries everything needed to verify it, whatever the options are
 * now. verify_secret reads m, t and p back to tell the core when a stored
 * hash is weaker than the current options (needs_rehash).
 *
 * Timing: argon2id_verify always runs the full hash at the stored hash's
 * parameters and compares in constant time, so every wrong password for a
 * given hash costs the same. The only early answers are for inputs that say
 * nothing about any user: a password longer than max_length allows, or a
 * stored hash this plugin cannot read.
 *
 * Threads: any, concurrently; libargon2 and RAND_bytes keep no shared state
 * we touch. Memory: libargon2 wipes its own work memory and raw output; the
 * encoded string is malloc'd for the caller.
 */
#include "internal.h"

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define AP_PREFIX "$argon2id$"

typedef struct ap_params {
  uint32_t v, m, t, p;
} ap_params_t;

static int argon2_fail(char **err, int arc, const char *what) {
  int code = arc == ARGON2_MEMORY_ALLOCATION_ERROR ? ATR_ENOMEM : ATR_EPLUGIN;
  return ap_failf(err, code, "auth_password: %s: %s", what,
                  argon2_error_message(arc));
}

static int draw_salt(uint8_t *salt, size_t len, char **err) {
  if (RAND_bytes(salt, (int)len) == 1)
    return 0;
  char why[256];
  ERR_error_string_n(ERR_get_error(), why, sizeof why);
  return ap_failf(err, ATR_EIO,
                  "auth_password: cannot draw a random salt: OpenSSL "
                  "RAND_bytes failed (%s)",
                  why);
}

int ap_hash_secret(void *ctx, const char *secret, size_t secret_len,
                   char **out_hash, char **err) {
  const ap_ctx_t *c = ctx;
  if (out_hash == NULL || (secret == NULL && secret_len > 0))
    return ap_failf(err, ATR_EINVAL,
                    "auth_password: hash_secret needs a "
                    "password and somewhere to put the hash");
  *out_hash = NULL;
  if (secret_len > c->max_secret_bytes)
    return ap_failf(err, ATR_EINVAL,
                    "auth_password: the password is longer than %zu bytes "
                    "(max_length is %lld characters); check it with "
                    "check_secret_policy first",
                    c->max_secret_bytes, (long long)c->max_length);
  uint8_t salt[AP_SALT_MAX];
  size_t salt_len = (size_t)c->salt_length;
  int rc = draw_salt(salt, salt_len, err);
  if (rc != 0)
    return rc;
  size_t len = argon2_encodedlen(c->t, c->m_kib, c->p, (uint32_t)salt_len,
                                 (uint32_t)c->hash_length, Argon2_id);
  char *encoded = (char *)atr_mem_alloc(c->host, len); /* host releases */
  if (encoded == NULL)
    return ap_failf(err, ATR_ENOMEM, "auth_password: out of memory");
  int arc =
      argon2id_hash_encoded(c->t, c->m_kib, c->p, secret, secret_len, salt,
                            salt_len, (size_t)c->hash_length, encoded, len);
  OPENSSL_cleanse(salt, sizeof salt);
  if (arc != ARGON2_OK) {
    OPENSSL_cleanse(encoded, len);
    atr_mem_free(c->host, encoded);
    return argon2_fail(err, arc, "cannot hash the password");
  }
  *out_hash = encoded;
  return 0;
}

/* "<key><decimal>" at *s into *out, moving *s past it. */
static bool read_field(const char **s, const char *key, uint32_t *out) {
  size_t klen = strlen(key);
  if (strncmp(*s, key, klen) != 0)
    return false;
  const char *d = *s + klen;
  uint64_t v = 0;
  size_t n = 0;
  for (; d[n] >= '0' && d[n] <= '9'; n++) {
    v = v * 10 + (uint64_t)(d[n] - '0');
    if (v > UINT32_MAX)
      return false;
  }
  if (n == 0)
    return false;
  *out = (uint32_t)v;
  *s = d + n;
  return true;
}

/* The parameters after the prefix: "[v=19$]m=..,t=..,p=..$". A hash without
 * v= is argon2 1.0, as libargon2 reads it too. */
static bool parse_params(const char *hash, ap_params_t *out) {
  const char *s = hash + strlen(AP_PREFIX);
  out->v = ARGON2_VERSION_10;
  if (strncmp(s, "v=", 2) == 0) {
    if (!read_field(&s, "v=", &out->v) || *s != '$')
      return false;
    s++;
  }
  return read_field(&s, "m=", &out->m) && read_field(&s, ",t=", &out->t) &&
         read_field(&s, ",p=", &out->p) && *s == '$';
}

/* Refuse before hashing what no configuration of this plugin could have
 * made: a hash asking for terabytes would take the server down. */
static bool within_limits(const ap_params_t *p) {
  return p->t >= 1 && p->t <= AP_TIME_MAX && p->p >= 1 &&
         p->p <= AP_PARALLELISM_MAX && p->m <= AP_MEMORY_MAX / 1024;
}

static bool weaker(const ap_ctx_t *c, const ap_params_t *p) {
  return p->v < ARGON2_VERSION_13 || p->m < c->m_kib || p->t < c->t ||
         p->p < c->p;
}

/* Whatever argon2id_verify says about a hash other than "no match". */
static int verify_fail(char **err, int arc) {
  if (arc == ARGON2_MEMORY_ALLOCATION_ERROR || arc == ARGON2_THREAD_FAIL)
    return argon2_fail(err, arc, "cannot verify the password");
  return ap_failf(err, ATR_EINVAL,
                  "auth_password: the stored argon2id hash cannot be read "
                  "(%s); set a new password for this user",
                  argon2_error_message(arc));
}

int ap_verify_secret(void *ctx, const char *secret, size_t secret_len,
                     const char *hash, int *needs_rehash, char **err) {
  const ap_ctx_t *c = ctx;
  if (needs_rehash != NULL)
    *needs_rehash = 0;
  /* Never echo the hash: it is as good as the password to an attacker
   * with time on their hands. */
  if (hash == NULL || strncmp(hash, AP_PREFIX, strlen(AP_PREFIX)) != 0)
    return ap_failf(err, ATR_EINVAL,
                    "auth_password: the stored hash is not an argon2id hash; "
                    "set a new password for this user");
  ap_params_t p;
  if (!parse_params(hash, &p))
    return ap_failf(err, ATR_EINVAL,
                    "auth_password: the stored argon2id hash is malformed "
                    "(its parameters cannot be read); set a new password for "
                    "this user");
  if (!within_limits(&p))
    return ap_failf(err, ATR_EINVAL,
                    "auth_password: the stored argon2id hash asks for m=%u "
                    "KiB, t=%u, p=%u, beyond this plugin's limits (4GiB, %d, "
                    "%d); set a new password for this user",
                    p.m, p.t, p.p, AP_TIME_MAX, AP_PARALLELISM_MAX);
  if (secret == NULL && secret_len > 0)
    return ap_failf(err, ATR_EINVAL, "auth_password: no password to verify");
  /* Longer than hash_secret accepts: it cannot be anyone's password. */
  if (secret_len > c->max_secret_bytes)
    return ATR_EPERM;
  int arc = argon2id_verify(hash, secret, secret_len);
  if (arc == ARGON2_VERIFY_MISMATCH)
    return ATR_EPERM;
  if (arc != ARGON2_OK)
    return verify_fail(err, arc);
  if (needs_rehash != NULL)
    *needs_rehash = weaker(c, &p);
  return 0;
}
