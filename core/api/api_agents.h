/* core/api/api_agents.h — what users read about workspace agents:
 * GET /api/v2/workspaceagents/{workspaceagent} (Coder's WorkspaceAgent),
 * its startup logs (?after=&limit=, or followed as server-sent events
 * with ?follow=true until the agent writes no more), its listening ports
 * and its metadata. The domain (agents.h) checks read permission on the
 * agent's workspace. The agent's own routes are api_agent_me.h.
 *
 * Threads: HTTP worker threads (the request's); a followed log's steps on
 * the server's pump.
 */
#ifndef ATRIUM_CORE_API_AGENTS_H
#define ATRIUM_CORE_API_AGENTS_H

#include "api.h"

int atr_api_workspace_agent_get(atr_api_req_t *r);
int atr_api_workspace_agent_logs(atr_api_req_t *r);
int atr_api_workspace_agent_ports(atr_api_req_t *r);
int atr_api_workspace_agent_metadata(atr_api_req_t *r);

#endif
