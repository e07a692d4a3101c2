/* core/provd.c — see provd.h. */
#include "provd.h"
#include "jobproc.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atrium/error.h"
#include "atrium/provisioner.h"
#include "jobrun.h"
#include "jobrun_agent.h"
#include "log.h"
#include "stats.h"
#include "version.h"

#define KEEPER_TICK_MS 100
#define LOG_FLUSH_AGE_US 100000
#define STATS_SAMPLE_MS 10000

typedef struct daemon {
  struct atr_provd *pool;
  int index;
  pthread_t thread;
  bool started;
  char id[37];            /* "" until registered; then fixed */
  atomic_bool registered; /* id is set: the keeper may read it */
} daemon_t;

struct atr_provd {
  atr_provd_config_t cfg;
  char *access_url; /* cfg's copies */
  char *agent_bundle_dir;
  daemon_t *daemons;
  int ndaemons;
  pthread_t keeper;
  bool keeper_started;
  atomic_bool stopping;
  const char **types;
  size_t ntypes;
  pthread_mutex_t running_lock; /* protects running */
  struct atr_prov_job *running;
};

/* ---- plugins ------------------------------------------------------------- */

/* ---- registration -------------------------------------------------------- */

typedef struct reg {
  daemon_t *d;
  char name[128];
} reg_t;

static int insert_tags(atr_db_t *db, const atr_provd_t *pool, const char *id,
                       char **err) {
  atr_value_t k[] = {atr_v_text(id)};
  int rc =
      atr_db_exec(db, "DELETE FROM provisioner_daemon_tags WHERE daemon_id = ?",
                  k, 1, NULL, err);
  for (const char *const *t = pool->cfg.tags; rc == 0 && t && *t; t++) {
    const char *eq = strchr(*t, '=');
    if (!eq)
      continue;
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(eq - *t), *t);
    atr_value_t p[] = {atr_v_text(id), atr_v_text(key), atr_v_text(eq + 1)};
    rc = atr_db_exec(db,
                     "INSERT INTO provisioner_daemon_tags (daemon_id, key, "
                     "value) VALUES (?, ?, ?)",
                     p, 3, NULL, err);
  }
  return rc;
}

static char *types_json(const atr_provd_t *pool) {
  json_t *a = json_array();
  for (size_t i = 0; i < pool->ntypes; i++)
    json_array_append_new(a, json_string(pool->types[i]));
  char *s = json_dumps(a, JSON_COMPACT);
  json_decref(a);
  return s;
}

/* Upsert this daemon's row under the default organization. ATR_ENOENT
 * while there is none (no first user yet). */
static int register_tx(atr_db_t *db, void *ud, char **err) {
  reg_t *r = ud;
  const atr_provd_t *pool = r->d->pool;
  char *org = NULL;
  int rc = atr_db_query_text(db,
                             "SELECT id FROM organizations WHERE is_default "
                             "= TRUE",
                             NULL, 0, &org, err);
  if (rc != 0)
    return rc;
  atr_value_t k[] = {atr_v_text(org), atr_v_text(r->name)};
  char *id = NULL;
  rc = atr_db_query_text(db,
                         "SELECT id FROM provisioner_daemons WHERE "
                         "organization_id = ? AND name = ?",
                         k, 2, &id, err);
  char *types = types_json(pool);
  int64_t now = atr_db_now_us();
  if (rc == ATR_ENOENT) {
    free(*err);
    *err = NULL;
    atr_db_new_uuid(r->d->id);
    atr_value_t p[] = {atr_v_text(r->d->id), atr_v_time(now),
                       atr_v_text(r->name),  atr_v_text(types),
                       atr_v_time(now),      atr_v_text(ATR_VERSION),
                       atr_v_text(org)};
    rc = atr_db_exec(db,
                     "INSERT INTO provisioner_daemons (id, created_at, name, "
                     "provisioners, last_seen_at, version, organization_id) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)",
                     p, 7, NULL, err);
  } else if (rc == 0) {
    snprintf(r->d->id, sizeof r->d->id, "%s", id);
    atr_value_t p[] = {atr_v_text(types), atr_v_time(now),
                       atr_v_text(ATR_VERSION), atr_v_text(id)};
    rc = atr_db_exec(db,
                     "UPDATE provisioner_daemons SET provisioners = ?, "
                     "last_seen_at = ?, version = ? WHERE id = ?",
                     p, 4, NULL, err);
  }
  if (rc == 0)
    rc = insert_tags(db, pool, r->d->id, err);
  free(types);
  free(id);
  free(org);
  return rc;
}

