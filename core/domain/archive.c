/* core/archive.c — template archives: validate every entry of a tar or
 * tar.gz, then (for extract) write it below the target directory.
 *
 * Validation is purely lexical and sees the whole archive in order: it keeps
 * a table of the paths seen so far (with their kind) so that a later entry
 * cannot reuse a name, write below a file or symbolic link, or hard-link to
 * something that is not a regular file. Extraction does not rely on that
 * alone: every path is walked from a directory fd of the root with
 * O_NOFOLLOW, files are created with O_EXCL, so neither a link from the
 * archive nor one already in the directory can redirect a write. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* core/archive.h shadows libarchive's <archive.h> on the include path, so
 * CMake names libarchive's header by its full path (core/CMakeLists.txt). */
#include ATR_LIBARCHIVE_H
#include <archive_entry.h>

#include "archive.h"
#include "atrium/error.h"

#define PATH_MAX_BYTES 4096
/* How much of a name a message shows; names may be up to 4096 bytes. */
#define SHOW 200
#define SHOW_ARGS(s) SHOW, (s), (strlen(s) > SHOW ? "..." : "")

enum { KIND_DIR = 'd', KIND_FILE = 'f', KIND_SYMLINK = 'l', KIND_HARDLINK };

/* Paths seen so far: open addressing on an FNV-1a hash, never more than
 * half full. Keys are owned. */
typedef struct {
  char **keys;
  char *kinds;
  size_t cap, len;
} seen_t;

typedef struct {
  struct archive *a;
  const atr_archive_limits_t *limits;
  const char *dir; /* NULL: check only */
  int rootfd;
  seen_t seen;
  uint64_t entries, bytes;
  char **err;
} ctx_t;

__attribute__((format(printf, 2, 3))) static void
set_err(char **err, const char *fmt, ...) {
  va_list ap;
  char *msg = NULL;
  va_start(ap, fmt);
  if (vasprintf(&msg, fmt, ap) < 0)
    msg = NULL;
  va_end(ap);
  if (err != NULL) {
    free(*err);
    *err = msg;
  } else {
    free(msg);
  }
}

/* Set *err and evaluate to rc; a macro so that static analysis sees which
 * code each refusal returns. */
#define FAIL(err, rc, ...) (set_err((err), __VA_ARGS__), (rc))
#define REFUSE(c, name, fmt, ...)                                              \
  FAIL((c)->err, ATR_EINVAL, "archive entry \"%.*s%s\": " fmt,                 \
       SHOW_ARGS(name), __VA_ARGS__)

/* ---- the table of seen paths -------------------------------------------- */

static size_t seen_slot(const seen_t *s, const char *p, size_t n) {
  uint64_t h = 14695981039346656037u;
  for (size_t i = 0; i < n; i++)
    h = (h ^ (unsigned char)p[i]) * 1099511628211u;
  size_t i = (size_t)h & (s->cap - 1);
  while (s->keys[i] != NULL &&
         !(strlen(s->keys[i]) == n && memcmp(s->keys[i], p, n) == 0))
    i = (i + 1) & (s->cap - 1);
  return i;
}

/* The kind recorded for the first n bytes of p, or 0. */
static int seen_find(const seen_t *s, const char *p, size_t n) {
  if (s->cap == 0)
    return 0;
  return s->kinds[seen_slot(s, p, n)];
}

static int seen_grow(seen_t *s) {
  seen_t g = {.cap = s->cap ? s->cap * 2 : 64};
  g.keys = calloc(g.cap, sizeof *g.keys);
  g.kinds = calloc(g.cap, 1);
  if (g.keys == NULL || g.kinds == NULL) {
    free(g.keys);
    free(g.kinds);
    return ATR_ENOMEM;
  }
  for (size_t i = 0; i < s->cap; i++) {
    if (s->keys[i] == NULL)
      continue;
    size_t j = seen_slot(&g, s->keys[i], strlen(s->keys[i]));
    g.keys[j] = s->keys[i];
    g.kinds[j] = s->kinds[i];
  }
  g.len = s->len;
  free(s->keys);
  free(s->kinds);
  *s = g;
  return 0;
}

