# tests/plugins/auth_password.cmake — the auth_password plugin's own test.
#
# Include it from tests/plugins/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/auth_password.cmake)
#
# libargon2 is linked into the test too, to make hashes with other
# parameters than the plugin's options (as an older configuration would).
if(TARGET auth_password)
  find_package(Threads REQUIRED)
  pkg_check_modules(ARGON2 REQUIRED IMPORTED_TARGET libargon2)
  atr_add_test(test_auth_password
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_auth_password.c
    LIBRARIES PkgConfig::ARGON2 Threads::Threads
    TIMEOUT 120)
  add_dependencies(test_auth_password auth_password)
  target_compile_definitions(test_auth_password PRIVATE
    ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}")
endif()
