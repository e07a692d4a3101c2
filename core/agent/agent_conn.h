/* core/agent/agent_conn.h — the agent's end of its session with the
 * server (docs/design/agent.md §1): dial the access URL, upgrade to a
 * WebSocket with subprotocol "atrium-agent.h2" (the token in
 * Atrium-Session-Token), run an HTTP/2 client session inside it (nghttp2
 * over wslay), send requests as h2 streams, keep the events stream
 * (GET /api/v2/workspaceagents/me/events) open and hand its lines up, PING
 * every heartbeat and give up after 3 silent heartbeats. After any failure
 * it dials again after a random wait in [0, b], b doubling from
 * backoff_min_ms to backoff_max_ms (60 s after a 401), reset once a
 * session lived 30 s.
 *
 * Many connections may share one loop (the load bench runs thousands).
 *
 * Threads: everything runs on the loop's thread; no call is thread-safe.
 * Memory: the connection copies its options; bodies handed to callbacks
 * are valid only during the call.
 */
#ifndef ATRIUM_AGENT_CONN_H
#define ATRIUM_AGENT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct agent_conn agent_conn_t;

typedef struct agent_conn_opts {
  const char *url;        /* the access URL: http://host:port[/prefix] */
  const char *token;      /* the agent token (a secret: never logged) */
  const char *version;    /* the API version it speaks, sent as ?version=
                             and in User-Agent; NULL: "1.0" */
  const char *bind_ip;    /* local address to bind before dialing; NULL: any */
  int64_t heartbeat_ms;   /* 0: 15000 */
  int64_t backoff_min_ms; /* 0: 500 */
  int64_t backoff_max_ms; /* 0: 10000 */
} agent_conn_opts_t;

typedef struct agent_conn_cbs {
  /* A session is up (after every reconnect): resend what was not acked. */
  void (*on_up)(void *ud);
  /* The session is gone, or a dial failed before one was up. http_status:
   * the status of a refused upgrade (401: the token is not (or no longer)
   * valid; 503: the server drains), else 0; reason for the log (never the
   * token). The connection dials again by itself unless stopped. */
  void (*on_down)(void *ud, int http_status, const char *reason);
  /* One line of the events stream, without its newline. */
  void (*on_event)(void *ud, const char *line, size_t len);
} agent_conn_cbs_t;

/* The answer to a request: status 0 when the session was lost before an
 * answer came (the request may or may not have been handled). */
typedef void (*agent_conn_reply_fn)(void *ud, int status, const char *body,
                                    size_t len);

int agent_conn_new(uv_loop_t *loop, const agent_conn_opts_t *opts,
                   const agent_conn_cbs_t *cbs, void *ud, agent_conn_t **out,
                   char **err);
/* Dial now (and again after every failure until agent_conn_stop). */
void agent_conn_start(agent_conn_t *c);
/* Whether a session is up. */
bool agent_conn_up(const agent_conn_t *c);
/* Send a request on the session: path is absolute ("/api/v2/..."), body
 * JSON or NULL. 0, or ATR_EAGAIN when no session is up (reply is not
 * called). At most 16 requests are in flight; more wait in order. */
int agent_conn_request(agent_conn_t *c, const char *method, const char *path,
                       const char *json_body, agent_conn_reply_fn reply,
                       void *reply_ud);
/* ---- streams (tunnels, docs/design/connect.md §1) --------------------
 *
 * A long POST whose request body the caller feeds as its bytes come and
 * whose answer arrives as it comes, with HTTP/2 flow control both ways:
 *
 *  - sending: agent_stream_write queues bytes (copied) for the request
 *    body; once AGENT_STREAM_MARK bytes wait the caller stops reading its
 *    source, and on_room says when to go on. agent_stream_end sends
 *    END_STREAM after what is queued.
 *  - receiving: on_data hands over the answer's bytes; the stream's
 *    window (64 KiB) opens again only by agent_stream_consume, which the
 *    caller calls once the bytes were written on, so the server can never
 *    get more than one window ahead of the caller's socket.
 *
 * Streams do not count against the 16 requests in flight; the server's
 * SETTINGS_MAX_CONCURRENT_STREAMS bounds them (more wait in nghttp2). */

typedef struct agent_stream agent_stream_t;

#define AGENT_STREAM_MARK ((size_t)64 << 10)

typedef struct agent_stream_cbs {
  /* The answer's headers: its status. */
  void (*on_status)(void *ud, int status);
  /* Bytes of the answer; consume them once delivered. */
  void (*on_data)(void *ud, const char *data, size_t len);
  /* The answer ended (END_STREAM): the far side's EOF. */
  void (*on_end)(void *ud);
  /* Fewer than AGENT_STREAM_MARK bytes wait to be sent again. */
  void (*on_room)(void *ud);
  /* The stream is over: both ways ended (error false), or it was reset
   * or the session was lost (error true). The handle is gone after this
   * call; bytes not consumed yet no longer need to be. */
  void (*on_close)(void *ud, bool error);
} agent_stream_cbs_t;

typedef struct agent_conn_header {
  const char *name, *value; /* lower-case name; value one line */
} agent_conn_header_t;

/* Open POST path (absolute, "/api/v2/...") with hdrs as extra headers.
 * With end the headers end the request (END_STREAM, no body): no
 * callbacks run, and *out (which may be NULL then) is set to NULL.
 * 0, ATR_EAGAIN when no session is up, ATR_ENOMEM. */
int agent_conn_stream_open(agent_conn_t *c, const char *path,
                           const agent_conn_header_t *hdrs, size_t nhdrs,
                           bool end, const agent_stream_cbs_t *cbs, void *ud,
                           agent_stream_t **out);
/* Queue bytes of the request body (copied). 0, ATR_EINVAL after end or
 * reset, ATR_ENOMEM. */
int agent_stream_write(agent_stream_t *s, const char *data, size_t len);
/* Bytes queued and not yet handed to the session. */
size_t agent_stream_pending(const agent_stream_t *s);
/* END_STREAM once the queued bytes are sent. */
void agent_stream_end(agent_stream_t *s);
/* n bytes of on_data were delivered: the server may send as many more. */
void agent_stream_consume(agent_stream_t *s, size_t n);
/* RST_STREAM (CANCEL); no callback runs after this, and the handle must
 * not be used again. */
void agent_stream_reset(agent_stream_t *s);
/* How many streams may be open at once without making requests wait for
 * a stream: the server's SETTINGS_MAX_CONCURRENT_STREAMS less the events
 * stream and the 16 requests in flight; INT32_MAX without a session. */
int32_t agent_conn_stream_limit(const agent_conn_t *c);

/* Close the session (WebSocket close 1000, GOAWAY), dial no more; pending
 * replies get status 0. done(ud) runs once every handle is closed, after
 * which agent_conn_free may be called. */
void agent_conn_stop(agent_conn_t *c, void (*done)(void *ud), void *ud);
void agent_conn_free(agent_conn_t *c);

/* For the bench and logs: the last PING round trip in microseconds (0:
 * none yet), sessions opened, and sessions lost without being asked to. */
int64_t agent_conn_ping_us(const agent_conn_t *c);
uint64_t agent_conn_sessions(const agent_conn_t *c);
uint64_t agent_conn_drops(const agent_conn_t *c);

#endif
