/* core/server/http_internal.h — the pieces of the HTTP front shared by its
 * files (docs/architecture.md, "HTTP front and long-lived streams").
 *
 *  http_parse.c   bytes → one request (http-parser), no sockets: fuzzable
 *  http_loop.c    the event loop thread: every socket, timer and write
 *  http_pool.c    request workers and the /readyz probe lane
 *  http_handle.c  one request → one serialized answer (any thread)
 *  http_stream.c  detached streams and the pump that steps them
 *  http_ws.c      the WebSocket opening handshake (sessions)
 *  http_h2.c      a session's protocol: WebSocket frames (wslay) carrying
 *                 HTTP/2 (nghttp2), no sockets: fuzzable
 *  http_session.c sessions on the loop: registry, reads, writes,
 *                 heartbeats, backpressure, their end
 *  http_tunnel.c  tunnels: a user's connection spliced with a stream the
 *                 agent opens in its session (docs/design/connect.md)
 *  http.c         start, drain, stop
 *
 * Ownership and threads: a connection (http_conn_t) belongs to the loop
 * thread; only the loop reads its socket state, counts its references and
 * frees it. Other threads reach a connection only by posting a message
 * (http_post) that carries a reference the loop drops after handling it,
 * and by reading its atomics (gone, queued). An exchange (one request being
 * answered) belongs to the thread running its handler, then, once detached
 * as a stream, to the pump; the loop frees it when the stream's end message
 * arrives. A session (http_up_t, an upgraded connection) belongs to the
 * loop thread like its connection; other threads find it only by key in
 * the registry (srv->sessions_mu) and reach it by posting.
 */
#ifndef ATRIUM_CORE_HTTP_INTERNAL_H
#define ATRIUM_CORE_HTTP_INTERNAL_H

#include <http_parser.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "http.h"
#include "metrics.h"

#define HTTP_MAX_HEADERS 100
/* A stream whose client reads slower than this much queued output is cut
 * off; steps see "not writable" from half of it. */
#define HTTP_STREAM_QUEUE_CAP ((size_t)1 << 20)
#define HTTP_READ_CHUNK 65536

/* ---- parsing (http_parse.c) ---------------------------------------------- */

typedef struct http_hdr {
  char *name, *value;
  size_t name_len, value_len;
} http_hdr_t;

typedef struct http_req {
  char method[16];
  char *url; /* the raw request target */
  size_t url_len;
  http_hdr_t hdr[HTTP_MAX_HEADERS];
  int nhdr;
  char *body;
  size_t body_len, body_cap;
  bool keep_alive;
  bool head;         /* HEAD: the answer has no body */
  bool body_unread;  /* "/@" paths: handed over at the end of the head; the
                        body stays on the connection (HTTP-mode tunnels) */
  int32_t stream_id; /* 0: a plain connection; else its h2 stream */
  void *session_ud;  /* the session's ud for a request inside one */
  size_t hdr_bytes;  /* h2: names and values so far (max_header) */
} http_req_t;

typedef struct http_parse {
  http_parser p;
  http_req_t *req; /* being read; NULL before its first byte */
  uint64_t max_header, max_body;
  size_t header_bytes;
  bool in_value;      /* the last header callback was a value */
  bool headers_done;  /* now reading the body */
  bool complete;      /* a whole request is ready: http_parse_take */
  bool want_continue; /* Expect: 100-continue, not answered yet */
  bool early;         /* complete at the end of the head (body_unread) */
  int error_status;   /* 400, 413, 431 or 501: answer and close */
  const char *error_message, *error_detail;
} http_parse_t;

void http_parse_init(http_parse_t *ps, uint64_t max_header, uint64_t max_body);
/* Feed bytes; returns how many were used (fewer than len once a request
 * is complete or on an error: the rest belongs to the next request). */
size_t http_parse_feed(http_parse_t *ps, const char *data, size_t len);
/* The complete request (caller frees with http_req_free); ready for the
 * next one. */
