/* core/domain/builds_make.h — writing a build: the one place a build (and
 * a new workspace with its first build) is made, for atr_workspace_create
 * and atr_build_create. Not for callers outside the domain.
 *
 * A build is written with its job and parameter values in one
 * transaction, after the values were checked against the version's
 * schema and the last build's values and the deployment's and the
 * template's policies allowed them; a refused build writes nothing. The
 * job is announced after the commit.
 *
 * Threads: any; each call opens its own connection.
 */
#ifndef ATRIUM_CORE_BUILDS_MAKE_H
#define ATRIUM_CORE_BUILDS_MAKE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "db.h"
#include "domain.h"
#include "manifest.h"
#include "policy.h"

typedef struct atr__new_build {
  /* in */
  const char *workspace_id; /* "" for a new workspace: made here */
  const char *owner_id, *org_id, *template_id, *version_id;
  const char *ws_name;
  bool has_ttl;
  int64_t ttl;
  const char *transition;
  const char *initiator_id;
  json_t *values; /* name → value (borrowed) */
  bool orphan;
  /* out */
  char new_workspace_id[37];
  char build_id[37];
  char job_id[37];
  int64_t number;
  /* The Workspace (a new one) or WorkspaceBuild, read in the transaction:
   * its job as created, pending. */
  json_t *answer;
  json_t *decision; /* the policies' (atr_decision_to_json), when noteworthy */
  atr_fault_t refusal; /* why the build was refused (rolled back) */
} atr__new_build_t;

/* Make the build nb describes, record the policies' decision and announce
 * the job; nb->answer gets what was made (with the policies' warnings).
 * Returns 0, or the code of the refusal copied into fault. The caller
 * checked permission and frees nb->answer and nb->decision. */
int atr__build_make(const atr_domain_t *dom, const atr_actor_t *actor,
                    atr__new_build_t *nb, atr_fault_t *fault);

/* The policies for a build: the deployment's and the version's own on
 * the workspace_create or build hook. A deny refuses (nb->refusal);
 * values a policy set replace *resolved after they pass the schema;
 * nb->decision gets a noteworthy decision. */
int atr__build_policies(atr_db_t *db, atr__new_build_t *nb,
                        const atr_manifest_t *m, json_t *previous,
                        json_t **resolved, char **err);

#endif
