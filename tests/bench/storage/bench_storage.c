/* tests/bench/storage — storage throughput through atrium's storage layer
 * and, in the same run, the same SQL through raw sqlite3 / libpq, so the
 * layer's overhead shows as a ratio.
 *
 *   bench_storage sqlite [--scale N]
 *   bench_storage postgres PGDIR [--scale N]
 *
 * Prints inserts/s (single-row autocommit INSERTs), point reads/s (SELECT by
 * primary key) and claims/s (atr_jobs_claim with 1, 4 and 16 claimers; raw:
 * the same claim statement in a transaction). Figures only: nothing here is
 * asserted, and the test suite runs it with a small --scale as a smoke
 * test. */
#include <libpq-fe.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf.h"
#include "db.h"
#include "loader.h"
#include "log.h"
#include "migrate.h"
#include "queue.h"
#include "seed.h"

static atr_store_t store;
static bool is_pg;
static char db_path[512]; /* sqlite file */
static char dsn[512];     /* postgres */
static int scale = 5000;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, char *err) {
  fprintf(stderr, "bench: %s: %s\n", what, err ? err : "failed");
  exit(1);
}

static void layer_exec(const char *sql, const atr_value_t *p, size_t n) {
  atr_db_t db;
  char *err = NULL;
  if (atr_db_open(&store, &db, &err) || atr_db_exec(&db, sql, p, n, NULL, &err))
    die(sql, err);
  atr_db_close(&db);
}

/* ---- through the layer ------------------------------------------------ */

static double layer_inserts(int n) {
  layer_exec("DROP TABLE IF EXISTS bench_kv", NULL, 0);
  layer_exec("CREATE TABLE bench_kv (k BIGINT PRIMARY KEY, v TEXT)", NULL, 0);
  atr_db_t db;
  char *err = NULL;
  if (atr_db_open(&store, &db, &err))
    die("open", err);
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    atr_value_t p[] = {atr_v_int(i), atr_v_text("value")};
    if (atr_db_exec(&db, "INSERT INTO bench_kv (k, v) VALUES (?, ?)", p, 2,
                    NULL, &err))
      die("insert", err);
  }
  double rate = n / (now_s() - t0);
  atr_db_close(&db);
  return rate;
}

static double layer_reads(int n) {
  atr_db_t db;
  char *err = NULL;
  if (atr_db_open(&store, &db, &err))
    die("open", err);
  double t0 = now_s();
  for (int i = 0; i < n; i++) {
    char *v = NULL;
    atr_value_t p[] = {atr_v_int(i % scale)};
    if (atr_db_query_text(&db, "SELECT v FROM bench_kv WHERE k = ?", p, 1, &v,
                          &err))
      die("read", err);
    free(v);
  }
  double rate = n / (now_s() - t0);
  atr_db_close(&db);
  return rate;
}

typedef struct claimer {
  int index;
  int claimed;
  bool raw;
} claimer_t;

static void *layer_claim_loop(void *arg) {
  claimer_t *c = arg;
  char daemon[37];
  atr_seed_daemon_id(c->index, daemon);
  static const char *const echo_only[] = {"echo", NULL};
  atr_claimer_t who = {daemon, atr_seed_org_id, echo_only};
  for (;;) {
    atr_job_t job;
    char *err = NULL;
    int rc = atr_jobs_claim(&store, &who, &job, &err);
    free(err);
    if (rc != 0)
      break;
    atr_job_clear(&job);
    c->claimed++;
  }
  return NULL;
}

static void *raw_claim_loop(void *arg);

static void reseed_jobs(int n, int first) {
  char *err = NULL;
  layer_exec("DELETE FROM provisioner_jobs", NULL, 0);
  if (atr_seed_jobs(&store, first, n, &err))
    die("seed jobs", err);
}

static double run_claimers(int nclaimers, int jobs, bool raw) {
  reseed_jobs(jobs, 0);
  claimer_t cl[16];
  pthread_t th[16];
  double t0 = now_s();
  for (int i = 0; i < nclaimers; i++) {
    cl[i] = (claimer_t){.index = i, .raw = raw};
    pthread_create(&th[i], NULL, raw ? raw_claim_loop : layer_claim_loop,
                   &cl[i]);
  }
  int total = 0;
  for (int i = 0; i < nclaimers; i++) {
    pthread_join(th[i], NULL);
    total += cl[i].claimed;
  }
  double rate = total / (now_s() - t0);
  if (total != jobs)
    fprintf(stderr, "bench: %d of %d jobs claimed\n", total, jobs);
  return rate;
}

/* ---- raw sqlite3 / libpq ----------------------------------------------- */

static const char raw_claim_sqlite[] =
    "UPDATE provisioner_jobs SET started_at = ?1, updated_at = ?1, "
    "worker_id = ?2, last_heartbeat_at = ?1 WHERE id = (SELECT j.id FROM "
    "provisioner_jobs j WHERE j.started_at IS NULL AND j.canceled_at IS NULL "
    "AND j.organization_id = ?3 AND j.provisioner IN (?4) "
    "AND NOT EXISTS (SELECT 1 FROM provisioner_job_tags t WHERE t.job_id = "
    "j.id AND NOT EXISTS (SELECT 1 FROM provisioner_daemon_tags d WHERE "
    "d.daemon_id = ?2 AND d.key = t.key AND d.value = t.value)) ORDER BY "
    "j.created_at, j.id LIMIT 1) RETURNING id, type, provisioner, input, "
    "organization_id, file_id, initiator_id";

