/* core/domain/workspaces_rows.h — workspaces and builds as the API shows
 * them (Workspace, WorkspaceBuild with its job and resources), and
 * finding one that the actor may act on. Shared by the workspace, build
 * and schedule modules of the domain; not for callers outside it.
 *
 * Threads: pure helpers over the connection they are given.
 */
#ifndef ATRIUM_CORE_WORKSPACES_ROWS_H
#define ATRIUM_CORE_WORKSPACES_ROWS_H

#include <jansson.h>

#include "actor.h"
#include "db.h"
#include "fault.h"
#include "rbac.h"
#include "rows.h"

/* Workspace rows (WHERE on w., u. (owner) and t. (template)), each with
 * its latest build and whether it is outdated. */
extern const atr_select_t atr__workspaces;
/* WorkspaceBuild rows (WHERE on b., w. and j. (its job)), each with its
 * job's tags and its resources. */
extern const atr_select_t atr__builds;

/* May the actor `act` on the Workspace w (its organization's roles count;
 * its owner acts as "self")? ATR_EPERM (403) when not. */
int atr__workspace_allowed(atr_db_t *db, const atr_actor_t *actor,
                           const json_t *w, atr_action_t act,
                           atr_fault_t *fault);
/* The Workspace id, when the actor may `act` on it: ATR_ENOENT (404,
 * "Workspace not found.") or ATR_EPERM otherwise. */
int atr__workspace_for(atr_db_t *db, const atr_actor_t *actor, const char *id,
                       atr_action_t act, json_t **out, atr_fault_t *fault);
/* The WorkspaceBuild id, when the actor may `act` on its workspace
 * (*w gets the Workspace when w is not NULL): ATR_ENOENT (404,
 * "Workspace build not found.") or ATR_EPERM otherwise. */
int atr__build_for(atr_db_t *db, const atr_actor_t *actor, const char *id,
                   atr_action_t act, json_t **out, json_t **w,
                   atr_fault_t *fault);

#endif
