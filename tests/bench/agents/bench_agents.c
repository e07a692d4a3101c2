/* tests/bench/agents — N workspace agents connected at once to one real
 * `atrium server`, while the API is measured at 64 clients
 * (docs/design/agent.md §6; the figures issue 14 asks for).
 *
 *   bench_agents [--agents N] [--seconds S] [--api-clients C]
 *                [--baseline-seconds B] [--postgres DSN|DIR] [--kill-server]
 *
 * Set-up (untimed, at most 10 minutes): the server on a temporary data
 * directory (SQLite, or the PostgreSQL database --postgres names: a DSN or
 * the ctest fixture's directory; its public schema is dropped first), 8
 * provisioner daemons, the echo provisioner writing each workspace's agent
 * token to its agent_env_dir; a template whose agent has one metadata item
 * and no scripts; N workspaces made through the API, 64 at a time.
 *
 * Then, printed:
 *   1. the API alone for B (20) s: GET /api/v2/users/me requests/s and p99;
 *   2. N agents dial at 200 a second, each from its own 127.0.x.y, until
 *      the server holds N sessions; the server's RSS growth ÷ N; then
 *      B s of the agents alone: their round trips' baseline;
 *   3. S seconds of agents (lifecycle, stats every 30 s, metadata every
 *      10 s, PINGs) with the API under load: agent round trips p50/p99,
 *      PING round trips, sessions lost that the bench did not cause, and
 *      the API's rate as a ratio to phase 1, and its p99; the agents' p99
 *      as a ratio to their own baseline;
 *   4. with --kill-server: kill -9, restart on the same data and port,
 *      the time until all N are connected again.
 *
 * Figures only: nothing is asserted on timing or size. Exit 1 when the
 * set-up failed, a request failed, or a wait ran out; 2 on bad usage.
 * Bounded in count (N ≤ 20,000) and time; loopback only; the server is
 * stopped by PID. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench_agents.h"

#define CONNECT_RATE 200 /* dials a second */
#define CONNECT_SLACK_S 120
#define RECONNECT_S 120
#define SETTLE_MS 2000

double bench_now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return (x > y) - (x < y);
}

double bench_percentile(int64_t *v, size_t n, double p) {
  if (n == 0)
    return 0;
  qsort(v, n, sizeof *v, cmp_i64);
  return (double)v[(size_t)(p * (double)(n - 1) + 0.5)];
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench_agents [--agents N (1..%d, 4000)] [--seconds S "
          "(1..3600, 120)] [--api-clients C (1..%d, 64)] "
          "[--baseline-seconds S (1..600, 20)] [--postgres DSN|DIR] "
          "[--kill-server]\n",
          BENCH_MAX_AGENTS, BENCH_MAX_CLIENTS);
}

static int parse_options(int argc, char **argv, bench_opts_t *o) {
  *o = (bench_opts_t){.agents = 4000,
                      .seconds = 120,
                      .api_clients = 64,
                      .baseline_seconds = 20};
  for (int i = 1; i < argc; i++) {
    const char *flag = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    long n = value ? strtol(value, NULL, 10) : 0;
    if (strcmp(flag, "--kill-server") == 0) {
      o->kill_server = true;
      continue;
    }
    if (!value) {
      usage();
      return -1;
    }
    i++;
    if (strcmp(flag, "--agents") == 0 && n >= 1 && n <= BENCH_MAX_AGENTS)
      o->agents = (int)n;
    else if (strcmp(flag, "--seconds") == 0 && n >= 1 && n <= 3600)
      o->seconds = (int)n;
    else if (strcmp(flag, "--api-clients") == 0 && n >= 1 &&
             n <= BENCH_MAX_CLIENTS)
      o->api_clients = (int)n;
    else if (strcmp(flag, "--baseline-seconds") == 0 && n >= 1 && n <= 600)
      o->baseline_seconds = (int)n;
    else if (strcmp(flag, "--postgres") == 0 && *value)
      o->postgres = value;
    else {
      usage();
      return -1;
    }
  }
  return 0;
}

/* Every agent holds a socket here (the server raises its own limit). */
static int raise_nofile(const bench_opts_t *o) {
  struct rlimit rl;
  rlim_t need = (rlim_t)o->agents + 256 + (rlim_t)o->api_clients;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
    return -1;
  rl.rlim_cur = rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < need) {
    fprintf(stderr,
            "bench_agents: RLIMIT_NOFILE hard limit %llu is below the %llu "
            "descriptors %d agents need (ulimit -Hn)\n",
            (unsigned long long)rl.rlim_max, (unsigned long long)need,
            o->agents);
    return -1;
  }
  return 0;
}

static void print_load(const char *what, const load_result_t *r) {
  printf("  %s: %ld requests in %.1f s, %.0f req/s, p50 %.2f ms, p99 %.2f ms, "
         "%ld failed\n",
         what, r->done, r->seconds, r->rps, r->p50_ms, r->p99_ms, r->errors);
}

