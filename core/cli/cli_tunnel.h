/* core/cli/cli_tunnel.h — the user's end of a tunnel into a workspace
 * (docs/design/connect.md §2, RAW mode), which `atrium ssh` and `atrium
 * port-forward` (cli_connect.h) carry their bytes over.
 *
 * A workspace is named "NAME" (the signed-in user's), "OWNER/NAME", either
 * with ".AGENT" after it when the build has several agents. Resolving it
 * reads the workspace's latest build (resources[].agents[]) once; opening
 * a tunnel sends
 *
 *   GET /api/v2/workspaceagents/{id}/tunnel?kind=ssh|tcp&port=N
 *   Connection: Upgrade / Upgrade: atrium-tunnel / Atrium-Session-Token
 *
 * and expects 101; the bytes after the answer's head are the tunnel's.
 *
 * libcurl makes the connection (CURLOPT_CONNECT_ONLY: the same DNS,
 * timeouts and TLS checks as every other command) and the request and the
 * answer's head go through curl_easy_send/recv. Then, over http:, the
 * socket itself is handed over: one fd, no copy, and shutdown(SHUT_WR) is
 * a real half-close. Over https: a thread pumps between curl (TLS) and one
 * end of a socketpair, and the caller gets the other end; its half-close
 * reaches the server as a TCP FIN after the TLS data (no close_notify).
 *
 * The token is never printed; an answer other than 101 is printed as the
 * server's JSON message. Threads: resolve and open from one thread at a
 * time per atr__tunnel_target_t (port-forward opens from its connection
 * threads, each with its own curl handle); the https pump thread ends when
 * both directions ended or either side failed. */
#ifndef ATRIUM_CORE_CLI_TUNNEL_H
#define ATRIUM_CORE_CLI_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>

#include "cli_args.h"

#define ATR__TUNNEL_FIELD_MAX 256

/* What a tunnel is opened to: the server, the token and the agent. */
typedef struct atr__tunnel_target {
  char url[1024]; /* the server's base URL, no trailing slash */
  char *token;    /* owned; wiped by atr__tunnel_target_clear */
  char agent_id[64];
  char owner[ATR__TUNNEL_FIELD_MAX];     /* the workspace's owner's name */
  char workspace[ATR__TUNNEL_FIELD_MAX]; /* its name */
  char workspace_id[64];
  char agent[ATR__TUNNEL_FIELD_MAX]; /* the agent's name */
} atr__tunnel_target_t;

/* Split "OWNER/NAME.AGENT" (OWNER/ and .AGENT optional) into its parts
 * (owner "me" when not given, agent "" when not given). 0, or -1 with a
 * message naming ref in err. Pure: for the unit tests. */
int atr__tunnel_parse_ref(const char *ref, char *owner, char *name, char *agent,
                          size_t size, char *err, size_t err_size);

/* cli->client (atr__cli_connect) and the workspace ref's agent, which must
 * be connected: 0, or 1 after saying on stderr what is wrong (no such
 * workspace, it is stopped, its agent is not connected: with the state
 * and what to run), or 2 for a ref that is not a workspace. */
int atr__tunnel_resolve(atr__cli_t *cli, const char *ref,
                        atr__tunnel_target_t *t);
void atr__tunnel_target_clear(atr__tunnel_target_t *t);

/* Open a tunnel of kind "ssh" (port 0) or "tcp" (port 1–65535). 0 and *fd
 * (owned by the caller, closed with atr__tunnel_close: a stream socket,
 * blocking), or 1 after printing
 * "<what>: …" on stderr (the server's message when it answered other than
 * 101). */
int atr__tunnel_open(const atr__tunnel_target_t *t, const char *what,
                     const char *kind, int port, int *fd);

/* Close a tunnel's fd (not shutdown: both ways) and, over https, wait
 * for its pump thread to end. Every fd atr__tunnel_open gave must end
 * here. */
void atr__tunnel_close(int fd);

/* Copy bytes both ways between a and b until both directions ended: EOF
 * on one side is shutdown(SHUT_WR) on the other. Blocks; uses poll(2).
 * *stop (may be NULL) set non-zero ends it within 200 ms. 0 when both
 * directions ended with EOF, -1 on an error (errno's reason in neither
 * case printed). Does not close a or b. */
int atr__tunnel_pump(int a, int b, volatile int *stop);
/* The same with side a split in two fds (stdin and stdout): a_wr is
 * closed (not shut down) when it is not a socket. */
int atr__tunnel_pump2(int a_rd, int a_wr, int b, volatile int *stop);

#endif
