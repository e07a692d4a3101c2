/* core/jobs/jobdirs.c — the build user, job directories and the sweep at
 * start; see jobproc.h. */
#include "jobproc.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atrium/error.h"
#include "host_jobs.h"
#include "jobcgroup.h"
#include "jobrun.h"
#include "log.h"

#define SHARED_ROOT "/var/tmp/atrium-jobs"

/* Set by atr_jobs_setup before any job runs, read-only while jobs run. */
static atr__build_user_t user;
static char work_root[4096];

const atr__build_user_t *atr__jobs_user(void) {
  return &user;
}

static int fail(char **err, int rc, const char *fmt, const char *a,
                const char *b) {
  if (err && asprintf(err, fmt, a, b) < 0)
    *err = NULL;
  return rc;
}

static int resolve_user(const char *run_as, char **err) {
  memset(&user, 0, sizeof user);
  struct passwd *me = getpwuid(geteuid());
  snprintf(user.name, sizeof user.name, "%s", me ? me->pw_name : "?");
  if (run_as == NULL || *run_as == '\0') {
    atr_log(ATR_LOG_INFO, "provisioner",
            "builds run as the server's user %s (provisioner.run_as is empty)",
            user.name);
    return 0;
  }
  if (geteuid() != 0) {
    atr_log(ATR_LOG_INFO, "provisioner",
            "the server does not run as root: builds run as its user %s, "
            "not as provisioner.run_as=%s",
            user.name, run_as);
    return 0;
  }
  struct passwd *pw = getpwnam(run_as);
  if (pw == NULL) {
    atr_log(ATR_LOG_ERROR, "provisioner",
            "provisioner.run_as: there is no user %s, so builds run as root; "
            "create it (useradd --system --no-create-home --shell "
            "/usr/sbin/nologin %s) or set provisioner.run_as to \"\" to "
            "choose root",
            run_as, run_as);
    return 0;
  }
  if (pw->pw_uid == 0)
    return fail(err, ATR_ECONFIG, "provisioner.run_as: %s%s is root", run_as,
                "");
  int n = 0;
  getgrouplist(run_as, pw->pw_gid, NULL, &n);
  gid_t *g = calloc((size_t)(n > 0 ? n : 1), sizeof *g);
  if (g == NULL || getgrouplist(run_as, pw->pw_gid, g, &n) < 0) {
    free(g);
    return ATR_ENOMEM;
  }
  user = (atr__build_user_t){1, pw->pw_uid, pw->pw_gid, (unsigned *)g, n, ""};
  snprintf(user.name, sizeof user.name, "%s", run_as);
  atr_log(ATR_LOG_INFO, "provisioner", "builds run as %s (uid %u, gid %u)",
          run_as, user.uid, user.gid);
  return 0;
}

/* A directory of ours that nobody else can change: made if missing, then
 * checked (a link, another owner or a writable mode is refused). */
static int own_dir(const char *path, mode_t mode, char **err) {
  if (mkdir(path, mode) != 0 && errno != EEXIST)
    return fail(err, ATR_EIO, "cannot make %s: %s", path, strerror(errno));
  struct stat st;
  if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 022) != 0)
    return fail(err, ATR_EPERM,
                "%s is not a directory of the server's user that only it can "
                "change; remove it%s",
                path, "");
  chmod(path, mode);
  return 0;
}

unsigned long long atr__jobs_data_dir_hash(const char *data_dir) {
  char *abs = realpath(data_dir, NULL);
  uint64_t h = 1469598103934665603ull;
  for (const char *s = abs ? abs : data_dir; *s; s++)
    h = (h ^ (unsigned char)*s) * 1099511628211ull;
  free(abs);
  return h;
}

void atr__jobs_boot_id(char *out, size_t size) {
  FILE *b = fopen("/proc/sys/kernel/random/boot_id", "r");
  out[0] = '\0';
  if (b && fgets(out, (int)size, b))
    out[strcspn(out, "\n")] = '\0';
  if (b)
    fclose(b);
}

int atr_jobs_setup(const char *data_dir, const char *run_as, char **err) {
  int rc = resolve_user(run_as, err);
  char jobs[4096];
  snprintf(jobs, sizeof jobs, "%s/jobs", data_dir);
  if (rc == 0)
    rc = own_dir(jobs, 0700, err);
  if (rc == 0 && !user.drop)
    snprintf(work_root, sizeof work_root, "%s", jobs);
  if (rc == 0 && user.drop) {
    snprintf(work_root, sizeof work_root, "%s/%016llx", SHARED_ROOT,
             atr__jobs_data_dir_hash(data_dir));
    rc = own_dir(SHARED_ROOT, 0711, err);
    if (rc == 0)
      rc = own_dir(work_root, 0711, err);
  }
  if (rc == 0)
    atr__cgroup_setup(data_dir);
  if (rc == 0)
    atr_host_set_job_spawn(atr_jobs_spawn);
  return rc;
}

