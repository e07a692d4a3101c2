/* The storage suite: the same behaviour, asserted on every backend.
 *
 *   test_storage_suite sqlite            a fresh SQLite file in a temp dir
 *   test_storage_suite postgres PGDIR    the throwaway cluster whose DSN is
 *                                        in PGDIR/dsn (scripts/dev/postgres.sh)
 *
 * Everything goes through the core's storage layer (db.h, migrate.h,
 * jobs.h) and the real plugin, loaded by the real loader. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "atrium/error.h"
#include "conf.h"
#include "db.h"
#include "loader.h"
#include "log.h"
#include "migrate.h"
#include "queue.h"
#include "seed.h"

static const char *backend;
static const char *pg_dir;
static char tmpdir[] = "/tmp/atrium-storage-XXXXXX";
static atr_loader_t loader;
static atr_store_t store;
static bool is_pg;

enum { JOB_HOLDER = 20000, JOB_TAGGED = 20001 };

static char *read_file(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f)
    return NULL;
  char buf[1024];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
    buf[--n] = '\0';
  return strdup(buf);
}

static char *config_yaml(void) {
  char *yaml = NULL;
  if (is_pg) {
    char path[512];
    snprintf(path, sizeof path, "%s/dsn", pg_dir);
    char *dsn = read_file(path);
    if (!dsn)
      return NULL;
    if (asprintf(&yaml,
                 "plugins:\n  storage_postgres:\n    enabled: true\n"
                 "    dsn: \"%s\"\n    pool_size: 20\n",
                 dsn) < 0)
      yaml = NULL;
    free(dsn);
  } else if (asprintf(&yaml, "plugins:\n  storage_sqlite:\n    enabled: "
                             "true\n    pool_size: 8\n") < 0) {
    yaml = NULL;
  }
  return yaml;
}

/* Fails the test with the backend's message; frees and clears *err. */
static void must(int rc, char **err) {
  if (rc != 0)
    fail_msg("%s (%s)", *err ? *err : "no message", atr_err_name(rc));
  free(*err);
  *err = NULL;
}

static void exec_ok(const char *sql, const atr_value_t *p, size_t n) {
  atr_db_t db;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  err = NULL;
  int rc = atr_db_exec(&db, sql, p, n, NULL, &err);
  atr_db_close(&db);
  must(rc, &err);
}

static int64_t count_rows(const char *sql) {
  atr_db_t db;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  int64_t n = -1;
  err = NULL;
  int rc = atr_db_query_int(&db, sql, NULL, 0, &n, &err);
  atr_db_close(&db);
  must(rc, &err);
  return n;
}

/* Postgres: an empty public schema, so each run starts from nothing. */
static void reset_database(void) {
  if (!is_pg)
    return;
  atr_db_t db;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  err = NULL;
  int rc = atr_db_exec_script(
      &db, "DROP SCHEMA public CASCADE; CREATE SCHEMA public;", &err);
  atr_db_close(&db);
  must(rc, &err);
}

