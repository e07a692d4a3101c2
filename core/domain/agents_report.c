/* core/domain/agents_report.c — see agents.h: what an agent reports about
 * itself (startup, lifecycle, metadata, stats, app health, listening
 * ports). Every write is one short transaction that first proves the
 * token is still live (atr__agent_live), except metadata and stats while
 * the agent writer runs (agent_writer.h): those are queued, already
 * bounded, and committed in batches. The sizes of what an agent sends are
 * bounded here, whatever the transport already bounded. */
#include "agent_writer.h"
#include "agents.h"
#include "agents_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "events.h"
#include "rows.h"

#define METADATA_MAX 32
#define PORTS_MAX 64
#define HEALTHS_MAX 64
#define SUBSYSTEMS_MAX 8
#define SHORT_MAX 64
#define PATH_MAX_BYTES 4096
#define PROCESS_MAX 256

/* Run fn in a write transaction; turn its outcome into the fault. */
static int agent_tx(const atr_domain_t *dom, const atr_actor_t *actor,
                    atr_db_tx_fn fn, void *ud, atr_fault_t *fault) {
  int rc = atr__agent_only(actor, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_WRITE, fn, ud, &err);
  if (rc == ATR_EACCES)
    atr__agent_refused(fault);
  else if (rc == ATR_EINVAL || rc == ATR_ECONSTRAINT)
    atr_fault_set(fault, rc, rc == ATR_EINVAL ? "Invalid report." : "Conflict.",
                  "%s", err ? err : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}

static int refuse(char **err, int rc, const char *why) {
  if (err)
    *err = strdup(why);
  return rc;
}

/* ---- startup ------------------------------------------------------------ */

typedef struct startup {
  const atr_actor_t *actor;
  const json_t *body;
} startup_t;

static char *subsystems_json(const json_t *list) {
  json_t *out = json_array();
  size_t i;
  json_t *s;
  json_array_foreach(list, i, s) {
    if (i >= SUBSYSTEMS_MAX)
      break;
    if (json_is_string(s) && json_string_length(s) <= SHORT_MAX)
      json_array_append(out, s);
  }
  char *text = json_dumps(out, JSON_COMPACT);
  json_decref(out);
  return text;
}

static int startup_tx(atr_db_t *db, void *ud, char **err) {
  startup_t *s = ud;
  char *version = atr__agent_cut(atr_json_str(s->body, "version"), SHORT_MAX);
  char *dir = atr__agent_cut(atr_json_str(s->body, "expanded_directory"),
                             PATH_MAX_BYTES);
  char *subs = subsystems_json(json_object_get(s->body, "subsystems"));
  atr_value_t p[] = {
      atr_v_text(version), atr_v_text(dir), atr_v_text(subs ? subs : "[]"),
      atr_v_time(atr_db_now_us()), atr_v_text(s->actor->agent_id)};
  int64_t changes = 0;
  int rc = atr_db_exec(db,
                       "UPDATE workspace_agents SET version = ?, "
                       "expanded_directory = ?, subsystems = ?, api_version = "
                       "'1.0', updated_at = ? WHERE id = ? AND revoked_at IS "
                       "NULL",
                       p, 5, &changes, err);
  free(version);
  free(dir);
  free(subs);
  return rc == 0 && changes == 0 ? ATR_EACCES : rc;
}

int atr_agent_startup_report(const atr_domain_t *dom, const atr_actor_t *actor,
                             const json_t *body, atr_fault_t *fault) {
  startup_t s = {actor, body};
  return agent_tx(dom, actor, startup_tx, &s, fault);
}

/* ---- lifecycle ----------------------------------------------------------- */

typedef struct lifecycle {
  const atr_actor_t *actor;
  atr_agent_lifecycle_t state;
  int64_t at;
  int exit_code; /* -1: none */
  bool moved;
} lifecycle_t;

static int lifecycle_tx(atr_db_t *db, void *ud, char **err) {
  lifecycle_t *l = ud;
  int rc = atr__agent_live(db, l->actor->agent_id, err);
  char *now = NULL;
  atr_value_t k[] = {atr_v_text(l->actor->agent_id)};
  if (rc == 0)
    rc = atr_db_query_text(db,
                           "SELECT lifecycle_state FROM workspace_agents "
                           "WHERE id = ?",
                           k, 1, &now, err);
  if (rc != 0)
    return rc == ATR_ENOENT ? ATR_EACCES : rc;
  int cur = atr_agent_lifecycle_parse(now);
  free(now);
  if ((int)l->state == cur)
    return 0;
  /* starting may follow anything: a restarted agent process (systemctl
   * restart, a crash) begins a new start, runs its startup script again
   * and reports where that ends, as Coder's agent does. */
  if ((int)l->state < cur && l->state != ATR_LIFECYCLE_STARTING) {
    if (err &&
        asprintf(err, "The agent is %s already; it cannot go back to %s.",
                 atr_agent_lifecycle_name((atr_agent_lifecycle_t)cur),
                 atr_agent_lifecycle_name(l->state)) < 0)
      *err = NULL;
    return ATR_ECONSTRAINT;
  }
  /* Coder's rule: starting sets started_at; a start's outcome ready_at. */
  bool starting = l->state == ATR_LIFECYCLE_STARTING;
  bool started = l->state >= ATR_LIFECYCLE_START_TIMEOUT &&
                 l->state <= ATR_LIFECYCLE_READY;
  atr_value_t p[] = {atr_v_text(atr_agent_lifecycle_name(l->state)),
                     atr_v_time(l->at), atr_v_text(l->actor->agent_id)};
  rc = atr_db_exec(db,
                   starting ? "UPDATE workspace_agents SET lifecycle_state = "
                              "?, started_at = ? WHERE id = ?"
                            : "UPDATE workspace_agents SET lifecycle_state = "
                              "?, started_at = COALESCE(started_at, ?) WHERE "
                              "id = ?",
                   p, 3, NULL, err);
  atr_value_t q[] = {atr_v_time(l->at), atr_v_text(l->actor->agent_id)};
  if (rc == 0 && started)
    rc =
        atr_db_exec(db, "UPDATE workspace_agents SET ready_at = ? WHERE id = ?",
                    q, 2, NULL, err);
  /* A new start (a restarted agent) forgets the last failure's code. */
  atr_value_t c[] = {l->state == ATR_LIFECYCLE_START_ERROR && l->exit_code >= 0
                         ? atr_v_int(l->exit_code)
                         : atr_v_null(),
                     atr_v_text(l->actor->agent_id)};
  if (rc == 0 && (starting || l->state == ATR_LIFECYCLE_START_ERROR))
    rc = atr_db_exec(db,
                     "UPDATE workspace_agents SET startup_script_exit_code = ? "
                     "WHERE id = ?",
                     c, 2, NULL, err);
  l->moved = rc == 0;
  return rc;
}

int atr_agent_lifecycle_report(const atr_domain_t *dom,
                               const atr_actor_t *actor,
                               atr_agent_lifecycle_t state,
                               int64_t changed_at_us, atr_fault_t *fault) {
  return atr_agent_lifecycle_report_code(dom, actor, state, changed_at_us, -1,
                                         fault);
}

int atr_agent_lifecycle_report_code(const atr_domain_t *dom,
                                    const atr_actor_t *actor,
                                    atr_agent_lifecycle_t state,
                                    int64_t changed_at_us, int exit_code,
                                    atr_fault_t *fault) {
  if (!atr_agent_lifecycle_name(state))
    return atr_fault_set(fault, ATR_EINVAL, "Invalid lifecycle state.",
                         "%d is no state", (int)state);
  int64_t now = atr_db_now_us();
  /* An agent's clock may be off: never in the future. */
  lifecycle_t l = {actor, state,
                   changed_at_us > 0 && changed_at_us < now ? changed_at_us
                                                            : now,
                   exit_code >= 0 && exit_code <= 255 ? exit_code : -1, false};
  int rc = agent_tx(dom, actor, lifecycle_tx, &l, fault);
  if (rc == 0 && l.moved)
    atr_events_agent(dom->events, actor->agent_id, "lifecycle");
  return rc;
}

/* ---- metadata ------------------------------------------------------------ */

typedef struct report {
  const atr_actor_t *actor;
  const json_t *body;
} report_t;

/* The items to store, bounded and cut: [{key, value, error, at}]. The
 * server's clock, not the agent's collected_at: users compare it with
 * the server's now. NULL when list is no array of at most 32. */
static json_t *metadata_items(const json_t *list) {
  if (!json_is_array(list) || json_array_size(list) > METADATA_MAX)
    return NULL;
  json_t *out = json_array();
  int64_t at = atr_db_now_us();
  size_t i;
  json_t *it;
  json_array_foreach(list, i, it) {
    const char *key = atr_json_str(it, "key");
    if (!*key || strlen(key) > SHORT_MAX)
      continue; /* no such item can exist */
    char *value =
        atr__agent_cut(atr_json_str(it, "value"), ATR__AGENT_VALUE_MAX);
    char *error =
        atr__agent_cut(atr_json_str(it, "error"), ATR__AGENT_VALUE_MAX);
    json_array_append_new(out,
                          json_pack("{s:s, s:s, s:s, s:I}", "key", key, "value",
                                    value ? value : "", "error",
                                    error ? error : "", "at", (json_int_t)at));
    free(value);
    free(error);
  }
  return out;
}

typedef struct stored {
  const char *agent_id;
  const json_t *items; /* metadata */
  const char *stats;
  int64_t at_us; /* stats */
} stored_t;

static int metadata_tx(atr_db_t *db, void *ud, char **err) {
  stored_t *m = ud;
  return atr__agent_store_metadata(db, m->agent_id, m->items, err);
}

static int queue_full(atr_fault_t *fault) {
  return atr_fault_set(fault, ATR_EAGAIN, "Too many reports queued.",
                       "The server stores agent reports in batches and its "
                       "queue is full; retry shortly.");
}

int atr_agent_metadata_report(const atr_domain_t *dom, const atr_actor_t *actor,
                              const json_t *body, atr_fault_t *fault) {
  int rc = atr__agent_only(actor, fault);
  if (rc != 0)
    return rc;
  json_t *items = metadata_items(json_object_get(body, "metadata"));
  if (!items)
    return atr_fault_set(fault, ATR_EINVAL, "Invalid report.",
                         "metadata must be an array of at most 32 items");
  if (atr__agent_writer_running()) {
    rc = atr__agent_writer_metadata(actor->agent_id, json_incref(items));
    if (rc != ATR_ECANCELED) { /* else the writer stopped: write here */
      json_decref(items);
      return rc == ATR_EAGAIN ? queue_full(fault) : rc;
    }
  }
  stored_t m = {.agent_id = actor->agent_id, .items = items};
  rc = agent_tx(dom, actor, metadata_tx, &m, fault);
  json_decref(items);
  return rc;
}

/* ---- stats --------------------------------------------------------------- */

static const char *const stat_fields[] = {
    "connection_count",
    "connection_median_latency_ms",
    "rx_bytes",
    "tx_bytes",
    "rx_packets",
    "tx_packets",
    "session_count_ssh",
    "session_count_vscode",
    "session_count_jetbrains",
    "session_count_reconnecting_pty",
    "cpu_cores_used",
    "cpu_cores_total",
    "memory_used_bytes",
    "memory_total_bytes",
};

/* Only the known numbers, so what is stored stays small. */
static json_t *stats_kept(const json_t *body) {
  json_t *out = json_object();
  for (size_t i = 0; i < sizeof stat_fields / sizeof *stat_fields; i++) {
    json_t *v = json_object_get(body, stat_fields[i]);
    if (json_is_number(v))
      json_object_set(out, stat_fields[i], v);
  }
  json_t *by = json_object_get(body, "connections_by_proto");
  if (json_is_object(by) && json_object_size(by) <= 8) {
    json_t *kept = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(by, k, v) {
      if (strlen(k) <= 32 && json_is_integer(v))
        json_object_set(kept, k, v);
    }
    json_object_set_new(out, "connections_by_proto", kept);
  }
  return out;
}

static int stats_tx(atr_db_t *db, void *ud, char **err) {
  stored_t *st = ud;
  return atr__agent_store_stats(db, st->agent_id, st->stats, st->at_us, err);
}

int atr_agent_stats_report(const atr_domain_t *dom, const atr_actor_t *actor,
                           const json_t *body, int64_t *interval_ms,
                           atr_fault_t *fault) {
  *interval_ms = ATR__AGENT_STATS_INTERVAL_MS;
  int rc = atr__agent_only(actor, fault);
  if (rc != 0)
    return rc;
  if (!json_is_object(body))
    return atr_fault_set(fault, ATR_EINVAL, "Invalid report.",
                         "The stats must be a JSON object.");
  json_t *kept = stats_kept(body);
  char *text = json_dumps(kept, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(kept);
  if (!text)
    return atr_fault_internal(fault, ATR_ENOMEM, NULL);
  int64_t now = atr_db_now_us();
  if (atr__agent_writer_running()) {
    char *copy = strdup(text);
    rc = copy ? atr__agent_writer_stats(actor->agent_id, copy, now)
              : ATR_ECANCELED;
    if (rc != ATR_ECANCELED) { /* else the writer stopped: write here */
      free(text);
      return rc == ATR_EAGAIN ? queue_full(fault) : rc;
    }
  }
  stored_t st = {.agent_id = actor->agent_id, .stats = text, .at_us = now};
  rc = agent_tx(dom, actor, stats_tx, &st, fault);
  free(text);
  return rc;
}

/* ---- app health ------------------------------------------------------------ */

static bool valid_health(const char *s) {
  return s && (strcmp(s, "initializing") == 0 || strcmp(s, "healthy") == 0 ||
               strcmp(s, "unhealthy") == 0);
}

static int health_tx(atr_db_t *db, void *ud, char **err) {
  report_t *r = ud;
  json_t *h = json_object_get(r->body, "healths");
  if (!json_is_object(h) || json_object_size(h) > HEALTHS_MAX)
    return refuse(err, ATR_EINVAL,
                  "healths must be an object of at most 64 app ids");
  int rc = atr__agent_live(db, r->actor->agent_id, err);
  const char *id;
  json_t *v;
  json_object_foreach(h, id, v) {
    const char *s = json_string_value(v);
    if (rc != 0)
      break;
    if (!valid_health(s))
      return refuse(err, ATR_EINVAL,
                    "a health is initializing, healthy or unhealthy");
    if (!atr_uuid_valid(id))
      continue; /* no app has it */
    atr_value_t p[] = {atr_v_text(s), atr_v_text(id),
                       atr_v_text(r->actor->agent_id)};
    rc = atr_db_exec(db,
                     "UPDATE workspace_apps SET health = ? WHERE id = ? AND "
                     "agent_id = ? AND health <> 'disabled'",
                     p, 3, NULL, err);
  }
  return rc;
}

int atr_agent_app_health_report(const atr_domain_t *dom,
                                const atr_actor_t *actor, const json_t *body,
                                atr_fault_t *fault) {
  report_t r = {actor, body};
  return agent_tx(dom, actor, health_tx, &r, fault);
}

/* ---- listening ports ------------------------------------------------------- */

static json_t *ports_kept(const json_t *list) {
  json_t *out = json_array();
  size_t i;
  json_t *it;
  json_array_foreach(list, i, it) {
    json_int_t port = json_integer_value(json_object_get(it, "port"));
    const char *net = atr_json_str(it, "network");
    if (port < 1 || port > 65535 || (*net && strcmp(net, "tcp") != 0))
      continue;
    char *proc = atr__agent_cut(atr_json_str(it, "process_name"), PROCESS_MAX);
    json_array_append_new(out, json_pack("{s:s, s:s, s:I}", "process_name",
                                         proc ? proc : "", "network", "tcp",
                                         "port", port));
    free(proc);
  }
  return out;
}

static int ports_tx(atr_db_t *db, void *ud, char **err) {
  report_t *r = ud;
  json_t *list = json_object_get(r->body, "ports");
  if (!json_is_array(list) || json_array_size(list) > PORTS_MAX)
    return refuse(err, ATR_EINVAL,
                  "ports must be an array of at most 64 items");
  json_t *kept = ports_kept(list);
  char *text = json_dumps(kept, JSON_COMPACT);
  json_decref(kept);
  atr_value_t p[] = {atr_v_text(text ? text : "[]"),
                     atr_v_time(atr_db_now_us()),
                     atr_v_text(r->actor->agent_id)};
  int64_t changes = 0;
  int rc = atr_db_exec(db,
                       "UPDATE workspace_agents SET listening_ports = ?, "
                       "updated_at = ? WHERE id = ? AND revoked_at IS NULL",
                       p, 3, &changes, err);
  free(text);
  return rc == 0 && changes == 0 ? ATR_EACCES : rc;
}

int atr_agent_ports_report(const atr_domain_t *dom, const atr_actor_t *actor,
                           const json_t *body, atr_fault_t *fault) {
  report_t r = {actor, body};
  return agent_tx(dom, actor, ports_tx, &r, fault);
}
