/* tests/fuzz/fuzz_archive.c — template archives (tar, tar.gz): check,
 * then unpack into a scratch directory under the upload limits, then read
 * template.yaml out of it, as a template version's import does. Nothing
 * may land outside the directory it is unpacked into. */
#include <dirent.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "archive.h"
#include "scratch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64]; /* made once per process */
static char unpack[80];  /* emptied after every input */
static size_t scratch_len;

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  (void)st;
  (void)flag;
  return ftw->level == 0 ? 0 : remove(path);
}

/* Whatever the archive held, nothing may appear beside the directory it
 * was unpacked into. */
static void check_nothing_escaped(void) {
  DIR *d = opendir(scratch);
  if (!d)
    abort();
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
        strcmp(e->d_name, "dir") != 0)
      abort();
  closedir(d);
}

static void empty_unpack(void) {
  nftw(unpack, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void) {
  empty_unpack();
  rmdir(unpack);
  rmdir(scratch);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (!scratch_len) {
    fuzz_scratch_dir(scratch, sizeof scratch);
    scratch_len = strlen(scratch);
    snprintf(unpack, sizeof unpack, "%s/dir", scratch);
    if (mkdir(unpack, 0700) != 0)
      abort();
    atexit(cleanup);
  }
  atr_archive_limits_t lim = {.max_unpacked_bytes = 1 << 20, .max_entries = 64};
  char *err = NULL;
  int checked = atr_archive_check(data, size, &lim, &err);
  free(err);
  err = NULL;
  if (checked == 0) {
    atr_archive_extract(data, size, unpack, &lim, &err);
    free(err);
    err = NULL;
    check_nothing_escaped();
    empty_unpack();
  }
  char *text = NULL;
  size_t len = 0;
  atr_archive_read_file(data, size, "template.yaml", 4096, &text, &len, &err);
  free(text);
  free(err);
  return 0;
}
