/* core/agent/agent_metadata.c — the template's metadata items: each runs
 * its script every interval (with its timeout) and POSTs the value to
 * /me/metadata; value and error are cut at AGENT_METADATA_MAX bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_metadata.h"
#include "agent_util.h"
#include "log.h"

#define MAX_ITEMS 32

typedef struct md_item {
  struct agent_metadata *m;
  char *key, *script;
  int64_t interval_ms, timeout_ms;
  uv_timer_t timer;
  agent_script_t *running;
  char value[AGENT_METADATA_MAX + 1];
  size_t value_len;
  int64_t started_us;
} md_item_t;

struct agent_metadata {
  agent_t *a;
  md_item_t items[MAX_ITEMS];
  size_t n;
  bool stopping;
};

void agent_metadata_append(char *buf, size_t *len, const char *line, size_t n) {
  if (*len > 0 && *len < AGENT_METADATA_MAX)
    buf[(*len)++] = '\n';
  size_t room = AGENT_METADATA_MAX - *len;
  if (n > room)
    n = room;
  memcpy(buf + *len, line, n);
  *len += n;
  buf[*len] = '\0';
}

static void on_posted(void *ud, int status, const char *b, size_t n) {
  (void)b;
  (void)n;
  md_item_t *it = ud;
  if (status != 0 && (status < 200 || status >= 300))
    atr_log(ATR_LOG_WARN, "agent", "metadata %s: HTTP %d", it->key, status);
}

static void post(md_item_t *it, const char *error) {
  agent_t *a = it->m->a;
  if (!agent_conn_up(a->conn))
    return;
  char at[40];
  int64_t now = agent_now_us();
  agent_time_format(now, at, sizeof at);
  size_t vlen, elen = 0;
  char *value = agent_utf8_repair(it->value, it->value_len, &vlen);
  char *err = error ? agent_utf8_repair(error, strlen(error), &elen) : NULL;
  json_t *body = json_pack(
      "{s[{ss ss sI ss# ss#}]}", "metadata", "key", it->key, "collected_at", at,
      "age", (json_int_t)((now - it->started_us) / 1000000), "value",
      value ? value : "", value ? vlen : 0, "error", err ? err : "", elen);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (text)
    agent_conn_request(a->conn, "POST", AGENT_API "/metadata", text, on_posted,
                       it);
  free(text);
  json_decref(body);
  free(value);
  free(err);
}

static void on_line(void *ud, bool is_stderr, const char *line, size_t n) {
  md_item_t *it = ud;
  if (!is_stderr)
    agent_metadata_append(it->value, &it->value_len, line, n);
}

static void on_done(void *ud, agent_script_end_t end, int64_t code) {
  md_item_t *it = ud;
  it->running = NULL;
  if (it->m->stopping)
    return;
  char err[AGENT_METADATA_MAX];
  const char *e = NULL;
  if (end == AGENT_SCRIPT_TIMEOUT) {
    snprintf(err, sizeof err, "timed out after %llds",
             (long long)(it->timeout_ms / 1000));
    e = err;
  } else if (end != AGENT_SCRIPT_EXITED || code != 0) {
    snprintf(err, sizeof err, "%s %lld",
             end == AGENT_SCRIPT_EXITED ? "exited with code"
                                        : "ended by signal or error",
             (long long)code);
    e = err;
  }
  post(it, e);
}

static void on_tick(uv_timer_t *t) {
  md_item_t *it = t->data;
  agent_t *a = it->m->a;
  if (it->running)
    return; /* still running: its timeout bounds it */
  it->value_len = 0;
  it->value[0] = '\0';
  it->started_us = agent_now_us();
  agent_script_opts_t o = {.script = it->script,
                           .dir = a->dir,
                           .env = a->env,
                           .timeout_ms = it->timeout_ms,
                           .kill_grace_ms = 1000};
  agent_script_cbs_t cbs = {.on_line = on_line, .on_done = on_done};
  if (agent_script_run(a->loop, &o, &cbs, it, &it->running) != 0)
    it->running = NULL;
}

agent_metadata_t *agent_metadata_start(agent_t *a, const json_t *items) {
  agent_metadata_t *m = calloc(1, sizeof *m);
  if (!m)
    return NULL;
  m->a = a;
  size_t i;
  json_t *o;
  json_array_foreach(items, i, o) {
    const char *key = json_string_value(json_object_get(o, "key"));
    const char *script = json_string_value(json_object_get(o, "script"));
    int64_t every = agent_json_seconds(o, "interval", "interval_s");
    if (!key || !script || m->n == MAX_ITEMS)
      continue;
    md_item_t *it = &m->items[m->n++];
    it->m = m;
    it->key = strdup(key);
    it->script = strdup(script);
    it->interval_ms = (every > 0 ? every : 10) * 1000;
    int64_t tmo = agent_json_seconds(o, "timeout", "timeout_s");
    it->timeout_ms = (tmo > 0 ? tmo : 1) * 1000;
    uv_timer_init(a->loop, &it->timer);
    it->timer.data = it;
    uv_timer_start(&it->timer, on_tick, 0, (uint64_t)it->interval_ms);
  }
  return m;
}

void agent_metadata_stop(agent_metadata_t *m) {
  if (!m || m->stopping)
    return;
  m->stopping = true;
  for (size_t i = 0; i < m->n; i++) {
    md_item_t *it = &m->items[i];
    if (it->running)
      agent_script_kill(it->running);
    uv_close((uv_handle_t *)&it->timer, NULL);
  }
}

void agent_metadata_free(agent_metadata_t *m) {
  if (!m)
    return;
  for (size_t i = 0; i < m->n; i++) {
    free(m->items[i].key);
    free(m->items[i].script);
  }
  free(m);
}
