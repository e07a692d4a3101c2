# The CLI's command table and the plugin facts it reads (core/cli/
# cli_command.c, core/plugin/plugin_facts.c). Included from
# tests/unit/CMakeLists.txt.
atr_add_test(test_cli_command
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_command.c)
