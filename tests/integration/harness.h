/* tests/integration/harness.h — the one server fixture of the tests: run
 * the real `atrium` binary, on SQLite or on the `postgres` ctest
 * fixture's database.
 *
 * A harness owns a temporary directory (config, data, log file) and at most
 * one server process, which it always stops by PID: atr_harness_stop sends
 * SIGTERM and SIGKILL after a bound, and a server a failed test left
 * behind (cmocka jumps out of a test before its stop) is killed when the
 * program exits. Start-up waits for /readyz with a bounded poll.
 *
 * The database part (harness_db.c, which links libpq) is optional: a
 * program that only runs SQLite servers need not link it.
 *
 * Threads: start, stop, wait and cleanup only from the test's main thread
 * (it alone reaps servers); reading the log from any thread. HTTP calls go
 * through tests/api/client.h. */
#ifndef ATRIUM_TEST_HARNESS_H
#define ATRIUM_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct atr_harness {
  char dir[256];    /* mkdtemp'd working directory */
  char config[300]; /* <dir>/atrium.yaml */
  char log[300];    /* <dir>/server.log: the server's stderr */
  int port;
  pid_t pid;
} atr_harness_t;

/* How long a server may take to become ready, ASan included. */
#define ATR_HARNESS_START_MS 15000

/* Make the directory and write `yaml` as the config (may be NULL). */
void atr_harness_init(atr_harness_t *h, const char *yaml);
void atr_harness_write_config(atr_harness_t *h, const char *yaml);
/* Start `atrium server --config <config> --http.address=127.0.0.1:<port>`
 * plus `extra` arguments (NULL-terminated, may be NULL), with `env`
 * ("NAME=value" strings, NULL-terminated, may be NULL) added; poll /readyz
 * until it answers 200 (fails the test after ATR_HARNESS_START_MS, or at
 * once if the server exits). The log is text (ATRIUM_LOG_FORMAT=text)
 * unless the environment or `env` says otherwise. */
void atr_harness_start(atr_harness_t *h, const char *const *extra,
                       const char *const *env);
/* Wait up to timeout_ms for the server to exit; returns its exit status
 * (128 + the signal when a signal ended it), or -1 on timeout (then the
 * process is killed). */
int atr_harness_wait(atr_harness_t *h, int timeout_ms);
/* SIGTERM, then wait up to timeout_ms (SIGKILL after that): as
 * atr_harness_wait. A clean shutdown returns 0. */
int atr_harness_stop(atr_harness_t *h, int timeout_ms);
/* Kill anything still running and remove the directory. */
void atr_harness_cleanup(atr_harness_t *h);

/* Run the atrium binary to completion with args; captures stdout+stderr
 * into *output (caller frees). Returns the exit status. */
int atr_run_cli(const char *const *args, const char *const *env, char **output);
/* The server's log so far (caller frees). */
char *atr_harness_read_log(const atr_harness_t *h);
/* Poll the log until it contains `needle` (timeout_ms); 1 if found. */
int atr_harness_wait_log(const atr_harness_t *h, const char *needle,
                         int timeout_ms);
/* Print the last n lines of the log to stderr, for a failure's context. */
void atr_harness_print_log_tail(const atr_harness_t *h, int n);

/* Monotonic milliseconds, and a pause, for bounded polls. */
double atr_harness_now_ms(void);
void atr_harness_sleep_ms(int ms);

/* ---- the database (harness_db.c) ------------------------------------------ */

/* Take the backend from the command line: `sqlite`, or `postgres PGDIR`
 * (PGDIR/dsn holds the fixture's libpq DSN). Returns the index of the
 * first argument after them, or -1 (with a message naming `usage`) when
 * they are wrong. */
int atr_harness_backend(int argc, char **argv, const char *usage);
bool atr_harness_on_postgres(void);
/* The fixture's DSN ("" on SQLite) and its directory (NULL on SQLite). */
const char *atr_harness_pg_dsn(void);
const char *atr_harness_pg_dir(void);
/* The YAML lines that enable the backend's storage plugin, under
 * `plugins:` (`more`: further lines for that plugin, 4-space indented,
 * may be NULL). Caller frees. */
char *atr_harness_storage_yaml(const char *more);
/* On PostgreSQL, drop and make again the public schema, so the next
 * server starts on an empty database (its migrations run again); nothing
 * on SQLite, where every harness has its own data directory. 0 or -1
 * (with a message). */
int atr_harness_reset_db(void);

#endif
