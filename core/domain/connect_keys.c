/* core/domain/connect_keys.c — see connect.h: each workspace's SSH host
 * key, made with OpenSSL the first time it is needed and kept (sealed
 * when the deployment has a database encryption key) for the
 * workspace's life.
 *
 * The key is written in OpenSSH's own format ("BEGIN OPENSSH PRIVATE
 * KEY", PROTOCOL.key), not PKCS#8: libssh 0.10 (the agent's SSH server)
 * reads an ed25519 key from PKCS#8 but then cannot write its public half,
 * which the key exchange sends; both libssh and OpenSSH read this format.
 * Every buffer that held the private key is cleansed. */
#include "connect.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "dbcrypt.h"

#define ED25519_LEN 32
#define KEY_TYPE "ssh-ed25519"
#define KEY_TYPE_LEN (sizeof KEY_TYPE - 1)
/* The public key as SSH writes it on the wire (RFC 8709): string
 * "ssh-ed25519", string key. */
#define BLOB_LEN (4 + KEY_TYPE_LEN + 4 + ED25519_LEN)
#define AUTH_MAGIC "openssh-key-v1" /* and its NUL */
#define PEM_BEGIN "-----BEGIN OPENSSH PRIVATE KEY-----\n"
#define PEM_END "-----END OPENSSH PRIVATE KEY-----\n"
#define PEM_WIDTH 70 /* ssh-keygen's line length */

typedef struct host_key {
  char *pem; /* OpenSSH format; cleansed and freed by host_key_free */
  size_t pem_len;
  char public_key[128];
  char fingerprint[64];
} host_key_t;

static void host_key_free(host_key_t *k) {
  if (k->pem) {
    OPENSSL_cleanse(k->pem, k->pem_len);
    free(k->pem);
  }
  k->pem = NULL;
}

static int fail(char **err, const char *what) {
  if (err && asprintf(err, "SSH host key: %s", what) < 0)
    *err = NULL;
  return ATR_EIO;
}

/* ---- SSH's wire encoding ------------------------------------------------------ */

/* Bytes appended to a fixed buffer; sizes are known in advance, so an
 * overflow is a bug, caught by ok. */
typedef struct wire {
  unsigned char *p;
  size_t len, cap;
  bool ok;
} wire_t;

static void put_bytes(wire_t *w, const void *data, size_t n) {
  if (!w->ok || w->cap - w->len < n) {
    w->ok = false;
    return;
  }
  memcpy(w->p + w->len, data, n);
  w->len += n;
}

static void put_u32(wire_t *w, uint32_t v) {
  unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                        (unsigned char)(v >> 8), (unsigned char)v};
  put_bytes(w, b, 4);
}

static void put_string(wire_t *w, const void *data, size_t n) {
  put_u32(w, (uint32_t)n);
  put_bytes(w, data, n);
}

static void put_blob(wire_t *w, const unsigned char pub[ED25519_LEN]) {
  put_string(w, KEY_TYPE, KEY_TYPE_LEN);
  put_string(w, pub, ED25519_LEN);
}

/* "ssh-ed25519 <base64 blob>" and "SHA256:<base64 of its SHA-256, no
 * padding>", as OpenSSH writes them. */
static void describe(const unsigned char pub[ED25519_LEN], host_key_t *k) {
  unsigned char blob[BLOB_LEN], sum[SHA256_DIGEST_LENGTH], b64[100];
  wire_t w = {blob, 0, sizeof blob, true};
  put_blob(&w, pub);
  EVP_EncodeBlock(b64, blob, (int)w.len);
  snprintf(k->public_key, sizeof k->public_key, "%s %.100s", KEY_TYPE,
           (const char *)b64);
  SHA256(blob, w.len, sum);
  int len = EVP_EncodeBlock(b64, sum, (int)sizeof sum);
  while (len > 0 && b64[len - 1] == '=')
    b64[--len] = '\0';
  snprintf(k->fingerprint, sizeof k->fingerprint, "SHA256:%.*s", len,
           (const char *)b64);
}

/* The private part (PROTOCOL.key): two equal check words, the key (its
 * secret half is seed || public key, as OpenSSH keeps it), an empty
 * comment, padded with 1, 2, 3, ... to the "none" cipher's block of 8. */
static void put_private(wire_t *w, const unsigned char seed[ED25519_LEN],
                        const unsigned char pub[ED25519_LEN], uint32_t check) {
  size_t start = w->len + 4; /* after the section's own length */
  unsigned char sk[2 * ED25519_LEN];
  memcpy(sk, seed, ED25519_LEN);
  memcpy(sk + ED25519_LEN, pub, ED25519_LEN);
  wire_t in = {w->p + start, 0, w->cap > start ? w->cap - start : 0, w->ok};
  put_u32(&in, check);
  put_u32(&in, check);
  put_string(&in, KEY_TYPE, KEY_TYPE_LEN);
  put_string(&in, pub, ED25519_LEN);
  put_string(&in, sk, sizeof sk);
  put_string(&in, "", 0);
  for (unsigned char pad = 1; in.len % 8 != 0; pad++)
    put_bytes(&in, &pad, 1);
  OPENSSL_cleanse(sk, sizeof sk);
  put_u32(w, (uint32_t)in.len);
  w->len += in.len;
  w->ok = w->ok && in.ok;
}