void atr_jobs_teardown(void) {
  atr_host_set_job_spawn(NULL);
  atr__cgroup_teardown();
  if (user.drop)
    rmdir(work_root); /* when empty: one per data_dir would pile up */
  work_root[0] = '\0';
  free(user.groups);
  memset(&user, 0, sizeof user);
}

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  remove(path);
  return 0;
}

void atr__jobs_remove_tree(const char *dir) {
  nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void atr__jobs_record_path(const struct atr_prov_job *job, char *out,
                           size_t size) {
  snprintf(out, size, "%s/jobs/%s.pgid", job->cfg->data_dir, job->row.id);
}

int atr_jobs_dir_make(struct atr_prov_job *job) {
  snprintf(job->dir, sizeof job->dir, "%s/%s", work_root, job->row.id);
  atr__jobs_remove_tree(job->dir);
  return mkdir(job->dir, 0700) == 0 ? 0 : ATR_EIO;
}

/* Only what the server made: the build user's own files stay as they are,
 * and a hard link it planted to a file of the server's (nlink > 1) is never
 * given away. Links are changed themselves, never followed. */
static int chown_entry(const char *path, const struct stat *st, int flag,
                       struct FTW *ftw) {
  (void)flag;
  (void)ftw;
  if (st->st_uid != geteuid() || (S_ISREG(st->st_mode) && st->st_nlink > 1))
    return 0;
  return lchown(path, user.uid, user.gid) == 0 ? 0 : -1;
}

int atr_jobs_dir_handover(struct atr_prov_job *job) {
  if (!user.drop)
    return 0;
  char home[4300];
  snprintf(home, sizeof home, "%s/.home", job->dir);
  if (mkdir(home, 0700) != 0 && errno != EEXIST)
    return ATR_EIO;
  return nftw(job->dir, chown_entry, 16, FTW_PHYS) == 0 ? 0 : ATR_EIO;
}

/* ---- the sweep at start -------------------------------------------------- */

static void sweep_record(const char *jobs, const char *name) {
  char path[4400];
  snprintf(path, sizeof path, "%s/%s", jobs, name);
  FILE *f = fopen(path, "r");
  char boot[64], line[256];
  atr__jobs_boot_id(boot, sizeof boot);
  while (f && fgets(line, sizeof line, f)) {
    char rec_boot[64];
    int pgid;
    unsigned long long start;
    if (sscanf(line, "%63s %d %llu", rec_boot, &pgid, &start) != 3 ||
        pgid <= 1 || strcmp(rec_boot, boot) != 0)
      continue; /* another boot: its processes are gone */
    if (atr__jobs_kill_group(pgid, start) == 0)
      atr_log(ATR_LOG_WARN, "provisioner",
              "killed process group %d of job %.*s, left running by a server "
              "that stopped without ending the job",
              pgid, (int)(strlen(name) - 5), name);
  }
  if (f)
    fclose(f);
  unlink(path);
}

static void sweep_dirs(const char *root, bool records) {
  DIR *d = opendir(root);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    const char *n = e->d_name;
    size_t len = strlen(n);
    if (n[0] == '.')
      continue;
    bool record = len > 5 && strcmp(n + len - 5, ".pgid") == 0;
    if (records != record)
      continue;
    if (record) {
      sweep_record(root, n);
      continue;
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", root, n);
    struct stat st;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
      continue;
    atr__jobs_remove_tree(path);
    atr_log(ATR_LOG_WARN, "provisioner",
            "removed the working directory of job %s, left by a server that "
            "stopped without ending the job",
            n);
  }
  if (d)
    closedir(d);
}

void atr_jobs_sweep(const char *data_dir) {
  char jobs[4096];
  snprintf(jobs, sizeof jobs, "%s/jobs", data_dir);
  /* Processes first (cgroups, then groups the records name): kill before
   * removing what they use. */
  atr__cgroup_sweep();
  sweep_dirs(jobs, true);
  sweep_dirs(jobs, false);
  if (strcmp(jobs, work_root) != 0 && *work_root != '\0')
    sweep_dirs(work_root, false);
}