http_req_t *http_parse_take(http_parse_t *ps);
void http_parse_free(http_parse_t *ps);
void http_req_free(http_req_t *r);
const char *http_req_header(const http_req_t *r, const char *name);

/* ---- the server ------------------------------------------------------------ */

typedef struct http_conn http_conn_t;
typedef struct http_msg http_msg_t;
typedef struct http_addr_count http_addr_count_t;

/* A lane of threads taking requests from one FIFO (http_pool.c). */
typedef struct http_job {
  struct http_job *next;
  http_req_t *req;
  http_conn_t *conn;       /* holds a reference */
  void (*call)(void *arg); /* instead of a request: run call(arg) */
  void *arg;
} http_job_t;

typedef struct http_lane {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  http_job_t *head, *tail;
  pthread_t *threads;
  int nthreads, started;
  bool stop;
  bool stopped; /* joined: calls run on the caller's thread */
  atr_http_server_t *srv;
} http_lane_t;

typedef struct http_pump http_pump_t;
typedef struct http_up http_up_t;
typedef struct http_tunnel http_tunnel_t;
#define HTTP_SESSION_BUCKETS 1024

struct atr_http_server {
  atr_http_config_t cfg;
  char *address;
  atomic_int in_flight;
  atomic_bool draining;
  atr_metric_t *requests_total;
  atr_metric_t *request_seconds;
  atr_metric_t *refused_total; /* {reason} */
  atr_metric_t *open_conns;    /* gauge, set by the loop thread */
  atr_metric_t *sessions_open; /* gauge, set by the loop thread */
  atr_metric_t *session_bytes; /* gauge: what nghttp2 holds, all sessions */
  atr_metric_t *ping_seconds;  /* histogram: PING round trips, sessions */
  /* loop thread: refusals since the last warning, per reason (see
     http_note_refused) */
  struct {
    uint64_t since_log;
    uint64_t last_log_ms;
    char last_ip[64];
  } refused[2];
  /* loop thread */
  uv_loop_t loop;
  uv_async_t inbox_async;
  uv_async_t stop_async;
  uv_tcp_t listeners[8];
  int nlisteners;
  pthread_t loop_thread;
  bool loop_started;
  char readbuf[HTTP_READ_CHUNK];
  http_conn_t *conns; /* every open connection (a list) */
  int nconns;
  http_addr_count_t **by_addr; /* open connections per client address */
  size_t by_addr_buckets;
  /* posted to the loop by any thread */
  pthread_mutex_t inbox_mu;
  http_msg_t *inbox_head, *inbox_tail;
  /* request lanes */
  http_lane_t workers;
  http_lane_t probe;
  http_lane_t agents; /* sessions and /api/v2/workspaceagents/me/ */
  http_pump_t *pump;
  bool stopping; /* loop thread: closing everything, no lingering */
  /* sessions by key: written by the loop, read by posters, under the lock */
  pthread_mutex_t sessions_mu;
  http_up_t **sessions;
  atomic_llong nsessions;
  atomic_ullong session_pauses; /* reads stopped at the lane cap (tests) */
  atomic_ullong tunnel_pauses;  /* users' reads stopped (tests) */
  atomic_llong session_mem;     /* bytes nghttp2 holds, all sessions */
  /* tunnels (http_tunnel.c) */
  atr_metric_t *tunnels_open;  /* gauge {kind} */
  atr_metric_t *tunnel_bytes;  /* counter {kind,direction} */
  atr_metric_t *tunnels_total; /* counter {kind,result} */
};

