/* tests/unit/manifest_errors.h — what test_manifest and
 * test_manifest_agent share: a template.yaml that must be refused,
 * compared with the exact errors expected ("field|detail" per line).
 * Single-threaded test code; cmocka assertions. */
#ifndef ATRIUM_TESTS_MANIFEST_ERRORS_H
#define ATRIUM_TESTS_MANIFEST_ERRORS_H

#include <jansson.h>

#include "manifest.h"

/* The errors as one text, "field|detail\n" per error; the caller frees. */
char *manifest_errors_text(json_t *errors);

/* yaml must fail to parse (ATR_EINVAL) with exactly expected; *m is what
 * the parse left, for the caller's own checks. */
void manifest_assert_errors(const char *yaml, const char *expected,
                            atr_manifest_t *m);

#endif