/* Until the agents say they are up (again: with a session started after
 * the kill) and the server says it holds them (when it reports a count),
 * or bound_s passes; whether they all were. */
static bool wait_connected(const bench_server_t *srv, sim_t *sim, int n,
                           double bound_s, bool again, int64_t *held) {
  double until = bench_now_s() + bound_s, next_note = bench_now_s() + 10;
  int64_t server = -1;
  for (;;) {
    int up = again ? sim_up_again(sim) : sim_up(sim);
    if (again && up == n && sim_up(sim) != n)
      up = sim_up(sim); /* one went down again meanwhile */
    if (up == n) {
      server = bench_server_connected(srv);
      if (server < 0 || server >= n)
        break;
    }
    if (bench_now_s() > until) {
      fprintf(stderr,
              "bench_agents: %d of %d agents up (server: %lld) after %.0f s\n",
              up, n, (long long)server, bound_s);
      *held = server;
      return false;
    }
    if (bench_now_s() > next_note) {
      printf("  ... %d of %d up\n", up, n);
      fflush(stdout);
      next_note += 10;
    }
    atr_harness_sleep_ms(up == n ? 250 : 100);
  }
  *held = server;
  return true;
}

static void print_held(int64_t held) {
  if (held < 0)
    printf(" (the server reports no session count)\n");
  else
    printf(" (the server holds %lld sessions)\n", (long long)held);
}

/* Phase 2: connect them all, then what they cost the server. */
static bool connect_all(const bench_server_t *srv, sim_t *sim, int n) {
  long rss0 = bench_server_rss_kb(srv);
  printf("\nphase 2: %d agents dial at %d/s from 127.0.x.y\n", n, CONNECT_RATE);
  double t0 = bench_now_s();
  int64_t held = -1;
  sim_connect(sim);
  if (!wait_connected(srv, sim, n, (double)n / CONNECT_RATE + CONNECT_SLACK_S,
                      false, &held))
    return false;
  printf("  all %d connected in %.1f s", n, bench_now_s() - t0);
  print_held(held);
  atr_harness_sleep_ms(SETTLE_MS);
  long rss1 = bench_server_rss_kb(srv);
  printf("  server RSS %.1f MiB before, %.1f MiB with %d agents: "
         "%.1f KiB per agent (issue 14: <= 32 KB)\n",
         (double)rss0 / 1024, (double)rss1 / 1024, n,
         (double)(rss1 - rss0) / n);
  /* what the transport counts of it: its HTTP/2 state */
  double bytes = bench_server_metric(srv, "atrium_http_session_nghttp2_bytes");
  if (bytes >= 0)
    printf("  of which HTTP/2 state (atrium_http_session_nghttp2_bytes): "
           "%.1f KiB per agent\n",
           bytes / 1024 / n);
  return true;
}

/* The p99 of v in ms, after printing its row. */
static double print_us(const char *what, int64_t *v, size_t n) {
  double p50 = bench_percentile(v, n, 0.50) / 1000;
  double p99 = bench_percentile(v, n, 0.99) / 1000;
  printf("  %s: %zu, p50 %.2f ms, p99 %.2f ms, max %.2f ms\n", what, n, p50,
         p99, bench_percentile(v, n, 1.0) / 1000);
  return p99;
}

/* The agents' own baseline: their round trips with no API load; the p99. */
static double agents_alone(sim_t *sim, int seconds) {
  printf("\nphase 2b: %d s of the agents alone (no API load)\n", seconds);
  sim_record(sim, true);
  atr_harness_sleep_ms(seconds * 1000);
  sim_record(sim, false);
  sim_figures_t f;
  sim_figures(sim, &f);
  double p99 = print_us("agent requests answered", f.rtt_us, f.nrtt);
  print_us("PING round trips", f.ping_us, f.nping);
  sim_figures_free(&f);
  return p99;
}

