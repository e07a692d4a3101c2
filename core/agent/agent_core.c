/* core/agent/agent_core.c — the agent's lifecycle: connect, fetch the
 * manifest, run the startup script, report, shut down on request, exit
 * (docs/design/agent.md §5). */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "agent_internal.h"
#include "agent_util.h"
#include "atrium/error.h"
#include "log.h"
#include "version.h"

#define RETRY_MS 1000
#define EXIT_CHECK_MS 100

static void agent_finish(agent_t *a);
static void on_conn_stopped(void *ud);
static void hold_final(agent_t *a, agent_state_t state);
static void serve_stop(agent_t *a);

void agent_say(agent_t *a, const char *level, const char *fmt, ...) {
  char buf[1024];
  va_list ap;
  va_start(ap, fmt);
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  atr_log(strcmp(level, "error") == 0  ? ATR_LOG_ERROR
          : strcmp(level, "warn") == 0 ? ATR_LOG_WARN
                                       : ATR_LOG_INFO,
          "agent", "%s", buf);
  if (a->own_src)
    agent_logs_add(&a->logs, a->own_src, level, buf, strlen(buf),
                   agent_now_us());
}

/* ---- scripts -------------------------------------------------------- */

typedef struct script_run {
  agent_t *a;
  agent_log_source_t *src;
  bool is_stop;
} script_run_t;

static void script_line(void *ud, bool is_stderr, const char *line,
                        size_t len) {
  (void)is_stderr;
  script_run_t *r = ud;
  if (r->src)
    agent_logs_add(&r->a->logs, r->src, "info", line, len, agent_now_us());
}

/* The state a script's end leads to, and the log line that says why. */
static agent_state_t script_outcome(bool is_stop, agent_script_end_t end,
                                    int64_t code, char *why, size_t size) {
  const char *what = is_stop ? "shutdown script" : "startup script";
  agent_state_t ok = is_stop ? AGENT_OFF : AGENT_READY;
  agent_state_t bad = is_stop ? AGENT_SHUTDOWN_ERROR : AGENT_START_ERROR;
  agent_state_t late = is_stop ? AGENT_SHUTDOWN_TIMEOUT : AGENT_START_TIMEOUT;
  why[0] = '\0';
  switch (end) {
  case AGENT_SCRIPT_EXITED:
    if (code == 0)
      return ok;
    snprintf(why, size, "%s exited with code %lld", what, (long long)code);
    return bad;
  case AGENT_SCRIPT_SIGNALED:
    snprintf(why, size, "%s was killed by signal %lld", what, (long long)code);
    return bad;
  case AGENT_SCRIPT_TIMEOUT:
    snprintf(why, size, "%s timed out; its processes were killed", what);
    return late;
  case AGENT_SCRIPT_KILLED:
    snprintf(why, size, "%s was stopped: the agent is shutting down", what);
    return bad;
  default:
    snprintf(why, size, "%s could not be started: %s", what,
             uv_strerror((int)code));
    return bad;
  }
}

static void script_done(void *ud, agent_script_end_t end, int64_t code) {
  script_run_t *r = ud;
  agent_t *a = r->a;
  char why[160];
  agent_state_t next = script_outcome(r->is_stop, end, code, why, sizeof why);
  if (why[0]) {
    atr_log(ATR_LOG_ERROR, "agent", "%s", why);
    if (r->src)
      agent_logs_add(&a->logs, r->src, "error", why, strlen(why),
                     agent_now_us());
  }
  a->script = NULL;
  free(r);
  if (agent_state_final(next)) {
    hold_final(a, next);
    return;
  }
  agent_lifecycle_set(&a->lc, next, agent_now_us());
  if (a->stop_pending)
    agent_shutdown(a, "a shutdown was asked for while starting");
}

/* Run spec's script; false when there is none or it could not start
 * (then the state was set from the failure). */
static bool run_script(agent_t *a, const agent_script_spec_t *spec,
                       bool is_stop) {
  if (!spec->script)
    return false;
  script_run_t *r = calloc(1, sizeof *r);
  if (!r)
    return false;
  r->a = a;
  r->is_stop = is_stop;
  r->src = spec->source[0] ? agent_logs_source(&a->logs, spec->source) : NULL;
  agent_script_opts_t o = {.script = spec->script,
                           .dir = a->dir,
                           .env = a->env,
                           .timeout_ms = spec->timeout_ms,
                           .kill_grace_ms = a->cfg.kill_grace_ms};
  agent_script_cbs_t cbs = {.on_line = script_line, .on_done = script_done};
  int rc = agent_script_run(a->loop, &o, &cbs, r, &a->script);
  if (rc != 0) {
    a->script = NULL;
    script_done(r, AGENT_SCRIPT_NOT_RUN, rc);
  }
  return true;
}

