/* auth_password — atrium's password method: argon2id hashes and a policy.
 *
 * The core keeps the hash this plugin makes in users.hashed_password and
 * never stores the password. Logging in is verify_secret against that hash;
 * setting a password is check_secret_policy, then hash_secret. See
 * README.md for the options, the cost of a hash and when to rehash.
 *
 * This file holds the option table, the descriptor, init() and fini().
 *
 * Threads: init() and fini() run on the main thread; the ops on HTTP worker
 * threads, several at once (internal.h). Memory: nothing is hung off the
 * context, so fini() has nothing to free.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* A hash that takes longer than this at start-up gets a warning: every
 * login waits for one. */
#define AP_SLOW_HASH_MS 1000

static const atr_option_t password_options[] = {
    {.type = ATR_OPT_SIZE,
     .name = "memory_cost",
     .default_value = "64MiB",
     .offset = offsetof(ap_ctx_t, memory_cost),
     .description = "Memory one argon2id hash uses (m); every login in "
                    "progress holds this much.",
     .min = AP_MEMORY_MIN,
     .max = AP_MEMORY_MAX},
    {.type = ATR_OPT_INT,
     .name = "time_cost",
     .default_value = "3",
     .offset = offsetof(ap_ctx_t, time_cost),
     .description = "Passes argon2id makes over its memory (t).",
     .min = 1,
     .max = AP_TIME_MAX},
    {.type = ATR_OPT_INT,
     .name = "parallelism",
     .default_value = "1",
     .offset = offsetof(ap_ctx_t, parallelism),
     .description = "Lanes (and threads) of one argon2id hash (p).",
     .min = 1,
     .max = AP_PARALLELISM_MAX},
    {.type = ATR_OPT_INT,
     .name = "salt_length",
     .default_value = "16",
     .offset = offsetof(ap_ctx_t, salt_length),
     .description = "Bytes of random salt in each new hash.",
     .min = 16,
     .max = AP_SALT_MAX},
    {.type = ATR_OPT_INT,
     .name = "hash_length",
     .default_value = "32",
     .offset = offsetof(ap_ctx_t, hash_length),
     .description = "Bytes of argon2id output in each new hash.",
     .min = 16,
     .max = 64},
    {.type = ATR_OPT_INT,
     .name = "min_length",
     .default_value = "8",
     .offset = offsetof(ap_ctx_t, min_length),
     .description = "Fewest characters (UTF-8 code points) a new password "
                    "may have.",
     .min = 6,
     .max = 128},
    {.type = ATR_OPT_INT,
     .name = "max_length",
     .default_value = "256",
     .offset = offsetof(ap_ctx_t, max_length),
     .description = "Most characters a new password may have; caps the work "
                    "one login can ask for.",
     .min = 16,
     .max = 4096},
    {.type = ATR_OPT_BOOL,
     .name = "reject_username",
     .default_value = "true",
     .offset = offsetof(ap_ctx_t, reject_username),
     .description = "Refuse a password that contains the username or the "
                    "email's local part (case-insensitive, when 3 "
                    "characters or longer)."},
    {.type = ATR_OPT_BOOL,
     .name = "reject_common",
     .default_value = "true",
     .offset = offsetof(ap_ctx_t, reject_common),
     .description = "Refuse the most common passwords (a built-in list, "
                    "case-insensitive)."},
    {.type = ATR_OPT_INT,
     .name = "require_classes",
     .default_value = "0",
     .offset = offsetof(ap_ctx_t, require_classes),
     .description = "Fewest character classes a new password must use, of "
                    "lower-case, upper-case, digits and symbols.",
     .min = 0,
     .max = 4},
    {0},
};

int ap_failf(char **err, int code, const char *fmt, ...) {
  if (err == NULL)
    return code;
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  *err = msg; /* the caller's *err is never read: it may be uninitialised */
  return code;
}

/* One hash of a fixed, non-secret input: proves the memory can be had and
 * tells the operator what each login costs. */
static int time_one_hash(ap_ctx_t *c, uint64_t *ms, char **err) {
  static const char probe[] = "auth_password start-up probe";
  uint64_t t0 = c->host->clock_monotonic_ns();
  char *hash = NULL;
  int rc = ap_hash_secret(c, probe, sizeof probe - 1, &hash, err);
  *ms = (c->host->clock_monotonic_ns() - t0) / 1000000u;
  atr_mem_free(c->host, hash);
  return rc;
}

static int password_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                         char **err) {
  ap_ctx_t *c = ctx;
  c->h = h;
  c->host = host;
  if (c->min_length > c->max_length)
    return ap_failf(err, ATR_ECONFIG,
                    "plugins.auth_password: min_length %lld is greater than "
                    "max_length %lld; lower min_length or raise max_length",
                    (long long)c->min_length, (long long)c->max_length);
  /* The table's bounds keep every value within uint32_t. */
  c->m_kib = (uint32_t)(c->memory_cost / 1024);
  c->t = (uint32_t)c->time_cost;
  c->p = (uint32_t)c->parallelism;
  c->max_secret_bytes = (size_t)c->max_length * AP_UTF8_MAX_BYTES;
  uint64_t ms = 0;
  int rc = time_one_hash(c, &ms, err);
  if (rc != 0)
    return rc;
  host->log(h, ATR_LOG_INFO,
            "argon2id v=19, m=%" PRIu32 " KiB, t=%" PRIu32 ", p=%" PRIu32
            ", salt %" PRId64 " B, hash %" PRId64 " B; one hash takes %" PRIu64
            " ms here",
            c->m_kib, c->t, c->p, c->salt_length, c->hash_length, ms);
  host->log(h, ATR_LOG_INFO,
            "policy: %" PRId64 " to %" PRId64 " characters, %" PRId64
            " character classes, reject username %s, reject common %s",
            c->min_length, c->max_length, c->require_classes,
            c->reject_username ? "yes" : "no", c->reject_common ? "yes" : "no");
  if (ms > AP_SLOW_HASH_MS)
    host->log(h, ATR_LOG_WARN,
              "one hash takes %" PRIu64 " ms, and every login waits for one; "
              "lower time_cost or memory_cost if that is too slow",
              ms);
  return 0;
}

static void password_fini(void *ctx) {
  (void)ctx;
}

static const atr_auth_ops_t password_ops = {
    .struct_size = sizeof(atr_auth_ops_t),
    .method = "password",
    .hash_secret = ap_hash_secret,
    .verify_secret = ap_verify_secret,
    .check_secret_policy = ap_check_secret_policy,
    .authenticate = NULL,
};

static const atr_plugin_t password_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_AUTH,
    .name = "auth_password",
    .version = "1.0.0",
    .description = "Passwords: argon2id hashes for users.hashed_password and "
                   "a password policy.",
    .options = password_options,
    .ctx_size = sizeof(ap_ctx_t),
    .init = password_init,
    .fini = password_fini,
    .ops = &password_ops,
};

ATR_PLUGIN_DEFINE(password_plugin)