static int setup(void **state) {
  (void)state;
  if (!mkdtemp(tmpdir))
    return -1;
  atr_host_set_data_dir(tmpdir);
  char *yaml = config_yaml();
  atr_conf_node_t *root = NULL;
  char *err = NULL;
  const char *dir = ATR_TEST_PLUGIN_DIR;
  if (!yaml || atr_conf_parse("suite.yaml", yaml, strlen(yaml), &root, &err) ||
      atr_loader_init(&loader, &dir, 1, &err) ||
      atr_loader_load_config(&loader, root, NULL, NULL, true, &err) ||
      atr_store_find(&loader, &store, &err)) {
    fprintf(stderr, "setup: %s\n", err ? err : "no config");
    return -1;
  }
  free(yaml);
  atr_conf_free(root);
  reset_database();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  atr_loader_shutdown(&loader);
  atr_host_set_data_dir(NULL);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

/* ---- migrations ---------------------------------------------------- */

static void migrations_apply_from_empty_and_only_once(void **state) {
  (void)state;
  int applied = 0, version = 0;
  char *err = NULL;
  must(atr_migrate_up(&store, atr_migrations, atr_nmigrations, &applied, &err),
       &err);
  assert_int_equal(applied, (int)atr_nmigrations);
  must(atr_migrate_current(&store, &version, &err), &err);
  assert_int_equal(version, atr_migrations[atr_nmigrations - 1].version);
  must(atr_migrate_up(&store, atr_migrations, atr_nmigrations, &applied, &err),
       &err);
  assert_int_equal(applied, 0);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM users"), 0);
}

static void a_newer_schema_is_refused(void **state) {
  (void)state;
  atr_value_t row[] = {atr_v_int(9999), atr_v_text("from_the_future"),
                       atr_v_time(atr_db_now_us())};
  exec_ok("INSERT INTO schema_migrations (version, name, applied_at) "
          "VALUES (?, ?, ?)",
          row, 3);
  char *err = NULL;
  int rc = atr_migrate_up(&store, atr_migrations, atr_nmigrations, NULL, &err);
  assert_int_equal(rc, ATR_ECONFIG);
  char want[256];
  snprintf(want, sizeof want,
           "the database schema is at version 9999 but this atrium knows "
           "only up to %d; run the newer atrium, or restore the backup taken "
           "before the upgrade",
           atr_migrations[atr_nmigrations - 1].version);
  assert_string_equal(err, want);
  free(err);
  exec_ok("DELETE FROM schema_migrations WHERE version = 9999", NULL, 0);
}

/* ---- typed values --------------------------------------------------- */

static void values_round_trip_with_their_types(void **state) {
  (void)state;
  exec_ok("CREATE TABLE IF NOT EXISTS suite_values (k BIGINT PRIMARY KEY,"
          " t TEXT, i BIGINT, b BOOLEAN, d DOUBLE PRECISION, bl BYTEA,"
          " ts TIMESTAMPTZ)",
          NULL, 0);
  static const char text[] =
      "it's \"quoted\"; -- not a comment ? not a param ¿ünïcødé? ✓ 日本";
  size_t big = 10u << 20;
  unsigned char *blob = malloc(big);
  for (size_t i = 0; i < big; i++)
    blob[i] = (unsigned char)(i * 7 + (i >> 8));
  int64_t when = 1795000000123456; /* microseconds */
  atr_value_t p[] = {atr_v_int(1),     atr_v_text(text),  atr_v_int(INT64_MAX),
                     atr_v_bool(true), atr_v_double(0.1), atr_v_blob(blob, big),
                     atr_v_time(when)};
  exec_ok("INSERT INTO suite_values VALUES (?, ?, ?, ?, ?, ?, ?)", p, 7);
  atr_value_t n[] = {atr_v_int(2),      atr_v_null(), atr_v_int(INT64_MIN),
                     atr_v_bool(false), atr_v_null(), atr_v_null(),
                     atr_v_null()};
  exec_ok("INSERT INTO suite_values VALUES (?, ?, ?, ?, ?, ?, ?)", n, 7);

  atr_db_t db;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  atr_db_rows_t *rows = NULL;
  must(atr_db_query(&db,
                    "SELECT t, i, b, d, bl, ts FROM suite_values "
                    "ORDER BY k",
                    NULL, 0, &rows, &err),
       &err);
  assert_int_equal(atr_db_next(&db, rows, &err), 1);
  assert_string_equal(atr_db_get_text(&db, rows, 0), text);
  assert_true(atr_db_get_int(&db, rows, 1) == INT64_MAX);
  assert_true(atr_db_get_bool(&db, rows, 2));
  assert_true(atr_db_get_double(&db, rows, 3) == 0.1);
  size_t len = 0;
  const void *got = atr_db_get_blob(&db, rows, 4, &len);
  assert_int_equal(len, big);
  assert_memory_equal(got, blob, big);
  assert_true(atr_db_get_time(&db, rows, 5) == when);
  assert_int_equal(atr_db_next(&db, rows, &err), 1);
  assert_true(atr_db_is_null(&db, rows, 0));
  assert_null(atr_db_get_text(&db, rows, 0));
  assert_true(atr_db_get_int(&db, rows, 1) == INT64_MIN);
  assert_false(atr_db_get_bool(&db, rows, 2));
  assert_false(atr_db_is_null(&db, rows, 2));
  assert_true(atr_db_is_null(&db, rows, 4));
  assert_true(atr_db_is_null(&db, rows, 5));
  assert_int_equal(atr_db_next(&db, rows, &err), 0);
  atr_db_rows_close(&db, rows);
  atr_db_close(&db);
  free(blob);
}

/* ---- transactions and errors ---------------------------------------- */

static int insert_then_fail(atr_db_t *db, void *ud, char **err) {
  (void)ud;
  atr_value_t p[] = {atr_v_int(100)};
  int rc = atr_db_exec(db, "INSERT INTO suite_values (k) VALUES (?)", p, 1,
                       NULL, err);
  if (rc != 0)
    return rc;
  /* the same key again: a constraint violation inside the transaction */
  return atr_db_exec(db, "INSERT INTO suite_values (k) VALUES (?)", p, 1, NULL,
                     err);
}

static void a_failed_transaction_leaves_nothing_behind(void **state) {
  (void)state;
  char *err = NULL;
  int rc = atr_db_tx(&store, ATR_TX_WRITE, insert_then_fail, NULL, &err);
  assert_int_equal(rc, ATR_ECONSTRAINT);
  assert_non_null(err);
  free(err);
  assert_int_equal(
      count_rows("SELECT COUNT(*) FROM suite_values WHERE k = 100"), 0);
}

static void constraint_violations_have_their_own_code(void **state) {
  (void)state;
  atr_db_t db;
  char *err = NULL;
  must(atr_db_open(&store, &db, &err), &err);
  atr_value_t p[] = {atr_v_int(1)};
  int rc = atr_db_exec(&db, "INSERT INTO suite_values (k) VALUES (?)", p, 1,
                       NULL, &err);
  assert_int_equal(rc, ATR_ECONSTRAINT);
  /* the backend's own words come through */
  assert_non_null(strstr(err, is_pg ? "duplicate key" : "UNIQUE"));
  free(err);
  err = NULL;
  rc = atr_db_exec(&db, "INSERT INTO no_such_table VALUES (1)", NULL, 0, NULL,
                   &err);
  assert_int_equal(rc, ATR_EINVAL);
  assert_non_null(strstr(err, "no_such_table"));
  free(err);
  atr_db_close(&db);
}

/* ---- the job queue ---------------------------------------------------- */

typedef struct claimer {
  char daemon[37];
  int claimed;
  int errors;
  char (*ids)[37];
} claimer_t;

static const char *const echo_only[] = {"echo", NULL};

static atr_claimer_t as_claimer(const char *daemon) {
  return (atr_claimer_t){daemon, atr_seed_org_id, echo_only};
}

static void *claim_until_empty(void *arg) {
  claimer_t *c = arg;
  atr_claimer_t who = as_claimer(c->daemon);
  for (;;) {
    atr_job_t job;
    char *err = NULL;
    int rc = atr_jobs_claim(&store, &who, &job, &err);
    if (rc == ATR_ENOENT)
      break;
    if (rc != 0) {
      fprintf(stderr, "claim failed: %s\n", err ? err : atr_err_name(rc));
      free(err);
      c->errors++;
      continue;
    }
    memcpy(c->ids[c->claimed++], job.id, 37);
    atr_job_clear(&job);
  }
  return NULL;
}

static int cmp_id(const void *a, const void *b) {
  return strcmp(a, b);
}

static void every_job_is_claimed_exactly_once_under_contention(void **state) {
  (void)state;
  enum { JOBS = 10000 };
  int nclaimers = is_pg ? 16 : 4;
  char *err = NULL;
  must(atr_seed_owners(&store, &err), &err);
  for (int i = 0; i < nclaimers; i++)
    must(atr_seed_daemon(&store, i, NULL, NULL, &err), &err);
  must(atr_seed_jobs(&store, 0, JOBS, &err), &err);
  claimer_t *cl = calloc((size_t)nclaimers, sizeof *cl);
  pthread_t *th = calloc((size_t)nclaimers, sizeof *th);
  for (int i = 0; i < nclaimers; i++) {
    atr_seed_daemon_id(i, cl[i].daemon);
    cl[i].ids = calloc(JOBS, 37);
    pthread_create(&th[i], NULL, claim_until_empty, &cl[i]);
  }
  char(*all)[37] = calloc(JOBS + 1, 37);
  int total = 0, errors = 0;
  for (int i = 0; i < nclaimers; i++) {
    pthread_join(th[i], NULL);
    errors += cl[i].errors;
    for (int k = 0; k < cl[i].claimed && total <= JOBS; k++)
      memcpy(all[total++], cl[i].ids[k], 37);
    free(cl[i].ids);
  }
  assert_int_equal(errors, 0);
  assert_int_equal(total, JOBS);
  qsort(all, (size_t)total, 37, cmp_id);
  for (int i = 1; i < total; i++)
    assert_string_not_equal(all[i - 1], all[i]);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM provisioner_jobs "
                              "WHERE started_at IS NULL OR worker_id IS NULL"),
                   0);
  free(all);
  free(cl);
  free(th);
  exec_ok("DELETE FROM provisioner_jobs", NULL, 0);
}

