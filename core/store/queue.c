/* core/jobs.c — see jobs.h. */
#include "queue.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"

/* The claim, with the organization filter (or nothing, for a daemon that
 * serves all) and one `?` per provisioner type spliced in. */
static const char claim_sql_fmt[] =
    "UPDATE provisioner_jobs SET started_at = ?, updated_at = ?, "
    "worker_id = ?, last_heartbeat_at = ? "
    "WHERE id = ("
    " SELECT j.id FROM provisioner_jobs j"
    " WHERE j.started_at IS NULL AND j.canceled_at IS NULL"
    "%s"
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
  if (c->who->organization_id)
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
static char *claim_sql(size_t ntypes, bool any_org) {
  char marks[3 * ATR_JOBS_MAX_PROVISIONERS + 1];
  size_t used = 0;
  for (size_t i = 0; i < ntypes; i++)
    used += (size_t)snprintf(marks + used, sizeof marks - used, "%s",
                             i ? ", ?" : "?");
  marks[used] = '\0';
  char *sql = NULL;
  if (asprintf(&sql, claim_sql_fmt, any_org ? "" : " AND j.organization_id = ?",
               marks) < 0)
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
  claim_t c = {claimer, ntypes,
               claim_sql(ntypes, claimer->organization_id == NULL), out};
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

/* ---- insert, cancel, reap ---------------------------------------------- */

int atr_jobs_insert(atr_db_t *db, const atr_job_new_t *job, char id[37],
                    char **err) {
  atr_db_new_uuid(id);
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_text(id),
                     atr_v_time(now),
                     atr_v_time(now),
                     atr_v_text(job->organization_id),
                     atr_v_text(job->initiator_id),
                     atr_v_text(job->provisioner),
                     atr_v_text(job->type),
                     atr_v_text(job->input ? job->input : "{}"),
                     atr_v_text(job->file_id)};
  int rc = atr_db_exec(db,
                       "INSERT INTO provisioner_jobs (id, created_at, "
                       "updated_at, organization_id, initiator_id, "
                       "provisioner, type, input, file_id) VALUES "
                       "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       p, 9, NULL, err);
  const char *key;
  json_t *value;
  json_object_foreach(job->tags, key, value) {
    if (rc != 0)
      break;
    atr_value_t t[] = {atr_v_text(id), atr_v_text(key),
                       atr_v_text(json_string_value(value))};
    rc = atr_db_exec(db,
                     "INSERT INTO provisioner_job_tags (job_id, key, value) "
                     "VALUES (?, ?, ?)",
                     t, 3, NULL, err);
  }
  return rc;
}

static int set_err(char **err, int rc, const char *msg, const char *id) {
  if (err && asprintf(err, msg, id) < 0)
    *err = NULL;
  return rc;
}

int atr_jobs_cancel(atr_db_t *db, const char *job_id, bool *ended, char **err) {
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now), atr_v_time(now),
                     atr_v_text(job_id)};
  int64_t changed = 0;
  /* Pending: canceled and completed in one go. */
  int rc = atr_db_exec(db,
                       "UPDATE provisioner_jobs SET canceled_at = ?, "
                       "completed_at = ?, updated_at = ? WHERE id = ? AND "
                       "started_at IS NULL AND completed_at IS NULL AND "
                       "canceled_at IS NULL",
                       p, 4, &changed, err);
  if (rc != 0 || changed == 1) {
    *ended = true;
    return rc;
  }
  *ended = false;
  atr_value_t q[] = {atr_v_time(now), atr_v_time(now), atr_v_text(job_id)};
  rc = atr_db_exec(db,
                   "UPDATE provisioner_jobs SET canceled_at = ?, "
                   "updated_at = ? WHERE id = ? AND completed_at IS NULL AND "
                   "canceled_at IS NULL",
                   q, 3, &changed, err);
  if (rc != 0 || changed == 1)
    return rc;
  atr_value_t k[] = {atr_v_text(job_id)};
  int64_t one = 0;
  rc = atr_db_query_int(db, "SELECT 1 FROM provisioner_jobs WHERE id = ?", k, 1,
                        &one, err);
  if (rc == ATR_ENOENT)
    return rc;
  if (rc != 0)
    return rc;
  return set_err(err, ATR_EINVAL,
                 "job %s has already ended or is already being canceled",
                 job_id);
}

