/* core/domain/agents_conn.c — see agents.h: an agent's session came up,
 * is still up, or went down; connect and disconnect are audited. */
#include "agents.h"
#include "agents_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atrium/error.h"
#include "audit.h"
#include "events.h"
#include "rows.h"

#define VERSION_MAX 64
#define REASON_MAX 128

/* What the audit entry names: the agent, its workspace's organization and
 * build number. */
typedef struct who {
  char name[65];
  char org_id[37];
  int64_t build_number;
} who_t;

static int load_who(atr_db_t *db, const char *agent_id, who_t *w, char **err) {
  atr_value_t p[] = {atr_v_text(agent_id)};
  atr_db_rows_t *rows = NULL;
  int rc = atr_db_query(db,
                        "SELECT a.name, w.organization_id, b.build_number "
                        "FROM workspace_agents a JOIN workspaces w ON w.id = "
                        "a.workspace_id JOIN workspace_builds b ON b.id = "
                        "a.build_id WHERE a.id = ?",
                        p, 1, &rows, err);
  if (rc == 0 && (rc = atr_db_next(db, rows, err)) == 1) {
    snprintf(w->name, sizeof w->name, "%s", atr_row_text(db, rows, 0));
    snprintf(w->org_id, sizeof w->org_id, "%s", atr_row_text(db, rows, 1));
    w->build_number = atr_db_get_int(db, rows, 2);
    rc = 0;
  } else if (rc == 0) {
    rc = ATR_EACCES;
  }
  atr_db_rows_close(db, rows);
  return rc;
}

static void audit(const atr_domain_t *dom, const atr_actor_t *actor,
                  const char *action, const who_t *w, const char *version,
                  const char *reason) {
  json_t *extra = json_pack(
      "{s:s, s:I, s:s, s:s?, s:s?, s:s?}", "workspace_id", actor->workspace_id,
      "build_number", (json_int_t)w->build_number, "agent_name", w->name, "ip",
      actor->ip, "version", version, "reason", reason);
  atr_audit_record(dom->store, actor,
                   &(atr_audit_entry_t){.action = action,
                                        .resource_type = "workspace_agent",
                                        .resource_id = actor->agent_id,
                                        .resource_target = w->name,
                                        .organization_id = w->org_id,
                                        .status_code = 200,
                                        .additional = extra});
  json_decref(extra);
}

typedef struct conn_call {
  const atr_actor_t *actor;
  const char *version; /* connect: cut; NULL otherwise */
  bool connect, heartbeat;
  who_t who;
} conn_call_t;

static int conn_tx(atr_db_t *db, void *ud, char **err) {
  conn_call_t *c = ud;
  int64_t now = atr_db_now_us();
  int64_t changes = 0;
  int rc;
  if (c->connect || c->heartbeat) {
    atr_value_t p[] = {atr_v_time(now), atr_v_time(now), atr_v_time(now),
                       atr_v_text(c->version), atr_v_text(c->actor->agent_id)};
    rc = atr_db_exec(db,
                     "UPDATE workspace_agents SET first_connected_at = "
                     "COALESCE(first_connected_at, ?), last_connected_at = ?, "
                     "updated_at = ?, version = COALESCE(?, version) WHERE id "
                     "= ? AND revoked_at IS NULL",
                     p, 5, &changes, err);
  } else {
    /* Also for a revoked agent: that its session ended is the server's
     * own record, and its status should say so. */
    atr_value_t p[] = {atr_v_time(now), atr_v_time(now),
                       atr_v_text(c->actor->agent_id)};
    rc = atr_db_exec(db,
                     "UPDATE workspace_agents SET disconnected_at = ?, "
                     "updated_at = ? WHERE id = ?",
                     p, 3, &changes, err);
  }
  if (rc == 0 && changes == 0)
    return ATR_EACCES;
  if (rc == 0 && !c->heartbeat)
    rc = load_who(db, c->actor->agent_id, &c->who, err);
  return rc;
}

static int conn_call(const atr_domain_t *dom, conn_call_t *c,
                     const char *reason, atr_fault_t *fault) {
  int rc = atr__agent_only(c->actor, fault);
  if (rc != 0)
    return rc;
  char *err = NULL;
  rc = atr_db_tx(dom->store, ATR_TX_WRITE, conn_tx, c, &err);
  if (rc == ATR_EACCES)
    atr__agent_refused(fault);
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  if (rc == 0 && !c->heartbeat)
    audit(dom, c->actor, c->connect ? "connect" : "disconnect", &c->who,
          c->version, reason);
  /* A stop build waiting for this agent need not wait any longer. */
  if (rc == 0 && !c->connect && !c->heartbeat)
    atr_events_agent(dom->events, c->actor->agent_id, "disconnected");
  return rc;
}

int atr_agent_connected(const atr_domain_t *dom, const atr_actor_t *actor,
                        const char *version, atr_fault_t *fault) {
  char *v = version ? atr__agent_cut(version, VERSION_MAX) : NULL;
  conn_call_t c = {.actor = actor, .version = v, .connect = true};
  int rc = conn_call(dom, &c, NULL, fault);
  free(v);
  return rc;
}

int atr_agent_heartbeat(const atr_domain_t *dom, const atr_actor_t *actor,
                        atr_fault_t *fault) {
  conn_call_t c = {.actor = actor, .heartbeat = true};
  return conn_call(dom, &c, NULL, fault);
}

int atr_agent_disconnected(const atr_domain_t *dom, const atr_actor_t *actor,
                           const char *reason, atr_fault_t *fault) {
  char *r = reason ? atr__agent_cut(reason, REASON_MAX) : NULL;
  conn_call_t c = {.actor = actor};
  int rc = conn_call(dom, &c, r, fault);
  free(r);
  return rc;
}
