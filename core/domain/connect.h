/* core/domain/connect.h — getting into a workspace (docs/design/connect.md
 * §3, §5): who may open a tunnel to a workspace's agent, the audit trail
 * of every tunnel, and the SSH host key the workspace's agent presents.
 *
 * Who may: the workspace's owner, and site owners (as Coder's owner role
 * may ssh into any workspace). Nobody else, whatever their other roles
 * (a template admin or organization admin who may read the workspace may
 * not get into it): 403, audited as denied. A workspace agent's token,
 * or the system, is never let in.
 *
 * Audit (action "connect", resource the workspace, additional_fields
 * "phase"): "open" when a tunnel is authorized (kind, agent, port,
 * connection_id), "end" when it is over (the same connection_id, reason,
 * duration and bytes each way), and an "open" with status 403 for a
 * refusal. No entry ever holds a host key.
 *
 * Host keys: one ed25519 key per workspace, made the first time one of its
 * agents asks for its manifest and kept for the workspace's life (the
 * same across stops, starts and rebuilds), sealed with the database
 * encryption key when one is configured. It leaves the database only in
 * the agent's manifest.
 *
 * Threads: any; each call opens its own connection (the host key
 * functions use the caller's). Memory: an atr_connect_t is the caller's,
 * plain data with no pointers, so it may outlive the request that filled
 * it (the tunnel's end is recorded on another thread, later).
 */
#ifndef ATRIUM_CORE_CONNECT_H
#define ATRIUM_CORE_CONNECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain.h"

#define ATR_CONNECT_PORT_MAX 65535

/* One tunnel: what was asked (set by the caller), what was found and who
 * asked (set by atr_connect_authorize). */
typedef struct atr_connect {
  /* asked */
  char kind[8];       /* "ssh", "tcp" or "pty" */
  int port;           /* tcp: 1–65535; else 0 */
  char reconnect[37]; /* pty: the reconnecting terminal's UUID; else "" */
  /* found */
  char id[37]; /* this connection's: its open and end entries name it */
  char agent_id[37], agent_name[65];
  char workspace_id[37], workspace_name[65];
  char owner_id[37], owner_name[65];
  char org_id[37];
  char status[16];    /* the agent's (atr_agent_status): "connected" */
  char lifecycle[24]; /* the agent's lifecycle state: "ready", ... */
  int64_t opened_at_us;
  /* who asked, copied: the actor's origin pointers are NULL here */
  atr_actor_t actor;
  char ip[64], user_agent[256], request_id[37];
} atr_connect_t;

/* May the actor open c->kind to the agent agent_id? 0: yes, c filled and
 * the "open" entry recorded. Otherwise a fault:
 * - ATR_EINVAL (400): c asks for something invalid (fields "kind",
 *   "port", "reconnect");
 * - ATR_ENOENT (404): no such agent, or its workspace was deleted;
 * - ATR_EPERM (403): neither the workspace's owner nor a site owner
 *   (audited as denied);
 * - ATR_EBUSY (409): the workspace is not running ("The workspace
 *   alice/dev is not running (status: stopped)."), the agent is of an
 *   earlier build of a workspace built again since ("The agent is of an
 *   earlier build of workspace alice/dev."), or the agent is not
 *   connected ("The agent of workspace alice/dev is not connected
 *   (status: disconnected).").
 * Lifecycle is not checked: users may get in while the startup script
 * runs, as in Coder. */
int atr_connect_authorize(const atr_domain_t *dom, const atr_actor_t *actor,
                          const char *agent_id, atr_connect_t *c,
                          atr_fault_t *fault);

/* How a tunnel ended (the server's atr_http_tunnel_end_t, in domain
 * terms). */
typedef struct atr_connect_end {
  const char *reason; /* "closed", "refused", "timeout", "agent_gone",
                         "no_agent", "draining", ... */
  const char *error;  /* the agent's refusal, or NULL */
  bool opened;        /* the splice began */
  uint64_t bytes_to_agent, bytes_from_agent;
  int64_t duration_ms;
} atr_connect_end_t;

/* Record the "end" entry of a tunnel atr_connect_authorize let open:
 * status 200 when it opened, else 502. Never fails (audit.h). */
void atr_connect_ended(const atr_domain_t *dom, const atr_connect_t *c,
                       const atr_connect_end_t *end);

/* ---- host keys (inside the domain: the agent's manifest) ---------------- */

/* The workspace's SSH host key in OpenSSH's format ("-----BEGIN OPENSSH
 * PRIVATE KEY-----", unencrypted; libssh and OpenSSH read it), made and
 * stored now if it has none: *pem malloc'd; the
 * caller cleanses (OPENSSL_cleanse) and frees it. Runs on the caller's
 * connection, outside or inside a transaction. */
int atr__connect_host_key(atr_db_t *db, const char *workspace_id, char **pem,
                          char **err);
/* The workspace's public host key ("ssh-ed25519 AAAA…") and fingerprint
 * ("SHA256:…", as ssh-keygen -l prints it) into the buffers; ATR_ENOENT
 * when it has none yet. */
int atr__connect_host_public(atr_db_t *db, const char *workspace_id,
                             char public_key[128], char fingerprint[64],
                             char **err);

#endif
