/* tests/plugins/test_auth_password.c — what auth_password promises the core.
 *
 * Each test loads the real auth_password.so from the build's plugin
 * directory through the core loader (open, configure from YAML, start),
 * calls the ops table directly and shuts the loader down. Costs are small
 * (8MiB, one pass) except in the one test that runs the defaults.
 * libargon2, linked here too, makes hashes with other parameters than the
 * plugin's, as an older configuration would have.
 *
 * The process log is captured for the whole run; the last test checks that
 * neither the canary password nor any hash ever reached it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* asprintf, open_memstream */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <argon2.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/auth.h"
#include "conf.h"
#include "loader.h"
#include "log.h"

/* Every test that needs a good password uses this one, so the log check at
 * the end covers them all. */
#define CANARY "Canary-7f3a9c-Pw!"
#define FAST "    memory_cost: 8MiB\n    time_cost: 1\n"
#define NOT_ARGON2ID                                                           \
  "auth_password: the stored hash is not an argon2id hash; set a new "         \
  "password for this user"

static FILE *log_stream;
static char *log_buf;
static size_t log_len;

/* ---- harness */

typedef struct fx {
  atr_loader_t loader;
  atr_conf_node_t *conf;
  atr_handle_t *h;
  const atr_auth_ops_t *ops;
  void *ctx;
} fx_t;

static const char *no_env(const char *name) {
  (void)name;
  return NULL;
}

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Open, configure and start auth_password with `options` (YAML lines under
 * its section, indented by four spaces). 0, or the failing step's code with
 * its message in *err. */
static int fx_try(fx_t *f, const char *options, char **err) {
  memset(f, 0, sizeof *f);
  const char *dirs[] = {ATR_TEST_PLUGIN_DIR};
  assert_int_equal(atr_loader_init(&f->loader, dirs, 1, err), 0);
  int rc = atr_loader_open(&f->loader, "auth_password", NULL, &f->h, err);
  if (rc != 0)
    fail_msg("open: %s", *err);
  char *text = NULL;
  assert_true(asprintf(&text,
                       "plugins:\n  auth_password:\n    enabled: true\n%s",
                       options ? options : "") >= 0);
  rc = atr_conf_parse("test.yaml", text, strlen(text), &f->conf, err);
  free(text);
  if (rc != 0)
    fail_msg("yaml: %s", *err);
  rc = atr_loader_configure(f->h, f->conf, NULL, no_env, err);
  if (rc == 0)
    rc = atr_loader_start(f->h, err);
  if (rc == 0) {
    f->ops = f->h->desc->ops;
    f->ctx = f->h->ctx;
  }
  return rc;
}

static void fx_start(fx_t *f, const char *options) {
  char *err = NULL;
  if (fx_try(f, options, &err) != 0)
    fail_msg("start: %s", err);
}

static void fx_stop(fx_t *f) {
  atr_loader_shutdown(&f->loader);
  atr_conf_free(f->conf);
}

static char *hash_ok(fx_t *f, const char *pw, size_t len) {
  char *hash = NULL, *err = NULL;
  int rc = f->ops->hash_secret(f->ctx, pw, len, &hash, &err);
  if (rc != 0)
    fail_msg("hash_secret: %s (%s)", err, atr_err_name(rc));
  assert_non_null(hash);
  return hash;
}

/* verify_secret's code; *rehash gets needs_rehash (set to 7 first, so a
 * value left alone shows). A failure must not set *err, a bad hash must. */
static int verify(fx_t *f, const char *pw, size_t len, const char *hash,
                  int *rehash) {
  char *err = NULL;
  *rehash = 7;
  int rc = f->ops->verify_secret(f->ctx, pw, len, hash, rehash, &err);
  if (rc == ATR_EINVAL)
    assert_non_null(err);
  else
    assert_null(err);
  free(err);
  return rc;
}

