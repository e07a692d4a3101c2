# cmake -DAGENT=path/to/atrium-agent -DOUT=dir [-DSFTP_SERVER=path
#       [-DNSS_WRAPPER=path]] -P agent_bundle.cmake
#
# Writes the agent bundle (docs/agent.md): OUT/bin/atrium-agent, OUT/lib/
# with every shared library `ldd` lists for it (under the name the binary
# asks for) and the ELF loader, and the launcher OUT/atrium-agent:
#   exec "$dir/lib/<loader>" --library-path "$dir/lib" "$dir/bin/atrium-agent" "$@"
# so the agent runs in any Linux image of the same architecture, even one
# with nothing but a /bin/sh. With SFTP_SERVER (OpenSSH's sftp-server),
# OUT/libexec/sftp-server.bin is that program, its libraries join lib/,
# and OUT/libexec/sftp-server is its launcher: the agent's SSH server runs
# it for the sftp subsystem (and scp) in images that have none. NSS_WRAPPER
# (Debian libnss-wrapper) becomes lib/libnss_wrapper.so, for images with
# no passwd entry for the agent's uid.
if(NOT AGENT OR NOT OUT)
  message(FATAL_ERROR "agent_bundle.cmake: AGENT and OUT are required")
endif()
file(REMOVE_RECURSE ${OUT}/lib.new ${OUT}/libexec.new)
file(MAKE_DIRECTORY ${OUT}/bin ${OUT}/lib.new)
set(loader "")
# Copies what `ldd bin` lists into lib.new; sets loader.
function(bundle_libs bin)
  execute_process(COMMAND ldd ${bin} OUTPUT_VARIABLE ldd_out
                  RESULT_VARIABLE ldd_rc)
  if(NOT ldd_rc EQUAL 0)
    message(FATAL_ERROR "ldd ${bin} failed: ${ldd_out}")
  endif()
  string(REPLACE "\n" ";" ldd_lines "${ldd_out}")
  foreach(line IN LISTS ldd_lines)
    if(line MATCHES "^[ \t]*([^ \t]+) => (/[^ \t]+) \\(")
      # libfoo.so.1 => /usr/lib/.../libfoo.so.1.2.3: copy the file, named as asked
      get_filename_component(real ${CMAKE_MATCH_2} REALPATH)
      file(COPY_FILE ${real} ${OUT}/lib.new/${CMAKE_MATCH_1})
    elseif(line MATCHES "^[ \t]*(/[^ \t]+) \\(")
      # the loader, e.g. /lib64/ld-linux-x86-64.so.2
      get_filename_component(real ${CMAKE_MATCH_1} REALPATH)
      get_filename_component(loader ${CMAKE_MATCH_1} NAME)
      file(COPY_FILE ${real} ${OUT}/lib.new/${loader})
    elseif(line MATCHES "=> not found")
      message(FATAL_ERROR "ldd ${bin}: ${line}")
    endif()
  endforeach()
  if(NOT loader)
    message(FATAL_ERROR "ldd ${bin} named no ELF loader:\n${ldd_out}")
  endif()
  set(loader ${loader} PARENT_SCOPE)
endfunction()

bundle_libs(${AGENT})
if(SFTP_SERVER)
  bundle_libs(${SFTP_SERVER})
  if(NSS_WRAPPER)
    bundle_libs(${NSS_WRAPPER})
    get_filename_component(real ${NSS_WRAPPER} REALPATH)
    file(COPY_FILE ${real} ${OUT}/lib.new/libnss_wrapper.so)
  endif()
  file(MAKE_DIRECTORY ${OUT}/libexec.new)
  file(COPY_FILE ${SFTP_SERVER} ${OUT}/libexec.new/sftp-server.bin)
  # sftp-server refuses to run without a passwd entry for its uid, which
  # an image may lack: then the agent gives it one through nss_wrapper
  # (NSS_WRAPPER_PASSWD), preloaded here for sftp-server alone.
  file(WRITE ${OUT}/libexec.new/sftp-server
"#!/bin/sh
# OpenSSH's sftp-server with the bundle's libraries and loader (docs/agent.md).
case \"$0\" in
*/*) dir=\${0%/*} ;;
*) dir=. ;;
esac
if [ -n \"\${NSS_WRAPPER_PASSWD:-}\" ] && [ -f \"$dir/../lib/libnss_wrapper.so\" ]; then
  exec \"$dir/../lib/${loader}\" --library-path \"$dir/../lib\" --preload \"$dir/../lib/libnss_wrapper.so\" \"$dir/sftp-server.bin\" \"$@\"
fi
exec \"$dir/../lib/${loader}\" --library-path \"$dir/../lib\" \"$dir/sftp-server.bin\" \"$@\"
")
  file(CHMOD ${OUT}/libexec.new/sftp-server PERMISSIONS OWNER_READ OWNER_WRITE
       OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endif()
file(REMOVE_RECURSE ${OUT}/lib ${OUT}/libexec)
file(RENAME ${OUT}/lib.new ${OUT}/lib)
if(SFTP_SERVER)
  file(RENAME ${OUT}/libexec.new ${OUT}/libexec)
endif()
file(COPY_FILE ${AGENT} ${OUT}/bin/atrium-agent)
file(CHMOD ${OUT}/lib/${loader} PERMISSIONS OWNER_READ OWNER_WRITE
     OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
file(WRITE ${OUT}/atrium-agent.new
"#!/bin/sh
# The atrium workspace agent (docs/agent.md): runs bin/atrium-agent with the
# libraries and loader in lib/, so it needs nothing from the image.
case \"$0\" in
*/*) dir=\${0%/*} ;;
*) dir=. ;;
esac
exec \"$dir/lib/${loader}\" --library-path \"$dir/lib\" \"$dir/bin/atrium-agent\" \"$@\"
")
file(CHMOD ${OUT}/atrium-agent.new PERMISSIONS OWNER_READ OWNER_WRITE
     OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
file(RENAME ${OUT}/atrium-agent.new ${OUT}/atrium-agent)
