/* storage_sqlite: whole-database backup to a file and restore from one.
 *
 * Both use SQLite's online backup API, page by page, in one step, so the
 * copy is one consistent snapshot while other connections keep working.
 *
 * backup(path) copies the live database into <path>.tmp from a pooled
 * connection, turns the copy into a single self-contained file (rollback
 * journal mode, no -wal beside it), and renames it to <path> only when all
 * of that worked: a failed backup never leaves a partial file under the
 * target's name.
 *
 * restore(path) first checks that <path> is an SQLite database (its header,
 * then PRAGMA quick_check, opened read-only), then copies it over the live
 * database from a pooled connection, holding the writer gate so no write
 * transaction of this process interleaves. Every connection sees the
 * restored content afterwards.
 *
 * Threads: any; each call uses its own pooled connection.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Copy src into dst; SQLITE_BUSY/LOCKED are retried until the deadline. */
static int copy_db(sqlite3 *dst, sqlite3 *src, uint64_t deadline_ns,
                   const char *prefix, char **err) {
  sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
  if (b == NULL)
    return ss_fail_db(err, dst, sqlite3_extended_errcode(dst), false, prefix);
  int rc;
  while ((rc = sqlite3_backup_step(b, -1)) != SQLITE_DONE) {
    if (!ss_is_busy(rc) || ss_now_ns() >= deadline_ns)
      break;
    ss_sleep_ns(1000000);
  }
  int frc = sqlite3_backup_finish(b);
  if (rc == SQLITE_DONE && frc == SQLITE_OK)
    return 0;
  return ss_fail_db(err, dst, rc != SQLITE_DONE ? rc : frc, false, prefix);
}

static void remove_db_files(const char *path) {
  static const char *const suffixes[] = {"", "-journal", "-wal", "-shm"};
  char name[4096 + 16];
  for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
    snprintf(name, sizeof name, "%s%s", path, suffixes[i]);
    unlink(name);
  }
}

/* Make a completed rename durable: fsync the directory holding path. */
static void sync_parent(const char *path) {
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash == NULL)
    snprintf(dir, sizeof dir, ".");
  else if (slash == dir)
    dir[1] = '\0';
  else
    *slash = '\0';
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

static int backup_into(ss_ctx_t *c, const char *tmp, const char *prefix,
                       char **err) {
  atr_db_conn_t *conn = NULL;
  int rc = ss_get(c, &conn, err);
  if (rc != 0)
    return rc;
  sqlite3 *dst = NULL;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int src = sqlite3_open_v2(tmp, &dst, flags, NULL);
  if (src != SQLITE_OK) {
    rc = ss_fail_db(err, dst, src, false, prefix);
  } else {
    sqlite3_extended_result_codes(dst, 1);
    rc = copy_db(dst, conn->db, ss_deadline_ns(c), prefix, err);
  }
  ss_put(c, conn);
  /* The copy carries the live database's WAL flag; a backup is easier to
   * move around as one file. */
  if (rc == 0 && (src = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL,
                                     NULL, NULL)) != SQLITE_OK)
    rc = ss_fail_db(err, dst, src, false, prefix);
  if ((src = sqlite3_close(dst)) != SQLITE_OK && rc == 0)
    rc = ss_fail(err, src, NULL, false, prefix);
  return rc;
}

int ss_backup(void *ctx, const char *path, char **err) {
  ss_ctx_t *c = ctx;
  if (c == NULL || path == NULL || path[0] == '\0')
    return ss_failf(err, ATR_EINVAL, "sqlite: backup needs a file name");
  char tmp[4096], prefix[4096 + 64];
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return ss_failf(err, ATR_EINVAL, "backup to %.200s...: name too long",
                    path);
  snprintf(prefix, sizeof prefix, "backup to %s: ", path);
  remove_db_files(tmp); /* a leftover from a crashed backup */
  int rc = backup_into(c, tmp, prefix, err);
  if (rc == 0 && rename(tmp, path) != 0)
    rc = ss_failf(err, ATR_EIO, "backup to %s: cannot rename %s to it: %s",
                  path, tmp, strerror(errno));
  if (rc != 0) {
    remove_db_files(tmp);
    return rc;
  }
  sync_parent(path);
  c->host->log(c->h, ATR_LOG_INFO, "backed the database up to %s", path);
  return 0;
}

/* ---- restore */