/* Record the first n bytes of p as kind (replacing an earlier kind). */
static int seen_add(seen_t *s, const char *p, size_t n, int kind) {
  if ((s->len + 1) * 2 > s->cap && seen_grow(s) != 0)
    return ATR_ENOMEM;
  size_t i = seen_slot(s, p, n);
  if (s->keys[i] == NULL) {
    s->keys[i] = strndup(p, n);
    if (s->keys[i] == NULL)
      return ATR_ENOMEM;
    s->len++;
  }
  s->kinds[i] = (char)kind;
  return 0;
}

static void seen_free(seen_t *s) {
  for (size_t i = 0; i < s->cap; i++)
    free(s->keys[i]);
  free(s->keys);
  free(s->kinds);
}

/* ---- validation ---------------------------------------------------------- */

/* name without "." and empty components into *out ("./a//b/" → "a/b"); NULL
 * and a reason when the name is not a safe relative path. */
static const char *path_normalize(const char *name, char **out) {
  size_t n = strlen(name);
  *out = NULL;
  if (n == 0)
    return "the path is empty";
  if (n > PATH_MAX_BYTES)
    return "the path is longer than 4096 bytes";
  if (name[0] == '/')
    return "a path may not be absolute";
  char *o = malloc(n + 1);
  if (o == NULL)
    return "out of memory";
  size_t len = 0;
  for (const char *p = name; *p != '\0';) {
    const char *q = strchrnul(p, '/');
    size_t c = (size_t)(q - p);
    if (c == 2 && p[0] == '.' && p[1] == '.') {
      free(o);
      return "a path may not contain \"..\"";
    }
    if (c > 0 && !(c == 1 && p[0] == '.')) {
      if (len > 0)
        o[len++] = '/';
      memcpy(o + len, p, c);
      len += c;
    }
    p = *q == '/' ? q + 1 : q;
  }
  o[len] = '\0';
  *out = o;
  return NULL;
}

/* Why the target of a symbolic link at path (normalized) may leave the root,
 * or NULL. ".." may only lead the target: after a name it would climb out
 * of wherever that name resolves to, which may itself be a link. */
static const char *symlink_problem(const char *path, const char *t) {
  if (strlen(t) > PATH_MAX_BYTES)
    return "is longer than 4096 bytes";
  if (t[0] == '\0')
    return "is empty";
  if (t[0] == '/')
    return "is absolute";
  size_t depth = 0;
  for (const char *p = path; (p = strchr(p, '/')) != NULL; p++)
    depth++;
  bool named = false;
  for (const char *p = t; *p != '\0';) {
    const char *q = strchrnul(p, '/');
    size_t c = (size_t)(q - p);
    if (c == 2 && p[0] == '.' && p[1] == '.') {
      if (named)
        return "may use \"..\" only at its start";
      if (depth == 0)
        return "leads outside the directory";
      depth--;
    } else if (c > 0 && !(c == 1 && p[0] == '.')) {
      named = true;
    }
    p = *q == '/' ? q + 1 : q;
  }
  return NULL;
}

/* The entry's kind, or a refusal for the types templates may not hold. */
static int entry_kind(ctx_t *c, struct archive_entry *e, const char *name,
                      int *kind) {
  if (archive_entry_hardlink(e) != NULL) {
    *kind = KIND_HARDLINK;
    return 0;
  }
  switch (archive_entry_filetype(e)) {
  case AE_IFREG:
    *kind = KIND_FILE;
    return 0;
  case AE_IFDIR:
    *kind = KIND_DIR;
    return 0;
  case AE_IFLNK:
    *kind = KIND_SYMLINK;
    return 0;
  case AE_IFCHR:
  case AE_IFBLK:
    return REFUSE(c, name, "%s", "device files are not allowed");
  case AE_IFIFO:
    return REFUSE(c, name, "%s", "FIFOs are not allowed");
  case AE_IFSOCK:
    return REFUSE(c, name, "%s", "sockets are not allowed");
  default:
    return REFUSE(c, name, "%s", "unsupported entry type");
  }
}

/* path (normalized) against the entries before it: its parents must be
 * directories, and only a directory may appear twice. Records path and its
 * parents. */
