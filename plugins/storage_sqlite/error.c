/* storage_sqlite: SQLite result codes to ATR_E* codes and one-line messages.
 *
 * Every message crossing the boundary reads
 *   "sqlite: <sqlite3_errmsg> (<SQLITE_EXTENDED_CODE_NAME>)"
 * optionally after a prefix that says what was being done ("cannot open
 * /srv/atrium/atrium.db: "). SQLite has no public function giving a code's
 * name (sqlite3_errstr gives its English text), so the names come from the
 * table below.
 *
 * Threads: pure functions; any thread.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Every primary and extended result code SQLite 3.40 can return. */
#define SS_CODES(X)                                                            \
  X(SQLITE_ERROR)                                                              \
  X(SQLITE_INTERNAL)                                                           \
  X(SQLITE_PERM)                                                               \
  X(SQLITE_ABORT)                                                              \
  X(SQLITE_BUSY)                                                               \
  X(SQLITE_LOCKED)                                                             \
  X(SQLITE_NOMEM)                                                              \
  X(SQLITE_READONLY)                                                           \
  X(SQLITE_INTERRUPT)                                                          \
  X(SQLITE_IOERR)                                                              \
  X(SQLITE_CORRUPT)                                                            \
  X(SQLITE_NOTFOUND)                                                           \
  X(SQLITE_FULL)                                                               \
  X(SQLITE_CANTOPEN)                                                           \
  X(SQLITE_PROTOCOL)                                                           \
  X(SQLITE_EMPTY)                                                              \
  X(SQLITE_SCHEMA)                                                             \
  X(SQLITE_TOOBIG)                                                             \
  X(SQLITE_CONSTRAINT)                                                         \
  X(SQLITE_MISMATCH)                                                           \
  X(SQLITE_MISUSE)                                                             \
  X(SQLITE_NOLFS)                                                              \
  X(SQLITE_AUTH)                                                               \
  X(SQLITE_FORMAT)                                                             \
  X(SQLITE_RANGE)                                                              \
  X(SQLITE_NOTADB)                                                             \
  X(SQLITE_NOTICE)                                                             \
  X(SQLITE_WARNING)                                                            \
  X(SQLITE_ERROR_MISSING_COLLSEQ)                                              \
  X(SQLITE_ERROR_RETRY)                                                        \
  X(SQLITE_ERROR_SNAPSHOT)                                                     \
  X(SQLITE_IOERR_READ)                                                         \
  X(SQLITE_IOERR_SHORT_READ)                                                   \
  X(SQLITE_IOERR_WRITE)                                                        \
  X(SQLITE_IOERR_FSYNC)                                                        \
  X(SQLITE_IOERR_DIR_FSYNC)                                                    \
  X(SQLITE_IOERR_TRUNCATE)                                                     \
  X(SQLITE_IOERR_FSTAT)                                                        \
  X(SQLITE_IOERR_UNLOCK)                                                       \
  X(SQLITE_IOERR_RDLOCK)                                                       \
  X(SQLITE_IOERR_DELETE)                                                       \
  X(SQLITE_IOERR_BLOCKED)                                                      \
  X(SQLITE_IOERR_NOMEM)                                                        \
  X(SQLITE_IOERR_ACCESS)                                                       \
  X(SQLITE_IOERR_CHECKRESERVEDLOCK)                                            \
  X(SQLITE_IOERR_LOCK)                                                         \
  X(SQLITE_IOERR_CLOSE)                                                        \
  X(SQLITE_IOERR_DIR_CLOSE)                                                    \
  X(SQLITE_IOERR_SHMOPEN)                                                      \
  X(SQLITE_IOERR_SHMSIZE)                                                      \
  X(SQLITE_IOERR_SHMLOCK)                                                      \
  X(SQLITE_IOERR_SHMMAP)                                                       \
  X(SQLITE_IOERR_SEEK)                                                         \
  X(SQLITE_IOERR_DELETE_NOENT)                                                 \
  X(SQLITE_IOERR_MMAP)                                                         \
  X(SQLITE_IOERR_GETTEMPPATH)                                                  \
  X(SQLITE_IOERR_CONVPATH)                                                     \
  X(SQLITE_IOERR_VNODE)                                                        \
  X(SQLITE_IOERR_AUTH)                                                         \
  X(SQLITE_IOERR_BEGIN_ATOMIC)                                                 \
  X(SQLITE_IOERR_COMMIT_ATOMIC)                                                \
  X(SQLITE_IOERR_ROLLBACK_ATOMIC)                                              \
  X(SQLITE_IOERR_DATA)                                                         \
  X(SQLITE_IOERR_CORRUPTFS)                                                    \
  X(SQLITE_LOCKED_SHAREDCACHE)                                                 \
  X(SQLITE_LOCKED_VTAB)                                                        \
  X(SQLITE_BUSY_RECOVERY)                                                      \
  X(SQLITE_BUSY_SNAPSHOT)                                                      \
  X(SQLITE_BUSY_TIMEOUT)                                                       \
  X(SQLITE_CANTOPEN_NOTEMPDIR)                                                 \
  X(SQLITE_CANTOPEN_ISDIR)                                                     \
  X(SQLITE_CANTOPEN_FULLPATH)                                                  \
  X(SQLITE_CANTOPEN_CONVPATH)                                                  \
  X(SQLITE_CANTOPEN_DIRTYWAL)                                                  \
  X(SQLITE_CANTOPEN_SYMLINK)                                                   \
  X(SQLITE_CORRUPT_VTAB)                                                       \
  X(SQLITE_CORRUPT_SEQUENCE)                                                   \
  X(SQLITE_CORRUPT_INDEX)                                                      \
  X(SQLITE_READONLY_RECOVERY)                                                  \
  X(SQLITE_READONLY_CANTLOCK)                                                  \
  X(SQLITE_READONLY_ROLLBACK)                                                  \
  X(SQLITE_READONLY_DBMOVED)                                                   \
  X(SQLITE_READONLY_CANTINIT)                                                  \
  X(SQLITE_READONLY_DIRECTORY)                                                 \
  X(SQLITE_ABORT_ROLLBACK)                                                     \
  X(SQLITE_CONSTRAINT_CHECK)                                                   \
  X(SQLITE_CONSTRAINT_COMMITHOOK)                                              \
  X(SQLITE_CONSTRAINT_FOREIGNKEY)                                              \
  X(SQLITE_CONSTRAINT_FUNCTION)                                                \
  X(SQLITE_CONSTRAINT_NOTNULL)                                                 \
  X(SQLITE_CONSTRAINT_PRIMARYKEY)                                              \
  X(SQLITE_CONSTRAINT_TRIGGER)                                                 \
  X(SQLITE_CONSTRAINT_UNIQUE)                                                  \
  X(SQLITE_CONSTRAINT_VTAB)                                                    \
  X(SQLITE_CONSTRAINT_ROWID)                                                   \
  X(SQLITE_CONSTRAINT_PINNED)                                                  \
  X(SQLITE_CONSTRAINT_DATATYPE)                                                \
  X(SQLITE_AUTH_USER)

