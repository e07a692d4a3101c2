/* core/domain/agents_make.c — see agents.h: the rows of a start build's
 * agent, from the version's agent_spec (the JSON HELPERS.md and
 * manifest.c define). The spec was checked at import; it is bounded again
 * here because a row it makes is read by every agent call. */
#include "agents.h"
#include "agents_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "rows.h"

#define SPEC_MAX_ITEMS 32
#define SCRIPT_MAX ((size_t)64 * 1024)

typedef struct made {
  atr_db_t *db;
  const json_t *spec;
  char id[37];
  int64_t now;
} made_t;

static int64_t spec_int(const json_t *o, const char *key, int64_t dflt) {
  json_t *v = json_object_get(o, key);
  return json_is_integer(v) && json_integer_value(v) >= 0
             ? (int64_t)json_integer_value(v)
             : dflt;
}

static const char *spec_str(const json_t *o, const char *key,
                            const char *dflt) {
  const char *s = json_string_value(json_object_get(o, key));
  return s ? s : dflt;
}

static int insert_agent(made_t *m, const char *workspace_id,
                        const char *build_id, const char *resource_id,
                        const char *digest, char **err) {
  const json_t *s = m->spec;
  json_t *e = json_object_get(s, "env");
  char *env =
      json_is_object(e) ? json_dumps(e, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  const char *behavior = spec_str(s, "startup_script_behavior", "");
  atr_value_t p[] = {atr_v_text(m->id),
                     atr_v_time(m->now),
                     atr_v_time(m->now),
                     atr_v_text(spec_str(s, "name", "main")),
                     atr_v_text(resource_id),
                     atr_v_text(digest),
                     atr_v_text(spec_str(s, "arch", "amd64")),
                     atr_v_text(env ? env : "{}"),
                     atr_v_text(spec_str(s, "directory", "")),
                     atr_v_int(spec_int(s, "connection_timeout_s", 120)),
                     atr_v_text(spec_str(s, "troubleshooting_url", "")),
                     atr_v_text(spec_str(s, "motd_file", "")),
                     atr_v_text(strcmp(behavior, "blocking") == 0
                                    ? "blocking"
                                    : "non-blocking"),
                     atr_v_text(build_id),
                     atr_v_text(workspace_id)};
  int rc = atr_db_exec(
      m->db,
      "INSERT INTO workspace_agents (id, created_at, updated_at, name, "
      "resource_id, auth_token, architecture, operating_system, "
      "environment_variables, directory, connection_timeout_seconds, "
      "troubleshooting_url, motd_file, startup_script_behavior, build_id, "
      "workspace_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'linux', ?, ?, ?, ?, ?, ?, "
      "?, ?)",
      p, 15, NULL, err);
  free(env);
  return rc;
}

/* A log source, and the script that writes to it when there is one. */
static int insert_source(made_t *m, const char *display_name,
                         const char *script_key, const char *timeout_key,
                         bool on_start, char **err) {
  char sid[37];
  atr_db_new_uuid(sid);
  const char *script = script_key ? spec_str(m->spec, script_key, "") : "";
  if (script_key && !*script)
    return 0;
  atr_value_t p[] = {atr_v_text(m->id), atr_v_text(sid), atr_v_time(m->now),
                     atr_v_text(display_name)};
  int rc = atr_db_exec(m->db,
                       "INSERT INTO workspace_agent_log_sources (agent_id, "
                       "id, created_at, display_name) VALUES (?, ?, ?, ?)",
                       p, 4, NULL, err);
  if (rc != 0 || !script_key)
    return rc;
  bool blocks =
      on_start &&
      strcmp(spec_str(m->spec, "startup_script_behavior", ""), "blocking") == 0;
  atr_value_t s[] = {atr_v_text(m->id),
                     atr_v_text(sid),
                     atr_v_text(display_name),
                     atr_v_textn(script, strnlen(script, SCRIPT_MAX)),
                     atr_v_int(spec_int(m->spec, timeout_key, 300)),
                     atr_v_bool(blocks),
                     atr_v_bool(on_start),
                     atr_v_bool(!on_start)};
  return atr_db_exec(m->db,
                     "INSERT INTO workspace_agent_scripts (agent_id, "
                     "log_source_id, display_name, script, timeout_seconds, "
                     "start_blocks_login, run_on_start, run_on_stop) VALUES "
                     "(?, ?, ?, ?, ?, ?, ?, ?)",
                     s, 8, NULL, err);
}

static int insert_metadata(made_t *m, char **err) {
  json_t *list = json_object_get(m->spec, "metadata");
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < json_array_size(list) && i < SPEC_MAX_ITEMS;
       i++) {
    json_t *it = json_array_get(list, i);
    const char *key = spec_str(it, "key", "");
    if (!*key)
      continue;
    int64_t interval = spec_int(it, "interval_s", 10);
    int64_t timeout = spec_int(it, "timeout_s", 1);
    atr_value_t p[] = {atr_v_text(m->id),
                       atr_v_text(key),
                       atr_v_text(spec_str(it, "display_name", key)),
                       atr_v_text(spec_str(it, "script", "")),
                       atr_v_int(interval > 0 ? interval : 10),
                       atr_v_int(timeout > 0 ? timeout : 1),
                       atr_v_int((int64_t)i)};
    rc = atr_db_exec(m->db,
                     "INSERT INTO workspace_agent_metadata (agent_id, key, "
                     "display_name, script, interval_seconds, "
                     "timeout_seconds, display_order) VALUES (?, ?, ?, ?, ?, "
                     "?, ?) ON CONFLICT DO NOTHING",
                     p, 7, NULL, err);
  }
  return rc;
}

