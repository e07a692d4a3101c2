/* core/store/dbcrypt.c — see dbcrypt.h: the cipher and the call-site
 * helpers. */
#include "dbcrypt.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

#define KEY_LEN 32
#define NONCE_LEN 12
#define TAG_LEN 16
#define PREFIX "dbcrypt-"
#define PREFIX_LEN (sizeof PREFIX - 1)
/* "dbcrypt-abc1234-" */
#define HEAD_LEN (PREFIX_LEN + ATR_DBCRYPT_KEY_ID_LEN + 1)

typedef struct key {
  unsigned char bytes[KEY_LEN];
  char id[ATR_DBCRYPT_KEY_ID_LEN + 1];
} dbkey_t;

struct atr_dbcrypt {
  dbkey_t keys[ATR_DBCRYPT_MAX_KEYS];
  size_t n;
};

static int failf(char **err, int rc, const char *fmt, const char *a,
                 const char *b) {
  if (err && asprintf(err, fmt, a, b) < 0)
    *err = NULL;
  return rc;
}

/* Bytes of strict base64 text; -1 when it is not. */
static long b64_decode(const char *s, size_t len, unsigned char *out) {
  if (len == 0 || len % 4 != 0)
    return -1;
  size_t pad = s[len - 1] == '=' ? (s[len - 2] == '=' ? 2 : 1) : 0;
  for (size_t i = 0; i < len - pad; i++)
    if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                "0123456789+/",
                s[i]) ||
        s[i] == '\0')
      return -1;
  int n = EVP_DecodeBlock(out, (const unsigned char *)s, (int)len);
  return n < 0 ? -1 : (long)n - (long)pad;
}

/* Coder's digest: SHA-256 of the cipher's name and the key, 7 hex. */
static void key_id(const unsigned char *bytes, char out[8]) {
  static const unsigned char name[9] = {'a', 'e', 's', '2', '5',
                                        '6', 'g', 'c', 'm'};
  unsigned char d[SHA256_DIGEST_LENGTH], in[sizeof name + KEY_LEN];
  memcpy(in, name, sizeof name);
  memcpy(in + sizeof name, bytes, KEY_LEN);
  SHA256(in, sizeof in, d);
  OPENSSL_cleanse(in, sizeof in);
  char hex[SHA256_DIGEST_LENGTH * 2 + 1];
  for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++)
    snprintf(hex + 2 * i, 3, "%02x", d[i]);
  memcpy(out, hex, ATR_DBCRYPT_KEY_ID_LEN);
  out[ATR_DBCRYPT_KEY_ID_LEN] = '\0';
  OPENSSL_cleanse(d, sizeof d);
}

static int add_key(atr_dbcrypt_t *c, const char *text, size_t i, size_t n,
                   char **err) {
  char pos[64];
  snprintf(pos, sizeof pos, "%zu of %zu", i + 1, n);
  size_t len = strlen(text);
  unsigned char buf[3 * 64 / 4 + 3];
  long got = len <= 64 ? b64_decode(text, len, buf) : -1;
  if (got != KEY_LEN) {
    OPENSSL_cleanse(buf, sizeof buf);
    return failf(err, ATR_ECONFIG,
                 "database encryption key %s is not base64 of 32 bytes "
                 "(make one with `openssl rand -base64 32`)%s",
                 pos, "");
  }
  dbkey_t *k = &c->keys[c->n];
  memcpy(k->bytes, buf, KEY_LEN);
  OPENSSL_cleanse(buf, sizeof buf);
  key_id(k->bytes, k->id);
  for (size_t j = 0; j < c->n; j++)
    if (CRYPTO_memcmp(c->keys[j].bytes, k->bytes, KEY_LEN) == 0)
      return failf(err, ATR_ECONFIG,
                   "database encryption key %s repeats key id %s", pos, k->id);
  c->n++;
  return 0;
}

int atr_dbcrypt_new(const char *const *keys, size_t n, atr_dbcrypt_t **out,
                    char **err) {
  *out = NULL;
  if (n == 0 || n > ATR_DBCRYPT_MAX_KEYS)
    return failf(err, ATR_ECONFIG,
                 "between 1 and 16 database encryption keys are needed%s%s", "",
                 "");
  atr_dbcrypt_t *c = calloc(1, sizeof *c);
  if (!c)
    return ATR_ENOMEM;
  for (size_t i = 0; i < n; i++) {
    int rc = add_key(c, keys[i], i, n, err);
    if (rc != 0) {
      atr_dbcrypt_free(c);
      return rc;
    }
  }
  *out = c;
  return 0;
}

