/* core/jobs.h — the provisioner job queue's storage primitives.
 *
 * A job is pending until a provisioner daemon claims it: atr_jobs_claim()
 * takes the oldest pending job whose tags the daemon holds (every tag of
 * the job must be among the daemon's; a job without tags fits anyone) and
 * marks it running with the daemon's id, in one statement inside a write
 * transaction — FOR UPDATE SKIP LOCKED on PostgreSQL, BEGIN IMMEDIATE on
 * SQLite — so every job is claimed exactly once however many daemons
 * compete. Heartbeats, completion and failure only succeed for the daemon
 * that holds the job.
 *
 * Threads: any; each call runs its own transaction.
 */
#ifndef ATRIUM_CORE_JOBS_H
#define ATRIUM_CORE_JOBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"

typedef struct atr_job {
  char id[37];
  char *type;        /* template_version_import, workspace_build, ... */
  char *provisioner; /* "terraform", "docker", ... */
  char *input;       /* JSON text */
  char organization_id[37];
  char file_id[37];      /* "" when none */
  char initiator_id[37]; /* "" when none */
} atr_job_t;

void atr_job_clear(atr_job_t *job);

/* Who is claiming: a row of provisioner_daemons (its tags are in
 * provisioner_daemon_tags), the organization it serves (NULL: every
 * organization, as the built-in daemons do), and the provisioner
 * types it runs (NULL-terminated, 1 to ATR_JOBS_MAX_PROVISIONERS). */
#define ATR_JOBS_MAX_PROVISIONERS 16
typedef struct atr_claimer {
  const char *daemon_id;
  const char *organization_id;
  const char *const *provisioners;
} atr_claimer_t;

/* Claim the oldest pending job of the claimer's organization, for one of
 * its provisioners, whose tags it holds. ATR_ENOENT when nothing fits,
 * ATR_EINVAL for a claimer without provisioners (or too many). */
int atr_jobs_claim(atr_store_t *store, const atr_claimer_t *claimer,
                   atr_job_t *out, char **err);
/* The holder says it is still working. ATR_EPERM when daemon_id does not
 * hold a running job with this id. */
int atr_jobs_heartbeat(atr_store_t *store, const char *job_id,
                       const char *daemon_id, char **err);
/* Finish the job (error NULL: succeeded). ATR_EPERM when daemon_id does not
 * hold it (never claimed, another daemon's, or already finished). */
int atr_jobs_complete(atr_store_t *store, const char *job_id,
                      const char *daemon_id, const char *error, char **err);

/* ---- the queue's other ends ------------------------------------------- */

typedef struct atr_job_new {
  const char *type; /* template_version_import, workspace_build */
  const char *provisioner;
  const char *organization_id;
  const char *initiator_id;
  const char *file_id;
  const char *input; /* JSON object text */
  json_t *tags;      /* object of string values, or NULL (borrowed) */
} atr_job_new_t;

/* Insert a pending job and its tags inside the caller's transaction; *id
 * gets its id. Announce it (atr_events_job_posted) after the commit. */
int atr_jobs_insert(atr_db_t *db, const atr_job_new_t *job, char id[37],
                    char **err);

/* Cancel: a pending job ends canceled at once (*ended true); a running one
 * is marked canceling for its daemon to stop (*ended false). ATR_ENOENT
 * for no such job, ATR_EINVAL when it has already ended or is already
 * being canceled. */
int atr_jobs_cancel(atr_db_t *db, const char *job_id, bool *ended, char **err);
/* Whether the job was asked to cancel (canceled_at is set). */
int atr_jobs_cancel_requested(atr_store_t *store, const char *job_id,
                              bool *canceled, char **err);

/* The reaper: fail running jobs whose last heartbeat is older than
 * hung_ms and pending ones older than pending_ms (two transactions: one
 * failing does not stop the other). A reaped build keeps the state of the
 * build before it. *ids gets the reaped jobs' ids as a JSON array (caller
 * decrefs; also on error, with what was reaped), for announcing. */
int atr_jobs_reap(atr_store_t *store, int64_t hung_ms, int64_t pending_ms,
                  json_t **ids, char **err);

/* A build whose job ended without a state of its own (reaped, canceled
 * while pending) keeps the state of the build before it. */
int atr_jobs_keep_previous_state(atr_db_t *db, const char *job_id, char **err);

/* Coder's job status from the job's columns. */
const char *atr_job_status(bool started, bool completed, bool canceled,
                           bool failed);
/* Coder's workspace status from a build's job status and transition:
 * running → starting / stopping / deleting, succeeded → running / stopped
 * / deleted; pending, canceling, canceled and failed stay as they are. */
const char *atr_workspace_status(const char *job_status,
                                 const char *transition);
/* Whether a status is final (succeeded, failed, canceled). */
bool atr_job_status_ended(const char *status);

/* One stored log line. */
typedef struct atr_job_log_line {
  int64_t created_at_us;
  const char *source; /* provisioner_daemon | provisioner */
  const char *level;  /* trace debug info warn error */
  const char *stage;
  const char *output;
} atr_job_log_line_t;

/* Store lines first_id, first_id+1, ... of a job in one transaction,
 * with the job's output so far (logs_length, at most 1 MiB) and whether
 * lines were dropped past the cap (logs_overflowed). */
int atr_jobs_append_logs(atr_store_t *store, const char *job_id,
                         int64_t first_id, const atr_job_log_line_t *lines,
                         size_t n, int64_t total_bytes, bool overflowed,
                         char **err);

#endif
