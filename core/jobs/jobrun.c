/* core/jobrun.c — see jobrun.h. */
#include "jobrun.h"
#include "jobproc.h"
#include "observe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/error.h"
#include "log.h"
#include "manifest.h"
#include "stats.h"

#define LINE_MAX_BYTES 65536
#define FLUSH_LINES 64
#define MASK "********"
/* Shorter sensitive values are not masked: masking "1" would garble every
 * line. docs/templates.md says so. */
#define MASK_MIN_LEN 4
#define MANIFEST_MAX ((size_t)1024 * 1024)

/* ---- the log ------------------------------------------------------------- */

static const char *level_name(atr_log_level_t level) {
  switch (level) {
  case ATR_LOG_ERROR:
    return "error";
  case ATR_LOG_WARN:
    return "warn";
  case ATR_LOG_INFO:
    return "info";
  case ATR_LOG_DEBUG:
    return "debug";
  }
  return "info";
}

/* text with every secret replaced by MASK (malloc'd). */
static char *mask(const struct atr_prov_job *job, const char *text) {
  char *out = strndup(text, LINE_MAX_BYTES);
  for (size_t i = 0; out && i < job->nsecrets; i++) {
    const char *s = job->secrets[i];
    size_t slen = strlen(s);
    char *hit;
    while (out && (hit = strstr(out, s)) != NULL) {
      char *next = NULL;
      if (asprintf(&next, "%.*s%s%s", (int)(hit - out), out, MASK, hit + slen) <
          0)
        next = NULL;
      free(out);
      out = next;
    }
  }
  return out;
}

static void push_line(struct atr_prov_job *job, const char *source,
                      const char *level, const char *stage, char *output) {
  if (job->nlines == job->cap) {
    size_t cap = job->cap ? job->cap * 2 : 16;
    atr_log_buf_line_t *l = realloc(job->lines, cap * sizeof *l);
    if (!l) {
      free(output);
      return;
    }
    job->lines = l;
    job->cap = cap;
  }
  job->lines[job->nlines++] = (atr_log_buf_line_t){
      atr_db_now_us(), source, level, strdup(stage ? stage : ""), output};
}

static void add_line(struct atr_prov_job *job, const char *source,
                     atr_log_level_t level, const char *stage,
                     const char *text) {
  char *output = mask(job, text ? text : "");
  if (!output)
    return;
  bool flush = false;
  pthread_mutex_lock(&job->log_lock);
  size_t len = strlen(output);
  if (job->cut) {
    free(output);
  } else if (job->bytes + len > job->cfg->max_log) {
    free(output);
    job->cut = true;
    char *note = NULL;
    if (asprintf(&note,
                 "the log was cut here: this job wrote more than %llu bytes "
                 "(provisioner.max_log_size); later lines are dropped",
                 (unsigned long long)job->cfg->max_log) >= 0)
      push_line(job, "provisioner_daemon", "warn", stage, note);
  } else {
    job->bytes += len;
    push_line(job, source, level_name(level), stage, output);
  }
  flush = job->nlines >= FLUSH_LINES;
  pthread_mutex_unlock(&job->log_lock);
  if (flush)
    atr_jobrun_flush(job, 0);
}

void atr_jobrun_log(struct atr_prov_job *job, atr_log_level_t level,
                    const char *stage, const char *fmt, ...) {
  char *text = NULL;
  va_list ap;
  va_start(ap, fmt);
  int n = vasprintf(&text, fmt, ap);
  va_end(ap);
  if (n < 0)
    return;
  add_line(job, "provisioner_daemon", level, stage, text);
  free(text);
}

static void plugin_log(atr_prov_job_t *job, atr_log_level_t level,
                       const char *stage, const char *line) {
  add_line(job, "provisioner", level, stage, line);
}

static int plugin_canceled(atr_prov_job_t *job) {
  return atomic_load(&job->canceled);
}

static void clear_lines(struct atr_prov_job *job) {
  for (size_t i = 0; i < job->nlines; i++) {
    free(job->lines[i].stage);
    free(job->lines[i].output);
  }
  job->nlines = 0;
}