static int check_place(ctx_t *c, const char *name, const char *path, int kind) {
  for (const char *p = path; (p = strchr(p, '/')) != NULL; p++) {
    size_t n = (size_t)(p - path);
    int k = seen_find(&c->seen, path, n);
    if (k != 0 && k != KIND_DIR)
      return REFUSE(c, name, "its parent \"%.*s\" is %s, not a directory",
                    (int)n, path,
                    k == KIND_SYMLINK ? "a symbolic link" : "a file");
    if (k == 0 && seen_add(&c->seen, path, n, KIND_DIR) != 0)
      return FAIL(c->err, ATR_ENOMEM, "out of memory");
  }
  int k = seen_find(&c->seen, path, strlen(path));
  if (k != 0 && !(k == KIND_DIR && kind == KIND_DIR))
    return REFUSE(c, name, "%s", "the path appears twice in the archive");
  int rec = kind == KIND_HARDLINK ? KIND_FILE : kind;
  if (seen_add(&c->seen, path, strlen(path), rec) != 0)
    return FAIL(c->err, ATR_ENOMEM, "out of memory");
  return 0;
}

/* A hard link's target must be a regular file earlier in the archive. */
static int check_hardlink(ctx_t *c, const char *name, const char *target) {
  char *t = NULL;
  const char *why = path_normalize(target, &t);
  int rc = 0;
  if (why != NULL)
    rc = REFUSE(c, name, "hard link target \"%.*s%s\": %s", SHOW_ARGS(target),
                why);
  else if (seen_find(&c->seen, t, strlen(t)) != KIND_FILE)
    rc = REFUSE(c, name,
                "hard link target \"%.*s%s\" is not a regular file earlier "
                "in the archive",
                SHOW_ARGS(target));
  free(t);
  return rc;
}

static int check_limits(ctx_t *c, struct archive_entry *e, int kind) {
  const atr_archive_limits_t *l = c->limits;
  c->entries++;
  if (l != NULL && l->max_entries != 0 && c->entries > l->max_entries)
    return FAIL(c->err, ATR_EINVAL,
                "the archive has more than %" PRIu64
                " entries (archive_limits)",
                l->max_entries);
  if (kind != KIND_FILE || !archive_entry_size_is_set(e))
    return 0;
  int64_t size = archive_entry_size(e);
  c->bytes += size > 0 ? (uint64_t)size : 0;
  if (l != NULL && l->max_unpacked_bytes != 0 &&
      c->bytes > l->max_unpacked_bytes)
    return FAIL(c->err, ATR_EINVAL,
                "the archive unpacks to more than %" PRIu64
                " bytes (archive_limits)",
                l->max_unpacked_bytes);
  return 0;
}

/* Everything about entry e that does not need the filesystem; *path gets its
 * normalized name (the caller frees it). */
static int validate(ctx_t *c, struct archive_entry *e, char **path, int *kind) {
  const char *name = archive_entry_pathname(e);
  if (name == NULL)
    return FAIL(c->err, ATR_EINVAL,
                "an archive entry has a name that cannot be read");
  const char *why = path_normalize(name, path);
  if (why != NULL)
    return REFUSE(c, name, "%s", why);
  int rc = entry_kind(c, e, name, kind);
  if (rc != 0)
    return rc;
  if (**path == '\0')
    return *kind == KIND_DIR
               ? check_limits(c, e, *kind)
               : REFUSE(c, name, "%s", "the path names the directory itself");
  if (*kind == KIND_SYMLINK) {
    const char *t = archive_entry_symlink(e);
    why = symlink_problem(*path, t != NULL ? t : "");
    if (why != NULL)
      return REFUSE(c, name, "symbolic link target \"%.*s%s\" %s",
                    SHOW_ARGS(t != NULL ? t : ""), why);
  }
  if (*kind == KIND_HARDLINK) {
    rc = check_hardlink(c, name, archive_entry_hardlink(e));
    if (rc != 0)
      return rc;
  }
  rc = check_place(c, name, *path, *kind);
  return rc != 0 ? rc : check_limits(c, e, *kind);
}

/* ---- extraction ---------------------------------------------------------- */

static int io_fail(ctx_t *c, const char *what, const char *path) {
  return FAIL(c->err, ATR_EIO, "cannot %s \"%s/%s\": %s", what, c->dir, path,
              strerror(errno));
}

/* Open directory name below fd (creating it with mode 0755 if missing),
 * never following a symbolic link. shown: its path for messages. */
static int open_dir(ctx_t *c, int fd, const char *name, const char *shown,
                    int *out) {
  bool created = mkdirat(fd, name, 0755) == 0;
  if (!created && errno != EEXIST)
    return io_fail(c, "create directory", shown);
  *out = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (*out < 0)
    return io_fail(c, "open directory", shown);
  if (created && fchmod(*out, 0755) != 0) {
    int rc = io_fail(c, "set the mode of", shown);
    close(*out);
    return rc;
  }
  return 0;
}

