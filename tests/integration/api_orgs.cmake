# Organizations and members through the real server (SQLite, password
# sign-in). Included from tests/integration/CMakeLists.txt; paths are
# relative to this file so it works from any including directory.
atr_add_test(test_api_orgs
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_api_orgs.c
          ${CMAKE_CURRENT_LIST_DIR}/harness.c
          ${CMAKE_CURRENT_LIST_DIR}/http_client.c
  LIBRARIES PkgConfig::LIBCURL
  TIMEOUT 180)
add_dependencies(test_api_orgs atrium atrium_plugins)
target_compile_definitions(test_api_orgs PRIVATE
  ATR_TEST_ATRIUM_BIN="$<TARGET_FILE:atrium>"
  ATR_TEST_FIXTURE_DIR="${CMAKE_CURRENT_BINARY_DIR}/plugins"
  ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}")
