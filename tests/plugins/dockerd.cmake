# tests/plugins/dockerd.cmake — a throwaway Docker Engine for the test
# suite.
#
# Include it from tests/plugins/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/dockerd.cmake)
#
# The ctest fixture `dockerd` starts Debian docker.io's dockerd as root in
# ${ATRIUM_TEST_DOCKER_DIR} (scripts/dev/dockerd.sh start): its own data
# root, no bridge, no iptables, and the image atrium-test/busybox:1 made
# offline from busybox-static. It stops it (by its PID) when every test
# needing it has run. A test that needs the engine sets
#   FIXTURES_REQUIRED dockerd RESOURCE_LOCK dockerd
# and reads the socket's path from ${ATRIUM_TEST_DOCKER_DIR}/socket; it
# exits 77 (skipped) when that file is missing. When dockerd cannot run
# here (not root, docker.io missing), dockerd_start fails with the reason.
set(ATRIUM_TEST_DOCKER_DIR ${CMAKE_BINARY_DIR}/dockerd CACHE PATH
    "Directory of the test suite's throwaway Docker Engine")
set(ATRIUM_TEST_DOCKER_SCRIPT ${CMAKE_SOURCE_DIR}/scripts/dev/dockerd.sh)

add_test(NAME dockerd_start
         COMMAND bash ${ATRIUM_TEST_DOCKER_SCRIPT} start ${ATRIUM_TEST_DOCKER_DIR})
set_tests_properties(dockerd_start PROPERTIES
  FIXTURES_SETUP dockerd RESOURCE_LOCK dockerd TIMEOUT 120)
add_test(NAME dockerd_stop
         COMMAND bash ${ATRIUM_TEST_DOCKER_SCRIPT} stop ${ATRIUM_TEST_DOCKER_DIR})
set_tests_properties(dockerd_stop PROPERTIES
  FIXTURES_CLEANUP dockerd RESOURCE_LOCK dockerd TIMEOUT 120)
