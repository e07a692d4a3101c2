/* tests/bench/agents/sim.c — N simulated agents on one libuv loop in one
 * thread: each is the agent's own transport (agent_conn_t) bound to its
 * own loopback address, and does what a workspace agent with one
 * metadata item and no scripts does on the wire: lifecycle `starting`
 * then `ready` after its first session comes up, stats every 30 s (a
 * random first offset, so 4,000 agents do not report in step), metadata
 * every 10 s, PINGs every heartbeat (agent_conn does those). See
 * bench_agents.h.
 *
 * Threads: the loop thread owns the agents; the main thread sets the
 * atomics and wakes the loop to stop it. Figures are under `mu`. */
#include "bench_agents.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "agent_conn.h"

#define TICK_MS 20
#define STATS_MS 30000
#define METADATA_MS 10000
#define STOP_MS 30000
#define ERRORS_SHOWN 10
#define ME "/api/v2/workspaceagents/me/"
#define AGENT_API_VERSION "1.0" /* the server's ATR_API_AGENT_VERSION */

typedef enum req_kind { REQ_LIFECYCLE, REQ_STATS, REQ_METADATA } req_kind_t;

typedef struct sim_agent {
  sim_t *sim;
  int index;
  agent_conn_t *conn;
  char bind_ip[20];
  bool up, was_up;
  int lifecycle_acked; /* 0, 1 (starting), 2 (ready) */
  bool lifecycle_sent; /* one in flight */
  uint64_t next_stats_ms, next_metadata_ms;
  int64_t last_ping_us;
  uint32_t rand;
  int epoch; /* of its last session's start */
} sim_agent_t;

typedef struct req {
  sim_agent_t *agent;
  req_kind_t kind;
  uint64_t t0_ns;
} req_t;

typedef struct i64s {
  int64_t *v;
  size_t n, cap;
} i64s_t;

struct sim {
  uv_loop_t loop;
  uv_timer_t tick;
  uv_async_t wake;
  pthread_t thread;
  char url[64];
  char *const *tokens; /* the server's; they outlive the simulation */
  sim_agent_t *agents;
  int n, rate;
  /* loop thread */
  int started, stopped;
  uint64_t connect_t0_ms;
  bool stopping_begun;
  /* any thread */
  atomic_bool connecting, recording, expect_down, stopping, finished;
  atomic_int up;
  atomic_int epoch; /* sim_expect_down(true) starts a new one */
  atomic_int fresh; /* agents with a session started in this epoch */
  /* under mu */
  pthread_mutex_t mu;
  i64s_t rtt, stats, ping;
  uint64_t drops, failed, lost, refused;
  int ready, shown;
};

static uint32_t next_rand(uint32_t *x) {
  *x ^= *x << 13;
  *x ^= *x >> 17;
  *x ^= *x << 5;
  return *x;
}

static void push(i64s_t *a, int64_t v) {
  if (a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 1024;
    int64_t *p = realloc(a->v, cap * sizeof *p);
    if (!p)
      return;
    a->v = p;
    a->cap = cap;
  }
  a->v[a->n++] = v;
}

/* An unexpected event, on stderr (the first few only). */
static void show(sim_t *s, const char *fmt, int index, const char *what,
                 int status, const char *detail) {
  pthread_mutex_lock(&s->mu);
  bool print = s->shown++ < ERRORS_SHOWN;
  pthread_mutex_unlock(&s->mu);
  if (print) {
    fprintf(stderr, fmt, index, what, status, detail ? detail : "");
    fputc('\n', stderr);
  }
}

/* RFC 3339 UTC with microseconds, as the server writes them. */
static void now_rfc3339(char *buf, size_t size) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* ---- requests ------------------------------------------------------------------ */

static const char *path_of(req_kind_t k) {
  return k == REQ_LIFECYCLE ? ME "report-lifecycle"
         : k == REQ_STATS   ? ME "report-stats"
                            : ME "metadata";
}

static void lifecycle_next(sim_agent_t *a);

