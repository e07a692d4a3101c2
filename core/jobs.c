/* core/jobs.c — see jobs.h. */
#include "jobs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

/* The claim, with one `?` per provisioner type spliced in at %s. */
static const char claim_sql_fmt[] =
    "UPDATE provisioner_jobs SET started_at = ?, updated_at = ?, "
    "worker_id = ?, last_heartbeat_at = ? "
    "WHERE id = ("
    " SELECT j.id FROM provisioner_jobs j"
    " WHERE j.started_at IS NULL AND j.canceled_at IS NULL"
    " AND j.organization_id = ?"
    " AND j.provisioner IN (%s)"
    " AND NOT EXISTS ("
    "  SELECT 1 FROM provisioner_job_tags t"
    "  WHERE t.job_id = j.id AND NOT EXISTS ("
    "   SELECT 1 FROM provisioner_daemon_tags d"
    "   WHERE d.daemon_id = ? AND d.key = t.key AND d.value = t.value))"
    " ORDER BY j.created_at, j.id LIMIT 1 " ATR_DB_SQL_SKIP_LOCKED ") "
    "RETURNING id, type, provisioner, input, organization_id, file_id, "
    "initiator_id";

void atr_job_clear(atr_job_t *job) {
  free(job->type);
  free(job->provisioner);
  free(job->input);
  memset(job, 0, sizeof *job);
}

static void copy_id(char dst[37], const char *src) {
  snprintf(dst, 37, "%s", src ? src : "");
}

static char *dup_or_empty(const char *s) {
  return strdup(s ? s : "");
}

typedef struct claim {
  const atr_claimer_t *who;
  size_t ntypes;
  char *sql;
  atr_job_t *job;
} claim_t;

static void read_job(atr_db_t *db, atr_db_rows_t *rows, atr_job_t *j) {
  copy_id(j->id, atr_db_get_text(db, rows, 0));
  j->type = dup_or_empty(atr_db_get_text(db, rows, 1));
  j->provisioner = dup_or_empty(atr_db_get_text(db, rows, 2));
  j->input = dup_or_empty(atr_db_get_text(db, rows, 3));
  copy_id(j->organization_id, atr_db_get_text(db, rows, 4));
  copy_id(j->file_id, atr_db_get_text(db, rows, 5));
  copy_id(j->initiator_id, atr_db_get_text(db, rows, 6));
}

static int claim_tx(atr_db_t *db, void *ud, char **err) {
  claim_t *c = ud;
  int64_t now = atr_db_now_us();
  atr_value_t p[6 + ATR_JOBS_MAX_PROVISIONERS];
  size_t n = 0;
  p[n++] = atr_v_time(now);
  p[n++] = atr_v_time(now);
  p[n++] = atr_v_text(c->who->daemon_id);
  p[n++] = atr_v_time(now);
  p[n++] = atr_v_text(c->who->organization_id);
  for (size_t i = 0; i < c->ntypes; i++)
    p[n++] = atr_v_text(c->who->provisioners[i]);
  p[n++] = atr_v_text(c->who->daemon_id);
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, c->sql, p, n, &rows, err);
  if (rc != 0)
    return rc;
  rc = atr_db_next(db, rows, err);
  if (rc == 1) {
    read_job(db, rows, c->job);
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_ENOENT;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

/* The claim statement with "?, ?, ?" for n provisioner types. */
static char *claim_sql(size_t ntypes) {
  char marks[3 * ATR_JOBS_MAX_PROVISIONERS + 1];
  size_t used = 0;
  for (size_t i = 0; i < ntypes; i++)
    used += (size_t)snprintf(marks + used, sizeof marks - used, "%s",
                             i ? ", ?" : "?");
  marks[used] = '\0';
  char *sql = NULL;
  if (asprintf(&sql, claim_sql_fmt, marks) < 0)
    return NULL;
  return sql;
}

int atr_jobs_claim(atr_store_t *store, const atr_claimer_t *claimer,
                   atr_job_t *out, char **err) {
  memset(out, 0, sizeof *out);
  size_t ntypes = 0;
  while (claimer->provisioners && claimer->provisioners[ntypes])
    ntypes++;
  if (ntypes == 0 || ntypes > ATR_JOBS_MAX_PROVISIONERS) {
    if (err && asprintf(err,
                        "a provisioner daemon claims jobs for 1 to %d "
                        "provisioner types, not %zu",
                        ATR_JOBS_MAX_PROVISIONERS, ntypes) < 0)
      *err = NULL;
    return ATR_EINVAL;
  }
  claim_t c = {claimer, ntypes, claim_sql(ntypes), out};
  if (!c.sql)
    return ATR_ENOMEM;
  int rc = atr_db_tx(store, ATR_TX_WRITE, claim_tx, &c, err);
  free(c.sql);
  if (rc != 0)
    atr_job_clear(out);
  return rc;
}

/* One UPDATE that only matches a running job held by daemon_id. */
static int holder_update(atr_store_t *store, const char *sql,
                         const atr_value_t *params, size_t n,
                         const char *job_id, char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  int64_t changed = 0;
  rc = atr_db_exec(&db, sql, params, n, &changed, err);
  atr_db_close(&db);
  if (rc == 0 && changed == 0) {
    if (err &&
        asprintf(err, "job %s is not running under this provisioner daemon",
                 job_id) < 0)
      *err = NULL;
    rc = ATR_EPERM;
  }
  return rc;
}

int atr_jobs_heartbeat(atr_store_t *store, const char *job_id,
                       const char *daemon_id, char **err) {
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now), atr_v_text(job_id),
                     atr_v_text(daemon_id)};
  return holder_update(store,
                       "UPDATE provisioner_jobs SET last_heartbeat_at = ?, "
                       "updated_at = ? WHERE id = ? AND worker_id = ? "
                       "AND started_at IS NOT NULL AND completed_at IS NULL",
                       p, 4, job_id, err);
}

int atr_jobs_complete(atr_store_t *store, const char *job_id,
                      const char *daemon_id, const char *error, char **err) {
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now), atr_v_text(error),
                     atr_v_text(job_id), atr_v_text(daemon_id)};
  return holder_update(store,
                       "UPDATE provisioner_jobs SET completed_at = ?, "
                       "updated_at = ?, error = ? WHERE id = ? AND "
                       "worker_id = ? AND started_at IS NOT NULL AND "
                       "completed_at IS NULL",
                       p, 5, job_id, err);
}
