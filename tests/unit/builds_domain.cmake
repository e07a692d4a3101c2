# Builds through the domain, without HTTP (core/domain/builds*.c,
# workspaces.c): SQLite always; PostgreSQL too when storage_postgres is
# built, on the throwaway cluster of the `postgres` fixture.
atr_add_test(test_builds_domain
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_builds_domain.c)
target_compile_definitions(test_builds_domain PRIVATE
  ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}")
add_dependencies(test_builds_domain atrium_plugins)
if(TARGET storage_postgres)
  add_test(NAME test_builds_domain_postgres
           COMMAND test_builds_domain postgres ${CMAKE_BINARY_DIR}/postgres)
  set_tests_properties(test_builds_domain_postgres PROPERTIES TIMEOUT 120
    FIXTURES_REQUIRED postgres RESOURCE_LOCK postgres)
endif()
