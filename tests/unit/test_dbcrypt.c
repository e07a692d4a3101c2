/* Database encryption at rest (core/store/dbcrypt.h): the cipher opens
 * what it sealed and nothing else (a changed byte, another column, a key
 * it does not hold), and on the real storage plugin start-up names the
 * key id a database needs (never the key), rotation moves every value to
 * the new key and revokes the old one, decrypt and delete leave no sealed
 * value.
 *
 *   test_dbcrypt                 a fresh SQLite file in a temp dir
 *   test_dbcrypt postgres PGDIR  the throwaway cluster of the fixture */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "db.h"
#include "dbcrypt.h"
#include "domain_fixture.h"
#include "log.h"

/* Keys (`openssl rand -base64 32`), and one that is not 32 bytes. */
#define KEY_A "OBoKCKTkI7bhOWytuyvKdclZHDOsSNJjbzUT583a83M="
#define KEY_B "Zq6jX3+EeA6FgH1GrRNxUdLD6vJ1r+vnYX/7xsXGWwM="
#define KEY_C "xOlnlfE9pM/rblixq7o8KtV64gmmhk3K4TVR5Si9hXY="
#define KEY_D "8rC5WsFm9OFARIt+swWkP+OgCvWoP5/Hi4ixseEw5lg="
#define SHORT "c2hvcnQ="
#define SECRET "oauth-secret-token-4711"

static atr_dbcrypt_t *cipher(const char *k1, const char *k2) {
  const char *keys[] = {k1, k2};
  atr_dbcrypt_t *c = NULL;
  char *err = NULL;
  must(atr_dbcrypt_new(keys, k2 ? 2 : 1, &c, &err), &err);
  return c;
}

static char *seal(const atr_dbcrypt_t *c, const char *aad, const char *plain) {
  char *out = NULL, *err = NULL;
  size_t len = 0;
  must(atr_dbcrypt_seal(c, aad, plain, strlen(plain), &out, &len, &err), &err);
  assert_int_equal(len, strlen(out));
  return out;
}

/* rc of opening s under c with aad; *err checked to hold no key. */
static int open_rc(const atr_dbcrypt_t *c, const char *aad, const char *s,
                   char **plain) {
  char *err = NULL;
  size_t len = 0;
  int rc = atr_dbcrypt_open(c, aad, s, strlen(s), plain, &len, &err);
  if (err) {
    assert_null(strstr(err, KEY_A));
    assert_null(strstr(err, KEY_B));
  }
  free(err);
  return rc;
}

/* ---- the cipher ------------------------------------------------------------ */

static void a_sealed_value_opens_to_what_was_sealed(void **state) {
  (void)state;
  atr_dbcrypt_t *c = cipher(KEY_A, NULL);
  char *s = seal(c, ATR_DBCRYPT_PARAM, SECRET);
  char *again = seal(c, ATR_DBCRYPT_PARAM, SECRET);
  char want[32];
  snprintf(want, sizeof want, "dbcrypt-%s-", atr_dbcrypt_key_id(c, 0));
  assert_int_equal(strncmp(s, want, strlen(want)), 0);
  assert_null(strstr(s, SECRET));
  assert_string_not_equal(s, again); /* a fresh nonce each time */
  char *plain = NULL;
  assert_int_equal(open_rc(c, ATR_DBCRYPT_PARAM, s, &plain), 0);
  assert_string_equal(plain, SECRET);
  free(plain);
  free(again);
  free(s);
  atr_dbcrypt_free(c);
}

static void a_changed_byte_fails_to_open(void **state) {
  (void)state;
  atr_dbcrypt_t *c = cipher(KEY_A, NULL);
  char *s = seal(c, ATR_DBCRYPT_STATE, SECRET);
  size_t last = strlen(s) - 5;
  s[last] = s[last] == 'A' ? 'B' : 'A';
  char *plain = NULL;
  assert_int_equal(open_rc(c, ATR_DBCRYPT_STATE, s, &plain), ATR_EINVAL);
  assert_null(plain);
  s[16] = '\0'; /* only the head */
  assert_int_equal(open_rc(c, ATR_DBCRYPT_STATE, s, &plain), ATR_EINVAL);
  assert_int_equal(open_rc(c, ATR_DBCRYPT_STATE, "in clear", &plain),
                   ATR_EINVAL);
  free(s);
  atr_dbcrypt_free(c);
}

static void a_value_moved_to_another_column_fails_to_open(void **state) {
  (void)state;
  atr_dbcrypt_t *c = cipher(KEY_A, NULL);
  char *s = seal(c, ATR_DBCRYPT_ACCESS_TOKEN, SECRET);
  char *plain = NULL;
  assert_int_equal(open_rc(c, ATR_DBCRYPT_REFRESH_TOKEN, s, &plain),
                   ATR_EINVAL);
  assert_int_equal(open_rc(c, ATR_DBCRYPT_PARAM, s, &plain), ATR_EINVAL);
  assert_null(plain);
  free(s);
  atr_dbcrypt_free(c);
}

