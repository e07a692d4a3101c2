/* tests/abi/fixture_opts.h — the context of fixture_opts, shared with
 * test_loader.c so the test can see what the host filled in. */
#ifndef ATRIUM_TESTS_FIXTURE_OPTS_H
#define ATRIUM_TESTS_FIXTURE_OPTS_H

#include <stdint.h>

typedef struct fixture_opts_ctx {
  const char *endpoint; /* required string */
  int64_t workers;      /* int, 1..64, needs a restart */
  int64_t timeout_ms;   /* duration */
  const char *mode;     /* enum fast|safe */
  const char *token;    /* secret, reloadable */
  int64_t batch;        /* int, reloadable */
  const char *marker;   /* fini appends the plugin's name to this file */
  int reloads;          /* how often reload() ran */
  int64_t batch_seen_by_reload;
} fixture_opts_ctx_t;

#endif
