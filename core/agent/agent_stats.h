/* core/agent/agent_stats.h — what the agent measures: CPU and memory
 * (cgroup v2 when the agent runs in one, else /proc), and the TCP ports
 * listening in the workspace (/proc/net/tcp and tcp6).
 *
 * The readers take the directories as arguments so tests point them at a
 * fixture; the agent passes "/sys/fs/cgroup" and "/proc".
 *
 * Threads: pure (they read files).
 */
#ifndef ATRIUM_AGENT_STATS_H
#define ATRIUM_AGENT_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct agent_cpu_sample {
  bool cgroup;      /* from cpu.stat; else /proc/stat */
  uint64_t busy_us; /* CPU time used so far */
  uint64_t wall_us; /* when (monotonic); /proc/stat: all CPUs' time */
} agent_cpu_sample_t;

/* A CPU sample; 0 or ATR_ENOENT when neither source can be read. */
int agent_cpu_sample(const char *cgroup_dir, const char *proc_dir,
                     uint64_t now_us, agent_cpu_sample_t *out);
/* Cores used between two samples (of the same kind). */
double agent_cpu_cores_used(const agent_cpu_sample_t *a,
                            const agent_cpu_sample_t *b, double cores_total);
/* Cores available: cpu.max's quota / period, else the CPUs in /proc/stat,
 * else 1. */
double agent_cpu_cores_total(const char *cgroup_dir, const char *proc_dir);
/* Memory used and the limit: memory.current and memory.max (a limit of
 * "max" is MemTotal), else MemTotal - MemAvailable and MemTotal. 0 or
 * ATR_ENOENT. */
int agent_memory(const char *cgroup_dir, const char *proc_dir, int64_t *used,
                 int64_t *total);

#define AGENT_PORTS_MAX 256

typedef struct agent_port {
  uint16_t port;
  uint64_t inode;
} agent_port_t;

/* The LISTEN sockets (state 0A) of one /proc/net/tcp{,6} text, added to
 * ports (skipping ports already there, at most max); the count after. */
size_t agent_ports_parse(const char *text, size_t len, agent_port_t *ports,
                         size_t n, size_t max);
/* Both files under proc_dir/net, sorted by port. */
size_t agent_ports_read(const char *proc_dir, agent_port_t *ports, size_t max);
/* The command name of the process holding socket inode (its
 * /proc/<pid>/comm), or "" when none is readable. */
void agent_port_process(const char *proc_dir, uint64_t inode, char *name,
                        size_t size);

#endif
