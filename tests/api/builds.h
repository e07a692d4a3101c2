/* tests/api/builds.h — what the test_api_builds_* programs share:
 * templates, workspaces and builds through the real `atrium server` with
 * the example echo provisioner, as an API client sees them. One program
 * per concern:
 *
 *   test_api_builds_imports    template versions, imports and their errors
 *   test_api_builds_lifecycle  workspaces built, stopped, started, deleted;
 *                              sensitive values; permissions; 20 at once
 *   test_api_builds_jobs       cancel, the reaper, tags, announced jobs
 *   test_api_builds_logs       following logs as they are written; the cap
 *   test_api_builds_policies   deployment and template policies, SIGHUP
 *
 *   test_api_builds_<concern> sqlite
 *   test_api_builds_<concern> postgres PGDIR   (PGDIR/dsn: libpq DSN)
 *
 * Each test starts its own server on an empty database with
 * provisioner_echo enabled (its `delay` is how long each apply pretends to
 * work; after it, an apply waits while the test holds builds, see
 * hold_builds) and provisioner.poll_interval at 10 minutes, so every job that
 * starts within the test was announced, not found by polling. Some tests
 * stop the server and start it again on the same database (SIGKILL for a
 * daemon that died mid-job, SIGTERM for a configuration change). A test
 * ends with SIGTERM, which must exit 0, and the server's log (at debug
 * level) must hold no remembered secret: passwords, session keys and the
 * sensitive parameter value. Waits poll with a deadline.
 *
 * Threads: the test's main thread, but for call() (any thread). */
#ifndef ATRIUM_TEST_API_BUILDS_H
#define ATRIUM_TEST_API_BUILDS_H

#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "suite.h"

/* Distinctive, so a hit anywhere cannot be chance. */
#define CANARY "Zebra-Canary-7f3a9c1e"
#define CANARY2 "Okapi-Canary-52d0b7aa"
#define MASKED "********"
/* How long a build may take on the fast echo (200 ms), ASan included. */
#define BUILD_MS 15000

/* What a server is started with; NULL fields keep the default. */
typedef struct srv_opts {
  const char *delay;   /* provisioner_echo.delay; "200ms" */
  const char *daemons; /* provisioner.daemons; "3" */
  const char *heartbeat_interval, *heartbeat_timeout; /* "500ms", default */
  const char *pending_timeout, *reaper_interval;      /* defaults */
  const char *tags;                                   /* "[pool=gpu]" */
  const char *max_log_size;                           /* default */
  const char *policy_files;                           /* a YAML list of globs */
} srv_opts_t;

extern const srv_opts_t FAST; /* a 200 ms apply */

/* A template ready for workspaces. */
typedef struct tmpl {
  char id[37];
  char version_id[37];
} tmpl_t;

/* ---- the server ------------------------------------------------------------ */

/* Setup: a server with the options o; server_up: with FAST. Teardown:
 * srv_stop. */
int builds_start(void **state, const srv_opts_t *o);
int server_up(void **state);
/* Stop the server (SIGKILL, or SIGTERM which must exit 0) and start it
 * again on the same database with the options o. */
void restart(srv_t *s, int sig, const srv_opts_t *o);
/* Builds that reach the end of their delay wait, running, until
 * release_builds() (or cancel; the echo gives up after 60 s): how a test
 * keeps a build running for as long as it needs one, whatever the
 * machine's speed. The job log then has "echo: held until <file> is
 * removed". A server start releases a hold a failed test left. */
void hold_builds(void);
void release_builds(void);
/* Run the tests on the backend the command line names; the exit status. */
int builds_main(int argc, char **argv, const char *group,
                const struct CMUnitTest *tests, size_t n);
#define BUILDS_MAIN(group, tests)                                              \
  builds_main(argc, argv, group, tests, sizeof tests / sizeof tests[0])

