/* tests/api/agent_ws.h — what the test_api_agents program shares: a running
 * workspace (echo provisioner) whose start build got a workspace agent
 * with a real token, made the way the job runner makes it
 * (atr_agents_make_for_build on the server's own database, opened in the
 * test process), and calls as that agent.
 *
 * The agent never dials a session here: every agent route is called as
 * plain HTTP/1.1 with the token, as curl would; where a test needs the
 * agent to look connected it records the connect as the session would
 * (atr_agent_connected).
 *
 * Threads: the test's main thread (the follower in test_api_agents.c
 * reads on its own thread but calls none of these). */
#ifndef ATRIUM_TEST_API_AGENT_WS_H
#define ATRIUM_TEST_API_AGENT_WS_H

#include <jansson.h>

#include "agents.h"
#include "builds.h"

typedef struct agent_ws {
  char ws[37], build[37], resource[37];
  char agent_id[37];
  char token[ATR_AGENT_TOKEN_LEN + 1]; /* remembered: never in the log */
  char source_id[37];                  /* the startup script's log source */
} agent_ws_t;

/* A template, a workspace named name, its build running, and its agent
 * made with a new token: *a filled. */
void agent_workspace(const srv_t *s, const char *name, agent_ws_t *a);
/* The same with the agent spec's JSON text (its apps, ...). */
void agent_workspace_spec(const srv_t *s, const char *name, const char *spec,
                          agent_ws_t *a);

/* As the agent: method path with its token (Authorization: Bearer when
 * bearer); body stolen, may be NULL. */
atr_tc_res_t agent_call(const srv_t *s, const agent_ws_t *a, const char *method,
                        const char *path, json_t *body);
/* "/api/v2/workspaceagents/me/<what>" */
const char *me(const char *what);

/* The agent's session came up (what the rpc upgrade records). */
void agent_connects(const srv_t *s, const agent_ws_t *a);
/* Revoke the workspace's agent tokens, as a stop build does. */
void agent_revoke(const srv_t *s, const agent_ws_t *a);

/* The agent API version the agent's client speaks. */
#define ATR_TEST_AGENT_API_VERSION "1.0"

/* test_api_agents_session.c */
void a_session_carries_the_agent_until_its_shutdown(void **state);
void a_replaced_session_leaves_the_agent_connected(void **state);

#endif
