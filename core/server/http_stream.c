/* core/server/http_stream.c — detached streams and the pump.
 *
 * A handler that streams (a followed build log today, agent connections
 * later) detaches its exchange and returns, so the request worker is free
 * at once. Two pump threads step the streams: when one is woken (its
 * output drained, its client left, the server is draining, or the
 * watcher saw the store change) and at least every tick_ms. The number of
 * threads is fixed whatever the number of streams.
 *
 * A stream is never stepped by two pumps at once: its `sched` state, under
 * the pump's lock, is idle, queued, running, or running-and-woken (run
 * again after this step). When it ends the pump frees its user data,
 * logs it and hands the exchange to the loop, which frees it. */
#include <stdlib.h>
#include <time.h>

#include "atrium/error.h"
#include "http_internal.h"

#define PUMP_THREADS 2
/* how often the watcher looks at the stop flag between changes */
#define WATCH_MS 250

enum { ST_IDLE, ST_QUEUED, ST_RUNNING, ST_RERUN, ST_DONE };

struct http_pump {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  atr_http_exchange_t *all;
  atr_http_exchange_t *run_head, *run_tail;
  uint64_t next_due; /* the earliest tick of an idle stream */
  pthread_t threads[PUMP_THREADS];
  int started;
  pthread_t watcher;
  bool watching;
  bool stop;
  atr_http_server_t *srv;
};

int atr__http_stream_detach(atr_http_exchange_t *x, atr_http_step_fn step,
                            void (*free_fn)(void *), void *ud,
                            int64_t tick_ms) {
  if (!x || !x->streaming || x->detached || !step)
    return ATR_EINVAL;
  x->step = step;
  x->free_fn = free_fn;
  x->ud = ud;
  x->tick_ms = tick_ms > 0 ? tick_ms : 1000;
  x->detached = true;
  return 0;
}

/* Under the lock. */
static void enqueue(http_pump_t *p, atr_http_exchange_t *x) {
  x->sched = ST_QUEUED;
  x->run_next = NULL;
  if (p->run_tail)
    p->run_tail->run_next = x;
  else
    p->run_head = x;
  p->run_tail = x;
  pthread_cond_signal(&p->cv);
}

static void wake_locked(http_pump_t *p, atr_http_exchange_t *x) {
  if (x->sched == ST_IDLE)
    enqueue(p, x);
  else if (x->sched == ST_RUNNING)
    x->sched = ST_RERUN;
}

void http_stream_schedule(atr_http_server_t *srv, atr_http_exchange_t *x) {
  http_pump_t *p = srv->pump;
  pthread_mutex_lock(&p->mu);
  x->all_prev = NULL;
  x->all_next = p->all;
  if (p->all)
    p->all->all_prev = x;
  p->all = x;
  enqueue(p, x);
  pthread_mutex_unlock(&p->mu);
}

void http_stream_wake(atr_http_server_t *srv, atr_http_exchange_t *x) {
  http_pump_t *p = srv->pump;
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  wake_locked(p, x);
  pthread_mutex_unlock(&p->mu);
}

void http_stream_wake_all(atr_http_server_t *srv) {
  http_pump_t *p = srv->pump;
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  for (atr_http_exchange_t *x = p->all; x; x = x->all_next)
    wake_locked(p, x);
  pthread_mutex_unlock(&p->mu);
}

/* The stream is over: off the list (under the lock), then its user data
 * freed, logged, and handed to the loop (without the lock). */
static void unlink_locked(http_pump_t *p, atr_http_exchange_t *x) {
  if (x->all_prev)
    x->all_prev->all_next = x->all_next;
  else
    p->all = x->all_next;
  if (x->all_next)
    x->all_next->all_prev = x->all_prev;
  x->sched = ST_DONE;
}

static void finish(atr_http_server_t *srv, atr_http_exchange_t *x) {
  if (x->free_fn)
    x->free_fn(x->ud);
  http_account(srv, x);
  http_msg_t *m = calloc(1, sizeof *m);
  if (!m)
    abort(); /* the connection's reference could not go back */
  *m = (http_msg_t){.kind = HTTP_MSG_END, .conn = x->conn, .x = x};
  http_post(srv, m);
  atomic_fetch_sub(&srv->in_flight, 1);
}

