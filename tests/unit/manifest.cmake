# Template manifests (core/manifest.c): template.yaml parsing, every error
# with its field path and position, and parameter value checks.
atr_add_test(test_manifest SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_manifest.c
  ${CMAKE_CURRENT_LIST_DIR}/manifest_errors.c)
# template.yaml `agent:` (core/domain/manifest_agent.c): the agent spec JSON
# and every mistake with its field path and position.
atr_add_test(test_manifest_agent
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_manifest_agent.c
  ${CMAKE_CURRENT_LIST_DIR}/manifest_errors.c)
