/* tests/bench/agents/bench_agents.h — what the parts of the agent load
 * bench share (docs/design/agent.md §6):
 *
 *   setup.c  the server (SQLite or PostgreSQL), its owner, a template with
 *            an agent, N workspaces and the N agent tokens the echo
 *            provisioner wrote; the server's RSS and connected count
 *   load.c   the API load: C keep-alive clients of GET /api/v2/users/me,
 *            as tests/bench/api drives it
 *   sim.c    N simulated agents on one libuv loop in one thread, each an
 *            agent_conn_t (core/agent/agent_conn.h) of its own
 *
 * Threads: setup and load functions are called from the main thread (load
 * starts and joins its own client threads); sim_* functions from the main
 * thread only, and the simulation's own thread touches its agents. Figures
 * are copied out under the simulation's lock.
 */
#ifndef ATRIUM_BENCH_AGENTS_H
#define ATRIUM_BENCH_AGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

#define BENCH_MAX_AGENTS 20000
#define BENCH_MAX_CLIENTS 256

typedef struct bench_opts {
  int agents;
  int seconds;
  int api_clients;
  int baseline_seconds; /* the API alone; 20 */
  const char *postgres; /* a libpq DSN, or the ctest fixture's directory */
  bool kill_server;
} bench_opts_t;

/* ---- setup.c ---------------------------------------------------------------- */

typedef struct bench_server {
  atr_harness_t h;
  char *owner_token;
  char env_dir[320]; /* the echo's agent_env_dir */
  char url[64];      /* http://127.0.0.1:<port> */
  char **tokens;     /* agent tokens, one per workspace (secrets) */
  int n;
} bench_server_t;

/* Start the server, sign in, import the template, build opts->agents
 * workspaces (64 in flight) and read their tokens. Bounded by 10 minutes;
 * 0, or -1 with a message on stderr. */
int bench_setup(bench_server_t *s, const bench_opts_t *opts);
/* kill -9 the server and start it again on the same data and port. */
int bench_restart(bench_server_t *s);
/* Stop the server (SIGTERM), free everything, remove its directories. */
void bench_teardown(bench_server_t *s);
/* Agent sessions the server says it holds (atrium_http_sessions_open,
 * atrium_agent_sessions or atrium_agents{status="connected"}), or -1 when
 * it reports none of them. */
int64_t bench_server_connected(const bench_server_t *s);
/* Another metric's value summed over its samples, or -1 when absent. */
double bench_server_metric(const bench_server_t *s, const char *name);
/* VmRSS of the server process in KiB, or -1. */
long bench_server_rss_kb(const bench_server_t *s);

/* ---- load.c ----------------------------------------------------------------- */

typedef struct load_result {
  long done, errors;
  double seconds, rps, p50_ms, p99_ms;
} load_result_t;

/* `clients` threads, each with one keep-alive connection, send GET
 * /api/v2/users/me for `seconds` after a short untimed warm-up. False when
 * the clients could not run. */
bool load_run(int port, const char *token, int clients, int seconds,
              load_result_t *out);

/* ---- sim.c ------------------------------------------------------------------ */

typedef struct sim sim_t;

typedef struct sim_figures {
  int64_t *rtt_us; /* agent requests answered while recording */
  size_t nrtt;
  int64_t *stats_us; /* report-stats only */
  size_t nstats;
  int64_t *ping_us; /* PING round trips seen while recording */
  size_t nping;
  uint64_t drops;   /* sessions lost that the bench did not cause */
  uint64_t failed;  /* requests answered with an error, refused dials */
  uint64_t lost;    /* replies lost with their session */
  uint64_t refused; /* dials that failed without an HTTP answer */
  int ready;        /* agents whose `ready` was accepted */
} sim_figures_t;

/* The agents dial url from distinct loopback addresses, `rate` a second,
 * once sim_connect is called. NULL with a message on failure. */
sim_t *sim_new(const char *url, char *const *tokens, int n, int rate);
int sim_connect(sim_t *s);
/* Sessions up right now. */
int sim_up(sim_t *s);
/* Keep round trips and PINGs from now on, forgetting those kept before
 * (true), or stop keeping them (false). */
void sim_record(sim_t *s, bool on);
/* The bench is about to break every session (true) or is done (false):
 * sessions lost meanwhile are not drops. */
void sim_expect_down(sim_t *s, bool on);
/* Agents whose session came up after the last sim_expect_down(true). */
int sim_up_again(sim_t *s);
/* A copy of the figures so far; free with sim_figures_free. */
void sim_figures(sim_t *s, sim_figures_t *out);
void sim_figures_free(sim_figures_t *f);
/* Stop every agent (WebSocket close), join the thread, free. 0, or -1 when
 * the agents did not stop within 30 s (then nothing is freed). */
int sim_stop(sim_t *s);

/* ---- shared ------------------------------------------------------------------ */

double bench_now_s(void);
/* p in [0, 1] of v (n values), sorting v. */
double bench_percentile(int64_t *v, size_t n, double p);

#endif
