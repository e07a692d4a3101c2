/* core/server/http_pool.c — a lane: a fixed set of threads taking whole
 * requests from one FIFO. The workers' lane has http.threads of them; the
 * probe lane one, for /readyz alone, so readiness never queues behind
 * requests that keep every worker busy. */
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

/* Called on the loop thread; the job carries the connection's reference
 * (conn->ip is read by the worker: it never changes after accept). */
void http_lane_push(http_lane_t *lane, http_req_t *req, http_conn_t *conn) {
  http_job_t *job = calloc(1, sizeof *job);
  if (!job)
    abort(); /* the reference could not be returned */
  job->req = req;
  job->conn = conn;
  pthread_mutex_lock(&lane->mu);
  if (lane->tail)
    lane->tail->next = job;
  else
    lane->head = job;
  lane->tail = job;
  pthread_cond_signal(&lane->cv);
  pthread_mutex_unlock(&lane->mu);
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
  while (lane->head) {
    http_job_t *job = lane->head;
    lane->head = job->next;
    http_req_free(job->req);
    http_msg_t *m = calloc(1, sizeof *m);
    if (m) {
      *m =
          (http_msg_t){.kind = HTTP_MSG_DONE, .conn = job->conn, .close = true};
      http_post(lane->srv, m);
    }
    free(job);
  }
  lane->tail = NULL;
  free(lane->threads);
  lane->threads = NULL;
  pthread_mutex_destroy(&lane->mu);
  pthread_cond_destroy(&lane->cv);
}
