/* core/agent/agent_conn_internal.h — the pieces of agent_conn.h's
 * connection shared by its two files:
 *
 *  agent_conn.c          dial, the upgrade request and its 101, timers,
 *                        reconnects, the public calls
 *  agent_conn_session.c  the session once upgraded: wslay (client side,
 *                        masked frames) carrying an nghttp2 client session;
 *                        requests as streams, the events stream, PINGs
 *
 * Threads: the loop's thread only, like the public API.
 */
#ifndef ATRIUM_AGENT_CONN_INTERNAL_H
#define ATRIUM_AGENT_CONN_INTERNAL_H

#include <http_parser.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "agent_backoff.h"
#include "agent_conn.h"

#define AC_PROTOCOL "atrium-agent.h2" /* ATR_HTTP_SESSION_PROTOCOL */
#define AC_MAX_INFLIGHT 16
#define AC_MAX_ANSWER ((size_t)16 << 20) /* larger answers fail (status 0) */
#define AC_MAX_LINE ((size_t)64 << 10)   /* longer event lines are dropped */
#define AC_PULL_MARK ((size_t)256 << 10) /* stop framing above this queued */
/* The session's receive window: one stream window for each of the 256
 * tunnels the agent keeps, plus room for requests, so a tunnel whose
 * local socket stalls never holds up the others or the events stream. */
#define AC_CONN_WINDOW ((int32_t)((256 + 16) << 16))

/* A stream's state (agent_conn.h); its request is an agent_req_t. */
struct agent_stream {
  agent_conn_t *c;
  int32_t id;
  agent_stream_cbs_t cbs;
  void *ud;
  char *buf; /* request body waiting: buf[off, len) */
  size_t off, len, cap;
  size_t unconsumed; /* answer bytes handed up, not consumed yet */
  bool eof;          /* the caller ended the body */
  bool eof_sent;     /* END_STREAM went to nghttp2 */
  bool end_rcvd;     /* the answer ended */
  bool deferred;     /* the data provider waits for bytes */
  bool full;         /* AGENT_STREAM_MARK reached: on_room is owed */
  bool detached;     /* reset by the caller: no more callbacks */
};

typedef struct agent_req {
  struct agent_req *prev, *next; /* waiting (next only) or live */
  char *method, *path, *body;
  size_t body_len, body_off;
  agent_conn_reply_fn reply;
  void *reply_ud;
  int status;
  char *answer;
  size_t answer_len, answer_cap;
  bool events;               /* the events stream: lines go to on_event */
  agent_stream_t *stream;    /* a stream (tunnel), else NULL */
  agent_conn_header_t *hdrs; /* extra headers (copied), and how many */
  size_t nhdrs;
  bool too_large; /* the answer passed AC_MAX_ANSWER */
} agent_req_t;

enum {
  AC_IDLE = 0,  /* not started, or stopped */
  AC_WAITING,   /* backing off before the next dial */
  AC_RESOLVING, /* getaddrinfo */
  AC_DIALING,   /* TCP connect */
  AC_UPGRADING, /* the upgrade request is out; reading its answer */
  AC_UP,        /* the session runs */
  AC_CLOSING,   /* the connection is being closed */
};

struct agent_conn {
  uv_loop_t *loop;
  char *url, *token, *version, *bind_ip, *prefix;
  char host[256], port[8], authority[300];
  int64_t hb_ms, backoff_min_ms, backoff_max_ms;
  agent_conn_cbs_t cbs;
  void *ud;
  agent_backoff_t backoff;
  int state;
  bool started, stopping;
  /* handles */
  uv_getaddrinfo_t gai;
  bool gai_busy;
  uv_tcp_t tcp;
  bool tcp_open;
  uv_connect_t connect;
  uv_shutdown_t shutdown;
  uv_timer_t retry, beat;
  int handles; /* open handles, closed on stop */
  int writes;  /* uv_write requests in flight */
  /* the upgrade's answer */
  http_parser hp;
  char expect[29]; /* Sec-WebSocket-Accept we want */
  char hname[32], accept[64], proto[64];
  size_t hname_len, hbytes;
  int hwhich; /* 1: accept, 2: protocol, 0: another header */
  bool hvalue, hdone, hcomplete;
  int status;
  /* the session (agent_conn_session.c) */
  void *ws; /* wslay_event_context_ptr, client */
  void *h2; /* nghttp2_session *, client */
  const char *in;
  size_t in_len;
  char *out;
  size_t out_len, out_cap, queued;
  bool failed;              /* protocol error */
  uint8_t frame_op, msg_op; /* of the frame / data message being read */
  agent_req_t *wait_head, *wait_tail, *live;
  int inflight;
  agent_req_t *events;
  char *line; /* the event line being read */
  size_t line_len, line_cap;
  bool line_skip; /* dropping an over-long line to its end */
  uint64_t last_rx_ms, up_ms, ping_sent_us;
  int64_t ping_us;
  uint64_t sessions, drops;
  int busy; /* inside a callback chain: teardown waits */
  void (*done)(void *);
  void *done_ud;
};

uint64_t ac_now_ms(void);
uint64_t ac_now_us(void);
/* Random bytes (getrandom; never fails for small sizes once booted). */
void ac_random(void *buf, size_t len);
/* Write bytes (taken) to the socket. */
void ac_write(agent_conn_t *c, char *data, size_t len);

/* agent_conn_session.c */
int ac_session_open(agent_conn_t *c);
/* Bytes from the server; -1 when the session must end. */
int ac_session_feed(agent_conn_t *c, const char *data, size_t len);
/* Frame and write what there is to send; -1 on a fatal error. */
int ac_session_flush(agent_conn_t *c);
/* GOAWAY and a WebSocket close 1000 (queued; flush writes them). */
void ac_session_close(agent_conn_t *c);
/* The server ended the session (close frame, GOAWAY and nothing left). */
bool ac_session_over(agent_conn_t *c);
/* Forget the session; every request still open or waiting gets status 0
 * (it may or may not have been handled). */
void ac_session_free(agent_conn_t *c);
int ac_session_submit(agent_conn_t *c, agent_req_t *r);
void ac_session_ping(agent_conn_t *c);
void ac_req_free(agent_req_t *r);
/* Write what the session has to send unless a callback chain is running
 * (it flushes when it returns); a failure ends the session at the next
 * heartbeat. */
void ac_kick(agent_conn_t *c);

/* agent_conn_stream.c: the stream side of the session's callbacks. */
ssize_t ac_stream_read(agent_req_t *r, uint8_t *buf, size_t len,
                       uint32_t *flags);
void ac_stream_data(agent_conn_t *c, agent_req_t *r, const uint8_t *data,
                    size_t len);
/* The answer's headers (status) or its END_STREAM. */
void ac_stream_status(agent_conn_t *c, agent_req_t *r);
void ac_stream_end(agent_conn_t *c, agent_req_t *r);
/* The stream closed (error: reset, or the session lost); frees r. */
void ac_stream_closed(agent_conn_t *c, agent_req_t *r, bool error);

#endif
