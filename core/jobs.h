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
 * provisioner_daemon_tags), the organization it serves, and the provisioner
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

#endif
