#!/usr/bin/env bash
# Install what is missing, then build and run the whole test suite twice:
# a normal build and an ASan+UBSan build (CMAKE_BUILD_TYPE=Sanitize).
# ATRIUM_TEST_BUILDS="build" limits it to the normal build.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
atrium_install_missing $ATRIUM_BUILD_PACKAGES $ATRIUM_TEST_PACKAGES
atrium_build_user

builds=${ATRIUM_TEST_BUILDS:-"build build-sanitize"}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
for dir in $builds; do
  type=RelWithDebInfo
  if [ "$dir" = build-sanitize ]; then
    type=Sanitize
  fi
  echo "== $dir ($type) =="
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE="$type" -DATRIUM_BUILD_TESTS=ON
  cmake --build "$dir" -j "$(atrium_jobs)"
  (cd "$dir" && ctest --output-on-failure -j "$(atrium_jobs)" --timeout 600)
done
