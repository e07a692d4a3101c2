/* core/jobs/jobproc.h — where a provisioner job's files and processes
 * live, as whom they run, and how the server gets rid of them.
 *
 * Job directories: <work root>/<job id>, mode 0700, removed when the job
 * ends. The work root is <data_dir>/jobs when builds run as the server's
 * user. When the server runs as root and provisioner.run_as names a user,
 * builds run as that user, and since data_dir is private to the server
 * (0700), the work root is /var/tmp/atrium-jobs/<a hash of data_dir>
 * (root's, 0711: the build user can enter its own job directory but list
 * nothing); the job directory is then owned by the build user.
 *
 * Process groups: every child a plugin starts through the host's
 * job_spawn leads a process group of its own. Before the program runs,
 * the group is appended to <data_dir>/jobs/<job id>.pgid (the server's,
 * 0600, out of the build user's reach). When the job ends, what is left
 * of its groups is killed and the record removed; a server that was killed
 * leaves records and directories behind, which atr_jobs_sweep() finds at
 * the next start. Where the server can make cgroups (v2), each job also
 * gets one (jobcgroup.h): it catches what leaves the process group.
 *
 * Threads: atr_jobs_setup() and atr_jobs_sweep() before the daemons start,
 * atr_jobs_teardown() after they stopped; the rest from a job's own thread.
 */
#ifndef ATRIUM_CORE_JOBPROC_H
#define ATRIUM_CORE_JOBPROC_H

#include <stddef.h>

#include "atrium/host.h"

struct atr_prov_job;

/* Resolve the build user (run_as; "" = the server's user) and the work
 * root for data_dir, and install job_spawn in the host table. */
int atr_jobs_setup(const char *data_dir, const char *run_as, char **err);
void atr_jobs_teardown(void);

/* Kill the process groups and remove the job directories that a server
 * which stopped without ending its jobs left behind. Logs what it did. */
void atr_jobs_sweep(const char *data_dir);

/* Make the job's fresh, private directory (job->dir). Hand it to the build
 * user once its files are in (atr_jobs_dir_handover), and again before
 * each child starts: what the plugin wrote in between (tfvars, state) is
 * the server's until then. */
int atr_jobs_dir_make(struct atr_prov_job *job);
int atr_jobs_dir_handover(struct atr_prov_job *job);
/* Kill what is left of the job's process groups (before its end is
 * stored: the next job of the workspace must not meet them). */
void atr_jobs_kill(struct atr_prov_job *job);
/* At the job's end: kill what is left of its process groups, remove the
 * record and the directory. */
void atr_jobs_end(struct atr_prov_job *job);

/* The host table's job_spawn (see atrium/host.h). */
int atr_jobs_spawn(struct atr_prov_job *job, const atr_spawn_t *spec, int *pid);

/* ---- between jobdirs.c and jobproc.c -------------------------------------
 */
typedef struct atr__build_user {
  int drop;          /* run children as uid/gid (the server is root) */
  unsigned uid, gid; /* uid_t, gid_t */
  unsigned *groups;  /* gid_t[ngroups], supplementary */
  int ngroups;
  char name[64];
} atr__build_user_t;

const atr__build_user_t *atr__jobs_user(void);
/* <data_dir>/jobs/<id>.pgid */
void atr__jobs_record_path(const struct atr_prov_job *job, char *out,
                           size_t size);
/* Kill group pgid unless its leader is another process than the one
 * recorded (start time in clock ticks; the pid was reused). */
int atr__jobs_kill_group(int pgid, unsigned long long start);
/* FNV-1a of data_dir's real path: names what belongs to one data_dir in
 * places every server on the host shares (/var/tmp, the cgroup tree). */
unsigned long long atr__jobs_data_dir_hash(const char *data_dir);
/* This boot's id (/proc/sys/kernel/random/boot_id), "" when unknown. */
void atr__jobs_boot_id(char *out, size_t size);
/* recursive rm of dir, never following a link */
void atr__jobs_remove_tree(const char *dir);

#endif
