/* Template archives: a tar or tar.gz unpacks into the job's directory with
 * its files, directories, links, contents and modes; anything that could
 * write or point outside that directory, special files, other formats and
 * archives over the limits are refused with a message naming the entry, and
 * nothing is written outside. atr_archive_check accepts and refuses exactly
 * the same archives without writing anything.
 *
 * Every archive is written in memory with libarchive's own writer so each
 * nasty case is exactly the bytes an attacker could upload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

/* core/archive.h shadows libarchive's <archive.h>; see core/CMakeLists.txt. */
#include ATR_LIBARCHIVE_H
#include <archive_entry.h>

#include "archive.h"
#include "atrium/error.h"

/* One entry to write: type 'f' file, 'd' directory, 'l' symbolic link (to
 * link), 'h' hard link (to link), 'p' FIFO, 'c' character device. */
typedef struct {
  char type;
  const char *name;
  const char *data; /* 'f' */
  int mode;         /* 0: 0644 for files, 0755 for directories */
  const char *link; /* 'l', 'h' */
} ent_t;

typedef struct {
  char *buf;
  size_t len;
} blob_t;

#define BLOB_CAP (1u << 20)

static char tmpdir[64];

/* ---- helpers --------------------------------------------------------------- */

static void add_entry(struct archive *w, const ent_t *x) {
  struct archive_entry *e = archive_entry_new();
  archive_entry_set_pathname(e, x->name);
  size_t size = x->data ? strlen(x->data) : 0;
  switch (x->type) {
  case 'd':
    archive_entry_set_filetype(e, AE_IFDIR);
    break;
  case 'l':
    archive_entry_set_filetype(e, AE_IFLNK);
    archive_entry_set_symlink(e, x->link);
    break;
  case 'h':
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_hardlink(e, x->link);
    break;
  case 'p':
    archive_entry_set_filetype(e, AE_IFIFO);
    break;
  case 'c':
    archive_entry_set_filetype(e, AE_IFCHR);
    archive_entry_set_rdev(e, 0x0103);
    break;
  default:
    archive_entry_set_filetype(e, AE_IFREG);
    archive_entry_set_size(e, (la_int64_t)size);
  }
  archive_entry_set_perm(e, x->mode ? x->mode : x->type == 'd' ? 0755 : 0644);
  assert_int_equal(archive_write_header(w, e), ARCHIVE_OK);
  if (size > 0)
    assert_int_equal(archive_write_data(w, x->data, size), (la_ssize_t)size);
  archive_entry_free(e);
}

/* ents as a pax tar (gzip-compressed when gz) in memory. */
static blob_t build_fmt(const ent_t *ents, size_t n, bool gz, bool zip) {
  blob_t b = {.buf = malloc(BLOB_CAP)};
  assert_non_null(b.buf);
  struct archive *w = archive_write_new();
  if (zip)
    assert_int_equal(archive_write_set_format_zip(w), ARCHIVE_OK);
  else
    assert_int_equal(archive_write_set_format_pax_restricted(w), ARCHIVE_OK);
  if (gz)
    assert_int_equal(archive_write_add_filter_gzip(w), ARCHIVE_OK);
  assert_int_equal(archive_write_open_memory(w, b.buf, BLOB_CAP, &b.len),
                   ARCHIVE_OK);
  for (size_t i = 0; i < n; i++)
    add_entry(w, &ents[i]);
  assert_int_equal(archive_write_close(w), ARCHIVE_OK);
  archive_write_free(w);
  return b;
}

#define TAR(ents)                                                              \
  build_fmt((ents), sizeof(ents) / sizeof(ents)[0], false, false)
