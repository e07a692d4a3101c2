/* core/server/http_pool.c — a lane: a fixed set of threads taking whole
 * requests from one FIFO. The workers' lane has http.threads of them; the
 * probe lane one, for /readyz alone, so readiness never queues behind
 * requests that keep every worker busy; the agents lane
 * http.agent_threads, for sessions and agents' requests (and the end of
 * each session: its closed() callback). */
#include <stdlib.h>

#include "http_internal.h"

static void *lane_main(void *arg) {
  http_lane_t *lane = arg;
  pthread_mutex_lock(&lane->mu);
  for (;;) {
    while (!lane->head && !lane->stop)
      pthread_cond_wait(&lane->cv, &lane->mu);
    if (lane->stop)
      break;
    http_job_t *job = lane->head;
    lane->head = job->next;
    if (!lane->head)
      lane->tail = NULL;
    pthread_mutex_unlock(&lane->mu);
    if (job->call)
      job->call(job->arg);
    else
      http_handle(lane->srv, job->req, job->conn, job->conn->ip);
    free(job);
    pthread_mutex_lock(&lane->mu);
  }
  pthread_mutex_unlock(&lane->mu);
  return NULL;
}

int http_lane_start(http_lane_t *lane, atr_http_server_t *srv, int n) {
  pthread_mutex_init(&lane->mu, NULL);
  pthread_cond_init(&lane->cv, NULL);
  lane->srv = srv;
  lane->threads = calloc((size_t)n, sizeof *lane->threads);
  if (!lane->threads)
    return -1;
  lane->nthreads = n;
  for (int i = 0; i < n; i++) {
    if (pthread_create(&lane->threads[i], NULL, lane_main, lane) != 0)
      return -1;
    lane->started++;
  }
  return 0;
}

/* An unanswered request goes back to the loop: its connection closes. */
static void give_back(http_lane_t *lane, http_job_t *job) {
  http_msg_t *m = calloc(1, sizeof *m);
  if (m) {
    *m = (http_msg_t){.kind = HTTP_MSG_DONE,
                      .conn = job->conn,
                      .close = true,
                      .stream_id = job->req->stream_id};
    http_post(lane->srv, m);
  }
  http_req_free(job->req);
  free(job);
}

/* false when the lane is stopped: the caller runs the job itself. */
static bool enqueue(http_lane_t *lane, http_job_t *job) {
  pthread_mutex_lock(&lane->mu);
  if (lane->stopped) {
    pthread_mutex_unlock(&lane->mu);
    return false;
  }
  if (lane->tail)
    lane->tail->next = job;
  else
    lane->head = job;
  lane->tail = job;
  pthread_cond_signal(&lane->cv);
  pthread_mutex_unlock(&lane->mu);
  return true;
}

/* Called on the loop thread; the job carries the connection's reference
 * (conn->ip is read by the worker: it never changes after accept). */
void http_lane_push(http_lane_t *lane, http_req_t *req, http_conn_t *conn) {
  http_job_t *job = calloc(1, sizeof *job);
  if (!job)
    abort(); /* the reference could not be returned */
  job->req = req;
  job->conn = conn;
  if (!enqueue(lane, job))
    give_back(lane, job);
}

void http_lane_call(http_lane_t *lane, void (*call)(void *), void *arg) {
  http_job_t *job = calloc(1, sizeof *job);
  if (!job)
    abort(); /* what call frees would leak, its callback never run */
  job->call = call;
  job->arg = arg;
  if (!lane->threads || !enqueue(lane, job)) {
    free(job);
    call(arg);
  }
}

/* Join the threads; requests still queued go back to the loop unanswered
 * (their connections close). */
void http_lane_stop(http_lane_t *lane) {
  if (!lane->threads)
    return;
  pthread_mutex_lock(&lane->mu);
  lane->stop = true;
  pthread_cond_broadcast(&lane->cv);
  pthread_mutex_unlock(&lane->mu);
  for (int i = 0; i < lane->started; i++)
    pthread_join(lane->threads[i], NULL);
  pthread_mutex_lock(&lane->mu);
  lane->stopped = true;
  http_job_t *left = lane->head;
  lane->head = lane->tail = NULL;
  pthread_mutex_unlock(&lane->mu);
  while (left) {
    http_job_t *job = left;
    left = job->next;
    if (job->call) {
      job->call(job->arg);
      free(job);
    } else {
      give_back(lane, job);
    }
  }
}

/* The loop may still push (and give back) until it stopped. */
void http_lane_free(http_lane_t *lane) {
  if (!lane->threads)
    return;
  free(lane->threads);
  lane->threads = NULL;
  pthread_mutex_destroy(&lane->mu);
  pthread_cond_destroy(&lane->cv);
}
