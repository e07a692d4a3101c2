#!/usr/bin/env bash
# Install what is missing, then build and run the whole test suite twice:
# a normal build and an ASan+UBSan build (CMAKE_BUILD_TYPE=Sanitize).
#   ATRIUM_TEST_BUILDS="build"  only the normal build
#   ATRIUM_TEST_REPEAT=3        run each build's suite 3 times in a row;
#                               every run must pass
#   ATRIUM_TEST_STRESS=1        keep `stress-ng --cpu <cores>` running beside
#                               the suites: tests must not race the clock
#                               or a build's speed (docs/testing.md)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
atrium_install_missing $ATRIUM_BUILD_PACKAGES $ATRIUM_TEST_PACKAGES
atrium_build_user

builds=${ATRIUM_TEST_BUILDS:-"build build-sanitize"}
repeat=${ATRIUM_TEST_REPEAT:-1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

stress_pid=
if [ "${ATRIUM_TEST_STRESS:-0}" = 1 ]; then
  atrium_install_missing stress-ng
  stress-ng --cpu "$(atrium_jobs)" --timeout 6h --quiet &
  stress_pid=$!
  trap 'kill "$stress_pid" 2>/dev/null || true; wait "$stress_pid" 2>/dev/null || true' EXIT
  echo "== stress-ng --cpu $(atrium_jobs) running beside the suites (pid $stress_pid) =="
fi

for dir in $builds; do
  type=RelWithDebInfo
  if [ "$dir" = build-sanitize ]; then
    type=Sanitize
  fi
  echo "== $dir ($type) =="
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DATRIUM_BUILD_TESTS=ON
  cmake --build "$dir" -j "$(atrium_jobs)"
  for run in $(seq "$repeat"); do
    [ "$repeat" = 1 ] || echo "== $dir: run $run of $repeat =="
    (cd "$dir" && ctest --output-on-failure -j "$(atrium_jobs)" --timeout 600)
  done
done
