/* tests/api/users.h — what the files of the test_api_users program share:
 * its servers (SQLite or PostgreSQL, no provisioner), users and tokens
 * made through the API, and the groups of tests each file adds.
 *
 *   test_api_users sqlite
 *   test_api_users postgres PGDIR   (PGDIR/dsn: the fixture's libpq DSN)
 *
 * Threads: the test's main thread only. */
#ifndef ATRIUM_TEST_API_USERS_H
#define ATRIUM_TEST_API_USERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "suite.h"

#define NEW_PW "Quartz-Lantern-93"
/* Distinctive, so a hit in the log or the audit log cannot be chance. */
#define CANARY_PW "Zebra-Canary-7f3a9c1e"
#define INCORRECT "Incorrect email or password."
#define NOT_SIGNED_IN "You are not signed in."

/* Setups: a server with the rate limits off; with sign-in limited to 3 a
 * minute; with API calls limited to 5 a minute. Teardown: srv_stop. */
int server_up(void **state);
int server_up_limited(void **state);
int server_up_api_limited(void **state);

/* The status of a sign-in (its token is remembered when it worked). */
long login_status(const srv_t *s, const char *email, const char *password);
/* The owner creates a user; their id into id. The password is
 * remembered. */
void create_user(const srv_t *s, const char *username, const char *email,
                 const char *password, char id[37]);
/* A new long-lived token for `user` made with `token`; the key. */
const char *create_token(const srv_t *s, const char *user, const char *token,
                         const char *name);
/* The status GET /users/me answers this key. */
long me_status(const srv_t *s, const char *token);
/* {"roles": [role]}, or {"roles": []} for NULL. */
json_t *role_list(const char *role);
/* The secret a key "<id>-<secret>" carries; its id alone may be logged. */
const char *key_secret(const char *key);
/* A 400 "Validation failed." naming each of fields exactly once, and
 * nothing else. */
void assert_validation_failed(const atr_tc_res_t *r, const char *const *fields,
                              size_t n);

/* The groups of tests in test_api_users_audit.c and test_api_files.c. */
extern const struct CMUnitTest users_audit_tests[];
extern const size_t users_audit_count;
extern const struct CMUnitTest files_tests[];
extern const size_t files_count;

#endif
