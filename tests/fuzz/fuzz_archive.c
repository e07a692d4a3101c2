/* tests/fuzz/fuzz_archive.c — template archives (tar, tar.gz): check,
 * then unpack into a scratch directory under the upload limits, then read
 * template.yaml out of it, as a template version's import does. Whatever
 * was unpacked must stay inside the scratch directory. */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "archive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char scratch[64]; /* made once per process */
static char unpack[80];  /* emptied after every input */
static size_t scratch_len;

static int remove_one(const char *path, const struct stat *st, int flag,
                      struct FTW *ftw) {
  (void)st;
  (void)flag;
  if (ftw->level == 0)
    return 0;
  if (strncmp(path, unpack, strlen(unpack)) != 0)
    abort(); /* nftw does not follow links: nothing escapes */
  return remove(path);
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
    const char *tmp = getenv("TMPDIR");
    snprintf(scratch, sizeof scratch, "%s/atr-fuzz-XXXXXX",
             tmp && strlen(tmp) < 40 ? tmp : "/tmp");
    if (!mkdtemp(scratch))
      abort();
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
    empty_unpack();
  }
  char *text = NULL;
  size_t len = 0;
  atr_archive_read_file(data, size, "template.yaml", 4096, &text, &len, &err);
  free(text);
  free(err);
  return 0;
}
