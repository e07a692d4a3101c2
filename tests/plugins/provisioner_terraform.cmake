# tests/plugins/provisioner_terraform.cmake — the provisioner_terraform
# plugin's own test, with the real terraform binary: one program, its main
# and test list in test_provisioner_terraform.c, the tests grouped by
# concern in test_provisioner_terraform_*.c, the shared helpers in
# terraform_fixture.c.
#
# Include it from tests/plugins/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/provisioner_terraform.cmake)
#
# Without a terraform at ATRIUM_TEST_TERRAFORM the test exits 77, which
# ctest reports as skipped.
if(TARGET provisioner_terraform)
  find_package(Threads REQUIRED)
  set(ATRIUM_TEST_TERRAFORM /usr/local/bin/terraform CACHE FILEPATH
      "The terraform binary test_provisioner_terraform runs")
  atr_add_test(test_provisioner_terraform
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_terraform.c
            ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_terraform_vars.c
            ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_terraform_cancel.c
            ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_terraform_agent.c
            ${CMAKE_CURRENT_LIST_DIR}/terraform_fixture.c
            ${CMAKE_CURRENT_LIST_DIR}/prov_harness.c
    LIBRARIES Threads::Threads
    TIMEOUT 300)
  add_dependencies(test_provisioner_terraform provisioner_terraform)
  target_compile_definitions(test_provisioner_terraform PRIVATE
    ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}"
    ATR_TEST_TERRAFORM="${ATRIUM_TEST_TERRAFORM}")
  set_tests_properties(test_provisioner_terraform PROPERTIES
    SKIP_RETURN_CODE 77)
endif()
