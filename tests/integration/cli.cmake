# tests/integration/cli.cmake — the client commands (login, logout, whoami,
# users, tokens) against a real server on SQLite with password sign-in.
#
# Include it from tests/integration/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/cli.cmake)
#
# Needs bash and python3 (the server's port, JSON, a pseudo-terminal).
if(TARGET storage_sqlite AND TARGET auth_password)
  add_test(NAME cli_client
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/test_cli.sh $<TARGET_FILE:atrium>
            ${ATRIUM_PLUGIN_OUTPUT_DIR})
  set_tests_properties(cli_client PROPERTIES TIMEOUT 120)
endif()
# `atrium ssh --stdio`, `port-forward` and `config-ssh` against a fake
# server that answers the tunnel upgrade with 101 and echoes
# (docs/design/connect.md §2): 1 MB each way, half-close, the server's
# message on a refusal, OpenSSH reading the managed block.
# fixture_sshd: a tiny libssh server standing in for the agent's, so
# `atrium ssh` (and OpenSSH through config-ssh) are tested without it.
pkg_check_modules(FIXTURE_LIBSSH REQUIRED IMPORTED_TARGET libssh)
add_executable(fixture_sshd ${CMAKE_CURRENT_LIST_DIR}/fixture_sshd.c)
target_link_libraries(fixture_sshd PRIVATE PkgConfig::FIXTURE_LIBSSH)
add_test(NAME cli_connect
  COMMAND python3 ${CMAKE_CURRENT_LIST_DIR}/cli_connect.py
          $<TARGET_FILE:atrium> $<TARGET_FILE:fixture_sshd>)
set_tests_properties(cli_connect PROPERTIES TIMEOUT 120)
