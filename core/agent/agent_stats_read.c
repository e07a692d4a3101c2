/* core/agent/agent_stats_read.c — CPU, memory and port readers
 * (agent_stats.h). */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_stats.h"
#include "atrium/error.h"

/* The first size-1 bytes of dir/name, NUL-terminated; -1 if unreadable. */
static ssize_t read_small(const char *dir, const char *name, char *buf,
                          size_t size) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "re");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, size - 1, f);
  fclose(f);
  buf[n] = '\0';
  return (ssize_t)n;
}

int agent_cpu_sample(const char *cgroup_dir, const char *proc_dir,
                     uint64_t now_us, agent_cpu_sample_t *out) {
  char buf[4096];
  memset(out, 0, sizeof *out);
  if (read_small(cgroup_dir, "cpu.stat", buf, sizeof buf) > 0) {
    const char *p = strstr(buf, "usage_usec ");
    if (p && sscanf(p + 11, "%" SCNu64, &out->busy_us) == 1) {
      out->cgroup = true;
      out->wall_us = now_us;
      return 0;
    }
  }
  if (read_small(proc_dir, "stat", buf, sizeof buf) <= 0 ||
      strncmp(buf, "cpu ", 4) != 0)
    return ATR_ENOENT;
  /* user nice system idle iowait irq softirq steal, in clock ticks */
  uint64_t v[8] = {0};
  int n = sscanf(buf + 4,
                 "%" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
                 " %" SCNu64 " %" SCNu64 " %" SCNu64,
                 &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  if (n < 4)
    return ATR_ENOENT;
  uint64_t total = 0;
  for (int i = 0; i < n; i++)
    total += v[i];
  out->busy_us = total - v[3] - (n > 4 ? v[4] : 0);
  out->wall_us = total;
  return 0;
}

double agent_cpu_cores_used(const agent_cpu_sample_t *a,
                            const agent_cpu_sample_t *b, double cores_total) {
  if (a->cgroup != b->cgroup || b->wall_us <= a->wall_us ||
      b->busy_us < a->busy_us)
    return 0;
  double busy = (double)(b->busy_us - a->busy_us);
  double wall = (double)(b->wall_us - a->wall_us);
  /* cgroup: CPU-µs per wall-µs; /proc/stat: a share of all CPUs. */
  return a->cgroup ? busy / wall : busy / wall * cores_total;
}

double agent_cpu_cores_total(const char *cgroup_dir, const char *proc_dir) {
  char buf[8192];
  long long quota, period;
  if (read_small(cgroup_dir, "cpu.max", buf, sizeof buf) > 0 &&
      sscanf(buf, "%lld %lld", &quota, &period) == 2 && quota > 0 && period > 0)
    return (double)quota / (double)period;
  if (read_small(proc_dir, "stat", buf, sizeof buf) <= 0)
    return 1;
  int cpus = 0;
  for (const char *p = buf; (p = strstr(p, "\ncpu")); p += 4)
    if (isdigit((unsigned char)p[4]))
      cpus++;
  return cpus > 0 ? cpus : 1;
}

static int64_t meminfo_kb(const char *text, const char *key) {
  const char *p = strstr(text, key);
  long long kb;
  if (!p || sscanf(p + strlen(key), " %lld", &kb) != 1)
    return -1;
  return (int64_t)kb * 1024;
}

int agent_memory(const char *cgroup_dir, const char *proc_dir, int64_t *used,
                 int64_t *total) {
  char buf[4096], mbuf[64];
  int64_t mem_total = -1, mem_avail = -1;
  if (read_small(proc_dir, "meminfo", buf, sizeof buf) > 0) {
    mem_total = meminfo_kb(buf, "MemTotal:");
    mem_avail = meminfo_kb(buf, "MemAvailable:");
  }
  long long cur;
  if (read_small(cgroup_dir, "memory.current", mbuf, sizeof mbuf) > 0 &&
      sscanf(mbuf, "%lld", &cur) == 1) {
    long long max;
    *used = cur;
    *total = read_small(cgroup_dir, "memory.max", mbuf, sizeof mbuf) > 0 &&
                     sscanf(mbuf, "%lld", &max) == 1
                 ? max
                 : mem_total;
    return 0;
  }
  if (mem_total < 0 || mem_avail < 0)
    return ATR_ENOENT;
  *used = mem_total - mem_avail;
  *total = mem_total;
  return 0;
}

size_t agent_ports_parse(const char *text, size_t len, agent_port_t *ports,
                         size_t n, size_t max) {
  const char *p = text, *end = text + len;
  const char *nl = memchr(p, '\n', len); /* the header line */
  p = nl ? nl + 1 : end;
  while (p < end && n < max) {
    nl = memchr(p, '\n', (size_t)(end - p));
    char line[512];
    size_t ll = (size_t)((nl ? nl : end) - p);
    if (ll >= sizeof line)
      ll = sizeof line - 1;
    memcpy(line, p, ll);
    line[ll] = '\0';
    p = nl ? nl + 1 : end;
    char local[64], st[8];
    unsigned port;
    unsigned long long inode;
    /* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
    if (sscanf(line, " %*s %63s %*s %7s %*s %*s %*s %*s %*s %llu", local, st,
               &inode) != 3 ||
        strcmp(st, "0A") != 0)
      continue;
    const char *colon = strrchr(local, ':');
    if (!colon || sscanf(colon + 1, "%x", &port) != 1 || port == 0 ||
        port > 65535)
      continue;
    bool seen = false;
    for (size_t i = 0; i < n && !seen; i++)
      seen = ports[i].port == port;
    if (!seen)
      ports[n++] = (agent_port_t){.port = (uint16_t)port, .inode = inode};
  }
  return n;
}

static int by_port(const void *a, const void *b) {
  return (int)((const agent_port_t *)a)->port -
         (int)((const agent_port_t *)b)->port;
}

size_t agent_ports_read(const char *proc_dir, agent_port_t *ports, size_t max) {
  static const char *const files[] = {"net/tcp", "net/tcp6"};
  size_t n = 0;
  for (size_t i = 0; i < 2; i++) {
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", proc_dir, files[i]);
    FILE *f = buf ? fopen(path, "re") : NULL;
    if (f) {
      len = fread(buf, 1, cap, f);
      fclose(f);
      n = agent_ports_parse(buf, len, ports, n, max);
    }
    free(buf);
  }
  qsort(ports, n, sizeof *ports, by_port);
  return n;
}

static bool pid_has_socket(const char *proc_dir, const char *pid,
                           const char *want) {
  char path[512], link[64];
  snprintf(path, sizeof path, "%s/%s/fd", proc_dir, pid);
  DIR *d = opendir(path);
  if (!d)
    return false;
  bool found = false;
  struct dirent *e;
  while (!found && (e = readdir(d))) {
    ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof link - 1);
    if (n > 0) {
      link[n] = '\0';
      found = strcmp(link, want) == 0;
    }
  }
  closedir(d);
  return found;
}

void agent_port_process(const char *proc_dir, uint64_t inode, char *name,
                        size_t size) {
  name[0] = '\0';
  char want[48];
  snprintf(want, sizeof want, "socket:[%" PRIu64 "]", inode);
  DIR *d = opendir(proc_dir);
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (!isdigit((unsigned char)e->d_name[0]) ||
        !pid_has_socket(proc_dir, e->d_name, want))
      continue;
    char comm[300];
    snprintf(comm, sizeof comm, "%s/comm", e->d_name);
    if (read_small(proc_dir, comm, name, size) > 0)
      name[strcspn(name, "\n")] = '\0';
    break;
  }
  closedir(d);
}
