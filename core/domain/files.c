/* core/domain/files.c — see files.h. */
#include "files.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "archive.h"
#include "atrium/error.h"
#include "audit.h"

static const char *const tar_types[] = {"application/x-tar", "application/tar",
                                        NULL};
static const char *const gzip_types[] = {
    "application/gzip", "application/x-gzip", "application/x-tar+gzip", NULL};

/* The canonical type to store, or NULL for one we do not take. Parameters
 * after the type (";charset=...") are ignored. */
static const char *accepted_type(const char *header) {
  if (!header)
    return NULL;
  size_t n = strcspn(header, "; ");
  for (const char *const *t = tar_types; *t; t++)
    if (strlen(*t) == n && strncasecmp(header, *t, n) == 0)
      return "application/x-tar";
  for (const char *const *t = gzip_types; *t; t++)
    if (strlen(*t) == n && strncasecmp(header, *t, n) == 0)
      return "application/gzip";
  return NULL;
}

static void sha256_hex(const void *data, size_t len, char out[65]) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(data, len, digest);
  for (size_t i = 0; i < sizeof digest; i++)
    snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* 0 when the actor may act on files; else the refusal in fault. */
static int files_allowed(const atr_domain_t *dom, const atr_actor_t *actor,
                         atr_action_t act, atr_fault_t *fault) {
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0) {
    rc = atr_actor_allowed(&db, actor, NULL, ATR_RES_FILE, act, false, &err);
    atr_db_close(&db);
  }
  if (rc == ATR_EPERM)
    atr_fault_set(fault, rc, "Forbidden.", "%s", err ? err : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

/* What makes an upload unusable, in the order the user should hear it. */
static int check_upload(const atr_domain_t *dom, const char *type,
                        const void *data, size_t len, atr_fault_t *fault) {
  if (!type)
    return atr_fault_set(fault, ATR_ENOTSUP, "Unsupported file type.",
                         "Send a tar archive (Content-Type: "
                         "application/x-tar) or a gzip-compressed one "
                         "(application/gzip).");
  if (len == 0)
    return atr_fault_set(fault, ATR_EINVAL, "The file is empty.", "%s", "");
  if (len > dom->file_max_size)
    return atr_fault_set(fault, ATR_ERANGE, "File too large.",
                         "Files may be at most %llu bytes (files.max_size).",
                         (unsigned long long)dom->file_max_size);
  atr_archive_limits_t lim = {dom->file_max_unpacked,
                              (uint64_t)dom->file_max_entries};
  char *err = NULL;
  int rc = atr_archive_check(data, len, &lim, &err);
  if (rc != 0)
    atr_fault_set(fault, ATR_EINVAL,
                  "The file is not a usable template archive.", "%s",
                  err ? err : "");
  free(err);
  return rc != 0 ? ATR_EINVAL : 0;
}

typedef struct upload {
  const char *hash, *type, *user_id;
  const void *data;
  size_t len;
  char id[37];
  bool existed;
} upload_t;

/* The same uploader sending the same bytes gets the same file back. */
static int store_file(atr_db_t *db, void *ud, char **err) {
  upload_t *u = ud;
  atr_value_t k[] = {atr_v_text(u->hash), atr_v_text(u->user_id)};
  char *id = NULL;
  int rc = atr_db_query_text(db,
                             "SELECT id FROM files WHERE hash = ? AND "
                             "created_by = ?",
                             k, 2, &id, err);
  if (rc == 0) {
    snprintf(u->id, sizeof u->id, "%s", id);
    free(id);
    u->existed = true;
    return 0;
  }
  if (rc != ATR_ENOENT)
    return rc;
  free(*err);
  *err = NULL;
  atr_db_new_uuid(u->id);
  atr_value_t p[] = {atr_v_text(u->id),           atr_v_text(u->hash),
                     atr_v_time(atr_db_now_us()), atr_v_text(u->user_id),
                     atr_v_text(u->type),         atr_v_blob(u->data, u->len)};
  return atr_db_exec(db,
                     "INSERT INTO files (id, hash, created_at, created_by, "
                     "mimetype, data) VALUES (?, ?, ?, ?, ?, ?)",
                     p, 6, NULL, err);
}

int atr_file_upload(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *content_type, const void *data, size_t len,
                    atr_file_stored_t *out, atr_fault_t *fault) {
  memset(out, 0, sizeof *out);
  const char *type = accepted_type(content_type);
  int rc = files_allowed(dom, actor, ATR_ACT_CREATE, fault);
  if (rc == 0)
    rc = check_upload(dom, type, data, len, fault);
  if (rc != 0)
    return rc;
  sha256_hex(data, len, out->sha256);
  upload_t u = {.hash = out->sha256,
                .type = type,
                .user_id = actor->user_id,
                .data = data,
                .len = len};
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_WRITE, store_file, &u, &err);
  if (rc != 0) {
    atr_fault_internal(fault, rc, err);
    free(err);
    return rc;
  }
  snprintf(out->id, sizeof out->id, "%s", u.id);
  out->existed = u.existed;
  if (!u.existed)
    atr_audit_record(dom->store, actor,
                     &(atr_audit_entry_t){.action = "create",
                                          .resource_type = "file",
                                          .resource_id = u.id,
                                          .resource_target = out->sha256,
                                          .status_code = 201});
  return 0;
}