static int register_daemon(daemon_t *d) {
  reg_t r = {.d = d};
  char host[64] = "localhost";
  gethostname(host, sizeof host - 1);
  snprintf(r.name, sizeof r.name, "%s-%ld-%d", host, (long)getpid(),
           d->index + 1);
  char *err = NULL;
  int rc = atr_db_tx(d->pool->cfg.store, ATR_TX_WRITE, register_tx, &r, &err);
  if (rc != 0) {
    d->id[0] = '\0';
    if (rc != ATR_ENOENT)
      atr_log(ATR_LOG_WARN, "provisioner", "daemon %d cannot register: %s",
              d->index + 1, err ? err : atr_strerror(rc));
  } else {
    atr_log(ATR_LOG_DEBUG, "provisioner", "daemon %s registered as %s", r.name,
            d->id);
  }
  free(err);
  return rc;
}

/* ---- the workers --------------------------------------------------------- */

static void running_add(atr_provd_t *pool, struct atr_prov_job *job) {
  pthread_mutex_lock(&pool->running_lock);
  job->next = pool->running;
  pool->running = job;
  bool stopping = atomic_load(&pool->stopping);
  pthread_mutex_unlock(&pool->running_lock);
  if (stopping)
    atr_jobrun_cancel(job, true);
}

static void running_remove(atr_provd_t *pool, struct atr_prov_job *job) {
  pthread_mutex_lock(&pool->running_lock);
  for (struct atr_prov_job **p = &pool->running; *p; p = &(*p)->next)
    if (*p == job) {
      *p = job->next;
      break;
    }
  pthread_mutex_unlock(&pool->running_lock);
}

static void run_claimed(daemon_t *d, atr_job_t *row) {
  atr_provd_t *pool = d->pool;
  struct atr_prov_job *job = malloc(sizeof *job);
  if (!job) {
    atr_job_clear(row);
    return;
  }
  atr_jobrun_init(job, &pool->cfg, d->id);
  job->row = *row; /* takes the strings */
  memset(row, 0, sizeof *row);
  atr_log(ATR_LOG_INFO, "provisioner", "daemon %d runs %s job %s (%s)",
          d->index + 1, job->row.type, job->row.id, job->row.provisioner);
  atr_events_job_changed(pool->cfg.events, job->row.id);
  running_add(pool, job);
  atr_jobrun_run(job);
  running_remove(pool, job);
  atr_jobrun_free(job);
  free(job);
}

static void *daemon_main(void *arg) {
  daemon_t *d = arg;
  atr_provd_t *pool = d->pool;
  atr_claimer_t who = {
      .daemon_id = d->id, .organization_id = NULL, .provisioners = pool->types};
  while (!atomic_load(&pool->stopping)) {
    uint64_t seen = atr_events_gen(pool->cfg.events, ATR_EVENT_POSTED);
    if (!d->id[0] && register_daemon(d) != 0) {
      atr_events_wait(pool->cfg.events, ATR_EVENT_POSTED, seen,
                      pool->cfg.poll_ms);
      continue;
    }
    atomic_store(&d->registered, true);
    atr_job_t row;
    char *err = NULL;
    int rc = atr_jobs_claim(pool->cfg.store, &who, &row, &err);
    if (rc == 0) {
      run_claimed(d, &row);
    } else {
      if (rc != ATR_ENOENT)
        atr_log(ATR_LOG_WARN, "provisioner", "daemon %d cannot claim: %s",
                d->index + 1, err ? err : atr_strerror(rc));
      atr_events_wait(pool->cfg.events, ATR_EVENT_POSTED, seen,
                      pool->cfg.poll_ms);
    }
    free(err);
  }
  return NULL;
}

/* ---- the keeper: logs, heartbeats, reaper -------------------------------- */