/* check_secret_policy's sentence for a password, or NULL when accepted. */
static char *policy(fx_t *f, const char *pw, const char *user,
                    const char *email) {
  char *why = NULL;
  int rc =
      f->ops->check_secret_policy(f->ctx, pw, strlen(pw), user, email, &why);
  if (rc == 0) {
    assert_null(why);
    return NULL;
  }
  assert_int_equal(rc, ATR_EINVAL);
  assert_non_null(why);
  /* Never echoes the password ("password" itself is a word of every
   * sentence, and "" is in every string). */
  if (*pw != '\0' && strcmp(pw, "password") != 0)
    assert_null(strstr(why, pw));
  return why;
}

static void assert_policy(fx_t *f, const char *pw, const char *user,
                          const char *email, const char *want) {
  char *why = policy(f, pw, user, email);
  if (want == NULL && why != NULL)
    fail_msg("\"%s\" refused: %s", pw, why);
  if (want != NULL && why == NULL)
    fail_msg("\"%s\" accepted; expected: %s", pw, want);
  if (want != NULL)
    assert_string_equal(why, want);
  free(why);
}

/* An encoded argon2 hash made outside the plugin. */
static char *craft(argon2_type type, uint32_t version, uint32_t t, uint32_t m,
                   uint32_t p, const char *pw) {
  static const uint8_t salt[16] = "0123456789abcdef";
  size_t len = argon2_encodedlen(t, m, p, sizeof salt, 32, type);
  char *enc = malloc(len);
  assert_non_null(enc);
  assert_int_equal(argon2_hash(t, m, p, pw, strlen(pw), salt, sizeof salt, NULL,
                               32, enc, len, type, version),
                   ARGON2_OK);
  return enc;
}

/* Length of the '$'-separated field `n` (0 is before the first '$'). */
static size_t field_len(const char *s, int n) {
  for (; n > 0; n--) {
    s = strchr(s, '$');
    assert_non_null(s);
    s++;
  }
  const char *end = strchr(s, '$');
  return end ? (size_t)(end - s) : strlen(s);
}

/* ---- hashing and verifying */

static void test_descriptor_is_the_password_method(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  assert_int_equal(f.h->desc->kind, ATR_KIND_AUTH);
  assert_string_equal(f.ops->method, "password");
  assert_int_equal(f.ops->struct_size, sizeof(atr_auth_ops_t));
  assert_non_null(f.ops->hash_secret);
  assert_non_null(f.ops->verify_secret);
  assert_non_null(f.ops->check_secret_policy);
  assert_null(f.ops->authenticate);
  fx_stop(&f);
}

static void test_a_hash_verifies_its_password(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  char *hash = hash_ok(&f, CANARY, strlen(CANARY));
  assert_true(strncmp(hash, "$argon2id$v=19$m=8192,t=1,p=1$", 30) == 0);
  int rehash;
  assert_int_equal(verify(&f, CANARY, strlen(CANARY), hash, &rehash), 0);
  assert_int_equal(rehash, 0);
  char *err = NULL;
  assert_int_equal(
      f.ops->verify_secret(f.ctx, CANARY, strlen(CANARY), hash, NULL, &err), 0);
  assert_null(err);
  free(hash);

  /* The length is the caller's: bytes after a NUL count. */
  hash = hash_ok(&f, "abc\0def", 7);
  assert_int_equal(verify(&f, "abc\0def", 7, hash, &rehash), 0);
  assert_int_equal(verify(&f, "abc", 3, hash, &rehash), ATR_EPERM);
  free(hash);
  fx_stop(&f);
}

static void test_a_wrong_password_is_eperm(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  char *hash = hash_ok(&f, CANARY, strlen(CANARY));
  const char *wrong[] = {"canary-7f3a9c-Pw!", "Canary-7f3a9c-Pw", CANARY "x",
                         "Canary-7f3a9c-Pw?", ""};
  for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
    int rehash;
    assert_int_equal(verify(&f, wrong[i], strlen(wrong[i]), hash, &rehash),
                     ATR_EPERM);
    assert_int_equal(rehash, 0);
  }
  /* One changed character of the stored hash is a mismatch too. */
  size_t n = strlen(hash);
  hash[n - 2] = hash[n - 2] == 'A' ? 'B' : 'A';
  int rehash;
  assert_int_equal(verify(&f, CANARY, strlen(CANARY), hash, &rehash),
                   ATR_EPERM);
  free(hash);
  fx_stop(&f);
}

