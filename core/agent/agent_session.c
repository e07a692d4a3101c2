/* core/agent/agent_session.c — what the agent does with its session: the
 * manifest (fetched on every new session), the startup report, the logs'
 * resume point, server events, signals; and agent_run, which owns the
 * loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent_internal.h"
#include "agent_util.h"
#include "atrium/error.h"
#include "log.h"
#include "version.h"

extern char **environ;

static void fetch_manifest(agent_t *a);
static void fetch_logs_state(agent_t *a);

static void on_retry(uv_timer_t *t) {
  agent_t *a = t->data;
  if (!agent_conn_up(a->conn))
    return; /* on_up fetches again */
  if (!a->set_up)
    fetch_manifest(a);
  if (!a->state_known)
    fetch_logs_state(a);
}

static void retry_later(agent_t *a) {
  if (!a->exiting && !uv_is_active((uv_handle_t *)&a->retry))
    uv_timer_start(&a->retry, on_retry, 1000, 0);
}

/* Who the workspace is, for scripts (Coder's CODER_WORKSPACE_NAME, ...):
 * an app served under /@owner/workspace/apps/slug/ that must know its
 * base path (Jupyter's base_url) is started with it. */
static const char *const names_env[][2] = {
    {"ATRIUM_WORKSPACE_NAME", "workspace_name"},
    {"ATRIUM_WORKSPACE_OWNER_NAME", "owner_name"},
    {"ATRIUM_WORKSPACE_AGENT_NAME", "agent_name"}};
#define NAMES_ENV (sizeof names_env / sizeof names_env[0])

/* The scripts' environment: the agent's, the workspace's names, then
 * the manifest's variables. */
static char **build_env(const json_t *m) {
  const json_t *vars = json_object_get(m, "environment_variables");
  size_t n = 0;
  while (environ[n])
    n++;
  size_t cap = n + NAMES_ENV + json_object_size(vars) + 1;
  char **env = calloc(cap, sizeof *env);
  if (!env)
    return NULL;
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    env[k++] = strdup(environ[i]);
  for (size_t i = 0; i < NAMES_ENV; i++) {
    const char *v = json_string_value(json_object_get(m, names_env[i][1]));
    char *kv = NULL;
    if (v && asprintf(&kv, "%s=%s", names_env[i][0], v) >= 0)
      env[k++] = kv;
  }
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)vars, key, val) {
    const char *v = json_string_value(val);
    char *kv = NULL;
    if (v && asprintf(&kv, "%s=%s", key, v) >= 0)
      env[k++] = kv;
  }
  env[k] = NULL;
  return env;
}

static void read_script(agent_script_spec_t *spec, const json_t *it) {
  const char *text = json_string_value(json_object_get(it, "script"));
  const char *src = json_string_value(json_object_get(it, "log_source_id"));
  if (!text || !*text || spec->script)
    return;
  spec->script = strdup(text);
  snprintf(spec->source, sizeof spec->source, "%s", src ? src : "");
  json_int_t t = json_integer_value(json_object_get(it, "timeout_seconds"));
  spec->timeout_ms = t > 0 ? (int64_t)t * 1000 : 0;
}

/* The agent's own log source: one no script writes to, preferably named
 * like the agent. */
static const char *own_source(const json_t *m) {
  const char *pick = NULL;
  size_t i, k;
  json_t *src, *sc;
  json_array_foreach(json_object_get(m, "log_sources"), i, src) {
    const char *id = json_string_value(json_object_get(src, "id"));
    const char *name = json_string_value(json_object_get(src, "display_name"));
    bool used = false;
    json_array_foreach(json_object_get(m, "scripts"), k, sc) {
      const char *sid = json_string_value(json_object_get(sc, "log_source_id"));
      used = used || (id && sid && strcmp(id, sid) == 0);
    }
    if (!id || used)
      continue;
    if (name && strcasestr(name, "agent"))
      return id;
    if (!pick)
      pick = id;
  }
  return pick;
}

static void on_startup_reply(void *ud, int status, const char *b, size_t n) {
  (void)ud;
  (void)b;
  (void)n;
  if (status != 0 && (status < 200 || status >= 300))
    atr_log(ATR_LOG_WARN, "agent", "startup report answered HTTP %d", status);
}

