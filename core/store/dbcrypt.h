/* core/store/dbcrypt.h — encryption at rest of the database's secrets
 * (Coder's dbcrypt): sensitive parameter values, provisioner states,
 * sensitive resource metadata, external login tokens and workspaces' SSH
 * host keys are stored
 * sealed with AES-256-GCM under one of the operator's keys.
 *
 * A sealed value is the text "dbcrypt-<key id>-<base64(nonce | ciphertext
 * | tag)>": a random 12-byte nonce per value, and the column's name
 * ("table.column") as additional data, so a value moved into another
 * column fails to open. The key id is the first 7 hex digits of SHA-256 of
 * "aes256gcm" and the key (Coder's digest); each sealed column has a
 * *_key_id column beside it that is NULL for a value in clear, which is
 * what tells the two apart (a parameter value may well start with
 * "dbcrypt-").
 *
 * Keys come from database.encryption_keys and database.encryption_key_file
 * (base64 of 32 bytes each); the first is the primary, which seals, the
 * others only open. The table dbcrypt_keys records every key that has been
 * primary with a check value sealed under it, so that start-up can name a
 * key the database needs and the config lacks (atr_dbcrypt_setup). A key
 * never appears in a log or an error; only its id does.
 *
 * Ownership: an atr_dbcrypt_t is made once at start-up, read-only after
 * it, and freed at exit; the store points to it (atr_store_t.crypt, NULL
 * when no key is configured: values are written in clear). Threads: any
 * function on a made cipher may be called from any thread.
 */
#ifndef ATRIUM_CORE_DBCRYPT_H
#define ATRIUM_CORE_DBCRYPT_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"

#define ATR_DBCRYPT_KEY_ID_LEN 7
#define ATR_DBCRYPT_MAX_KEYS 16

/* The additional data of each sealed column. */
#define ATR_DBCRYPT_PARAM "workspace_build_parameters.value"
#define ATR_DBCRYPT_STATE "workspace_builds.provisioner_state"
#define ATR_DBCRYPT_METADATA "workspace_resource_metadata.value"
#define ATR_DBCRYPT_ACCESS_TOKEN "user_links.oauth_access_token"
#define ATR_DBCRYPT_REFRESH_TOKEN "user_links.oauth_refresh_token"
#define ATR_DBCRYPT_CHECK "dbcrypt_keys.test"
#define ATR_DBCRYPT_SSH_HOST_KEY "workspace_ssh_keys.private_key"

typedef struct atr_dbcrypt atr_dbcrypt_t;

/* A cipher over n keys (base64 text of 32 bytes each; keys[0] is the
 * primary). Errors name the key by its position, never its text: "key 2
 * of 3 is not base64 of 32 bytes (make one with `openssl rand -base64
 * 32`)"; two equal keys are an error. */
int atr_dbcrypt_new(const char *const *keys, size_t n, atr_dbcrypt_t **out,
                    char **err);
void atr_dbcrypt_free(atr_dbcrypt_t *c);
size_t atr_dbcrypt_nkeys(const atr_dbcrypt_t *c);
/* The id of key i (0 is the primary). */
const char *atr_dbcrypt_key_id(const atr_dbcrypt_t *c, size_t i);
bool atr_dbcrypt_has_key(const atr_dbcrypt_t *c, const char *key_id);

/* Seal len bytes under the primary key: *out is malloc'd NUL-terminated
 * text, *out_len its length. */
int atr_dbcrypt_seal(const atr_dbcrypt_t *c, const char *aad, const void *plain,
                     size_t len, char **out, size_t *out_len, char **err);
/* Open a sealed value: *out malloc'd (NUL-terminated, *out_len without
 * it). Errors: ATR_ENOENT when its key is not configured ("... key id
 * abc1234, which is not configured"), ATR_EINVAL when it is not a sealed
 * value, was changed, or belongs to another column. c may be NULL (then
 * every sealed value is ENOENT). */
int atr_dbcrypt_open(const atr_dbcrypt_t *c, const char *aad,
                     const void *sealed, size_t len, char **out,
                     size_t *out_len, char **err);

/* ---- at the call sites ---------------------------------------------------- */

/* A value about to be written: sealed when the store has keys and
 * `secret`, else the plaintext itself (borrowed). */
typedef struct atr_sealed {
  const void *data;
  size_t len;
  char *owned;
  char key_id[ATR_DBCRYPT_KEY_ID_LEN + 1]; /* "" in clear */
} atr_sealed_t;

int atr_sealed_make(const atr_store_t *store, const char *aad, bool secret,
                    const void *plain, size_t len, atr_sealed_t *out,
                    char **err);
/* Parameters for the value (text or blob) and its key id column. */
atr_value_t atr_sealed_text(const atr_sealed_t *s);
atr_value_t atr_sealed_blob(const atr_sealed_t *s);
atr_value_t atr_sealed_key(const atr_sealed_t *s);
void atr_sealed_free(atr_sealed_t *s);

/* A value read with its key id column (NULL: in clear) as malloc'd
 * NUL-terminated bytes; data NULL gives *out NULL. */
int atr_dbcrypt_read(const atr_store_t *store, const char *aad,
                     const void *data, size_t len, const char *key_id,
                     char **out, size_t *out_len, char **err);

/* The form in which an agent token is stored and looked up: the first 16
 * bytes of its SHA-256 written as a UUID (workspace_agents.auth_token is a
 * UUID column), so a stolen database holds no usable token and a lookup
 * stays one indexed equality. */
void atr_dbcrypt_token_digest(const char *token, char out[37]);

/* ---- start-up and the `atrium db encrypt` commands (dbcrypt_keys.c) ----- */

/* Load the keys of database.encryption_keys (a comma-separated list) and
 * database.encryption_key_file (one key a line; the file must not be
 * readable by group or others), check them against dbcrypt_keys and
 * register the primary; store->crypt is set when any key is configured.
 * Errors name the key id the database needs: "the database has values
 * encrypted with key id abc1234, which is not in
 * database.encryption_keys or database.encryption_key_file". */
int atr_dbcrypt_setup(atr_store_t *store, const char *keys,
                      const char *key_file, char **err);

/* What the commands did, per column. */
typedef struct atr_dbcrypt_counts {
  long long values[6];
  const char *names[6];
  size_t n;
  char revoked[ATR_DBCRYPT_MAX_KEYS][ATR_DBCRYPT_KEY_ID_LEN + 1];
  size_t nrevoked;
} atr_dbcrypt_counts_t;

typedef enum atr_dbcrypt_op {
  ATR_DBCRYPT_ROTATE,  /* every secret sealed under the primary key */
  ATR_DBCRYPT_DECRYPT, /* every sealed value back in clear */
  ATR_DBCRYPT_DELETE,  /* every sealed value removed (lost keys) */
} atr_dbcrypt_op_t;

/* Run op over every sealed column in batches of `batch` rows, each in its
 * own short transaction (a running server keeps working), then revoke the
 * keys no value uses any more (all of them after decrypt and delete). */
int atr_dbcrypt_run(atr_store_t *store, atr_dbcrypt_op_t op, int batch,
                    atr_dbcrypt_counts_t *counts, char **err);

/* How many values key_id seals, over every sealed column (a full scan:
 * for the rare paths only). */
int atr__dbcrypt_uses(atr_db_t *db, const char *key_id, int64_t *total,
                      char **err);

#endif