/* The fd of path's parent (creating directories when create) and the last
 * component of path; the caller closes *fd unless it is c->rootfd. */
static int walk(ctx_t *c, char *path, bool create, int *fd, const char **leaf) {
  int cur = c->rootfd;
  char *p = path;
  for (char *slash; (slash = strchr(p, '/')) != NULL; p = slash + 1) {
    int next = -1, rc;
    *slash = '\0';
    if (create) {
      rc = open_dir(c, cur, p, path, &next);
    } else {
      next = openat(cur, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      rc = next < 0 ? io_fail(c, "open directory", path) : 0;
    }
    *slash = '/';
    if (cur != c->rootfd)
      close(cur);
    if (rc != 0)
      return rc;
    cur = next;
  }
  *fd = cur;
  *leaf = p;
  return 0;
}

static int write_all(int fd, const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w < 0)
      return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

static int write_file(ctx_t *c, int dfd, const char *leaf, const char *path,
                      mode_t mode) {
  int fd = openat(dfd, leaf,
                  O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return io_fail(c, "create", path);
  char buf[65536];
  int rc = 0;
  for (;;) {
    la_ssize_t n = archive_read_data(c->a, buf, sizeof buf);
    if (n < 0) {
      rc = FAIL(c->err, ATR_EINVAL, "archive entry \"%s\": %s", path,
                archive_error_string(c->a));
      break;
    }
    if (n == 0)
      break;
    if (write_all(fd, buf, (size_t)n) != 0) {
      rc = io_fail(c, "write", path);
      break;
    }
  }
  if (rc == 0 && fchmod(fd, mode & 0755) != 0)
    rc = io_fail(c, "set the mode of", path);
  if (close(fd) != 0 && rc == 0)
    rc = io_fail(c, "write", path);
  return rc;
}

static int make_hardlink(ctx_t *c, int dfd, const char *leaf, const char *path,
                         const char *target) {
  char *t = NULL;
  if (path_normalize(target, &t) != NULL || t == NULL)
    return FAIL(c->err, ATR_ENOMEM, "out of memory");
  int tfd = -1;
  const char *tleaf = NULL;
  int rc = walk(c, t, false, &tfd, &tleaf);
  if (rc == 0 && linkat(tfd, tleaf, dfd, leaf, 0) != 0)
    rc = io_fail(c, "create hard link", path);
  if (tfd >= 0 && tfd != c->rootfd)
    close(tfd);
  free(t);
  return rc;
}

static int extract_entry(ctx_t *c, struct archive_entry *e, char *path,
                         int kind) {
  if (*path == '\0')
    return 0; /* "." itself: the root exists */
  int dfd = -1;
  const char *leaf = NULL;
  int rc = walk(c, path, true, &dfd, &leaf);
  if (rc != 0)
    return rc;
  int sub = -1;
  switch (kind) {
  case KIND_DIR:
    rc = open_dir(c, dfd, leaf, path, &sub);
    if (rc == 0)
      close(sub);
    break;
  case KIND_FILE:
    rc = write_file(c, dfd, leaf, path, archive_entry_perm(e));
    break;
  case KIND_SYMLINK:
    if (symlinkat(archive_entry_symlink(e), dfd, leaf) != 0)
      rc = io_fail(c, "create symbolic link", path);
    break;
  default:
    rc = make_hardlink(c, dfd, leaf, path, archive_entry_hardlink(e));
    break;
  }
  if (dfd != c->rootfd)
    close(dfd);
  return rc;
}

/* ---- the archive --------------------------------------------------------- */

static int open_reader(ctx_t *c, const void *data, size_t len) {
  if (len == 0)
    return FAIL(c->err, ATR_EINVAL,
                "not a tar or tar.gz archive: the data is empty");
  c->a = archive_read_new();
  if (c->a == NULL)
    return FAIL(c->err, ATR_ENOMEM, "out of memory");
  if (archive_read_support_filter_gzip(c->a) != ARCHIVE_OK ||
      archive_read_support_filter_none(c->a) != ARCHIVE_OK ||
      archive_read_support_format_tar(c->a) != ARCHIVE_OK ||
      archive_read_open_memory(c->a, data, len) != ARCHIVE_OK)
    return FAIL(c->err, ATR_EINVAL, "not a tar or tar.gz archive");
  return 0;
}

/* The next header: 1 and *e, 0 at the end, or an error. */
static int next_header(ctx_t *c, struct archive_entry **e) {
  int r = archive_read_next_header(c->a, e);
  if (r == ARCHIVE_EOF)
    return 0;
  if (r == ARCHIVE_OK || r == ARCHIVE_WARN)
    return 1;
  if (c->entries == 0 && archive_format(c->a) == 0)
    return FAIL(c->err, ATR_EINVAL, "not a tar or tar.gz archive");
  return FAIL(c->err, ATR_EINVAL,
              "the archive is damaged at entry %" PRIu64 ": %s", c->entries + 1,
              archive_error_string(c->a));
}

static int run(const void *data, size_t len, const char *dir,
               const atr_archive_limits_t *limits, char **err) {
  ctx_t c = {.limits = limits, .dir = dir, .rootfd = -1, .err = err};
  if (err != NULL)
    *err = NULL;
  if (dir != NULL) {
    c.rootfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c.rootfd < 0)
      return FAIL(err, ATR_EIO, "cannot open directory \"%s\": %s", dir,
                  strerror(errno));
  }
  int rc = open_reader(&c, data, len);
  struct archive_entry *e = NULL;
  while (rc == 0 && (rc = next_header(&c, &e)) == 1) {
    char *path = NULL;
    int kind = 0;
    rc = validate(&c, e, &path, &kind);
    if (rc == 0 && dir != NULL)
      rc = extract_entry(&c, e, path, kind);
    else if (rc == 0 && archive_read_data_skip(c.a) != ARCHIVE_OK)
      rc = FAIL(err, ATR_EINVAL, "archive entry \"%.*s%s\": %s",
                SHOW_ARGS(path), archive_error_string(c.a));
    free(path);
  }
  if (c.a != NULL)
    archive_read_free(c.a);
  if (c.rootfd >= 0)
    close(c.rootfd);
  seen_free(&c.seen);
  return rc;
}

int atr_archive_check(const void *data, size_t len,
                      const atr_archive_limits_t *limits, char **err) {
  return run(data, len, NULL, limits, err);
}

int atr_archive_extract(const void *data, size_t len, const char *dir,
                        const atr_archive_limits_t *limits, char **err) {
  return run(data, len, dir, limits, err);
}

/* "./template.yaml" and "template.yaml" are the same entry. */
static const char *strip_dot_slash(const char *p) {
  while (p[0] == '.' && p[1] == '/')
    p += 2;
  return p;
}

int atr_archive_read_file(const void *data, size_t len, const char *name,
                          size_t max, char **out, size_t *out_len, char **err) {
  *out = NULL;
  *out_len = 0;
  struct archive *a = archive_read_new();
  if (!a)
    return ATR_ENOMEM;
  int rc = ATR_ENOENT;
  if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
      archive_read_support_filter_none(a) != ARCHIVE_OK ||
      archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_open_memory(a, data, len) != ARCHIVE_OK) {
    set_err(err, "not a tar archive: %s", archive_error_string(a));
    archive_read_free(a);
    return ATR_EINVAL;
  }
  struct archive_entry *e;
  int r;
  while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *p = archive_entry_pathname(e);
    if (!p || strcmp(strip_dot_slash(p), name) != 0 ||
        archive_entry_filetype(e) != AE_IFREG)
      continue;
    la_int64_t size = archive_entry_size(e);
    if (size < 0 || (uint64_t)size > max) {
      set_err(err, "%s is larger than %zu bytes", name, max);
      rc = ATR_EINVAL;
      break;
    }
    char *buf = malloc((size_t)size + 1);
    if (!buf) {
      rc = ATR_ENOMEM;
      break;
    }
    la_ssize_t got = archive_read_data(a, buf, (size_t)size);
    if (got != size) {
      free(buf);
      set_err(err, "cannot read %s from the archive: %s", name,
              archive_error_string(a));
      rc = ATR_EINVAL;
      break;
    }
    buf[size] = '\0';
    *out = buf;
    *out_len = (size_t)size;
    rc = 0;
    break;
  }
  if (r != ARCHIVE_OK && r != ARCHIVE_EOF && rc == ATR_ENOENT) {
    set_err(err, "not a readable tar archive: %s", archive_error_string(a));
    rc = ATR_EINVAL;
  } else if (rc == ATR_ENOENT) {
    set_err(err, "the archive has no %s at its root", name);
  }
  archive_read_free(a);
  return rc;
}