int atr_jobs_cancel_requested(atr_store_t *store, const char *job_id,
                              bool *canceled, char **err) {
  atr_db_t db;
  int rc = atr_db_open(store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t k[] = {atr_v_text(job_id)};
  int64_t n = 0;
  rc = atr_db_query_int(&db,
                        "SELECT COUNT(*) FROM provisioner_jobs WHERE id = ? "
                        "AND canceled_at IS NOT NULL",
                        k, 1, &n, err);
  atr_db_close(&db);
  *canceled = n > 0;
  return rc;
}

int atr_jobs_keep_previous_state(atr_db_t *db, const char *job_id, char **err) {
  atr_value_t p[] = {atr_v_text(job_id)};
  return atr_db_exec(
      db,
      "UPDATE workspace_builds SET provisioner_state = (SELECT "
      "p.provisioner_state FROM workspace_builds p WHERE p.workspace_id = "
      "workspace_builds.workspace_id AND p.build_number < "
      "workspace_builds.build_number ORDER BY p.build_number DESC LIMIT 1), "
      /* its key id with it: a sealed state binds no row (dbcrypt.h) */
      "provisioner_state_key_id = (SELECT p.provisioner_state_key_id FROM "
      "workspace_builds p WHERE p.workspace_id = "
      "workspace_builds.workspace_id AND p.build_number < "
      "workspace_builds.build_number ORDER BY p.build_number DESC LIMIT 1) "
      "WHERE job_id = ? AND provisioner_state IS NULL",
      p, 1, NULL, err);
}

typedef struct reap {
  const char *set;   /* what else the UPDATE sets, with one `?` */
  const char *where; /* which jobs, with one `?` for the cutoff */
  int64_t cutoff_us;
  const char *why;
  json_t *ids;
} reap_t;

/* Fail the jobs r->where picks with r->why, collect their ids, and give
 * the builds among them their predecessor's state. */
static int reap_tx(atr_db_t *db, void *ud, char **err) {
  reap_t *r = ud;
  json_array_clear(r->ids);
  int64_t now = atr_db_now_us();
  char *sql = NULL;
  if (asprintf(&sql,
               "UPDATE provisioner_jobs SET completed_at = ?, updated_at = ?, "
               "error = ?, error_code = 'reaped'%s WHERE completed_at IS NULL "
               "AND %s RETURNING id",
               r->set, r->where) < 0)
    return ATR_ENOMEM;
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now), atr_v_text(r->why),
                     atr_v_time(now), atr_v_time(r->cutoff_us)};
  bool with_set = strchr(r->set, '?') != NULL;
  atr_value_t *params = p;
  atr_value_t q[] = {p[0], p[1], p[2], p[4]};
  if (!with_set)
    params = q;
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db, sql, params, with_set ? 5 : 4, &rows, err);
  free(sql);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    json_array_append_new(r->ids, json_string(atr_db_get_text(db, rows, 0)));
    rc = 0;
  }
  atr_db_rows_close(db, rows);
  size_t i;
  json_t *id;
  json_array_foreach(r->ids, i, id) {
    if (rc != 0)
      break;
    rc = atr_jobs_keep_previous_state(db, json_string_value(id), err);
  }
  return rc;
}