/* Queue the idle streams whose tick is due; the wait until the next. */
static uint64_t queue_due(http_pump_t *p, uint64_t now) {
  if (now < p->next_due)
    return p->next_due - now;
  uint64_t next = now + 60000;
  for (atr_http_exchange_t *x = p->all; x; x = x->all_next) {
    if (x->sched == ST_IDLE && x->due_ms <= now)
      enqueue(p, x);
    else if (x->sched == ST_IDLE && x->due_ms < next)
      next = x->due_ms;
  }
  p->next_due = next;
  return next - now;
}

static void timed_wait(http_pump_t *p, uint64_t ms) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += (time_t)(ms / 1000);
  ts.tv_nsec += (long)(ms % 1000) * 1000000L;
  if (ts.tv_nsec >= 1000000000L) {
    ts.tv_sec++;
    ts.tv_nsec -= 1000000000L;
  }
  pthread_cond_timedwait(&p->cv, &p->mu, &ts);
}

static int run_step(atr_http_server_t *srv, atr_http_exchange_t *x) {
  if (atomic_load(&x->conn->gone) || atomic_load(&srv->draining))
    return ATR_HTTP_STEP_DONE;
  return x->step(x, x->ud);
}

static void *pump_main(void *arg) {
  http_pump_t *p = arg;
  pthread_mutex_lock(&p->mu);
  while (!p->stop) {
    uint64_t wait = queue_due(p, http_now_ms());
    atr_http_exchange_t *x = p->run_head;
    if (!x) {
      timed_wait(p, wait);
      continue;
    }
    p->run_head = x->run_next;
    if (!p->run_head)
      p->run_tail = NULL;
    x->sched = ST_RUNNING;
    pthread_mutex_unlock(&p->mu);
    int rc = run_step(p->srv, x);
    pthread_mutex_lock(&p->mu);
    if (rc == ATR_HTTP_STEP_DONE) {
      unlink_locked(p, x);
      pthread_mutex_unlock(&p->mu);
      finish(p->srv, x);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    x->due_ms = http_now_ms() + (uint64_t)x->tick_ms;
    if (x->due_ms < p->next_due)
      p->next_due = x->due_ms;
    if (rc == ATR_HTTP_STEP_AGAIN || x->sched == ST_RERUN)
      enqueue(p, x);
    else
      x->sched = ST_IDLE;
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* Wakes every stream when the store says something changed. */
static void *watch_main(void *arg) {
  http_pump_t *p = arg;
  atr_http_server_t *srv = p->srv;
  uint64_t seen = srv->cfg.wait_change(srv->cfg.wait_change_user_data, 0, 0);
  for (;;) {
    pthread_mutex_lock(&p->mu);
    bool stop = p->stop;
    pthread_mutex_unlock(&p->mu);
    if (stop)
      break;
    uint64_t started = http_now_ms();
    uint64_t gen =
        srv->cfg.wait_change(srv->cfg.wait_change_user_data, seen, WATCH_MS);
    if (gen != seen) {
      seen = gen;
      http_stream_wake_all(srv);
    } else if (http_now_ms() - started < 10) {
      /* the source is stopping and no longer waits: do not spin */
      nanosleep(&(struct timespec){0, WATCH_MS * 1000000L}, NULL);
    }
  }
  return NULL;
}

int http_pump_start(atr_http_server_t *srv) {
  http_pump_t *p = calloc(1, sizeof *p);
  if (!p)
    return ATR_ENOMEM;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->cv, NULL);
  p->srv = srv;
  p->next_due = UINT64_MAX;
  srv->pump = p;
  for (int i = 0; i < PUMP_THREADS; i++) {
    if (pthread_create(&p->threads[i], NULL, pump_main, p) != 0)
      return ATR_EIO;
    p->started++;
  }
  if (srv->cfg.wait_change) {
    if (pthread_create(&p->watcher, NULL, watch_main, p) != 0)
      return ATR_EIO;
    p->watching = true;
  }
  return 0;
}

/* Join the pumps; streams still open end here (their clients see the
 * connection close). */
void http_pump_stop(atr_http_server_t *srv) {
  http_pump_t *p = srv->pump;
  if (!p)
    return;
  pthread_mutex_lock(&p->mu);
  p->stop = true;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (int i = 0; i < p->started; i++)
    pthread_join(p->threads[i], NULL);
  if (p->watching)
    pthread_join(p->watcher, NULL);
  while (p->all) {
    atr_http_exchange_t *x = p->all;
    unlink_locked(p, x);
    finish(srv, x);
  }
}

/* After the loop stopped: it may wake streams until then. */
void http_pump_free(atr_http_server_t *srv) {
  http_pump_t *p = srv->pump;
  if (!p)
    return;
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->cv);
  free(p);
  srv->pump = NULL;
}