typedef enum http_conn_state {
  HTTP_CONN_IDLE = 0, /* between requests: idle_timeout */
  HTTP_CONN_HEADERS,  /* a request has begun: header_timeout */
  HTTP_CONN_BODY,     /* reading its body: header_timeout per read */
  HTTP_CONN_BUSY,     /* a handler has it; not reading */
  HTTP_CONN_STREAM,   /* a detached stream writes to it */
  HTTP_CONN_LINGER,   /* answered, closing: reading and dropping */
  HTTP_CONN_CLOSED,
  HTTP_CONN_UPGRADED, /* a session: c->up speaks WebSocket + HTTP/2 */
  HTTP_CONN_TUNNEL,   /* c->tun: waiting for the agent, then spliced */
} http_conn_state_t;

struct http_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  uv_shutdown_t shutdown;
  atr_http_server_t *srv;
  http_conn_t *prev, *next;
  http_parse_t parse;
  char *leftover; /* bytes after a complete request (pipelining) */
  size_t leftover_len;
  http_conn_state_t state;
  int refs;         /* loop thread only: 1 while open + one per holder */
  int open_handles; /* tcp and timer until their close callbacks ran */
  int writes;       /* uv_write requests in flight */
  bool close_after_write;
  uint64_t body_deadline; /* loop ms: the whole body by request_timeout */
  atomic_bool gone;       /* closing or closed: writers give up */
  atomic_size_t queued;   /* bytes posted and not yet written */
  struct atr_http_exchange *stream; /* the detached stream, loop's view */
  http_up_t *up;                    /* a session (HTTP_CONN_UPGRADED) */
  http_tunnel_t *tun;               /* a tunnel (HTTP_CONN_TUNNEL) */
  char ip[64];
};

typedef enum http_msg_kind {
  HTTP_MSG_WRITE = 0, /* write data */
  HTTP_MSG_DONE,      /* write data; the request is over: next or close */
  HTTP_MSG_STREAM,    /* the handler detached a stream (data: its head) */
  HTTP_MSG_END,       /* the stream ended: flush, close, free it */
  HTTP_MSG_UPGRADE,   /* write data (the 101), then become a session */
  HTTP_MSG_SESSION,   /* to the registry (no conn): event, close, drain */
  HTTP_MSG_TUNNEL,    /* the connection becomes a tunnel (msg->tunnel) */
} http_msg_kind_t;

/* What atr__http_upgrade hands the loop. */
typedef struct http_upgrade {
  char *key;
  atr_http_session_ops_t ops;
  void *ud;
} http_upgrade_t;

enum { HTTP_SESSION_EVENT = 1, HTTP_SESSION_CLOSE, HTTP_SESSION_DRAIN };

struct http_msg {
  http_msg_t *next;
  http_msg_kind_t kind;
  http_conn_t *conn;
  char *data;
  size_t len;
  bool close;
  struct atr_http_exchange *x; /* STREAM and END */
  int32_t stream_id;           /* DONE: the h2 stream it answers, or 0 */
  http_upgrade_t *upgrade;     /* UPGRADE */
  int op;                      /* SESSION: HTTP_SESSION_* */
  char *key, *reason;          /* SESSION (data: the event line) */
  http_tunnel_t *tunnel;       /* TUNNEL */
};

/* One request being answered; the opaque atr_http_exchange_t. */
struct atr_http_exchange {
  atr_http_server_t *srv;
  http_conn_t *conn; /* a reference, returned by the DONE/END message */
  http_req_t *req;
  char request_id[37];
  char ip[64];
  uint64_t started_ns;
  bool closing;   /* the server is draining: ask the client to reconnect */
  bool streaming; /* stream_begin sent the head */
  bool detached;
  int status; /* 0 until answered */
  char *extra[8][2];
  int nextra;
  char *out; /* the serialized answer until it is handed to the loop */
  size_t out_len, out_cap;
  http_upgrade_t *upgrade; /* atr__http_upgrade said yes (status 101) */
  http_tunnel_t *tunnel;   /* atr__http_tunnel said yes */
  /* for the access log and metrics */
  char *path;
  const char *route;
  char route_buf[128];
  char who[65];
  /* a detached stream (http_stream.c) */
  atr_http_step_fn step;
  void (*free_fn)(void *);
  void *ud;
  int64_t tick_ms;
  uint64_t due_ms;
  int sched;
  struct atr_http_exchange *all_prev, *all_next, *run_next;
};

