# The templates domain (core/domain/templates.c, template_versions.c,
# files.c) without HTTP, on the real storage plugins: SQLite always;
# PostgreSQL too when storage_postgres is built, on the throwaway cluster of
# the `postgres` fixture (tests/plugins/postgres.cmake).
atr_add_test(test_templates_domain
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_templates_domain.c)
target_compile_definitions(test_templates_domain PRIVATE
  ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}")
add_dependencies(test_templates_domain atrium_plugins)
if(TARGET storage_postgres)
  add_test(NAME test_templates_domain_postgres
           COMMAND test_templates_domain postgres ${CMAKE_BINARY_DIR}/postgres)
  set_tests_properties(test_templates_domain_postgres PROPERTIES TIMEOUT 120
    FIXTURES_REQUIRED postgres RESOURCE_LOCK postgres)
endif()
