/* core/agent/agent_ssh_key.c — the SSH server's host key from the
 * manifest's ssh_host_key.
 *
 * libssh 0.10 (Debian 12) "imports" a PKCS#8 ed25519 key ("BEGIN PRIVATE
 * KEY", what OpenSSL writes) without its public half: the import succeeds
 * and every key exchange then fails ("ssh_get_key_params: Out of
 * memory"). So such a key is read with OpenSSL and handed to libssh in
 * OpenSSH's own format, which it reads whole. Every key is checked for a
 * usable public half before it is accepted.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_ssh_internal.h"
#include "agent_util.h"
#include "log.h"

#define HOST_KEY_MAX 16384 /* an RSA 8192 key in PEM is about 6.5 KB */
#define ED_LEN 32

typedef struct blob {
  unsigned char b[512];
  size_t n;
} blob_t;

static void put_u32(blob_t *o, uint32_t v) {
  for (int i = 3; i >= 0; i--)
    o->b[o->n++] = (unsigned char)(v >> (8 * i));
}

static void put_str(blob_t *o, const void *p, size_t len) {
  put_u32(o, (uint32_t)len);
  memcpy(o->b + o->n, p, len);
  o->n += len;
}

static int no_passphrase(char *buf, int size, int rw, void *u) {
  (void)buf, (void)size, (void)rw, (void)u;
  return -1; /* an encrypted key is refused, never prompted for */
}

/* "openssh-key-v1" (OpenSSH's PROTOCOL.key), unencrypted, for the ed25519
 * key in pem; NULL when pem holds no ed25519 key OpenSSL can read. */
static char *ed25519_as_openssh(const char *pem) {
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *pk =
      bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
  BIO_free(bio);
  unsigned char seed[ED_LEN], pub[ED_LEN];
  size_t sl = ED_LEN, pl = ED_LEN;
  bool ok = pk && EVP_PKEY_get_base_id(pk) == EVP_PKEY_ED25519 &&
            EVP_PKEY_get_raw_private_key(pk, seed, &sl) == 1 &&
            EVP_PKEY_get_raw_public_key(pk, pub, &pl) == 1 && sl == ED_LEN &&
            pl == ED_LEN;
  EVP_PKEY_free(pk);
  if (!ok) {
    OPENSSL_cleanse(seed, sizeof seed);
    return NULL;
  }
  static const char type[] = "ssh-ed25519";
  blob_t pubkey = {.n = 0}, priv = {.n = 0}, all = {.n = 0};
  put_str(&pubkey, type, sizeof type - 1);
  put_str(&pubkey, pub, ED_LEN);
  put_u32(&priv, 0x61747269); /* the two check words: equal */
  put_u32(&priv, 0x61747269);
  put_str(&priv, type, sizeof type - 1);
  put_str(&priv, pub, ED_LEN);
  unsigned char sk[2 * ED_LEN]; /* the seed, then the public key */
  memcpy(sk, seed, ED_LEN);
  memcpy(sk + ED_LEN, pub, ED_LEN);
  put_str(&priv, sk, sizeof sk);
  put_str(&priv, "", 0); /* comment */
  for (unsigned char pad = 1; priv.n % 8; pad++)
    priv.b[priv.n++] = pad;
  static const char magic[] = "openssh-key-v1"; /* with its NUL */
  memcpy(all.b, magic, sizeof magic);
  all.n = sizeof magic;
  put_str(&all, "none", 4);
  put_str(&all, "none", 4);
  put_str(&all, "", 0);
  put_u32(&all, 1);
  put_str(&all, pubkey.b, pubkey.n);
  put_str(&all, priv.b, priv.n);
  unsigned char b64[4 * (sizeof all.b / 3 + 1) + 1];
  int blen = EVP_EncodeBlock(b64, all.b, (int)all.n);
  char *out = NULL;
  if (asprintf(&out,
               "-----BEGIN OPENSSH PRIVATE KEY-----\n%.*s\n"
               "-----END OPENSSH PRIVATE KEY-----\n",
               blen, (const char *)b64) < 0)
    out = NULL;
  OPENSSL_cleanse(seed, sizeof seed);
  OPENSSL_cleanse(sk, sizeof sk);
  OPENSSL_cleanse(&priv, sizeof priv);
  OPENSSL_cleanse(&all, sizeof all);
  OPENSSL_cleanse(b64, sizeof b64);
  return out;
}

static void free_secret(char *s) {
  if (s) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

/* Whether key has the public half a key exchange needs. */
static bool usable(ssh_key key) {
  ssh_key pub = NULL;
  char *b64 = NULL;
  bool ok = ssh_key_is_private(key) &&
            ssh_pki_export_privkey_to_pubkey(key, &pub) == SSH_OK &&
            ssh_pki_export_pubkey_base64(pub, &b64) == SSH_OK;
  ssh_string_free_char(b64);
  ssh_key_free(pub);
  return ok;
}

ssh_key ssh_host_key_load(const char *pem, char **err) {
  ssh_key key = NULL;
  if (!pem) {
    if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK) {
      *err =
          agent_strf("ssh: could not generate an ephemeral ed25519 host key");
      return NULL;
    }
    atr_log(ATR_LOG_WARN, "agent",
            "ssh: the manifest has no ssh_host_key, so the SSH server uses "
            "an ephemeral ed25519 key: clients see a new host key after "
            "every agent restart");
    return key;
  }
  if (strnlen(pem, HOST_KEY_MAX + 1) > HOST_KEY_MAX) {
    *err = agent_strf("ssh_host_key: longer than %d bytes", HOST_KEY_MAX);
    return NULL;
  }
  char *openssh = ed25519_as_openssh(pem);
  int rc = ssh_pki_import_privkey_base64(openssh ? openssh : pem, NULL, NULL,
                                         NULL, &key);
  free_secret(openssh);
  /* Never the key itself in an error: it is a secret. */
  if (rc != SSH_OK || !key || !usable(key)) {
    ssh_key_free(key);
    *err = agent_strf("ssh_host_key: not an unencrypted private key in OpenSSH "
                      "or PEM (PKCS#1, PKCS#8) form");
    return NULL;
  }
  return key;
}
