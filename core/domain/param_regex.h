/* core/domain/param_regex.h — template parameter patterns (validation.regex)
 * whose cost is bounded, whoever wrote them.
 *
 * A template author writes the pattern; a member writes the value. glibc's
 * regcomp copied a pattern's tree once per repetition ("a+++..." grew
 * without bound) and its regexec backtracked exponentially on some
 * patterns (tens of seconds for 80 characters). PCRE2 is used instead,
 * with limits set before any work: the pattern's length and nesting when
 * compiling, and the match's backtracking steps, depth and heap when
 * matching. The syntax is PCRE2's (Perl-compatible, close to the RE2
 * syntax Coder's parameters use); a value must contain a match, so anchor
 * with ^...$ to match the whole value.
 *
 * Threads: a compiled pattern may be shared between threads; each match
 * uses data of its own.
 */
#ifndef ATRIUM_CORE_PARAM_REGEX_H
#define ATRIUM_CORE_PARAM_REGEX_H

#include <stddef.h>

#define ATR_REGEX_MAX_PATTERN 1000 /* bytes */
#define ATR_REGEX_MAX_NESTING 32   /* parentheses inside each other */

typedef struct atr_regex atr_regex_t;

/* Compile; ATR_EINVAL with why ("missing closing parenthesis at offset
 * 2") for a pattern that is invalid or over the limits. */
int atr_regex_compile(const char *pattern, atr_regex_t **out, char *why,
                      size_t why_size);
/* 1 when value contains a match, 0 when it does not (or is not UTF-8),
 * ATR_ERANGE when deciding would cost more than the limits allow. */
int atr_regex_match(const atr_regex_t *re, const char *value, size_t len);
void atr_regex_free(atr_regex_t *re);

#endif
