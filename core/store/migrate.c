/* core/migrate.c — see migrate.h. */
#include "migrate.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "log.h"

static const char create_sql[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version BIGINT PRIMARY KEY,"
    " name TEXT NOT NULL,"
    " applied_at TIMESTAMPTZ NOT NULL)";

static int ensure_table(atr_store_t *store, char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  rc = atr_db_exec(&db, create_sql, NULL, 0, NULL, err);
  atr_db_close(&db);
  return rc;
}

int atr_migrate_current(atr_store_t *store, int *version, char **err) {
  *version = 0;
  int rc = ensure_table(store, err);
  if (rc != 0)
    return rc;
  atr_db_t db;
  rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  int64_t v = 0;
  rc = atr_db_query_int(
      &db, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations", NULL, 0,
      &v, err);
  atr_db_close(&db);
  *version = (int)v;
  return rc;
}

typedef struct step {
  const atr_migration_t *m;
  bool skipped;
} step_t;

static int apply_tx(atr_db_t *db, void *ud, char **err) {
  step_t *s = ud;
  int rc = 0;
  /* Replicas starting together: the first to lock migrates, the others
   * find the version recorded and skip it. */
  if (strcmp(db->store->ops->dialect, "postgres") == 0)
    rc = atr_db_exec(db, "LOCK TABLE schema_migrations IN EXCLUSIVE MODE", NULL,
                     0, NULL, err);
  int64_t seen = 0;
  atr_value_t v = atr_v_int(s->m->version);
  if (rc == 0)
    rc = atr_db_query_int(
        db, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", &v, 1,
        &seen, err);
  if (rc != 0 || seen > 0) {
    s->skipped = rc == 0;
    return rc;
  }
  rc = atr_db_exec_script(db, s->m->sql, err);
  if (rc != 0)
    return rc;
  atr_value_t row[] = {atr_v_int(s->m->version), atr_v_text(s->m->name),
                       atr_v_time(atr_db_now_us())};
  return atr_db_exec(db,
                     "INSERT INTO schema_migrations (version, name, "
                     "applied_at) VALUES (?, ?, ?)",
                     row, 3, NULL, err);
}

static int refuse_newer(int current, const atr_migration_t *migs, size_t n,
                        char **err) {
  int newest = n ? migs[n - 1].version : 0;
  if (current <= newest)
    return 0;
  if (asprintf(err,
               "the database schema is at version %d but this atrium knows "
               "only up to %d; run the newer atrium, or restore the backup "
               "taken before the upgrade",
               current, newest) < 0)
    *err = NULL;
  return ATR_ECONFIG;
}

static int apply_one(atr_store_t *store, const atr_migration_t *m,
                     bool *skipped, char **err) {
  step_t s = {m, false};
  char *why = NULL;
  int rc = atr_db_tx(store, ATR_TX_WRITE, apply_tx, &s, &why);
  if (rc != 0) {
    if (asprintf(err, "migration %04d_%s failed and was rolled back: %s",
                 m->version, m->name, why ? why : atr_strerror(rc)) < 0)
      *err = NULL;
  }
  free(why);
  *skipped = s.skipped;
  return rc;
}

int atr_migrate_up(atr_store_t *store, const atr_migration_t *migs, size_t n,
                   int *applied, char **err) {
  int current = 0, count = 0;
  int rc = atr_migrate_current(store, &current, err);
  if (rc == 0)
    rc = refuse_newer(current, migs, n, err);
  for (size_t i = 0; rc == 0 && i < n; i++) {
    if (migs[i].version <= current)
      continue;
    bool skipped = false;
    rc = apply_one(store, &migs[i], &skipped, err);
    if (rc == 0 && !skipped) {
      atr_log(ATR_LOG_INFO, "db", "applied migration %04d_%s", migs[i].version,
              migs[i].name);
      count++;
    }
  }
  if (applied)
    *applied = count;
  return rc;
}

static void format_time(int64_t us, char *buf, size_t size) {
  time_t secs = (time_t)(us / 1000000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int atr_migrate_status(atr_store_t *store, const atr_migration_t *migs,
                       size_t n, FILE *out, char **err) {
  int current = 0;
  int rc = atr_migrate_current(store, &current, err);
  atr_db_t db;
  if (rc == 0)
    rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  fprintf(out, "%-8s  %-32s  %s\n", "VERSION", "NAME", "APPLIED");
  for (size_t i = 0; i < n && rc == 0; i++) {
    atr_value_t v = atr_v_int(migs[i].version);
    atr_db_rows_t *rows = NULL;
    rc = atr_db_query(
        &db, "SELECT applied_at FROM schema_migrations WHERE version = ?", &v,
        1, &rows, err);
    char when[40] = "pending";
    if (rc == 0 && atr_db_next(&db, rows, err) == 1)
      format_time(atr_db_get_time(&db, rows, 0), when, sizeof when);
    atr_db_rows_close(&db, rows);
    fprintf(out, "%04d      %-32s  %s\n", migs[i].version, migs[i].name, when);
  }
  atr_db_close(&db);
  if (rc == 0 && current > (n ? migs[n - 1].version : 0))
    fprintf(out, "the database is at version %d, newer than this binary\n",
            current);
  return rc;
}
