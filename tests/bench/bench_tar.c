/* tests/bench/bench_tar.c — see bench_tar.h. */
#include "bench_tar.h"

#include <stdio.h>
#include <stdlib.h>

char *bench_tar_gz(const char *dir, const char *archive, size_t *len) {
  char cmd[1024];
  snprintf(cmd, sizeof cmd, "tar -C '%s' -czf '%s' .", dir, archive);
  char *data = NULL;
  FILE *f = system(cmd) == 0 ? fopen(archive, "rb") : NULL;
  if (f) {
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    data = n > 0 ? malloc((size_t)n) : NULL;
    if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
      free(data);
      data = NULL;
    }
    *len = data ? (size_t)n : 0;
    fclose(f);
  }
  return data;
}
