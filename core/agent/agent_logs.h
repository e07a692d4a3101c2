/* core/agent/agent_logs.h — startup and shutdown logs, each line stored
 * exactly once (docs/design/agent.md §2.3).
 *
 * Lines are numbered per log source from 1 and kept until the server acks
 * them (PATCH /me/logs answers the highest seq it stored). Batches hold at
 * most AGENT_LOGS_BATCH_LINES lines and AGENT_LOGS_BATCH_BYTES of output,
 * go out flush_ms after the first unsent line, one in flight per source;
 * a batch whose answer was lost is sent again once a session is up, and
 * the server ignores the lines it already has. All sources together hold
 * at most cap_bytes: past that, lines are counted, not kept, and a warn
 * line says how many were dropped once there is room again.
 *
 * Nothing is sent before agent_logs_resume(): an agent that restarted
 * continues after the last seq the server has for each source (GET
 * /me/logs/state); lines taken before that are numbered after it.
 *
 * Threads: the loop's thread only. Memory: owns its lines; the connection
 * is borrowed and must outlive the logs.
 */
#ifndef ATRIUM_AGENT_LOGS_H
#define ATRIUM_AGENT_LOGS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "agent_conn.h"

#define AGENT_LOGS_BATCH_LINES 100
#define AGENT_LOGS_BATCH_BYTES 65536
#define AGENT_LOGS_CAP_BYTES ((size_t)1024 * 1024)
#define AGENT_LOGS_MAX_SOURCES 16

typedef struct agent_log_line {
  int64_t seq; /* local: 1, 2, ...; on the wire offset + seq */
  int64_t created_at_us;
  const char *level; /* a static string: "info", "warn", "error" */
  size_t len;
  char output[]; /* NUL-terminated */
} agent_log_line_t;

typedef struct agent_log_source {
  struct agent_logs *logs; /* the owner, for replies */
  char id[40];
  agent_log_line_t **ring; /* unacked lines, oldest at head */
  size_t head, count, cap;
  int64_t next_seq;  /* local seq of the next line */
  int64_t offset;    /* the server's last_seq when resumed */
  int64_t in_flight; /* local seq of the last line in flight; 0: none */
  uint64_t dropped;  /* lines refused while the buffer was full */
} agent_log_source_t;

typedef struct agent_logs {
  uv_loop_t *loop;
  agent_conn_t *conn;
  agent_log_source_t src[AGENT_LOGS_MAX_SOURCES];
  size_t nsrc;
  size_t bytes, cap_bytes;
  int64_t flush_ms;
  bool resumed;
  bool timer_armed;
  uv_timer_t timer; /* the flush delay, and the retry after a 5xx */
  uint64_t sent, acked;
} agent_logs_t;

/* cap_bytes 0: AGENT_LOGS_CAP_BYTES; flush_ms < 0: 250. */
int agent_logs_init(agent_logs_t *l, uv_loop_t *loop, agent_conn_t *conn,
                    size_t cap_bytes, int64_t flush_ms);
/* The source with this id, added if new (at most AGENT_LOGS_MAX_SOURCES);
 * NULL when full or the id is too long. */
agent_log_source_t *agent_logs_source(agent_logs_t *l, const char *id);
/* Take a line (cut at 64 KiB). false when it was dropped (buffer full). */
bool agent_logs_add(agent_logs_t *l, agent_log_source_t *s, const char *level,
                    const char *output, size_t len, int64_t now_us);
/* The server's {"sources":[{log_source_id, last_seq}]}: number after it,
 * then start sending. */
void agent_logs_resume(agent_logs_t *l, const json_t *state);
/* Send what can be sent now (a session came up, a timer fired). */
void agent_logs_kick(agent_logs_t *l);
/* A session is gone: every batch in flight will be sent again. */
void agent_logs_lost(agent_logs_t *l);
/* Whether every line taken was acked (or nothing was ever taken). */
bool agent_logs_idle(const agent_logs_t *l);
/* Close the timer (the loop finishes closing it); then agent_logs_free. */
void agent_logs_close(agent_logs_t *l);
void agent_logs_free(agent_logs_t *l);

/* For tests and the sender: the PATCH body of the next batch of s, and the
 * local seq of its last line; NULL when there is nothing to send. */
char *agent_logs_batch_json(const agent_log_source_t *s, int64_t *last_seq);
/* The server stored everything up to wire seq acked_seq. */
void agent_logs_ack(agent_logs_t *l, agent_log_source_t *s, int64_t acked_seq);

#endif
