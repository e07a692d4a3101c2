/* core/jobs/jobproc.c — a job's child processes: started by job_spawn in
 * a process group of their own, recorded before they run, killed as a
 * group when the job ends; see jobproc.h.
 *
 * The child is made with fork(), not posix_spawn, because it must drop to
 * the build user (setgroups, setgid, setuid) before exec. Between fork and
 * exec it calls only async-signal-safe functions: everything it needs
 * (the environment, the build user's groups, /dev/null) is ready before
 * the fork. It waits for one byte from the parent, sent once the group is
 * on record, so no program runs that a crash could leave unrecorded; if
 * the parent dies first, the pipe ends empty and the child exits.
 */
#include "jobproc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atrium/error.h"
#include "jobcgroup.h"
#include "jobrun.h"
#include "log.h"

/* Field 22 of /proc/<pid>/stat: the start time in clock ticks; 0 when the
 * process does not exist. */
static unsigned long long start_time(int pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  const char *p = strrchr(buf, ')'); /* the name may hold spaces */
  unsigned long long t = 0;
  for (int field = 2; p != NULL && field < 22; field++)
    p = strchr(p + 1, ' ');
  if (p == NULL || sscanf(p + 1, "%llu", &t) != 1)
    return 0;
  return t;
}

int atr__jobs_kill_group(int pgid, unsigned long long start) {
  unsigned long long now = start_time(pgid);
  if (now != 0 && now != start)
    return ATR_ENOENT; /* the leader's pid belongs to another process now */
  return kill(-pgid, SIGKILL) == 0 ? 0 : ATR_ENOENT;
}

static int record(struct atr_prov_job *job, int pgid,
                  unsigned long long start) {
  char boot[64], path[4400], line[160];
  atr__jobs_boot_id(boot, sizeof boot);
  atr__jobs_record_path(job, path, sizeof path);
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int n = snprintf(line, sizeof line, "%s %d %llu\n", boot[0] ? boot : "-",
                   pgid, start);
  bool ok = fd >= 0 && write(fd, line, (size_t)n) == n;
  if (fd >= 0)
    close(fd);
  if (!ok)
    return ATR_EIO;
  pthread_mutex_lock(&job->log_lock);
  size_t kept = 0; /* forget groups that are gone when the list is full */
  for (size_t i = 0; job->ngroups == ATR_JOB_GROUPS_MAX && i < job->ngroups;
       i++)
    if (kill(-job->groups[i], 0) == 0) {
      job->groups[kept] = job->groups[i];
      job->group_start[kept++] = job->group_start[i];
    }
  if (job->ngroups == ATR_JOB_GROUPS_MAX)
    job->ngroups = kept;
  if (job->ngroups < ATR_JOB_GROUPS_MAX) {
    job->groups[job->ngroups] = pgid;
    job->group_start[job->ngroups++] = start;
  }
  pthread_mutex_unlock(&job->log_lock);
  return 0;
}

/* envp with HOME, USER and LOGNAME of the build user (a malloc'd array
 * of borrowed strings: vars holds the new ones). */
static char **user_env(char *const *envp, char *vars[3]) {
  size_t n = 0;
  while (envp && envp[n])
    n++;
  char **out = calloc(n + 4, sizeof *out);
  if (out == NULL)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(envp[i], "HOME=", 5) != 0 &&
        strncmp(envp[i], "USER=", 5) != 0 &&
        strncmp(envp[i], "LOGNAME=", 8) != 0)
      out[k++] = envp[i];
  for (int i = 0; i < 3 && vars[i]; i++)
    out[k++] = vars[i];
  return out;
}

/* In the child, after fork: only async-signal-safe calls. */
static void child(const atr_spawn_t *spec, char *const *envp, const char *cwd,
                  const int fds[3], int go, int report) {
  const atr__build_user_t *u = atr__jobs_user();
  char byte;
  setpgid(0, 0);
  if (read(go, &byte, 1) != 1)
    _exit(127); /* the parent died before recording the group */
  int moved[3];
  for (int i = 0; i < 3; i++)
    moved[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10);
  for (int i = 0; i < 3; i++)
    if (moved[i] < 0 || dup2(moved[i], i) < 0)
      goto fail;
  sigset_t none;
  sigemptyset(&none);
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  for (int s = 1; s < NSIG; s++)
    sigaction(s, &dfl, NULL); /* KILL, STOP and the libc's own fail */
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (u->drop && (setgroups((size_t)u->ngroups, (gid_t *)u->groups) != 0 ||
                  setgid(u->gid) != 0 || setuid(u->uid) != 0))
    goto fail;
  if (chdir(cwd) != 0)
    goto fail;
  execve(spec->path, spec->argv, envp);
fail:;
  int e = errno;
  if (write(report, &e, sizeof e) < 0)
    _exit(126);
  _exit(127);
}

typedef struct prep {
  int fds[3], devnull, go[2], report[2];
  char **envp;
  char *vars[3];
} prep_t;

static void prep_free(prep_t *p) {
  int all[] = {p->devnull, p->go[0], p->go[1], p->report[0], p->report[1]};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
    if (all[i] >= 0)
      close(all[i]);
  free(p->envp);
  for (int i = 0; i < 3; i++)
    free(p->vars[i]);
}