/* http_loop.c */
int http_loop_start(atr_http_server_t *srv, char **err);
void http_loop_stop(atr_http_server_t *srv);
void http_loop_free(atr_http_server_t *srv);
/* Hand a message to the loop (any thread); it takes msg. */
void http_post(atr_http_server_t *srv, http_msg_t *msg);
uint64_t http_now_ms(void);
uint64_t http_now_ns(void);
/* The answer asks the client to close (draining, HTTP/1.0, no
 * keep-alive). */
bool http_closes(const atr_http_exchange_t *x);

/* Loop thread: for the session layer. */
void http_conn_write(http_conn_t *c, char *data, size_t len, size_t counted);
void http_conn_close(http_conn_t *c);
void http_conn_finish(http_conn_t *c); /* write what is queued, then close */
void http_conn_read(http_conn_t *c, bool on);
void http_conn_unref(http_conn_t *c);
/* Shut down writing once what is queued is written (half-close). */
void http_conn_shutdown(http_conn_t *c);

/* http_pool.c */
int http_lane_start(http_lane_t *lane, atr_http_server_t *srv, int n);
void http_lane_push(http_lane_t *lane, http_req_t *req, http_conn_t *conn);
/* Run call(arg) on a thread of the lane; once the lane is stopped, at
 * once on the caller's thread. */
void http_lane_call(http_lane_t *lane, void (*call)(void *), void *arg);
void http_lane_stop(http_lane_t *lane);
void http_lane_free(http_lane_t *lane); /* after the loop stopped */

/* http_handle.c: answer req (any thread) and hand the answer to the
 * loop; conn's reference goes with it. */
void http_handle(atr_http_server_t *srv, http_req_t *req, http_conn_t *conn,
                 const char *ip);
/* The route label and log line of a finished exchange. */
void http_account(atr_http_server_t *srv, atr_http_exchange_t *x);
void http_exchange_free(atr_http_exchange_t *x);
/* Serialize a JSON error answer into x->out. */
void http_respond_error(atr_http_exchange_t *x, int status, const char *message,
                        const char *detail);
/* The answer to a request the parser refused (ps->error_status), made
 * on the loop, logged and counted; malloc'd bytes. */
char *http_refuse(atr_http_server_t *srv, const http_parse_t *ps, size_t *len);
int http_register_metrics(atr_http_server_t *srv);
/* Loop thread: a connection refused over http.max_connections
   (HTTP_REFUSED_MAX) or http.max_connections_per_address
   (HTTP_REFUSED_PER_ADDRESS): counted, and warned about at most once per
   10 s per reason. */
enum { HTTP_REFUSED_MAX = 0, HTTP_REFUSED_PER_ADDRESS = 1 };
void http_note_refused(atr_http_server_t *srv, int reason, const char *ip);
/* Loop thread: the open connection count changed. */
void http_note_open(atr_http_server_t *srv);
/* Loop thread: a session began or ended. */
void http_note_sessions(atr_http_server_t *srv);

/* http_stream.c */
int http_pump_start(atr_http_server_t *srv);
void http_pump_stop(atr_http_server_t *srv);
void http_pump_free(atr_http_server_t *srv);
void http_stream_schedule(atr_http_server_t *srv, atr_http_exchange_t *x);
void http_stream_wake_all(atr_http_server_t *srv);
void http_stream_wake(atr_http_server_t *srv, atr_http_exchange_t *x);

/* ---- sessions ---------------------------------------------------------------- */

/* http_h2.c: wslay's recv_callback over a read being fed (*in, *in_len):
 * what is left of it, then WOULDBLOCK on ctx (a wslay_event_context_ptr).
 * Sessions and WebSocket-mode tunnels both feed wslay this way. */
