# atrium_add_plugin(<kind>_<name> SOURCES ...)
# One in-tree plugin: a MODULE library named <kind>_<name>.so in the plugin
# directory, built only when ATRIUM_PLUGIN_<KIND>_<NAME> is ON.
add_custom_target(atrium_plugins)

function(atrium_add_plugin name)
  cmake_parse_arguments(P "" "DEFAULT" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT DEFINED P_DEFAULT)
    set(P_DEFAULT ON)
  endif()
  string(TOUPPER "ATRIUM_PLUGIN_${name}" opt)
  option(${opt} "Build the ${name} plugin" ${P_DEFAULT})
  if(NOT ${opt})
    return()
  endif()
  add_library(${name} MODULE ${P_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${ATRIUM_PLUGIN_OUTPUT_DIR})
  target_link_libraries(${name} PRIVATE atrium::sdk ${P_LIBRARIES})
  install(TARGETS ${name} LIBRARY DESTINATION ${ATRIUM_PLUGIN_INSTALL_DIR})
  add_dependencies(atrium_plugins ${name})
endfunction()
