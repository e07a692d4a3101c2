/* tests/plugins/postgres_fixture.h — what the storage_postgres test files
 * share: plugin instances on a DSN, the fixture cluster's DSNs and the
 * process log, checks that fail with the plugin's message and never let
 * the password through, a pub/sub inbox, the group set-up that makes a
 * database of the test's own, and the test functions main runs in order.
 *
 * Ownership: instance_start pairs with instance_stop, inbox_init with
 * inbox_free; get_conn's connection goes back with ops->put; query_text's
 * and read_text's results are the caller's.
 * Threads: the inbox is filled from the plugin's listener thread (its lock
 * protects it); the rest runs on the test's thread or, for a started
 * instance, wherever its ops allow.
 */
#ifndef ATRIUM_TESTS_POSTGRES_FIXTURE_H
#define ATRIUM_TESTS_POSTGRES_FIXTURE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "atrium/storage.h"
#include "conf.h"
#include "loader.h"
#include "storage_harness.h"

/* ATR_TEST_PLUGIN_DIR, ATR_TEST_PG_DIR, ATR_TEST_PG_PRIVATE_DIR and
 * ATR_TEST_PG_SCRIPT come from tests/plugins/postgres.cmake. */

#define SECRET "Pw-never-shown-5c1d"
#define TEST_DB "atrium_plugin_test"
#define NJOBS 10000
#define NCLAIMERS 16

extern char **environ;

typedef struct instance {
  atr_loader_t loader;
  atr_conf_node_t *conf;
  atr_handle_t *h;
  const atr_storage_ops_t *ops;
  void *ctx;
} instance_t;

#define INBOX_MAX 64
typedef struct inbox {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  size_t n;
  char *payload[INBOX_MAX]; /* NULL for a MISSED notice */
  char *channel[INBOX_MAX];
  unsigned flags[INBOX_MAX];
} inbox_t;

extern instance_t db;
extern char *fixture_dsn;
extern char *test_dsn;
extern FILE *log_file;

char *read_text(const char *path);
void no_secret(const char *s);
void must(int rc, char **err);
void expect_err(int rc, int want, const char *part, char **err);
int instance_start(instance_t *in, const char *dsn, const char *extra,
                   char **err);
void instance_stop(instance_t *in);
void admin(const char *sql);
int pg_script(const char *action, const char *dir);
atr_db_conn_t *get_conn(instance_t *in);
void script(instance_t *in, const char *sql);
atr_db_rows_t *query_row(instance_t *in, atr_db_conn_t *conn, const char *sql,
                         const atr_value_t *params, size_t n);
int64_t query_int(instance_t *in, const char *sql);
char *query_text(instance_t *in, const char *sql);
void inbox_init(inbox_t *b);
void inbox_free(inbox_t *b);
void on_message(void *user_data, const char *channel, const char *payload,
                unsigned flags);
size_t inbox_wait(inbox_t *b, size_t n, unsigned timeout_ms);
int group_setup(void **state);
int group_teardown(void **state);
int publish_child(void);

/* The tests, in the order main runs them. */
void test_dialect_and_features(void **state);
void test_placeholders(void **state);
void test_round_trips(void **state);
void test_big_blob(void **state);
void test_errors(void **state);
void test_retryable_errors(void **state);
void test_backup_restore(void **state);
void test_pool(void **state);
void test_bad_dsn(void **state);
void test_log_has_no_dsn(void **state);
void test_skip_locked_queue(void **state);
void test_pubsub_local(void **state);
void test_pubsub_cross_process(void **state);
void test_outage_and_restart(void **state);

#endif