int atr_jobs_reap(atr_store_t *store, int64_t hung_ms, int64_t pending_ms,
                  json_t **ids, char **err) {
  char hung[160], pending[160];
  snprintf(hung, sizeof hung,
           "reaped: the provisioner daemon sent no heartbeat for %lldms "
           "(provisioner.heartbeat_timeout); it probably died",
           (long long)hung_ms);
  snprintf(pending, sizeof pending,
           "reaped: no provisioner daemon took the job within %lldms "
           "(provisioner.pending_timeout); check the daemons and tags",
           (long long)pending_ms);
  int64_t now = atr_db_now_us();
  /* A job that never started gets started_at too: "finished" implies
   * "started or canceled" (the schema checks it). */
  reap_t kinds[] = {{"", "started_at IS NOT NULL AND last_heartbeat_at < ?",
                     now - hung_ms * 1000, hung, json_array()},
                    {", started_at = ?",
                     "started_at IS NULL AND canceled_at IS NULL AND "
                     "created_at < ?",
                     now - pending_ms * 1000, pending, json_array()}};
  *ids = json_array();
  int rc = 0;
  /* Separately: one kind failing does not hold the other back. */
  for (size_t k = 0; k < 2; k++) {
    char *e = NULL;
    int r = atr_db_tx(store, ATR_TX_WRITE, reap_tx, &kinds[k], &e);
    if (r == 0)
      json_array_extend(*ids, kinds[k].ids);
    else if (rc == 0) {
      rc = r;
      if (err)
        *err = e;
      e = NULL;
    }
    free(e);
    json_decref(kinds[k].ids);
  }
  return rc;
}

const char *atr_job_status(bool started, bool completed, bool canceled,
                           bool failed) {
  if (failed)
    return "failed";
  if (completed)
    return canceled ? "canceled" : "succeeded";
  if (canceled)
    return "canceling";
  return started ? "running" : "pending";
}

const char *atr_workspace_status(const char *job_status,
                                 const char *transition) {
  bool start = strcmp(transition, "start") == 0;
  bool stop = strcmp(transition, "stop") == 0;
  if (strcmp(job_status, "running") == 0)
    return start ? "starting" : stop ? "stopping" : "deleting";
  if (strcmp(job_status, "succeeded") == 0)
    return start ? "running" : stop ? "stopped" : "deleted";
  return job_status;
}

bool atr_job_status_ended(const char *status) {
  return strcmp(status, "succeeded") == 0 || strcmp(status, "failed") == 0 ||
         strcmp(status, "canceled") == 0;
}

/* ---- logs ---------------------------------------------------------------- */

typedef struct append {
  const char *job_id;
  int64_t first_id;
  const atr_job_log_line_t *lines;
  size_t n;
  int64_t total;
  bool overflowed;
} append_t;

static int append_tx(atr_db_t *db, void *ud, char **err) {
  const append_t *a = ud;
  for (size_t i = 0; i < a->n; i++) {
    const atr_job_log_line_t *l = &a->lines[i];
    atr_value_t p[] = {
        atr_v_text(a->job_id),        atr_v_int(a->first_id + (int64_t)i),
        atr_v_time(l->created_at_us), atr_v_text(l->source),
        atr_v_text(l->level),         atr_v_text(l->stage ? l->stage : ""),
        atr_v_text(l->output)};
    int rc = atr_db_exec(db,
                         "INSERT INTO provisioner_job_logs (job_id, id, "
                         "created_at, source, level, stage, output) VALUES "
                         "(?, ?, ?, ?, ?, ?, ?)",
                         p, 7, NULL, err);
    if (rc != 0)
      return rc;
  }
  atr_value_t t[] = {atr_v_int(a->total), atr_v_bool(a->overflowed),
                     atr_v_text(a->job_id)};
  return atr_db_exec(db,
                     "UPDATE provisioner_jobs SET logs_length = ?, "
                     "logs_overflowed = ? WHERE id = ?",
                     t, 3, NULL, err);
}

int atr_jobs_append_logs(atr_store_t *store, const char *job_id,
                         int64_t first_id, const atr_job_log_line_t *lines,
                         size_t n, int64_t total_bytes, bool overflowed,
                         char **err) {
  if (n == 0)
    return 0;
  append_t a = {job_id, first_id, lines, n, total_bytes, overflowed};
  return atr_db_tx(store, ATR_TX_WRITE, append_tx, &a, err);
}
