# tests/integration/builds.cmake — templates, workspaces and builds end to
# end: the CLI against a real server with the terraform provisioner, on
# SQLite and, on the `postgres` fixture's cluster (tests/plugins/
# postgres.cmake), on PostgreSQL.
#
# Include it from tests/integration/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/builds.cmake)
#
# Needs bash, curl, python3 and /usr/local/bin/terraform; without Terraform
# the tests are skipped (exit 77).
if(TARGET storage_sqlite AND TARGET auth_password
   AND TARGET provisioner_terraform)
  add_test(NAME cli_builds
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test_builds.sh $<TARGET_FILE:atrium>
            ${ATRIUM_PLUGIN_OUTPUT_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(cli_builds PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77)
endif()

# The fixture's directory is fixed (tests/plugins/postgres.cmake), so this
# works although tests/plugins is added after this directory.
if(TARGET storage_postgres AND TARGET auth_password
   AND TARGET provisioner_terraform)
  add_test(NAME cli_builds_postgres
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test_builds.sh $<TARGET_FILE:atrium>
            ${ATRIUM_PLUGIN_OUTPUT_DIR} ${CMAKE_SOURCE_DIR}
            ${CMAKE_BINARY_DIR}/postgres)
  set_tests_properties(cli_builds_postgres PROPERTIES TIMEOUT 600
    SKIP_RETURN_CODE 77 FIXTURES_REQUIRED postgres RESOURCE_LOCK postgres)
endif()