static void only_the_holder_may_heartbeat_or_complete(void **state) {
  (void)state;
  char *err = NULL;
  must(atr_seed_jobs(&store, JOB_HOLDER, 1, &err), &err);
  char a[37], b[37];
  atr_seed_daemon_id(0, a);
  atr_seed_daemon_id(1, b);
  atr_job_t job;
  atr_claimer_t who = as_claimer(a);
  must(atr_jobs_claim(&store, &who, &job, &err), &err);
  char want[37];
  atr_seed_job_id(JOB_HOLDER, want);
  assert_string_equal(job.id, want);
  assert_string_equal(job.type, "workspace_build");
  assert_string_equal(job.provisioner, "echo");
  assert_string_equal(job.organization_id, atr_seed_org_id);
  assert_int_equal(atr_jobs_heartbeat(&store, job.id, b, &err), ATR_EPERM);
  free(err);
  err = NULL;
  assert_int_equal(atr_jobs_complete(&store, job.id, b, NULL, &err), ATR_EPERM);
  assert_non_null(strstr(err, "is not running under this provisioner daemon"));
  free(err);
  err = NULL;
  must(atr_jobs_heartbeat(&store, job.id, a, &err), &err);
  must(atr_jobs_complete(&store, job.id, a, NULL, &err), &err);
  assert_int_equal(atr_jobs_complete(&store, job.id, a, "again", &err),
                   ATR_EPERM);
  free(err);
  atr_job_clear(&job);
}

