#!/usr/bin/env bash
# A third party can build a plugin with nothing but the installed SDK, and
# the atrium binary loads and describes it.
#
#   out_of_tree.sh <build dir> <source dir>
#
# Steps: install the build into a scratch prefix; configure, build and install
# examples/plugins/provisioner_echo as its own project, finding the SDK only
# through PKG_CONFIG_PATH=<prefix>/lib/pkgconfig (and no path into the source
# tree's sdk/); install it into <tmp>/plugins; then ask
# `atrium plugins describe` and `atrium plugins list` about the result.
# Environment: CMAKE (default: cmake) and CC may name the tools to use.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <build dir> <source dir>" >&2
  exit 2
fi
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
cmake=${CMAKE:-cmake}
atrium="$build/bin/atrium"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/atrium-sdk-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
step() { echo "--- $*"; }

# Nothing from the caller's environment may configure atrium behind our back.
while IFS= read -r var; do
  unset "$var"
done < <(compgen -e | grep '^ATRIUM_' || true)

step "install $build into $tmp/prefix"
"$cmake" --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log" >&2; fail "cmake --install $build failed"; }

# <prefix>/lib/pkgconfig, or lib/<multiarch>/pkgconfig when the build was
# configured for /usr.
pc=$(find "$tmp/prefix" -name atrium-sdk.pc -path '*/pkgconfig/*' -print -quit)
[ -n "$pc" ] || fail "cmake --install put no atrium-sdk.pc under $tmp/prefix"
pcdir=$(dirname "$pc")
[ -f "$tmp/prefix/include/atrium/plugin.h" ] ||
  fail "no include/atrium/plugin.h in $tmp/prefix"

export PKG_CONFIG_PATH="$pcdir"
cflags=$(pkg-config --cflags atrium-sdk) || fail "pkg-config atrium-sdk failed"
case "$cflags" in
*"$src"*) fail "pkg-config --cflags atrium-sdk points into the source tree: $cflags" ;;
esac

step "configure and build provisioner_echo out of tree"
echo_build="$tmp/echo-build"
cc_args=()
if [ -n "${CC:-}" ]; then cc_args=("-DCMAKE_C_COMPILER=$CC"); fi
"$cmake" -S "$src/examples/plugins/provisioner_echo" -B "$echo_build" \
  "${cc_args[@]}" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_FLAGS="-Wall -Wextra -Werror" \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON \
  -DATRIUM_PLUGIN_DIR="$tmp/plugins" >"$tmp/echo-configure.log" 2>&1 ||
  { cat "$tmp/echo-configure.log" >&2; fail "configuring provisioner_echo out of tree failed"; }
"$cmake" --build "$echo_build" >"$tmp/echo-build.log" 2>&1 ||
  { cat "$tmp/echo-build.log" >&2; fail "building provisioner_echo out of tree failed"; }

# The compile must have used the installed headers, never the tree's sdk/.
cc_json="$echo_build/compile_commands.json"
[ -f "$cc_json" ] || fail "no $cc_json"
grep -q -- "$tmp/prefix/" "$cc_json" ||
  fail "the compile did not use the installed SDK (no include path under $tmp/prefix in $cc_json)"
if grep -q -- "$src/sdk" "$cc_json"; then
  fail "the out-of-tree compile saw the source tree's sdk/: $(grep -- "$src/sdk" "$cc_json")"
fi

"$cmake" --install "$echo_build" >"$tmp/echo-install.log" 2>&1 ||
  { cat "$tmp/echo-install.log" >&2; fail "installing provisioner_echo failed"; }
so="$tmp/plugins/provisioner_echo.so"
[ -f "$so" ] || fail "cmake --install did not put provisioner_echo.so in $tmp/plugins"
nm -D --defined-only "$so" | grep -q ' T atrium_plugin_entry$' ||
  fail "$so does not export atrium_plugin_entry"

[ -x "$atrium" ] || fail "no atrium binary at $atrium"