static int prepare(struct atr_prov_job *job, const atr_spawn_t *spec,
                   prep_t *p) {
  const atr__build_user_t *u = atr__jobs_user();
  *p = (prep_t){.devnull = -1, .go = {-1, -1}, .report = {-1, -1}};
  p->devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (p->devnull < 0 || pipe2(p->go, O_CLOEXEC) != 0 ||
      pipe2(p->report, O_CLOEXEC) != 0)
    return ATR_EIO;
  const int want[3] = {spec->fd_in, spec->fd_out, spec->fd_err};
  for (int i = 0; i < 3; i++)
    p->fds[i] = want[i] >= 0 ? want[i] : p->devnull;
  if (!u->drop)
    return 0;
  if (asprintf(&p->vars[0], "HOME=%s/.home", job->dir) < 0)
    p->vars[0] = NULL;
  if (asprintf(&p->vars[1], "USER=%s", u->name) < 0)
    p->vars[1] = NULL;
  if (asprintf(&p->vars[2], "LOGNAME=%s", u->name) < 0)
    p->vars[2] = NULL;
  p->envp = user_env(spec->envp, p->vars);
  return p->envp && p->vars[0] && p->vars[1] && p->vars[2] ? 0 : ATR_ENOMEM;
}

/* After fork, in the parent: record the group, let the child go on, and
 * learn whether exec worked. */
static int release(struct atr_prov_job *job, const atr_spawn_t *spec, prep_t *p,
                   pid_t pid) {
  setpgid(pid, pid); /* also here: no window where the group is not made */
  /* Into the job's cgroup while it still waits for "g": whatever it starts
   * is born inside, setsid or not. */
  if (atr__cgroup_add(job->row.id, pid) != 0)
    atr_log(ATR_LOG_WARN, "provisioner",
            "job %s: cannot move %s into the job's cgroup: %s; it is ended "
            "by its process group only",
            job->row.id, spec->path, strerror(errno));
  close(p->go[0]);
  close(p->report[1]);
  p->go[0] = p->report[1] = -1;
  int rc = record(job, pid, start_time(pid));
  if (rc != 0) {
    atr_log(ATR_LOG_ERROR, "provisioner",
            "job %s: cannot record the process group of %s: %s; not "
            "starting it",
            job->row.id, spec->path, strerror(errno));
    kill(pid, SIGKILL);
  } else if (write(p->go[1], "g", 1) != 1) {
    rc = ATR_EIO;
  }
  close(p->go[1]);
  p->go[1] = -1;
  int e = 0;
  ssize_t n;
  while ((n = read(p->report[0], &e, sizeof e)) < 0 && errno == EINTR)
    ;
  if (rc == 0 && n <= 0)
    return 0;
  while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
    ;
  if (rc == 0) {
    atr_log(ATR_LOG_ERROR, "provisioner", "job %s: cannot run %s: %s",
            job->row.id, spec->path, strerror(e));
    rc = e == ENOMEM ? ATR_ENOMEM : e == EACCES ? ATR_EACCES : ATR_EIO;
  }
  return rc;
}

int atr_jobs_spawn(struct atr_prov_job *job, const atr_spawn_t *spec,
                   int *pid) {
  if (spec->struct_size < sizeof(atr_spawn_t) || spec->path == NULL ||
      spec->argv == NULL)
    return ATR_EINVAL;
  prep_t p;
  int rc = prepare(job, spec, &p);
  if (rc == 0 && atr__jobs_user()->drop)
    rc = atr_jobs_dir_handover(job);
  if (rc == 0 && atr__cgroup_make(job->row.id) != 0)
    atr_log(ATR_LOG_WARN, "provisioner", "job %s: cannot make its cgroup: %s",
            job->row.id, strerror(errno));
  const char *cwd = spec->cwd ? spec->cwd : job->dir;
  char *const *envp = p.envp ? p.envp : spec->envp;
  pid_t child_pid = rc == 0 ? fork() : -1;
  if (child_pid == 0)
    child(spec, envp, cwd, p.fds, p.go[0], p.report[1]);
  if (rc == 0 && child_pid < 0)
    rc = errno == ENOMEM || errno == EAGAIN ? ATR_ENOMEM : ATR_EIO;
  if (rc == 0)
    rc = release(job, spec, &p, child_pid);
  prep_free(&p);
  if (rc == 0)
    *pid = (int)child_pid;
  return rc;
}

void atr_jobs_kill(struct atr_prov_job *job) {
  pthread_mutex_lock(&job->log_lock);
  size_t n = job->ngroups;
  job->ngroups = 0;
  pthread_mutex_unlock(&job->log_lock);
  for (size_t i = 0; i < n; i++)
    if (atr__jobs_kill_group(job->groups[i], job->group_start[i]) == 0)
      atr_log(ATR_LOG_INFO, "provisioner",
              "job %s: killed what was left of process group %d", job->row.id,
              job->groups[i]);
  int left = atr__cgroup_kill(job->row.id, false);
  if (left > 0)
    atr_log(ATR_LOG_INFO, "provisioner",
            "job %s: killed %d process%s left in its cgroup", job->row.id, left,
            left == 1 ? "" : "es");
}

void atr_jobs_end(struct atr_prov_job *job) {
  atr_jobs_kill(job);
  atr__cgroup_kill(job->row.id, true);
  char path[4400];
  atr__jobs_record_path(job, path, sizeof path);
  unlink(path);
  if (job->dir[0] != '\0')
    atr__jobs_remove_tree(job->dir);
}
