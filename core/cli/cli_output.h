/* core/cli/cli_output.h — what the commands print: members of the server's
 * JSON, the JSON itself (--output json), times, and tables with aligned
 * columns. Everything goes to stdout.
 *
 * Threads: main thread only. */
#ifndef ATRIUM_CORE_CLI_OUTPUT_H
#define ATRIUM_CORE_CLI_OUTPUT_H

#include <jansson.h>
#include <stddef.h>

/* A string member, or NULL. */
const char *atr__cli_str(const json_t *obj, const char *key);
/* The same for printing: "-" when missing. */
const char *atr__cli_txt(const json_t *obj, const char *key);
/* j indented, on a line of its own; nothing for NULL. */
void atr__cli_print_json(const json_t *j);

/* "2026-01-02T15:04:05.123456Z" → "2026-01-02T15:04:05Z" in buf; none
 * for NULL or "". */
const char *atr__cli_time(const char *iso, char buf[32], const char *none);
/* Seconds from RFC 3339 time a to b; -1 when either is missing. */
double atr__cli_seconds(const char *a, const char *b);
/* How long before now: "12s ago", "5m ago", "3h ago", "2d ago" in buf;
 * NULL when iso is not a time. */
const char *atr__cli_ago(const char *iso, char buf[32]);

/* A table printed with aligned columns (at most 8); cells are copied ("-"
 * for NULL or ""). */
typedef struct atr__cli_table {
  size_t ncols, nrows;
  const char *const *head;
  char **cells; /* nrows * ncols, owned */
} atr__cli_table_t;
/* 0 or ATR_ENOMEM. */
int atr__cli_table_add(atr__cli_table_t *t, const char *const *row);
void atr__cli_table_print(const atr__cli_table_t *t);
void atr__cli_table_free(atr__cli_table_t *t);

#endif