/* ---- shutdown and exit ------------------------------------------------ */

void agent_shutdown(agent_t *a, const char *why) {
  agent_state_t st = a->lc.state;
  if (st >= AGENT_SHUTTING_DOWN || a->exiting)
    return;
  a->exit_wanted = a->exit_wanted || a->cfg.exit_on_final;
  if (st == AGENT_CREATED && !a->set_up) {
    /* Never got a manifest: nothing to run, nothing to report. */
    atr_log(ATR_LOG_INFO, "agent", "shutting down (%s) before the manifest",
            why);
    a->exit_wanted = true;
    agent_finish(a);
    return;
  }
  if (st == AGENT_STARTING) {
    a->stop_pending = true;
    if (a->script)
      agent_script_kill(a->script);
    return;
  }
  agent_say(a, "info", "shutting down: %s", why);
  agent_lifecycle_set(&a->lc, AGENT_SHUTTING_DOWN, agent_now_us());
  if (!run_script(a, &a->stop, true))
    hold_final(a, AGENT_OFF);
}

void agent_close_handles(agent_t *a) {
  uv_close((uv_handle_t *)&a->retry, NULL);
  uv_close((uv_handle_t *)&a->exit_check, NULL);
  for (int i = 0; i < 3; i++)
    uv_close((uv_handle_t *)&a->sigs[i], NULL);
  agent_logs_close(&a->logs);
  agent_lifecycle_close(&a->lc);
}

static void init_done(agent_t *a, int status) {
  a->exit_code = status;
  agent_conn_stop(a->conn, on_conn_stopped, a);
}

static void on_conn_stopped(void *ud) {
  agent_close_handles(ud);
}

static void do_exit(agent_t *a) {
  if (a->exiting)
    return;
  a->exiting = true;
  uv_timer_stop(&a->exit_check);
  uv_timer_stop(&a->retry);
  agent_metadata_stop(a->metadata);
  agent_stats_stop(a->stats);
  agent_apps_stop(a->apps);
  serve_stop(a);
  atr_log(ATR_LOG_INFO, "agent", "exiting (lifecycle %s)",
          agent_state_name(a->lc.state));
  if (a->init)
    agent_init_finish(a->init, init_done);
  else
    init_done(a, 0);
}

/* The last lines of the shutdown script (and the agent's own) go before
 * the final state: the server revokes the token once it sees that state,
 * after which no line can be stored. Bounded by final_wait_ms. */
static void on_final_held(uv_timer_t *t) {
  agent_t *a = t->data;
  a->exit_waited_ms += EXIT_CHECK_MS;
  if (!agent_logs_idle(&a->logs) && a->exit_waited_ms < a->cfg.final_wait_ms)
    return;
  uv_timer_stop(&a->exit_check);
  a->final_held = false;
  a->exit_waited_ms = 0;
  agent_lifecycle_set(&a->lc, a->final_state, agent_now_us());
  agent_finish(a);
}

static void hold_final(agent_t *a, agent_state_t state) {
  a->final_held = true;
  a->final_state = state;
  a->exit_waited_ms = 0;
  agent_logs_kick(&a->logs);
  uv_timer_start(&a->exit_check, on_final_held, 0, EXIT_CHECK_MS);
}

void agent_exit_now(agent_t *a) {
  do_exit(a);
}

void agent_token_refused(agent_t *a) {
  if (agent_state_final(a->lc.state) && a->exit_wanted && !a->exiting &&
      !a->final_held) {
    atr_log(ATR_LOG_WARN, "agent",
            "exiting: the token was revoked after the final state");
    do_exit(a);
  }
}

static void on_exit_check(uv_timer_t *t) {
  agent_t *a = t->data;
  a->exit_waited_ms += EXIT_CHECK_MS;
  bool acked = agent_lifecycle_idle(&a->lc) && agent_logs_idle(&a->logs);
  if (acked || a->exit_waited_ms >= a->cfg.final_wait_ms) {
    if (!acked)
      atr_log(ATR_LOG_WARN, "agent",
              "exiting with reports the server did not ack");
    do_exit(a);
  }
}

