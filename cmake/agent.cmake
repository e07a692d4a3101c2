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
# OpenSSH's sftp-server (Debian openssh-sftp-server) goes into the bundle:
# the agent's SSH server runs it for sftp and scp, and images need not
# have it (docs/agent.md).
find_program(ATRIUM_SFTP_SERVER sftp-server
  PATHS /usr/lib/openssh /usr/libexec/openssh /usr/lib/ssh /usr/libexec
  NO_DEFAULT_PATH)
# nss_wrapper (Debian libnss-wrapper) gives it a passwd entry in images
# that have none for the agent's uid (sftp-server refuses to run without).
find_library(ATRIUM_NSS_WRAPPER nss_wrapper)
set(agent_bundle_sftp "")
if(ATRIUM_SFTP_SERVER)
  set(agent_bundle_sftp -DSFTP_SERVER=${ATRIUM_SFTP_SERVER})
  if(ATRIUM_NSS_WRAPPER)
    list(APPEND agent_bundle_sftp -DNSS_WRAPPER=${ATRIUM_NSS_WRAPPER})
  else()
    message(WARNING "no libnss_wrapper (Debian libnss-wrapper): the bundle's "
                    "sftp-server will not run where the agent's uid has no "
                    "passwd entry")
  endif()
else()
  message(WARNING "no sftp-server (Debian openssh-sftp-server): the agent "
                  "bundle will have none, so sftp and scp need the image's")
endif()
add_custom_target(agent-bundle ALL
  COMMAND ${CMAKE_COMMAND} -DAGENT=$<TARGET_FILE:atrium-agent>
          -DOUT=${ATRIUM_AGENT_BUNDLE_DIR} ${agent_bundle_sftp}
          -P ${CMAKE_SOURCE_DIR}/cmake/agent_bundle.cmake
  DEPENDS atrium-agent ${CMAKE_SOURCE_DIR}/cmake/agent_bundle.cmake
  COMMENT "Bundling atrium-agent with its libraries")
install(DIRECTORY ${ATRIUM_AGENT_BUNDLE_DIR}/
        DESTINATION ${CMAKE_INSTALL_LIBEXECDIR}/atrium/agent-bundle
        USE_SOURCE_PERMISSIONS)
