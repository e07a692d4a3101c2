/* storage_postgres — atrium's storage on PostgreSQL (libpq).
 *
 * The descriptor, the option table, init() and fini(). Several atrium
 * servers may share one database: work queues use FOR UPDATE SKIP LOCKED,
 * and pub/sub is LISTEN/NOTIFY, so a message reaches every server.
 *
 * Threads: init() and fini() run on the main thread; the ops may be called
 * from any thread (see storage_postgres.h for who owns what).
 */
#include "storage_postgres.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const atr_option_t spg_options[] = {
    {.type = ATR_OPT_SECRET,
     .name = "dsn",
     .flags = ATR_OPT_REQUIRED,
     .offset = offsetof(spg_ctx_t, dsn),
     .description = "libpq connection string (host=... port=... dbname=... "
                    "user=... password=...) or postgresql:// URI; never "
                    "logged."},
    {.type = ATR_OPT_INT,
     .name = "pool_size",
     .default_value = "10",
     .offset = offsetof(spg_ctx_t, pool_size),
     .description = "Most connections the server holds open at once.",
     .min = 1,
     .max = 200},
    {.type = ATR_OPT_DURATION,
     .name = "connect_timeout",
     .default_value = "5s",
     .offset = offsetof(spg_ctx_t, connect_timeout_ms),
     .description = "How long one connection attempt may take (whole "
                    "seconds; libpq's connect_timeout).",
     .min = 1000,
     .max = 600000},
    {.type = ATR_OPT_BOOL,
     .name = "keepalives",
     .default_value = "true",
     .offset = offsetof(spg_ctx_t, keepalives),
     .description = "Send TCP keepalives, so a vanished server is noticed."},
    {.type = ATR_OPT_DURATION,
     .name = "keepalives_idle",
     .default_value = "30s",
     .offset = offsetof(spg_ctx_t, keepalives_idle_ms),
     .description = "Idle time before the first TCP keepalive.",
     .min = 1000,
     .max = 7200000},
    {.type = ATR_OPT_DURATION,
     .name = "keepalives_interval",
     .default_value = "10s",
     .offset = offsetof(spg_ctx_t, keepalives_interval_ms),
     .description = "Time between unanswered TCP keepalives.",
     .min = 1000,
     .max = 600000},
    {.type = ATR_OPT_INT,
     .name = "keepalives_count",
     .default_value = "3",
     .offset = offsetof(spg_ctx_t, keepalives_count),
     .description = "Unanswered TCP keepalives before the connection is "
                    "considered dead.",
     .min = 1,
     .max = 100},
    {.type = ATR_OPT_DURATION,
     .name = "acquire_timeout",
     .default_value = "5s",
     .offset = offsetof(spg_ctx_t, acquire_timeout_ms),
     .description = "How long a request waits for a free pooled connection "
                    "before it fails as busy.",
     .min = 0,
     .max = 600000},
    {.type = ATR_OPT_STRING,
     .name = "pg_bin_dir",
     .default_value = "",
     .offset = offsetof(spg_ctx_t, pg_bin_dir),
     .description = "Directory of pg_dump and pg_restore for backup and "
                    "restore; empty searches PATH, then "
                    "/usr/lib/postgresql/15/bin."},
    {0},
};

void spg_set_err(char **err, const char *fmt, ...) {
  if (err == NULL)
    return;
  char buf[1024]; /* messages are one line; longer ones are cut */
  va_list ap;
  va_start(ap, fmt);
  /* clang-analyzer 14 reports ap as uninitialized here after va_start. */
  // NOLINTNEXTLINE(clang-analyzer-valist.Uninitialized)
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  size_t n = strlen(buf);
  *err = malloc(n + sizeof "postgres: ");
  if (*err != NULL) {
    memcpy(*err, "postgres: ", sizeof "postgres: " - 1);
    memcpy(*err + sizeof "postgres: " - 1, buf, n + 1);
  }
}

static void spg_fini(void *ctx) {
  spg_ctx_t *c = ctx;
  spg_pubsub_fini(c);
  spg_pool_fini(c);
  pthread_mutex_destroy(&c->listener_lock);
  free(c->where);
  free(c->password);
}

