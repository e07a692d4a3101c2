# One bounded fuzzing run for ctest (tests/fuzz/CMakeLists.txt):
#   cmake -DFUZZER=<binary> -DCORPUS=<dir> -DWORK=<dir> -DSECONDS=<n>
#         -P run_fuzzer.cmake
# libFuzzer adds what it finds to its first corpus directory, so it runs on
# a fresh copy in WORK and the repository's corpus stays as committed. A
# crash, a leak, a timeout or running out of memory fails the test and
# leaves the input in WORK (crash-*, leak-*, timeout-*, oom-*).
foreach(v FUZZER CORPUS WORK SECONDS)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "run_fuzzer.cmake: -D${v}= is missing")
  endif()
endforeach()
if(NOT EXISTS ${FUZZER})
  message(FATAL_ERROR "${FUZZER} is missing: build the project first")
endif()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus)
if(EXISTS ${CORPUS})
  file(GLOB seeds ${CORPUS}/*)
  if(seeds)
    file(COPY ${seeds} DESTINATION ${WORK}/corpus)
  endif()
endif()
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -rss_limit_mb=2048
          -timeout=30 -print_final_stats=1 -artifact_prefix=${WORK}/
          ${WORK}/corpus
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  file(GLOB found ${WORK}/crash-* ${WORK}/leak-* ${WORK}/timeout-*
       ${WORK}/oom-* ${WORK}/slow-unit-*)
  message(FATAL_ERROR "${FUZZER} failed (${rc}); inputs: ${found}\n"
                      "Reproduce with: ${FUZZER} <input>")
endif()
