/* tests/fuzz/fuzz_cron.c — a workspace's autostart schedule as
 * PUT /workspaces/{id}/autostart and a `schedule` policy's set hand it to
 * core/domain/schedule.c: the cron check (cron_problem), and for a text
 * it accepts, the schedule JSON that is stored, shown to the policies and
 * answered (schedule_json).
 *
 * The checker is a static function, so this file includes schedule.c
 * itself rather than widen the domain's interface for a test; the rest of
 * the domain comes from atrium_domain as usual, and nothing here opens a
 * database.
 *
 * Input: the schedule text, cut at the first NUL and at 1 KiB (an API
 * body carries more, but the checker reads the text once, left to
 * right). What an accepted text must be, beyond not crashing: five
 * fields of the documented characters after an optional
 * "CRON_TZ=<zone> " and, when it is valid UTF-8 (as every JSON body and
 * policy value is), a schedule JSON that holds it unchanged. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schedule.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_TEXT 1024

/* The documented shape, counted independently of cron_problem. */
static void check_shape(const char *s) {
  if (strncmp(s, "CRON_TZ=", 8) == 0) {
    const char *sp = strchr(s, ' ');
    if (!sp || sp == s + 8)
      abort();
    s = sp + 1;
  }
  int fields = 0;
  bool in_field = false;
  for (const char *p = s; *p; p++) {
    if (*p == ' ') {
      in_field = false;
      continue;
    }
    if (!isalnum((unsigned char)*p) && !strchr("*,-/", *p))
      abort();
    if (!in_field)
      fields++;
    in_field = true;
  }
  if (fields != 5)
    abort();
}

static void check_json(const char *s) {
  json_t *probe = json_string(s);
  if (!probe)
    return; /* not UTF-8: no JSON body or policy value carries it */
  json_decref(probe);
  json_t *j = schedule_json(s, false, MIN_TTL_MS);
  const char *kept = json_string_value(json_object_get(j, "autostart"));
  if (!kept || strcmp(kept, s) != 0 ||
      json_integer_value(json_object_get(j, "ttl_ms")) != MIN_TTL_MS)
    abort();
  json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = strndup((const char *)data, size < MAX_TEXT ? size : MAX_TEXT);
  if (!s)
    return 0;
  if (cron_problem(s) == NULL) {
    check_shape(s);
    check_json(s);
  }
  /* Off is null, never an empty string. */
  json_t *off = schedule_json(NULL, true, 0);
  if (!off || !json_is_null(json_object_get(off, "autostart")))
    abort();
  json_decref(off);
  free(s);
  return 0;
}
