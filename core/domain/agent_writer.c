/* core/domain/agent_writer.c — see agent_writer.h: one thread committing
 * the agents' queued reports, many per transaction. */
#include "agent_writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agents_internal.h"
#include "atrium/error.h"
#include "log.h"

#define DEFAULT_INTERVAL_MS 200
#define DEFAULT_BATCH 512
#define DEFAULT_CAPACITY 8192
#define STOP_BUDGET_MS 5000
/* Metadata keys kept per queued report (an agent has at most 32 items a
 * report; merged reports may name others). */
#define MERGED_KEYS_MAX 64

typedef enum kind { KIND_STATS, KIND_METADATA } kind_t;

typedef struct item {
  char agent_id[37];
  kind_t kind;
  int64_t at_us; /* stats */
  char *stats;
  json_t *metadata; /* [{key, value, error, at}] */
} item_t;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t wake; /* the writer: a batch is full, flush, stop */
  pthread_cond_t done; /* flushers: committed moved */
  pthread_t thread;
  bool running, stopping, flush_now;
  const atr_domain_t *dom;
  atr_agent_writer_config_t cfg;
  item_t *q, *spare; /* cfg.capacity each; q holds n */
  size_t n;
  uint64_t queued;    /* reports queued (or merged) so far */
  uint64_t committed; /* every report up to this one is committed */
  _Atomic int64_t stop_deadline_ms; /* 0: not stopping; read unlocked */
} w = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct timespec mono_at(int64_t ms) {
  return (struct timespec){.tv_sec = ms / 1000,
                           .tv_nsec = (long)(ms % 1000) * 1000000};
}

static void item_free(item_t *it) {
  free(it->stats);
  json_decref(it->metadata);
  *it = (item_t){0};
}

/* ---- the writes (also the synchronous path's) -------------------------- */

int atr__agent_store_stats(atr_db_t *db, const char *agent_id,
                           const char *stats, int64_t at_us, char **err) {
  atr_value_t p[] = {atr_v_text(stats), atr_v_time(at_us), atr_v_time(at_us),
                     atr_v_text(agent_id)};
  int64_t changes = 0;
  int rc = atr_db_exec(db,
                       "UPDATE workspace_agents SET stats = ?, stats_at = ?, "
                       "updated_at = ? WHERE id = ? AND revoked_at IS NULL",
                       p, 4, &changes, err);
  return rc == 0 && changes == 0 ? ATR_EACCES : rc;
}

int atr__agent_store_metadata(atr_db_t *db, const char *agent_id,
                              const json_t *items, char **err) {
  int rc = atr__agent_live(db, agent_id, err);
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) {
    if (rc != 0)
      break;
    atr_value_t p[] = {
        atr_v_text(json_string_value(json_object_get(it, "value"))),
        atr_v_text(json_string_value(json_object_get(it, "error"))),
        atr_v_time(json_integer_value(json_object_get(it, "at"))),
        atr_v_text(agent_id),
        atr_v_text(json_string_value(json_object_get(it, "key")))};
    rc = atr_db_exec(db,
                     "UPDATE workspace_agent_metadata SET value = ?, error "
                     "= ?, collected_at = ? WHERE agent_id = ? AND key = ?",
                     p, 5, NULL, err);
  }
  return rc;
}

typedef struct batch {
  item_t *items;
  size_t n;
  size_t dropped; /* revoked agents' */
} batch_t;