static void test_two_hashes_of_one_password_differ(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  char *a = hash_ok(&f, CANARY, strlen(CANARY));
  char *b = hash_ok(&f, CANARY, strlen(CANARY));
  assert_string_not_equal(a, b);
  int rehash;
  assert_int_equal(verify(&f, CANARY, strlen(CANARY), a, &rehash), 0);
  assert_int_equal(verify(&f, CANARY, strlen(CANARY), b, &rehash), 0);
  free(a);
  free(b);
  fx_stop(&f);
}

static void test_the_hash_carries_the_configured_parameters(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, "    memory_cost: 12MiB\n    time_cost: 2\n"
               "    parallelism: 2\n    salt_length: 24\n"
               "    hash_length: 48\n");
  char *hash = hash_ok(&f, CANARY, strlen(CANARY));
  assert_true(strncmp(hash, "$argon2id$v=19$m=12288,t=2,p=2$", 31) == 0);
  /* Unpadded base64: 24 bytes are 32 characters, 48 bytes 64. */
  assert_int_equal(field_len(hash, 4), 32);
  assert_int_equal(field_len(hash, 5), 64);
  int rehash;
  assert_int_equal(verify(&f, CANARY, strlen(CANARY), hash, &rehash), 0);
  assert_int_equal(rehash, 0);
  free(hash);
  fx_stop(&f);
}

static void test_weaker_stored_hashes_need_a_rehash(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, "    memory_cost: 16MiB\n    time_cost: 2\n"
               "    parallelism: 2\n");
  struct {
    uint32_t version, t, m, p;
    int rehash;
  } cases[] = {
      {ARGON2_VERSION_13, 1, 16384, 2, 1}, /* fewer passes */
      {ARGON2_VERSION_13, 2, 8192, 2, 1},  /* less memory */
      {ARGON2_VERSION_13, 2, 16384, 1, 1}, /* fewer lanes */
      {ARGON2_VERSION_10, 2, 16384, 2, 1}, /* argon2 1.0 */
      {ARGON2_VERSION_13, 2, 16384, 2, 0}, /* what the options make */
      {ARGON2_VERSION_13, 3, 32768, 2, 0}, /* stronger than the options */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *hash = craft(Argon2_id, cases[i].version, cases[i].t, cases[i].m,
                       cases[i].p, CANARY);
    int rehash;
    assert_int_equal(verify(&f, CANARY, strlen(CANARY), hash, &rehash), 0);
    if (rehash != cases[i].rehash)
      fail_msg("case %zu (v=%u m=%u t=%u p=%u): needs_rehash %d", i,
               cases[i].version, cases[i].m, cases[i].t, cases[i].p, rehash);
    /* A wrong password says nothing about rehashing. */
    assert_int_equal(
        verify(&f, "not-" CANARY, strlen(CANARY) + 4, hash, &rehash),
        ATR_EPERM);
    assert_int_equal(rehash, 0);
    free(hash);
  }
  fx_stop(&f);
}

static void assert_bad_hash(fx_t *f, const char *hash, const char *want) {
  char *err = NULL;
  int rehash = 7;
  int rc = f->ops->verify_secret(f->ctx, CANARY, strlen(CANARY), hash, &rehash,
                                 &err);
  assert_int_equal(rc, ATR_EINVAL);
  assert_int_equal(rehash, 0);
  assert_non_null(err);
  if (strcmp(err, want) != 0)
    fail_msg("for %s:\n  got  %s\n  want %s", hash ? hash : "NULL", err, want);
  /* Neither the hash nor any of its salt or output is echoed. */
  if (hash != NULL && strlen(hash) > 16) {
    const char *tail = hash + strlen(hash) - 16;
    assert_null(strstr(err, tail));
  }
  assert_null(strstr(err, CANARY));
  free(err);
}

