/* core/store/dbcrypt_keys.c — start-up of database encryption (dbcrypt.h):
 * the configured keys read, and checked against the table dbcrypt_keys. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/error.h"
#include "dbcrypt.h"
#include "log.h"

#define MAX_FILE 65536
#define CHECK_TEXT "atrium dbcrypt check value"
#define WHERE_KEYS "database.encryption_keys or database.encryption_key_file"

typedef struct keylist {
  char *items[ATR_DBCRYPT_MAX_KEYS + 1];
  size_t n;
  bool too_many;
} keylist_t;

static int failf(char **err, int rc, const char *fmt, const char *a,
                 const char *b) {
  if (err && asprintf(err, fmt, a, b) < 0)
    *err = NULL;
  return rc;
}

/* Split text at commas, blanks and line ends ('#' starts a comment to the
 * end of its line) into l. */
static void split_keys(const char *text, keylist_t *l) {
  const char *p = text ? text : "";
  while (*p) {
    if (*p == '#') {
      p += strcspn(p, "\n");
      continue;
    }
    size_t skip = strspn(p, ", \t\r\n");
    p += skip;
    size_t len = strcspn(p, ", \t\r\n#");
    if (len == 0)
      continue;
    if (l->n < ATR_DBCRYPT_MAX_KEYS)
      l->items[l->n++] = strndup(p, len);
    else
      l->too_many = true;
    p += len;
  }
}

static void list_free(keylist_t *l) {
  for (size_t i = 0; i < l->n; i++) {
    OPENSSL_cleanse(l->items[i], strlen(l->items[i]));
    free(l->items[i]);
  }
  l->n = 0;
}

/* The key file's text; refused when group or others may read it. */
static int read_key_file(const char *path, keylist_t *l, char **err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    if (fd >= 0)
      close(fd);
    return failf(err, ATR_ECONFIG, "database.encryption_key_file %s: %s", path,
                 strerror(errno));
  }
  char mode[8];
  snprintf(mode, sizeof mode, "%04o", (unsigned)(st.st_mode & 07777));
  int rc = 0;
  if (!S_ISREG(st.st_mode) || st.st_size > MAX_FILE)
    rc = failf(err, ATR_ECONFIG,
               "database.encryption_key_file %s is not a regular file of at "
               "most 64 KiB%s",
               path, "");
  else if (st.st_mode & 077)
    rc = failf(err, ATR_ECONFIG,
               "database.encryption_key_file %s may be read or written by "
               "group or others (mode %s); make it private: chmod 600",
               path, mode);
  char *buf = rc == 0 ? calloc(1, (size_t)st.st_size + 1) : NULL;
  if (rc == 0 && !buf)
    rc = ATR_ENOMEM;
  if (rc == 0 && read(fd, buf, (size_t)st.st_size) != st.st_size)
    rc = failf(err, ATR_ECONFIG, "database.encryption_key_file %s: %s", path,
               "short read");
  close(fd);
  if (rc == 0)
    split_keys(buf, l);
  if (buf) {
    OPENSSL_cleanse(buf, (size_t)st.st_size);
    free(buf);
  }
  return rc;
}

/* ---- the check against dbcrypt_keys ------------------------------------- */

typedef struct check {
  const atr_dbcrypt_t *c; /* NULL: no key configured */
} check_t;

/* One row of dbcrypt_keys against the configured keys. An active key that
 * is not configured is needed only when it seals a value: one made primary
 * and dropped again before it sealed anything is not. */
