/* core/domain/connect.c — see connect.h: who may open a tunnel into a
 * workspace, and the audit entries of its opening, its end and a
 * refusal. The host keys are connect_keys.c. */
#include "connect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agents.h"
#include "agents_internal.h"
#include "atrium/error.h"
#include "audit.h"
#include "rows.h"
#include "workspaces_rows.h"

#define ERROR_MAX 256 /* the agent's refusal, as kept in the entry */

/* ---- what was asked ------------------------------------------------------- */

static int check_request(const atr_connect_t *c, atr_fault_t *fault) {
  bool tcp = strcmp(c->kind, "tcp") == 0, pty = strcmp(c->kind, "pty") == 0;
  if (!tcp && !pty && strcmp(c->kind, "ssh") != 0)
    atr_fault_field(fault, "kind", "Must be ssh, tcp or pty.");
  if (tcp && (c->port < 1 || c->port > ATR_CONNECT_PORT_MAX))
    atr_fault_field(fault, "port", "Must be a port from 1 to %d.",
                    ATR_CONNECT_PORT_MAX);
  else if (!tcp && c->port != 0)
    atr_fault_field(fault, "port", "Only a tcp tunnel names a port.");
  if (pty && !atr_uuid_valid(c->reconnect))
    atr_fault_field(fault, "reconnect", "Must be a UUID.");
  else if (!pty && c->reconnect[0])
    atr_fault_field(fault, "reconnect", "Only a pty names a reconnect id.");
  if (!atr_fault_has_fields(fault))
    return 0;
  atr_fault_set(fault, ATR_EINVAL, "Invalid connection request.", NULL);
  return ATR_EINVAL;
}

/* ---- the audit trail --------------------------------------------------------- */

/* One "connect" entry about c's workspace; more (may be NULL) is added to
 * its additional fields. */
static void record(const atr_domain_t *dom, const atr_connect_t *c,
                   const char *phase, int status, json_t *more) {
  atr_actor_t who = c->actor;
  who.ip = c->ip[0] ? c->ip : NULL;
  who.user_agent = c->user_agent[0] ? c->user_agent : NULL;
  who.request_id = c->request_id[0] ? c->request_id : NULL;
  who.org_id = NULL;
  json_t *extra =
      json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "phase", phase, "kind",
                c->kind, "connection_id", c->id, "agent_id", c->agent_id,
                "agent_name", c->agent_name, "owner_name", c->owner_name);
  if (c->port)
    json_object_set_new(extra, "port", json_integer(c->port));
  if (c->reconnect[0])
    json_object_set_new(extra, "reconnect", json_string(c->reconnect));
  if (more)
    json_object_update(extra, more);
  atr_audit_record(dom->store, &who,
                   &(atr_audit_entry_t){.action = "connect",
                                        .resource_type = "workspace",
                                        .resource_id = c->workspace_id,
                                        .resource_target = c->workspace_name,
                                        .organization_id = c->org_id,
                                        .status_code = status,
                                        .additional = extra});
  json_decref(extra);
}

void atr_connect_ended(const atr_domain_t *dom, const atr_connect_t *c,
                       const atr_connect_end_t *end) {
  char *error = end->error ? atr__agent_cut(end->error, ERROR_MAX) : NULL;
  json_t *more =
      json_pack("{s:s, s:b, s:I, s:I, s:I, s:s?}", "reason",
                end->reason ? end->reason : "closed", "opened", end->opened,
                "duration_ms", (json_int_t)end->duration_ms, "bytes_to_agent",
                (json_int_t)end->bytes_to_agent, "bytes_from_agent",
                (json_int_t)end->bytes_from_agent, "error", error);
  record(dom, c, "end", end->opened ? 200 : 502, more);
  json_decref(more);
  free(error);
}

/* ---- who may ------------------------------------------------------------------ */

static void copy(char *dst, size_t size, const char *s) {
  snprintf(dst, size, "%s", s ? s : "");
}

/* The agent and its workspace into c; ATR_ENOENT (404) when either is
 * gone. *revoked: the agent is an earlier build's; *ws_status: the
 * workspace's, from its latest build. */