#define TGZ(ents) build_fmt((ents), sizeof(ents) / sizeof(ents)[0], true, false)

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int make_tmpdir(void **state) {
  (void)state;
  snprintf(tmpdir, sizeof tmpdir, "/tmp/atrium-archive-XXXXXX");
  return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state) {
  (void)state;
  return nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static char *in_tmp(const char *rel) {
  static char path[4200];
  snprintf(path, sizeof path, "%s/%s", tmpdir, rel);
  return path;
}

static int tmpdir_entries(void) {
  DIR *d = opendir(tmpdir);
  assert_non_null(d);
  int n = 0;
  for (struct dirent *de; (de = readdir(d)) != NULL;)
    n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
  closedir(d);
  return n;
}

static void assert_file(const char *rel, const char *content, int mode) {
  struct stat st;
  assert_int_equal(lstat(in_tmp(rel), &st), 0);
  assert_true(S_ISREG(st.st_mode));
  assert_int_equal(st.st_mode & 07777, mode);
  FILE *f = fopen(in_tmp(rel), "rb");
  assert_non_null(f);
  char buf[256] = {0};
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  assert_int_equal(n, strlen(content));
  assert_string_equal(buf, content);
}

static void assert_dir(const char *rel) {
  struct stat st;
  assert_int_equal(lstat(in_tmp(rel), &st), 0);
  assert_true(S_ISDIR(st.st_mode));
  assert_int_equal(st.st_mode & 07777, 0755);
}

static void assert_symlink(const char *rel, const char *target) {
  char buf[256] = {0};
  assert_int_equal(readlink(in_tmp(rel), buf, sizeof buf - 1),
                   (ssize_t)strlen(target));
  assert_string_equal(buf, target);
}

/* Both extract (into the empty tmpdir) and check refuse b with msg; when
 * nothing_written, extract left the directory empty. */
static void assert_refused(blob_t b, const atr_archive_limits_t *lim,
                           const char *msg, bool nothing_written) {
  char *err = NULL;
  assert_int_equal(atr_archive_extract(b.buf, b.len, tmpdir, lim, &err),
                   ATR_EINVAL);
  assert_non_null(err);
  assert_string_equal(err, msg);
  free(err);
  err = NULL;
  if (nothing_written)
    assert_int_equal(tmpdir_entries(), 0);
  assert_int_equal(atr_archive_check(b.buf, b.len, lim, &err), ATR_EINVAL);
  assert_non_null(err);
  assert_string_equal(err, msg);
  free(err);
  free(b.buf);
}

static void assert_accepted(blob_t b, const atr_archive_limits_t *lim) {
  char *err = NULL;
  int rc = atr_archive_check(b.buf, b.len, lim, &err);
  if (rc != 0)
    fail_msg("check: %s", err ? err : atr_err_name(rc));
  rc = atr_archive_extract(b.buf, b.len, tmpdir, lim, &err);
  if (rc != 0)
    fail_msg("extract: %s", err ? err : atr_err_name(rc));
  assert_null(err);
  free(b.buf);
}

/* ---- what unpacks ------------------------------------------------------------ */

static const ent_t project[] = {
    {'d', "docs/", NULL, 0700, NULL},
    {'f', "README.md", "hello\n", 0, NULL},
    {'f', "bin/run.sh", "#!/bin/sh\necho hi\n", 06777, NULL},
    {'f', "./src//deep/nested/main.c", "int main(void) { return 0; }\n", 0600,
     NULL},
    {'l', "docs/readme", NULL, 0, "../README.md"},
    {'l', "here", NULL, 0, "."},
    {'h', "README.copy", NULL, 0, "README.md"},
    {'f', "empty", "", 0, NULL},
};

static void assert_project_unpacked(void) {
  assert_file("README.md", "hello\n", 0644);
  assert_file("bin/run.sh", "#!/bin/sh\necho hi\n", 0755);
  assert_file("src/deep/nested/main.c", "int main(void) { return 0; }\n", 0600);
  assert_file("empty", "", 0644);
  assert_dir("docs");
  assert_dir("bin");
  assert_dir("src/deep/nested");
  assert_symlink("docs/readme", "../README.md");
  assert_symlink("here", ".");
  struct stat a, b;
  assert_int_equal(stat(in_tmp("README.md"), &a), 0);
  assert_int_equal(stat(in_tmp("README.copy"), &b), 0);
  assert_int_equal(a.st_ino, b.st_ino);
}

static void a_tar_unpacks_files_dirs_links_and_safe_modes(void **state) {
  (void)state;
  assert_accepted(TAR(project), NULL);
  assert_project_unpacked();
}

static void a_tar_gz_unpacks_the_same(void **state) {
  (void)state;
  assert_accepted(TGZ(project), NULL);
  assert_project_unpacked();
}

static void an_archive_without_entries_unpacks_to_nothing(void **state) {
  (void)state;
  blob_t b = build_fmt(NULL, 0, false, false);
  assert_accepted(b, NULL);
  assert_int_equal(tmpdir_entries(), 0);
}

static void check_writes_nothing(void **state) {
  (void)state;
  char cwd[4096];
  assert_non_null(getcwd(cwd, sizeof cwd));
  assert_int_equal(chdir(tmpdir), 0);
  blob_t b = TGZ(project);
  char *err = NULL;
  int rc = atr_archive_check(b.buf, b.len, NULL, &err);
  free(b.buf);
  assert_int_equal(chdir(cwd), 0);
  assert_int_equal(rc, 0);
  assert_null(err);
  assert_int_equal(tmpdir_entries(), 0);
}

/* ---- names ------------------------------------------------------------------- */

static void absolute_paths_are_refused(void **state) {
  (void)state;
  const ent_t e[] = {{'f', "/etc/passwd", "root::0:0::/:/bin/sh\n", 0, NULL}};
  assert_refused(TAR(e), NULL,
                 "archive entry \"/etc/passwd\": a path may not be absolute",
                 true);
}

static void dot_dot_components_are_refused(void **state) {
  (void)state;
  const ent_t e1[] = {{'f', "a/../../x", "x", 0, NULL}};
  assert_refused(TAR(e1), NULL,
                 "archive entry \"a/../../x\": a path may not contain \"..\"",
                 true);
  const ent_t e2[] = {{'f', "..", "x", 0, NULL}};
  assert_refused(TAR(e2), NULL,
                 "archive entry \"..\": a path may not contain \"..\"", true);
}

static void empty_and_overlong_names_are_refused(void **state) {
  (void)state;
  const ent_t e1[] = {{'f', "", "x", 0, NULL}};
  assert_refused(TAR(e1), NULL, "archive entry \"\": the path is empty", true);
  const ent_t e2[] = {{'f', ".", "x", 0, NULL}};
  assert_refused(TAR(e2), NULL,
                 "archive entry \".\": the path names the directory itself",
                 true);
  char *name = malloc(5001);
  assert_non_null(name);
  memset(name, 'n', 5000);
  name[5000] = '\0';
  const ent_t e3[] = {{'f', name, "x", 0, NULL}};
  char msg[512];
  snprintf(msg, sizeof msg,
           "archive entry \"%.200s...\": the path is longer than 4096 bytes",
           name);
  assert_refused(TAR(e3), NULL, msg, true);
  free(name);
}

static void a_name_used_twice_is_refused(void **state) {
  (void)state;
  const ent_t e[] = {{'f', "x", "1", 0, NULL}, {'f', "./x", "2", 0, NULL}};
  assert_refused(TAR(e), NULL,
                 "archive entry \"./x\": the path appears twice in the archive",
                 false);
  assert_file("x", "1", 0644);
}

/* ---- links ------------------------------------------------------------------- */

static void symlinks_to_absolute_targets_are_refused(void **state) {
  (void)state;
  const ent_t e[] = {{'l', "etc", NULL, 0, "/etc"}};
  assert_refused(
      TAR(e), NULL,
      "archive entry \"etc\": symbolic link target \"/etc\" is absolute", true);
}

static void symlinks_climbing_out_are_refused(void **state) {
  (void)state;
  const ent_t e1[] = {{'l', "l", NULL, 0, "../../outside"}};
  assert_refused(TAR(e1), NULL,
                 "archive entry \"l\": symbolic link target \"../../outside\" "
                 "leads outside the directory",
                 true);
  const ent_t e2[] = {{'l', "a/b/l", NULL, 0, "../../../x"}};
  assert_refused(TAR(e2), NULL,
                 "archive entry \"a/b/l\": symbolic link target \"../../../x\" "
                 "leads outside the directory",
                 false);
}

/* "sub/up" -> ".." is the root; "x" -> "sub/up/.." would be its parent,
 * though it looks one level deep to a lexical check. */
static void symlinks_with_dot_dot_after_a_name_are_refused(void **state) {
  (void)state;
  const ent_t e[] = {{'l', "sub/up", NULL, 0, ".."},
                     {'l', "x", NULL, 0, "sub/up/.."}};
  assert_refused(TAR(e), NULL,
                 "archive entry \"x\": symbolic link target \"sub/up/..\" may "
                 "use \"..\" only at its start",
                 false);
  assert_symlink("sub/up", "..");
}

static void nothing_is_written_through_a_symlink(void **state) {
  (void)state;
  char leaf[64], outside[96], inner[80];
  snprintf(leaf, sizeof leaf, "atrium-archive-escape-%ld-%d", (long)getpid(),
           rand());
  snprintf(outside, sizeof outside, "/tmp/%s", leaf);
  snprintf(inner, sizeof inner, "d/%s", leaf);
  const ent_t e1[] = {{'l', "d", NULL, 0, "/tmp"},
                      {'f', inner, "pwned", 0, NULL}};
  assert_refused(
      TAR(e1), NULL,
      "archive entry \"d\": symbolic link target \"/tmp\" is absolute", true);
  assert_int_equal(access(outside, F_OK), -1);

  /* Even a link that stays inside may not be written through. */
  const ent_t e2[] = {{'d', "sub", NULL, 0, NULL},
                      {'l', "d", NULL, 0, "sub"},
                      {'f', "d/x", "x", 0, NULL}};
  assert_refused(TAR(e2), NULL,
                 "archive entry \"d/x\": its parent \"d\" is a symbolic link, "
                 "not a directory",
                 false);
  assert_int_equal(access(in_tmp("sub/x"), F_OK), -1);

  const ent_t e3[] = {{'f', "f", "x", 0, NULL}, {'f', "f/x", "x", 0, NULL}};
  assert_refused(
      TAR(e3), NULL,
      "archive entry \"f/x\": its parent \"f\" is a file, not a directory",
      false);
}

static void an_existing_symlink_in_the_directory_is_not_followed(void **state) {
  (void)state;
  char target[96];
  snprintf(target, sizeof target, "%s-outside", tmpdir);
  assert_int_equal(mkdir(target, 0700), 0);
  assert_int_equal(symlink(target, in_tmp("d")), 0);
  const ent_t e[] = {{'f', "d/x", "x", 0, NULL}};
  blob_t b = TAR(e);
  char *err = NULL;
  assert_int_equal(atr_archive_extract(b.buf, b.len, tmpdir, NULL, &err),
                   ATR_EIO);
  char msg[256];
  snprintf(msg, sizeof msg, "cannot open directory \"%s/d\": Not a directory",
           tmpdir);
  assert_string_equal(err, msg);
  free(err);
  free(b.buf);
  char x[128];
  snprintf(x, sizeof x, "%s/x", target);
  assert_int_equal(access(x, F_OK), -1);
  assert_int_equal(rmdir(target), 0);
}

static void hard_links_must_name_an_earlier_file(void **state) {
  (void)state;
  const ent_t e1[] = {{'h', "h", NULL, 0, "../x"}};
  assert_refused(TAR(e1), NULL,
                 "archive entry \"h\": hard link target \"../x\": a path may "
                 "not contain \"..\"",
                 true);
  const ent_t e2[] = {{'h', "h", NULL, 0, "/etc/passwd"}};
  assert_refused(TAR(e2), NULL,
                 "archive entry \"h\": hard link target \"/etc/passwd\": a "
                 "path may not be absolute",
                 true);
  const ent_t e3[] = {{'h', "h", NULL, 0, "later"},
                      {'f', "later", "x", 0, NULL}};
  assert_refused(TAR(e3), NULL,
                 "archive entry \"h\": hard link target \"later\" is not a "
                 "regular file earlier in the archive",
                 true);
  const ent_t e4[] = {{'d', "dir", NULL, 0, NULL}, {'h', "h", NULL, 0, "dir"}};
  assert_refused(TAR(e4), NULL,
                 "archive entry \"h\": hard link target \"dir\" is not a "
                 "regular file earlier in the archive",
                 false);
}

/* ---- types and formats ----------------------------------------------------- */

static void special_files_are_refused(void **state) {
  (void)state;
  const ent_t e1[] = {{'p', "p", NULL, 0, NULL}};
  assert_refused(TAR(e1), NULL, "archive entry \"p\": FIFOs are not allowed",
                 true);
  const ent_t e2[] = {{'c', "dev/null", NULL, 0, NULL}};
  assert_refused(TAR(e2), NULL,
                 "archive entry \"dev/null\": device files are not allowed",
                 true);
}

static void other_formats_are_refused(void **state) {
  (void)state;
  const ent_t e[] = {{'f', "a.txt", "a", 0, NULL}};
  assert_refused(build_fmt(e, 1, false, true), NULL,
                 "not a tar or tar.gz archive", true);

  blob_t junk = {.buf = malloc(4096), .len = 4096};
  assert_non_null(junk.buf);
  srand(42);
  for (size_t i = 0; i < junk.len; i++)
    junk.buf[i] = (char)(rand() & 0xff);
  assert_refused(junk, NULL, "not a tar or tar.gz archive", true);

  blob_t empty = {.buf = malloc(1), .len = 0};
  assert_refused(empty, NULL, "not a tar or tar.gz archive: the data is empty",
                 true);
}

static void a_truncated_archive_is_refused(void **state) {
  (void)state;
  char big[2000];
  memset(big, 'b', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  const ent_t e[] = {{'f', "big", big, 0, NULL}};
  blob_t b = TAR(e);
  b.len = 1536; /* the header and part of the data */
  /* The rest of the message is libarchive's. */
  const char *prefix = "archive entry \"big\": Truncated ";
  char *err = NULL;
  assert_int_equal(atr_archive_extract(b.buf, b.len, tmpdir, NULL, &err),
                   ATR_EINVAL);
  assert_non_null(err);
  assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);
  free(err);
  err = NULL;
  assert_int_equal(atr_archive_check(b.buf, b.len, NULL, &err), ATR_EINVAL);
  assert_non_null(err);
  assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);
  free(err);
  free(b.buf);
}

