/* tests/unit/audit_fixture.h — what the audit log test files share: the
 * domain fixture's store (domain_fixture.h: SQLite, or the PostgreSQL
 * cluster named on the command line) with two users, fake requests
 * without an HTTP exchange, readers of the stored rows and of the process
 * log, and the test functions main runs in order.
 *
 * Ownership: the API env belongs to setup/teardown;
 * every char * and json_t * a helper returns is the caller's.
 * Threads: the test's thread only.
 */
#ifndef ATRIUM_TESTS_AUDIT_FIXTURE_H
#define ATRIUM_TESTS_AUDIT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api.h"
#include "audit.h"
#include "db.h"
#include "domain_fixture.h"

#define REQUEST_ID FIXTURE_REQUEST_ID
#define ORG_ID "0a1b2c3d-4e5f-4061-8728-394a5b6c7d8e"
#define NIL_UUID "00000000-0000-0000-0000-000000000000"
#define CANARY "canary-Zq8Xv2Lm"
/* 2026-01-01T00:00:00Z */
#define T0 INT64_C(1767225600000000)
#define HOUR INT64_C(3600000000)

extern atr_api_env_t env;
extern char alice_id[37], bob_id[37];

int setup(void **state);
int teardown(void **state);
atr_api_req_t request(const char *query);
void record(const atr_api_req_t *r, const atr_audit_entry_t *e);
atr_api_req_t signed_in_as(const char *user_id, const char *username);
void text_col(json_t *row, const char *name, atr_db_t *db, atr_db_rows_t *rows,
              size_t col);
json_t *stored_row(const char *target);
char *table_text(void);
void assert_json_equal(json_t *got, const char *want_text);
void assert_row(const char *target, const char *want);
char *logged_during(void (*fn)(void));

/* The tests, in the order main runs them. */
void a_record_is_one_row_with_the_requests_context(void **state);
void a_login_is_recorded_for_the_user_it_names(void **state);
void ids_that_are_not_uuids_go_to_additional_fields(void **state);
void a_request_without_context_still_records(void **state);
void secrets_never_reach_the_table(void **state);
void diff_add_builds_the_documented_shape(void **state);
void a_storage_error_is_logged_and_the_request_goes_on(void **state);
void filters_find_exactly_the_matching_entries(void **state);
void limit_and_offset_page_while_count_counts_all(void **state);
void entries_read_back_in_the_api_shape(void **state);
void a_bad_filter_is_refused_naming_the_parameter(void **state);
void times_parse_as_rfc_3339(void **state);
void the_handler_answers_200_or_400(void **state);
void reading_the_log_needs_a_role_that_may(void **state);

#endif
