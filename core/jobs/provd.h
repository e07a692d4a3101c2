/* core/provd.h — the built-in provisioner daemons: a bounded pool of
 * worker threads that claim provisioner jobs (template version imports and
 * workspace builds) from the database and run them with the provisioner
 * plugins, plus one keeper thread for heartbeats, log flushing and the
 * reaper.
 *
 * A daemon claims as soon as a job is announced (events.h) and otherwise
 * looks every poll interval. Each daemon is a row of provisioner_daemons
 * (registered once the default organization exists) holding the pool's
 * tags; it serves every organization and the types of every running
 * provisioner plugin. The keeper sets each registered daemon's
 * last_seen_at every heartbeat interval, so the health report can tell
 * the living daemons of the deployment from rows left by servers gone.
 *
 * Threads: start and stop on the main thread. stop() cancels the running
 * jobs through their plugins, waits for the workers and returns; their
 * jobs end failed ("the server stopped") with the state the plugin
 * returned.
 */
#ifndef ATRIUM_CORE_PROVD_H
#define ATRIUM_CORE_PROVD_H

#include <stdint.h>

#include "archive.h"
#include "db.h"
#include "events.h"
#include "loader.h"
#include "provisioners.h"

typedef struct atr_provd_config {
  atr_store_t *store;
  atr_events_t *events;
  const atr_loader_t *loader;
  const char *data_dir;    /* job working directories go in <data_dir>/jobs */
  int64_t daemons;         /* 0: no pool (start does nothing but the reaper) */
  const char *const *tags; /* KEY=VALUE, NULL-terminated; may be NULL */
  int64_t poll_ms;
  int64_t heartbeat_ms;
  int64_t hung_ms;
  int64_t pending_ms;
  int64_t reaper_ms;
  uint64_t max_log;
  atr_archive_limits_t archive_limits;
  const char *run_as; /* the build user when the server is root; NULL/"" */
  /* What start builds of templates with an agent give the agent (copied
   * at start): the URL it dials, and agent.bundle_dir ("auto" looks
   * beside the server binary; NULL or "": no bundle). */
  const char *access_url;
  const char *agent_bundle_dir;
} atr_provd_config_t;

typedef struct atr_provd atr_provd_t;

/* The config is copied (strings and the loader are borrowed and must
 * outlive the pool). */
int atr_provd_start(const atr_provd_config_t *cfg, atr_provd_t **out,
                    char **err);
void atr_provd_stop(atr_provd_t *pool);

#endif
