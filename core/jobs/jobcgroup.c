/* core/jobs/jobcgroup.c — a cgroup v2 per job; see jobcgroup.h. */
#include "jobcgroup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atrium/error.h"
#include "jobproc.h"
#include "log.h"

/* How long a kill waits for the members to be gone: dying is the
 * kernel's part, it takes milliseconds unless a process is stuck in the
 * kernel (D state), which no signal helps. */
#define KILL_WAIT_MS 5000

/* Set by setup before any job runs, read-only while jobs run. */
static char base[4096];

bool atr__cgroup_enabled(void) {
  return base[0] != '\0';
}

/* The cgroup2 mount point from /proc/self/mountinfo ("" when none). */
static void cgroup2_mount(char *out, size_t size) {
  FILE *f = fopen("/proc/self/mountinfo", "r");
  char line[4096];
  out[0] = '\0';
  while (f && fgets(line, sizeof line, f)) {
    const char *dash = strstr(line, " - cgroup2 ");
    char mnt[4096];
    /* id parent major:minor root mountpoint ... - fstype source opts */
    if (dash && sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1) {
      snprintf(out, size, "%s", mnt);
      break;
    }
  }
  if (f)
    fclose(f);
}

/* The server's own cgroup v2 path ("0::<path>" in /proc/self/cgroup). */
static void own_cgroup(char *out, size_t size) {
  FILE *f = fopen("/proc/self/cgroup", "r");
  char line[4096];
  out[0] = '\0';
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "0::", 3) == 0) {
      line[strcspn(line, "\n")] = '\0';
      snprintf(out, size, "%s", strcmp(line + 3, "/") == 0 ? "" : line + 3);
      break;
    }
  if (f)
    fclose(f);
}

void atr__cgroup_setup(const char *data_dir) {
  char mnt[4096], own[4096], path[4096];
  base[0] = '\0';
  cgroup2_mount(mnt, sizeof mnt);
  own_cgroup(own, sizeof own);
  int n = snprintf(path, sizeof path, "%s%s/atrium-jobs-%016llx", mnt, own,
                   atr__jobs_data_dir_hash(data_dir));
  struct stat st;
  bool ok = mnt[0] != '\0' && n > 0 && (size_t)n < sizeof path &&
            (mkdir(path, 0755) == 0 || errno == EEXIST) &&
            lstat(path, &st) == 0 && S_ISDIR(st.st_mode) &&
            st.st_uid == geteuid();
  if (!ok) {
    atr_log(ATR_LOG_INFO, "provisioner",
            "no writable cgroup v2 hierarchy%s%s: builds are ended by "
            "process group, and a process a build detaches with setsid "
            "outlives it (docs/security.md)",
            mnt[0] ? " at " : "", mnt[0] ? path : "");
    return;
  }
  snprintf(base, sizeof base, "%s", path);
  atr_log(ATR_LOG_INFO, "provisioner", "each build runs in a cgroup under %s",
          base);
}

void atr__cgroup_teardown(void) {
  if (base[0] != '\0')
    rmdir(base); /* only when no job's cgroup is left */
  base[0] = '\0';
}

static int job_path(const char *job_id, const char *file, char *out,
                    size_t size) {
  if (base[0] == '\0' || strchr(job_id, '/') || job_id[0] == '.')
    return ATR_EINVAL;
  int n = snprintf(out, size, "%s/%s%s%s", base, job_id, file ? "/" : "",
                   file ? file : "");
  return n > 0 && (size_t)n < size ? 0 : ATR_EINVAL;
}

int atr__cgroup_make(const char *job_id) {
  char path[4400];
  if (!atr__cgroup_enabled())
    return 0;
  if (job_path(job_id, NULL, path, sizeof path) != 0)
    return ATR_EINVAL;
  return mkdir(path, 0755) == 0 || errno == EEXIST ? 0 : ATR_EIO;
}

static int write_text(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  size_t len = strlen(text);
  int ok = write(fd, text, len) == (ssize_t)len;
  close(fd);
  return ok ? 0 : -1;
}

int atr__cgroup_add(const char *job_id, int pid) {
  char path[4400], text[32];
  if (!atr__cgroup_enabled())
    return 0;
  if (job_path(job_id, "cgroup.procs", path, sizeof path) != 0)
    return ATR_EINVAL;
  snprintf(text, sizeof text, "%d\n", pid);
  return write_text(path, text) == 0 ? 0 : ATR_EIO;
}

/* How many members cgroup.procs lists; with sig, each is sent it. */
static int members(const char *procs, int sig) {
  FILE *f = fopen(procs, "r");
  int pid, n = 0;
  while (f && fscanf(f, "%d", &pid) == 1) {
    if (sig != 0 && pid > 1)
      kill(pid, sig);
    n++;
  }
  if (f)
    fclose(f);
  return n;
}

static int kill_dir(const char *dir, bool remove_it) {
  char procs[4500], killfile[4500];
  snprintf(procs, sizeof procs, "%s/cgroup.procs", dir);
  snprintf(killfile, sizeof killfile, "%s/cgroup.kill", dir);
  int found = members(procs, 0);
  /* cgroup.kill also catches a member forking while it is signalled; the
   * loop below is for kernels before 5.14, and for what is still dying. */
  if (found > 0 && write_text(killfile, "1") != 0)
    members(procs, SIGKILL);
  for (int waited = 0; members(procs, 0) > 0 && waited < KILL_WAIT_MS;
       waited += 10) {
    if (waited % 200 == 0)
      members(procs, SIGKILL);
    nanosleep(&(struct timespec){0, 10000000L}, NULL);
  }
  if (remove_it && members(procs, 0) == 0)
    rmdir(dir);
  return found;
}

int atr__cgroup_kill(const char *job_id, bool remove_it) {
  char path[4400];
  if (!atr__cgroup_enabled() || job_path(job_id, NULL, path, sizeof path) != 0)
    return 0;
  struct stat st;
  if (lstat(path, &st) != 0)
    return 0;
  return kill_dir(path, remove_it);
}

void atr__cgroup_sweep(void) {
  if (!atr__cgroup_enabled())
    return;
  DIR *d = opendir(base);
  struct dirent *e;
  while (d && (e = readdir(d)) != NULL) {
    char path[4400];
    struct stat st;
    if (e->d_name[0] == '.' || strncmp(e->d_name, "cgroup.", 7) == 0)
      continue;
    snprintf(path, sizeof path, "%s/%s", base, e->d_name);
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
      continue;
    int n = kill_dir(path, true);
    if (n > 0)
      atr_log(ATR_LOG_WARN, "provisioner",
              "killed %d process%s in the cgroup of job %s, left running by "
              "a server that stopped without ending the job",
              n, n == 1 ? "" : "es", e->d_name);
  }
  if (d)
    closedir(d);
}
