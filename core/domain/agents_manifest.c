/* core/domain/agents_manifest.c — see agents.h: the manifest an agent
 * fetches after it connects (Coder's Manifest fields, docs/design/agent.md
 * §2.2, and the workspace's SSH host key, docs/design/connect.md §4). The
 * only place script bodies and host keys leave the database. */
#include "agents.h"
#include "agents_internal.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "connect.h"
#include "rows.h"

static json_t *env_of(const char *text) {
  json_t *e = text ? json_loads(text, 0, NULL) : NULL;
  if (json_is_object(e))
    return e;
  json_decref(e);
  return json_object();
}

static int manifest_head(atr_db_t *db, const char *agent_id, json_t **out,
                         char **err) {
  atr_value_t p[] = {atr_v_text(agent_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(
      db,
      "SELECT a.id, a.name, u.username, w.id, w.name, "
      "a.environment_variables, a.directory, a.motd_file, "
      "a.shutdown_requested_at, a.troubleshooting_url, a.build_id FROM "
      "workspace_agents a JOIN workspaces w ON w.id = a.workspace_id JOIN "
      "users u ON u.id = w.owner_id WHERE a.id = ? AND a.revoked_at IS NULL "
      "AND w.deleted = FALSE",
      p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    *out = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:b, s:s, s:s, s:I}",
        "agent_id", atr_row_text(db, rows, 0), "agent_name",
        atr_row_text(db, rows, 1), "owner_name", atr_row_text(db, rows, 2),
        "workspace_id", atr_row_text(db, rows, 3), "workspace_name",
        atr_row_text(db, rows, 4), "environment_variables",
        env_of(atr_db_get_text(db, rows, 5)), "directory",
        atr_row_text(db, rows, 6), "motd_file", atr_row_text(db, rows, 7),
        "shutdown_requested", !atr_db_is_null(db, rows, 8),
        "troubleshooting_url", atr_row_text(db, rows, 9), "build_id",
        atr_row_text(db, rows, 10), "report_interval_seconds",
        (json_int_t)(ATR__AGENT_STATS_INTERVAL_MS / 1000));
  } else if (rc == 0) {
    rc = ATR_EACCES;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

static int add_metadata(atr_db_t *db, const char *agent_id, json_t *m,
                        char **err) {
  atr_value_t p[] = {atr_v_text(agent_id)};
  atr_db_rows_t *rows = NULL;
  json_t *list = json_array();
  json_object_set_new(m, "metadata", list);
  int rc = atr_db_query(db,
                        "SELECT key, display_name, script, interval_seconds, "
                        "timeout_seconds FROM workspace_agent_metadata WHERE "
                        "agent_id = ? ORDER BY display_order, key",
                        p, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    json_array_append_new(
        list,
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "key", atr_row_text(db, rows, 0),
                  "display_name", atr_row_text(db, rows, 1), "script",
                  atr_row_text(db, rows, 2), "interval",
                  (json_int_t)atr_db_get_int(db, rows, 3), "timeout",
                  (json_int_t)atr_db_get_int(db, rows, 4)));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

static int add_scripts(atr_db_t *db, const char *agent_id, json_t *m,
                       char **err) {
  atr_value_t p[] = {atr_v_text(agent_id)};
  atr_db_rows_t *rows = NULL;
  json_t *list = json_array();
  json_object_set_new(m, "scripts", list);
  int rc = atr_db_query(db,
                        "SELECT log_source_id, script, timeout_seconds, "
                        "start_blocks_login, run_on_start, run_on_stop, "
                        "display_name FROM workspace_agent_scripts WHERE "
                        "agent_id = ? ORDER BY run_on_stop, display_name",
                        p, 1, &rows, err);
  while (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    rc = 0;
    json_array_append_new(
        list, json_pack("{s:s, s:s, s:I, s:b, s:b, s:b, s:s}", "log_source_id",
                        atr_row_text(db, rows, 0), "script",
                        atr_row_text(db, rows, 1), "timeout_seconds",
                        (json_int_t)atr_db_get_int(db, rows, 2),
                        "start_blocks_login", atr_db_get_bool(db, rows, 3),
                        "run_on_start", atr_db_get_bool(db, rows, 4),
                        "run_on_stop", atr_db_get_bool(db, rows, 5),
                        "display_name", atr_row_text(db, rows, 6)));
  }
  atr_db_rows_close(db, rows);
  return rc < 0 ? rc : 0;
}

/* The workspace's SSH host key (connect.h), made on the first manifest:
 * the agent's SSH server presents it. The only place it leaves the
 * database. */
static int add_host_key(atr_db_t *db, json_t *m, char **err) {
  char *pem = NULL;
  int rc =
      atr__connect_host_key(db, atr_json_str(m, "workspace_id"), &pem, err);
  if (rc == 0)
    json_object_set_new(m, "ssh_host_key", json_string(pem));
  /* a key sealed under a key the server lacks: not the agent's token */
  if (rc == ATR_ENOENT)
    rc = ATR_EIO;
  if (pem) {
    OPENSSL_cleanse(pem, strlen(pem));
    free(pem);
  }
  return rc;
}

static int build_manifest(atr_db_t *db, const char *agent_id, json_t **out,
                          char **err) {
  json_t *m = NULL, *a = NULL;
  int rc = manifest_head(db, agent_id, &m, err);
  if (rc == 0)
    rc = add_host_key(db, m, err);
  if (rc == 0)
    rc = add_metadata(db, agent_id, m, err);
  if (rc == 0)
    rc = add_scripts(db, agent_id, m, err);
  if (rc == 0)
    rc = atr__agent_json(db, agent_id, &a, NULL, err);
  if (rc == 0) {
    json_object_set(m, "apps", json_object_get(a, "apps"));
    json_object_set(m, "log_sources", json_object_get(a, "log_sources"));
    json_object_set(m, "lifecycle_state",
                    json_object_get(a, "lifecycle_state"));
  }
  json_decref(a);
  if (rc == 0)
    *out = m;
  else
    json_decref(m);
  return rc == ATR_ENOENT ? ATR_EACCES : rc;
}

int atr_agent_manifest(const atr_domain_t *dom, const atr_actor_t *actor,
                       json_t **out, atr_fault_t *fault) {
  *out = NULL;
  int rc = atr__agent_only(actor, fault);
  atr_db_t db;
  if (rc == 0)
    rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = build_manifest(&db, actor->agent_id, out, &err);
  atr_db_close(&db);
  if (rc == ATR_EACCES)
    atr__agent_refused(fault);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  return rc;
}
