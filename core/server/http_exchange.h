/* core/server/http_exchange.h — what a handler may do with its exchange.
 *
 * host.c points host->http_respond and host->http_header at these; the HTTP
 * layer (core/server/http_handle.c) defines them, because only it knows
 * what an atr_http_exchange_t is. Kept in their own header so host.c needs
 * nothing else from http.c.
 *
 * Threads: called by route handlers on the HTTP worker thread that serves
 * the exchange; the exchange is valid only during the handler's call,
 * except a stream the handler detached (atr__http_stream_detach): that one
 * lives until its step says it is done, and its step runs on a pump thread
 * (never two steps of one stream at once).
 */
#ifndef ATRIUM_CORE_HTTP_EXCHANGE_H
#define ATRIUM_CORE_HTTP_EXCHANGE_H

#include <stdbool.h>
#include <stddef.h>

#include "atrium/host.h"

/* Send the whole response (body copied). 0, or ATR_EINVAL when the exchange
 * was already answered. */
int atr__http_respond(atr_http_exchange_t *x, int status,
                      const char *content_type, const char *body,
                      size_t body_len);
/* A streamed answer (server-sent events): the headers now, with
 * Connection: close and no length; then any number of writes. Write
 * fails with ATR_EIO once the client has gone, or has let more than 1 MiB
 * of output pile up unread. Writes before a detach go out when the
 * handler returns. */
int atr__http_stream_begin(atr_http_exchange_t *x, int status,
                           const char *content_type);
int atr__http_stream_write(atr_http_exchange_t *x, const void *data,
                           size_t len);
/* What a stream step returns. */
typedef enum atr_http_step {
  ATR_HTTP_STEP_WAIT = 0,  /* call again when woken or after tick_ms */
  ATR_HTTP_STEP_AGAIN = 1, /* more to send now: call again soon */
  ATR_HTTP_STEP_DONE = 2,  /* the stream is over: close the connection */
} atr_http_step_t;
typedef int (*atr_http_step_fn)(atr_http_exchange_t *x, void *ud);
/* Hand a begun stream to the server and return from the handler: no
 * thread waits for it. step(x, ud) runs on a pump thread at once, then
 * whenever the server is woken (atr_http_config_t.wait_change saw a
 * change), when queued output drained, and at least every tick_ms; it
 * writes with atr__http_stream_write and must not block for long (it
 * shares the pump with every other stream). free_fn(ud) runs once when
 * the stream ends: its step said DONE, the client went, or the server
 * drains. 0, or ATR_EINVAL when no stream was begun. */
int atr__http_stream_detach(atr_http_exchange_t *x, atr_http_step_fn step,
                            void (*free_fn)(void *), void *ud, int64_t tick_ms);
/* Room for more output now (less than half the cap is queued); when
 * false, return ATR_HTTP_STEP_WAIT: the step runs again once it drained. */
bool atr__http_stream_writable(const atr_http_exchange_t *x);
/* The server is draining for shutdown: long streams should end. */
bool atr__http_draining(const atr_http_exchange_t *x);
/* A request header's value by case-insensitive name, or NULL. */
const char *atr__http_header(atr_http_exchange_t *x, const char *name);
/* The request target as the client sent it, undecoded ("/p?q"); apps
 * forward it (docs/design/connect.md §2), so it must not be re-encoded
 * from the decoded path. */
const char *atr__http_target(atr_http_exchange_t *x);
/* The i-th request header (0, 1, ...) in the order received: true with
 * *name and *value set (value "" when empty), false past the last. */
bool atr__http_header_at(atr_http_exchange_t *x, size_t i, const char **name,
                         const char **value);
/* Queue a response header for the next atr__http_respond (at most 8; the
 * strings are copied). */
void atr__http_add_header(atr_http_exchange_t *x, const char *name,
                          const char *value);

/* ---- sessions: an upgraded connection (docs/design/agent.md §1) --------
 *
 * An agent keeps one WebSocket (subprotocol "atrium-agent.h2") that
 * carries one HTTP/2 connection, agent = client. Every request the agent
 * sends inside it is an ordinary request: it goes through the same
 * dispatch as plain HTTP/1.1 (on the agents lane), and the handler finds
 * the session's ud with atr__http_session_ud(). One stream is kept by the
 * transport itself: a GET of ATR_HTTP_SESSION_EVENTS_SUFFIX (any path
 * ending so) is answered 200 with application/x-ndjson and stays open;
 * atr__http_session_post() writes lines to it.
 */
#define ATR_HTTP_SESSION_PROTOCOL "atrium-agent.h2"
#define ATR_HTTP_SESSION_EVENTS_SUFFIX "/me/events"

