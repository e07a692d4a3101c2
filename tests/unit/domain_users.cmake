# The people domain (core/domain/users*, keys, orgs*) called without HTTP:
# permission checks, rules and audit entries on real SQLite and password
# plugins. Included from tests/unit/CMakeLists.txt.
atr_add_test(test_domain_users
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_domain_users.c)
target_compile_definitions(test_domain_users PRIVATE
  ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}")
add_dependencies(test_domain_users atrium_plugins)