/* Phase 3: the agents go on while the API is loaded. */
static bool under_load(const bench_server_t *srv, sim_t *sim,
                       const bench_opts_t *o, const load_result_t *alone,
                       double agents_p99) {
  printf("\nphase 3: %d s of %d agents with the API under load (%d clients)\n",
         o->seconds, o->agents, o->api_clients);
  sim_figures_t before, f;
  sim_figures(sim, &before);
  sim_record(sim, true);
  load_result_t r;
  bool ok =
      load_run(srv->h.port, srv->owner_token, o->api_clients, o->seconds, &r);
  sim_record(sim, false);
  sim_figures(sim, &f);
  double p99 = print_us("agent requests answered (all)", f.rtt_us, f.nrtt);
  print_us("  of which report-stats", f.stats_us, f.nstats);
  printf("  agent round trip p99 %.2fx of the agents alone (issue 14: "
         "p99 < 5 ms under API load)\n",
         agents_p99 > 0 ? p99 / agents_p99 : 0);
  print_us("PING round trips", f.ping_us, f.nping);
  printf("  dropped connections: %llu (must be 0); failed agent requests: "
         "%llu\n",
         (unsigned long long)(f.drops - before.drops),
         (unsigned long long)(f.failed - before.failed));
  print_load("GET /api/v2/users/me", &r);
  printf("  API throughput %.2fx of the API alone (issue 14: >= 0.8x), "
         "p99 %.2f ms vs %.2f ms alone (issue 14: < 10 ms)\n",
         alone->rps > 0 ? r.rps / alone->rps : 0, r.p99_ms, alone->p99_ms);
  int64_t held = bench_server_connected(srv);
  printf("  agents up at the end: %d", sim_up(sim));
  print_held(held);
  ok = ok && r.errors == 0;
  sim_figures_free(&before);
  sim_figures_free(&f);
  return ok;
}

/* Phase 4: kill -9, restart, every agent back. */
static bool kill_server(bench_server_t *srv, sim_t *sim, int n) {
  printf("\nphase 4: kill -9 of the server with %d agents connected\n", n);
  sim_expect_down(sim, true);
  double t0 = bench_now_s();
  if (bench_restart(srv) != 0) {
    fprintf(stderr, "bench_agents: cannot kill the server\n");
    return false;
  }
  printf("  the server was ready again %.1f s after the kill\n",
         bench_now_s() - t0);
  int64_t held = -1;
  bool ok = wait_connected(srv, sim, n, RECONNECT_S, true, &held);
  if (ok) {
    printf("  all %d connected again %.1f s after the kill (issue 14: "
           "within 30 s)",
           n, bench_now_s() - t0);
    print_held(held);
  }
  sim_expect_down(sim, false);
  return ok;
}

static bool run(bench_server_t *srv, const bench_opts_t *o) {
  printf("\nphase 1: the API alone, %d clients, %d s\n", o->api_clients,
         o->baseline_seconds);
  load_result_t alone;
  bool ok = load_run(srv->h.port, srv->owner_token, o->api_clients,
                     o->baseline_seconds, &alone);
  print_load("GET /api/v2/users/me", &alone);
  ok = ok && alone.errors == 0;
  sim_t *sim =
      ok ? sim_new(srv->url, srv->tokens, o->agents, CONNECT_RATE) : NULL;
  ok = sim && connect_all(srv, sim, o->agents);
  double agents_p99 = ok ? agents_alone(sim, o->baseline_seconds) : 0;
  ok = ok && under_load(srv, sim, o, &alone, agents_p99);
  if (ok && o->kill_server)
    ok = kill_server(srv, sim, o->agents);
  if (sim) {
    sim_figures_t f;
    sim_figures(sim, &f);
    printf("\nover the whole run: %d agents ready, %llu dropped connections, "
           "%llu failed agent requests, %llu replies lost with a session, "
           "%llu dials without an answer\n",
           f.ready, (unsigned long long)f.drops, (unsigned long long)f.failed,
           (unsigned long long)f.lost, (unsigned long long)f.refused);
    double errors =
        bench_server_metric(srv, "atrium_agent_connection_errors_total");
    if (errors >= 0)
      printf("the server counted %.0f agent connection errors since its last "
             "start (atrium_agent_connection_errors_total)\n",
             errors);
    ok = ok && f.failed == 0 && f.ready == o->agents;
    sim_figures_free(&f);
    if (sim_stop(sim) != 0)
      ok = false;
  }
  return ok;
}

int main(int argc, char **argv) {
  bench_opts_t o;
  if (parse_options(argc, argv, &o) != 0)
    return 2;
  signal(SIGPIPE, SIG_IGN);
  setvbuf(stdout, NULL, _IOLBF, 0); /* progress shows when piped to a file */
  if (raise_nofile(&o) != 0)
    return 1;
  curl_global_init(CURL_GLOBAL_DEFAULT);
  printf("bench_agents: %d agents, %d s, %d API clients, %s%s\n", o.agents,
         o.seconds, o.api_clients, o.postgres ? "PostgreSQL" : "SQLite",
         o.kill_server ? ", kill -9 at the end" : "");
  fflush(stdout);
  bench_server_t srv;
  bool ok = bench_setup(&srv, &o) == 0;
  if (!ok) {
    fprintf(stderr, "bench_agents: the set-up failed\n");
    atr_harness_print_log_tail(&srv.h, 30);
  }
  ok = ok && run(&srv, &o);
  fflush(stdout);
  if (!ok)
    atr_harness_print_log_tail(&srv.h, 20);
  bench_teardown(&srv);
  curl_global_cleanup();
  return ok ? 0 : 1;
}
