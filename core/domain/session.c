/* core/session.c — see session.h. */
#include "session.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

static const char alphabet[] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* Uniform base62 by rejection sampling of random bytes. */
static int random_base62(char *out, size_t n) {
  size_t filled = 0;
  unsigned char buf[64];
  while (filled < n) {
    if (RAND_bytes(buf, sizeof buf) != 1)
      return ATR_EIO;
    for (size_t i = 0; i < sizeof buf && filled < n; i++)
      if (buf[i] < 248) /* 248 = 4 * 62: keeps the distribution uniform */
        out[filled++] = alphabet[buf[i] % 62];
  }
  out[n] = '\0';
  OPENSSL_cleanse(buf, sizeof buf);
  return 0;
}

int atr_session_create(atr_store_t *store, const char *user_id,
                       const char *token_name, int64_t lifetime_ms,
                       const char *ip, char **out_key, char **err) {
  char id[ATR_KEY_ID_LEN + 1], secret[ATR_KEY_SECRET_LEN + 1];
  if (random_base62(id, ATR_KEY_ID_LEN) ||
      random_base62(secret, sizeof secret - 1)) {
    *err = strdup("cannot generate a key: no randomness");
    return ATR_EIO;
  }
  unsigned char hash[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)secret, strlen(secret), hash);
  int64_t now = atr_db_now_us();
  bool session = !token_name || !token_name[0];
  atr_value_t p[] = {atr_v_text(id),
                     atr_v_blob(hash, sizeof hash),
                     atr_v_text(user_id),
                     atr_v_time(now),
                     atr_v_time(now + lifetime_ms * 1000),
                     atr_v_time(now),
                     atr_v_time(now),
                     atr_v_text(session ? "password" : "token"),
                     atr_v_int(lifetime_ms / 1000),
                     atr_v_text(ip ? ip : ""),
                     atr_v_text(session ? "" : token_name)};
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc == 0) {
    rc = atr_db_exec(&db,
                     "INSERT INTO api_keys (id, hashed_secret, user_id, "
                     "last_used, expires_at, created_at, updated_at, "
                     "login_type, lifetime_seconds, ip_address, token_name) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     p, 11, NULL, err);
    atr_db_close(&db);
  }
  if (rc == 0 && asprintf(out_key, "%s-%s", id, secret) < 0)
    rc = ATR_ENOMEM;
  OPENSSL_cleanse(secret, sizeof secret);
  return rc;
}

