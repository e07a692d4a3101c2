/* tests/unit/rbac_matrix.h — the test functions of test_rbac_matrix, in
 * the order its main runs them, from the files that group them: the
 * matrix against the router (test_rbac_matrix.c), the route table and
 * atr_api_match (test_rbac_matrix_routes.c), the permission table and
 * role names (test_rbac_matrix_table.c). Everything runs on the test's
 * thread and owns nothing across tests.
 */
#ifndef ATRIUM_TESTS_RBAC_MATRIX_H
#define ATRIUM_TESTS_RBAC_MATRIX_H

#include "rbac.h"

/* Every role bit; the permission tests walk all their combinations. */
#define ALL_ROLES                                                              \
  (ATR_ROLE_OWNER | ATR_ROLE_USER_ADMIN | ATR_ROLE_TEMPLATE_ADMIN |            \
   ATR_ROLE_AUDITOR | ATR_ROLE_MEMBER | ATR_ROLE_ORG_ADMIN |                   \
   ATR_ROLE_ORG_MEMBER)

/* The tests, in the order main runs them. */
void every_route_has_a_row_and_every_row_a_route(void **state);
void rows_mark_exactly_the_columns_that_do_not_apply(void **state);
void each_route_allows_exactly_the_actors_of_its_row(void **state);
void self_counts_only_where_the_route_names_a_user(void **state);
void without_a_session_only_public_routes_answer(void **state);
void only_owner_reads_authenticate_while_the_database_is_down(void **state);
void route_parameters_name_real_path_segments(void **state);
void every_route_is_reachable_by_its_own_paths(void **state);
void literal_paths_win_over_parameters(void **state);
void parameters_are_captured_by_name(void **state);
void another_method_on_a_known_path_is_a_mismatch(void **state);
void one_trailing_slash_is_ignored(void **state);
void unknown_paths_match_nothing(void **state);
void permission_table_cells(void **state);
void nobody_may_change_the_audit_log(void **state);
void no_roles_allow_nothing(void **state);
void self_only_adds_and_roles_combine_as_a_union(void **state);
void role_names_round_trip(void **state);
void only_explicit_roles_are_assignable(void **state);
void resources_and_actions_have_names(void **state);

#endif