typedef struct atr_http_session_ops {
  uint32_t struct_size;
  /* The session ended: the peer closed, it went silent past the
   * heartbeat timeout, it was too slow, a newer session with the same key
   * replaced it, or the server drains. reason: "closed", "timeout",
   * "too_slow", "protocol", "replaced", "draining", or what
   * atr_http_session_close() said ("revoked"). Runs on a worker thread of
   * the agents lane (it may use the database), once no request of the
   * session is left in a handler, and then free_ud(ud); sessions still
   * open when the server stops end on the thread stopping it. A replaced
   * session's closed() may run after its successor's upgrade. */
  void (*closed)(void *ud, const char *reason);
  void (*free_ud)(void *ud);
} atr_http_session_ops_t;

/* From a handler of a GET with Upgrade: websocket: check the handshake
 * (version 13, a key, the subprotocol offered), answer 101 and turn the
 * connection into a session keyed by key (an agent id: a second session
 * with the same key replaces the first). ops and ud (owned by the session
 * from now on, also on failure) come back in closed(). 0; ATR_EINVAL when
 * the request is no valid upgrade (the handler answered nothing: answer
 * 400/426 yourself). */
int atr__http_upgrade(atr_http_exchange_t *x, const char *key,
                      const atr_http_session_ops_t *ops, void *ud);
/* Whether the request asks for a WebSocket upgrade. */
bool atr__http_wants_upgrade(atr_http_exchange_t *x);
/* The ud of the session the request came in, or NULL for a request on a
 * plain connection. Inside a session answers are whole:
 * atr__http_stream_begin refuses (ATR_EINVAL). */
void *atr__http_session_ud(atr_http_exchange_t *x);

/* Posting to a session from outside a handler: atr_http_session_post()
 * in http.h. */

/* ---- tunnels (docs/design/connect.md) -----------------------------------
 *
 * A user's connection spliced with a stream the agent opens in its
 * session. The handler (a worker) authenticates and authorizes, then calls
 * atr__http_tunnel(): the loop owns the connection from then on, posts
 * the open event to the agent, waits for its stream, answers the user
 * (101, or 502 when the tunnel could not be made) and splices.
 */
typedef enum atr_http_tunnel_mode {
  /* 101 with Upgrade: atrium-tunnel, then raw bytes both ways */
  ATR_HTTP_TUNNEL_RAW = 0,
  /* the WebSocket handshake's 101; messages' payloads go to the agent,
   * the agent's bytes come back as binary messages */
  ATR_HTTP_TUNNEL_WS = 1,
  /* no answer of ours: prefix, the request's unread body and all the
   * client sends go to the agent; its bytes are the answer (apps) */
  ATR_HTTP_TUNNEL_HTTP = 2,
} atr_http_tunnel_mode_t;

/* How a tunnel ended, for ended(). */
typedef struct atr_http_tunnel_end {
  uint32_t struct_size;
  /* "closed", "refused" (error says why), "timeout" (the agent did not
   * open its stream in time), "agent_gone" (its session ended),
   * "no_agent" (no session of it on this server), "draining" */
  const char *reason;
  const char *error; /* the agent's atrium-tunnel-error, or NULL */
  bool opened;       /* the splice began (the user got its 101 / prefix) */
  uint64_t bytes_to_agent, bytes_from_agent;
  int64_t duration_ms; /* from the call to the end */
} atr_http_tunnel_end_t;

typedef struct atr_http_tunnel_ops {
  uint32_t struct_size;
  /* Once, on a worker thread (it may use the database), then free_ud. */
  void (*ended)(void *ud, const atr_http_tunnel_end_t *end);
  void (*free_ud)(void *ud);
} atr_http_tunnel_ops_t;

typedef struct atr_http_tunnel_req {
  uint32_t struct_size;
  const char *agent_key; /* the agent's session key: its id */
  const char *kind;      /* metrics label: "ssh", "tcp", "pty", "app" */
  /* The open event's fields besides type and id, a JSON object:
   * {"kind":"tcp","port":8080} (copied) */
  const char *open;
  atr_http_tunnel_mode_t mode;
  const char *prefix; /* HTTP mode: the rewritten request head (copied) */
  size_t prefix_len;
  int64_t open_timeout_ms; /* 0: 10 s */
} atr_http_tunnel_req_t;

/* From a handler: open a tunnel and return at once. 0: the loop owns the
 * connection and ud (ops->ended runs once, then ops->free_ud); the handler
 * answers nothing. ATR_ENOENT: no session of that agent on this
 * server; ATR_EINVAL: t is not valid (WS mode without a valid
 * handshake); then nothing was taken and the handler answers. */
int atr__http_tunnel(atr_http_exchange_t *x, const atr_http_tunnel_req_t *t,
                     const atr_http_tunnel_ops_t *ops, void *ud);
/* Whether the request's body was left on the connection (paths under
 * "/@": HTTP-mode tunnels stream it). A handler that answers such a
 * request itself makes the connection close after the answer. */
bool atr__http_body_unread(atr_http_exchange_t *x);

#endif