config="$tmp/atrium.yaml"
cat >"$config" <<'EOF'
# Written by tests/sdk/out_of_tree.sh: only the out-of-tree plugin.
plugins:
  provisioner_echo:
    enabled: true
EOF

step "atrium plugins describe provisioner_echo --json"
rc=0
"$atrium" plugins describe provisioner_echo --json \
  "--plugin_dirs=$tmp/plugins" --config "$config" \
  >"$tmp/describe.json" 2>"$tmp/describe.err" || rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$tmp/describe.err" >&2
  fail "atrium plugins describe provisioner_echo --json exited with $rc"
fi

python3 - "$tmp/describe.json" "$so" <<'EOF' || fail "describe output is wrong (above)"
import json, os, sys

path, so = sys.argv[1], sys.argv[2]
with open(path) as f:
    text = f.read()
try:
    d = json.loads(text)
except ValueError as e:
    sys.exit("not JSON (%s): %r" % (e, text[:400]))

def check(ok, what):
    if not ok:
        sys.exit("%s\nfull output: %s" % (what, json.dumps(d, indent=2)))

check(d.get("name") == "provisioner_echo", "name is %r, expected provisioner_echo" % d.get("name"))
check(d.get("kind") == "provisioner", "kind is %r, expected provisioner" % d.get("kind"))
check(os.path.realpath(str(d.get("file"))) == os.path.realpath(so),
      "file is %r, expected the out-of-tree build %s" % (d.get("file"), so))
opts = {o.get("name"): o for o in d.get("options") or []}
check("greeting" in opts, "no option greeting in %s" % sorted(opts))
check(opts["greeting"].get("default") == "hello",
      "greeting's default is %r, expected \"hello\"" % opts["greeting"].get("default"))
check(opts["greeting"].get("env") == "ATRIUM_PLUGINS_PROVISIONER_ECHO_GREETING",
      "greeting's env is %r" % opts["greeting"].get("env"))
check("token" in opts, "no option token in %s" % sorted(opts))
check(opts["token"].get("secret") is True,
      "token's secret is %r, expected true" % opts["token"].get("secret"))
print("describe: ok (%d options)" % len(opts))
EOF

step "atrium plugins list"
rc=0
"$atrium" plugins list "--plugin_dirs=$tmp/plugins" --config "$config" \
  >"$tmp/list.txt" 2>"$tmp/list.err" || rc=$?
if [ "$rc" -ne 0 ]; then
  cat "$tmp/list.err" >&2
  fail "atrium plugins list exited with $rc"
fi

python3 - "$tmp/list.txt" <<'EOF' || fail "list output is wrong (above)"
import re, sys

lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
if not lines:
    sys.exit("atrium plugins list printed nothing")
# The header names the columns; find KIND and STATE by name, not position.
header = [h.lower() for h in re.split(r"\s{2,}", lines[0].strip())]
rows = [re.split(r"\s{2,}", l.strip()) for l in lines[1:]]
mine = [r for r in rows if r[0] == "provisioner_echo"]
if len(mine) != 1:
    sys.exit("expected one provisioner_echo line, got %d in:\n%s" % (len(mine), "\n".join(lines)))
r = mine[0]
cols = dict(zip(header, r)) if len(header) == len(r) else {}
kind = cols.get("kind")
state = cols.get("state")
if kind is None or state is None:  # no usable header: look at every field
    kind = "provisioner" if "provisioner" in r[1:] else r[1:]
    state = ([f for f in r if f in ("loaded", "running")] or [r[-1]])[0]
if kind != "provisioner":
    sys.exit("provisioner_echo's kind is %r, expected provisioner: %r" % (kind, lines))
if state not in ("loaded", "running"):
    sys.exit("provisioner_echo's state is %r, expected loaded or running:\n%s" % (state, "\n".join(lines)))
print("list: ok (%s)" % state)
EOF

echo "PASS"
