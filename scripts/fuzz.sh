#!/usr/bin/env bash
# scripts/fuzz.sh TARGET [SECONDS] [libFuzzer flags...] — fuzz one target
# longer than the suite does (docs/fuzzing.md). TARGET is a name from
# tests/fuzz (fuzz_http or http); SECONDS defaults to 600; `list` lists them.
#
# It builds the target if needed (in $ATRIUM_BUILD_DIR, default build/),
# then fuzzes into build/fuzz-corpus/TARGET, a corpus that grows from run
# to run, seeded from tests/fuzz/corpus/TARGET (read only here). A crash,
# leak, timeout or out-of-memory input is written to build/fuzz-artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${ATRIUM_BUILD_DIR:-build}

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
if [ "$1" = list ]; then
  ls tests/fuzz/fuzz_*.c | sed 's|.*/||; s|\.c$||'
  exit 0
fi
target=fuzz_${1#fuzz_}
seconds=${2:-600}
shift $(($# < 2 ? $# : 2))
if [ ! -f "tests/fuzz/$target.c" ]; then
  echo "fuzz.sh: no target $target; scripts/fuzz.sh list" >&2
  exit 2
fi

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -DATRIUM_BUILD_TESTS=ON
fi
cmake --build "$build" --target atrium_fuzz_build
bin="$build/fuzz-build/bin/$target"
if [ ! -x "$bin" ]; then
  echo "fuzz.sh: $bin was not built (is clang installed?)" >&2
  exit 1
fi

corpus="$build/fuzz-corpus/$target"
artifacts="$build/fuzz-artifacts"
mkdir -p "$corpus" "$artifacts"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
echo "fuzz.sh: $target for ${seconds}s into $corpus" >&2
set +e
"$bin" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
  -print_final_stats=1 -artifact_prefix="$artifacts/$target-" "$@" \
  "$corpus" "tests/fuzz/corpus/$target"
rc=$?
set -e
if [ $rc -ne 0 ]; then
  echo "fuzz.sh: $target failed ($rc); the input is in $artifacts/" >&2
  echo "  reproduce: $bin $artifacts/$target-<crash-file>" >&2
  echo "  after the fix, keep it: cp it to tests/fuzz/corpus/$target/" >&2
fi
exit $rc
