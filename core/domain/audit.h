/* core/audit.h — the audit log: who did what to which resource, from where,
 * with what result.
 *
 * Domain functions call atr_audit_record() once per auditable action
 * (logins, failed logins, logouts, user create/update/suspend/activate/
 * delete, password and role changes, token create/delete, organization and
 * member changes, templates, workspaces, builds, policy decisions) once
 * they know the outcome, given as the HTTP-style status code Coder's audit
 * log keeps. The actor, IP, user agent and request id come from the actor
 * (actor.h); the system's own actions name it in additional_fields. A diff names each changed field with
 * its old and new value; a field marked secret shows only that it changed.
 * Recording never fails the request: a storage error is logged.
 *
 * Threads: any; each entry is written in its own transaction.
 */
#ifndef ATRIUM_CORE_AUDIT_H
#define ATRIUM_CORE_AUDIT_H

#include <jansson.h>
#include <stdbool.h>

#include "actor.h"
#include "db.h"

typedef struct atr_audit_entry {
  const char *action;          /* create, write, delete, login, logout,
                                  login_failed */
  const char *resource_type;   /* user, api_key, organization,
                                  organization_member */
  const char *resource_id;     /* may be NULL (failed login: unknown) */
  const char *resource_target; /* a readable name: username, token name */
  const char *organization_id; /* may be NULL */
  json_t *diff;                /* borrowed; NULL for none — build it with
                                  atr_audit_diff_add */
  int status_code;
  const char *user_id; /* who acted when the actor is not signed in (a
                          login); NULL takes the actor */
  json_t *additional;  /* borrowed; members added to additional_fields
                          (an agent's connect: workspace_id, ...) or NULL */
} atr_audit_entry_t;

void atr_audit_record(atr_store_t *store, const atr_actor_t *actor,
                      const atr_audit_entry_t *e);

/* Add {"field": {"old": o, "new": n, "secret": s}} to *diff (created when
 * NULL). For secret fields old and new are not stored, only that it
 * changed. Strings may be NULL. */
void atr_audit_diff_add(json_t **diff, const char *field, const char *old_value,
                        const char *new_value, bool secret);

#endif
