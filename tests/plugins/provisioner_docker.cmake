# tests/plugins/provisioner_docker.cmake — the provisioner_docker plugin's
# own test, against the real Docker Engine of the `dockerd` fixture: one
# program, its main and test list in test_provisioner_docker.c, the tests
# grouped by concern in test_provisioner_docker_*.c, the shared engine and
# plugin helpers in docker_fixture.c.
#
# Include it from tests/plugins/CMakeLists.txt, after dockerd.cmake:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/provisioner_docker.cmake)
#
# Without the fixture's socket the test exits 77, which ctest reports as
# skipped.
if(TARGET provisioner_docker)
  find_package(Threads REQUIRED)
  atr_add_test(test_provisioner_docker
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_docker.c
            ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_docker_builds.c
            ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_docker_cancel.c
            ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_docker_agent.c
            ${CMAKE_CURRENT_LIST_DIR}/docker_fixture.c
            ${CMAKE_CURRENT_LIST_DIR}/prov_harness.c
    LIBRARIES PkgConfig::LIBCURL Threads::Threads
    TIMEOUT 300)
  add_dependencies(test_provisioner_docker provisioner_docker)
  target_compile_definitions(test_provisioner_docker PRIVATE
    ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}"
    ATR_TEST_DOCKER_DIR="${ATRIUM_TEST_DOCKER_DIR}")
  set_tests_properties(test_provisioner_docker PROPERTIES
    SKIP_RETURN_CODE 77 FIXTURES_REQUIRED dockerd RESOURCE_LOCK dockerd)
endif()
