/* core/domain/rows.h — database rows as the JSON the API and the CLI
 * show, and the small value rules every domain module shares (times, names).
 *
 * Threads: pure helpers over the connection they are given.
 */
#ifndef ATRIUM_CORE_ROWS_H
#define ATRIUM_CORE_ROWS_H

#include <jansson.h>
#include <stdint.h>

#include "db.h"

/* A text column, "" for NULL (json_pack refuses NULL strings). */
const char *atr_row_text(atr_db_t *db, atr_db_rows_t *rows, size_t i);
/* Rows of one kind as JSON: a SELECT that a WHERE (or JOIN) clause is
 * appended to, each row as JSON, and what to add to each once all rows are
 * read (another query may run then; NULL for nothing). */
typedef struct atr_select {
  const char *sql;
  json_t *(*row)(atr_db_t *db, atr_db_rows_t *rows);
  int (*complete)(atr_db_t *db, json_t *item, char **err);
} atr_select_t;

/* Every row of s's SELECT with `where` (and its n params) as a new JSON
 * array in *out. */
int atr_select_list(atr_db_t *db, const atr_select_t *s, const char *where,
                    const atr_value_t *p, size_t n, json_t **out, char **err);
/* The first of those rows in *out (owned); ATR_ENOENT when there is none. */
int atr_select_one(atr_db_t *db, const atr_select_t *s, const char *where,
                   const atr_value_t *p, size_t n, json_t **out, char **err);
/* Rows of two text columns, a name and its value, set in the object into
 * (NULL columns as ""). */
int atr_select_object(atr_db_t *db, const char *sql, const atr_value_t *p,
                      size_t n, json_t *into, char **err);
/* RFC 3339 UTC with microseconds, or null for 0. */
json_t *atr_time_json(int64_t us);
/* Why a template or workspace name is not acceptable (NULL when it is):
 * 1 to 32 letters, digits or single hyphens, not starting or ending with
 * a hyphen (Coder's rule). */
const char *atr_name_problem(const char *s);
/* A string member of o, "" when it is absent or not a string. */
const char *atr_json_str(const json_t *o, const char *key);

#endif