void atr_dbcrypt_free(atr_dbcrypt_t *c) {
  if (!c)
    return;
  OPENSSL_cleanse(c, sizeof *c);
  free(c);
}

size_t atr_dbcrypt_nkeys(const atr_dbcrypt_t *c) {
  return c ? c->n : 0;
}

const char *atr_dbcrypt_key_id(const atr_dbcrypt_t *c, size_t i) {
  return c && i < c->n ? c->keys[i].id : NULL;
}

static const dbkey_t *find_key(const atr_dbcrypt_t *c, const char *id) {
  for (size_t i = 0; c && id && i < c->n; i++)
    if (strcmp(c->keys[i].id, id) == 0)
      return &c->keys[i];
  return NULL;
}

bool atr_dbcrypt_has_key(const atr_dbcrypt_t *c, const char *key_id) {
  return find_key(c, key_id) != NULL;
}

/* AES-256-GCM of in (len) into out; decrypt when !enc. 0, or -1 (for
 * decryption: the tag did not match). */
static int gcm(const dbkey_t *k, bool enc, const unsigned char *nonce,
               const char *aad, const unsigned char *in, size_t len,
               unsigned char *out, unsigned char *tag) {
  EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
  int n = 0, ok = x != NULL;
  ok = ok && EVP_CipherInit_ex(x, EVP_aes_256_gcm(), NULL, k->bytes, nonce,
                               enc ? 1 : 0) == 1;
  ok = ok && EVP_CipherUpdate(x, NULL, &n, (const unsigned char *)aad,
                              (int)strlen(aad)) == 1;
  ok = ok && (len == 0 || EVP_CipherUpdate(x, out, &n, in, (int)len) == 1);
  if (ok && !enc)
    ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) == 1;
  ok = ok && EVP_CipherFinal_ex(x, out + (len ? n : 0), &n) == 1;
  if (ok && enc)
    ok = EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) == 1;
  EVP_CIPHER_CTX_free(x);
  return ok ? 0 : -1;
}

int atr_dbcrypt_seal(const atr_dbcrypt_t *c, const char *aad, const void *plain,
                     size_t len, char **out, size_t *out_len, char **err) {
  *out = NULL;
  if (!c || c->n == 0)
    return failf(err, ATR_EINVAL, "no database encryption key to seal %s%s",
                 aad, "");
  if (len > (size_t)1 << 30)
    return failf(err, ATR_EINVAL, "a value of %s is too large to seal%s", aad,
                 "");
  size_t raw_len = NONCE_LEN + len + TAG_LEN;
  unsigned char *raw = malloc(raw_len);
  char *text = malloc(HEAD_LEN + 4 * ((raw_len + 2) / 3) + 1);
  int rc = raw && text ? 0 : ATR_ENOMEM;
  if (rc == 0 && RAND_bytes(raw, NONCE_LEN) != 1)
    rc = failf(err, ATR_EIO, "no random bytes for a nonce%s%s", "", "");
  if (rc == 0 && gcm(&c->keys[0], true, raw, aad, plain, len, raw + NONCE_LEN,
                     raw + NONCE_LEN + len) != 0)
    rc = failf(err, ATR_EIO, "sealing a value of %s failed%s", aad, "");
  if (rc == 0) {
    snprintf(text, HEAD_LEN + 1, PREFIX "%s-", c->keys[0].id);
    int n =
        EVP_EncodeBlock((unsigned char *)text + HEAD_LEN, raw, (int)raw_len);
    *out_len = HEAD_LEN + (size_t)n;
    *out = text;
    text = NULL;
  }
  free(raw);
  free(text);
  return rc;
}