ssize_t http_ws_take(void *ctx, const char **in, size_t *in_len, uint8_t *buf,
                     size_t len);

/* http_h2.c: one session's protocol state, no sockets. Requests come out
 * whole through on_request (taken, stream_id set); what to send piles up
 * in out. Loop thread only (or one fuzzing thread). */
struct http_up {
  void *ws; /* wslay_event_context_ptr, server side */
  void *h2; /* nghttp2_session *, server side */
  const char *in;
  size_t in_len; /* the read being fed */
  char *out;     /* framed bytes to write */
  size_t out_len, out_cap;
  uint8_t msg_op;    /* opcode of the data message being received */
  uint8_t frame_op;  /* opcode of the frame being received */
  bool failed;       /* protocol error: close with 1002/1003 */
  bool closing;      /* our close is queued: pull no more */
  void *streams;     /* http_h2.c's per-stream state, a list */
  int32_t events_id; /* the events stream, 0: none */
  atomic_bool events_open;
  char *ev; /* event lines not sent yet */
  size_t ev_len, ev_off;
  uint64_t max_body, max_header;
  size_t rx_body; /* body bytes of requests not handed to the lane yet */
  size_t mem;     /* what nghttp2 holds (its counting allocator) */
  atomic_llong *mem_total;
  void (*on_request)(http_up_t *up, http_req_t *req);
  /* http_session.c, loop thread */
  http_conn_t *conn;
  http_upgrade_t info;
  const char *reason; /* why it ended: static, or reason_buf */
  char reason_buf[32];
  uint64_t last_rx_ms, slow_since_ms;
  uint64_t ping_sent_us; /* our PING awaiting its ack; 0: none */
  int64_t ping_us;       /* the last round trip */
  int inflight;          /* requests at the lane */
  http_req_t *held[16];  /* complete, waiting for the lane cap */
  int nheld;
  bool paused; /* reads stopped at the lane cap */
  bool registered;
  http_up_t *reg_next;
  bool in_feed;           /* inside http_up_feed: nghttp2 must not send */
  bool in_pull;           /* inside http_up_pull: likewise */
  bool ending;            /* its tunnels are being ended: no flush */
  http_tunnel_t *tunnels; /* pending and open (http_tunnel.c) */
  int npending;           /* of them waiting for the agent's stream */
};

/* NULL when out of memory. mem_total (may be NULL) adds what nghttp2
 * holds. */
http_up_t *http_up_new(uint64_t max_header, uint64_t max_body,
                       atomic_llong *mem_total,
                       void (*on_request)(http_up_t *, http_req_t *));
/* Bytes from the peer. 0; -1 on a protocol error (a close is queued). */
int http_up_feed(http_up_t *up, const char *data, size_t len);
/* Frame what nghttp2 has to send into out while out_len < budget (0:
 * only WebSocket control frames). -1 on a fatal error. */
int http_up_pull(http_up_t *up, size_t budget);
/* The serialized HTTP/1.1 answer (taken) to a request of the session. */
void http_up_answer(http_up_t *up, int32_t stream_id, char *bytes, size_t len);
/* One line for the events stream; -1 when none is open or too much is
 * queued. */
int http_up_event(http_up_t *up, const char *line, size_t len);
void http_up_ping(http_up_t *up);
/* Free a request of the session that will not reach the lane. */
void http_up_drop(http_up_t *up, http_req_t *r);
/* GOAWAY, then a WebSocket close with code and why. */
void http_up_close(http_up_t *up, uint16_t code, const char *why);
/* The peer is done: it closed the WebSocket or the HTTP/2 session. */
bool http_up_finished(const http_up_t *up);
void http_up_free(http_up_t *up);
/* Tunnel streams (the agent's POST .../me/tunnels/{id}): answer 200 at
 * once, the body pulled from http_tunnel_pull; resume it after
 * http_tunnel_pull said "nothing yet"; give back stream window for n
 * bytes the user's side took; reset (and forget the tunnel) with code. */