static void report_startup(agent_t *a) {
  json_t *body =
      json_pack("{ss ss s[]}", "version", ATR_VERSION, "expanded_directory",
                a->dir ? a->dir : "", "subsystems");
  char *text = json_dumps(body, JSON_COMPACT);
  json_decref(body);
  if (text)
    agent_conn_request(a->conn, "POST", AGENT_API "/startup", text,
                       on_startup_reply, a);
  free(text);
}

/* The first manifest: everything the agent runs follows from it. */
static void set_up(agent_t *a, const json_t *m) {
  a->set_up = true;
  const char *dir = json_string_value(json_object_get(m, "directory"));
  a->dir = agent_expand_home(dir && *dir ? dir : "~");
  a->env = build_env(m);
  size_t i;
  json_t *it;
  json_array_foreach(json_object_get(m, "scripts"), i, it) {
    if (json_is_true(json_object_get(it, "run_on_start")))
      read_script(&a->start, it);
    if (json_is_true(json_object_get(it, "run_on_stop")))
      read_script(&a->stop, it);
  }
  const char *own = own_source(m);
  a->own_src = own ? agent_logs_source(&a->logs, own) : NULL;
  const char *ws = json_string_value(json_object_get(m, "workspace_name"));
  agent_say(a, "info", "agent %s: workspace %s, directory %s", ATR_VERSION,
            ws ? ws : "(unnamed)", a->dir ? a->dir : "");
  report_startup(a);
  json_int_t every =
      json_integer_value(json_object_get(m, "report_interval_seconds"));
  a->metadata = agent_metadata_start(a, json_object_get(m, "metadata"));
  a->stats = agent_stats_start(a, a->cfg.stats_ms ? a->cfg.stats_ms
                                  : every > 0     ? (int64_t)every * 1000
                                                  : 30000);
  a->apps = agent_apps_start(a, json_object_get(m, "apps"));
  agent_serve_start(a, m);
  agent_begin_start(a);
}

static void on_manifest(void *ud, int status, const char *body, size_t len) {
  agent_t *a = ud;
  if (a->exiting)
    return;
  if (status != 200) {
    if (status != 0) {
      atr_log(ATR_LOG_WARN, "agent", "manifest: HTTP %d", status);
      retry_later(a);
    }
    return;
  }
  json_error_t jerr;
  json_t *m = json_loadb(body, len, 0, &jerr);
  if (!json_is_object(m)) {
    atr_log(ATR_LOG_ERROR, "agent", "manifest: not a JSON object");
    json_decref(m);
    retry_later(a);
    return;
  }
  json_decref(a->manifest);
  a->manifest = m;
  agent_tunnels_set_apps(a->tunnels, json_object_get(m, "apps"));
  if (!a->set_up)
    set_up(a, m);
  if (json_is_true(json_object_get(m, "shutdown_requested")))
    agent_shutdown(a, "the server asked (a stop or delete build)");
}

static void fetch_manifest(agent_t *a) {
  agent_conn_request(a->conn, "GET", AGENT_API "/manifest", NULL, on_manifest,
                     a);
}

static void on_logs_state(void *ud, int status, const char *body, size_t len) {
  agent_t *a = ud;
  if (status != 200) {
    if (status != 0)
      retry_later(a);
    return;
  }
  json_t *j = json_loadb(body, len, 0, NULL);
  a->state_known = true;
  agent_logs_resume(&a->logs, j);
  json_decref(j);
}

static void fetch_logs_state(agent_t *a) {
  agent_conn_request(a->conn, "GET", AGENT_API "/logs/state", NULL,
                     on_logs_state, a);
}

static void on_up(void *ud) {
  agent_t *a = ud;
  atr_log(ATR_LOG_INFO, "agent", "connected to %s", a->cfg.url);
  fetch_manifest(a);
  if (!a->state_known)
    fetch_logs_state(a);
  agent_lifecycle_kick(&a->lc);
  agent_logs_kick(&a->logs);
}

static void on_down(void *ud, int http_status, const char *reason) {
  agent_t *a = ud;
  agent_lifecycle_lost(&a->lc);
  agent_logs_lost(&a->logs);
  if (a->exiting)
    return;
  if (http_status == 401) {
    atr_log(ATR_LOG_WARN, "agent",
            "the server refused the agent token (not yet known, or revoked)");
    agent_token_refused(a);
  } else
    atr_log(ATR_LOG_WARN, "agent", "session lost: %s",
            reason ? reason : "(no reason)");
}

