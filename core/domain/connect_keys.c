/* core/domain/connect_keys.c — see connect.h: each workspace's SSH host
 * key, made with OpenSSL the first time it is needed and kept (sealed
 * when the deployment has a database encryption key) for the
 * workspace's life. The private key is written through a BIO that
 * cleanses its memory when freed, and cleansed from every buffer of
 * ours. */
#include "connect.h"

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "dbcrypt.h"

#define ED25519_LEN 32
#define KEY_TYPE "ssh-ed25519"
/* The public key as SSH writes it on the wire (RFC 8709): string
 * "ssh-ed25519", string key. */
#define BLOB_LEN (4 + sizeof KEY_TYPE - 1 + 4 + ED25519_LEN)

typedef struct host_key {
  char *pem; /* PKCS#8; cleansed and freed by host_key_free */
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

static void put_u32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24);
  p[1] = (unsigned char)(v >> 16);
  p[2] = (unsigned char)(v >> 8);
  p[3] = (unsigned char)v;
}

/* "ssh-ed25519 <base64 blob>" and "SHA256:<base64 of its SHA-256, no
 * padding>", as OpenSSH writes them. */
static void describe(const unsigned char raw[ED25519_LEN], host_key_t *k) {
  unsigned char blob[BLOB_LEN], sum[SHA256_DIGEST_LENGTH];
  size_t n = sizeof KEY_TYPE - 1;
  put_u32(blob, (uint32_t)n);
  memcpy(blob + 4, KEY_TYPE, n);
  put_u32(blob + 4 + n, ED25519_LEN);
  memcpy(blob + 8 + n, raw, ED25519_LEN);
  unsigned char b64[100];
  EVP_EncodeBlock(b64, blob, (int)sizeof blob);
  snprintf(k->public_key, sizeof k->public_key, "%s %.100s", KEY_TYPE,
           (const char *)b64);
  SHA256(blob, sizeof blob, sum);
  int len = EVP_EncodeBlock(b64, sum, (int)sizeof sum);
  while (len > 0 && b64[len - 1] == '=')
    b64[--len] = '\0';
  snprintf(k->fingerprint, sizeof k->fingerprint, "SHA256:%.*s", len,
           (const char *)b64);
}

static int pem_of(EVP_PKEY *pkey, host_key_t *k, char **err) {
  BIO *bio = BIO_new(BIO_s_secmem());
  BUF_MEM *mem = NULL;
  int rc = 0;
  /* PEM_write_bio_PrivateKey writes PKCS#8 ("BEGIN PRIVATE KEY"),
   * unencrypted: the database seal protects it at rest. */
  if (!bio ||
      PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1)
    rc = fail(err, "cannot write the key as PEM");
  if (rc == 0)
    BIO_get_mem_ptr(bio, &mem);
  if (rc == 0 && (!mem || !(k->pem = malloc(mem->length + 1))))
    rc = ATR_ENOMEM;
  if (rc == 0) {
    memcpy(k->pem, mem->data, mem->length);
    k->pem[mem->length] = '\0';
    k->pem_len = mem->length;
  }
  BIO_free(bio); /* a secure-heap BIO cleanses its memory */
  return rc;
}

static int make_key(host_key_t *k, char **err) {
  EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if (!pkey)
    return fail(err, "cannot make an ed25519 key");
  unsigned char raw[ED25519_LEN];
  size_t raw_len = sizeof raw;
  int rc = EVP_PKEY_get_raw_public_key(pkey, raw, &raw_len) == 1 &&
                   raw_len == ED25519_LEN
               ? 0
               : fail(err, "cannot read the public key");
  if (rc == 0)
    rc = pem_of(pkey, k, err);
  if (rc == 0)
    describe(raw, k);
  EVP_PKEY_free(pkey);
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
