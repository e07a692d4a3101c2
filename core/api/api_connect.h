/* core/api/api_connect.h — users' tunnels into a workspace
 * (docs/design/connect.md §1–3):
 *
 *   GET /api/v2/workspaceagents/{workspaceagent}/tunnel?kind=ssh
 *   GET /api/v2/workspaceagents/{workspaceagent}/tunnel?kind=tcp&port=N
 *       RAW: Connection: Upgrade, Upgrade: atrium-tunnel; 101, then bytes
 *   GET /api/v2/workspaceagents/{workspaceagent}/pty?reconnect=UUID
 *       [&width=W&height=H&command=…]
 *       WS: a WebSocket (the web terminal, Coder's ReconnectingPTY)
 *
 * Each handler checks the query, asks the domain who may
 * (atr_connect_authorize, connect.h: the workspace's owner and site
 * owners; it audits the opening), and hands the connection to the server
 * (atr__http_tunnel); the tunnel's end is audited from its ended().
 *
 * Threads: HTTP worker threads (the request's); ended() on a worker
 * thread of the server's, later.
 */
#ifndef ATRIUM_CORE_API_CONNECT_H
#define ATRIUM_CORE_API_CONNECT_H

#include "api.h"

int atr_api_workspace_agent_tunnel(atr_api_req_t *r);
int atr_api_workspace_agent_pty(atr_api_req_t *r);

#endif
