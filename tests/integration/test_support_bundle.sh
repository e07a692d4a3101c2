#!/usr/bin/env bash
# `atrium support bundle` against a real server with the echo provisioner:
# the files an owner's bundle holds (with and without a workspace), that a
# partial bundle says why in NAME.error.txt, and that no secret reaches any
# file of it. A canary ("Zebra-Canary-...") is planted in every place that
# holds a secret: the owner's and a member's password, the echo
# provisioner's secret option `token`, the storage_postgres DSN's password
# (on PostgreSQL), and two values of a sensitive template parameter (the
# echo provisioner writes every parameter into the build logs, masking the
# sensitive one). The session token the CLI uses and an API token are
# checked too. The bundle is extracted and every file grepped.
#   test_support_bundle.sh ATRIUM_BIN PLUGIN_DIR [PGDIR]
# With PGDIR (scripts/dev/postgres.sh's directory) it runs on PostgreSQL,
# on an emptied public schema, instead of SQLite.
set -euo pipefail
export ATRIUM_LOG_FORMAT=text
atrium=$1 plugins=$2 pgdir=${3:-}
tmp=$(mktemp -d /tmp/atrium-bundle-XXXXXX)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- stdout:"; cat "$tmp/out" 2>/dev/null || true
  echo "--- stderr:"; cat "$tmp/err" 2>/dev/null || true
  echo "--- server log (last lines):"; tail -n 30 "$tmp/server.log" 2>/dev/null || true
  exit 1
}

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
unset ATRIUM_URL ATRIUM_SESSION_TOKEN XDG_CONFIG_HOME
export ATRIUM_CONFIG_DIR=$tmp/config/owner
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port

CANARY=Zebra-Canary
r=$RANDOM$RANDOM
owner_pw="$CANARY-first-pw-$r"
member_pw="$CANARY-second-pw-$r"
echo_token="$CANARY-echo-token-$r"
dsn_pw="$CANARY-dsn-pw-$r"
param1="$CANARY-param-one-$r"
param2="$CANARY-param-two-$r"
region="visible-region-$r"

if [ -n "$pgdir" ]; then
  dsn=$(cat "$pgdir/dsn")
  psql -q -v ON_ERROR_STOP=1 "$dsn" \
    -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public" >/dev/null
  # trust authentication ignores the password; the server must not show it
  storage="  storage_postgres:
    enabled: true
    dsn: \"$dsn password=$dsn_pw\""
else
  storage="  storage_sqlite:
    enabled: true"
fi
cat >"$tmp/atrium.yaml" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins]
log:
  level: debug
provisioner:
  daemons: 2
  heartbeat_interval: 500ms
plugins:
$storage
  auth_password:
    enabled: true
    memory_cost: 8MiB
    time_cost: 1
  provisioner_echo:
    enabled: true
    token: $echo_token
YAML

"$atrium" server --config "$tmp/atrium.yaml" --http.address="127.0.0.1:$port" \
  >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 150); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited"
  sleep 0.1
done
curl -fsS "$url/healthz" >/dev/null 2>&1 || fail "the server did not start"

# run ARGS...: stdin from $input; stdout, stderr and the exit status into
# $tmp/out, $tmp/err and $rc; everything shown is kept in $tmp/shown.
run() {
  set +e
  printf '%s' "${input:-}" | "$atrium" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  cat "$tmp/out" "$tmp/err" >>"$tmp/shown"
}
expect_rc() { [ "$rc" = "$1" ] || fail "$2: exit status $rc, wanted $1"; }
has() { grep -qF -- "$2" "$1" || fail "$1 lacks \"$2\""; }
# extract TARBALL DIR
extract() { rm -rf "$2"; mkdir -p "$2"; tar -xzf "$1" -C "$2" || fail "cannot extract $1"; }
# no_secrets DIR WHAT: no canary, session token or API token in any file
no_secrets() {
  local hits
  hits=$(grep -rlF -- "$CANARY" "$1" || true)
  [ -z "$hits" ] || { grep -rnF -- "$CANARY" "$1" | head -n 5; fail "$2: a canary is in $hits"; }
  for secret in "$token" "${token#*-}" "$api_token" "${api_token#*-}"; do
    hits=$(grep -rlF -- "$secret" "$1" || true)
    [ -z "$hits" ] || fail "$2: a session or API token is in $hits"
  done
}

