/* plugins/auth_password/policy.c — is a new password acceptable?
 *
 * The rules run in a fixed order and the first one broken answers, with one
 * sentence for the user that names what is wrong and what is required:
 * valid UTF-8, min_length, max_length, not a common password, not containing
 * the username or the email's local part, enough character classes. Lengths
 * count code points, so "ééééééé" is 7 characters, not 14 bytes.
 *
 * Case-insensitive means ASCII case folding: the username, the email and
 * the list of common passwords are ASCII in practice, and folding other
 * scripts would need locale data the rules do not otherwise need.
 *
 * Threads: any, concurrently; pure functions over the caller's buffers. The
 * password is read in place and never copied, so nothing here needs wiping.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The most used passwords of at least 6 characters (the lowest min_length)
 * in public breach corpora. Lower case; compared case-insensitively with the
 * whole password. */
static const char *const common_passwords[] = {
    "123456",    "654321",     "111111",     "123123",      "abc123",
    "qwerty",    "dragon",     "monkey",     "letmein",     "welcome",
    "1234567",   "password",   "12345678",   "87654321",    "11111111",
    "00000000",  "qwertyui",   "iloveyou",   "sunshine",    "princess",
    "football",  "baseball",   "superman",   "starwars",    "trustno1",
    "passw0rd",  "p@ssw0rd",   "letmein1",   "welcome1",    "admin123",
    "changeme",  "abcd1234",   "abc12345",   "1q2w3e4r",    "1qaz2wsx",
    "password1", "123456789",  "qwerty123",  "iloveyou1",   "123123123",
    "987654321", "qwertyuiop", "1234567890", "password123", "changeme123",
};

static int lower(int ch) {
  return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static bool equal_ci(const char *a, const char *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
      return false;
  return true;
}

static bool contains_ci(const char *hay, size_t hay_len, const char *needle,
                        size_t needle_len) {
  for (size_t i = 0; needle_len <= hay_len && i <= hay_len - needle_len; i++)
    if (equal_ci(hay + i, needle, needle_len))
      return true;
  return false;
}

/* Bytes of the UTF-8 sequence a lead byte starts, 0 for a byte that cannot
 * start one. */
static size_t utf8_seq_len(unsigned char b) {
  if (b < 0x80)
    return 1;
  if (b >= 0xC2 && b <= 0xDF)
    return 2;
  if (b >= 0xE0 && b <= 0xEF)
    return 3;
  if (b >= 0xF0 && b <= 0xF4)
    return 4;
  return 0;
}

/* Code points in s, or -1 when s is not valid UTF-8 (a lone continuation
 * byte, a cut sequence, a bad lead byte). Overlong 3- and 4-byte forms and
 * surrogates are not refused: they do not change what is counted. */
static long utf8_count(const char *s, size_t len) {
  long n = 0;
  for (size_t i = 0; i < len; n++) {
    size_t k = utf8_seq_len((unsigned char)s[i]);
    if (k == 0 || k > len - i)
      return -1;
    for (size_t j = 1; j < k; j++)
      if (((unsigned char)s[i + j] & 0xC0) != 0x80)
        return -1;
    i += k;
  }
  return n;
}

static bool is_common(const char *secret, size_t len) {
  size_t n = sizeof common_passwords / sizeof common_passwords[0];
  for (size_t i = 0; i < n; i++)
    if (strlen(common_passwords[i]) == len &&
        equal_ci(secret, common_passwords[i], len))
      return true;
  return false;
}

/* Whether secret contains `part` (the first part_len bytes), when part is
 * long enough to mean something. */
static bool contains_part(const char *secret, size_t len, const char *part,
                          size_t part_len) {
  if (part == NULL || utf8_count(part, part_len) < 3)
    return false;
  return contains_ci(secret, len, part, part_len);
}

/* The local part of an address is what comes before its last '@'. */
static size_t local_part_len(const char *email) {
  const char *at = strrchr(email, '@');
  return at != NULL ? (size_t)(at - email) : strlen(email);
}

static int count_classes(const char *s, size_t len) {
  bool lo = false, up = false, digit = false, other = false;
  for (size_t i = 0; i < len; i++) {
    unsigned char b = (unsigned char)s[i];
    if (b >= 'a' && b <= 'z')
      lo = true;
    else if (b >= 'A' && b <= 'Z')
      up = true;
    else if (b >= '0' && b <= '9')
      digit = true;
    else
      other = true; /* spaces, punctuation, anything beyond ASCII */
  }
  return (int)lo + (int)up + (int)digit + (int)other;
}

/* *why goes to the host, which releases it: its allocator, then. */
static int refuse(const atr_host_t *host, char **why, const char *fmt, ...)
    ATR_PRINTF(3, 4);
static int refuse(const atr_host_t *host, char **why, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = NULL;
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  int n = vasprintf(&msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    return ATR_ENOMEM;
  if (why != NULL && (*why = atr_mem_strdup(host, msg)) == NULL) {
    free(msg);
    return ATR_ENOMEM;
  }
  free(msg);
  return ATR_EINVAL;
}

int ap_check_secret_policy(void *ctx, const char *secret, size_t secret_len,
                           const char *username, const char *email,
                           char **why) {
  const ap_ctx_t *c = ctx;
  if (secret == NULL && secret_len > 0)
    return refuse(c->host, why, "The password is missing; choose one.");
  long chars = utf8_count(secret, secret_len);
  if (chars < 0)
    return refuse(c->host, why, "The password must be valid UTF-8 text.");
  if (chars < c->min_length)
    return refuse(c->host, why,
                  "The password must be at least %lld characters long.",
                  (long long)c->min_length);
  if (chars > c->max_length)
    return refuse(c->host, why,
                  "The password must be at most %lld characters long.",
                  (long long)c->max_length);
  if (c->reject_common && is_common(secret, secret_len))
    return refuse(c->host, why,
                  "The password is too common; choose one that is "
                  "harder to guess.");
  if (c->reject_username && username != NULL &&
      contains_part(secret, secret_len, username, strlen(username)))
    return refuse(c->host, why, "The password must not contain the username.");
  if (c->reject_username && email != NULL &&
      contains_part(secret, secret_len, email, local_part_len(email)))
    return refuse(c->host, why,
                  "The password must not contain the part of the email "
                  "address before the @.");
  if (count_classes(secret, secret_len) < c->require_classes)
    return refuse(c->host, why,
                  "The password must use at least %lld of: lower-case "
                  "letters, upper-case letters, digits, symbols.",
                  (long long)c->require_classes);
  return 0;
}
