/* core/agent/agent_scripts.h — running a template's script: the startup
 * and shutdown scripts, and metadata scripts.
 *
 * `/bin/sh -c SCRIPT` in dir, with env, in a process group of its own so
 * a timeout (or agent_script_kill) reaches everything it started: SIGTERM
 * to the group, SIGKILL kill_grace_ms later. stdout and stderr are read
 * from pipes and split into lines (agent_lines.h). done runs once, after
 * the process was reaped and both pipes closed (or 2 s after the exit if
 * a background child keeps a pipe open), and the script frees itself
 * after done returns.
 *
 * Threads: the loop's thread only. Memory: opts are copied.
 */
#ifndef ATRIUM_AGENT_SCRIPTS_H
#define ATRIUM_AGENT_SCRIPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef enum agent_script_end {
  AGENT_SCRIPT_EXITED = 0, /* code: the exit status */
  AGENT_SCRIPT_SIGNALED,   /* code: the signal */
  AGENT_SCRIPT_TIMEOUT,    /* killed after timeout_ms */
  AGENT_SCRIPT_KILLED,     /* killed by agent_script_kill */
  AGENT_SCRIPT_NOT_RUN,    /* spawn failed; code: the libuv error */
} agent_script_end_t;

typedef struct agent_script_opts {
  const char *script;
  const char *dir;       /* NULL: the agent's working directory */
  char **env;            /* NULL-terminated; NULL: the agent's */
  int64_t timeout_ms;    /* 0: none */
  int64_t kill_grace_ms; /* 0: 5000 */
} agent_script_opts_t;

typedef struct agent_script_cbs {
  /* One line of output; is_stderr tells which pipe. */
  void (*on_line)(void *ud, bool is_stderr, const char *line, size_t len);
  void (*on_done)(void *ud, agent_script_end_t end, int64_t code);
} agent_script_cbs_t;

typedef struct agent_script agent_script_t;

/* Start. 0 and *out (valid until on_done returns), or a libuv error (then
 * nothing ran and no callback comes). */
int agent_script_run(uv_loop_t *loop, const agent_script_opts_t *opts,
                     const agent_script_cbs_t *cbs, void *ud,
                     agent_script_t **out);
/* SIGTERM to the group now, SIGKILL after the grace; on_done follows. */
void agent_script_kill(agent_script_t *s);
/* The process id while it runs, else 0 (for the PID-1 reaper). */
int agent_script_pid(const agent_script_t *s);
/* Whether pid is the process of a running script (the reaper leaves it to
 * libuv). */
bool agent_scripts_own_pid(int pid);

/* "~" or "~/x" with $HOME; a copy of path otherwise. */
char *agent_expand_home(const char *path);

#endif