# ---- the owner, a member, a template, a workspace with three builds ---------
input="$owner_pw
" run login "$url" --first-user --username ops --email ops@example.com --password-stdin
expect_rc 0 "first user"
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_token"])' \
  "$ATRIUM_CONFIG_DIR/session.json")
[ -n "$token" ] || fail "no session token stored"
input="" run tokens create --name bundle-test
expect_rc 0 "tokens create"
api_token=$(grep -oE '[A-Za-z0-9]{10}-[A-Za-z0-9]{22}' "$tmp/out" | head -n 1)
[ -n "$api_token" ] || fail "no API token printed"
input="$member_pw
" run users create --email alice@example.com --username alice --password-stdin
expect_rc 0 "users create"

mkdir -p "$tmp/template"
cat >"$tmp/template/template.yaml" <<YAML
name: dev
provisioner: echo
parameters:
  - name: region
    type: string
    default: $region
  - name: secret
    type: string
    default: ""
    sensitive: true
    mutable: true
YAML
echo "echo files" >"$tmp/template/main.txt"
input="" run templates push "$tmp/template" --name dev -y
expect_rc 0 "templates push"
input="" run create box --template dev -y --parameter "secret=$param1"
expect_rc 0 "create box"
input="" run stop box
expect_rc 0 "stop box"
input="" run start box --parameter "secret=$param2"
expect_rc 0 "start box"

# ---- the owner's bundle of the workspace, default file name -------------------
mkdir -p "$tmp/cwd"
cd "$tmp/cwd"
input="" run support bundle box
cd - >/dev/null
expect_rc 0 "support bundle box"
name=$(cat "$tmp/out")
[[ $name =~ ^atrium-support-[0-9]{8}T[0-9]{6}Z\.tar\.gz$ ]] || fail "default name: $name"
[ -f "$tmp/cwd/$name" ] || fail "the bundle $name was not written"
[ "$(stat -c %a "$tmp/cwd/$name")" = 600 ] || fail "the bundle is not mode 0600"
[ ! -s "$tmp/err" ] || fail "a complete bundle printed to stderr"
x=$tmp/x
extract "$tmp/cwd/$name" "$x"
for f in buildinfo.json config.json health.json plugins.json logs.txt metrics.json \
  workspace.json template_version.json template_version_rich_parameters.json \
  builds/1/build.json builds/1/parameters.json builds/1/logs.txt \
  builds/2/build.json builds/2/logs.txt builds/3/build.json builds/3/logs.txt; do
  [ -s "$x/$f" ] || fail "the bundle lacks $f: $(cd "$x" && find . -type f | sort | tr '\n' ' ')"
done
errors=$(cd "$x" && find . -name '*.error.txt')
[ -z "$errors" ] || fail "a complete bundle has error files: $errors $(cat "$x"/*.error.txt)"
# what the files say
python3 - "$x" <<'PY' || fail "the JSON files of the bundle"
import json, sys, os
x = sys.argv[1]
j = lambda f: json.load(open(os.path.join(x, f)))
assert j("buildinfo.json")["server"]["version"] == j("buildinfo.json")["cli"]["version"]
cfg = j("config.json")
assert cfg["plugins"]["provisioner_echo"]["options"]["token"]["value"] == "(redacted)"
if "storage_postgres" in cfg["plugins"]:
    assert cfg["plugins"]["storage_postgres"]["options"]["dsn"]["value"] == "(redacted)"
h = j("health.json")
assert [c["name"] for c in h["checks"]][0] == "database", h
assert h["status"] in ("healthy", "degraded", "unhealthy")
assert [p["name"] for p in j("plugins.json")["plugins"]][-1] == "provisioner_echo"
assert any(m["name"] == "atrium_build_info" for m in j("metrics.json")["metrics"])
assert j("workspace.json")["name"] == "box"
assert j("builds/3/build.json")["build_number"] == 3
assert j("builds/3/build.json")["transition"] == "start"
params = {p["name"]: p["value"] for p in j("builds/3/parameters.json")}
assert params["secret"] == "********", params
assert j("template_version.json")["id"] == j("workspace.json")["latest_build"]["template_version_id"]
assert any(p["name"] == "secret" and p["sensitive"] for p in j("template_version_rich_parameters.json"))
PY
has "$x/logs.txt" "[http] GET /api/v2/debug/config 200"
has "$x/builds/1/logs.txt" "echo: parameter region = $region"
has "$x/builds/1/logs.txt" "echo: parameter secret = (sensitive)"
has "$x/builds/3/logs.txt" "echo: parameter secret = (sensitive)"
no_secrets "$x" "the owner's bundle of box"

