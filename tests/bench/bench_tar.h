/* tests/bench/bench_tar.h — a template directory packed for an upload, as
 * the benches that build workspaces (tests/bench/builds,
 * tests/bench/agents) need it. Runs tar(1); no shared state. */
#ifndef ATRIUM_TESTS_BENCH_TAR_H
#define ATRIUM_TESTS_BENCH_TAR_H

#include <stddef.h>

/* dir packed by tar(1) into the file archive (made or overwritten) and
 * read back: malloc'd bytes, *len their count; NULL when any step
 * failed. The caller removes archive. */
char *bench_tar_gz(const char *dir, const char *archive, size_t *len);

#endif