static void test_a_hash_of_another_kind_is_einval_and_not_echoed(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  char *argon2i = craft(Argon2_i, ARGON2_VERSION_13, 1, 8192, 1, CANARY);
  const char *others[] = {
      "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
      argon2i,
      "$argon2id",
      "plain-text-password-stored-by-mistake",
      "",
      NULL,
  };
  for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
    assert_bad_hash(&f, others[i], NOT_ARGON2ID);

  assert_bad_hash(&f,
                  "$argon2id$v=19$m=lots,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                  "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
                  "auth_password: the stored argon2id hash is malformed (its "
                  "parameters cannot be read); set a new password for this "
                  "user");
  assert_bad_hash(&f,
                  "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0"
                  "c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
                  "auth_password: the stored argon2id hash asks for "
                  "m=4294967295 KiB, t=1, p=1, beyond this plugin's limits "
                  "(4GiB, 20, 16); set a new password for this user");
  assert_bad_hash(&f,
                  "$argon2id$v=19$m=8192,t=1,p=1$c2FsdA$"
                  "aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
                  "auth_password: the stored argon2id hash cannot be read "
                  "(Salt is too short); set a new password for this user");
  assert_bad_hash(&f,
                  "$argon2id$v=19$m=8192,t=1,p=1$c2Fsd!!!HNhbHRzYWx0c2Fs"
                  "dA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
                  "auth_password: the stored argon2id hash cannot be read "
                  "(Decoding failed); set a new password for this user");
  assert_bad_hash(&f,
                  "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                  "!!!",
                  "auth_password: the stored argon2id hash cannot be read "
                  "(Output is too short); set a new password for this user");
  free(argon2i);
  fx_stop(&f);
}

/* Threads: each hashes and verifies its own password, concurrently. */
typedef struct worker {
  fx_t *f;
  int n;
  int failures;
} worker_t;

static void *work(void *arg) {
  worker_t *w = arg;
  char pw[64];
  snprintf(pw, sizeof pw, "%s-%d", CANARY, w->n);
  for (int i = 0; i < 3; i++) {
    char *hash = NULL, *err = NULL;
    int rehash = 0;
    if (w->f->ops->hash_secret(w->f->ctx, pw, strlen(pw), &hash, &err) != 0) {
      w->failures++;
      free(err);
      continue;
    }
    if (w->f->ops->verify_secret(w->f->ctx, pw, strlen(pw), hash, &rehash,
                                 &err) != 0 ||
        w->f->ops->verify_secret(w->f->ctx, CANARY, strlen(CANARY), hash,
                                 &rehash, &err) != ATR_EPERM)
      w->failures++;
    free(err);
    free(hash);
  }
  return NULL;
}

static void test_concurrent_callers_each_get_their_answer(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  pthread_t th[4];
  worker_t w[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (worker_t){.f = &f, .n = i};
    assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].failures, 0);
  }
  fx_stop(&f);
}

static void test_the_defaults_work(void **state) {
  (void)state;
  fx_t f;
  uint64_t t0 = now_ms();
  fx_start(&f, NULL); /* start-up times one hash */
  uint64_t t1 = now_ms();
  char *hash = hash_ok(&f, CANARY, strlen(CANARY));
  uint64_t t2 = now_ms();
  assert_true(strncmp(hash, "$argon2id$v=19$m=65536,t=3,p=1$", 31) == 0);
  assert_int_equal(field_len(hash, 4), 22); /* 16 bytes of salt */
  assert_int_equal(field_len(hash, 5), 43); /* 32 bytes of hash */
  int rehash;
  assert_int_equal(verify(&f, CANARY, strlen(CANARY), hash, &rehash), 0);
  assert_int_equal(rehash, 0);
  uint64_t t3 = now_ms();
  print_message("defaults: start %" PRIu64 " ms, hash %" PRIu64
                " ms, verify %" PRIu64 " ms\n",
                t1 - t0, t2 - t1, t3 - t2);
  free(hash);
  fx_stop(&f);
}

