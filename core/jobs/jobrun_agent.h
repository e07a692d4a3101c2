/* core/jobs/jobrun_agent.h — the workspace agent's part of a build job
 * (jobrun_agent.c): its token on start builds, the shutdown wait and the
 * revoke on stop and delete builds. Between jobrun*.c only.
 *
 * Ownership: an atr__build_agent_t belongs to its build; the token lives
 * only in it (and in the job's masked values) and is wiped by _free.
 * Threads: the job's worker thread.
 */
#ifndef ATRIUM_CORE_JOBRUN_AGENT_H
#define ATRIUM_CORE_JOBRUN_AGENT_H

#include <stdbool.h>

#include "agents.h"
#include "jobrun.h"

typedef struct atr__build_agent {
  bool on; /* a start build of a version that declares an agent */
  char token[ATR_AGENT_TOKEN_LEN + 1];
  char digest[37];
  char *spec; /* template_versions.agent_spec */
  char *name;
  atr_prov_agent_t prov; /* what req->agent points to */
} atr__build_agent_t;

/* What the completion transaction knows about the build. */
typedef struct atr__agent_outcome {
  const char *transition;
  const char *workspace_id;
  const char *build_id;
  const char *resource_id; /* the resource hosting the agent, or NULL */
  bool succeeded;
} atr__agent_outcome_t;

/* agent.bundle_dir resolved: "auto" looks beside the running binary
 * (../agent-bundle, ../libexec/atrium/agent-bundle); "" gives NULL. */
char *atr__jobrun_agent_bundle(const char *opt);

/* For a start build: the version's agent, a new token (masked in the
 * job's log from now on). a stays off when the version has none. */
int atr__jobrun_agent_load(struct atr_prov_job *job, atr_db_t *db,
                           const char *version_id, atr__build_agent_t *a,
                           char **err);
void atr__jobrun_agent_free(atr__build_agent_t *a);
/* The request's agent field: NULL when off. */
const atr_prov_agent_t *atr__jobrun_agent_req(const atr__build_agent_t *a);
/* In the completion transaction: a succeeded start makes the agent rows
 * (revoking the others), a succeeded delete revokes every agent. */
int atr__jobrun_agent_write(atr_db_t *db, const atr__build_agent_t *a,
                            const atr__agent_outcome_t *o, char **err);
/* Before a stop or delete applies: ask the live agent to shut down, wait
 * for it (its shutdown script timeout + 10 s at most; cancel ends the
 * wait), then revoke its token (not when the build was canceled: nothing
 * is applied then). Problems are logged, never fatal. */
void atr__jobrun_agent_stop(struct atr_prov_job *job, const char *workspace_id);
/* After the job ended: tell the servers holding sessions of agents this
 * job revoked. */
void atr__jobrun_agent_announce(struct atr_prov_job *job,
                                const char *workspace_id);

#endif
