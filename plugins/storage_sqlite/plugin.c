/* storage_sqlite — atrium's embedded storage: one SQLite database file.
 *
 * The default storage for a single server: no database server to run, the
 * data in one file (plus its -wal and -shm) in the data directory. The
 * database runs in WAL mode, so readers never wait for the writer, and
 * writers are serialised by BEGIN IMMEDIATE and, inside this process, by a
 * first-come first-served writer gate (pool.c). Pub/sub stays inside the
 * process (pubsub.c). Several servers cannot share the database; use
 * storage_postgres for that.
 *
 * This file holds the option table, the descriptor, init() and fini().
 *
 * Threads: init() and fini() run on the main thread. Every op may be called
 * from any thread, a connection by one thread at a time (atrium/storage.h).
 *
 * Memory: the context is the host's; everything hung off it is freed by
 * fini(), or by init() itself when it fails.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

static const char *const sync_modes[] = {"NORMAL", "FULL", NULL};

static const atr_option_t sqlite_options[] = {
    {.type = ATR_OPT_STRING,
     .name = "path",
     .default_value = "atrium.db",
     .offset = offsetof(ss_ctx_t, path),
     .description = "Database file; a relative path is inside the data "
                    "directory (data_dir)."},
    {.type = ATR_OPT_DURATION,
     .name = "busy_timeout",
     .default_value = "5s",
     .offset = offsetof(ss_ctx_t, busy_timeout_ms),
     .description = "How long a call waits for a lock or a free connection "
                    "before it fails with ATR_EBUSY.",
     .min = 0,
     .max = 10 * 60 * 1000},
    {.type = ATR_OPT_ENUM,
     .name = "synchronous",
     .default_value = "NORMAL",
     .offset = offsetof(ss_ctx_t, synchronous),
     .description = "NORMAL may lose the last transactions on power loss "
                    "but never corrupts; FULL syncs every commit.",
     .choices = sync_modes},
    {.type = ATR_OPT_INT,
     .name = "pool_size",
     .default_value = "8",
     .offset = offsetof(ss_ctx_t, pool_size),
     .description = "Connections kept open; more callers than this wait "
                    "up to busy_timeout for one.",
     .min = 1,
     .max = 64},
    {.type = ATR_OPT_SIZE,
     .name = "cache_size",
     .default_value = "16MiB",
     .offset = offsetof(ss_ctx_t, cache_size),
     .description = "Page cache of each connection (so up to pool_size "
                    "times this in total).",
     .min = 64.0 * 1024,
     .max = 64.0 * 1024 * 1024 * 1024},
    {0},
};

static int check_options(const ss_ctx_t *c, char **err) {
  if (c->path == NULL || c->path[0] == '\0')
    return ss_failf(err, ATR_ECONFIG,
                    "plugins.storage_sqlite.path is empty; name the database "
                    "file (for example atrium.db)");
  if (strcmp(c->path, ":memory:") == 0 || strncmp(c->path, "file:", 5) == 0)
    return ss_failf(err, ATR_ECONFIG,
                    "plugins.storage_sqlite.path \"%s\" is not supported: "
                    "give the path of a database file",
                    c->path);
  if (c->synchronous == NULL || (strcmp(c->synchronous, "NORMAL") != 0 &&
                                 strcmp(c->synchronous, "FULL") != 0))
    return ss_failf(err, ATR_ECONFIG,
                    "plugins.storage_sqlite.synchronous must be NORMAL or "
                    "FULL");
  if (c->pool_size < 1 || c->busy_timeout_ms < 0)
    return ss_failf(err, ATR_ECONFIG,
                    "plugins.storage_sqlite: pool_size must be at least 1 "
                    "and busy_timeout not negative");
  return 0;
}

/* A relative path lives in the data directory. */
static int resolve_path(ss_ctx_t *c, char **err) {
  const char *dir = NULL;
  if (c->path[0] != '/' && ATR_HOST_HAS(c->host, data_dir))
    dir = c->host->data_dir(c->h);
  int n = dir ? asprintf(&c->db_path, "%s/%s", dir, c->path)
              : asprintf(&c->db_path, "%s", c->path);
  if (n < 0) {
    c->db_path = NULL;
    return ss_failf(err, ATR_ENOMEM, "sqlite: out of memory");
  }
  return 0;
}

static int cond_init_monotonic(pthread_cond_t *cv) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  int rc = pthread_cond_init(cv, &attr);
  pthread_condattr_destroy(&attr);
  return rc;
}

static int locks_init(ss_ctx_t *c, char **err) {
  int rc = 0;
  rc |= pthread_mutex_init(&c->pool_lock, NULL);
  rc |= cond_init_monotonic(&c->pool_cond);
  rc |= pthread_mutex_init(&c->gate_lock, NULL);
  rc |= cond_init_monotonic(&c->gate_cond);
  rc |= pthread_mutex_init(&c->subs_lock, NULL);
  rc |= pthread_cond_init(&c->subs_idle, NULL);
  rc |= pthread_mutex_init(&c->queue_lock, NULL);
  rc |= pthread_cond_init(&c->queue_cond, NULL);
  if (rc != 0)
    return ss_failf(err, ATR_ENOMEM, "sqlite: cannot create locks");
  return 0;
}

