/* core/archive.h — template archives: tar, optionally gzip-compressed.
 *
 * A template version is uploaded as an archive and later unpacked into a
 * job's working directory. Unpacking must never write outside that
 * directory: absolute paths, ".." components, and symbolic or hard links
 * whose target leaves the directory are refused, as are device files,
 * FIFOs and sockets. Each refusal names the entry: "archive entry
 * \"../etc/passwd\": a path may not contain \"..\"".
 *
 * Threads: no shared state; any thread. Errors: ATR_EINVAL with *err for a
 * bad archive, ATR_EIO for a filesystem failure (with the path).
 */
#ifndef ATRIUM_CORE_ARCHIVE_H
#define ATRIUM_CORE_ARCHIVE_H

#include <stddef.h>
#include <stdint.h>

typedef struct atr_archive_limits {
  uint64_t max_unpacked_bytes; /* all regular files together; 0: no limit */
  uint64_t max_entries;        /* 0: no limit */
} atr_archive_limits_t;

/* Read every entry header (and data) without writing anything: 0 when
 * data is a tar or tar.gz that atr_archive_extract would accept. */
int atr_archive_check(const void *data, size_t len,
                      const atr_archive_limits_t *limits, char **err);

/* Unpack into dir, which must exist. Regular files get mode & 0755 (no
 * setuid/setgid/sticky), directories 0755. */
int atr_archive_extract(const void *data, size_t len, const char *dir,
                        const atr_archive_limits_t *limits, char **err);

/* Read one regular file (by its path in the archive, "./" ignored) into
 * *out (malloc'd, NUL-terminated). ATR_ENOENT when absent, ATR_EINVAL
 * when larger than max or the archive is unreadable. */
int atr_archive_read_file(const void *data, size_t len, const char *name,
                          size_t max, char **out, size_t *out_len, char **err);

#endif
