/* core/domain/files.h — uploaded files: the template archives that
 * template versions are made from.
 *
 * An upload must be a tar archive, plain or gzip-compressed, within the
 * deployment's limits (files.max_size, files.max_unpacked,
 * files.max_entries in atr_domain_t) and one that atr_archive_extract
 * would accept. The same uploader sending the same bytes (by SHA-256) gets
 * the file they stored before; only a new file is audited. A download
 * gives the bytes back as they came, with the type they were stored as.
 *
 * Every function checks the actor's permission on files (rbac.h) itself
 * and explains a refusal in an atr_fault_t: ATR_ENOTSUP for a type that is
 * not taken, ATR_ERANGE for a file over files.max_size (the API answers
 * them 415 and 413), ATR_EINVAL for an empty or unusable archive.
 *
 * Threads: any; each call opens its own connection. Memory: an atr_file_t
 * owns its data until atr_file_clear().
 */
#ifndef ATRIUM_CORE_DOMAIN_FILES_H
#define ATRIUM_CORE_DOMAIN_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "db.h"
#include "domain.h"

/* What an upload stored. */
typedef struct atr_file_stored {
  char id[37];
  char sha256[65]; /* hex */
  bool existed;    /* the uploader had sent these bytes before */
} atr_file_stored_t;

/* A stored file's bytes and type. */
typedef struct atr_file {
  const char *mimetype; /* "application/x-tar" or "application/gzip" */
  void *data;
  size_t len;
} atr_file_t;

/* Store data uploaded as content_type (a Content-Type value: tar types
 * become "application/x-tar", gzip types "application/gzip"). */
int atr_file_upload(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *content_type, const void *data, size_t len,
                    atr_file_stored_t *out, atr_fault_t *fault);
/* A file by id: ATR_ENOENT ("File not found.") when there is none. */
int atr_file_get(const atr_domain_t *dom, const atr_actor_t *actor,
                 const char *id, atr_file_t *out, atr_fault_t *fault);
void atr_file_clear(atr_file_t *f);

/* For other domain modules, on their connection, without a permission
 * check: the member `name` of the archive stored as file_id, at most max
 * bytes, into *out (malloc'd, NUL-terminated). ATR_ENOENT with *err
 * saying how to upload one when there is no such file; the errors of
 * atr_archive_read_file otherwise. */
int atr_file_read_member(atr_db_t *db, const char *file_id, const char *name,
                         size_t max, char **out, size_t *out_len, char **err);

#endif
