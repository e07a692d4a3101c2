# Template manifests (core/manifest.c): template.yaml parsing, every error
# with its field path and position, and parameter value checks.
atr_add_test(test_manifest SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_manifest.c)
