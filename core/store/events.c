/* core/events.c — see events.h. One channel, "atrium_jobs"; payloads are
 * "posted", "changed <job id>", "cancel <job id>" and
 * "agent <agent id> <what>". */
#include "events.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atrium/error.h"
#include "log.h"

#define CHANNEL "atrium_jobs"

struct atr_events {
  atr_store_t *store;
  atr_db_sub_t *sub;
  pthread_mutex_t lock; /* protects gen, stopping, cancel_fn, agent_fn */
  pthread_cond_t moved;
  uint64_t gen[3];
  bool stopping;
  atr_events_cancel_fn cancel_fn;
  void *cancel_ud;
  atr_events_agent_fn agent_fn;
  void *agent_ud;
};

static void bump(atr_events_t *ev, atr_event_kind_t kind) {
  pthread_mutex_lock(&ev->lock);
  ev->gen[kind]++;
  pthread_cond_broadcast(&ev->moved);
  pthread_mutex_unlock(&ev->lock);
}

/* "<agent id> <what>" to the hook, then wake the waiters. */
static void deliver_agent(atr_events_t *ev, const char *rest) {
  char id[37] = "", what[32] = "";
  if (sscanf(rest, "%36s %31s", id, what) == 2) {
    pthread_mutex_lock(&ev->lock);
    atr_events_agent_fn fn = ev->agent_fn;
    void *ud = ev->agent_ud;
    pthread_mutex_unlock(&ev->lock);
    if (fn)
      fn(ud, id, what);
  }
  bump(ev, ATR_EVENT_AGENT);
}

static void deliver(atr_events_t *ev, const char *payload, unsigned flags) {
  if (flags & ATR_DB_SUB_MISSED || !payload) {
    /* Messages may be lost: everyone looks again. */
    bump(ev, ATR_EVENT_POSTED);
    bump(ev, ATR_EVENT_CHANGED);
    bump(ev, ATR_EVENT_AGENT);
    return;
  }
  if (strcmp(payload, "posted") == 0) {
    bump(ev, ATR_EVENT_POSTED);
  } else if (strncmp(payload, "changed ", 8) == 0) {
    bump(ev, ATR_EVENT_CHANGED);
  } else if (strncmp(payload, "cancel ", 7) == 0) {
    bump(ev, ATR_EVENT_CHANGED);
    pthread_mutex_lock(&ev->lock);
    atr_events_cancel_fn fn = ev->cancel_fn;
    void *ud = ev->cancel_ud;
    pthread_mutex_unlock(&ev->lock);
    if (fn)
      fn(ud, payload + 7);
  } else if (strncmp(payload, "agent ", 6) == 0) {
    deliver_agent(ev, payload + 6);
  }
}

static void on_message(void *ud, const char *channel, const char *payload,
                       unsigned flags) {
  (void)channel;
  deliver(ud, payload, flags);
}

int atr_events_start(atr_store_t *store, atr_events_t **out, char **err) {
  atr_events_t *ev = calloc(1, sizeof *ev);
  if (!ev)
    return ATR_ENOMEM;
  ev->store = store;
  pthread_mutex_init(&ev->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&ev->moved, &ca);
  pthread_condattr_destroy(&ca);
  int rc = atr_db_subscribe(store, CHANNEL, on_message, ev, &ev->sub, err);
  if (rc == ATR_ENOTSUP) {
    rc = 0; /* direct delivery only */
    ev->sub = NULL;
  }
  if (rc != 0) {
    pthread_cond_destroy(&ev->moved);
    pthread_mutex_destroy(&ev->lock);
    free(ev);
    return rc;
  }
  *out = ev;
  return 0;
}

void atr_events_stop(atr_events_t *ev) {
  if (!ev)
    return;
  atr_db_unsubscribe(ev->store, ev->sub);
  pthread_mutex_lock(&ev->lock);
  ev->sub = NULL;
  ev->stopping = true;
  pthread_cond_broadcast(&ev->moved);
  pthread_mutex_unlock(&ev->lock);
}

void atr_events_free(atr_events_t *ev) {
  if (!ev)
    return;
  pthread_cond_destroy(&ev->moved);
  pthread_mutex_destroy(&ev->lock);
  free(ev);
}

static void send_event(atr_events_t *ev, const char *payload) {
  if (!ev)
    return;
  if (!ev->sub) {
    deliver(ev, payload, 0);
    return;
  }
  char *err = NULL;
  int rc = atr_db_publish(ev->store, CHANNEL, payload, &err);
  if (rc != 0) {
    /* Deliver here at least; other servers find out by polling. */
    atr_log(ATR_LOG_WARN, "events", "cannot publish %s: %s", payload,
            err ? err : atr_strerror(rc));
    deliver(ev, payload, 0);
  }
  free(err);
}

void atr_events_job_posted(atr_events_t *ev) {
  send_event(ev, "posted");
}

void atr_events_job_changed(atr_events_t *ev, const char *job_id) {
  char payload[64];
  snprintf(payload, sizeof payload, "changed %s", job_id);
  send_event(ev, payload);
}

void atr_events_job_cancel(atr_events_t *ev, const char *job_id) {
  char payload[64];
  snprintf(payload, sizeof payload, "cancel %s", job_id);
  send_event(ev, payload);
}

void atr_events_on_cancel(atr_events_t *ev, atr_events_cancel_fn fn,
                          void *user_data) {
  pthread_mutex_lock(&ev->lock);
  ev->cancel_fn = fn;
  ev->cancel_ud = user_data;
  pthread_mutex_unlock(&ev->lock);
}

void atr_events_agent(atr_events_t *ev, const char *agent_id,
                      const char *what) {
  char payload[96];
  if (!agent_id || !what || strlen(agent_id) > 36 || strlen(what) > 31 ||
      strchr(agent_id, ' ') || strchr(what, ' '))
    return;
  snprintf(payload, sizeof payload, "agent %s %s", agent_id, what);
  send_event(ev, payload);
}

void atr_events_on_agent(atr_events_t *ev, atr_events_agent_fn fn,
                         void *user_data) {
  pthread_mutex_lock(&ev->lock);
  ev->agent_fn = fn;
  ev->agent_ud = user_data;
  pthread_mutex_unlock(&ev->lock);
}

uint64_t atr_events_gen(atr_events_t *ev, atr_event_kind_t kind) {
  pthread_mutex_lock(&ev->lock);
  uint64_t g = ev->gen[kind];
  pthread_mutex_unlock(&ev->lock);
  return g;
}

uint64_t atr_events_wait(atr_events_t *ev, atr_event_kind_t kind, uint64_t seen,
                         int64_t timeout_ms) {
  struct timespec until;
  clock_gettime(CLOCK_MONOTONIC, &until);
  until.tv_sec += timeout_ms / 1000;
  until.tv_nsec += (timeout_ms % 1000) * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  pthread_mutex_lock(&ev->lock);
  while (ev->gen[kind] == seen && !ev->stopping)
    if (pthread_cond_timedwait(&ev->moved, &ev->lock, &until) == ETIMEDOUT)
      break;
  uint64_t g = ev->gen[kind];
  pthread_mutex_unlock(&ev->lock);
  return g;
}

int atr_events_stopping(atr_events_t *ev) {
  pthread_mutex_lock(&ev->lock);
  int s = ev->stopping;
  pthread_mutex_unlock(&ev->lock);
  return s;
}