/* The key in OpenSSH's format: base64 of the binary, 70 a line. */
static int pem_of(const unsigned char seed[ED25519_LEN],
                  const unsigned char pub[ED25519_LEN], host_key_t *k,
                  char **err) {
  unsigned char bin[400], b64[600];
  uint32_t check = 0;
  if (RAND_bytes((unsigned char *)&check, sizeof check) != 1)
    return fail(err, "no random bytes");
  wire_t w = {bin, 0, sizeof bin, true};
  put_bytes(&w, AUTH_MAGIC, sizeof AUTH_MAGIC); /* with its NUL */
  put_string(&w, "none", 4);                    /* cipher */
  put_string(&w, "none", 4);                    /* kdf */
  put_string(&w, "", 0);                        /* kdf options */
  put_u32(&w, 1);                               /* one key */
  put_u32(&w, BLOB_LEN);
  put_blob(&w, pub);
  put_private(&w, seed, pub, check);
  int n = w.ok ? EVP_EncodeBlock(b64, bin, (int)w.len) : -1;
  OPENSSL_cleanse(bin, sizeof bin);
  size_t lines = n > 0 ? ((size_t)n + PEM_WIDTH - 1) / PEM_WIDTH : 0;
  size_t cap =
      sizeof PEM_BEGIN + (size_t)(n > 0 ? n : 0) + lines + sizeof PEM_END;
  if (n <= 0 || !(k->pem = malloc(cap))) {
    OPENSSL_cleanse(b64, sizeof b64);
    return n <= 0 ? fail(err, "cannot encode the key") : ATR_ENOMEM;
  }
  size_t o = 0;
  memcpy(k->pem, PEM_BEGIN, sizeof PEM_BEGIN - 1);
  o = sizeof PEM_BEGIN - 1;
  for (int i = 0; i < n; i += PEM_WIDTH) {
    size_t len = (size_t)(n - i < PEM_WIDTH ? n - i : PEM_WIDTH);
    memcpy(k->pem + o, b64 + i, len);
    o += len;
    k->pem[o++] = '\n';
  }
  memcpy(k->pem + o, PEM_END, sizeof PEM_END); /* with its NUL */
  k->pem_len = o + sizeof PEM_END - 1;
  OPENSSL_cleanse(b64, sizeof b64);
  return 0;
}

static int make_key(host_key_t *k, char **err) {
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!pkey)
    return fail(err, "cannot make an ed25519 key");
  unsigned char seed[ED25519_LEN], pub[ED25519_LEN];
  size_t seed_len = sizeof seed, pub_len = sizeof pub;
  int rc = EVP_PKEY_get_raw_private_key(pkey, seed, &seed_len) == 1 &&
                   seed_len == ED25519_LEN &&
                   EVP_PKEY_get_raw_public_key(pkey, pub, &pub_len) == 1 &&
                   pub_len == ED25519_LEN
               ? 0
               : fail(err, "cannot read the key");
  EVP_PKEY_free(pkey);
  if (rc == 0)
    rc = pem_of(seed, pub, k, err);
  if (rc == 0)
    describe(pub, k);
  OPENSSL_cleanse(seed, sizeof seed);
  return rc;
}

/* ---- the row --------------------------------------------------------------- */

static int insert_key(atr_db_t *db, const char *workspace_id, host_key_t *k,
                      char **err) {
  atr_sealed_t s = {0};
  int rc = atr_sealed_make(db->store, ATR_DBCRYPT_SSH_HOST_KEY, true, k->pem,
                           k->pem_len, &s, err);
  atr_value_t p[] = {atr_v_text(workspace_id),  atr_v_time(atr_db_now_us()),
                     atr_sealed_text(&s),       atr_sealed_key(&s),
                     atr_v_text(k->public_key), atr_v_text(k->fingerprint)};
  /* Two manifests at once: the first key stored wins, the other is
   * dropped, and both callers read the stored one. */
  if (rc == 0)
    rc = atr_db_exec(db,
                     "INSERT INTO workspace_ssh_keys (workspace_id, "
                     "created_at, private_key, private_key_key_id, "
                     "public_key, fingerprint) VALUES (?, ?, ?, ?, ?, ?) ON "
                     "CONFLICT (workspace_id) DO NOTHING",
                     p, 6, NULL, err);
  atr_sealed_free(&s);
  return rc;
}

/* The stored key, opened; ATR_ENOENT when there is none. */
static int read_key(atr_db_t *db, const char *workspace_id, char **pem,
                    char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(workspace_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT private_key, private_key_key_id FROM "
                        "workspace_ssh_keys WHERE workspace_id = ?",
                        p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    const char *data = atr_db_get_text(db, rows, 0);
    size_t len = 0;
    rc = atr_dbcrypt_read(db->store, ATR_DBCRYPT_SSH_HOST_KEY, data,
                          data ? strlen(data) : 0, atr_db_get_text(db, rows, 1),
                          pem, &len, err);
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

int atr__connect_host_key(atr_db_t *db, const char *workspace_id, char **pem,
                          char **err) {
  *pem = NULL;
  int rc = read_key(db, workspace_id, pem, err);
  if (rc != ATR_ENOENT)
    return rc;
  host_key_t k = {0};
  rc = make_key(&k, err);
  if (rc == 0)
    rc = insert_key(db, workspace_id, &k, err);
  host_key_free(&k);
  return rc == 0 ? read_key(db, workspace_id, pem, err) : rc;
}

int atr__connect_host_public(atr_db_t *db, const char *workspace_id,
                             char public_key[128], char fingerprint[64],
                             char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(workspace_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT public_key, fingerprint FROM "
                        "workspace_ssh_keys WHERE workspace_id = ?",
                        p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    const char *pub = atr_db_get_text(db, rows, 0);
    const char *fp = atr_db_get_text(db, rows, 1);
    snprintf(public_key, 128, "%s", pub ? pub : "");
    snprintf(fingerprint, 64, "%s", fp ? fp : "");
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}