static void a_job_goes_only_to_a_daemon_with_its_tags(void **state) {
  (void)state;
  char *err = NULL;
  must(atr_seed_daemon(&store, 100, "os", "windows", &err), &err);
  must(atr_seed_daemon(&store, 101, "os", "linux", &err), &err);
  must(atr_seed_jobs(&store, JOB_TAGGED, 1, &err), &err);
  char id[37];
  atr_seed_job_id(JOB_TAGGED, id);
  atr_value_t t[] = {atr_v_text(id)};
  exec_ok("INSERT INTO provisioner_job_tags (job_id, key, value) "
          "VALUES (?, 'os', 'linux')",
          t, 1);
  char plain[37], windows[37], linux_[37];
  atr_seed_daemon_id(0, plain);
  atr_seed_daemon_id(100, windows);
  atr_seed_daemon_id(101, linux_);
  atr_job_t job;
  atr_claimer_t who = as_claimer(plain);
  assert_int_equal(atr_jobs_claim(&store, &who, &job, &err), ATR_ENOENT);
  free(err);
  err = NULL;
  who = as_claimer(windows);
  assert_int_equal(atr_jobs_claim(&store, &who, &job, &err), ATR_ENOENT);
  free(err);
  err = NULL;
  /* a daemon for another provisioner type does not get it either */
  static const char *const docker_only[] = {"docker", NULL};
  who = (atr_claimer_t){linux_, atr_seed_org_id, docker_only};
  assert_int_equal(atr_jobs_claim(&store, &who, &job, &err), ATR_ENOENT);
  free(err);
  err = NULL;
  who = as_claimer(linux_);
  must(atr_jobs_claim(&store, &who, &job, &err), &err);
  assert_string_equal(job.id, id);
  atr_job_clear(&job);
}

/* ---- pub/sub -------------------------------------------------------- */

typedef struct inbox {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  char got[8][64];
  int n;
} inbox_t;