static int load_target(atr_db_t *db, const char *agent_id, atr_connect_t *c,
                       bool *revoked, char ws_status[32], atr_fault_t *fault) {
  json_t *a = NULL, *w = NULL;
  char *err = NULL;
  int rc = atr__agent_json(db, agent_id, &a, c->workspace_id, &err);
  if (rc == 0) {
    atr_value_t p[] = {atr_v_uuid_or_null(c->workspace_id)};
    rc = atr_select_one(db, &atr__workspaces, "WHERE w.id = ?", p, 1, &w, &err);
  }
  if (rc == 0 && json_is_true(json_object_get(w, "deleted")))
    rc = ATR_ENOENT;
  if (rc == ATR_ENOENT)
    atr_fault_set(fault, rc, "Workspace agent not found.", "%s",
                  agent_id ? agent_id : "");
  else if (rc != 0)
    atr_fault_internal(fault, rc, err);
  free(err);
  if (rc == 0) {
    copy(c->agent_id, sizeof c->agent_id, atr_json_str(a, "id"));
    copy(c->agent_name, sizeof c->agent_name, atr_json_str(a, "name"));
    copy(c->status, sizeof c->status, atr_json_str(a, "status"));
    copy(c->lifecycle, sizeof c->lifecycle, atr_json_str(a, "lifecycle_state"));
    copy(c->workspace_name, sizeof c->workspace_name, atr_json_str(w, "name"));
    copy(c->owner_id, sizeof c->owner_id, atr_json_str(w, "owner_id"));
    copy(c->owner_name, sizeof c->owner_name, atr_json_str(w, "owner_name"));
    copy(c->org_id, sizeof c->org_id, atr_json_str(w, "organization_id"));
    *revoked = json_is_true(json_object_get(a, "revoked"));
    const char *st = atr_json_str(json_object_get(w, "latest_build"), "status");
    snprintf(ws_status, 32, "%s", *st ? st : "unknown");
  }
  json_decref(a);
  json_decref(w);
  return rc;
}

/* The owner of the workspace, or a site owner: nobody else, and never an
 * agent or the system (atr_actor_is_user is false for both). */
static bool may_connect(const atr_actor_t *actor, const atr_connect_t *c) {
  if (!atr_actor_is_user(actor) || actor->agent)
    return false;
  return strcmp(actor->user_id, c->owner_id) == 0 ||
         (actor->roles & ATR_ROLE_OWNER) != 0;
}

static void remember_actor(atr_connect_t *c, const atr_actor_t *actor) {
  c->actor = *actor;
  c->actor.ip = c->actor.user_agent = c->actor.request_id = NULL;
  c->actor.org_id = NULL;
  copy(c->ip, sizeof c->ip, actor->ip);
  copy(c->user_agent, sizeof c->user_agent, actor->user_agent);
  copy(c->request_id, sizeof c->request_id, actor->request_id);
}

/* The refusals after the agent was found: 403 (audited), then 409. */
static int judge(const atr_domain_t *dom, const atr_actor_t *actor,
                 atr_connect_t *c, bool revoked, const char *ws_status,
                 atr_fault_t *fault) {
  if (!may_connect(actor, c)) {
    record(dom, c, "open", 403, NULL);
    return atr_fault_set(fault, ATR_EPERM, "Forbidden.",
                         "Only the owner of workspace %s/%s and site "
                         "owners may connect to it.",
                         c->owner_name, c->workspace_name);
  }
  char message[256];
  if (revoked && strcmp(ws_status, "running") == 0) {
    /* rebuilt: the workspace runs, with another agent */
    snprintf(message, sizeof message,
             "The agent is of an earlier build of workspace %s/%s.",
             c->owner_name, c->workspace_name);
    return atr_fault_set(fault, ATR_EBUSY, message,
                         "The workspace was built again since; its current "
                         "agent is in the workspace's latest build "
                         "(resources[].agents[]).");
  }
  if (revoked) {
    snprintf(message, sizeof message,
             "The workspace %s/%s is not running (status: %s).", c->owner_name,
             c->workspace_name, ws_status);
    return atr_fault_set(fault, ATR_EBUSY, message,
                         "Start the workspace, then connect to its agent.");
  }
  if (strcmp(c->status, "connected") != 0) {
    snprintf(message, sizeof message,
             "The agent of workspace %s/%s is not connected (status: %s).",
             c->owner_name, c->workspace_name, c->status);
    return atr_fault_set(fault, ATR_EBUSY, message,
                         "Its lifecycle state is %s. Wait for the agent to "
                         "connect, or read the workspace's build and agent "
                         "logs.",
                         c->lifecycle);
  }
  return 0;
}

int atr_connect_authorize(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *agent_id, atr_connect_t *c,
                          atr_fault_t *fault) {
  int rc = check_request(c, fault);
  if (rc != 0)
    return rc;
  atr_db_t db;
  rc = atr_domain_open(dom, &db, fault);
  if (rc != 0)
    return rc;
  bool revoked = false;
  char ws_status[32] = "";
  rc = load_target(&db, agent_id, c, &revoked, ws_status, fault);
  atr_db_close(&db);
  if (rc != 0)
    return rc;
  atr_db_new_uuid(c->id);
  c->opened_at_us = atr_db_now_us();
  remember_actor(c, actor);
  rc = judge(dom, actor, c, revoked, ws_status, fault);
  if (rc == 0)
    record(dom, c, "open", 200, NULL);
  return rc;
}
