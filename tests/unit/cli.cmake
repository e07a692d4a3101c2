# The CLI's command table and the plugin facts it reads (core/cli/
# cli_command.c, core/plugin/plugin_facts.c). Included from
# tests/unit/CMakeLists.txt.
atr_add_test(test_cli_command
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_command.c)
# What `atrium show` and `list` print about workspace agents, against the
# golden file tests/unit/golden/cli_agents.txt (core/cli/cli_agents.c).
atr_add_test(test_cli_agents
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_agents.c)
target_include_directories(test_cli_agents PRIVATE ${CMAKE_SOURCE_DIR}/core/cli)
# `atrium config-ssh`'s managed block and diff, `port-forward --tcp` and
# WORKSPACE refs (core/cli/cli_config_ssh.c, cli_port_forward.c,
# cli_tunnel.c).
atr_add_test(test_cli_connect
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_cli_connect.c)
target_include_directories(test_cli_connect PRIVATE ${CMAKE_SOURCE_DIR}/core/cli)
