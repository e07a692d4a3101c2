/* tests/abi/fixture_marker.h — how fixtures prove that fini() ran: they
 * append their name and a newline to the file named by their `marker`
 * option, so a test can also check the order of fini() calls. */
#ifndef ATRIUM_TESTS_FIXTURE_MARKER_H
#define ATRIUM_TESTS_FIXTURE_MARKER_H

#include <stdio.h>

static inline void fixture_mark(const char *marker, const char *name) {
  FILE *f = marker ? fopen(marker, "a") : NULL;
  if (f != NULL) {
    fprintf(f, "%s\n", name);
    fclose(f);
  }
}

#endif