void atr_jobrun_flush(struct atr_prov_job *job, int64_t older_than_us) {
  pthread_mutex_lock(&job->log_lock);
  if (job->nlines == 0 ||
      (older_than_us > 0 &&
       atr_db_now_us() - job->lines[0].at_us < older_than_us)) {
    pthread_mutex_unlock(&job->log_lock);
    return;
  }
  atr_job_log_line_t *rows = calloc(job->nlines, sizeof *rows);
  int rc = ATR_ENOMEM;
  char *err = NULL;
  if (rows) {
    for (size_t i = 0; i < job->nlines; i++)
      rows[i] = (atr_job_log_line_t){job->lines[i].at_us, job->lines[i].source,
                                     job->lines[i].level, job->lines[i].stage,
                                     job->lines[i].output};
    rc = atr_jobs_append_logs(job->cfg->store, job->row.id, job->next_id, rows,
                              job->nlines, (int64_t)job->bytes, job->cut, &err);
  }
  free(rows);
  if (rc == 0) {
    job->next_id += (int64_t)job->nlines;
    clear_lines(job);
  } else if (job->nlines > (size_t)4 * FLUSH_LINES) {
    /* The database is away: keep a bounded backlog, drop the oldest. */
    atr_log(ATR_LOG_WARN, "provisioner", "job %s: dropping %zu log lines: %s",
            job->row.id, job->nlines, err ? err : atr_strerror(rc));
    clear_lines(job);
  }
  pthread_mutex_unlock(&job->log_lock);
  free(err);
  if (rc == 0)
    atr_events_job_changed(job->cfg->events, job->row.id);
}

/* ---- set-up -------------------------------------------------------------- */

void atr_jobrun_init(struct atr_prov_job *job, const atr_provd_config_t *cfg,
                     const char *daemon_id) {
  memset(job, 0, sizeof *job);
  job->cfg = cfg;
  snprintf(job->daemon_id, sizeof job->daemon_id, "%s", daemon_id);
  atomic_init(&job->canceled, false);
  atomic_init(&job->stopping, false);
  pthread_mutex_init(&job->log_lock, NULL);
  job->next_id = 1;
  job->claimed_us = atr_db_now_us();
}

void atr_jobrun_free(struct atr_prov_job *job) {
  clear_lines(job);
  free(job->lines);
  for (size_t i = 0; i < job->nsecrets; i++)
    free(job->secrets[i]);
  free(job->secrets);
  pthread_mutex_destroy(&job->log_lock);
  atr_job_clear(&job->row);
}

void atr_jobrun_cancel(struct atr_prov_job *job, bool server_stopping) {
  if (server_stopping)
    atomic_store(&job->stopping, true);
  if (atomic_exchange(&job->canceled, true))
    return;
  if (job->ops && job->ops->cancel && job->plugin)
    job->ops->cancel(job->plugin->ctx, job);
}

static int unpack(struct atr_prov_job *job, const char *dir, char **err) {
  atr_db_t db;
  int rc = atr_db_open(job->cfg->store, &db, err);
  if (rc != 0)
    return rc;
  atr_value_t p[] = {atr_v_text(job->row.file_id)};
  atr_db_rows_t *rows = NULL;
  rc = atr_db_query(&db, "SELECT data FROM files WHERE id = ?", p, 1, &rows,
                    err);
  if (rc == 0 && (rc = atr_db_next(&db, rows, err)) == 1) {
    size_t len = 0;
    const void *data = atr_db_get_blob(&db, rows, 0, &len);
    rc = atr_archive_extract(data, len, dir, &job->cfg->archive_limits, err);
  } else if (rc == 0) {
    rc = ATR_ENOENT;
    if (err && asprintf(err, "the job's file %s no longer exists",
                        job->row.file_id) < 0)
      *err = NULL;
  }
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  return rc;
}

/* ---- the end of a job --------------------------------------------------- */

typedef struct finish {
  struct atr_prov_job *job;
  const char *error;
  atr__jobrun_write_fn write;
  void *ud;
  bool ended; /* the job row was still ours to end */
} finish_t;

static int finish_tx(atr_db_t *db, void *ud, char **err) {
  finish_t *f = ud;
  if (f->write) {
    int rc = f->write(db, f->ud, err);
    if (rc != 0)
      return rc;
  }
  int64_t now = atr_db_now_us();
  atr_value_t p[] = {atr_v_time(now), atr_v_time(now), atr_v_text(f->error),
                     atr_v_text(f->job->row.id), atr_v_text(f->job->daemon_id)};
  int64_t changed = 0;
  int rc = atr_db_exec(db,
                       "UPDATE provisioner_jobs SET completed_at = ?, "
                       "updated_at = ?, error = ? WHERE id = ? AND "
                       "worker_id = ? AND completed_at IS NULL",
                       p, 5, &changed, err);
  f->ended = changed == 1;
  return rc;
}