int atr_user_roles(atr_db_t *db, const char *user_id, uint32_t *roles,
                   char **err) {
  atr_value_t p[] = {atr_v_text(user_id)};
  atr_db_rows_t *rows = NULL;
  *roles = ATR_ROLE_MEMBER;
  int rc = atr_db_query(db, "SELECT role FROM user_roles WHERE user_id = ?", p,
                        1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    *roles |= atr_role_parse(atr_db_get_text(db, rows, 0), false);
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

int atr_org_roles(atr_db_t *db, const char *org, const char *user_id,
                  char org_id[37], uint32_t *roles, char **err) {
  *roles = 0;
  char *id = NULL;
  atr_value_t p[] = {atr_v_uuid_or_null(org), atr_v_text(org)};
  int rc = atr_db_query_text(db,
                             "SELECT id FROM organizations WHERE deleted = "
                             "FALSE AND (id = ? OR lower(name) = lower(?))",
                             p, 2, &id, err);
  if (rc != 0)
    return rc;
  snprintf(org_id, 37, "%s", id);
  free(id);
  atr_value_t q[] = {atr_v_text(org_id), atr_v_text(user_id)};
  int64_t member = 0;
  rc = atr_db_query_int(db,
                        "SELECT COUNT(*) FROM organization_members WHERE "
                        "organization_id = ? AND user_id = ?",
                        q, 2, &member, err);
  if (rc != 0 || member == 0)
    return rc;
  *roles = ATR_ROLE_ORG_MEMBER;
  atr_db_rows_t *rows = NULL;
  rc = atr_db_query(db,
                    "SELECT role FROM organization_member_roles WHERE "
                    "organization_id = ? AND user_id = ?",
                    q, 2, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    *roles |= atr_role_parse(atr_db_get_text(db, rows, 0), true);
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static int refuse(char **err, const char *why) {
  *err = strdup(why);
  return ATR_EPERM;
}

typedef struct key_row {
  unsigned char hash[SHA256_DIGEST_LENGTH];
  bool hash_ok;
  int64_t expires_at, last_used, lifetime_s;
  bool session;
} key_row_t;

static int load_key(atr_db_t *db, const char *id, key_row_t *k,
                    atr_actor_t *actor, char **err) {
  atr_value_t p[] = {atr_v_text(id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT k.hashed_secret, k.expires_at, k.last_used, k.lifetime_seconds, "
      "k.token_name, u.id, u.username, u.status, u.deleted FROM api_keys k "
      "JOIN users u ON u.id = k.user_id WHERE k.id = ?",
      p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    size_t len = 0;
    const void *h = atr_db_get_blob(db, rows, 0, &len);
    k->hash_ok = h && len == sizeof k->hash;
    if (k->hash_ok)
      memcpy(k->hash, h, len);
    k->expires_at = atr_db_get_time(db, rows, 1);
    k->last_used = atr_db_get_time(db, rows, 2);
    k->lifetime_s = atr_db_get_int(db, rows, 3);
    const char *name = atr_db_get_text(db, rows, 4);
    k->session = !name || !name[0];
    snprintf(actor->user_id, sizeof actor->user_id, "%s",
             atr_db_get_text(db, rows, 5));
    snprintf(actor->username, sizeof actor->username, "%s",
             atr_db_get_text(db, rows, 6));
    const char *status = atr_db_get_text(db, rows, 7);
    bool active = status && strcmp(status, "active") == 0 &&
                  !atr_db_get_bool(db, rows, 8);
    rc = active ? 0 : refuse(err, "the key's user is not active");
  } else if (rc == 0) {
    rc = refuse(err, "no such key");
  }
  atr_db_rows_close(db, rows);
  return rc;
}

/* Sessions slide; the write happens at most once a minute per key. */
static void touch(atr_db_t *db, const char *id, const key_row_t *k) {
  int64_t now = atr_db_now_us();
  if (now - k->last_used < 60 * 1000000LL)
    return;
  int64_t expires =
      k->session ? now + k->lifetime_s * 1000000LL : k->expires_at;
  atr_value_t p[] = {atr_v_time(now), atr_v_time(expires), atr_v_text(id)};
  char *err = NULL;
  atr_db_exec(db,
              "UPDATE api_keys SET last_used = ?, expires_at = ? "
              "WHERE id = ?",
              p, 3, NULL, &err);
  free(err);
}

int atr_session_authenticate(atr_store_t *store, const char *key,
                             atr_actor_t *actor, char **err) {
  memset(actor, 0, sizeof *actor);
  const char *dash = key ? strchr(key, '-') : NULL;
  if (!dash || dash - key != ATR_KEY_ID_LEN ||
      strlen(dash + 1) != ATR_KEY_SECRET_LEN)
    return refuse(err, "malformed key");
  char id[ATR_KEY_ID_LEN + 1];
  memcpy(id, key, ATR_KEY_ID_LEN);
  id[ATR_KEY_ID_LEN] = '\0';
  unsigned char hash[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)dash + 1, ATR_KEY_SECRET_LEN, hash);
  atr_db_t db;
  key_row_t k = {0};
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  rc = load_key(&db, id, &k, actor, err);
  if (rc == 0 && (!k.hash_ok || CRYPTO_memcmp(hash, k.hash, sizeof hash)))
    rc = refuse(err, "wrong secret");
  if (rc == 0 && k.expires_at <= atr_db_now_us())
    rc = refuse(err, "the key has expired");
  if (rc == 0)
    rc = atr_user_roles(&db, actor->user_id, &actor->roles, err);
  if (rc == 0) {
    touch(&db, id, &k);
    snprintf(actor->key_id, sizeof actor->key_id, "%s", id);
  }
  atr_db_close(&db);
  return rc;
}

int atr_session_delete(atr_store_t *store, const char *key_id, char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(key_id)};
  rc = atr_db_exec(&db, "DELETE FROM api_keys WHERE id = ?", p, 1, NULL, err);
  atr_db_close(&db);
  return rc;
}
