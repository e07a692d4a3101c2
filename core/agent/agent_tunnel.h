/* core/agent/agent_tunnel.h — the agent's end of tunnels
 * (docs/design/connect.md §1, §4): an open event from the events stream
 * becomes a local socket — a TCP connection the agent dials, or one end
 * of a socketpair whose other end a kind handler (ssh, pty) serves — and
 * a stream POST /api/v2/workspaceagents/me/tunnels/{id} in the session;
 * the two are spliced both ways with half-close and flow control.
 *
 * Kinds: "tcp" is built in; others are registered by the agent's core
 * (agent_tunnels_register), "ssh" and "pty" in the agent. An event whose
 * kind has no handler is refused with an atrium-tunnel-error.
 *
 * Threads: the loop's thread only. Memory: the set owns its tunnels;
 * events and manifests are borrowed for the call.
 */
#ifndef ATRIUM_AGENT_TUNNEL_H
#define ATRIUM_AGENT_TUNNEL_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "agent_conn.h"

#define AGENT_TUNNELS_MAX 256    /* tunnels open at once */
#define AGENT_TUNNEL_KINDS_MAX 8 /* registered kinds */
#define AGENT_TUNNEL_ERROR_HEADER "atrium-tunnel-error"

typedef struct agent_tunnels agent_tunnels_t;

/* A kind's handler: serve fd (a connected AF_UNIX stream socket; the
 * handler takes it and closes it itself, even when it fails) for the
 * open event `open` (borrowed: the fields after "kind", checked by
 * agent_tunnels_check). 0, or -1 and *err (one line, caller frees), which
 * the user sees in the tunnel's error. */
typedef int (*agent_tunnel_kind_fn)(void *ud, int fd, const json_t *open,
                                    char **err);

/* An open event, checked. */
typedef struct agent_tunnel_open {
  char id[37];    /* "" when the event had no valid id: nothing to answer */
  char kind[17];  /* "tcp", "ssh", "pty", or another registered kind */
  char host[256]; /* tcp: where to dial ("127.0.0.1" unless given) */
  int port;       /* tcp: 1-65535 */
} agent_tunnel_open_t;

/* conn may be NULL (the checks alone, for tests). */
agent_tunnels_t *agent_tunnels_new(uv_loop_t *loop, agent_conn_t *conn);
/* Serve kind (1-16 of a-z 0-9 -, not "tcp") with fn from now on; the
 * same kind again replaces its handler. 0, ATR_EINVAL, ATR_ERANGE (full). */
int agent_tunnels_register(agent_tunnels_t *t, const char *kind,
                           agent_tunnel_kind_fn fn, void *ud);
/* The hosts tcp tunnels may dial besides 127.0.0.1: those the url of an
 * app in the manifest names (its "apps" array; NULL: none). Called on
 * every manifest. */
void agent_tunnels_set_apps(agent_tunnels_t *t, const json_t *apps);
/* Check an open event: id a UUID, a kind served here, tcp's port and
 * host, pty's reconnect, width, height and command. 0, or ATR_EINVAL
 * with *err (one line naming the field; caller frees); out->id is set
 * whenever the id itself was valid. */
int agent_tunnels_check(const agent_tunnels_t *t, const json_t *ev,
                        agent_tunnel_open_t *out, char **err);
/* An open event ({"type":"open",...}): check it, make the local end, then
 * open the stream (or send the error). Returns at once. */
void agent_tunnels_open(agent_tunnels_t *t, const json_t *ev);
/* Tunnels open now; bytes relayed (to_user: local socket -> server,
 * from_user: server -> local socket) since the last call, reset by it. */
int agent_tunnels_count(const agent_tunnels_t *t);
void agent_tunnels_take_bytes(agent_tunnels_t *t, uint64_t *to_user,
                              uint64_t *from_user);
/* End every tunnel (streams reset, sockets closed) and open no more;
 * done(ud) runs once their handles are closed (at once when none are). */
void agent_tunnels_close(agent_tunnels_t *t, void (*done)(void *), void *ud);
/* After close's done (or when nothing was ever opened). */
void agent_tunnels_free(agent_tunnels_t *t);

#endif
