/* core/api_workspaces.h — workspaces and their builds over HTTP: create a
 * workspace (its first build), start/stop/delete builds, and the builds'
 * logs, parameters, resources, state and cancelation; the schedule
 * (api_schedule.c). The rules are the domain's (workspaces.h, builds.h).
 *
 * Threads: HTTP worker threads (the request's). */
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

#endif
