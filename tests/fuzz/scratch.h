/* tests/fuzz/scratch.h — a scratch directory for the fuzzers that go
 * through files (archive unpacking, workspace.yaml): made once per
 * process, in /dev/shm when there is one (thousands of small writes a
 * second), else in $TMPDIR or /tmp; removed at exit by the caller. */
#ifndef ATRIUM_FUZZ_SCRATCH_H
#define ATRIUM_FUZZ_SCRATCH_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fill buf (size >= 64) with a new directory's path; aborts on failure. */
static inline void fuzz_scratch_dir(char *buf, size_t size) {
  const char *base = getenv("TMPDIR");
  if (access("/dev/shm", W_OK | X_OK) == 0)
    base = "/dev/shm";
  else if (!base || strlen(base) > size - 20)
    base = "/tmp";
  snprintf(buf, size, "%s/atr-fuzz-XXXXXX", base);
  if (!mkdtemp(buf))
    abort();
}

#endif