# ---- -o FILE, without a workspace ---------------------------------------------
input="" run support bundle -o "$tmp/named.tar.gz"
expect_rc 0 "support bundle -o"
[ "$(cat "$tmp/out")" = "$tmp/named.tar.gz" ] || fail "-o: the path printed"
extract "$tmp/named.tar.gz" "$tmp/named"
[ "$(cd "$tmp/named" && find . -type f | sort | tr '\n' ' ')" = \
  "./buildinfo.json ./config.json ./health.json ./logs.txt ./metrics.json ./plugins.json " ] ||
  fail "without a workspace: $(cd "$tmp/named" && find . -type f | sort | tr '\n' ' ')"
no_secrets "$tmp/named" "the owner's bundle"

# ---- partial bundles ----------------------------------------------------------
input="" run support bundle nobody/none -o "$tmp/unknown.tar.gz"
expect_rc 0 "an unknown workspace"
grep -q "1 of .* files could not be fetched" "$tmp/err" || fail "an unknown workspace: stderr"
extract "$tmp/unknown.tar.gz" "$tmp/unknown"
has "$tmp/unknown/workspace.error.txt" "answered 404"
[ ! -e "$tmp/unknown/workspace.json" ] || fail "workspace.json beside its error"

# a member: the debug routes are the owners'; their own workspace is theirs
export ATRIUM_CONFIG_DIR=$tmp/config/member
input="$member_pw
" run login "$url" --email alice@example.com --password-stdin
expect_rc 0 "member login"
member_token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_token"])' \
  "$ATRIUM_CONFIG_DIR/session.json")
input="" run create mine --template dev -y --parameter "secret=$param1"
expect_rc 0 "member create"
input="" run support bundle mine -o "$tmp/member.tar.gz"
expect_rc 0 "a member's bundle"
grep -q "5 of .* files could not be fetched" "$tmp/err" || fail "a member's bundle: stderr"
extract "$tmp/member.tar.gz" "$tmp/member"
for f in config health plugins logs metrics; do
  has "$tmp/member/$f.error.txt" "answered 403: Forbidden. Your roles do not allow read on deployment_config."
  [ ! -e "$tmp/member/$f.json" ] || fail "a member's bundle has $f.json"
done
[ -s "$tmp/member/buildinfo.json" ] || fail "a member's bundle lacks buildinfo.json"
[ -s "$tmp/member/builds/1/logs.txt" ] || fail "a member's bundle lacks their build's logs"
no_secrets "$tmp/member" "a member's bundle"
for secret in "$member_token" "${member_token#*-}"; do
  ! grep -rqF -- "$secret" "$tmp/member" || fail "the member's session token is in their bundle"
done

# ---- wrong command lines --------------------------------------------------------
input="" run support bundle a/b/c
expect_rc 2 "a workspace that is no NAME or OWNER/NAME"
input="" run support bundle -o "$tmp/no/such/dir/b.tar.gz"
expect_rc 1 "an unwritable file"
grep -q "cannot write $tmp/no/such/dir/b.tar.gz" "$tmp/err" || fail "an unwritable file: stderr"
cd "$tmp/cwd"
input="" run support bundle --output table
cd - >/dev/null
expect_rc 0 "--output names the file for support bundle"
[ -s "$tmp/cwd/table" ] || fail "--output table wrote no file named table"

# ---- nothing secret was shown or logged ------------------------------------------
! grep -qF -- "$CANARY" "$tmp/shown" || fail "a canary was printed by the CLI"
! grep -qF -- "${token#*-}" "$tmp/shown" || fail "the session token was printed"
kill -TERM "$server_pid"
wait "$server_pid" || fail "the server did not exit cleanly"
server_pid=
! grep -qF -- "$CANARY" "$tmp/server.log" || fail "a canary is in the server log"
echo "PASS"
