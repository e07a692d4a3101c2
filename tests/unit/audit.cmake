# The audit log (core/domain/audit.c and audit_query.c, core/api/api_audit.c)
# on the real storage plugins: SQLite always; PostgreSQL too when
# storage_postgres is built, on the throwaway cluster of the `postgres`
# fixture (tests/plugins/postgres.cmake; its directory is spelled out
# because tests/plugins is added after this).
# One program: main and the test list in test_audit.c.
atr_add_test(test_audit
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_audit.c
          ${CMAKE_CURRENT_LIST_DIR}/test_audit_reading.c
          ${CMAKE_CURRENT_LIST_DIR}/audit_fixture.c)
target_compile_definitions(test_audit PRIVATE
  ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}")
add_dependencies(test_audit atrium_plugins)
if(TARGET storage_postgres)
  add_test(NAME test_audit_postgres
           COMMAND test_audit postgres ${CMAKE_BINARY_DIR}/postgres)
  set_tests_properties(test_audit_postgres PROPERTIES TIMEOUT 120
    FIXTURES_REQUIRED postgres RESOURCE_LOCK postgres)
endif()
