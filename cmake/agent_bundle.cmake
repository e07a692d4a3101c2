# cmake -DAGENT=path/to/atrium-agent -DOUT=dir -P agent_bundle.cmake
#
# Writes the agent bundle (docs/agent.md): OUT/bin/atrium-agent, OUT/lib/
# with every shared library `ldd` lists for it (under the name the binary
# asks for) and the ELF loader, and the launcher OUT/atrium-agent:
#   exec "$dir/lib/<loader>" --library-path "$dir/lib" "$dir/bin/atrium-agent" "$@"
# so the agent runs in any Linux image of the same architecture, even one
# with nothing but a /bin/sh.
if(NOT AGENT OR NOT OUT)
  message(FATAL_ERROR "agent_bundle.cmake: AGENT and OUT are required")
endif()
execute_process(COMMAND ldd ${AGENT} OUTPUT_VARIABLE ldd_out
                RESULT_VARIABLE ldd_rc)
if(NOT ldd_rc EQUAL 0)
  message(FATAL_ERROR "ldd ${AGENT} failed: ${ldd_out}")
endif()
file(REMOVE_RECURSE ${OUT}/lib.new)
file(MAKE_DIRECTORY ${OUT}/bin ${OUT}/lib.new)
string(REPLACE "\n" ";" ldd_lines "${ldd_out}")
set(loader "")
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
    message(FATAL_ERROR "ldd ${AGENT}: ${line}")
  endif()
endforeach()
if(NOT loader)
  message(FATAL_ERROR "ldd ${AGENT} named no ELF loader:\n${ldd_out}")
endif()
file(REMOVE_RECURSE ${OUT}/lib)
file(RENAME ${OUT}/lib.new ${OUT}/lib)
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
