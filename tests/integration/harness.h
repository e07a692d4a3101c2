/* tests/integration/harness.h — run the real `atrium` binary in tests.
 *
 * A harness owns a temporary directory (config, data, log file) and at most
 * one server process, which it always stops by PID at the end. */
#ifndef ATRIUM_TEST_HARNESS_H
#define ATRIUM_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct atr_harness {
  char dir[256];    /* mkdtemp'd working directory */
  char config[300]; /* <dir>/atrium.yaml */
  char log[300];    /* <dir>/server.log: the server's stderr */
  int port;
  pid_t pid;
} atr_harness_t;

typedef struct atr_response {
  long status;
  char *body;
  size_t len;
} atr_response_t;

/* Make the directory and write `yaml` as the config (may be NULL). */
void atr_harness_init(atr_harness_t *h, const char *yaml);
void atr_harness_write_config(atr_harness_t *h, const char *yaml);
/* Start `atrium server --config <config> --http.address=127.0.0.1:<port>`
 * plus `extra` arguments (NULL-terminated, may be NULL), with `env`
 * ("NAME=value" strings, NULL-terminated, may be NULL) added; wait until
 * /healthz answers (fails the test after 15 s). The log is text
 * (ATRIUM_LOG_FORMAT=text) unless the environment or `env` says
 * otherwise. */
void atr_harness_start(atr_harness_t *h, const char *const *extra,
                       const char *const *env);
/* Wait up to timeout_ms for the server to exit; returns its exit status, or
 * -1 on timeout (then the process is killed). */
int atr_harness_wait(atr_harness_t *h, int timeout_ms);
/* Kill anything still running and remove the directory. */
void atr_harness_cleanup(atr_harness_t *h);

/* GET path on the server; status 0 when the connection failed. */
atr_response_t atr_http_get(const atr_harness_t *h, const char *path);
/* The same with one extra request header ("Name: value"). */
atr_response_t atr_http_get_with_header(const atr_harness_t *h,
                                        const char *path, const char *header);
/* POST body (len bytes, application/json) to path. */
atr_response_t atr_http_post(const atr_harness_t *h, const char *path,
                             const char *body, size_t len);
void atr_response_free(atr_response_t *r);

/* Run the atrium binary to completion with args; captures stdout+stderr
 * into *output (caller frees). Returns the exit status. */
int atr_run_cli(const char *const *args, const char *const *env, char **output);
/* The server's log so far (caller frees). */
char *atr_harness_read_log(const atr_harness_t *h);
/* Poll the log until it contains `needle` (timeout_ms); 1 if found. */
int atr_harness_wait_log(const atr_harness_t *h, const char *needle,
                         int timeout_ms);

#endif