static int spg_init(atr_handle_t *h, const atr_host_t *host, void *ctx,
                    char **err) {
  spg_ctx_t *c = ctx;
  c->h = h;
  c->host = host;
  if (pthread_mutex_init(&c->listener_lock, NULL) != 0) {
    spg_set_err(err, "cannot create a lock");
    return ATR_ENOMEM;
  }
  int rc = spg_pool_init(c, err);
  if (rc != 0) { /* pool_init freed what it made */
    pthread_mutex_destroy(&c->listener_lock);
    return rc;
  }

  /* One connection now, to say early whether the database is there. Not
   * being there is not fatal: the server may start before the database. */
  atr_db_conn_t *conn = NULL;
  char *cerr = NULL;
  rc = spg_get(c, &conn, &cerr);
  if (rc == 0) {
    int v = PQserverVersion(conn->pg);
    host->log(h, ATR_LOG_INFO,
              "connected to %s (PostgreSQL %d.%d); pool of %lld connections",
              c->where, v / 10000, v % 10000, (long long)c->pool_size);
    spg_put(c, conn);
  } else if (rc != ATR_EUNAVAIL) { /* unreachable is logged by the pool */
    host->log(h, ATR_LOG_WARN, "%s", cerr ? cerr : "cannot connect");
  }
  free(cerr);
  return 0;
}

/* The pool as it stands, without a round trip of its own: unhealthy when
 * the last connection attempt failed (the host's database check, which
 * runs just before, has made one if a connection needed it), degraded
 * when every pooled connection is in use. */
static int spg_health(void *ctx, char **message) {
  spg_ctx_t *c = ctx;
  size_t busy = 0;
  pthread_mutex_lock(&c->pool_lock);
  for (size_t i = 0; i < c->nslots; i++)
    busy += c->slots[i].in_use;
  pthread_mutex_unlock(&c->pool_lock);
  int status = ATR_HEALTH_HEALTHY;
  int n;
  if (!atomic_load(&c->reachable)) {
    status = ATR_HEALTH_UNHEALTHY;
    n = asprintf(message,
                 "cannot reach the database at %s: the last connection "
                 "attempt failed",
                 c->where);
  } else if (busy == c->nslots) {
    status = ATR_HEALTH_DEGRADED;
    n = asprintf(message,
                 "all %zu connections to %s are in use; requests wait up to "
                 "acquire_timeout (%lld ms) for one: raise pool_size",
                 c->nslots, c->where, (long long)c->acquire_timeout_ms);
  } else {
    n = asprintf(message, "%s: %zu of %zu pooled connections in use", c->where,
                 busy, c->nslots);
  }
  if (n < 0)
    *message = NULL;
  return status;
}

static const atr_storage_ops_t spg_ops = {
    .struct_size = sizeof(atr_storage_ops_t),
    .dialect = "postgres",
    .features = ATR_DB_FEATURE_SKIP_LOCKED | ATR_DB_FEATURE_SHARED |
                ATR_DB_FEATURE_PUBSUB_REMOTE,
    .get = spg_get,
    .put = spg_put,
    .exec = spg_exec,
    .exec_script = spg_exec_script,
    .query = spg_query,
    .rows_next = spg_rows_next,
    .rows_ncols = spg_rows_ncols,
    .rows_get = spg_rows_get,
    .rows_close = spg_rows_close,
    .begin = spg_begin,
    .commit = spg_commit,
    .rollback = spg_rollback,
    .publish = spg_publish,
    .subscribe = spg_subscribe,
    .unsubscribe = spg_unsubscribe,
    .backup = spg_backup,
    .restore = spg_restore,
};

static const atr_plugin_t spg_plugin = {
    ATR_PLUGIN_ABI,
    .kind = ATR_KIND_STORAGE,
    .name = SPG_NAME,
    .version = "1.0.0",
    .description = "PostgreSQL storage (libpq): a connection pool, SKIP "
                   "LOCKED work queues, LISTEN/NOTIFY pub/sub across servers, "
                   "pg_dump backups.",
    .options = spg_options,
    .ctx_size = sizeof(spg_ctx_t),
    .init = spg_init,
    .fini = spg_fini,
    .ops = &spg_ops,
    .health = spg_health,
};

ATR_PLUGIN_DEFINE(spg_plugin)
