#!/usr/bin/env bash
# A plugin written in C++ loads: every SDK header compiles as C++ (C++11,
# pedantic), the example provisioner_echo builds as C++20 into a shared
# object that exports the unmangled atrium_plugin_entry, and
# `atrium plugins describe` / `plugins list` load it through the loader.
#
#   cxx_plugin.sh <atrium binary> <source dir>
# Environment: CXX names the C++ compiler (default: g++, else clang++).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <atrium binary> <source dir>" >&2
  exit 2
fi
atrium=$1
src=$(cd "$2" && pwd)
cxx=${CXX:-}
if [ -z "$cxx" ]; then
  cxx=$(command -v g++ || command -v clang++ || true)
fi
if [ -z "$cxx" ]; then
  echo "SKIP: no C++ compiler (g++ or clang++)"
  exit 77
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atrium-cxx-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^ATRIUM_' || true)

step "every SDK header as C++11 with $cxx"
{
  for h in "$src"/sdk/include/atrium/*.h; do
    echo "#include <atrium/$(basename "$h")>"
  done
  # The inline helpers and macros a plugin uses, instantiated.
  cat <<'CXX'
int use(const atr_host_t *host, const atr_param_value_t *p,
        const atr_metric_sample_t *s) {
  char *copy = atr_mem_strdup(host, "x");
  atr_mem_free(host, copy);
  return (atr_param_at(p, 0) != 0) + (atr_metric_sample_at(s, 0) != 0) +
         (ATR_HOST_HAS(host, mem_alloc) ? 1 : 0) + (int)sizeof(atr_strerror(0));
}
CXX
} >"$tmp/headers.cc"
"$cxx" -std=c++11 -pedantic -Wall -Wextra -Werror -fsyntax-only \
  -I"$src/sdk/include" "$tmp/headers.cc" ||
  fail "the SDK headers do not compile as C++11"

step "provisioner_echo as C++20"
mkdir -p "$tmp/plugins"
chmod 0755 "$tmp/plugins"
so="$tmp/plugins/provisioner_echo.so"
# -Wno-missing-field-initializers: C++ warns about designated initializers
# that leave members out, which C (and the SDK's style) relies on.
"$cxx" -std=c++20 -x c++ -Wall -Wextra -Wno-missing-field-initializers \
  -Werror -fPIC -shared -fvisibility=hidden -I"$src/sdk/include" \
  "$src/examples/plugins/provisioner_echo/echo.c" -o "$so" -pthread ||
  fail "provisioner_echo does not build as C++"
nm -D --defined-only "$so" | grep -q ' T atrium_plugin_entry$' ||
  fail "$so exports no unmangled atrium_plugin_entry: $(nm -D --defined-only "$so" | grep -i entry)"

cat >"$tmp/atrium.yaml" <<'EOF2'
plugins:
  provisioner_echo:
    enabled: true
EOF2

step "atrium plugins describe provisioner_echo --json"
"$atrium" plugins describe provisioner_echo --json \
  "--plugin_dirs=$tmp/plugins" --config "$tmp/atrium.yaml" \
  >"$tmp/describe.json" 2>"$tmp/describe.err" ||
  { cat "$tmp/describe.err" >&2; fail "describe of the C++ build failed"; }
python3 - "$tmp/describe.json" "$so" <<'PY' || fail "describe output is wrong (above)"
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d.get("name") == "provisioner_echo", d
assert d.get("kind") == "provisioner", d
assert os.path.realpath(d.get("file")) == os.path.realpath(sys.argv[2]), d
names = [o.get("name") for o in d.get("options") or []]
assert names == ["greeting", "delay", "log_parameters", "mode", "token",
                 "hold_file", "hold_timeout", "agent_env_dir"], names
print("describe: ok")
PY

step "atrium plugins list"
"$atrium" plugins list "--plugin_dirs=$tmp/plugins" --config "$tmp/atrium.yaml" \
  >"$tmp/list.txt" 2>"$tmp/list.err" ||
  { cat "$tmp/list.err" >&2; fail "plugins list failed"; }
grep -Eq '^provisioner_echo +provisioner .*(loaded|running)' "$tmp/list.txt" ||
  fail "plugins list does not show the C++ build loaded: $(cat "$tmp/list.txt")"
echo "PASS"