static void on_reply(void *ud, int status, const char *body, size_t len) {
  req_t *r = ud;
  sim_agent_t *a = r->agent;
  sim_t *s = a->sim;
  int64_t us = (int64_t)((uv_hrtime() - r->t0_ns) / 1000);
  bool ok = status >= 200 && status < 300;
  pthread_mutex_lock(&s->mu);
  if (status == 0)
    s->lost++;
  else if (!ok)
    s->failed++;
  else if (atomic_load(&s->recording)) {
    push(&s->rtt, us);
    if (r->kind == REQ_STATS)
      push(&s->stats, us);
  }
  pthread_mutex_unlock(&s->mu);
  if (status != 0 && !ok) {
    char detail[208];
    snprintf(detail, sizeof detail, "%.*s", (int)(len < 200 ? len : 200),
             body ? body : "");
    show(s, "bench_agents: agent %d: POST %s answered %d %s", a->index,
         path_of(r->kind), status, detail);
  }
  if (r->kind == REQ_LIFECYCLE) {
    a->lifecycle_sent = false;
    if (ok && ++a->lifecycle_acked == 2) {
      pthread_mutex_lock(&s->mu);
      s->ready++;
      pthread_mutex_unlock(&s->mu);
    }
    /* accepted: the next state; lost with a session already back: again */
    if ((ok || status == 0) && a->up)
      lifecycle_next(a);
  }
  free(r);
}

static void request(sim_agent_t *a, req_kind_t kind, const char *body) {
  req_t *r = malloc(sizeof *r);
  if (!r)
    return;
  *r = (req_t){.agent = a, .kind = kind, .t0_ns = uv_hrtime()};
  if (agent_conn_request(a->conn, "POST", path_of(kind), body, on_reply, r) !=
      0) {
    free(r);
    if (kind == REQ_LIFECYCLE)
      a->lifecycle_sent = false;
  }
}

/* `starting`, then `ready` once it was accepted; again after a session
 * lost the answer (the same state twice is a no-op for the server). */
static void lifecycle_next(sim_agent_t *a) {
  if (a->lifecycle_sent || a->lifecycle_acked >= 2)
    return;
  char at[40], body[128];
  now_rfc3339(at, sizeof at);
  snprintf(body, sizeof body, "{\"state\":\"%s\",\"changed_at\":\"%s\"}",
           a->lifecycle_acked == 0 ? "starting" : "ready", at);
  a->lifecycle_sent = true;
  request(a, REQ_LIFECYCLE, body);
}

/* Coder's Stats fields, plus the machine's; plausible values. */
static void send_stats(sim_agent_t *a) {
  char body[768];
  uint32_t r = next_rand(&a->rand);
  snprintf(body, sizeof body,
           "{\"connections_by_proto\":{},\"connection_count\":0,"
           "\"connection_median_latency_ms\":0,\"rx_bytes\":%u,"
           "\"tx_bytes\":%u,\"rx_packets\":%u,\"tx_packets\":%u,"
           "\"session_count_vscode\":0,\"session_count_jetbrains\":0,"
           "\"session_count_reconnecting_pty\":0,\"session_count_ssh\":0,"
           "\"cpu_cores_used\":%.3f,\"cpu_cores_total\":2,"
           "\"memory_used_bytes\":%u,\"memory_total_bytes\":4294967296}",
           r % 100000, r % 70000, r % 1000, r % 700, (double)(r % 2000) / 1000,
           (r % 1024) << 20);
  request(a, REQ_STATS, body);
}

static void send_metadata(sim_agent_t *a) {
  char at[40], body[320];
  uint32_t r = next_rand(&a->rand);
  now_rfc3339(at, sizeof at);
  snprintf(body, sizeof body,
           "{\"metadata\":[{\"key\":\"load\",\"collected_at\":\"%s\","
           "\"age\":0,\"value\":\"0.%02u 0.%02u 0.%02u 1/120 %u\","
           "\"error\":\"\"}]}",
           at, r % 100, (r >> 8) % 100, (r >> 16) % 100, r % 30000);
  request(a, REQ_METADATA, body);
}

/* ---- the transport's callbacks ---------------------------------------------------- */

static bool caused_by_bench(sim_t *s) {
  return atomic_load(&s->expect_down) || atomic_load(&s->stopping);
}

static void on_up(void *ud) {
  sim_agent_t *a = ud;
  a->up = true;
  atomic_fetch_add(&a->sim->up, 1);
  int epoch = atomic_load(&a->sim->epoch);
  if (a->epoch != epoch) {
    a->epoch = epoch;
    atomic_fetch_add(&a->sim->fresh, 1);
  }
  if (!a->was_up) {
    uint64_t now = uv_now(&a->sim->loop);
    a->next_stats_ms = now + next_rand(&a->rand) % STATS_MS;
    a->next_metadata_ms = now + next_rand(&a->rand) % METADATA_MS;
    a->was_up = true;
  }
  lifecycle_next(a);
}

