/* core/domain/param_regex.c — see param_regex.h. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "param_regex.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>

#include "atrium/error.h"

/* What one match may cost: far past any sensible pattern on a parameter
 * value, far below a second of work. */
#define MATCH_LIMIT 200000 /* backtracking steps */
#define DEPTH_LIMIT 2000   /* nested backtracking points */
#define HEAP_LIMIT_KIB 1024

struct atr_regex {
  pcre2_code *code;
};

int atr_regex_compile(const char *pattern, atr_regex_t **out, char *why,
                      size_t why_size) {
  *out = NULL;
  pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
  if (!cc)
    return ATR_ENOMEM;
  pcre2_set_max_pattern_length(cc, ATR_REGEX_MAX_PATTERN);
  pcre2_set_parens_nest_limit(cc, ATR_REGEX_MAX_NESTING);
  int code = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code *re =
      pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                    PCRE2_UTF | PCRE2_NO_AUTO_CAPTURE, &code, &offset, cc);
  pcre2_compile_context_free(cc);
  if (!re) {
    PCRE2_UCHAR msg[200];
    if (pcre2_get_error_message(code, msg, sizeof msg) < 0)
      snprintf((char *)msg, sizeof msg, "error %d", code);
    snprintf(why, why_size, "%s at offset %zu", (const char *)msg,
             (size_t)offset);
    return ATR_EINVAL;
  }
  *out = malloc(sizeof **out);
  if (!*out) {
    pcre2_code_free(re);
    return ATR_ENOMEM;
  }
  (*out)->code = re;
  return 0;
}

int atr_regex_match(const atr_regex_t *re, const char *value, size_t len) {
  pcre2_match_context *mc = pcre2_match_context_create(NULL);
  pcre2_match_data *md = pcre2_match_data_create_from_pattern(re->code, NULL);
  int rc = ATR_ENOMEM;
  if (mc && md) {
    pcre2_set_match_limit(mc, MATCH_LIMIT);
    pcre2_set_depth_limit(mc, DEPTH_LIMIT);
    pcre2_set_heap_limit(mc, HEAP_LIMIT_KIB);
    int n = pcre2_match(re->code, (PCRE2_SPTR)value, len, 0, 0, md, mc);
    if (n >= 0)
      rc = 1;
    else if (n == PCRE2_ERROR_MATCHLIMIT || n == PCRE2_ERROR_DEPTHLIMIT ||
             n == PCRE2_ERROR_HEAPLIMIT)
      rc = ATR_ERANGE;
    else /* no match, or a value that is not UTF-8 */
      rc = 0;
  }
  pcre2_match_data_free(md);
  pcre2_match_context_free(mc);
  return rc;
}

void atr_regex_free(atr_regex_t *re) {
  if (!re)
    return;
  pcre2_code_free(re->code);
  free(re);
}
