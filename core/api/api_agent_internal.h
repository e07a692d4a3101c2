/* core/api/api_agent_internal.h — what api_agent_me.c and
 * api_agent_session.c share; not for other callers.
 *
 * Threads: any (the functions touch only their arguments, but for the
 * session list, which its own lock protects). */
#ifndef ATRIUM_CORE_API_AGENT_INTERNAL_H
#define ATRIUM_CORE_API_AGENT_INTERNAL_H

#include "api.h"

/* The identity of the session a request came in (the ud the upgrade
 * handed to the transport), or NULL for a plain request. */
const atr_actor_t *atr__api_agent_session_actor(atr_api_req_t *r);

/* A domain call's outcome for an agent: a token no longer accepted
 * (ATR_EACCES) is 401, the rest as atr_api_answer. */
int atr__api_agent_answer(atr_api_req_t *r, int rc, int status, json_t *body,
                          atr_fault_t *f);

#endif
