# The echo example provisioner's agent support (ABI 1.3): its log line, the
# resource that hosts the agent and the agent_env_dir file.
#
# Include it from tests/plugins/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/provisioner_echo.cmake)
if(TARGET provisioner_echo)
  atr_add_test(test_provisioner_echo_agent
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_provisioner_echo_agent.c
            ${CMAKE_CURRENT_LIST_DIR}/prov_harness.c
    LIBRARIES Threads::Threads)
  add_dependencies(test_provisioner_echo_agent provisioner_echo)
  target_compile_definitions(test_provisioner_echo_agent PRIVATE
    ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}")
endif()