/* The key a sealed value names; ENOENT/EINVAL said why. */
static int sealed_key(const atr_dbcrypt_t *c, const char *aad, const char *s,
                      size_t len, const dbkey_t **k, char **err) {
  char id[ATR_DBCRYPT_KEY_ID_LEN + 1] = "";
  if (len < HEAD_LEN || memcmp(s, PREFIX, PREFIX_LEN) != 0 ||
      s[HEAD_LEN - 1] != '-')
    return failf(err, ATR_EINVAL, "a value of %s is not sealed%s", aad, "");
  memcpy(id, s + PREFIX_LEN, ATR_DBCRYPT_KEY_ID_LEN);
  if (strspn(id, "0123456789abcdef") != ATR_DBCRYPT_KEY_ID_LEN)
    return failf(err, ATR_EINVAL, "a value of %s is not sealed%s", aad, "");
  *k = find_key(c, id);
  if (!*k)
    return failf(err, ATR_ENOENT,
                 "a value of %s is encrypted with key id %s, which is not "
                 "configured",
                 aad, id);
  return 0;
}

int atr_dbcrypt_open(const atr_dbcrypt_t *c, const char *aad,
                     const void *sealed, size_t len, char **out,
                     size_t *out_len, char **err) {
  *out = NULL;
  const dbkey_t *k = NULL;
  int rc = sealed_key(c, aad, sealed, len, &k, err);
  if (rc != 0)
    return rc;
  const char *b64 = (const char *)sealed + HEAD_LEN;
  size_t b64_len = len - HEAD_LEN;
  unsigned char *raw = malloc(b64_len / 4 * 3 + 3);
  long raw_len = raw ? b64_decode(b64, b64_len, raw) : -1;
  if (!raw)
    return ATR_ENOMEM;
  char *plain = NULL;
  if (raw_len < NONCE_LEN + TAG_LEN) {
    rc = failf(err, ATR_EINVAL, "a value of %s is not sealed%s", aad, "");
  } else {
    size_t n = (size_t)raw_len - NONCE_LEN - TAG_LEN;
    plain = malloc(n + 1);
    if (!plain)
      rc = ATR_ENOMEM;
    else if (gcm(k, false, raw, aad, raw + NONCE_LEN, n, (unsigned char *)plain,
                 raw + NONCE_LEN + n) != 0)
      rc = failf(err, ATR_EINVAL,
                 "a value of %s under key id %s failed its integrity check: "
                 "it was changed or belongs to another column",
                 aad, k->id);
    if (rc == 0) {
      plain[n] = '\0';
      *out_len = n;
      *out = plain;
      plain = NULL;
    }
  }
  free(plain);
  free(raw);
  return rc;
}

/* ---- at the call sites ---------------------------------------------------- */

int atr_sealed_make(const atr_store_t *store, const char *aad, bool secret,
                    const void *plain, size_t len, atr_sealed_t *out,
                    char **err) {
  *out = (atr_sealed_t){.data = plain, .len = len};
  const atr_dbcrypt_t *c = store->crypt;
  /* NULL and empty stay as they are: there is nothing to hide. */
  if (!secret || !c || !plain || len == 0)
    return 0;
  int rc = atr_dbcrypt_seal(c, aad, plain, len, &out->owned, &out->len, err);
  if (rc != 0)
    return rc;
  out->data = out->owned;
  snprintf(out->key_id, sizeof out->key_id, "%s", c->keys[0].id);
  return 0;
}

atr_value_t atr_sealed_text(const atr_sealed_t *s) {
  return atr_v_textn(s->data, s->len);
}

atr_value_t atr_sealed_blob(const atr_sealed_t *s) {
  return s->data ? atr_v_blob(s->data, s->len) : atr_v_null();
}

atr_value_t atr_sealed_key(const atr_sealed_t *s) {
  return s->key_id[0] ? atr_v_text(s->key_id) : atr_v_null();
}

void atr_sealed_free(atr_sealed_t *s) {
  free(s->owned);
  *s = (atr_sealed_t){0};
}

int atr_dbcrypt_read(const atr_store_t *store, const char *aad,
                     const void *data, size_t len, const char *key_id,
                     char **out, size_t *out_len, char **err) {
  *out = NULL;
  *out_len = 0;
  if (!data)
    return 0;
  if (key_id)
    return atr_dbcrypt_open(store->crypt, aad, data, len, out, out_len, err);
  *out = malloc(len + 1);
  if (!*out)
    return ATR_ENOMEM;
  memcpy(*out, data, len);
  (*out)[len] = '\0';
  *out_len = len;
  return 0;
}

void atr_dbcrypt_token_digest(const char *token, char out[37]) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256((const unsigned char *)token, strlen(token), d);
  char *p = out;
  for (size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      *p++ = '-';
    snprintf(p, 3, "%02x", d[i]);
    p += 2;
  }
  *p = '\0';
}