int atr__jobrun_finish(struct atr_prov_job *job, const char *error,
                       atr__jobrun_write_fn write, void *ud) {
  atr_jobs_kill(job);
  bool canceled = atomic_load(&job->canceled);
  bool stopping = atomic_load(&job->stopping);
  if (stopping)
    error = "the server stopped during the job; run it again";
  else if (canceled)
    error = NULL; /* ends canceled: canceled_at is set */
  if (error)
    atr_jobrun_log(job, ATR_LOG_ERROR, "Cleaning up", "Job failed: %s", error);
  else
    atr_jobrun_log(job, ATR_LOG_INFO, "Cleaning up", "Job %s.",
                   canceled ? "canceled" : "succeeded");
  atr_jobrun_flush(job, 0);
  const char *result = error ? "failed" : canceled ? "canceled" : "succeeded";
  atr_stats_job_ended(job->row.type, result,
                      (double)(atr_db_now_us() - job->claimed_us) / 1e6);
  finish_t f = {job, error, write, ud, false};
  char *err = NULL;
  int rc = atr_db_tx(job->cfg->store, ATR_TX_WRITE, finish_tx, &f, &err);
  if (rc != 0)
    atr_log(ATR_LOG_ERROR, "provisioner", "job %s: cannot store its end: %s",
            job->row.id, err ? err : atr_strerror(rc));
  else if (!f.ended)
    atr_log(ATR_LOG_WARN, "provisioner",
            "job %s ended here after it was already ended elsewhere (the "
            "reaper?); its results were kept",
            job->row.id);
  free(err);
  atr_events_job_changed(job->cfg->events, job->row.id);
  atr_observe_emit("job_completed",
                   json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "job_id",
                             job->row.id, "type", job->row.type, "result",
                             result, "error", error, "provisioner",
                             job->row.provisioner));
  return rc;
}

/* ---- the two kinds of job ------------------------------------------------ */

static void run_kind(struct atr_prov_job *job, const char *dir) {
  if (strcmp(job->row.type, "template_version_import") == 0) {
    atr__jobrun_import(job, dir);
    return;
  }
  if (strcmp(job->row.type, "workspace_build") == 0) {
    atr__jobrun_build(job, dir);
    return;
  }
  char msg[200];
  snprintf(msg, sizeof msg, "jobs of type %s are not supported", job->row.type);
  atr__jobrun_finish(job, msg, NULL, NULL);
}

void atr__jobrun_secret_add(struct atr_prov_job *job, const char *value) {
  if (strlen(value) < MASK_MIN_LEN)
    return;
  pthread_mutex_lock(&job->log_lock);
  char **s = realloc(job->secrets, (job->nsecrets + 1) * sizeof *s);
  if (s) {
    job->secrets = s;
    s[job->nsecrets] = strdup(value);
    if (s[job->nsecrets])
      job->nsecrets++;
  }
  pthread_mutex_unlock(&job->log_lock);
}

atr_prov_log_fn atr__jobrun_log_fn(void) {
  return plugin_log;
}

atr_prov_canceled_fn atr__jobrun_canceled_fn(void) {
  return plugin_canceled;
}

void atr_jobrun_run(struct atr_prov_job *job) {
  char *err = NULL;
  atr_jobrun_log(job, ATR_LOG_INFO, "Setting up", "%s job %s taken by %s",
                 job->row.type, job->row.id, job->daemon_id);
  int rc = atr_jobs_dir_make(job);
  if (rc != 0 && asprintf(&err, "cannot make the working directory %s: %s",
                          job->dir, strerror(errno)) < 0)
    err = NULL;
  if (rc == 0)
    rc = unpack(job, job->dir, &err);
  if (rc == 0 && (rc = atr_jobs_dir_handover(job)) != 0 &&
      asprintf(&err, "cannot hand the working directory %s to the build user",
               job->dir) < 0)
    err = NULL;
  if (rc == 0)
    run_kind(job, job->dir);
  else
    atr__jobrun_finish(job, err ? err : atr_strerror(rc), NULL, NULL);
  atr_jobs_end(job);
  free(err);
}
