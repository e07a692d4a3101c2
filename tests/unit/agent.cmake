# The workspace agent's unit tests (core/agent): its sources without the
# transport, linked with a test double of agent_conn.h (tests/unit/agent/
# fake_agent_conn.c), so they run without a server. Included from
# tests/unit/CMakeLists.txt.
file(GLOB agent_test_sources CONFIGURE_DEPENDS
     ${CMAKE_SOURCE_DIR}/core/agent/*.c)
list(FILTER agent_test_sources EXCLUDE REGEX "/agent_conn[^/]*\\.c$")
add_library(atrium_agent_nonet STATIC ${agent_test_sources}
            ${CMAKE_CURRENT_LIST_DIR}/agent/fake_agent_conn.c)
target_include_directories(atrium_agent_nonet PUBLIC
  ${CMAKE_SOURCE_DIR}/core/agent ${CMAKE_CURRENT_LIST_DIR}/agent)
target_link_libraries(atrium_agent_nonet PUBLIC atrium_base atrium_http_parser)
foreach(t test_agent_pure test_agent_run test_agent_pty)
  add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/agent/${t}.c)
  target_link_libraries(${t} PRIVATE atrium_agent_nonet PkgConfig::CMOCKA)
  add_test(NAME ${t} COMMAND ${t})
  set_tests_properties(${t} PROPERTIES TIMEOUT 120)
endforeach()
