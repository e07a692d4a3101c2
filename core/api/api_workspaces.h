/* core/api_workspaces.h — workspaces and their builds: create a workspace
 * (its first build), start/stop/delete builds with parameter values
 * checked against the template version's schema, and the builds' logs,
 * parameters, resources and cancelation. */
#ifndef ATRIUM_CORE_API_WORKSPACES_H
#define ATRIUM_CORE_API_WORKSPACES_H

#include "api.h"

int atr_api_workspace_create(atr_api_req_t *r);
int atr_api_workspaces_list(atr_api_req_t *r);
int atr_api_workspace_get(atr_api_req_t *r);
int atr_api_workspace_by_name(atr_api_req_t *r);
int atr_api_workspace_build_create(atr_api_req_t *r);
int atr_api_workspace_builds_list(atr_api_req_t *r);
int atr_api_build_get(atr_api_req_t *r);
int atr_api_build_logs(atr_api_req_t *r);
int atr_api_build_params(atr_api_req_t *r);
int atr_api_build_resources(atr_api_req_t *r);
int atr_api_build_cancel(atr_api_req_t *r);
int atr_api_build_state(atr_api_req_t *r);
int atr_api_workspace_autostart(atr_api_req_t *r);
int atr_api_workspace_ttl(atr_api_req_t *r);

/* {workspace} → the Workspace the actor may `act` on; NULL after
 * answering (api_schedule.c shares it). */
json_t *atr__api_workspace_for(atr_api_req_t *r, atr_action_t act);

#endif