/* ---- limits ------------------------------------------------------------------ */

static void archives_over_the_byte_limit_are_refused(void **state) {
  (void)state;
  const ent_t e[] = {{'f', "a", "0123456789", 0, NULL},
                     {'d', "d", NULL, 0, NULL},
                     {'f', "d/b", "0123456789", 0, NULL}};
  atr_archive_limits_t at = {.max_unpacked_bytes = 20};
  assert_accepted(TAR(e), &at);
  assert_int_equal(remove_tmpdir(NULL), 0);
  assert_int_equal(make_tmpdir(NULL), 0);
  atr_archive_limits_t under = {.max_unpacked_bytes = 19};
  assert_refused(TGZ(e), &under,
                 "the archive unpacks to more than 19 bytes (archive_limits)",
                 false);
}

static void archives_over_the_entry_limit_are_refused(void **state) {
  (void)state;
  const ent_t e[] = {{'d', "d", NULL, 0, NULL},
                     {'f', "d/a", "a", 0, NULL},
                     {'l', "l", NULL, 0, "d/a"}};
  atr_archive_limits_t at = {.max_entries = 3};
  assert_accepted(TAR(e), &at);
  assert_int_equal(remove_tmpdir(NULL), 0);
  assert_int_equal(make_tmpdir(NULL), 0);
  atr_archive_limits_t under = {.max_entries = 2};
  assert_refused(TAR(e), &under,
                 "the archive has more than 2 entries (archive_limits)", false);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, make_tmpdir, remove_tmpdir)
  const struct CMUnitTest tests[] = {
      T(a_tar_unpacks_files_dirs_links_and_safe_modes),
      T(a_tar_gz_unpacks_the_same),
      T(an_archive_without_entries_unpacks_to_nothing),
      T(check_writes_nothing),
      T(absolute_paths_are_refused),
      T(dot_dot_components_are_refused),
      T(empty_and_overlong_names_are_refused),
      T(a_name_used_twice_is_refused),
      T(symlinks_to_absolute_targets_are_refused),
      T(symlinks_climbing_out_are_refused),
      T(symlinks_with_dot_dot_after_a_name_are_refused),
      T(nothing_is_written_through_a_symlink),
      T(an_existing_symlink_in_the_directory_is_not_followed),
      T(hard_links_must_name_an_earlier_file),
      T(special_files_are_refused),
      T(other_formats_are_refused),
      T(a_truncated_archive_is_refused),
      T(archives_over_the_byte_limit_are_refused),
      T(archives_over_the_entry_limit_are_refused),
  };
#undef T
  return cmocka_run_group_tests_name("archive", tests, NULL, NULL);
}
