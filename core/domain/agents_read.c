/* core/domain/agents_read.c — see agents.h: the WorkspaceAgent as users
 * (and the workspace and build JSON) see it, its logs, ports and
 * metadata. Reading needs read permission on the agent's workspace. */
#include "agents.h"
#include "agents_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "rows.h"
#include "workspaces_rows.h"

#define LOGS_LIMIT_MAX 1000

/* ---- the WorkspaceAgent --------------------------------------------------- */

#define AGENT_SELECT                                                           \
  "SELECT a.id, a.created_at, a.updated_at, a.name, a.resource_id, "           \
  "a.first_connected_at, a.last_connected_at, a.disconnected_at, "             \
  "a.started_at, a.ready_at, a.version, a.api_version, a.architecture, "       \
  "a.operating_system, a.directory, a.expanded_directory, "                    \
  "a.connection_timeout_seconds, a.troubleshooting_url, a.logs_length, "       \
  "a.logs_overflowed, a.subsystems, a.startup_script_behavior, "               \
  "a.lifecycle_state, a.workspace_id, a.revoked_at, k.public_key, "            \
  "k.fingerprint FROM workspace_agents a LEFT JOIN workspace_ssh_keys k ON "   \
  "k.workspace_id = a.workspace_id "

static json_t *parsed(const char *text, json_t *dflt) {
  json_t *v = text ? json_loads(text, 0, NULL) : NULL;
  if (!v)
    return dflt;
  json_decref(dflt);
  return v;
}

static json_t *agent_row(atr_db_t *db, atr_db_rows_t *rows) {
  atr_agent_times_t t = {
      atr_db_get_time(db, rows, 1), atr_db_get_time(db, rows, 5),
      atr_db_get_time(db, rows, 6), atr_db_get_time(db, rows, 7),
      atr_db_get_int(db, rows, 16)};
  json_t *a = json_pack(
      "{s:s, s:o, s:o, s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:s, "
      "s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:I, s:b, s:o, s:s, s:s, s:b}",
      "id", atr_row_text(db, rows, 0), "created_at",
      atr_time_json(t.created_at_us), "updated_at",
      atr_time_json(atr_db_get_time(db, rows, 2)), "name",
      atr_row_text(db, rows, 3), "resource_id", atr_row_text(db, rows, 4),
      "status", atr_agent_status(&t, atr_db_now_us()), "lifecycle_state",
      atr_row_text(db, rows, 22), "first_connected_at",
      atr_time_json(t.first_connected_at_us), "last_connected_at",
      atr_time_json(t.last_connected_at_us), "disconnected_at",
      atr_time_json(t.disconnected_at_us), "started_at",
      atr_time_json(atr_db_get_time(db, rows, 8)), "ready_at",
      atr_time_json(atr_db_get_time(db, rows, 9)), "version",
      atr_row_text(db, rows, 10), "api_version", atr_row_text(db, rows, 11),
      "architecture", atr_row_text(db, rows, 12), "operating_system",
      atr_row_text(db, rows, 13), "directory", atr_row_text(db, rows, 14),
      "expanded_directory", atr_row_text(db, rows, 15),
      "connection_timeout_seconds", (json_int_t)t.connection_timeout_s,
      "troubleshooting_url", atr_row_text(db, rows, 17), "logs_length",
      (json_int_t)atr_db_get_int(db, rows, 18), "logs_overflowed",
      atr_db_get_bool(db, rows, 19), "subsystems",
      parsed(atr_db_get_text(db, rows, 20), json_array()),
      "startup_script_behavior", atr_row_text(db, rows, 21), "workspace_id",
      atr_row_text(db, rows, 23), "revoked", !atr_db_is_null(db, rows, 24));
  /* the workspace's SSH host key's public half (connect.h), for
   * known_hosts; null until its agent first asked for its manifest */
  json_object_set_new(a, "ssh_host_public_key",
                      atr_db_is_null(db, rows, 25)
                          ? json_null()
                          : json_string(atr_row_text(db, rows, 25)));
  json_object_set_new(a, "ssh_host_key_fingerprint",
                      atr_db_is_null(db, rows, 26)
                          ? json_null()
                          : json_string(atr_row_text(db, rows, 26)));
  return a;
}