static void on_message(void *ud, const char *channel, const char *payload,
                       unsigned flags) {
  inbox_t *in = ud;
  (void)channel;
  if (flags || !payload)
    return;
  pthread_mutex_lock(&in->lock);
  if (in->n < 8)
    snprintf(in->got[in->n++], 64, "%s", payload);
  pthread_cond_signal(&in->cond);
  pthread_mutex_unlock(&in->lock);
}

static void published_messages_reach_subscribers_in_order(void **state) {
  (void)state;
  inbox_t in = {.lock = PTHREAD_MUTEX_INITIALIZER,
                .cond = PTHREAD_COND_INITIALIZER};
  atr_db_sub_t *sub = NULL;
  char *err = NULL;
  must(store.ops->subscribe(store.ctx, "suite_events", on_message, &in, &sub,
                            &err),
       &err);
  must(store.ops->publish(store.ctx, "suite_other", "not for us", &err), &err);
  must(store.ops->publish(store.ctx, "suite_events", "one", &err), &err);
  must(store.ops->publish(store.ctx, "suite_events", "two", &err), &err);
  pthread_mutex_lock(&in.lock);
  for (int waited = 0; in.n < 2 && waited < 100; waited++) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += 50000000;
    if (ts.tv_nsec >= 1000000000) {
      ts.tv_sec++;
      ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(&in.cond, &in.lock, &ts);
  }
  pthread_mutex_unlock(&in.lock);
  store.ops->unsubscribe(store.ctx, sub);
  assert_int_equal(in.n, 2);
  assert_string_equal(in.got[0], "one");
  assert_string_equal(in.got[1], "two");
}

/* ---- backup and restore ------------------------------------------------ */

static void restore_brings_back_the_backed_up_content(void **state) {
  (void)state;
  char path[256];
  snprintf(path, sizeof path, "%s/backup.db", tmpdir);
  exec_ok("DELETE FROM suite_values WHERE k = 50", NULL, 0);
  atr_value_t p[] = {atr_v_int(50), atr_v_text("before")};
  exec_ok("INSERT INTO suite_values (k, t) VALUES (?, ?)", p, 2);
  char *err = NULL;
  must(store.ops->backup(store.ctx, path, &err), &err);
  exec_ok("UPDATE suite_values SET t = 'after' WHERE k = 50", NULL, 0);
  exec_ok("DELETE FROM provisioner_jobs", NULL, 0);
  must(store.ops->restore(store.ctx, path, &err), &err);
  assert_int_equal(
      count_rows("SELECT COUNT(*) FROM suite_values WHERE t = 'before'"), 1);
  assert_int_equal(
      count_rows("SELECT COUNT(*) FROM suite_values WHERE t = 'after'"), 0);
  assert_int_equal(count_rows("SELECT COUNT(*) FROM provisioner_jobs"), 2);
}

int main(int argc, char **argv) {
  if (argc < 2 || (strcmp(argv[1], "sqlite") && strcmp(argv[1], "postgres")) ||
      (!strcmp(argv[1], "postgres") && argc < 3)) {
    fprintf(stderr, "usage: %s sqlite | postgres PGDIR\n", argv[0]);
    return 2;
  }
  backend = argv[1];
  is_pg = strcmp(backend, "postgres") == 0;
  pg_dir = is_pg ? argv[2] : NULL;
  atr_log_set_level(ATR_LOG_WARN);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(migrations_apply_from_empty_and_only_once),
      cmocka_unit_test(a_newer_schema_is_refused),
      cmocka_unit_test(values_round_trip_with_their_types),
      cmocka_unit_test(a_failed_transaction_leaves_nothing_behind),
      cmocka_unit_test(constraint_violations_have_their_own_code),
      cmocka_unit_test(every_job_is_claimed_exactly_once_under_contention),
      cmocka_unit_test(only_the_holder_may_heartbeat_or_complete),
      cmocka_unit_test(a_job_goes_only_to_a_daemon_with_its_tags),
      cmocka_unit_test(published_messages_reach_subscribers_in_order),
      cmocka_unit_test(restore_brings_back_the_backed_up_content),
  };
  return cmocka_run_group_tests_name(backend, tests, setup, teardown);
}
