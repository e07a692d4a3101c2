/* core/jobs/jobcgroup.h — a cgroup (v2) per provisioner job, so the server
 * can kill everything a build started, including processes that left the
 * job's process group with setsid() or double-forked away.
 *
 * Where: <cgroup2 mount><the server's own cgroup>/atrium-jobs-<hash of
 * data_dir>/<job id>. The hash keeps two servers on one host (or one
 * test suite's many servers) out of each other's jobs. The directories are
 * the server's (root's): a build user cannot move its processes out, since
 * that needs write access to a common ancestor's cgroup.procs.
 *
 * When the hierarchy is not writable (no cgroup v2, not root, a systemd
 * unit without Delegate=yes), jobs run with process groups only and the
 * server says so once at start; every function here is then a no-op.
 * Killing uses cgroup.kill (Linux 5.14+), else SIGKILL to each member
 * until the cgroup is empty.
 *
 * Threads: atr__cgroup_setup/sweep/teardown from the thread that starts or
 * stops the daemons (before or after every job); the rest from a job's own
 * thread, for its own job.
 */
#ifndef ATRIUM_CORE_JOBCGROUP_H
#define ATRIUM_CORE_JOBCGROUP_H

#include <stdbool.h>

/* Find a writable cgroup v2 hierarchy and make this data_dir's base. */
void atr__cgroup_setup(const char *data_dir);
void atr__cgroup_teardown(void);
/* Whether jobs get a cgroup (setup found a writable hierarchy). */
bool atr__cgroup_enabled(void);
/* Make the job's cgroup (idempotent). 0, or a negative ATR_E*. */
int atr__cgroup_make(const char *job_id);
/* Move pid into the job's cgroup. 0, or a negative ATR_E*. */
int atr__cgroup_add(const char *job_id, int pid);
/* Kill every process in the job's cgroup and wait, bounded, until it is
 * empty; remove it when empty. Returns how many processes were left. */
int atr__cgroup_kill(const char *job_id, bool remove_it);
/* Kill and remove every job cgroup under the base (a dead server's). */
void atr__cgroup_sweep(void);

#endif
