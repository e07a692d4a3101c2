/* core/store/integrity.c — see integrity.h. */
#include "integrity.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "log.h"

/* quick_check lists up to this many problems; the first few say enough. */
#define MAX_LINES 5

static pthread_mutex_t result_lock = PTHREAD_MUTEX_INITIALIZER;
static atr_integrity_state_t result_state;
static char *result_message;
static int64_t result_at_us;

static void record(atr_integrity_state_t state, char *message) {
  pthread_mutex_lock(&result_lock);
  bool changed = state != result_state;
  result_state = state;
  free(result_message);
  result_message = message;
  result_at_us = atr_db_now_us();
  pthread_mutex_unlock(&result_lock);
  if (changed && state == ATR_INTEGRITY_DAMAGED)
    atr_log(ATR_LOG_ERROR, "store",
            "the database integrity check failed: %s; restore the last "
            "backup (docs/admin.md)",
            message ? message : "(no detail)");
  else if (changed && state == ATR_INTEGRITY_OK)
    atr_log(ATR_LOG_INFO, "store", "the database integrity check passed");
}

/* quick_check's rows: one "ok", or one line per problem. */
static int quick_check(atr_db_t *db, bool *ok, char **message, char **err) {
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, "PRAGMA quick_check", NULL, 0, &rows, err);
  if (rc != 0)
    return rc;
  size_t lines = 0, len = 0;
  char *text = NULL;
  FILE *out = open_memstream(&text, &len);
  *ok = false;
  while ((rc = atr_db_next(db, rows, err)) == 1) {
    const char *line = atr_db_get_text(db, rows, 0);
    if (lines == 0 && line && strcmp(line, "ok") == 0)
      *ok = true;
    if (lines < MAX_LINES && out)
      fprintf(out, "%s%s", lines ? "; " : "", line ? line : "");
    lines++;
  }
  atr_db_rows_close(db, rows);
  if (out)
    fclose(out);
  if (lines != 1)
    *ok = false;
  *message = text;
  return rc < 0 ? rc : 0;
}

int atr_integrity_check(atr_store_t *store, char **err) {
  if (strcmp(store->ops->dialect, "sqlite") != 0) {
    record(ATR_INTEGRITY_NOT_APPLICABLE,
           strdup("not applicable: the database checks its own pages"));
    return 0;
  }
  atr_db_t db = {0};
  int rc = atr_db_open(store, &db, err);
  bool ok = false;
  char *message = NULL;
  if (rc == 0)
    rc = quick_check(&db, &ok, &message, err);
  atr_db_close(&db);
  /* SQLite reports damage it meets while reading as a failed statement */
  if (rc == ATR_EIO || rc == ATR_ECONSTRAINT) {
    free(message);
    message = strdup(err && *err ? *err : atr_strerror(rc));
    ok = false;
    rc = 0;
  }
  if (rc != 0) {
    free(message);
    return rc;
  }
  record(ok ? ATR_INTEGRITY_OK : ATR_INTEGRITY_DAMAGED, message);
  return 0;
}

atr_integrity_state_t atr_integrity_last(char **message,
                                         int64_t *checked_at_us) {
  pthread_mutex_lock(&result_lock);
  atr_integrity_state_t state = result_state;
  if (message)
    *message = result_message ? strdup(result_message) : NULL;
  if (checked_at_us)
    *checked_at_us = result_at_us;
  pthread_mutex_unlock(&result_lock);
  return state;
}

/* ---- the checker thread ------------------------------------------------- */

static pthread_mutex_t checker_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t checker_wake = PTHREAD_COND_INITIALIZER;
static pthread_t checker;
static bool checker_running, checker_stop;
static atr_store_t *checker_store;
static int64_t checker_interval_ms;

static void run_check(void) {
  char *err = NULL;
  int rc = atr_integrity_check(checker_store, &err);
  if (rc != 0)
    atr_log(ATR_LOG_WARN, "store",
            "the database integrity check could not "
            "run: %s",
            err ? err : atr_strerror(rc));
  free(err);
}

static void *checker_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&checker_lock);
  while (!checker_stop) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += checker_interval_ms / 1000;
    until.tv_nsec += (checker_interval_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000;
    }
    while (!checker_stop &&
           pthread_cond_timedwait(&checker_wake, &checker_lock, &until) == 0)
      ;
    if (checker_stop)
      break;
    pthread_mutex_unlock(&checker_lock);
    run_check();
    pthread_mutex_lock(&checker_lock);
  }
  pthread_mutex_unlock(&checker_lock);
  return NULL;
}

int atr_integrity_start(atr_store_t *store, int64_t interval_ms, char **err) {
  checker_store = store;
  checker_interval_ms = interval_ms > 0 ? interval_ms : 3600000;
  run_check();
  checker_stop = false;
  if (pthread_create(&checker, NULL, checker_main, NULL) != 0) {
    if (err)
      *err = strdup("cannot start the database integrity checker thread");
    return ATR_ENOMEM;
  }
  checker_running = true;
  return 0;
}

void atr_integrity_stop(void) {
  if (!checker_running)
    return;
  pthread_mutex_lock(&checker_lock);
  checker_stop = true;
  pthread_cond_signal(&checker_wake);
  pthread_mutex_unlock(&checker_lock);
  pthread_join(checker, NULL);
  checker_running = false;
}
