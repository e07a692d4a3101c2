/* observer_prometheus/process.c — the standard process_* families.
 *
 * Names and help texts are those of the official client libraries, so
 * dashboards made for any Prometheus-instrumented process work unchanged.
 * Everything is read from /proc at scrape time: /proc/self/stat for CPU
 * time, memory and the start tick, /proc/stat for the boot time,
 * /proc/self/fd for open descriptors and getrlimit for the limit.
 */
#include "internal.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct proc_stat {
  double utime_ticks, stime_ticks, start_ticks;
  double vsize_bytes, rss_pages;
} proc_stat_t;

/* /proc/self/stat: the command in field 2 may hold spaces and parentheses,
 * so fields are counted from the last ')'. Field numbers from proc(5):
 * utime 14, stime 15, starttime 22, vsize 23, rss 24; the token after the
 * ')' is field 3. */
static bool read_self_stat(proc_stat_t *st) {
  char line[1024];
  double field[25] = {0};
  int n = 3;
  FILE *f = fopen("/proc/self/stat", "re");
  if (f == NULL)
    return false;
  bool ok = fgets(line, sizeof line, f) != NULL;
  fclose(f);
  char *p = ok ? strrchr(line, ')') : NULL;
  if (p == NULL)
    return false;
  char *save = NULL;
  for (char *tok = strtok_r(p + 1, " ", &save); tok != NULL && n < 25;
       tok = strtok_r(NULL, " ", &save), n++)
    field[n] = strtod(tok, NULL);
  if (n < 25)
    return false;
  st->utime_ticks = field[14];
  st->stime_ticks = field[15];
  st->start_ticks = field[22];
  st->vsize_bytes = field[23];
  st->rss_pages = field[24];
  return true;
}

static bool read_boot_time(double *out) {
  char line[256];
  bool found = false;
  FILE *f = fopen("/proc/stat", "re");
  if (f == NULL)
    return false;
  while (!found && fgets(line, sizeof line, f) != NULL) {
    unsigned long long t = 0;
    if (sscanf(line, "btime %llu", &t) == 1) {
      *out = (double)t;
      found = true;
    }
  }
  fclose(f);
  return found;
}

/* Entries of /proc/self/fd, less the one opendir() itself holds. */
static bool count_open_fds(double *out) {
  DIR *d = opendir("/proc/self/fd");
  if (d == NULL)
    return false;
  double n = 0;
  int own = dirfd(d);
  const struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.')
      continue;
    if (atoi(e->d_name) != own)
      n++;
  }
  closedir(d);
  *out = n;
  return true;
}

static void put_one(op_buf_t *out, bool (*skip)(void *, const char *), void *ud,
                    const char *name, const char *help, const char *type,
                    double v) {
  char num[32];
  if (skip != NULL && skip(ud, name))
    return;
  op_write_header(out, name, help, type);
  op_format_double(v, num);
  op_buf_printf(out, "%s %s\n", name, num);
}

void op_process_render(op_buf_t *out, bool (*skip)(void *, const char *),
                       void *ud) {
  proc_stat_t st;
  double ticks = (double)sysconf(_SC_CLK_TCK);
  double page = (double)sysconf(_SC_PAGESIZE);
  double boot = 0, fds = 0;
  struct rlimit rl;
  if (read_self_stat(&st) && ticks > 0) {
    put_one(out, skip, ud, "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.", "counter",
            (st.utime_ticks + st.stime_ticks) / ticks);
    put_one(out, skip, ud, "process_resident_memory_bytes",
            "Resident memory size in bytes.", "gauge", st.rss_pages * page);
    put_one(out, skip, ud, "process_virtual_memory_bytes",
            "Virtual memory size in bytes.", "gauge", st.vsize_bytes);
    if (read_boot_time(&boot))
      put_one(out, skip, ud, "process_start_time_seconds",
              "Start time of the process since unix epoch in seconds.", "gauge",
              boot + st.start_ticks / ticks);
  }
  if (count_open_fds(&fds))
    put_one(out, skip, ud, "process_open_fds",
            "Number of open file descriptors.", "gauge", fds);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    put_one(out, skip, ud, "process_max_fds",
            "Maximum number of open file descriptors.", "gauge",
            (double)rl.rlim_cur);
}
