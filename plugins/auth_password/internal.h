/* plugins/auth_password/internal.h — what the files of auth_password share.
 *
 * plugin.c holds the option table, the descriptor, init() and fini();
 * hash.c hashes and verifies with argon2id; policy.c decides whether a new
 * password is acceptable.
 *
 * Threads: the context is shared by every HTTP worker. Its option fields
 * are written by the host before init(), the derived fields by init(), and
 * everything is only read afterwards, so the ops need no lock.
 *
 * Secrets: a password is only ever read in place from the caller's buffer;
 * no function here copies it, logs it or puts it into a message.
 */
#ifndef AUTH_PASSWORD_INTERNAL_H
#define AUTH_PASSWORD_INTERNAL_H

#include <atrium/atrium.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds of the option table, shared with hash.c, which refuses stored
 * hashes asking for more work than any configuration could. */
#define AP_MEMORY_MIN (8.0 * 1024 * 1024)
#define AP_MEMORY_MAX (4.0 * 1024 * 1024 * 1024)
#define AP_TIME_MAX 20
#define AP_PARALLELISM_MAX 16
#define AP_SALT_MAX 64
/* A UTF-8 code point takes at most 4 bytes. */
#define AP_UTF8_MAX_BYTES 4

typedef struct ap_ctx {
  /* Options, filled by the host before init(). */
  uint64_t memory_cost; /* bytes */
  int64_t time_cost;
  int64_t parallelism;
  int64_t salt_length;
  int64_t hash_length;
  int64_t min_length;
  int64_t max_length;
  bool reject_username;
  bool reject_common;
  int64_t require_classes;

  /* Set by init(). */
  atr_handle_t *h;
  const atr_host_t *host;
  uint32_t m_kib; /* memory_cost in KiB, as argon2 takes it */
  uint32_t t;
  uint32_t p;
  size_t max_secret_bytes; /* max_length code points at 4 bytes each */
} ap_ctx_t;

/* *err = a malloc'd message (when err is not NULL); returns code. */
int ap_failf(char **err, int code, const char *fmt, ...) ATR_PRINTF(3, 4);

/* The ops (atrium/auth.h). */
int ap_hash_secret(void *ctx, const char *secret, size_t secret_len,
                   char **out_hash, char **err);
int ap_verify_secret(void *ctx, const char *secret, size_t secret_len,
                     const char *hash, int *needs_rehash, char **err);
int ap_check_secret_policy(void *ctx, const char *secret, size_t secret_len,
                           const char *username, const char *email, char **why);

#endif