static void a_key_id_not_configured_is_named(void **state) {
  (void)state;
  atr_dbcrypt_t *a = cipher(KEY_A, NULL), *b = cipher(KEY_B, NULL);
  char *s = seal(a, ATR_DBCRYPT_PARAM, SECRET);
  char *plain = NULL, *err = NULL;
  size_t len = 0;
  assert_int_equal(
      atr_dbcrypt_open(b, ATR_DBCRYPT_PARAM, s, strlen(s), &plain, &len, &err),
      ATR_ENOENT);
  assert_non_null(strstr(err, atr_dbcrypt_key_id(a, 0)));
  assert_non_null(strstr(err, "not configured"));
  free(err);
  /* A key with the other's id forged into the value fails its check. */
  memcpy(s + 8, atr_dbcrypt_key_id(b, 0), ATR_DBCRYPT_KEY_ID_LEN);
  assert_int_equal(open_rc(b, ATR_DBCRYPT_PARAM, s, &plain), ATR_EINVAL);
  /* [b, a] opens a's values and seals under b. */
  atr_dbcrypt_t *ba = cipher(KEY_B, KEY_A);
  memcpy(s + 8, atr_dbcrypt_key_id(a, 0), ATR_DBCRYPT_KEY_ID_LEN);
  assert_int_equal(open_rc(ba, ATR_DBCRYPT_PARAM, s, &plain), 0);
  assert_string_equal(plain, SECRET);
  free(plain);
  free(s);
  s = seal(ba, ATR_DBCRYPT_PARAM, SECRET);
  assert_int_equal(strncmp(s + 8, atr_dbcrypt_key_id(b, 0), 7), 0);
  free(s);
  atr_dbcrypt_free(a);
  atr_dbcrypt_free(b);
  atr_dbcrypt_free(ba);
}

static void a_bad_key_is_refused_by_position_without_its_text(void **state) {
  (void)state;
  const char *keys[] = {KEY_A, SHORT};
  atr_dbcrypt_t *c = NULL;
  char *err = NULL;
  assert_int_equal(atr_dbcrypt_new(keys, 2, &c, &err), ATR_ECONFIG);
  assert_null(c);
  assert_non_null(strstr(err, "key 2 of 2 is not base64 of 32 bytes"));
  assert_null(strstr(err, SHORT));
  free(err);
  const char *twice[] = {KEY_A, KEY_A};
  assert_int_equal(atr_dbcrypt_new(twice, 2, &c, &err), ATR_ECONFIG);
  assert_null(strstr(err, KEY_A));
  free(err);
}

static void an_agent_token_is_stored_as_a_digest(void **state) {
  (void)state;
  char d[37], again[37];
  atr_dbcrypt_token_digest("0b1f6b0e-5e52-4d1e-9f57-2d3c0f7a9e11", d);
  atr_dbcrypt_token_digest("0b1f6b0e-5e52-4d1e-9f57-2d3c0f7a9e11", again);
  assert_true(atr_uuid_valid(d));
  assert_string_equal(d, again);
  assert_string_not_equal(d, "0b1f6b0e-5e52-4d1e-9f57-2d3c0f7a9e11");
}

/* ---- on the storage plugin ------------------------------------------------ */

static char user_id[37];

/* Start-up with keys (comma-separated); 0 or rc with *err. */
static int setup_with(const char *keys, char **err) {
  return atr_dbcrypt_setup(&store, keys, NULL, err);
}

static void link_user(const char *login_type, const char *token) {
  atr_sealed_t s;
  char *err = NULL;
  must(atr_sealed_make(&store, ATR_DBCRYPT_ACCESS_TOKEN, true, token,
                       strlen(token), &s, &err),
       &err);
  atr_value_t p[] = {atr_v_text(user_id), atr_v_text(login_type),
                     atr_sealed_text(&s), atr_sealed_key(&s)};
  exec_ok("INSERT INTO user_links (user_id, login_type, oauth_access_token, "
          "oauth_access_token_key_id) VALUES (?, ?, ?, ?)",
          p, 4);
  atr_sealed_free(&s);
}

static void run(atr_dbcrypt_op_t op, long long want_tokens) {
  atr_dbcrypt_counts_t counts;
  char *err = NULL;
  must(atr_dbcrypt_run(&store, op, 1, &counts, &err), &err);
  assert_int_equal(counts.values[3], want_tokens); /* OAuth access tokens */
}