static void heartbeat_all(atr_provd_t *pool) {
  pthread_mutex_lock(&pool->running_lock);
  for (struct atr_prov_job *j = pool->running; j; j = j->next) {
    char *err = NULL;
    int rc = atr_jobs_heartbeat(pool->cfg.store, j->row.id, j->daemon_id, &err);
    if (rc == ATR_EPERM) {
      atr_log(ATR_LOG_WARN, "provisioner",
              "job %s was ended elsewhere (the reaper?); stopping it",
              j->row.id);
      atr_jobrun_cancel(j, false);
    }
    free(err);
    bool canceled = false;
    if (atr_jobs_cancel_requested(pool->cfg.store, j->row.id, &canceled,
                                  NULL) == 0 &&
        canceled)
      atr_jobrun_cancel(j, false);
  }
  pthread_mutex_unlock(&pool->running_lock);
}

static int touch_tx(atr_db_t *db, void *ud, char **err) {
  const atr_provd_t *pool = ud;
  int64_t now = atr_db_now_us();
  int rc = 0;
  for (int i = 0; rc == 0 && i < pool->ndaemons; i++) {
    const daemon_t *d = &pool->daemons[i];
    if (!atomic_load(&d->registered))
      continue;
    atr_value_t p[] = {atr_v_time(now), atr_v_text(d->id)};
    rc = atr_db_exec(db,
                     "UPDATE provisioner_daemons SET last_seen_at = ? "
                     "WHERE id = ?",
                     p, 2, NULL, err);
  }
  return rc;
}

/* Every registered daemon's last_seen_at, each heartbeat interval: the
 * health report counts the daemons seen within the last minute. A failure
 * (the database is down) is only logged at debug level: the health report
 * and /readyz say it louder. */
static void touch_daemons(atr_provd_t *pool) {
  if (pool->ndaemons == 0)
    return;
  char *err = NULL;
  int rc = atr_db_tx(pool->cfg.store, ATR_TX_WRITE, touch_tx, pool, &err);
  if (rc != 0)
    atr_log(ATR_LOG_DEBUG, "provisioner", "cannot update last_seen_at: %s",
            err ? err : atr_strerror(rc));
  free(err);
}

static void flush_all(atr_provd_t *pool) {
  pthread_mutex_lock(&pool->running_lock);
  for (struct atr_prov_job *j = pool->running; j; j = j->next)
    atr_jobrun_flush(j, LOG_FLUSH_AGE_US);
  pthread_mutex_unlock(&pool->running_lock);
}

static void reap(atr_provd_t *pool) {
  json_t *ids = NULL;
  char *err = NULL;
  int rc = atr_jobs_reap(pool->cfg.store, pool->cfg.hung_ms,
                         pool->cfg.pending_ms, &ids, &err);
  if (rc != 0)
    atr_log(ATR_LOG_WARN, "provisioner", "reaper: %s",
            err ? err : atr_strerror(rc));
  atr_stats_reaped(json_array_size(ids));
  size_t i;
  json_t *id;
  json_array_foreach(ids, i, id) {
    atr_log(ATR_LOG_WARN, "provisioner", "reaper: failed job %s",
            json_string_value(id));
    atr_events_job_changed(pool->cfg.events, json_string_value(id));
  }
  json_decref(ids);
  free(err);
}

static void *keeper_main(void *arg) {
  atr_provd_t *pool = arg;
  /* reap and sample at once */
  int64_t since_beat = 0, since_reap = pool->cfg.reaper_ms,
          since_sample = STATS_SAMPLE_MS;
  while (!atomic_load(&pool->stopping)) {
    flush_all(pool);
    if (since_beat >= pool->cfg.heartbeat_ms) {
      heartbeat_all(pool);
      touch_daemons(pool);
      since_beat = 0;
    }
    if (since_reap >= pool->cfg.reaper_ms) {
      reap(pool);
      since_reap = 0;
    }
    if (since_sample >= STATS_SAMPLE_MS) {
      atr_stats_sample(pool->cfg.store);
      since_sample = 0;
    }
    int64_t tick = KEEPER_TICK_MS;
    if (pool->cfg.heartbeat_ms < tick)
      tick = pool->cfg.heartbeat_ms;
    usleep((useconds_t)tick * 1000);
    since_beat += tick;
    since_reap += tick;
    since_sample += tick;
  }
  return NULL;
}

/* ---- start and stop ------------------------------------------------------ */

