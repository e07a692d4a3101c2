/* tests/api/suite.h — what every API test program shares: a server per
 * test (the harness's fixture, on the backend named on the command line,
 * on an empty database), the owner's first sign-in, the secrets the
 * server's log must not contain, and assertions on answers.
 *
 * A test's setup is srv_start (state: a srv_t), its teardown srv_stop:
 * SIGTERM, which must exit 0 within a bound, and no remembered secret in
 * the log (written at debug level). Calls go through tests/api/client.h.
 *
 * Threads: the secrets list and the server's life belong to the test's
 * main thread; call() and get() may run on any thread. */
#ifndef ATRIUM_TEST_API_SUITE_H
#define ATRIUM_TEST_API_SUITE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "client.h"
#include "harness.h"

#define OWNER_EMAIL "owner@example.com"
#define OWNER_PW "Tangerine-Kiosk-41"
#define MEMBER_EMAIL "member@example.com"
#define MEMBER_PW "Velvet-Orbit-58"

typedef struct srv {
  atr_harness_t h;
  char owner_id[37];
  char org_id[37];
  const char *owner_token; /* owned by the secrets list */
} srv_t;

/* ---- the server ------------------------------------------------------------ */

/* What a suite server runs with beyond the common part (the backend's
 * storage plugin, password sign-in with cheap argon2 costs, debug logs,
 * rate limits off). NULL fields add nothing. */
typedef struct srv_config {
  int threads;         /* http.threads; 4 when 0 */
  const char *top;     /* more top-level YAML (provisioner:, policy: …) */
  const char *plugins; /* more plugins, each "  name:\n    key: value\n" */
  const char *storage; /* more lines for the storage plugin (PostgreSQL) */
} srv_config_t;

/* The config text (caller frees). */
char *srv_config_text(const srv_config_t *c);
/* Reset the database, then start a server with this config text and
 * flags (NULL-terminated, may be NULL); *state gets the srv_t. */
int srv_start(void **state, const char *config, const char *const *flags);
/* SIGTERM; the exit status must be 0 and the log free of secrets. Forgets
 * the secrets. 0, or -1 after printing why. */
int srv_stop(void **state);
/* Stop the server (SIGKILL, or SIGTERM which must exit 0) and start it
 * again on the same database with the config text. */
void srv_restart(srv_t *s, int sig, const char *config);

/* ---- secrets the log must not contain ---------------------------------------- */

/* Remember s (copied) for the end-of-test log check; returns the copy. */
const char *remember(const char *s);
/* Index of the first remembered secret found in text, or -1. */
int find_secret(const char *text);
const char *secret_at(int i);

/* ---- calls ------------------------------------------------------------------ */

/* method path with token in Atrium-Session-Token; body is stolen. */
atr_tc_res_t call(const srv_t *s, const char *method, const char *path,
                  const char *token, json_t *body);
atr_tc_res_t get(const srv_t *s, const char *path, const char *token);
/* A string member of the answer, or "(missing)". */
const char *field(const atr_tc_res_t *r, const char *key);
const char *jstr(const json_t *o, const char *key);
/* o.a.b as a string ("(missing)" when absent). */
const char *jstr2(const json_t *o, const char *a, const char *b);

/* Sign in; the session token (remembered) or a failed test. */
const char *login(const srv_t *s, const char *email, const char *password);
/* The first user (the owner) is created and signs in: owner_id, org_id
 * and owner_token are set. */
void owner_signs_in(srv_t *s);

/* ---- assertions --------------------------------------------------------------- */

/* Assert the status; on a mismatch cmocka's message comes after the body. */
#define ASSERT_ANSWER(res, want)                                               \
  do {                                                                         \
    if ((res).status != (want))                                                \
      print_error("answer: %s\n", (res).body ? (res).body : "");               \
    assert_int_equal((res).status, (want));                                    \
  } while (0)

/* A call whose answer matters only for its status. */
#define ASSERT_STATUS(want, expr)                                              \
  do {                                                                         \
    atr_tc_res_t r_ = (expr);                                                  \
    ASSERT_ANSWER(r_, want);                                                   \
    atr_tc_res_free(&r_);                                                      \
  } while (0)

/* An error answer: status and message. */
#define ASSERT_ERROR(want, msg, expr)                                          \
  do {                                                                         \
    atr_tc_res_t r_ = (expr);                                                  \
    ASSERT_ANSWER(r_, want);                                                   \
    assert_string_equal(field(&r_, "message"), (msg));                         \
    atr_tc_res_free(&r_);                                                      \
  } while (0)

/* s contains needle, or the test fails showing s. */
void assert_contains(const char *s, const char *needle);
/* A 400 naming each of fields exactly once, and nothing else; each with
 * a detail, which for fields[i] contains details[i] (when details and
 * details[i] are not NULL). */
void assert_validations(const atr_tc_res_t *r, const char *const *fields,
                        const char *const *details, size_t n);

#endif
