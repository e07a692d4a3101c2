/* tests/bench/api — what authentication, RBAC and storage cost an API
 * request: an authenticated GET /api/v2/users/me against the real
 * `atrium server` (SQLite), and in the same run the same bytes from a bare
 * civetweb server inside this process, one handler and nothing else.
 *
 *   bench_api [--requests N] [--connections C] [--seconds S] [--no-quickack]
 *
 * C client threads each keep one connection open (HTTP/1.1 keep-alive
 * over loopback) and send N / C requests one after another, after a short
 * untimed warm-up. Prints requests/s and p50/p99 latency for both servers
 * and their ratio. The real server runs twice, the second time with the
 * observer_prometheus plugin on (its /metrics scraped once during the
 * timed part), and the on/off throughput ratio is printed; that row is
 * left out when the build has no such plugin. Bounded: at most S seconds
 * (default 60) of requests per server, and every request goes to
 * 127.0.0.1.
 *
 * Figures only: nothing here is asserted on timing. The exit status is 1
 * when a request failed (not 200) or the setup did; the test suite runs it
 * with a small --requests as a smoke test. */
#include <arpa/inet.h>
#include <civetweb.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_http.h"
#include "client.h"
#include "harness.h"

#define MAX_CONNECTIONS 64
#define MAX_REQUESTS 10000000
#define WARMUP_PER_CONNECTION 20
#define PATH "/api/v2/users/me"
#define PASSWORD "Marmalade-Kettle-62"

typedef struct options {
  long requests;
  int connections;
  int seconds;
  bool quickack;
} options_t;

typedef struct result {
  long done;
  long errors;
  long reconnects;
  double seconds; /* wall time of the timed part */
  double p50_ms, p99_ms;
} result_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A failed step, with the answer that made it fail (NULL for none). */
static void fail(const char *step, const atr_tc_res_t *r) {
  fprintf(stderr, "bench_api: %s", step);
  if (r)
    fprintf(stderr, ": %ld %s", r->status, r->status ? r->body : "(no answer)");
  fputc('\n', stderr);
}

/* ---- the client: one keep-alive connection per thread ------------------- */

typedef struct worker {
  const char *request; /* the whole request, sent as is */
  size_t request_len;
  long count;      /* timed requests to send */
  double deadline; /* stop sending after this (now_s) */
  double *latency; /* count entries, seconds */
  long done, errors, reconnects;
  double started, finished;
  int port;
  bool quickack; /* acknowledge every segment at once */
} worker_t;

/* One request on *fd, reconnecting when needed; 1 for a 200. */
static int one_request(worker_t *w, int *fd) {
  for (int attempt = 0; attempt < 2; attempt++) {
    if (*fd < 0) {
      *fd = bench_connect_loopback(w->port);
      if (*fd < 0)
        return 0;
      w->reconnects++;
    }
    bool keep = false;
    int status = bench_send_all(*fd, w->request, w->request_len) == 0
                     ? bench_read_response(*fd, w->quickack, &keep)
                     : -1;
    if (status < 0 || !keep) {
      close(*fd);
      *fd = -1;
    }
    if (status >= 0)
      return status == 200;
  }
  return 0;
}