static void startup_names_the_key_id_the_database_needs(void **state) {
  (void)state;
  add_user(user_id, "dana", 0);
  char *err = NULL;
  must(setup_with("", &err), &err); /* nothing encrypted: in clear */
  assert_null(store.crypt);
  link_user("clear", SECRET);
  must(setup_with(KEY_A, &err), &err);
  char id_a[8];
  snprintf(id_a, sizeof id_a, "%s", atr_dbcrypt_key_id(store.crypt, 0));
  link_user("oidc", SECRET);
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM user_links WHERE "
                                  "oauth_access_token_key_id = ?",
                                  id_a),
                   1);
  /* No key, or the wrong one: refused, naming a's id, never a key. */
  const char *wrong[] = {"", KEY_B};
  for (size_t i = 0; i < 2; i++) {
    assert_int_equal(setup_with(wrong[i], &err), ATR_ECONFIG);
    assert_non_null(strstr(err, "has values encrypted with key id"));
    assert_non_null(strstr(err, id_a));
    assert_null(strstr(err, KEY_A));
    assert_null(strstr(err, KEY_B));
    free(err);
    err = NULL;
  }
  assert_non_null(store.crypt); /* the refusals kept what was set up */
}

static void rotation_moves_every_value_to_the_new_key(void **state) {
  (void)state;
  char *err = NULL;
  must(setup_with(KEY_B "," KEY_A, &err), &err);
  /* The clear token and the one under a: both sealed under b now. */
  run(ATR_DBCRYPT_ROTATE, 2);
  char id_b[8];
  snprintf(id_b, sizeof id_b, "%s", atr_dbcrypt_key_id(store.crypt, 0));
  assert_int_equal(count_rows_for("SELECT COUNT(*) FROM user_links WHERE "
                                  "oauth_access_token_key_id = ?",
                                  id_b),
                   2);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM dbcrypt_keys WHERE "
                              "state = 'revoked'"),
                   1);
  run(ATR_DBCRYPT_ROTATE, 0); /* nothing left to do */
  /* a is revoked: b alone starts; a as the primary is refused. */
  must(setup_with(KEY_B, &err), &err);
  assert_int_equal(setup_with(KEY_A "," KEY_B, &err), ATR_ECONFIG);
  assert_non_null(strstr(err, "was revoked"));
  free(err);
  err = NULL;
  /* A key new to the database becomes primary beside b; dropped again
   * before it sealed anything, it is not needed. */
  must(setup_with(KEY_C "," KEY_B, &err), &err);
  must(setup_with(KEY_B, &err), &err);
}

static void decrypt_leaves_every_value_in_clear(void **state) {
  (void)state;
  char *err = NULL;
  run(ATR_DBCRYPT_DECRYPT, 2);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM user_links WHERE "
                              "oauth_access_token_key_id IS NULL AND "
                              "oauth_access_token = '" SECRET "'"),
                   2);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM dbcrypt_keys WHERE "
                              "state = 'active'"),
                   0);
  must(setup_with("", &err), &err); /* no key needed any more */
}

static void delete_removes_every_sealed_value(void **state) {
  (void)state;
  char *err = NULL;
  must(setup_with(KEY_D, &err), &err);
  link_user("github", SECRET);
  atr_dbcrypt_free(store.crypt);
  store.crypt = NULL; /* the key was lost */
  run(ATR_DBCRYPT_DELETE, 1);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM user_links WHERE "
                              "oauth_access_token_key_id IS NOT NULL"),
                   0);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM user_links WHERE "
                              "oauth_access_token = ''"),
                   1);
  must(setup_with("", &err), &err);
}

static int setup(void **state) {
  (void)state;
  return fixture_open("dbcrypt", NULL);
}

static int teardown(void **state) {
  (void)state;
  atr_dbcrypt_free(store.crypt);
  store.crypt = NULL;
  return fixture_close();
}

int main(int argc, char **argv) {
  if (fixture_args(argc, argv) != 0)
    return 2;
  atr_log_set_level(ATR_LOG_ERROR);
  /* The storage tests in order: each starts from what the one before left. */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(a_sealed_value_opens_to_what_was_sealed),
      cmocka_unit_test(a_changed_byte_fails_to_open),
      cmocka_unit_test(a_value_moved_to_another_column_fails_to_open),
      cmocka_unit_test(a_key_id_not_configured_is_named),
      cmocka_unit_test(a_bad_key_is_refused_by_position_without_its_text),
      cmocka_unit_test(an_agent_token_is_stored_as_a_digest),
      cmocka_unit_test(startup_names_the_key_id_the_database_needs),
      cmocka_unit_test(rotation_moves_every_value_to_the_new_key),
      cmocka_unit_test(decrypt_leaves_every_value_in_clear),
      cmocka_unit_test(delete_removes_every_sealed_value),
  };
  return cmocka_run_group_tests_name(pg_dir ? "dbcrypt_postgres" : "dbcrypt",
                                     tests, setup, teardown);
}