static void on_down(void *ud, int http_status, const char *reason) {
  sim_agent_t *a = ud;
  sim_t *s = a->sim;
  bool was_up = a->up;
  if (was_up) {
    a->up = false;
    atomic_fetch_sub(&s->up, 1);
  }
  if (caused_by_bench(s))
    return;
  pthread_mutex_lock(&s->mu);
  if (was_up)
    s->drops++;
  else if (http_status != 0)
    s->failed++; /* the upgrade was refused */
  else
    s->refused++;
  pthread_mutex_unlock(&s->mu);
  if (was_up || http_status != 0)
    show(s, "bench_agents: agent %d: %s (HTTP %d): %s", a->index,
         was_up ? "session lost" : "upgrade refused", http_status, reason);
}

static void on_event(void *ud, const char *line, size_t len) {
  (void)ud, (void)line, (void)len; /* no shutdown comes: nothing stops */
}

/* ---- the loop ---------------------------------------------------------------------- */

static void start_agent(sim_t *s, int i) {
  sim_agent_t *a = &s->agents[i];
  agent_conn_opts_t opts = {.url = s->url,
                            .token = s->tokens[i],
                            .version = AGENT_API_VERSION,
                            .bind_ip = a->bind_ip};
  static const agent_conn_cbs_t cbs = {
      .on_up = on_up, .on_down = on_down, .on_event = on_event};
  char *err = NULL;
  if (agent_conn_new(&s->loop, &opts, &cbs, a, &a->conn, &err) != 0) {
    show(s, "bench_agents: agent %d: %s %d %s", i, "cannot start:", 0, err);
    free(err);
    pthread_mutex_lock(&s->mu);
    s->failed++;
    pthread_mutex_unlock(&s->mu);
    return;
  }
  agent_conn_start(a->conn);
}

/* Dial `rate` agents a second, from the first tick after sim_connect. */
static void connect_more(sim_t *s, uint64_t now) {
  if (!atomic_load(&s->connecting) || s->started >= s->n)
    return;
  if (!s->connect_t0_ms)
    s->connect_t0_ms = now;
  uint64_t due = 1 + (now - s->connect_t0_ms) * (uint64_t)s->rate / 1000;
  while (s->started < s->n && (uint64_t)s->started < due) {
    start_agent(s, s->started);
    s->started++;
  }
}

static void on_tick(uv_timer_t *t) {
  sim_t *s = t->data;
  uint64_t now = uv_now(&s->loop);
  connect_more(s, now);
  bool recording = atomic_load(&s->recording);
  for (int i = 0; i < s->started; i++) {
    sim_agent_t *a = &s->agents[i];
    if (!a->up)
      continue;
    if (now >= a->next_stats_ms) {
      send_stats(a);
      a->next_stats_ms = now + STATS_MS;
    }
    if (now >= a->next_metadata_ms) {
      send_metadata(a);
      a->next_metadata_ms = now + METADATA_MS;
    }
    int64_t ping = agent_conn_ping_us(a->conn);
    if (recording && ping > 0 && ping != a->last_ping_us) {
      pthread_mutex_lock(&s->mu);
      push(&s->ping, ping);
      pthread_mutex_unlock(&s->mu);
    }
    a->last_ping_us = ping;
  }
}

static void on_stopped(void *ud) {
  sim_t *s = ((sim_agent_t *)ud)->sim;
  if (++s->stopped == s->started) {
    uv_close((uv_handle_t *)&s->tick, NULL);
    uv_close((uv_handle_t *)&s->wake, NULL);
  }
}

static void on_wake(uv_async_t *h) {
  sim_t *s = h->data;
  if (!atomic_load(&s->stopping) || s->stopping_begun)
    return;
  s->stopping_begun = true;
  uv_timer_stop(&s->tick);
  int stopping = s->started;
  for (int i = 0; i < stopping; i++) {
    if (s->agents[i].conn)
      agent_conn_stop(s->agents[i].conn, on_stopped, &s->agents[i]);
    else
      on_stopped(&s->agents[i]);
  }
  if (stopping == 0) {
    uv_close((uv_handle_t *)&s->tick, NULL);
    uv_close((uv_handle_t *)&s->wake, NULL);
  }
}

