#!/bin/sh
# tests/connect/setup.sh — the npm packages the connect tests drive, once per
# build tree: code-server (a real app: VS Code in the browser, over
# websockets) and playwright-core (drives Debian's /usr/bin/chromium; it
# downloads no browser of its own). The ctest fixture `connect_npm` runs
# this; the tests read code-server and node_modules from DIR.
#
#   setup.sh DIR
#
# Installs into DIR (node_modules/, bin/code-server) unless DIR/stamp says
# the same versions are there already; a failed install leaves no stamp, so
# the next run tries again. Needs Node.js 20 and npm (scripts/deps.sh), and
# libkrb5-dev for code-server's `kerberos` native module.
#
# Offline pieces, and how they are made to work with only the npm registry:
# - native modules (node-gyp) would download Node's headers: npm_config_nodedir
#   points them at the installed ones (/usr/include/node);
# - code-server's postinstall refuses to run as root unless unsafe_perm;
# - node-pty's postinstall runs `npx node-gyp`, which asks before fetching
#   node-gyp from the registry unless npm_config_yes;
# - @vscode/ripgrep's postinstall downloads a ripgrep build from GitHub,
#   unless its cache under $TMPDIR already holds the release archive: we put
#   Debian's /usr/bin/rg (package ripgrep) there under that name.
set -eu

CODE_SERVER_VERSION=4.100.3 # the last release that runs on Node.js 20
PLAYWRIGHT_VERSION=1.65.2
# What code-server 4.100.3's VS Code pins (lib/vscode/node_modules/@vscode/
# ripgrep: package.json "version" and lib/postinstall.js VERSION).
RIPGREP_PKG=1.15.11
RIPGREP_RELEASE=v13.0.0-10

dir=${1:?usage: setup.sh DIR}
want="code-server@$CODE_SERVER_VERSION playwright-core@$PLAYWRIGHT_VERSION"
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$want" ] &&
  [ -x "$dir/bin/code-server" ]; then
  echo "connect: $want already in $dir"
  exit 0
fi

fail() {
  echo "connect setup FAILED: $*" >&2
  echo "(the connect tests need these; scripts/test.sh installs the Debian" \
    "packages: see ATRIUM_TEST_PACKAGES in scripts/deps.sh)" >&2
  exit 1
}

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null) ||
  fail "node is missing (Debian package nodejs)"
[ "$node_major" = 20 ] ||
  fail "code-server $CODE_SERVER_VERSION needs Node.js 20, this is $(node --version)"
command -v npm >/dev/null || fail "npm is missing (Debian package npm)"
[ -x /usr/bin/rg ] || fail "/usr/bin/rg is missing (Debian package ripgrep)"
[ -f /usr/include/node/node.h ] || [ -f /usr/include/nodejs/src/node.h ] ||
  fail "Node.js headers are missing (/usr/include/node)"
nodedir=/usr
[ -f /usr/include/node/node.h ] || nodedir=/usr/include/nodejs
pkg-config --exists krb5-gssapi 2>/dev/null ||
  fail "libkrb5-dev is missing (code-server's kerberos module)"

rm -f "$dir/stamp"
tmp="$dir/tmp"
rm -rf "$tmp"
mkdir -p "$tmp/vscode-ripgrep-cache-$RIPGREP_PKG" "$tmp/rg"
cp /usr/bin/rg "$tmp/rg/rg"
tar -czf "$tmp/vscode-ripgrep-cache-$RIPGREP_PKG/ripgrep-$RIPGREP_RELEASE-x86_64-unknown-linux-musl.tar.gz" \
  -C "$tmp/rg" rg

start=$(date +%s)
echo "connect: npm install $want into $dir (takes a few minutes once)"
if ! (cd "$dir" && TMPDIR="$tmp" npm_config_nodedir=$nodedir \
  npm_config_unsafe_perm=true npm_config_update_notifier=false npm_config_yes=true \
  npm install --no-audit --no-fund --no-save --loglevel=warn \
  --prefix "$dir" $want >"$dir/npm-install.log" 2>&1); then
  tail -40 "$dir/npm-install.log" >&2
  fail "npm install $want (the whole log: $dir/npm-install.log)"
fi
mkdir -p "$dir/bin"
ln -sf ../node_modules/code-server/out/node/entry.js "$dir/bin/code-server"
chmod +x "$dir/node_modules/code-server/out/node/entry.js"
"$dir/bin/code-server" --version >/dev/null 2>&1 ||
  fail "the installed code-server does not run: $dir/bin/code-server --version"
rm -rf "$tmp"
echo "$want" >"$dir/stamp"
echo "connect: installed in $(($(date +%s) - start)) s"
