#!/usr/bin/env bash
# The SDK's ABI against the released baseline: compile sdk/abi/abi_probe.c
# (every public type, reachable from one function) with debug info into a
# scratch shared object, describe it with abidw, and compare it with
# sdk/abi/atrium-sdk.abi using abidiff and sdk/abi/atrium-sdk.abignore
# (which allows what a minor version may add). Any other difference fails.
#
# First it checks that the check itself works: a member appended at the end
# of atr_host_t passes, a member removed from atr_prov_resource_t fails.
#
#   abi_check.sh <source dir>            check (the ctest test sdk_abi)
#   abi_check.sh <source dir> --update   rewrite the baseline (docs/sdk.md
#                                        says when that is allowed)
# Environment: CC (default cc). Exits 77 (skipped) without abidw/abidiff
# (Debian: abigail-tools, see scripts/deps.sh).
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 <source dir> [--update]" >&2
  exit 2
fi
src=$(cd "$1" && pwd)
update=${2:-}
cc=${CC:-cc}
baseline=$src/sdk/abi/atrium-sdk.abi
suppr=$src/sdk/abi/atrium-sdk.abignore
if ! command -v abidw >/dev/null || ! command -v abidiff >/dev/null; then
  echo "SKIP: abidw/abidiff not found; install abigail-tools"
  exit 77
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/atrium-abi.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# describe TREE OUT: the ABI of the SDK headers under TREE/sdk/include, as
# abixml in OUT. Paths are relative and locations left out, so that the
# baseline does not change with the checkout's path or a comment's length.
describe() {
  (cd "$1" && "$cc" -g -Og -shared -fPIC -fdebug-prefix-map="$1"=. \
    -Isdk/include sdk/abi/abi_probe.c -o "$2.so") ||
    fail "cannot compile $1/sdk/abi/abi_probe.c"
  abidw --no-corpus-path --no-comp-dir-path --no-show-locs \
    --drop-undefined-syms --out-file "$2" "$2.so" ||
    fail "abidw failed on $2.so"
}

# compare OLD NEW REPORT: abidiff's exit status.
compare() {
  local rc=0
  abidiff --suppressions "$suppr" "$1" "$2" >"$3" 2>&1 || rc=$?
  return $rc
}

if [ "$update" = "--update" ]; then
  describe "$src" "$tmp/current.abi"
  cp "$tmp/current.abi" "$baseline"
  echo "wrote $baseline"
  exit 0
fi
[ -f "$baseline" ] || fail "no baseline $baseline; see docs/sdk.md"

echo "--- the check tells an appended member from a removed one"
mkdir -p "$tmp/tree/sdk"
cp -r "$src/sdk/include" "$src/sdk/abi" "$tmp/tree/sdk/"
describe "$tmp/tree" "$tmp/base.abi"
cp -r "$tmp/tree" "$tmp/grown"
sed -i 's|^} atr_host_t;|  int (*appended_later)(int);\n&|' \
  "$tmp/grown/sdk/include/atrium/host.h"
describe "$tmp/grown" "$tmp/grown.abi"
compare "$tmp/base.abi" "$tmp/grown.abi" "$tmp/grown.txt" ||
  { cat "$tmp/grown.txt"; fail "a function appended to atr_host_t was reported as a change"; }
cp -r "$tmp/tree" "$tmp/shrunk"
sed -i '/^  char \*id; .*provider/d' "$tmp/shrunk/sdk/include/atrium/provisioner.h"
describe "$tmp/shrunk" "$tmp/shrunk.abi"
if compare "$tmp/base.abi" "$tmp/shrunk.abi" "$tmp/shrunk.txt"; then
  fail "removing atr_prov_resource_t.id was not reported"
fi

echo "--- the SDK against $baseline"
rc=0
compare "$baseline" "$tmp/base.abi" "$tmp/report.txt" || rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$tmp/report.txt"
  fail "abidiff exit status $rc: the SDK's ABI changed in a way a minor version may not (docs/sdk.md)"
fi
cat "$tmp/report.txt"
echo "PASS"
