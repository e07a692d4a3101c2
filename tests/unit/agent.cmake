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
# libssh: the SSH server (agent_ssh*.c); core/'s imported target is not
# visible here.
pkg_check_modules(AGENT_LIBSSH REQUIRED IMPORTED_TARGET libssh)
target_link_libraries(atrium_agent_nonet PUBLIC atrium_base atrium_http_parser
  PkgConfig::AGENT_LIBSSH)
foreach(t test_agent_pure test_agent_run test_agent_pty test_agent_ssh)
  add_executable(${t} ${CMAKE_CURRENT_LIST_DIR}/agent/${t}.c)
  target_link_libraries(${t} PRIVATE atrium_agent_nonet PkgConfig::CMOCKA)
  add_test(NAME ${t} COMMAND ${t})
  set_tests_properties(${t} PROPERTIES TIMEOUT 120)
endforeach()
# Tunnels on the agent's side (core/agent/agent_tunnel.c and the session's
# streams) with the real transport against a fake server in the test:
# checks, 1 MiB through an echo server, refusals, flow control, half-close,
# resets and a lost session.
add_executable(test_agent_tunnel
               ${CMAKE_CURRENT_LIST_DIR}/agent/test_agent_tunnel.c)
target_link_libraries(test_agent_tunnel PRIVATE atrium_agent
                      PkgConfig::CMOCKA)
add_test(NAME test_agent_tunnel COMMAND test_agent_tunnel)
set_tests_properties(test_agent_tunnel PROPERTIES TIMEOUT 120)
