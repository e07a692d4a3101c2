# tests/plugins/postgres.cmake — a throwaway PostgreSQL for the test suite,
# and the storage_postgres plugin's own test.
#
# Include it from tests/plugins/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/postgres.cmake)
#
# The ctest fixture `postgres` starts a cluster in ${ATRIUM_TEST_PG_DIR}
# (scripts/dev/postgres.sh start) and stops it when every test needing it
# has run. A test that needs the database sets
#   FIXTURES_REQUIRED postgres
# and reads the libpq DSN from ${ATRIUM_TEST_PG_DIR}/dsn (unix socket) or
# ${ATRIUM_TEST_PG_DIR}/dsn_tcp (127.0.0.1). ATRIUM_TEST_PG_DIR is set here
# and in the cache, so directories added later (tests/storage) see it.
#
# The cluster needs the PostgreSQL 15 server binaries (Debian:
# postgresql-15); as root, the script runs them as the user postgres.
set(ATRIUM_TEST_PG_DIR ${CMAKE_BINARY_DIR}/postgres)
set(ATRIUM_TEST_PG_DIR ${ATRIUM_TEST_PG_DIR} CACHE INTERNAL
    "Directory of the test suite's throwaway PostgreSQL cluster")
set(ATRIUM_TEST_PG_SCRIPT ${CMAKE_SOURCE_DIR}/scripts/dev/postgres.sh)
# A second cluster that test_storage_postgres stops and starts on purpose.
set(atr_pg_private_dir ${CMAKE_BINARY_DIR}/postgres-outage)

add_test(NAME postgres_start
         COMMAND bash ${ATRIUM_TEST_PG_SCRIPT} start ${ATRIUM_TEST_PG_DIR})
set_tests_properties(postgres_start PROPERTIES
  FIXTURES_SETUP postgres TIMEOUT 120)
add_test(NAME postgres_stop
         COMMAND bash ${ATRIUM_TEST_PG_SCRIPT} stop ${ATRIUM_TEST_PG_DIR})
set_tests_properties(postgres_stop PROPERTIES
  FIXTURES_CLEANUP postgres TIMEOUT 120)
# Stops the private cluster too, should test_storage_postgres die midway.
add_test(NAME postgres_stop_outage
         COMMAND bash ${ATRIUM_TEST_PG_SCRIPT} stop ${atr_pg_private_dir})
set_tests_properties(postgres_stop_outage PROPERTIES
  FIXTURES_CLEANUP postgres TIMEOUT 120)

# One program: main and the test list in test_storage_postgres.c.
if(TARGET storage_postgres)
  pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
  find_package(Threads REQUIRED)
  atr_add_test(test_storage_postgres
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_storage_postgres.c
            ${CMAKE_CURRENT_LIST_DIR}/test_storage_postgres_concurrency.c
            ${CMAKE_CURRENT_LIST_DIR}/postgres_fixture.c
            ${CMAKE_CURRENT_LIST_DIR}/storage_harness.c
    LIBRARIES PkgConfig::LIBPQ Threads::Threads
    TIMEOUT 180)
  add_dependencies(test_storage_postgres storage_postgres)
  target_compile_definitions(test_storage_postgres PRIVATE
    ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}"
    ATR_TEST_PG_DIR="${ATRIUM_TEST_PG_DIR}"
    ATR_TEST_PG_PRIVATE_DIR="${atr_pg_private_dir}"
    ATR_TEST_PG_SCRIPT="${ATRIUM_TEST_PG_SCRIPT}")
  set_tests_properties(test_storage_postgres PROPERTIES
    FIXTURES_REQUIRED postgres)
endif()