static void *run(void *arg) {
  sim_t *s = arg;
  uv_run(&s->loop, UV_RUN_DEFAULT);
  for (int i = 0; i < s->n; i++)
    if (s->agents[i].conn)
      agent_conn_free(s->agents[i].conn);
  uv_loop_close(&s->loop);
  atomic_store(&s->finished, true);
  return NULL;
}

/* ---- the main thread's side -------------------------------------------------------- */

sim_t *sim_new(const char *url, char *const *tokens, int n, int rate) {
  sim_t *s = calloc(1, sizeof *s);
  if (!s || !(s->agents = calloc((size_t)n, sizeof *s->agents))) {
    free(s);
    return NULL;
  }
  snprintf(s->url, sizeof s->url, "%s", url);
  s->tokens = tokens;
  s->n = n;
  s->rate = rate;
  pthread_mutex_init(&s->mu, NULL);
  for (int i = 0; i < n; i++) {
    sim_agent_t *a = &s->agents[i];
    *a = (sim_agent_t){
        .sim = s, .index = i, .rand = 2654435761u * (uint32_t)(i + 1)};
    /* 127.0.x.y: all of 127/8 is loopback, so each agent has an address
     * of its own and neither per-address caps nor ephemeral ports (nor
     * TIME_WAIT after a kill) get in the way */
    snprintf(a->bind_ip, sizeof a->bind_ip, "127.0.%d.%d", 1 + i / 250,
             1 + i % 250);
  }
  if (uv_loop_init(&s->loop) != 0) {
    free(s->agents);
    free(s);
    return NULL;
  }
  uv_timer_init(&s->loop, &s->tick);
  uv_async_init(&s->loop, &s->wake, on_wake);
  s->tick.data = s->wake.data = s;
  uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
  if (pthread_create(&s->thread, NULL, run, s) != 0) {
    fprintf(stderr, "bench_agents: cannot start the agents' thread\n");
    return NULL; /* the loop's handles are leaked with it: exit follows */
  }
  return s;
}

int sim_connect(sim_t *s) {
  atomic_store(&s->connecting, true);
  return 0;
}

int sim_up(sim_t *s) {
  return atomic_load(&s->up);
}

void sim_record(sim_t *s, bool on) {
  if (on) {
    pthread_mutex_lock(&s->mu);
    s->rtt.n = s->stats.n = s->ping.n = 0;
    pthread_mutex_unlock(&s->mu);
  }
  atomic_store(&s->recording, on);
}

void sim_expect_down(sim_t *s, bool on) {
  if (on) {
    atomic_store(&s->fresh, 0);
    atomic_fetch_add(&s->epoch, 1);
  }
  atomic_store(&s->expect_down, on);
}

int sim_up_again(sim_t *s) {
  return atomic_load(&s->fresh);
}

static int64_t *dup_values(const i64s_t *a) {
  int64_t *v = malloc((a->n ? a->n : 1) * sizeof *v);
  if (v && a->n)
    memcpy(v, a->v, a->n * sizeof *v);
  return v;
}

void sim_figures(sim_t *s, sim_figures_t *out) {
  pthread_mutex_lock(&s->mu);
  *out = (sim_figures_t){.rtt_us = dup_values(&s->rtt),
                         .nrtt = s->rtt.n,
                         .stats_us = dup_values(&s->stats),
                         .nstats = s->stats.n,
                         .ping_us = dup_values(&s->ping),
                         .nping = s->ping.n,
                         .drops = s->drops,
                         .failed = s->failed,
                         .lost = s->lost,
                         .refused = s->refused,
                         .ready = s->ready};
  pthread_mutex_unlock(&s->mu);
}

void sim_figures_free(sim_figures_t *f) {
  free(f->rtt_us);
  free(f->stats_us);
  free(f->ping_us);
}

int sim_stop(sim_t *s) {
  atomic_store(&s->stopping, true);
  uv_async_send(&s->wake);
  double until = bench_now_s() + STOP_MS / 1000.0;
  while (!atomic_load(&s->finished) && bench_now_s() < until)
    atr_harness_sleep_ms(10);
  if (!atomic_load(&s->finished)) {
    fprintf(stderr, "bench_agents: the agents did not stop within %d s\n",
            STOP_MS / 1000);
    return -1;
  }
  pthread_join(s->thread, NULL);
  pthread_mutex_destroy(&s->mu);
  free(s->rtt.v);
  free(s->stats.v);
  free(s->ping.v);
  free(s->agents);
  free(s);
  return 0;
}
