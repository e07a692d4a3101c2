# The health report's access URL (core/app.c). Included from
# tests/unit/CMakeLists.txt.
atr_add_test(test_debug_access_url
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_debug_access_url.c)