/* The file's type and a copy of its bytes; ATR_ENOENT when there is none. */
static int load_file(atr_db_t *db, const char *id, atr_file_t *out,
                     char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, "SELECT mimetype, data FROM files WHERE id = ?", p,
                        1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    const char *type = atr_db_get_text(db, rows, 0);
    size_t len = 0;
    const void *data = atr_db_get_blob(db, rows, 1, &len);
    out->mimetype = type && strcmp(type, "application/gzip") == 0
                        ? "application/gzip"
                        : "application/x-tar";
    out->data = malloc(len ? len : 1);
    out->len = len;
    rc = out->data ? 0 : ATR_ENOMEM;
    if (out->data && len)
      memcpy(out->data, data, len);
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

int atr_file_get(const atr_domain_t *dom, const atr_actor_t *actor,
                 const char *id, atr_file_t *out, atr_fault_t *fault) {
  memset(out, 0, sizeof *out);
  int rc = files_allowed(dom, actor, ATR_ACT_READ, fault);
  if (rc != 0)
    return rc;
  if (!atr_uuid_valid(id))
    return atr_fault_set(fault, ATR_ENOENT, "File not found.", "%s",
                         id ? id : "");
  atr_db_t db;
  char *err = NULL;
  rc = atr_db_open(dom->store, &db, &err);
  if (rc == 0) {
    rc = load_file(&db, id, out, &err);
    atr_db_close(&db);
  }
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "File not found.", "%s", id);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

void atr_file_clear(atr_file_t *f) {
  if (!f)
    return;
  free(f->data);
  memset(f, 0, sizeof *f);
}

int atr_file_read_member(atr_db_t *db, const char *file_id, const char *name,
                         size_t max, char **out, size_t *out_len, char **err) {
  *out = NULL;
  *out_len = 0;
  atr_value_t p[] = {atr_v_uuid_or_null(file_id)};
  atr_db_rows_t *rows = NULL;
  int rc =
      atr_db_query(db, "SELECT data FROM files WHERE id = ?", p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    size_t len = 0;
    const void *data = atr_db_get_blob(db, rows, 0, &len);
    free(*err);
    *err = NULL;
    rc = atr_archive_read_file(data, len, name, max, out, out_len, err);
  } else if (rc == 0) {
    rc = ATR_ENOENT;
    *err = strdup("No such file; upload it with POST /api/v2/files.");
  }
  atr_db_rows_close(db, rows);
  return rc;
}