static void locks_destroy(ss_ctx_t *c) {
  pthread_mutex_destroy(&c->pool_lock);
  pthread_cond_destroy(&c->pool_cond);
  pthread_mutex_destroy(&c->gate_lock);
  pthread_cond_destroy(&c->gate_cond);
  pthread_mutex_destroy(&c->subs_lock);
  pthread_cond_destroy(&c->subs_idle);
  pthread_mutex_destroy(&c->queue_lock);
  pthread_cond_destroy(&c->queue_cond);
}

static int sqlite_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                       char **err) {
  ss_ctx_t *c = ctx;
  c->h = h;
  c->host = host;
  if (!sqlite3_threadsafe())
    return ss_failf(err, ATR_EPLUGIN,
                    "sqlite: the SQLite library (%s) was built without "
                    "thread support; install one built with threads",
                    sqlite3_libversion());
  int rc = check_options(c, err);
  if (rc == 0)
    rc = resolve_path(c, err);
  if (rc == 0 && (rc = locks_init(c, err)) == 0) {
    rc = ss_pool_init(c, err);
    if (rc == 0 && (rc = ss_pubsub_init(c, err)) != 0)
      ss_pool_fini(c);
    if (rc != 0)
      locks_destroy(c);
  }
  if (rc != 0) {
    free(c->db_path);
    c->db_path = NULL;
    return rc;
  }
  host->log(h, ATR_LOG_INFO,
            "opened %s (SQLite %s, WAL, synchronous %s, pool of %" PRId64
            ", busy_timeout %" PRId64 "ms)",
            c->db_path, sqlite3_libversion(), c->synchronous, c->pool_size,
            c->busy_timeout_ms);
  return 0;
}

static void sqlite_fini(void *ctx) {
  ss_ctx_t *c = ctx;
  ss_pubsub_fini(c);
  ss_pool_fini(c);
  locks_destroy(c);
  free(c->db_path);
  c->db_path = NULL;
}

/* What can go wrong with a file database without a query: the file gone
 * (deleted or its volume unmounted under the server) is unhealthy; a
 * filesystem nearly full (under 5% or 256 MiB free) is degraded, since
 * SQLite fails every write once it is full. */
#define SS_FREE_MIN_BYTES (256.0 * 1024 * 1024)
#define SS_FREE_MIN_SHARE 0.05

static int sqlite_health(void *ctx, char **message) {
  const ss_ctx_t *c = ctx;
  struct stat st;
  struct statvfs fs;
  int n;
  if (stat(c->db_path, &st) != 0) {
    n = asprintf(message, "the database file %s is gone: %s", c->db_path,
                 strerror(errno));
    if (n < 0)
      *message = NULL;
    return ATR_HEALTH_UNHEALTHY;
  }
  if (statvfs(c->db_path, &fs) != 0 || fs.f_blocks == 0) {
    n = asprintf(message, "%s: %.1f MiB", c->db_path,
                 (double)st.st_size / (1024 * 1024));
    if (n < 0)
      *message = NULL;
    return ATR_HEALTH_HEALTHY;
  }
  double avail = (double)fs.f_bavail * (double)fs.f_frsize;
  double share = (double)fs.f_bavail / (double)fs.f_blocks;
  bool low = avail < SS_FREE_MIN_BYTES || share < SS_FREE_MIN_SHARE;
  n = asprintf(message,
               "%s: %.1f MiB; %.1f GiB (%.0f%%) free on its "
               "filesystem%s",
               c->db_path, (double)st.st_size / (1024 * 1024),
               avail / (1024.0 * 1024 * 1024), share * 100,
               low ? ", too little: writes fail once it is full" : "");
  if (n < 0)
    *message = NULL;
  return low ? ATR_HEALTH_DEGRADED : ATR_HEALTH_HEALTHY;
}

static const atr_storage_ops_t sqlite_ops = {
    .struct_size = sizeof(atr_storage_ops_t),
    .dialect = "sqlite",
    .features = 0, /* no SKIP LOCKED, one process, pub/sub in-process */
    .get = ss_get,
    .put = ss_put,
    .exec = ss_exec,
    .exec_script = ss_exec_script,
    .query = ss_query,
    .rows_next = ss_rows_next,
    .rows_ncols = ss_rows_ncols,
    .rows_get = ss_rows_get,
    .rows_close = ss_rows_close,
    .begin = ss_begin,
    .commit = ss_commit,
    .rollback = ss_rollback,
    .publish = ss_publish,
    .subscribe = ss_subscribe,
    .unsubscribe = ss_unsubscribe,
    .backup = ss_backup,
    .restore = ss_restore,
};

static const atr_plugin_t sqlite_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_STORAGE,
    .name = "storage_sqlite",
    .version = "1.0.0",
    .description = "Stores everything in one SQLite database file (WAL "
                   "mode); for a single server.",
    .options = sqlite_options,
    .ctx_size = sizeof(ss_ctx_t),
    .init = sqlite_init,
    .fini = sqlite_fini,
    .ops = &sqlite_ops,
    .health = sqlite_health,
};

ATR_PLUGIN_DEFINE(sqlite_plugin)