static void on_cancel(void *ud, const char *job_id) {
  atr_provd_t *pool = ud;
  pthread_mutex_lock(&pool->running_lock);
  for (struct atr_prov_job *j = pool->running; j; j = j->next)
    if (strcmp(j->row.id, job_id) == 0)
      atr_jobrun_cancel(j, false);
  pthread_mutex_unlock(&pool->running_lock);
}

int atr_provd_start(const atr_provd_config_t *cfg, atr_provd_t **out,
                    char **err) {
  /* Before any daemon runs: what a killed server left must be gone before
   * a job of the same workspace starts. */
  int setup = atr_jobs_setup(cfg->data_dir, cfg->run_as, err);
  if (setup != 0)
    return setup;
  atr_jobs_sweep(cfg->data_dir);
  atr_provd_t *pool = calloc(1, sizeof *pool);
  if (!pool) {
    atr_jobs_teardown();
    return ATR_ENOMEM;
  }
  pool->cfg = *cfg;
  pool->access_url = strdup(cfg->access_url ? cfg->access_url : "");
  pool->agent_bundle_dir = atr__jobrun_agent_bundle(cfg->agent_bundle_dir);
  pool->cfg.access_url = pool->access_url;
  pool->cfg.agent_bundle_dir = pool->agent_bundle_dir;
  atomic_init(&pool->stopping, false);
  pthread_mutex_init(&pool->running_lock, NULL);
  pool->types = atr_provisioner_types(cfg->loader, &pool->ntypes);
  if (pool->ntypes == 0 && cfg->daemons > 0)
    atr_log(ATR_LOG_WARN, "provisioner",
            "no provisioner plugin is running: templates cannot be imported "
            "and workspaces cannot be built; enable one (provisioner_"
            "terraform, ...) under plugins:");
  int n = pool->ntypes > 0 ? (int)cfg->daemons : 0;
  pool->ndaemons = n;
  pool->daemons = calloc((size_t)(n > 0 ? n : 1), sizeof *pool->daemons);
  int rc = pool->types && pool->daemons ? 0 : ATR_ENOMEM;
  for (int i = 0; rc == 0 && i < n; i++) {
    pool->daemons[i] = (daemon_t){.pool = pool, .index = i};
    atomic_init(&pool->daemons[i].registered, false);
    rc = pthread_create(&pool->daemons[i].thread, NULL, daemon_main,
                        &pool->daemons[i]) == 0
             ? 0
             : ATR_ENOMEM;
    pool->daemons[i].started = rc == 0;
  }
  if (rc == 0)
    rc = pthread_create(&pool->keeper, NULL, keeper_main, pool) == 0
             ? 0
             : ATR_ENOMEM;
  pool->keeper_started = rc == 0;
  *out = pool;
  if (rc != 0) {
    if (err)
      *err = strdup("cannot start the provisioner daemon threads");
    return rc;
  }
  atr_events_on_cancel(cfg->events, on_cancel, pool);
  atr_log(ATR_LOG_INFO, "provisioner",
          "%d built-in provisioner daemon%s for %zu type%s", n,
          n == 1 ? "" : "s", pool->ntypes, pool->ntypes == 1 ? "" : "s");
  return 0;
}

void atr_provd_stop(atr_provd_t *pool) {
  if (!pool)
    return;
  atr_events_on_cancel(pool->cfg.events, NULL, NULL);
  pthread_mutex_lock(&pool->running_lock);
  atomic_store(&pool->stopping, true);
  for (struct atr_prov_job *j = pool->running; j; j = j->next)
    atr_jobrun_cancel(j, true);
  pthread_mutex_unlock(&pool->running_lock);
  /* Wake idle daemons: a posted event does it. */
  atr_events_job_posted(pool->cfg.events);
  for (int i = 0; i < pool->ndaemons && pool->daemons; i++)
    if (pool->daemons[i].started)
      pthread_join(pool->daemons[i].thread, NULL);
  if (pool->keeper_started)
    pthread_join(pool->keeper, NULL);
  pthread_mutex_destroy(&pool->running_lock);
  atr_jobs_teardown();
  free(pool->daemons);
  free(pool->types);
  free(pool->access_url);
  free(pool->agent_bundle_dir);
  free(pool);
}
