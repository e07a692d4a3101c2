/* tests/plugins/sqlite_fixture.h — what the storage_sqlite test files
 * share: the plugin started on a data directory of its own through the
 * core loader, statements that fail the test with SQLite's message, and
 * the test functions main runs in order.
 *
 * Ownership: fx_start/fx_start_in pair with fx_stop; get_conn's connection
 * goes back with f->ops->put.
 * Threads: a started fx may be used from any thread, as the plugin's ops
 * allow; start and stop on the test's thread.
 */
#ifndef ATRIUM_TESTS_SQLITE_FIXTURE_H
#define ATRIUM_TESTS_SQLITE_FIXTURE_H

#include <ftw.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "atrium/storage.h"
#include "conf.h"
#include "loader.h"
#include "storage_harness.h"

typedef struct fx {
  char *dir; /* the data directory */
  atr_loader_t loader;
  atr_conf_node_t *conf;
  atr_handle_t *h;
  const atr_storage_ops_t *ops;
  void *ctx;
} fx_t;

int rm_entry(const char *path, const struct stat *st, int flag,
             struct FTW *ftw);
void fx_start_in(fx_t *f, const char *dir, const char *options);
void fx_start(fx_t *f, const char *options);
void fx_stop(fx_t *f, bool remove_dir);
atr_db_conn_t *get_conn(fx_t *f);
void exec_ok(fx_t *f, atr_db_conn_t *c, const char *sql,
             const atr_value_t *params, size_t n);
void script_ok(fx_t *f, atr_db_conn_t *c, const char *sql);
atr_value_t one(fx_t *f, atr_db_conn_t *c, const char *sql,
                const atr_value_t *params, size_t n, atr_value_type_t want,
                char *buf, size_t bufsize);
int64_t one_int(fx_t *f, atr_db_conn_t *c, const char *sql);

/* The tests, in the order main runs them. */
void test_defaults_wal_and_file_in_data_dir(void **state);
void test_options_synchronous_full_and_relative_path(void **state);
void test_memory_path_is_refused(void **state);
void test_typed_values_round_trip(void **state);
void test_times_order_and_other_spellings(void **state);
void test_errors_carry_sqlite_messages(void **state);
void test_transactions_and_dialect(void **state);
void test_backup_then_restore_brings_back_content(void **state);
void test_restore_refuses_what_is_not_a_database(void **state);
void test_claims_under_contention(void **state);
void test_pool_exhaustion_is_busy_after_timeout(void **state);
void test_writer_in_another_process_is_waited_for(void **state);
void test_pubsub_order_channels_and_limits(void **state);
void test_unsubscribe_waits_for_a_running_callback(void **state);
void test_unsubscribe_from_own_callback_does_not_hang(void **state);

#endif