static const char raw_claim_pg[] =
    "UPDATE provisioner_jobs SET started_at = $1, updated_at = $1, "
    "worker_id = $2, last_heartbeat_at = $1 WHERE id = (SELECT j.id FROM "
    "provisioner_jobs j WHERE j.started_at IS NULL AND j.canceled_at IS NULL "
    "AND j.organization_id = $3 AND j.provisioner IN ($4) "
    "AND NOT EXISTS (SELECT 1 FROM provisioner_job_tags t WHERE t.job_id = "
    "j.id AND NOT EXISTS (SELECT 1 FROM provisioner_daemon_tags d WHERE "
    "d.daemon_id = $2 AND d.key = t.key AND d.value = t.value)) ORDER BY "
    "j.created_at, j.id LIMIT 1 FOR UPDATE SKIP LOCKED) RETURNING id, type, "
    "provisioner, input, organization_id, file_id, initiator_id";

static sqlite3 *raw_sqlite_open(void) {
  sqlite3 *db = NULL;
  if (sqlite3_open(db_path, &db) != SQLITE_OK)
    die("sqlite3_open", NULL);
  sqlite3_busy_timeout(db, 10000);
  sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL", NULL,
               NULL, NULL);
  return db;
}

static PGconn *raw_pg_open(void) {
  PGconn *c = PQconnectdb(dsn);
  if (PQstatus(c) != CONNECTION_OK)
    die("PQconnectdb", PQerrorMessage(c));
  PQclear(PQexec(c, "SET TIME ZONE 'UTC'"));
  return c;
}

static void now_text(char *buf, size_t size) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm;
  gmtime_r(&ts.tv_sec, &tm);
  size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, size - n, ".%06ldZ", ts.tv_nsec / 1000);
}