/* ---- options */

static void test_memory_below_its_bound_is_refused(void **state) {
  (void)state;
  fx_t f;
  char *err = NULL;
  int rc = fx_try(&f, "    memory_cost: 1MiB\n", &err);
  if (rc != ATR_ECONFIG)
    fail_msg("%s: %s", atr_err_name(rc), err);
  assert_string_equal(err, "test.yaml:4:18: plugins.auth_password.memory_cost: "
                           "1MiB is out of range; expected a value between "
                           "8MiB and 4GiB");
  free(err);
  fx_stop(&f);
}

static void test_min_length_above_max_length_is_refused(void **state) {
  (void)state;
  fx_t f;
  char *err = NULL;
  assert_int_equal(
      fx_try(&f, FAST "    min_length: 100\n    max_length: 50\n", &err),
      ATR_ECONFIG);
  assert_string_equal(err, "plugin auth_password: init failed: "
                           "plugins.auth_password: min_length 100 is greater "
                           "than max_length 50; lower min_length or raise "
                           "max_length");
  free(err);
  fx_stop(&f);
}

/* ---- policy */

static void test_policy_length_counts_characters(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  const char *too_short = "The password must be at least 8 characters long.";
  assert_policy(&f, "Ab1!xyz", NULL, NULL, too_short);
  assert_policy(&f, "Ab1!xyzw", NULL, NULL, NULL);
  /* 7 code points in 14 bytes are too short; 8 are enough. */
  assert_policy(&f, "ééééééé", NULL, NULL, too_short);
  assert_policy(&f, "éééééééé", NULL, NULL, NULL);
  assert_policy(&f, "", NULL, NULL, too_short);
  assert_policy(&f, "Ab1!xyz\xff\xfe", NULL, NULL,
                "The password must be valid UTF-8 text.");

  char pw[300];
  for (size_t i = 0; i < 256; i++)
    pw[i] = "aB3$"[i % 4];
  pw[256] = '\0';
  assert_policy(&f, pw, NULL, NULL, NULL);
  pw[256] = 'x';
  pw[257] = '\0';
  assert_policy(&f, pw, NULL, NULL,
                "The password must be at most 256 characters long.");
  /* 256 characters of 2 bytes each are still 256 characters. */
  char wide[600] = "";
  for (size_t i = 0; i < 256; i++)
    strcat(wide, "é");
  assert_policy(&f, wide, NULL, NULL, NULL);
  fx_stop(&f);
}

static void test_policy_refuses_username_and_email(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  const char *user = "The password must not contain the username.";
  const char *mail = "The password must not contain the part of the email "
                     "address before the @.";
  assert_policy(&f, "xxALICE-2024!", "alice", "alice@example.com", user);
  assert_policy(&f, "Carol.Smith#77", "bob99", "carol.smith@example.com", mail);
  assert_policy(&f, CANARY, "alice", "alice@example.com", NULL);
  /* Names shorter than 3 characters are not looked for. */
  assert_policy(&f, "al-al-al-2024", "al", "jo@example.com", NULL);
  assert_policy(&f, "jo-jo-jo-2024", "al", "jo@example.com", NULL);
  /* Unknown username or email: nothing to compare. */
  assert_policy(&f, "xxALICE-2024!", NULL, NULL, NULL);
  assert_policy(&f, "xxALICE-2024!", "", "", NULL);
  fx_stop(&f);

  fx_start(&f, FAST "    reject_username: false\n");
  assert_policy(&f, "xxALICE-2024!", "alice", "alice@example.com", NULL);
  fx_stop(&f);
}

