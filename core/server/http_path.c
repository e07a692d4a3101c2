/* core/server/http_path.c — see http_path.h. */
#include "http_path.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static int hex(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Length of the UTF-8 sequence at s (1..4), or 0 when it is not a valid
 * one: no overlong forms, no surrogates, nothing past U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t left) {
  if (s[0] < 0x80)
    return 1;
  size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
  if (n == 0 || n > left || s[0] > 0xf4)
    return 0;
  for (size_t i = 1; i < n; i++)
    if ((s[i] & 0xc0) != 0x80)
      return 0;
  if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
      (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
    return 0;
  return n;
}

static bool valid_utf8(const char *s, size_t len) {
  for (size_t i = 0; i < len;) {
    size_t n = utf8_len((const unsigned char *)s + i, len - i);
    if (n == 0)
      return false;
    i += n;
  }
  return true;
}

static bool dot_segment(const char *path) {
  for (const char *seg = path; seg; seg = strchr(seg + 1, '/')) {
    const char *s = *seg == '/' ? seg + 1 : seg;
    size_t n = strcspn(s, "/");
    if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
      return true;
  }
  return false;
}

char *atr_http_path_decode(const char *raw, const char **why) {
  size_t len = strlen(raw), o = 0;
  char *out = malloc(len + 1);
  if (!out) {
    *why = "Out of memory.";
    return NULL;
  }
  for (size_t i = 0; i < len; i++) {
    if (raw[i] != '%') {
      out[o++] = raw[i];
      continue;
    }
    int hi = i + 2 < len ? hex(raw[i + 1]) : -1;
    int lo = hi >= 0 ? hex(raw[i + 2]) : -1;
    if (lo < 0) {
      *why = "The path has a malformed percent escape.";
      free(out);
      return NULL;
    }
    out[o++] = (char)(hi * 16 + lo);
    i += 2;
    if (out[o - 1] == '\0') {
      *why = "The path has an encoded NUL (%00).";
      free(out);
      return NULL;
    }
  }
  out[o] = '\0';
  if (!valid_utf8(out, o)) {
    *why = "The path is not valid UTF-8.";
  } else if (dot_segment(out)) {
    *why = "The path has a \".\" or \"..\" segment.";
  } else {
    return out;
  }
  free(out);
  return NULL;
}