static int check_row(atr_db_t *db, const atr_dbcrypt_t *c, const char *id,
                     const char *state, const char *test, char **err) {
  bool active = strcmp(state, "active") == 0;
  int64_t n = 0;
  int rc = 0;
  if (active && !atr_dbcrypt_has_key(c, id) &&
      (rc = atr__dbcrypt_uses(db, id, &n, err)) != 0)
    return rc;
  if (!atr_dbcrypt_has_key(c, id))
    return active && n > 0
               ? failf(err, ATR_ECONFIG,
                       "the database has values encrypted with key id %s, "
                       "which is not in " WHERE_KEYS
                       "%s; add that key (or, if it is lost, run `atrium "
                       "db encrypt delete`)",
                       id, "")
               : 0;
  char *plain = NULL, *why = NULL;
  size_t len = 0;
  rc = atr_dbcrypt_open(c, ATR_DBCRYPT_CHECK, test, strlen(test), &plain, &len,
                        &why);
  bool ok = rc == 0 && len == strlen(CHECK_TEXT) &&
            memcmp(plain, CHECK_TEXT, len) == 0;
  free(plain);
  free(why);
  if (!ok)
    return failf(err, ATR_ECONFIG,
                 "the configured key with id %s does not open the database's "
                 "check value for that id: it is not the key the database "
                 "was encrypted with%s",
                 id, "");
  if (!active && strcmp(id, atr_dbcrypt_key_id(c, 0)) == 0)
    return failf(err, ATR_ECONFIG,
                 "the primary database encryption key (key id %s) was revoked "
                 "by `atrium db encrypt`; put a new key first in " WHERE_KEYS
                 "%s",
                 id, "");
  return 0;
}

static int register_primary(atr_db_t *db, const atr_dbcrypt_t *c, char **err) {
  char *test = NULL;
  size_t len = 0;
  int rc = atr_dbcrypt_seal(c, ATR_DBCRYPT_CHECK, CHECK_TEXT,
                            strlen(CHECK_TEXT), &test, &len, err);
  atr_value_t p[] = {atr_v_text(atr_dbcrypt_key_id(c, 0)),
                     atr_v_time(atr_db_now_us()), atr_v_text(test)};
  int64_t changes = 0;
  if (rc == 0)
    rc = atr_db_exec(db,
                     "INSERT INTO dbcrypt_keys (key_id, state, created_at, "
                     "test) VALUES (?, 'active', ?, ?) ON CONFLICT DO NOTHING",
                     p, 3, &changes, err);
  if (rc == 0 && changes > 0)
    atr_log(ATR_LOG_INFO, "db", "database encryption key id %s is now primary",
            atr_dbcrypt_key_id(c, 0));
  free(test);
  return rc;
}

static int check_tx(atr_db_t *db, void *ud, char **err) {
  const check_t *k = ud;
  atr_db_rows_t *rows = NULL;
  bool primary_known = false;
  int rc = atr_db_query(db, "SELECT key_id, state, test FROM dbcrypt_keys",
                        NULL, 0, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    const char *id = atr_db_get_text(db, rows, 0);
    rc = check_row(db, k->c, id ? id : "", atr_db_get_text(db, rows, 1),
                   atr_db_get_text(db, rows, 2), err);
    if (k->c && id && strcmp(id, atr_dbcrypt_key_id(k->c, 0)) == 0)
      primary_known = true;
  }
  atr_db_rows_close(db, rows);
  if (rc < 0)
    return rc;
  return k->c && !primary_known ? register_primary(db, k->c, err) : 0;
}

int atr_dbcrypt_setup(atr_store_t *store, const char *keys,
                      const char *key_file, char **err) {
  keylist_t l = {0};
  split_keys(keys, &l);
  int rc = key_file && *key_file ? read_key_file(key_file, &l, err) : 0;
  if (rc == 0 && l.too_many)
    rc = failf(err, ATR_ECONFIG,
               "more than 16 database encryption keys are configured in "
               "%s%s",
               WHERE_KEYS, "");
  atr_dbcrypt_t *c = NULL;
  if (rc == 0 && l.n > 0)
    rc = atr_dbcrypt_new((const char *const *)l.items, l.n, &c, err);
  list_free(&l);
  check_t k = {c};
  if (rc == 0)
    rc = atr_db_tx(store, ATR_TX_WRITE, check_tx, &k, err);
  if (rc != 0) {
    atr_dbcrypt_free(c);
    return rc;
  }
  atr_dbcrypt_free(store->crypt);
  store->crypt = c;
  if (!c)
    atr_log(ATR_LOG_WARN, "db",
            "no database encryption key is configured: secrets are stored "
            "in clear (see docs/security.md, \"Database encryption\")");
  else
    atr_log(ATR_LOG_INFO, "db",
            "database encryption: primary key id %s, %zu key%s configured",
            atr_dbcrypt_key_id(c, 0), atr_dbcrypt_nkeys(c),
            atr_dbcrypt_nkeys(c) == 1 ? "" : "s");
  return 0;
}