static const char *sharing(const char *share) {
  if (strcmp(share, "authenticated") == 0 || strcmp(share, "public") == 0)
    return share;
  return "owner";
}

static int insert_app(made_t *m, const json_t *it, int64_t order, char **err) {
  char id[37];
  atr_db_new_uuid(id);
  const json_t *hc = json_object_get(it, "healthcheck");
  const char *hc_url = spec_str(hc, "url", "");
  atr_value_t p[] = {atr_v_text(id),
                     atr_v_time(m->now),
                     atr_v_text(m->id),
                     atr_v_text(spec_str(it, "slug", "")),
                     atr_v_text(spec_str(it, "display_name", "")),
                     atr_v_text(spec_str(it, "icon", "")),
                     atr_v_text(spec_str(it, "url", "")),
                     atr_v_text(hc_url),
                     atr_v_int(*hc_url ? spec_int(hc, "interval_s", 5) : 0),
                     atr_v_int(*hc_url ? spec_int(hc, "threshold", 6) : 0),
                     atr_v_text(*hc_url ? "initializing" : "disabled"),
                     atr_v_bool(json_is_true(json_object_get(it, "subdomain"))),
                     atr_v_text(sharing(spec_str(it, "share", "owner"))),
                     atr_v_int(order)};
  return atr_db_exec(m->db,
                     "INSERT INTO workspace_apps (id, created_at, agent_id, "
                     "slug, display_name, icon, url, healthcheck_url, "
                     "healthcheck_interval, healthcheck_threshold, health, "
                     "subdomain, sharing_level, display_order) VALUES (?, ?, "
                     "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO "
                     "NOTHING",
                     p, 14, NULL, err);
}

static int insert_apps(made_t *m, char **err) {
  json_t *list = json_object_get(m->spec, "apps");
  int rc = 0;
  for (size_t i = 0; rc == 0 && i < json_array_size(list) && i < SPEC_MAX_ITEMS;
       i++) {
    json_t *it = json_array_get(list, i);
    if (*spec_str(it, "slug", ""))
      rc = insert_app(m, it, (int64_t)i, err);
  }
  return rc;
}

int atr_agents_make_for_build(atr_db_t *db, const char *workspace_id,
                              const char *build_id, const char *resource_id,
                              const char *agent_spec_json,
                              const char *token_digest, char **err) {
  json_error_t jerr;
  json_t *spec = json_loads(agent_spec_json ? agent_spec_json : "", 0, &jerr);
  if (!json_is_object(spec)) {
    json_decref(spec);
    if (err &&
        asprintf(err, "the version's agent_spec is not a JSON object: %s",
                 jerr.text) < 0)
      *err = NULL;
    return ATR_EINVAL;
  }
  made_t m = {.db = db, .spec = spec, .now = atr_db_now_us()};
  atr_db_new_uuid(m.id);
  int rc =
      insert_agent(&m, workspace_id, build_id, resource_id, token_digest, err);
  if (rc == 0)
    rc = insert_source(&m, "Startup Script", "startup_script",
                       "startup_script_timeout_s", true, err);
  if (rc == 0)
    rc = insert_source(&m, "Shutdown Script", "shutdown_script",
                       "shutdown_script_timeout_s", false, err);
  if (rc == 0)
    rc = insert_source(&m, "Agent", NULL, NULL, false, err);
  if (rc == 0)
    rc = insert_metadata(&m, err);
  if (rc == 0)
    rc = insert_apps(&m, err);
  if (rc == 0)
    rc = atr_agents_revoke(db, workspace_id, build_id, err);
  json_decref(spec);
  return rc;
}
