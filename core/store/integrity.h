/* core/store/integrity.h — is the database file sound? A cheap integrity
 * check (SQLite's PRAGMA quick_check) on start and on a timer, whose last
 * result /readyz and the health report read.
 *
 * A SQLite file damaged in a middle page still opens and still answers
 * SELECT 1, while the queries that touch the page fail; without this the
 * server looked ready and healthy while sign-in answered 500. PostgreSQL
 * checks its own pages (checksums, amcheck) and has no cheap equivalent,
 * so there the check is "not applicable" and never fails.
 *
 * The checker thread owns the result; readers take it under a lock.
 * Threads: start/stop from the main thread; reads from any thread.
 */
#ifndef ATRIUM_CORE_INTEGRITY_H
#define ATRIUM_CORE_INTEGRITY_H

#include <stdbool.h>
#include <stdint.h>

#include "db.h"

typedef enum atr_integrity_state {
  ATR_INTEGRITY_UNKNOWN = 0,   /* not checked yet, or the check could not run */
  ATR_INTEGRITY_OK,            /* the last check found nothing */
  ATR_INTEGRITY_DAMAGED,       /* the last check found damage */
  ATR_INTEGRITY_NOT_APPLICABLE /* the backend checks itself (PostgreSQL) */
} atr_integrity_state_t;

/* Run the check now and record its result: 0 when it ran (whatever it
 * found), else the ATR_E… that kept it from running (the database is
 * down), with the previous result kept. */
int atr_integrity_check(atr_store_t *store, char **err);

/* The last result; *message (malloc'd, may be NULL) says what was found
 * ("ok", or quick_check's first lines); *checked_at_us when. */
atr_integrity_state_t atr_integrity_last(char **message,
                                         int64_t *checked_at_us);

/* Check now, then every interval_ms on a thread of its own. */
int atr_integrity_start(atr_store_t *store, int64_t interval_ms, char **err);
/* Stop the thread (waits for a check in progress); safe when not started. */
void atr_integrity_stop(void);

#endif