/* "2026-11-26T07:33:03.123456Z" → microseconds since the epoch; -1 when
 * the value is not such a time. */
int64_t time_us(const json_t *t);

/* ---- template archives ------------------------------------------------------- */

/* The parameters every workspace test uses: cpus (mutable, 1..8), region
 * (immutable), token (sensitive), flavor (one of two, required). */
extern const char TEMPLATE_YAML[];
/* A tar.gz of (name, text) pairs ending with a NULL name; malloc'd. */
void *targz(const char *const *files, size_t *len);
/* Upload a tar.gz of files; the file id. */
void upload(const srv_t *s, const char *const *files, char id[64]);
/* The same with template.yaml `yaml` and a main.txt. */
void upload_yaml(const srv_t *s, const char *yaml, char id[64]);
/* POST a template version; body is stolen. */
atr_tc_res_t post_version(const srv_t *s, const char *token, json_t *body);

/* ---- jobs ------------------------------------------------------------------- */

const char *job_status(const atr_tc_res_t *r);
/* GET path (a version or a build) until its job's status is `want`, or
 * (want NULL) has ended, or timeout_ms passes; the last answer. */
atr_tc_res_t wait_job(const srv_t *s, const char *path, const char *want,
                      int timeout_ms);
/* The same, failing the test unless the job ended with `status`. */
atr_tc_res_t wait_end(const srv_t *s, const char *path, const char *status,
                      int timeout_ms);
/* The job log of path ("/api/v2/workspacebuilds/<id>"), as the array. */
json_t *job_log(const srv_t *s, const char *path, const char *token);
/* How many lines of the log contain needle. */
size_t lines_with(const json_t *lines, const char *needle);
void dump_log(const json_t *lines);
/* The log of path has exactly `want` lines containing needle. */
void assert_log_lines(const srv_t *s, const char *path, const char *needle,
                      size_t want);
/* Poll the log of path until a line contains needle. */
bool wait_log(const srv_t *s, const char *path, const char *needle,
              int timeout_ms);

/* ---- templates ---------------------------------------------------------------- */

/* Create a version of the archive `file` (template_id may be NULL); its id. */
void create_version(const srv_t *s, const char *file, const char *name,
                    const char *template_id, char id[37]);
void version_path(char *buf, size_t size, const char *id);
/* An imported version of TEMPLATE_YAML made into template `name`. */
void make_template(const srv_t *s, const char *name, tmpl_t *t);

/* ---- workspaces ----------------------------------------------------------------- */

/* [{"name": n, "value": v}, ...] from name, value, ..., NULL. */
json_t *values_of(const char *const *pairs);
#define VALUES(...) values_of((const char *const[]){__VA_ARGS__, NULL})
/* POST /users/{user}/workspaces; vals is stolen. */
atr_tc_res_t create_workspace(const srv_t *s, const char *token,
                              const char *user, const char *name,
                              const char *template_id, json_t *vals);
/* A new workspace of the owner's; its id and its first build's id. */
void new_workspace(const srv_t *s, const char *name, const tmpl_t *t,
                   json_t *vals, char ws[37], char build[37]);
void build_path(char *buf, size_t size, const char *id);
/* POST a build; vals (may be NULL) is stolen. */
atr_tc_res_t post_build(const srv_t *s, const char *token, const char *ws,
                        const char *transition, json_t *vals);
/* A build that must be accepted; its id. */
void build(const srv_t *s, const char *ws, const char *transition, json_t *vals,
           char id[37]);
/* Wait for the build to end; it must have the workspace status `status`. */
void wait_build(const srv_t *s, const char *id, const char *status);
size_t count_builds(const srv_t *s, const char *ws);
/* GET /api/v2/workspaces<query> as the token sees it: the count. */
json_int_t count_workspaces(const srv_t *s, const char *token,
                            const char *query);
/* The value of parameter name in a [{"name", "value"}] array. */
const char *param(const json_t *list, const char *name);

#endif