static int add_sources(atr_db_t *db, json_t *a, atr_value_t *k, char **err) {
  atr_db_rows_t *rows = NULL;
  json_t *list = json_array();
  json_object_set_new(a, "log_sources", list);
  int rc = atr_db_query(db,
                        "SELECT id, created_at, display_name, icon FROM "
                        "workspace_agent_log_sources WHERE agent_id = ? ORDER "
                        "BY created_at, display_name DESC",
                        k, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    json_array_append_new(
        list,
        json_pack("{s:s, s:s, s:o, s:s, s:s}", "id", atr_row_text(db, rows, 0),
                  "workspace_agent_id",
                  json_string_value(json_object_get(a, "id")), "created_at",
                  atr_time_json(atr_db_get_time(db, rows, 1)), "display_name",
                  atr_row_text(db, rows, 2), "icon",
                  atr_row_text(db, rows, 3)));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

/* The scripts without their bodies (those are for the agent only). */
static int add_scripts(atr_db_t *db, json_t *a, atr_value_t *k, char **err) {
  atr_db_rows_t *rows = NULL;
  json_t *list = json_array();
  json_object_set_new(a, "scripts", list);
  int rc = atr_db_query(db,
                        "SELECT log_source_id, display_name, timeout_seconds, "
                        "start_blocks_login, run_on_start, run_on_stop FROM "
                        "workspace_agent_scripts WHERE agent_id = ? ORDER BY "
                        "run_on_stop, display_name",
                        k, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    json_array_append_new(
        list, json_pack("{s:s, s:s, s:I, s:b, s:b, s:b}", "log_source_id",
                        atr_row_text(db, rows, 0), "display_name",
                        atr_row_text(db, rows, 1), "timeout_seconds",
                        (json_int_t)atr_db_get_int(db, rows, 2),
                        "start_blocks_login", atr_db_get_bool(db, rows, 3),
                        "run_on_start", atr_db_get_bool(db, rows, 4),
                        "run_on_stop", atr_db_get_bool(db, rows, 5)));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static json_t *app_json(atr_db_t *db, atr_db_rows_t *rows) {
  const char *hc = atr_row_text(db, rows, 9);
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:b, s:s, s:b, s:b, s:o, s:s}", "id",
      atr_row_text(db, rows, 0), "slug", atr_row_text(db, rows, 1),
      "display_name", atr_row_text(db, rows, 2), "url",
      atr_row_text(db, rows, 3), "icon", atr_row_text(db, rows, 4), "subdomain",
      atr_db_get_bool(db, rows, 5), "sharing_level", atr_row_text(db, rows, 6),
      "external", atr_db_get_bool(db, rows, 7), "hidden",
      atr_db_get_bool(db, rows, 8), "healthcheck",
      *hc ? json_pack("{s:s, s:I, s:I}", "url", hc, "interval",
                      (json_int_t)atr_db_get_int(db, rows, 10), "threshold",
                      (json_int_t)atr_db_get_int(db, rows, 11))
          : json_null(),
      "health", atr_row_text(db, rows, 12));
}

int atr__agent_apps(atr_db_t *db, const char *agent_id, json_t *list,
                    char **err) {
  atr_value_t k[] = {atr_v_text(agent_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT id, slug, display_name, COALESCE(url, ''), "
                        "icon, subdomain, sharing_level, external, hidden, "
                        "healthcheck_url, healthcheck_interval, "
                        "healthcheck_threshold, health FROM workspace_apps "
                        "WHERE agent_id = ? ORDER BY display_order, slug",
                        k, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    json_array_append_new(list, app_json(db, rows));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static int complete_agent(atr_db_t *db, json_t *a, char **err) {
  atr_value_t k[] = {atr_v_text(json_string_value(json_object_get(a, "id")))};
  int rc = add_sources(db, a, k, err);
  if (rc == 0)
    rc = add_scripts(db, a, k, err);
  json_t *apps = json_array();
  json_object_set_new(a, "apps", apps);
  if (rc == 0)
    rc = atr__agent_apps(db, atr_json_str(a, "id"), apps, err);
  return rc;
}

static const atr_select_t agents = {AGENT_SELECT, agent_row, complete_agent};

int atr__agent_json(atr_db_t *db, const char *agent_id, json_t **out,
                    char workspace_id[37], char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(agent_id)};
  int rc = atr_select_one(db, &agents, "WHERE a.id = ?", p, 1, out, err);
  if (rc == 0 && workspace_id)
    snprintf(workspace_id, 37, "%s", atr_json_str(*out, "workspace_id"));
  return rc;
}

int atr_agents_add_to_resources(atr_db_t *db, json_t *resources, char **err) {
  size_t i;
  json_t *r;
  json_array_foreach(resources, i, r) {
    atr_value_t p[] = {atr_v_text(atr_json_str(r, "id"))};
    json_t *list = NULL;
    int rc =
        atr_select_list(db, &agents, "WHERE a.resource_id = ? ORDER BY a.name",
                        p, 1, &list, err);
    if (rc != 0)
      return rc;
    json_object_set_new(r, "agents", list);
  }
  return 0;
}

/* ---- users' reads ------------------------------------------------------------ */

/* The agent's JSON (may be NULL) when the actor may read its workspace. */
static int readable(atr_db_t *db, const atr_actor_t *actor,
                    const char *agent_id, json_t **agent, atr_fault_t *fault) {
  char ws_id[37];
  char *err = NULL;
  json_t *a = NULL, *w = NULL;
  int rc = atr__agent_json(db, agent_id, &a, ws_id, &err);
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "Workspace agent not found.", "%s",
                  agent_id ? agent_id : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  if (rc == 0)
    rc = atr__workspace_for(db, actor, ws_id, ATR_ACT_READ, &w, fault);
  json_decref(w);
  if (rc == 0 && agent)
    *agent = a;
  else
    json_decref(a);
  return rc;
}

int atr_agent_get(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *agent_id, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc == 0)
    rc = readable(&db, actor, agent_id, out, fault);
  atr_db_close(&db);
  return rc;
}

static bool final_state(const json_t *a) {
  const char *s = atr_json_str(a, "lifecycle_state");
  return json_is_true(json_object_get(a, "revoked")) || strcmp(s, "off") == 0 ||
         strcmp(s, "shutdown_error") == 0 || strcmp(s, "shutdown_timeout") == 0;
}

static int read_logs(atr_db_t *db, const char *agent_id, int64_t after,
                     int64_t limit, json_t *list, char **err) {
  atr_value_t p[] = {atr_v_text(agent_id), atr_v_int(after), atr_v_int(limit)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT id, created_at, output, level, source_id FROM "
                        "workspace_agent_logs WHERE agent_id = ? AND id > ? "
                        "ORDER BY id LIMIT ?",
                        p, 3, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    json_array_append_new(
        list,
        json_pack("{s:I, s:o, s:s, s:s, s:s}", "id",
                  (json_int_t)atr_db_get_int(db, rows, 0), "created_at",
                  atr_time_json(atr_db_get_time(db, rows, 1)), "output",
                  atr_row_text(db, rows, 2), "level", atr_row_text(db, rows, 3),
                  "source_id", atr_row_text(db, rows, 4)));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

int atr_agent_logs(const atr_domain_t *dom, const atr_actor_t *actor,
                   const char *agent_id, int64_t after, int64_t limit,
                   json_t **out, bool *final, atr_fault_t *fault) {
  *out = NULL;
  *final = false;
  if (limit <= 0 || limit > LOGS_LIMIT_MAX)
    limit = LOGS_LIMIT_MAX;
  atr_db_t db;
  json_t *a = NULL;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  rc = readable(&db, actor, agent_id, &a, fault);
  if (rc == 0) {
    /* The state first: lines stored before it went final are all read. */
    *final = final_state(a);
    json_t *list = json_array();
    char *err = NULL;
    rc = read_logs(&db, atr_json_str(a, "id"), after < 0 ? 0 : after, limit,
                   list, &err);
    if (rc == 0)
      *out = list;
    else {
      json_decref(list);
      atr_fault_internal(fault, rc, err);
    }
    free(err);
  }
  json_decref(a);
  atr_db_close(&db);
  return rc;
}

int atr_agent_ports(const atr_domain_t *dom, const atr_actor_t *actor,
                    const char *agent_id, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc == 0)
    rc = readable(&db, actor, agent_id, NULL, fault);
  char *text = NULL, *err = NULL;
  atr_value_t p[] = {atr_v_uuid_or_null(agent_id)};
  if (rc == 0) {
    rc = atr_db_query_text(&db,
                           "SELECT listening_ports FROM workspace_agents "
                           "WHERE id = ?",
                           p, 1, &text, &err);
    if (rc != 0)
      atr_fault_internal(fault, rc, err);
  }
  if (rc == 0)
    *out = json_pack("{s:o}", "ports", parsed(text, json_array()));
  free(text);
  free(err);
  atr_db_close(&db);
  return rc;
}

static int read_metadata(atr_db_t *db, const char *agent_id, json_t *list,
                         char **err) {
  atr_value_t p[] = {atr_v_uuid_or_null(agent_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT key, display_name, value, error, "
                        "collected_at, interval_seconds, timeout_seconds FROM "
                        "workspace_agent_metadata WHERE agent_id = ? ORDER "
                        "BY display_order, key",
                        p, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    json_array_append_new(
        list,
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:I, s:I}", "key",
                  atr_row_text(db, rows, 0), "display_name",
                  atr_row_text(db, rows, 1), "value", atr_row_text(db, rows, 2),
                  "error", atr_row_text(db, rows, 3), "collected_at",
                  atr_time_json(atr_db_get_time(db, rows, 4)), "interval",
                  (json_int_t)atr_db_get_int(db, rows, 5), "timeout",
                  (json_int_t)atr_db_get_int(db, rows, 6)));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

int atr_agent_metadata(const atr_domain_t *dom, const atr_actor_t *actor,
                       const char *agent_id, json_t **out, atr_fault_t *fault) {
  *out = NULL;
  atr_db_t db;
  int rc = atr_domain_open(dom, &db, fault);
  if (rc == 0)
    rc = readable(&db, actor, agent_id, NULL, fault);
  if (rc == 0) {
    json_t *list = json_array();
    char *err = NULL;
    rc = read_metadata(&db, agent_id, list, &err);
    if (rc == 0)
      *out = list;
    else {
      json_decref(list);
      atr_fault_internal(fault, rc, err);
    }
    free(err);
  }
  atr_db_close(&db);
  return rc;
}
