# tests/integration/docker.cmake — the docker provisioner end to end: the
# CLI against a real server with provisioner_docker and the examples/
# templates/docker starter, on the `dockerd` fixture's engine (tests/
# plugins/dockerd.cmake), on SQLite and, with the `postgres` fixture's
# cluster (tests/plugins/postgres.cmake), on PostgreSQL.
#
# Include it from tests/integration/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/docker.cmake)
#
# Needs bash, curl, tar and python3; when the fixture's engine is not there
# the tests are skipped (exit 77).
#
# ATRIUM_TEST_DOCKER_DIR is set by tests/plugins, which is added after this
# directory, so on a first configure it is not defined yet here: the tests
# are added at the end of tests/ instead, when it is.
function(atr_add_docker_e2e_tests)
  if(NOT (TARGET provisioner_docker AND DEFINED CACHE{ATRIUM_TEST_DOCKER_DIR}
          AND TARGET auth_password))
    return()
  endif()
  set(script ${CMAKE_SOURCE_DIR}/tests/integration/test_docker.sh)
  if(TARGET storage_sqlite)
    add_test(NAME docker_e2e
      COMMAND bash ${script} $<TARGET_FILE:atrium> ${ATRIUM_PLUGIN_OUTPUT_DIR}
              ${CMAKE_SOURCE_DIR} ${ATRIUM_TEST_DOCKER_DIR})
    set_tests_properties(docker_e2e PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
      FIXTURES_REQUIRED dockerd RESOURCE_LOCK dockerd)
  endif()
  if(TARGET storage_postgres)
    add_test(NAME docker_e2e_postgres
      COMMAND bash ${script} $<TARGET_FILE:atrium> ${ATRIUM_PLUGIN_OUTPUT_DIR}
              ${CMAKE_SOURCE_DIR} ${ATRIUM_TEST_DOCKER_DIR}
              ${CMAKE_BINARY_DIR}/postgres)
    set_tests_properties(docker_e2e_postgres PROPERTIES TIMEOUT 600
      SKIP_RETURN_CODE 77 FIXTURES_REQUIRED "dockerd;postgres"
      RESOURCE_LOCK "dockerd;postgres")
  endif()
endfunction()
cmake_language(DEFER DIRECTORY ${CMAKE_SOURCE_DIR}/tests
               CALL atr_add_docker_e2e_tests)
