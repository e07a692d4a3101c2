/* core/agent/agent_stats.c — stats every report interval (POST
 * /me/report-stats, whose answer sets the next interval) and listening
 * ports every ports_ms (POST /me/listening-ports when they changed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "agent_stats.h"
#include "log.h"

struct agent_stats {
  agent_t *a;
  uv_timer_t stats_timer, ports_timer;
  int64_t interval_ms;
  agent_cpu_sample_t last;
  bool have_last;
  agent_port_t ports[AGENT_PORTS_MAX];
  size_t nports;
  bool ports_sent, ports_in_flight;
};

static void on_stats_reply(void *ud, int status, const char *body, size_t len) {
  agent_stats_t *s = ud;
  if (status != 200 || s->a->cfg.stats_ms > 0)
    return;
  json_t *j = json_loadb(body, len, 0, NULL);
  json_t *ns = json_object_get(j, "report_interval");
  /* Go's duration in ns; bounded to 1 s .. 1 h */
  if (json_is_integer(ns)) {
    int64_t ms = json_integer_value(ns) / 1000000;
    if (ms >= 1000 && ms <= 3600000 && ms != s->interval_ms) {
      s->interval_ms = ms;
      uv_timer_set_repeat(&s->stats_timer, (uint64_t)ms);
    }
  }
  json_decref(j);
}

static json_t *stats_body(agent_stats_t *s) {
  const agent_config_t *c = &s->a->cfg;
  double cores = agent_cpu_cores_total(c->cgroup_dir, c->proc_dir);
  agent_cpu_sample_t now;
  double used = 0;
  if (agent_cpu_sample(c->cgroup_dir, c->proc_dir, uv_hrtime() / 1000, &now) ==
      0) {
    if (s->have_last)
      used = agent_cpu_cores_used(&s->last, &now, cores);
    s->last = now;
    s->have_last = true;
  }
  int64_t mem_used = 0, mem_total = 0;
  agent_memory(c->cgroup_dir, c->proc_dir, &mem_used, &mem_total);
  /* Coder's names: rx is what reached the workspace, tx what left it,
   * over tunnels since the last report. */
  uint64_t tx = 0, rx = 0;
  agent_tunnels_take_bytes(s->a->tunnels, &tx, &rx);
  int ssh = 0, pty = 0;
  agent_serve_sessions(s->a, &ssh, &pty);
  return json_pack(
      "{s{} sI sf sI sI sI sI sI sI sI sI sf sf sI sI}", "connections_by_proto",
      "connection_count", (json_int_t)agent_tunnels_count(s->a->tunnels),
      "connection_median_latency_ms", 0.0, "rx_bytes", (json_int_t)rx,
      "tx_bytes", (json_int_t)tx, "rx_packets", (json_int_t)0, "tx_packets",
      (json_int_t)0, "session_count_ssh", (json_int_t)ssh,
      "session_count_vscode", (json_int_t)0, "session_count_jetbrains",
      (json_int_t)0, "session_count_reconnecting_pty", (json_int_t)pty,
      "cpu_cores_used", used, "cpu_cores_total", cores, "memory_used_bytes",
      (json_int_t)mem_used, "memory_total_bytes", (json_int_t)mem_total);
}

static void on_stats_tick(uv_timer_t *t) {
  agent_stats_t *s = t->data;
  if (!agent_conn_up(s->a->conn))
    return;
  json_t *body = stats_body(s);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (text)
    agent_conn_request(s->a->conn, "POST", AGENT_API "/report-stats", text,
                       on_stats_reply, s);
  free(text);
  json_decref(body);
}

static void on_ports_reply(void *ud, int status, const char *b, size_t n) {
  (void)b;
  (void)n;
  agent_stats_t *s = ud;
  s->ports_in_flight = false;
  s->ports_sent = status >= 200 && status < 300;
}

static void send_ports(agent_stats_t *s) {
  json_t *list = json_array();
  for (size_t i = 0; i < s->nports; i++) {
    char name[64];
    agent_port_process(s->a->cfg.proc_dir, s->ports[i].inode, name,
                       sizeof name);
    json_array_append_new(list, json_pack("{ss ss sI}", "process_name", name,
                                          "network", "tcp", "port",
                                          (json_int_t)s->ports[i].port));
  }
  json_t *body = json_pack("{so}", "ports", list);
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  if (text &&
      agent_conn_request(s->a->conn, "POST", AGENT_API "/listening-ports", text,
                         on_ports_reply, s) == 0)
    s->ports_in_flight = true;
  free(text);
  json_decref(body);
}

static void on_ports_tick(uv_timer_t *t) {
  agent_stats_t *s = t->data;
  agent_port_t now[AGENT_PORTS_MAX];
  size_t n = agent_ports_read(s->a->cfg.proc_dir, now, AGENT_PORTS_MAX);
  bool changed = n != s->nports;
  for (size_t i = 0; i < n && !changed; i++)
    changed = now[i].port != s->ports[i].port;
  if (changed) {
    memcpy(s->ports, now, n * sizeof *now);
    s->nports = n;
    s->ports_sent = false;
  }
  if (!s->ports_sent && !s->ports_in_flight && agent_conn_up(s->a->conn))
    send_ports(s);
}

agent_stats_t *agent_stats_start(agent_t *a, int64_t interval_ms) {
  agent_stats_t *s = calloc(1, sizeof *s);
  if (!s)
    return NULL;
  s->a = a;
  s->interval_ms = interval_ms;
  uv_timer_init(a->loop, &s->stats_timer);
  uv_timer_init(a->loop, &s->ports_timer);
  s->stats_timer.data = s->ports_timer.data = s;
  uv_timer_start(&s->stats_timer, on_stats_tick, (uint64_t)interval_ms,
                 (uint64_t)interval_ms);
  uv_timer_start(&s->ports_timer, on_ports_tick, 0,
                 (uint64_t)(a->cfg.ports_ms > 0 ? a->cfg.ports_ms : 5000));
  return s;
}

void agent_stats_stop(agent_stats_t *s) {
  if (!s || uv_is_closing((uv_handle_t *)&s->stats_timer))
    return;
  uv_close((uv_handle_t *)&s->stats_timer, NULL);
  uv_close((uv_handle_t *)&s->ports_timer, NULL);
}

void agent_stats_free(agent_stats_t *s) {
  free(s);
}
