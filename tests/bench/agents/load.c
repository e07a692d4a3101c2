/* tests/bench/agents/load.c — the API load: keep-alive clients of GET
 * /api/v2/users/me, one thread and one connection each, the way
 * tests/bench/api drives a server (the same request, the same reading of
 * the answer, TCP_QUICKACK re-armed before each read so that Nagle on the
 * server's two writes does not meet a delayed ACK). See bench_agents.h. */
#include "bench_agents.h"
#include "bench_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PATH "/api/v2/users/me"
#define WARMUP_PER_CLIENT 20

typedef struct worker {
  int port;
  const char *request;
  size_t request_len;
  double deadline;
  int64_t *latency_us; /* grows */
  size_t done, cap;
  long errors;
  double started, finished;
} worker_t;

/* One request on *fd, reconnecting once when needed; 1 for a 200. */
static int one_request(worker_t *w, int *fd) {
  for (int attempt = 0; attempt < 2; attempt++) {
    if (*fd < 0 && (*fd = bench_connect_loopback(w->port)) < 0)
      return 0;
    bool keep = false;
    int status = bench_send_all(*fd, w->request, w->request_len) == 0
                     ? bench_read_response(*fd, true, &keep)
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

static bool record(worker_t *w, int64_t us) {
  if (w->done == w->cap) {
    size_t cap = w->cap ? w->cap * 2 : 4096;
    int64_t *p = realloc(w->latency_us, cap * sizeof *p);
    if (!p)
      return false;
    w->latency_us = p;
    w->cap = cap;
  }
  w->latency_us[w->done++] = us;
  return true;
}

static void *run_worker(void *arg) {
  worker_t *w = arg;
  int fd = -1;
  for (int i = 0; i < WARMUP_PER_CLIENT; i++)
    one_request(w, &fd);
  w->started = bench_now_s();
  while (bench_now_s() < w->deadline) {
    double t0 = bench_now_s();
    if (!one_request(w, &fd))
      w->errors++;
    if (!record(w, (int64_t)((bench_now_s() - t0) * 1e6)))
      break;
  }
  w->finished = bench_now_s();
  if (fd >= 0)
    close(fd);
  return NULL;
}

/* Every worker's latencies together; the timed part runs from the first
 * worker's start to the last one's finish. */
static void gather(worker_t *w, int n, load_result_t *out) {
  size_t total = 0;
  double first = 0, last = 0;
  for (int i = 0; i < n; i++) {
    total += w[i].done;
    out->errors += w[i].errors;
    if (first == 0 || w[i].started < first)
      first = w[i].started;
    if (w[i].finished > last)
      last = w[i].finished;
  }
  int64_t *all = malloc((total ? total : 1) * sizeof *all);
  size_t k = 0;
  for (int i = 0; all && i < n; i++) {
    memcpy(all + k, w[i].latency_us, w[i].done * sizeof *all);
    k += w[i].done;
  }
  out->done = (long)total;
  out->seconds = last - first;
  out->rps = out->seconds > 0 ? (double)total / out->seconds : 0;
  out->p50_ms = all ? bench_percentile(all, k, 0.50) / 1000.0 : 0;
  out->p99_ms = all ? bench_percentile(all, k, 0.99) / 1000.0 : 0;
  free(all);
}

bool load_run(int port, const char *token, int clients, int seconds,
              load_result_t *out) {
  char request[512];
  int len = snprintf(request, sizeof request,
                     "GET " PATH " HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                     "Atrium-Session-Token: %s\r\n\r\n",
                     port, token);
  worker_t *w = calloc((size_t)clients, sizeof *w);
  pthread_t *th = calloc((size_t)clients, sizeof *th);
  *out = (load_result_t){0};
  if (!w || !th || len <= 0 || (size_t)len >= sizeof request) {
    free(w);
    free(th);
    return false;
  }
  /* The warm-up is not timed: the deadline counts from after it, near
   * enough (20 requests take milliseconds). */
  double deadline = bench_now_s() + seconds;
  int started = 0;
  for (; started < clients; started++) {
    w[started] = (worker_t){.port = port,
                            .request = request,
                            .request_len = (size_t)len,
                            .deadline = deadline};
    if (pthread_create(&th[started], NULL, run_worker, &w[started]) != 0)
      break;
  }
  for (int i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  gather(w, started, out);
  for (int i = 0; i < started; i++)
    free(w[i].latency_us);
  free(w);
  free(th);
  return started == clients;
}