static void *run_worker(void *arg) {
  worker_t *w = arg;
  int fd = -1;
  for (int i = 0; i < WARMUP_PER_CONNECTION; i++)
    one_request(w, &fd);
  w->reconnects = 0;
  w->started = now_s();
  for (long i = 0; i < w->count && now_s() < w->deadline; i++) {
    double t0 = now_s();
    if (!one_request(w, &fd))
      w->errors++;
    w->latency[w->done++] = now_s() - t0;
  }
  w->finished = now_s();
  if (fd >= 0)
    close(fd);
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double percentile(const double *sorted, long n, double p) {
  if (n == 0)
    return 0;
  long i = (long)(p * (double)(n - 1) + 0.5);
  return sorted[i];
}

/* Drive `port` with the options' load; false when it could not run. */
static bool drive(int port, const char *token, const options_t *o,
                  result_t *out) {
  char request[512];
  int len = snprintf(request, sizeof request,
                     "GET " PATH " HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Atrium-Session-Token: %s\r\n\r\n",
                     port, token);
  worker_t w[MAX_CONNECTIONS];
  pthread_t threads[MAX_CONNECTIONS];
  double *all = calloc((size_t)o->requests, sizeof *all);
  if (!all)
    return false;
  double deadline = now_s() + o->seconds;
  long offset = 0;
  int started = 0;
  for (int i = 0; i < o->connections; i++) {
    long share = o->requests / o->connections +
                 (i < o->requests % o->connections ? 1 : 0);
    w[i] = (worker_t){.port = port,
                      .request = request,
                      .request_len = (size_t)len,
                      .quickack = o->quickack,
                      .count = share,
                      .deadline = deadline,
                      .latency = all + offset};
    offset += share;
    if (pthread_create(&threads[i], NULL, run_worker, &w[i]) != 0)
      break;
    started++;
  }
  *out = (result_t){0};
  double first = 0, last = 0;
  long n = 0;
  for (int i = 0; i < started; i++) {
    pthread_join(threads[i], NULL);
    out->errors += w[i].errors;
    out->reconnects += w[i].reconnects;
    if (first == 0 || w[i].started < first)
      first = w[i].started;
    if (w[i].finished > last)
      last = w[i].finished;
    /* pack each worker's latencies together */
    memmove(all + n, w[i].latency, (size_t)w[i].done * sizeof *all);
    n += w[i].done;
  }
  out->done = n;
  out->seconds = last - first;
  qsort(all, (size_t)n, sizeof *all, cmp_double);
  out->p50_ms = percentile(all, n, 0.50) * 1000.0;
  out->p99_ms = percentile(all, n, 0.99) * 1000.0;
  free(all);
  return started == o->connections;
}

/* ---- the real server --------------------------------------------------------- */

/* `metrics_port` > 0 turns observer_prometheus on, listening there. */
static char *config_text(int threads, int metrics_port) {
  char prom[160] = "";
  if (metrics_port > 0)
    snprintf(prom, sizeof prom,
             "  observer_prometheus:\n    enabled: true\n"
             "    listen_address: \"127.0.0.1:%d\"\n",
             metrics_port);
  char *text = NULL;
  /* warn: the per-request info line is not what is being measured; the
   * rate limits would turn the load away with 429 */
  if (asprintf(&text,
               "data_dir: data\n"
               "plugin_dirs: [%s]\n"
               "log:\n  level: warn\n"
               "http:\n  threads: %d\n"
               "  rate_limit:\n    login: 0\n    api: 0\n"
               "plugins:\n"
               "  storage_sqlite:\n    enabled: true\n"
               "  auth_password:\n    enabled: true\n"
               "    memory_cost: 8MiB\n    time_cost: 1\n%s",
               ATR_TEST_PLUGIN_DIR, threads, prom) < 0)
    return NULL;
  return text;
}

/* The owner's session token (malloc'd) and the exact body of GET PATH. */
static char *sign_in(const atr_harness_t *h, char **me_body) {
  json_t *first = json_pack("{s:s, s:s, s:s}", "email", "bench@example.com",
                            "username", "bench", "password", PASSWORD);
  atr_tc_res_t r = atr_tc_call(h->port, &(atr_tc_req_t){.method = "POST",
                                                        .path = "/api/v2/"
                                                                "users/first",
                                                        .body = first});
  json_decref(first);
  if (r.status != 201) {
    fail("POST /api/v2/users/first", &r);
    atr_tc_res_free(&r);
    return NULL;
  }
  atr_tc_res_free(&r);
  json_t *login = json_pack("{s:s, s:s}", "email", "bench@example.com",
                            "password", PASSWORD);
  r = atr_tc_call(h->port, &(atr_tc_req_t){.method = "POST",
                                           .path = "/api/v2/users/login",
                                           .body = login});
  json_decref(login);
  const char *token = r.status == 201 ? atr_tc_str(&r, "session_token") : NULL;
  char *copy = token ? strdup(token) : NULL;
  if (!copy)
    fail("POST /api/v2/users/login", &r);
  atr_tc_res_free(&r);
  if (!copy)
    return NULL;
  r = atr_tc_call(h->port, &(atr_tc_req_t){.path = PATH, .token = copy});
  *me_body = r.status == 200 ? strdup(r.body) : NULL;
  if (!*me_body) {
    fail("GET " PATH, &r);
    free(copy);
    copy = NULL;
  }
  atr_tc_res_free(&r);
  return copy;
}

#ifdef ATR_BENCH_PROMETHEUS
/* A loopback port free right now, for the metrics listener. The plugin
 * could take port 0, but it says which port only in an info line, and the
 * server logs at warn here; the short race with other processes is
 * harmless in a bench. 0 when there is none. */
static int free_port(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return 0;
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}
#endif

typedef struct scrape {
  const atr_harness_t *server;
  int port;    /* the metrics listener */
  long status; /* of GET /metrics, 0 when it failed */
  size_t len;  /* bytes of the answer */
} scrape_t;

/* One GET /metrics while the load runs, so the plugin does its work. */
static void *run_scrape(void *arg) {
  scrape_t *s = arg;
  atr_tc_res_t r = atr_tc_call(s->port, &(atr_tc_req_t){.path = "/metrics"});
  s->status = r.status;
  s->len = r.len;
  atr_tc_res_free(&r);
  return NULL;
}

/* Start the real server (with observer_prometheus listening on
 * `metrics_port` when it is > 0), sign in and drive it; stop it. *body
 * gets the answer of GET PATH when it is NULL. False when it could not
 * run. */
static bool run_real(const options_t *o, int threads, int metrics_port,
                     result_t *out, char **body) {
  char *cfg = config_text(threads, metrics_port);
  atr_harness_t h;
  atr_harness_init(&h, cfg);
  free(cfg);
  atr_harness_start(&h, NULL, NULL);
  char *me = NULL;
  char *token = sign_in(&h, &me);
  bool ok = token != NULL;
  scrape_t scrape = {.server = &h, .port = metrics_port};
  pthread_t scraper;
  bool scraping = ok && metrics_port > 0 &&
                  pthread_create(&scraper, NULL, run_scrape, &scrape) == 0;
  if (ok)
    ok = drive(h.port, token, o, out);
  if (scraping) {
    pthread_join(scraper, NULL);
    if (scrape.status != 200) {
      fprintf(stderr, "bench_api: GET /metrics on port %d: %ld\n", metrics_port,
              scrape.status);
      ok = false;
    }
  }
  kill(h.pid, SIGTERM);
  atr_harness_wait(&h, 10000);
  atr_harness_cleanup(&h);
  free(token);
  if (!*body)
    *body = me;
  else
    free(me);
  return ok;
}

/* ---- the bare server ------------------------------------------------------------ */

/* Answers every request with the bytes GET PATH answered, headers alike. */
static int bare_handler(struct mg_connection *conn, void *cbdata) {
  const char *body = cbdata;
  char len[32];
  snprintf(len, sizeof len, "%zu", strlen(body));
  mg_response_header_start(conn, 200);
  mg_response_header_add(conn, "Content-Type", "application/json", -1);
  mg_response_header_add(conn, "Content-Length", len, -1);
  mg_response_header_add(conn, "X-Request-Id",
                         "00000000-0000-0000-0000-000000000000", -1);
  mg_response_header_add(conn, "Cache-Control", "no-store", -1);
  mg_response_header_send(conn);
  mg_write(conn, body, strlen(body));
  return 200;
}

static struct mg_context *bare_start(const char *body, int threads, int *port) {
  char nthreads[16];
  snprintf(nthreads, sizeof nthreads, "%d", threads);
  const char *opts[] = {"listening_ports",
                        "127.0.0.1:0",
                        "num_threads",
                        nthreads,
                        "enable_keep_alive",
                        "yes",
                        "request_timeout_ms",
                        "30000",
                        NULL};
  struct mg_callbacks cb = {0};
  struct mg_context *ctx = mg_start(&cb, NULL, opts);
  if (!ctx)
    return NULL;
  mg_set_request_handler(ctx, "/", bare_handler, (void *)body);
  struct mg_server_port ports[1];
  if (mg_get_server_ports(ctx, 1, ports) < 1) {
    mg_stop(ctx);
    return NULL;
  }
  *port = ports[0].port;
  return ctx;
}

/* ---- main ------------------------------------------------------------------------ */

static void usage(void) {
  fprintf(stderr,
          "usage: bench_api [--requests N (1..%d)] [--connections C (1..%d)] "
          "[--seconds S (1..600)] [--no-quickack]\n",
          MAX_REQUESTS, MAX_CONNECTIONS);
}

static int parse_options(int argc, char **argv, options_t *o) {
  *o = (options_t){
      .requests = 20000, .connections = 4, .seconds = 60, .quickack = true};
  for (int i = 1; i < argc; i++) {
    const char *flag = argv[i];
    if (strcmp(flag, "--no-quickack") == 0) {
      o->quickack = false;
      continue;
    }
    const char *value = i + 1 < argc ? argv[i + 1] : NULL;
    char *end = NULL;
    long n = value ? strtol(value, &end, 10) : 0;
    if (!value || !*value || *end) {
      usage();
      return -1;
    }
    if (strcmp(flag, "--requests") == 0 && n >= 1 && n <= MAX_REQUESTS)
      o->requests = n;
    else if (strcmp(flag, "--connections") == 0 && n >= 1 &&
             n <= MAX_CONNECTIONS)
      o->connections = (int)n;
    else if (strcmp(flag, "--seconds") == 0 && n >= 1 && n <= 600)
      o->seconds = (int)n;
    else {
      usage();
      return -1;
    }
    i++;
  }
  if (o->connections > o->requests)
    o->connections = (int)o->requests;
  return 0;
}

static void print_row(const char *name, const result_t *r) {
  printf("%-34s %9ld %7ld %11.1f %9.3f %9.3f\n", name, r->done, r->errors,
         r->seconds > 0 ? (double)r->done / r->seconds : 0.0, r->p50_ms,
         r->p99_ms);
}

int main(int argc, char **argv) {
  options_t o;
  if (parse_options(argc, argv, &o) != 0)
    return 2;
  signal(SIGPIPE, SIG_IGN);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  mg_init_library(0);
  /* one worker thread per connection (each serves one keep-alive
   * connection at a time), and two to spare */
  int threads = o.connections + 2;
  char *body = NULL;
  result_t real = {0}, prom = {0}, bare = {0};
  bool ok = run_real(&o, threads, 0, &real, &body);
  bool prom_ran = false;
#ifdef ATR_BENCH_PROMETHEUS
  if (ok) {
    int metrics_port = free_port();
    if (metrics_port == 0) {
      fail("no free port for the metrics listener", NULL);
      ok = false;
    } else {
      ok = run_real(&o, threads, metrics_port, &prom, &body);
      prom_ran = true;
    }
  }
#endif

  int bare_port = 0;
  struct mg_context *ctx = ok ? bare_start(body, threads, &bare_port) : NULL;
  if (ok && !ctx) {
    fail("cannot start the bare civetweb server", NULL);
    ok = false;
  }
  if (ok)
    ok = drive(bare_port, "unused-by-the-bare-server", &o, &bare);
  if (ctx)
    mg_stop(ctx);

  if (ok) {
    printf("bench_api: GET " PATH ", %ld requests over %d keep-alive "
           "connection(s) on loopback\n"
           "(server: %d HTTP threads, SQLite, log level warn; the bare "
           "server answers the same %zu-byte body; client %s)\n\n",
           o.requests, o.connections, threads, strlen(body),
           o.quickack ? "with TCP_QUICKACK, so the figures are the servers' "
                        "own work"
                      : "without TCP_QUICKACK, as an ordinary client");
    printf("%-34s %9s %7s %11s %9s %9s\n", "server", "requests", "errors",
           "requests/s", "p50 ms", "p99 ms");
    print_row("atrium (auth, RBAC, storage)", &real);
    if (prom_ran)
      print_row("atrium + observer_prometheus", &prom);
    print_row("bare civetweb (same bytes)", &bare);
    if (real.seconds > 0 && bare.seconds > 0 && real.p50_ms > 0)
      printf("\natrium / bare: %.2fx the throughput, %.2fx the p50, "
             "%.2fx the p99 latency\n",
             ((double)real.done / real.seconds) /
                 ((double)bare.done / bare.seconds),
             real.p50_ms / bare.p50_ms, real.p99_ms / bare.p99_ms);
    if (!prom_ran)
      printf(
          "prometheus plugin on/off throughput: skipped (observer_prometheus "
          "was not built)\n");
    else if (real.seconds > 0 && prom.seconds > 0 && real.done > 0)
      printf("prometheus plugin on/off throughput: %.2f\n",
             ((double)prom.done / prom.seconds) /
                 ((double)real.done / real.seconds));
    if (real.done < o.requests || bare.done < o.requests ||
        (prom_ran && prom.done < o.requests))
      printf("note: stopped at the %d s limit before all requests were "
             "sent\n",
             o.seconds);
    if (real.reconnects + prom.reconnects + bare.reconnects > 0)
      printf("note: %ld reconnection(s) during the timed part\n",
             real.reconnects + prom.reconnects + bare.reconnects);
  }
  free(body);
  mg_exit_library();
  curl_global_cleanup();
  return ok && real.errors == 0 && prom.errors == 0 && bare.errors == 0 ? 0 : 1;
}
