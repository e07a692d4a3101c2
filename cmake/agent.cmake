# The workspace agent's executable and its bundle (docs/agent.md).
# Included from core/CMakeLists.txt after the layers exist.
#
# `atrium-agent` is core/agent + core/base, dynamically linked; the bundle
# ${CMAKE_BINARY_DIR}/agent-bundle holds bin/atrium-agent, every library
# ldd lists plus the ELF loader in lib/, and the launcher `atrium-agent`,
# which runs the binary through the bundled loader so it needs nothing
# from the image it runs in. The server finds it through agent.bundle_dir.
if(NOT EXISTS ${CMAKE_SOURCE_DIR}/core/agent/agent_conn.c)
  return() # the transport has not landed on this branch yet
endif()
add_executable(atrium-agent ${CMAKE_SOURCE_DIR}/core/agent/bin/atrium_agent_main.c)
target_link_libraries(atrium-agent PRIVATE atrium_agent)
set(ATRIUM_AGENT_BUNDLE_DIR ${CMAKE_BINARY_DIR}/agent-bundle)
add_custom_target(agent-bundle ALL
  COMMAND ${CMAKE_COMMAND} -DAGENT=$<TARGET_FILE:atrium-agent>
          -DOUT=${ATRIUM_AGENT_BUNDLE_DIR}
          -P ${CMAKE_SOURCE_DIR}/cmake/agent_bundle.cmake
  DEPENDS atrium-agent ${CMAKE_SOURCE_DIR}/cmake/agent_bundle.cmake
  COMMENT "Bundling atrium-agent with its libraries")
install(DIRECTORY ${ATRIUM_AGENT_BUNDLE_DIR}/
        DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/atrium/agent-bundle
        USE_SOURCE_PERMISSIONS)
