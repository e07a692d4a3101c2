# tests/plugins/observer_prometheus.cmake — the Prometheus observer and the
# operator bundle in packaging/observability.
#
# Include it from tests/plugins/CMakeLists.txt:
#   include(${CMAKE_CURRENT_SOURCE_DIR}/observer_prometheus.cmake)
#
# - test_observer_prometheus: the plugin in-process through the core loader,
#   scraped over loopback (libcurl); runs `promtool check metrics` on a
#   scrape when promtool is installed.
# - prometheus_scrape: the real `atrium server` with the plugin, scraped by a
#   real Prometheus server that the test starts on 127.0.0.1 and stops.
# - observability_bundle: `promtool check rules` and `promtool test rules`
#   on the alert rules, and the dashboard's queries checked by promtool.
# The last two need the Debian package prometheus (promtool and the server)
# and are skipped (exit 77) without it.
if(TARGET observer_prometheus)
  find_package(Threads REQUIRED)
  atr_add_test(test_observer_prometheus
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_observer_prometheus.c
    LIBRARIES PkgConfig::LIBCURL Threads::Threads
    TIMEOUT 120)
  add_dependencies(test_observer_prometheus observer_prometheus)
  if(TARGET provisioner_echo)
    add_dependencies(test_observer_prometheus provisioner_echo)
  endif()
  target_compile_definitions(test_observer_prometheus PRIVATE
    ATR_TEST_PLUGIN_DIR="${ATRIUM_PLUGIN_OUTPUT_DIR}")

  if(TARGET storage_sqlite)
    add_test(NAME prometheus_scrape
      COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/prometheus_scrape.sh
              $<TARGET_FILE:atrium> ${ATRIUM_PLUGIN_OUTPUT_DIR}
              ${CMAKE_SOURCE_DIR})
    set_tests_properties(prometheus_scrape PROPERTIES
      TIMEOUT 120 SKIP_RETURN_CODE 77)
  endif()
endif()

add_test(NAME observability_bundle
  COMMAND bash ${CMAKE_SOURCE_DIR}/packaging/observability/check.sh)
set_tests_properties(observability_bundle PROPERTIES
  TIMEOUT 60 SKIP_RETURN_CODE 77)