static int check_header(const char *path, char **err) {
  static const char magic[16] = "SQLite format 3"; /* and its NUL */
  char head[16];
  FILE *f = fopen(path, "rb");
  if (f == NULL)
    return ss_failf(err, errno == ENOENT ? ATR_ENOENT : ATR_EIO,
                    "restore from %s: cannot read it: %s", path,
                    strerror(errno));
  size_t n = fread(head, 1, sizeof head, f);
  fclose(f);
  if (n != sizeof head || memcmp(head, magic, sizeof magic) != 0)
    return ss_failf(err, ATR_EINVAL,
                    "restore from %s: %s is not an SQLite database (it does "
                    "not begin with the SQLite header); nothing was changed",
                    path, path);
  return 0;
}

/* One row, one column, as text (for a PRAGMA); *out malloc'd. */
static int pragma_text(sqlite3 *db, const char *sql, char **out) {
  sqlite3_stmt *st = NULL;
  *out = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *text = (const char *)sqlite3_column_text(st, 0);
    *out = strdup(text ? text : "");
  }
  sqlite3_finalize(st);
  if (*out != NULL)
    return SQLITE_OK;
  if (rc == SQLITE_ROW)
    return SQLITE_NOMEM;
  return rc == SQLITE_DONE || rc == SQLITE_OK ? SQLITE_ERROR : rc;
}

/* The file is a sound database whose pages fit the live database's (a
 * database in WAL mode cannot change its page size). */
static int check_source(sqlite3 *src, sqlite3 *live, const char *path,
                        char **err) {
  char prefix[4096 + 64], *check = NULL, *src_ps = NULL, *live_ps = NULL;
  snprintf(prefix, sizeof prefix,
           "restore from %s: %s is not a readable SQLite database: ", path,
           path);
  int rc = pragma_text(src, "PRAGMA quick_check", &check);
  if (rc != SQLITE_OK) {
    rc = ss_fail_db(err, src, rc, false, prefix);
  } else if (strcmp(check, "ok") != 0) {
    rc = ss_failf(err, ATR_EINVAL,
                  "restore from %s: %s failed PRAGMA quick_check (%.200s); "
                  "nothing was changed",
                  path, path, check);
  } else if (pragma_text(src, "PRAGMA page_size", &src_ps) != SQLITE_OK ||
             pragma_text(live, "PRAGMA page_size", &live_ps) != SQLITE_OK) {
    rc = ss_fail_db(err, src, SQLITE_ERROR, false, prefix);
  } else if (strcmp(src_ps, live_ps) != 0) {
    rc = ss_failf(err, ATR_EINVAL,
                  "restore from %s: its page size is %s bytes but the live "
                  "database's is %s; convert it first with sqlite3 %s "
                  "'PRAGMA journal_mode=DELETE; PRAGMA page_size=%s; VACUUM'",
                  path, src_ps, live_ps, path, live_ps);
  }
  free(check);
  free(src_ps);
  free(live_ps);
  return rc;
}

static bool same_file(const char *a, const char *b) {
  char *ra = realpath(a, NULL), *rb = realpath(b, NULL);
  bool same = ra != NULL && rb != NULL && strcmp(ra, rb) == 0;
  free(ra);
  free(rb);
  return same;
}

int ss_restore(void *ctx, const char *path, char **err) {
  ss_ctx_t *c = ctx;
  if (c == NULL || path == NULL || path[0] == '\0')
    return ss_failf(err, ATR_EINVAL, "sqlite: restore needs a file name");
  int rc = check_header(path, err);
  if (rc != 0)
    return rc;
  if (same_file(path, c->db_path))
    return ss_failf(err, ATR_EINVAL,
                    "restore from %s: that is the live database itself", path);
  char prefix[4096 + 64];
  snprintf(prefix, sizeof prefix, "restore from %s: ", path);
  sqlite3 *src = NULL;
  int src_rc = sqlite3_open_v2(
      path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  if (src_rc != SQLITE_OK) {
    rc = ss_fail_db(err, src, src_rc, false, prefix);
    sqlite3_close(src);
    return rc;
  }
  sqlite3_extended_result_codes(src, 1);
  atr_db_conn_t *conn = NULL;
  uint64_t deadline = ss_deadline_ns(c);
  rc = ss_get(c, &conn, err);
  if (rc == 0)
    rc = check_source(src, conn->db, path, err);
  if (rc == 0 && (rc = ss_gate_acquire(c, deadline, err)) == 0) {
    rc = copy_db(conn->db, src, deadline, prefix, err);
    ss_gate_release(c);
  }
  if (conn != NULL)
    ss_put(c, conn);
  sqlite3_close(src);
  if (rc == 0)
    c->host->log(c->h, ATR_LOG_INFO, "restored the database from %s", path);
  return rc;
}