static void test_policy_refuses_common_passwords(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST);
  const char *common =
      "The password is too common; choose one that is harder to guess.";
  assert_policy(&f, "password", NULL, NULL, common);
  assert_policy(&f, "PassWord", NULL, NULL, common);
  assert_policy(&f, "12345678", NULL, NULL, common);
  assert_policy(&f, "QWERTYUI", NULL, NULL, common);
  assert_policy(&f, "letmein1", NULL, NULL, common);
  /* Only the whole password is compared. */
  assert_policy(&f, "password-for-atrium", NULL, NULL, NULL);
  fx_stop(&f);

  fx_start(&f, FAST "    reject_common: false\n");
  assert_policy(&f, "password", NULL, NULL, NULL);
  fx_stop(&f);
}

static void test_policy_counts_character_classes(void **state) {
  (void)state;
  fx_t f;
  fx_start(&f, FAST "    require_classes: 3\n");
  const char *classes = "The password must use at least 3 of: lower-case "
                        "letters, upper-case letters, digits, symbols.";
  assert_policy(&f, "alllowercase", NULL, NULL, classes);
  assert_policy(&f, "lowerUPPER", NULL, NULL, classes);
  assert_policy(&f, "lowerUPPER1", NULL, NULL, NULL);
  assert_policy(&f, "lower upper 1", NULL, NULL, NULL); /* a space is one */
  assert_policy(&f, "ünïcödé-1", NULL, NULL, NULL);     /* beyond ASCII too */
  fx_stop(&f);

  /* The default asks for no classes at all. */
  fx_start(&f, FAST);
  assert_policy(&f, "alllowercase", NULL, NULL, NULL);
  fx_stop(&f);
}

/* ---- the log */

static void test_the_log_never_shows_a_password_or_hash(void **state) {
  (void)state;
  assert_int_equal(fflush(log_stream), 0);
  assert_non_null(log_buf);
  /* The capture works: start-up said which parameters it uses. */
  assert_non_null(strstr(log_buf, "[auth_password] argon2id v=19, m=8192 "
                                  "KiB, t=1, p=1, salt 16 B, hash 32 B;"));
  assert_non_null(strstr(log_buf, "[auth_password] argon2id v=19, m=65536 "
                                  "KiB, t=3, p=1"));
  assert_null(strstr(log_buf, CANARY));
  assert_null(strstr(log_buf, "Canary"));
  assert_null(strstr(log_buf, "$argon2"));
}

int main(void) {
  log_stream = open_memstream(&log_buf, &log_len);
  if (log_stream == NULL)
    return 1;
  atr_log_set_level(ATR_LOG_DEBUG);
  atr_log_set_stream(log_stream);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_descriptor_is_the_password_method),
      cmocka_unit_test(test_a_hash_verifies_its_password),
      cmocka_unit_test(test_a_wrong_password_is_eperm),
      cmocka_unit_test(test_two_hashes_of_one_password_differ),
      cmocka_unit_test(test_the_hash_carries_the_configured_parameters),
      cmocka_unit_test(test_weaker_stored_hashes_need_a_rehash),
      cmocka_unit_test(test_a_hash_of_another_kind_is_einval_and_not_echoed),
      cmocka_unit_test(test_concurrent_callers_each_get_their_answer),
      cmocka_unit_test(test_the_defaults_work),
      cmocka_unit_test(test_memory_below_its_bound_is_refused),
      cmocka_unit_test(test_min_length_above_max_length_is_refused),
      cmocka_unit_test(test_policy_length_counts_characters),
      cmocka_unit_test(test_policy_refuses_username_and_email),
      cmocka_unit_test(test_policy_refuses_common_passwords),
      cmocka_unit_test(test_policy_counts_character_classes),
      /* Last: it reads what every test before it logged. */
      cmocka_unit_test(test_the_log_never_shows_a_password_or_hash),
  };
  int failed = cmocka_run_group_tests(tests, NULL, NULL);
  atr_log_set_stream(NULL);
  fclose(log_stream);
  free(log_buf);
  return failed;
}
