/* core/api_files.c — uploaded files: template archives (tar or tar.gz),
 * checked on upload, stored once per uploader and content (SHA-256), and
 * served back as they came. */
#include "api_files.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "archive.h"
#include "atrium/error.h"
#include "audit.h"
#include "http_exchange.h"

static const char *const tar_types[] = {"application/x-tar", "application/tar",
                                        NULL};
static const char *const gzip_types[] = {
    "application/gzip", "application/x-gzip", "application/x-tar+gzip", NULL};

/* The canonical type to store, or NULL for one we do not take. */
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

int atr_api_file_upload(atr_api_req_t *r) {
  const char *type = accepted_type(atr__http_header(r->x, "Content-Type"));
  if (!type)
    return atr_api_error(r, 415, "Unsupported file type.",
                         "Send a tar archive (Content-Type: "
                         "application/x-tar) or a gzip-compressed one "
                         "(application/gzip).");
  if (r->body_len == 0)
    return atr_api_error(r, 400, "The file is empty.", "");
  if (r->body_len > r->env->dom.file_max_size) {
    char detail[128];
    snprintf(detail, sizeof detail,
             "Files may be at most %llu bytes (files.max_size).",
             (unsigned long long)r->env->dom.file_max_size);
    return atr_api_error(r, 413, "File too large.", detail);
  }
  atr_archive_limits_t lim = {r->env->dom.file_max_unpacked,
                              (uint64_t)r->env->dom.file_max_entries};
  char *err = NULL;
  if (atr_archive_check(r->body, r->body_len, &lim, &err) != 0) {
    atr_api_error(r, 400, "The file is not a usable template archive.",
                  err ? err : "");
    free(err);
    return 0;
  }
  char hash[65];
  sha256_hex(r->body, r->body_len, hash);
  upload_t u = {.hash = hash,
                .type = type,
                .user_id = r->actor.user_id,
                .data = r->body,
                .len = r->body_len};
  int rc = atr_db_tx(r->env->dom.store, ATR_TX_WRITE, store_file, &u, &err);
  if (rc != 0)
    atr_api_fail(r, rc, err);
  else
    atr_api_json(r, u.existed ? 200 : 201,
                 json_pack("{s:s, s:s}", "hash", u.id, "sha256", hash));
  if (rc == 0 && !u.existed)
    atr_audit_record(r->env->dom.store, &r->actor,
                     &(atr_audit_entry_t){.action = "create",
                                          .resource_type = "file",
                                          .resource_id = u.id,
                                          .resource_target = hash,
                                          .status_code = r->status});
  free(err);
  return 0;
}

int atr_api_file_get(atr_api_req_t *r) {
  const char *id = atr_api_param(r, "fileid");
  if (!atr_uuid_valid(id))
    return atr_api_error(r, 404, "File not found.", id);
  atr_db_t db;
  char *err = NULL;
  int rc = atr_db_open(r->env->dom.store, &db, &err);
  atr_db_rows_t *rows = NULL;
  atr_value_t p[] = {atr_v_text(id)};
  if (rc == 0)
    rc = atr_db_query(&db, "SELECT mimetype, data FROM files WHERE id = ?", p,
                      1, &rows, &err);
  if (rc == 0 && (rc = atr_db_next(&db, rows, &err)) == 1) {
    const char *type = atr_db_get_text(&db, rows, 0);
    size_t len = 0;
    const void *data = atr_db_get_blob(&db, rows, 1, &len);
    atr_api_raw(r, 200,
                type && strcmp(type, "application/gzip") == 0
                    ? "application/gzip"
                    : "application/x-tar",
                data, len);
  } else if (rc == 0) {
    atr_api_error(r, 404, "File not found.", id);
  } else {
    atr_api_fail(r, rc, err);
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  free(err);
  return 0;
}
