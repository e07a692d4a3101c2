/* core/agent/agent_internal.h — the agent's state, shared by its modules
 * (agent_core.c runs the lifecycle; agent_main.c reads the command line;
 * the monitors report on their own timers).
 *
 * Threads: the loop's thread only. Memory: agent_t owns everything in it;
 * the manifest is replaced whole when fetched again.
 */
#ifndef ATRIUM_AGENT_INTERNAL_H
#define ATRIUM_AGENT_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "agent_conn.h"
#include "agent_lifecycle.h"
#include "agent_logs.h"
#include "agent_pty.h"
#include "agent_scripts.h"
#include "agent_ssh.h"
#include "agent_tunnel.h"

#define AGENT_API "/api/v2/workspaceagents/me"

typedef struct agent_config {
  char *url, *token;  /* owned; the token is wiped when freed */
  char *log_dir;      /* NULL: log to stderr only */
  bool exit_on_final; /* --env-file / --init: exit after a final state */
  char **init_argv;   /* --init: the workload; NULL otherwise */
  /* Controllable for tests (ATRIUM_AGENT_* in the environment). */
  int64_t stats_ms;      /* 0: the server's report_interval */
  int64_t ports_ms;      /* /proc/net/tcp scan, 5 s */
  int64_t flush_ms;      /* log batch delay, 250 ms */
  int64_t kill_grace_ms; /* SIGTERM -> SIGKILL, 5 s */
  int64_t final_wait_ms; /* acks awaited after a final state, 30 s */
  int64_t heartbeat_ms, backoff_max_ms;
  const char *proc_dir, *cgroup_dir; /* "/proc", "/sys/fs/cgroup" */
} agent_config_t;

typedef struct agent_metadata agent_metadata_t;
typedef struct agent_stats agent_stats_t;
typedef struct agent_apps agent_apps_t;
typedef struct agent_init agent_init_t;

typedef struct agent_script_spec {
  char *script; /* NULL: none */
  char source[40];
  int64_t timeout_ms;
} agent_script_spec_t;

typedef struct agent {
  uv_loop_t *loop;
  agent_config_t cfg;
  agent_conn_t *conn;
  agent_logs_t logs;
  agent_lifecycle_t lc;
  json_t *manifest;
  bool set_up;       /* the first manifest was acted on */
  bool state_known;  /* logs/state answered */
  bool stop_pending; /* shutdown asked while starting */
  bool exit_wanted;  /* exit once final and acked */
  bool exiting;
  char *dir;              /* the manifest's directory, expanded */
  char **env;             /* the scripts' environment */
  agent_script_t *script; /* the startup or shutdown script running */
  agent_script_spec_t start, stop;
  agent_log_source_t *own_src;
  agent_metadata_t *metadata;
  agent_stats_t *stats;
  agent_apps_t *apps;
  agent_init_t *init;
  agent_tunnels_t *tunnels; /* tunnels (docs/design/connect.md) */
  agent_pty_t *pty;         /* the "pty" kind: web terminals */
  agent_ssh_t *ssh;         /* the "ssh" kind */
  uv_signal_t sigs[3];
  uv_timer_t retry;      /* manifest or logs/state again */
  uv_timer_t exit_check; /* final state held for logs; acks before exit */
  int64_t exit_waited_ms;
  bool final_held; /* the shutdown script ended: logs first */
  agent_state_t final_state;
  int exit_code;
} agent_t;

/* agent_core.c */
int agent_run(agent_config_t *cfg);
/* starting, then the startup script (or ready at once). */
void agent_begin_start(agent_t *a);
/* Close the agent's own handles (the connection was stopped). */
void agent_close_handles(agent_t *a);
/* The server refused the token (it was revoked): after a final state
 * nothing more can be acked, so exit now if this mode exits. */
void agent_token_refused(agent_t *a);
/* Exit as soon as the connection is closed (and the workload stopped). */
void agent_exit_now(agent_t *a);
/* Begin shutting down (a signal, the shutdown event, the workload ended). */
void agent_shutdown(agent_t *a, const char *why);
/* Tunnels: the kinds the agent serves, from the first manifest. */
void agent_serve_start(agent_t *a, const json_t *m);
/* SSH connections and live PTYs now (the stats' session counts). */
void agent_serve_sessions(agent_t *a, int *ssh, int *pty);
/* Write a line to the agent's own log source (and the process log). */
void agent_say(agent_t *a, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* agent_metadata.c: one timer per manifest metadata item. */
agent_metadata_t *agent_metadata_start(agent_t *a, const json_t *items);
void agent_metadata_stop(agent_metadata_t *m);
/* After the loop closed everything (replies may still name it until the
 * connection stopped). */
void agent_metadata_free(agent_metadata_t *m);

/* agent_stats.c: stats on report_interval, listening ports every ports_ms. */
agent_stats_t *agent_stats_start(agent_t *a, int64_t interval_ms);
void agent_stats_stop(agent_stats_t *s);
void agent_stats_free(agent_stats_t *s);

/* agent_apps.c: app health checks. */
agent_apps_t *agent_apps_start(agent_t *a, const json_t *apps);
void agent_apps_stop(agent_apps_t *p);
void agent_apps_free(agent_apps_t *p);

/* agent_init.c: PID-1 mode. */
agent_init_t *agent_init_start(agent_t *a, char **argv);
/* Forward sig to the workload. */
void agent_init_signal(agent_init_t *in, int sig);
/* Terminate the workload (SIGTERM, SIGKILL after the grace) and call
 * done(a, status) once it was reaped; at once if it already exited. */
void agent_init_finish(agent_init_t *in, void (*done)(agent_t *a, int status));
void agent_init_free(agent_init_t *in);

#endif