static void on_event(void *ud, const char *line, size_t len) {
  agent_t *a = ud;
  json_t *j = json_loadb(line, len, 0, NULL);
  const char *type = json_string_value(json_object_get(j, "type"));
  if (type && strcmp(type, "shutdown") == 0)
    agent_shutdown(a, "the server asked (a stop or delete build)");
  else if (type && strcmp(type, "manifest") == 0)
    fetch_manifest(a);
  else if (type && strcmp(type, "open") == 0 && !a->exiting)
    agent_tunnels_open(a->tunnels, j);
  json_decref(j);
}

static void on_signal(uv_signal_t *h, int sig) {
  agent_t *a = h->data;
  if (a->init && (sig == SIGHUP || a->lc.state >= AGENT_SHUTTING_DOWN)) {
    agent_init_signal(a->init, sig);
    return;
  }
  if (sig == SIGHUP)
    return;
  a->exit_wanted = true;
  if (agent_state_final(a->lc.state) && !a->final_held) {
    /* shut down already (the server asked), still running: exit now */
    agent_exit_now(a);
    return;
  }
  agent_shutdown(a, sig == SIGINT ? "SIGINT" : "SIGTERM");
}

static void close_handles(void *ud) {
  agent_close_handles(ud);
}

static int open_session(agent_t *a) {
  agent_conn_opts_t o = {.url = a->cfg.url,
                         .token = a->cfg.token,
                         .version = NULL, /* the API version: "1.0" */
                         .heartbeat_ms = a->cfg.heartbeat_ms,
                         .backoff_max_ms = a->cfg.backoff_max_ms};
  agent_conn_cbs_t cbs = {
      .on_up = on_up, .on_down = on_down, .on_event = on_event};
  char *err = NULL;
  int rc = agent_conn_new(a->loop, &o, &cbs, a, &a->conn, &err);
  if (rc != 0) {
    atr_log(ATR_LOG_ERROR, "agent", "%s", err ? err : atr_strerror(rc));
    free(err);
  }
  return rc;
}

static void agent_free(agent_t *a) {
  if (a->conn)
    agent_conn_free(a->conn);
  agent_logs_free(&a->logs);
  agent_init_free(a->init);
  agent_metadata_free(a->metadata);
  agent_stats_free(a->stats);
  agent_apps_free(a->apps);
  agent_tunnels_free(a->tunnels);
  json_decref(a->manifest);
  free(a->dir);
  for (char **e = a->env; e && *e; e++)
    free(*e);
  free(a->env);
  free(a->start.script);
  free(a->stop.script);
}

int agent_run(agent_config_t *cfg) {
  agent_t a = {.cfg = *cfg};
  uv_loop_t loop;
  if (uv_loop_init(&loop) != 0)
    return 1;
  a.loop = &loop;
  signal(SIGPIPE, SIG_IGN);
  if (open_session(&a) != 0) {
    uv_loop_close(&loop);
    return 1;
  }
  a.tunnels = agent_tunnels_new(&loop, a.conn);
  if (!a.tunnels) {
    agent_conn_free(a.conn);
    uv_loop_close(&loop);
    return 1;
  }
  agent_logs_init(&a.logs, &loop, a.conn, 0, cfg->flush_ms);
  agent_lifecycle_init(&a.lc, &loop, a.conn);
  uv_timer_init(&loop, &a.retry);
  uv_timer_init(&loop, &a.exit_check);
  a.retry.data = a.exit_check.data = &a;
  const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
  for (int i = 0; i < 3; i++) {
    uv_signal_init(&loop, &a.sigs[i]);
    a.sigs[i].data = &a;
    uv_signal_start(&a.sigs[i], on_signal, sigs[i]);
  }
  if (cfg->init_argv && !agent_init_start(&a, cfg->init_argv)) {
    a.exiting = true;
    a.exit_code = 127;
    agent_conn_stop(a.conn, close_handles, &a);
  } else {
    agent_conn_start(a.conn);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  int code = a.exit_code;
  agent_free(&a);
  uv_loop_close(&loop);
  return code;
}