const char *ss_code_name(int rc) {
  switch (rc) {
#define SS_CODE_CASE(name)                                                     \
  case name:                                                                   \
    return #name;
    SS_CODES(SS_CODE_CASE)
#undef SS_CODE_CASE
  default:
    return NULL;
  }
}

bool ss_is_busy(int rc) {
  int primary = rc & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

/* SQLITE_ERROR while compiling is bad SQL; while running (a RAISE in a
 * trigger, a function failing) it is whatever went wrong in the backend. */
static int map_code(int rc, bool prepare) {
  switch (rc & 0xff) {
  case SQLITE_CONSTRAINT:
    return ATR_ECONSTRAINT;
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return ATR_EBUSY;
  case SQLITE_ERROR:
    return prepare ? ATR_EINVAL : ATR_EIO;
  case SQLITE_MISMATCH: /* a parameter of the wrong type for the column */
  case SQLITE_RANGE:
  case SQLITE_TOOBIG:
    return ATR_EINVAL;
  case SQLITE_NOMEM:
    return ATR_ENOMEM;
  default:
    return ATR_EIO;
  }
}

int ss_failf(char **err, int code, const char *fmt, ...) {
  if (err == NULL)
    return code;
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  *err = msg; /* the caller's *err is never read: it may be uninitialised */
  return code;
}

int ss_fail(char **err, int rc, const char *msg, bool prepare,
            const char *prefix) {
  const char *name = ss_code_name(rc);
  if (name == NULL)
    name = ss_code_name(rc & 0xff);
  return ss_failf(err, map_code(rc, prepare), "%ssqlite: %s (%s)",
                  prefix ? prefix : "", msg ? msg : sqlite3_errstr(rc),
                  name ? name : sqlite3_errstr(rc));
}

int ss_fail_db(char **err, sqlite3 *db, int rc, bool prepare,
               const char *prefix) {
  return ss_fail(err, rc, db ? sqlite3_errmsg(db) : NULL, prepare, prefix);
}
