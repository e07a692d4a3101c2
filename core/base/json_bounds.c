/* core/base/json_bounds.c — see json_bounds.h. */
#include "json_bounds.h"

#include <stdbool.h>
#include <stdio.h>

#include "atrium/error.h"

/* Values are counted from above: every container, and one more value per
 * separator; a scalar with no separator before it is the first of its
 * container or the whole text, which the +1 per container and the +1 for
 * the text cover. Bytes inside strings are skipped. */
int atr_json_measure(const char *buf, size_t len, const atr_json_bounds_t *b,
                     char *why, size_t why_size) {
  size_t depth = 0, values = 1;
  bool in_string = false;
  for (size_t i = 0; i < len; i++) {
    char c = buf[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      values++;
      if (++depth > b->max_depth) {
        snprintf(why, why_size, "nested deeper than %zu levels", b->max_depth);
        return ATR_ERANGE;
      }
    } else if (c == ']' || c == '}') {
      if (depth > 0)
        depth--;
    } else if (c == ',') {
      values++;
    }
    if (values > b->max_values) {
      snprintf(why, why_size, "more than %zu values", b->max_values);
      return ATR_ERANGE;
    }
  }
  return 0;
}
