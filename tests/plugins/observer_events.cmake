# tests/plugins/observer_events.cmake — observers receive the core's events:
# a fixture observer (fixture_observer_record.c) loaded into a real server
# records an audit entry, a build's end and a job's completion of a build
# made with the echo provisioner.
if(TARGET storage_sqlite AND TARGET auth_password AND TARGET provisioner_echo)
  add_library(observer_record MODULE
              ${CMAKE_CURRENT_LIST_DIR}/fixture_observer_record.c)
  set_target_properties(observer_record PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fixtures)
  target_link_libraries(observer_record PRIVATE atrium::sdk Threads::Threads)
  add_test(NAME plugin_observer_events
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/observer_events.sh
            $<TARGET_FILE:atrium> ${ATRIUM_PLUGIN_OUTPUT_DIR}
            $<TARGET_FILE:observer_record>)
  set_tests_properties(plugin_observer_events PROPERTIES TIMEOUT 120
    LABELS "plugins")
endif()