static int batch_tx(atr_db_t *db, void *ud, char **err) {
  batch_t *b = ud;
  b->dropped = 0;
  for (size_t i = 0; i < b->n; i++) {
    item_t *it = &b->items[i];
    int rc =
        it->kind == KIND_STATS
            ? atr__agent_store_stats(db, it->agent_id, it->stats, it->at_us,
                                     err)
            : atr__agent_store_metadata(db, it->agent_id, it->metadata, err);
    if (rc == ATR_EACCES) {
      b->dropped++; /* revoked meanwhile: nothing of it is kept */
      continue;
    }
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Commit items in transactions of at most cfg.batch; past the stop
 * deadline the rest is dropped. */
static void commit(item_t *items, size_t n) {
  for (size_t off = 0; off < n; off += w.cfg.batch) {
    int64_t deadline = atomic_load(&w.stop_deadline_ms);
    if (deadline && mono_ms() > deadline) {
      atr_log(ATR_LOG_WARN, "agents",
              "stopping: %zu queued agent report(s) dropped after %dms",
              n - off, STOP_BUDGET_MS);
      return;
    }
    batch_t b = {items + off, n - off < w.cfg.batch ? n - off : w.cfg.batch, 0};
    char *err = NULL;
    int rc = atr_db_tx(w.dom->store, ATR_TX_WRITE, batch_tx, &b, &err);
    if (rc != 0)
      atr_log(ATR_LOG_ERROR, "agents",
              "%zu agent report(s) not stored (the next ones replace "
              "them): %s",
              b.n, err ? err : atr_strerror(rc));
    free(err);
  }
}

/* Wait (w.mu held) until a batch is full, the interval since since_ms
 * passed, a flush or the stop. */
static void wait_for_work(int64_t since_ms) {
  struct timespec until = mono_at(since_ms + w.cfg.interval_ms);
  while (!w.stopping && !w.flush_now && w.n < w.cfg.batch)
    if (pthread_cond_timedwait(&w.wake, &w.mu, &until) == ETIMEDOUT)
      break;
}

static void *writer_main(void *arg) {
  (void)arg;
  pthread_mutex_lock(&w.mu);
  for (;;) {
    wait_for_work(mono_ms());
    if (w.n == 0 && w.stopping)
      break;
    item_t *taken = w.q;
    size_t n = w.n;
    uint64_t upto = w.queued;
    w.q = w.spare;
    w.spare = NULL;
    w.n = 0;
    w.flush_now = false;
    pthread_mutex_unlock(&w.mu);
    commit(taken, n);
    for (size_t i = 0; i < n; i++)
      item_free(&taken[i]);
    pthread_mutex_lock(&w.mu);
    w.spare = taken;
    w.committed = upto;
    pthread_cond_broadcast(&w.done);
  }
  pthread_mutex_unlock(&w.mu);
  return NULL;
}

/* ---- life ------------------------------------------------------------------ */

static void init_conds(void) {
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&w.wake, &a);
  pthread_cond_init(&w.done, &a);
  pthread_condattr_destroy(&a);
}

int atr_agent_writer_start(const atr_domain_t *dom,
                           const atr_agent_writer_config_t *cfg, char **err) {
  pthread_mutex_lock(&w.mu);
  if (w.running) {
    pthread_mutex_unlock(&w.mu);
    *err = strdup("the agent writer runs already");
    return ATR_EEXIST;
  }
  atr_agent_writer_config_t c = cfg ? *cfg : (atr_agent_writer_config_t){0};
  c.interval_ms = c.interval_ms > 0 ? c.interval_ms : DEFAULT_INTERVAL_MS;
  c.batch = c.batch ? c.batch : DEFAULT_BATCH;
  c.capacity = c.capacity ? c.capacity : DEFAULT_CAPACITY;
  w.q = calloc(c.capacity, sizeof *w.q);
  w.spare = calloc(c.capacity, sizeof *w.spare);
  if (!w.q || !w.spare) {
    free(w.q);
    free(w.spare);
    w.q = w.spare = NULL;
    pthread_mutex_unlock(&w.mu);
    *err = strdup("out of memory");
    return ATR_ENOMEM;
  }
  init_conds();
  w.dom = dom;
  w.cfg = c;
  w.n = 0;
  w.queued = w.committed = 0;
  w.stopping = w.flush_now = false;
  atomic_store(&w.stop_deadline_ms, 0);
  int rc = pthread_create(&w.thread, NULL, writer_main, NULL);
  w.running = rc == 0;
  if (rc != 0) {
    free(w.q);
    free(w.spare);
    w.q = w.spare = NULL;
    pthread_cond_destroy(&w.wake);
    pthread_cond_destroy(&w.done);
    *err = strdup("cannot start the agent writer thread");
  }
  pthread_mutex_unlock(&w.mu);
  return rc == 0 ? 0 : ATR_ENOMEM;
}

void atr_agent_writer_stop(void) {
  pthread_mutex_lock(&w.mu);
  if (!w.running || w.stopping) {
    pthread_mutex_unlock(&w.mu);
    return;
  }
  w.stopping = true;
  atomic_store(&w.stop_deadline_ms, mono_ms() + STOP_BUDGET_MS);
  pthread_cond_signal(&w.wake);
  pthread_mutex_unlock(&w.mu);
  pthread_join(w.thread, NULL);
  pthread_mutex_lock(&w.mu);
  w.running = false;
  w.stopping = false;
  pthread_cond_broadcast(&w.done);
  free(w.q);
  free(w.spare);
  w.q = w.spare = NULL;
  pthread_mutex_unlock(&w.mu);
  /* a flusher may still wait on done: the conditions stay (they are
   * initialised again by the next start, after every waiter left) */
}

int atr_agent_writer_flush(int64_t timeout_ms) {
  pthread_mutex_lock(&w.mu);
  if (!w.running) {
    pthread_mutex_unlock(&w.mu);
    return 0;
  }
  uint64_t target = w.queued;
  w.flush_now = true;
  pthread_cond_signal(&w.wake);
  struct timespec until = mono_at(mono_ms() + timeout_ms);
  int rc = 0;
  while (w.running && w.committed < target && rc == 0)
    if (pthread_cond_timedwait(&w.done, &w.mu, &until) == ETIMEDOUT)
      rc = w.committed < target ? ATR_ETIMEDOUT : 0;
  pthread_mutex_unlock(&w.mu);
  return rc;
}

bool atr__agent_writer_running(void) {
  pthread_mutex_lock(&w.mu);
  bool on = w.running && !w.stopping;
  pthread_mutex_unlock(&w.mu);
  return on;
}

/* ---- queueing ---------------------------------------------------------------- */

static item_t *queued_of(const char *agent_id, kind_t kind) {
  for (size_t i = 0; i < w.n; i++)
    if (w.q[i].kind == kind && strcmp(w.q[i].agent_id, agent_id) == 0)
      return &w.q[i];
  return NULL;
}

/* Newer items replace the queued ones of the same key. */
static void merge_metadata(json_t *old, json_t *newer) {
  size_t i;
  json_t *it;
  json_array_foreach(newer, i, it) {
    const char *key = json_string_value(json_object_get(it, "key"));
    size_t j;
    json_t *o;
    bool found = false;
    json_array_foreach(old, j, o) {
      if (strcmp(json_string_value(json_object_get(o, "key")), key) == 0) {
        json_array_set(old, j, it);
        found = true;
        break;
      }
    }
    if (!found) {
      if (json_array_size(old) >= MERGED_KEYS_MAX)
        json_array_remove(old, 0);
      json_array_append(old, it);
    }
  }
}

static int enqueue(const char *agent_id, item_t *in) {
  pthread_mutex_lock(&w.mu);
  int rc = 0;
  item_t *it = NULL;
  if (!w.running || w.stopping)
    rc = ATR_ECANCELED;
  else if ((it = queued_of(agent_id, in->kind)) != NULL) {
    if (in->kind == KIND_STATS) {
      free(it->stats);
      it->stats = in->stats;
      it->at_us = in->at_us;
      in->stats = NULL;
    } else {
      merge_metadata(it->metadata, in->metadata);
    }
  } else if (w.n >= w.cfg.capacity) {
    rc = ATR_EAGAIN;
  } else {
    it = &w.q[w.n++];
    *it = *in;
    snprintf(it->agent_id, sizeof it->agent_id, "%s", agent_id);
    *in = (item_t){0};
  }
  if (rc == 0) {
    w.queued++;
    if (w.n >= w.cfg.batch)
      pthread_cond_signal(&w.wake);
  }
  pthread_mutex_unlock(&w.mu);
  item_free(in);
  return rc;
}

int atr__agent_writer_stats(const char *agent_id, char *stats, int64_t at_us) {
  item_t in = {.kind = KIND_STATS, .stats = stats, .at_us = at_us};
  return enqueue(agent_id, &in);
}

int atr__agent_writer_metadata(const char *agent_id, json_t *items) {
  item_t in = {.kind = KIND_METADATA, .metadata = items};
  return enqueue(agent_id, &in);
}