/* A final state was reached (or there never was a manifest): exit once
 * everything is acked, if this mode exits. */
static void agent_finish(agent_t *a) {
  if (!a->exit_wanted || a->exiting)
    return;
  if (!a->set_up) {
    do_exit(a);
    return;
  }
  uv_timer_start(&a->exit_check, on_exit_check, EXIT_CHECK_MS, EXIT_CHECK_MS);
}

void agent_begin_start(agent_t *a) {
  agent_lifecycle_set(&a->lc, AGENT_STARTING, agent_now_us());
  if (a->start.script) {
    agent_say(a, "info", "running the startup script");
    run_script(a, &a->start, false);
    return;
  }
  agent_lifecycle_set(&a->lc, AGENT_READY, agent_now_us());
  if (a->stop_pending)
    agent_shutdown(a, "a shutdown was asked for while starting");
}

/* ---- what the agent serves through tunnels ------------------------------ */

/* The "pty" kind: the event was checked (agent_tunnels_check): reconnect
 * is a UUID, width and height 1-1000, command a bounded string or none. */
static int pty_kind(void *ud, int fd, const json_t *open, char **err) {
  agent_t *a = ud;
  const char *id = json_string_value(json_object_get(open, "reconnect"));
  int w = (int)json_integer_value(json_object_get(open, "width"));
  int h = (int)json_integer_value(json_object_get(open, "height"));
  const char *cmd = json_string_value(json_object_get(open, "command"));
  if (!a->pty ||
      agent_pty_attach(a->pty, fd, id, w, h, cmd && *cmd ? cmd : NULL) != 0) {
    if (!a->pty)
      close(fd);
    *err = strdup("the agent could not start the terminal");
    return -1;
  }
  return 0;
}

/* The "ssh" kind: the SSH server takes the socket (a thread of its own). */
static int ssh_kind(void *ud, int fd, const json_t *open, char **err) {
  (void)open;
  agent_t *a = ud;
  if (!a->ssh) {
    close(fd);
    *err = strdup("the agent's SSH server is not running");
    return -1;
  }
  if (agent_ssh_serve(a->ssh, fd) != 0) {
    *err = strdup("the agent could not start an SSH session");
    return -1;
  }
  return 0;
}

static void ssh_start(agent_t *a, const json_t *m) {
  /* the workspace's host key: a secret, never logged */
  const char *key = json_string_value(json_object_get(m, "ssh_host_key"));
  agent_ssh_config_t sc = {.host_key = key && *key ? key : NULL,
                           .directory = a->dir,
                           .env = (const char *const *)a->env};
  char *err = NULL;
  a->ssh = agent_ssh_new(&sc, &err);
  if (!a->ssh) {
    agent_say(a, "error", "ssh is off: %s",
              err ? err : "the SSH server could not start");
    free(err);
    return;
  }
  free(err);
  agent_tunnels_register(a->tunnels, "ssh", ssh_kind, a);
}

/* From the first manifest: its directory and environment are the
 * sessions', its ssh_host_key the SSH server's. */
void agent_serve_start(agent_t *a, const json_t *m) {
  ssh_start(a, m);
  agent_pty_config_t pc = {.directory = a->dir,
                           .env = (const char *const *)a->env};
  a->pty = agent_pty_new(a->loop, &pc);
  if (!a->pty)
    agent_say(a, "error", "web terminals are off: cannot set up PTYs");
  else
    agent_tunnels_register(a->tunnels, "pty", pty_kind, a);
}

void agent_serve_sessions(agent_t *a, int *ssh, int *pty) {
  *ssh = a->ssh ? agent_ssh_connections(a->ssh) : 0;
  *pty = a->pty ? agent_pty_count(a->pty) : 0;
}

/* The agent exits: no tunnel is taken any more, SSH connections and
 * PTYs end. The tunnels' sockets are closed first, so the SSH threads
 * see their ends go and the wait for them is short. */
static void serve_stop(agent_t *a) {
  agent_tunnels_close(a->tunnels, NULL, NULL);
  if (a->ssh)
    agent_ssh_free(a->ssh);
  a->ssh = NULL;
  if (a->pty)
    agent_pty_free(a->pty, NULL, NULL); /* frees itself once closed */
  a->pty = NULL;
}
