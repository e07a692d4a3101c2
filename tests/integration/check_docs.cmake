# Regenerates the configuration reference and fails when the committed one
# differs. Fix: cmake --build <build> --target docs
execute_process(
  COMMAND ${ATRIUM} docs config --plugin-dir ${PLUGIN_DIR} --output ${OUT}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "atrium docs config failed (${rc})")
endif()
file(READ ${OUT} generated)
file(READ ${DOC} committed)
if(NOT generated STREQUAL committed)
  message(FATAL_ERROR
    "docs/configuration.md is out of date with the option tables; "
    "run `cmake --build <build dir> --target docs` and commit the result")
endif()
message(STATUS "docs/configuration.md is up to date")
