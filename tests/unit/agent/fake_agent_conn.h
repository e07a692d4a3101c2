/* tests/unit/agent/fake_agent_conn.h — a test double of agent_conn.h,
 * linked into the agent's unit tests instead of agent_conn.c.
 *
 * Requests are recorded in order. In manual mode the test answers them
 * (fake_reply); in auto mode a server stand-in answers each on the next
 * loop iteration: the manifest the test set, logs/state with no sources,
 * logs with the batch's last seq, everything else 204; lifecycle states
 * and log lines are kept for the test to check.
 *
 * Threads: the loop's thread.
 */
#ifndef FAKE_AGENT_CONN_H
#define FAKE_AGENT_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "agent_conn.h"

#define FAKE_MAX_REQS 4096

typedef struct fake_req {
  char method[8];
  char path[128];
  char *body;
  agent_conn_reply_fn reply;
  void *ud;
  bool answered;
} fake_req_t;

struct agent_conn {
  uv_loop_t *loop;
  agent_conn_cbs_t cbs;
  void *ud;
  bool up, started, stopped;
  fake_req_t reqs[FAKE_MAX_REQS];
  size_t n;
  /* auto mode */
  bool autoreply;
  const char *manifest;
  const char *logs_state;
  uv_timer_t tick;
  char states[32][24]; /* lifecycle states the server took, in order */
  size_t nstates;
  char *log_text; /* every stored line's output, "\n"-joined */
  size_t events_sent;
  const char *event_after_state; /* send {"type":"shutdown"} after it */
  const char *touch_on_ready;    /* create this file once ready is stored */
  /* send {"type":"shutdown"} once a request body holds both strings */
  const char *event_when[2];
  const char *sigterm_after_state; /* raise(SIGTERM) once it is stored */
};

/* The connection the code under test made last. */
extern agent_conn_t *fake_last_conn;
/* Auto mode for the next agent_conn_new. */
extern bool fake_auto_next;
extern const char *fake_manifest_next;
extern const char *fake_shutdown_after_next;
extern const char *fake_touch_on_ready_next;
extern const char *fake_event_when_next[2];
extern const char *fake_sigterm_after_next;

/* A test-made connection (manual mode), up or not. */
agent_conn_t *fake_conn_new(uv_loop_t *loop, bool up);
void fake_conn_free(agent_conn_t *c);
/* Answer request i. */
void fake_reply(agent_conn_t *c, size_t i, int status, const char *body);
/* The session goes down (pending replies get 0), or comes up. */
void fake_down(agent_conn_t *c);
void fake_up(agent_conn_t *c);
/* Requests to path so far. */
size_t fake_count(const agent_conn_t *c, const char *path);

#endif
