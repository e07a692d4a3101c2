/* core/jobrun.h — running one claimed provisioner job: unpack its archive
 * into a private working directory, call the provisioner plugin (parse for
 * an import; plan and apply for a build), keep its log, and write the
 * outcome (parameter schema, provisioner state, resources, the job's end)
 * to the database.
 *
 * struct atr_prov_job is the SDK's opaque job: plugins get a pointer to it
 * and hand it back to the log and canceled functions.
 *
 * Threads: atr_jobrun_run on the daemon's worker thread; atr_jobrun_log,
 * atr_jobrun_flush and atr_jobrun_cancel from any thread while it runs.
 */
#ifndef ATRIUM_CORE_JOBRUN_H
#define ATRIUM_CORE_JOBRUN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "atrium/provisioner.h"
#include "provd.h"
#include "queue.h"

/* Live process groups a job remembers (terraform runs a handful). */
#define ATR_JOB_GROUPS_MAX 16

typedef struct atr_log_buf_line {
  int64_t at_us;
  const char *source;
  const char *level;
  char *stage;
  char *output;
} atr_log_buf_line_t;

struct atr_prov_job {
  const atr_provd_config_t *cfg;
  atr_job_t row;
  char daemon_id[37];
  atr_handle_t *plugin; /* NULL until known */
  const atr_provisioner_ops_t *ops;
  atomic_bool canceled;
  atomic_bool stopping; /* canceled because the server is stopping */
  int64_t claimed_us;
  /* The log: lines not stored yet, and what was stored. */
  pthread_mutex_t log_lock; /* protects everything below */
  atr_log_buf_line_t *lines;
  size_t nlines, cap;
  int64_t next_id; /* the id the first buffered line gets */
  uint64_t bytes;  /* output kept so far */
  bool cut;        /* max_log reached */
  char **secrets;  /* sensitive values, masked in every line */
  size_t nsecrets;
  struct atr_prov_job *next; /* the pool's list of running jobs */
  char dir[4200];            /* the working directory, "" until made */
  /* Process groups started by job_spawn (jobproc.c), under log_lock. */
  int groups[ATR_JOB_GROUPS_MAX];
  unsigned long long group_start[ATR_JOB_GROUPS_MAX];
  size_t ngroups;
};

void atr_jobrun_init(struct atr_prov_job *job, const atr_provd_config_t *cfg,
                     const char *daemon_id);
void atr_jobrun_free(struct atr_prov_job *job);
/* Run job->row to its end. Never fails visibly: errors end the job. */
void atr_jobrun_run(struct atr_prov_job *job);

/* A line from atrium itself (source provisioner_daemon). */
void atr_jobrun_log(struct atr_prov_job *job, atr_log_level_t level,
                    const char *stage, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Store buffered lines (older_than_us: only when the oldest is at least
 * that old; 0 = now). */
void atr_jobrun_flush(struct atr_prov_job *job, int64_t older_than_us);
/* Ask the plugin to stop (any thread). */
void atr_jobrun_cancel(struct atr_prov_job *job, bool server_stopping);

/* ---- between jobrun*.c ---------------------------------------------------
 */
typedef int (*atr__jobrun_write_fn)(atr_db_t *db, void *ud, char **err);
/* End the job: log the outcome, flush the log, then in one transaction
 * write() the results (may be NULL) and mark the job completed with
 * error (NULL: succeeded, or canceled when it was canceled). */
int atr__jobrun_finish(struct atr_prov_job *job, const char *error,
                       atr__jobrun_write_fn write, void *ud);
void atr__jobrun_import(struct atr_prov_job *job, const char *dir);
void atr__jobrun_build(struct atr_prov_job *job, const char *dir);
atr_prov_log_fn atr__jobrun_log_fn(void);
/* Mask value in every later line of the job's log (values shorter than 4
 * characters are not masked: they would garble every line). */
void atr__jobrun_secret_add(struct atr_prov_job *job, const char *value);
atr_prov_canceled_fn atr__jobrun_canceled_fn(void);

#endif