static int raw_sqlite_claim(sqlite3 *db, sqlite3_stmt *st, const char *who) {
  char when[40];
  now_text(when, sizeof when);
  sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  sqlite3_bind_text(st, 1, when, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 2, who, -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(st, 3, atr_seed_org_id, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 4, "echo", -1, SQLITE_STATIC);
  int got = sqlite3_step(st) == SQLITE_ROW;
  sqlite3_reset(st);
  sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
  return got;
}

static int raw_pg_claim(PGconn *c, const char *who) {
  char when[40];
  now_text(when, sizeof when);
  const char *params[] = {when, who, atr_seed_org_id, "echo"};
  PGresult *r = PQexecPrepared(c, "claim", 4, params, NULL, NULL, 0);
  int got = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
  PQclear(r);
  return got;
}

static void *raw_claim_loop(void *arg) {
  claimer_t *c = arg;
  char daemon[37];
  atr_seed_daemon_id(c->index, daemon);
  if (is_pg) {
    PGconn *pg = raw_pg_open();
    PQclear(PQprepare(pg, "claim", raw_claim_pg, 4, NULL));
    while (raw_pg_claim(pg, daemon))
      c->claimed++;
    PQfinish(pg);
    return NULL;
  }
  sqlite3 *db = raw_sqlite_open();
  sqlite3_stmt *st = NULL;
  sqlite3_prepare_v2(db, raw_claim_sqlite, -1, &st, NULL);
  while (raw_sqlite_claim(db, st, daemon))
    c->claimed++;
  sqlite3_finalize(st);
  sqlite3_close(db);
  return NULL;
}

static double raw_inserts_and_reads(int n, double *reads) {
  layer_exec("DELETE FROM bench_kv", NULL, 0);
  double t0, ins;
  if (is_pg) {
    PGconn *c = raw_pg_open();
    PQclear(PQprepare(c, "ins", "INSERT INTO bench_kv (k, v) VALUES ($1, $2)",
                      2, NULL));
    PQclear(
        PQprepare(c, "get", "SELECT v FROM bench_kv WHERE k = $1", 1, NULL));
    char k[32];
    t0 = now_s();
    for (int i = 0; i < n; i++) {
      snprintf(k, sizeof k, "%d", i);
      const char *p[] = {k, "value"};
      PQclear(PQexecPrepared(c, "ins", 2, p, NULL, NULL, 0));
    }
    ins = n / (now_s() - t0);
    t0 = now_s();
    for (int i = 0; i < 4 * n; i++) {
      snprintf(k, sizeof k, "%d", i % n);
      const char *p[] = {k};
      PQclear(PQexecPrepared(c, "get", 1, p, NULL, NULL, 0));
    }
    *reads = 4 * n / (now_s() - t0);
    PQfinish(c);
    return ins;
  }
  sqlite3 *db = raw_sqlite_open();
  sqlite3_stmt *ist = NULL, *gst = NULL;
  sqlite3_prepare_v2(db, "INSERT INTO bench_kv (k, v) VALUES (?, ?)", -1, &ist,
                     NULL);
  sqlite3_prepare_v2(db, "SELECT v FROM bench_kv WHERE k = ?", -1, &gst, NULL);
  t0 = now_s();
  for (int i = 0; i < n; i++) {
    sqlite3_bind_int64(ist, 1, i);
    sqlite3_bind_text(ist, 2, "value", -1, SQLITE_STATIC);
    sqlite3_step(ist);
    sqlite3_reset(ist);
  }
  ins = n / (now_s() - t0);
  t0 = now_s();
  for (int i = 0; i < 4 * n; i++) {
    sqlite3_bind_int64(gst, 1, i % n);
    sqlite3_step(gst);
    sqlite3_reset(gst);
  }
  *reads = 4 * n / (now_s() - t0);
  sqlite3_finalize(ist);
  sqlite3_finalize(gst);
  sqlite3_close(db);
  return ins;
}

/* ---- set-up and report -------------------------------------------------- */

static void load_store(const char *backend, const char *pg_dir,
                       atr_loader_t *l) {
  char *yaml = NULL, *err = NULL;
  if (is_pg) {
    char path[600];
    snprintf(path, sizeof path, "%s/dsn", pg_dir);
    FILE *f = fopen(path, "r");
    if (!f || !fgets(dsn, sizeof dsn, f))
      die(path, NULL);
    fclose(f);
    dsn[strcspn(dsn, "\n")] = '\0';
    if (asprintf(&yaml,
                 "plugins:\n  storage_postgres:\n    enabled: true\n"
                 "    dsn: \"%s\"\n    pool_size: 20\n",
                 dsn) < 0)
      die("yaml", NULL);
  } else if (asprintf(&yaml, "plugins:\n  storage_sqlite:\n    enabled: "
                             "true\n    pool_size: 20\n") < 0) {
    die("yaml", NULL);
  }
  atr_conf_node_t *root = NULL;
  const char *dir = ATR_BENCH_PLUGIN_DIR;
  if (atr_conf_parse("bench.yaml", yaml, strlen(yaml), &root, &err) ||
      atr_loader_init(l, &dir, 1, &err) ||
      atr_loader_load_config(l, root, NULL, NULL, true, &err) ||
      atr_store_find(l, &store, &err))
    die(backend, err);
  free(yaml);
  atr_conf_free(root);
}

static void prepare_schema(void) {
  char *err = NULL;
  atr_db_t db;
  if (is_pg &&
      (atr_db_open(&store, &db, &err) ||
       atr_db_exec_script(
           &db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public", &err)))
    die("reset", err);
  if (is_pg)
    atr_db_close(&db);
  if (atr_migrate_up(&store, atr_migrations, atr_nmigrations, NULL, &err) ||
      atr_seed_owners(&store, &err))
    die("schema", err);
  for (int i = 0; i < 16; i++)
    if (atr_seed_daemon(&store, i, NULL, NULL, &err))
      die("daemons", err);
}

static void row(const char *what, double layer, double raw) {
  printf("%-22s %12.0f/s %12.0f/s   %5.2f\n", what, layer, raw,
         raw > 0 ? layer / raw : 0.0);
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "postgres") == 0 && argc < 3)) {
    fprintf(stderr, "usage: bench_storage sqlite|postgres PGDIR "
                    "[--scale N]\n");
    return 2;
  }
  is_pg = strcmp(argv[1], "postgres") == 0;
  for (int i = 2; i < argc; i++)
    if (strcmp(argv[i], "--scale") == 0 && i + 1 < argc)
      scale = atoi(argv[++i]);
  atr_log_set_level(ATR_LOG_WARN);
  char tmp[] = "/tmp/atrium-bench-XXXXXX";
  if (!mkdtemp(tmp))
    die("mkdtemp", NULL);
  atr_host_set_data_dir(tmp);
  snprintf(db_path, sizeof db_path, "%s/atrium.db", tmp);
  atr_loader_t l;
  load_store(argv[1], is_pg ? argv[2] : NULL, &l);
  prepare_schema();
  printf("backend %s, scale %d\n", argv[1], scale);
  printf("%-22s %14s %14s   %5s\n", "", "atrium layer", "raw", "ratio");
  double raw_reads = 0;
  double li = layer_inserts(scale);
  double lr = layer_reads(4 * scale);
  double ri = raw_inserts_and_reads(scale, &raw_reads);
  row("inserts", li, ri);
  row("point reads", lr, raw_reads);
  int counts[] = {1, 4, 16};
  for (int k = 0; k < 3; k++) {
    char what[32];
    snprintf(what, sizeof what, "claims, %d claimer%s", counts[k],
             counts[k] > 1 ? "s" : "");
    double lc = run_claimers(counts[k], scale, false);
    double rc = run_claimers(counts[k], scale, true);
    row(what, lc, rc);
  }
  atr_loader_shutdown(&l);
  atr_host_set_data_dir(NULL);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  return system(cmd) == 0 ? 0 : 1;
}
