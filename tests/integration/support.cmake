# tests/integration/support.cmake — `atrium support bundle` against a real
# server with the echo provisioner: the files of the bundle, partial
# bundles, and a canary planted in every secret-bearing place that must
# not reach any file of it. On SQLite, and on the `postgres` fixture's
# cluster (tests/plugins/postgres.cmake), where the DSN carries a canary
# password too.
#
# Include it from tests/integration/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/support.cmake)
#
# Needs bash, curl, tar, python3 (and psql for PostgreSQL).
if(TARGET storage_sqlite AND TARGET auth_password AND TARGET provisioner_echo)
  add_test(NAME support_bundle
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test_support_bundle.sh
            $<TARGET_FILE:atrium> ${ATRIUM_PLUGIN_OUTPUT_DIR})
  set_tests_properties(support_bundle PROPERTIES TIMEOUT 180)
endif()

# The fixture's directory is fixed, so this works although tests/plugins is
# added after this directory.
if(TARGET storage_postgres AND TARGET auth_password
   AND TARGET provisioner_echo)
  add_test(NAME support_bundle_postgres
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test_support_bundle.sh
            $<TARGET_FILE:atrium> ${ATRIUM_PLUGIN_OUTPUT_DIR}
            ${CMAKE_BINARY_DIR}/postgres)
  set_tests_properties(support_bundle_postgres PROPERTIES TIMEOUT 180
    FIXTURES_REQUIRED postgres RESOURCE_LOCK postgres)
endif()