int http_up_tunnel_accept(http_up_t *up, int32_t sid);
void http_up_tunnel_resume(http_up_t *up, int32_t sid);
void http_up_tunnel_consume(http_up_t *up, int32_t sid, size_t n);
void http_up_tunnel_reset(http_up_t *up, int32_t sid, uint32_t code);
/* Refuse a request stream (RST_STREAM REFUSED_STREAM): the agent retries. */
void http_up_refuse(http_up_t *up, int32_t sid);

/* http_session.c, loop thread */
void http_session_start(http_conn_t *c, http_upgrade_t *info, char *reply,
                        size_t len);
void http_session_read(http_conn_t *c, const char *data, size_t len);
/* The ack of a PING we sent arrived (http_h2.c): its round trip goes to
 * atrium_agent_ping_seconds. */
void http_session_pong(http_up_t *up);
void http_session_answer(http_conn_t *c, http_msg_t *m);
void http_session_drained(http_conn_t *c);
void http_session_closing(http_conn_t *c);
void http_session_free(http_conn_t *c);
void http_session_msg(atr_http_server_t *srv, http_msg_t *m);
/* Any thread: whether a session of key is here (under the lock). */
bool http_session_here(atr_http_server_t *srv, const char *key);
/* Loop thread: the session of key, or NULL. */
http_up_t *http_session_find(atr_http_server_t *srv, const char *key);
/* Loop thread: send what the session has (not from inside its feed). */
void http_session_kick(http_up_t *up);
void http_upgrade_free(http_upgrade_t *info);
/* http_ws.c: a valid WebSocket handshake (GET, upgrade, version 13, a
 * key): true and its Sec-WebSocket-Accept. */
bool http_ws_accept_for(atr_http_exchange_t *x, char accept[29]);
int http_sessions_init(atr_http_server_t *srv);
void http_sessions_free(atr_http_server_t *srv);

/* ---- tunnels (http_tunnel.c), loop thread unless said ------------------------ */

/* HTTP_MSG_TUNNEL: c (the message's reference goes to the tunnel) waits
 * for the agent. */
void http_tunnel_start(http_conn_t *c, http_tunnel_t *t);
/* A tunnel message the loop never handled (it stopped): ended, freed. */
void http_tunnel_discard(http_tunnel_t *t);
/* The user's connection: bytes, EOF, a write done, closed. */
void http_tunnel_user_read(http_conn_t *c, const char *data, size_t len);
void http_tunnel_user_eof(http_conn_t *c);
void http_tunnel_user_drained(http_conn_t *c);
void http_tunnel_user_closed(http_conn_t *c);
/* The session's side, from http_h2.c's callbacks: the agent opened
 * stream sid for tunnel id (error: its atrium-tunnel-error, or NULL);
 * the tunnel to keep on the stream, or NULL (then the stream is reset). */
http_tunnel_t *http_tunnel_stream(http_up_t *up, int32_t sid, const char *id,
                                  const char *error);
void http_tunnel_data(http_up_t *up, http_tunnel_t *t, const uint8_t *data,
                      size_t len);
void http_tunnel_agent_eof(http_up_t *up, http_tunnel_t *t);
void http_tunnel_stream_closed(http_up_t *up, http_tunnel_t *t, uint32_t code);
/* Up to len user bytes for the agent; 0 with *eof false: none yet. */
size_t http_tunnel_pull(http_up_t *up, http_tunnel_t *t, uint8_t *buf,
                        size_t len, bool *eof);
/* The session ends: every tunnel on it ends (reason agent_gone or
 * draining). */
void http_tunnels_end(http_up_t *up, const char *reason);
int http_register_tunnel_metrics(atr_http_server_t *srv);

#endif
