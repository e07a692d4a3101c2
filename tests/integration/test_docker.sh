#!/usr/bin/env bash
# The docker provisioner end to end, through the CLI against a real
# `atrium server` and the test suite's Docker engine (plus curl for atrium's
# API and the engine's): push examples/templates/docker; an image outside
# allowed_images refused at import and at build; an unknown reference
# refused at import; a missing image failing the build with the engine's
# message, and a container that exits at once, with its exit status and last
# lines; a workspace whose container has the asked CPU and memory limits,
# atrium's labels, its home volume, resources and state; a file in the home
# volume that survives stop (container gone, volume kept) and start (a new
# container); 10 workspaces started at once; the server killed during a
# start, its job reaped, and the next start converging to one container;
# delete (container and volume gone).
#   test_docker.sh ATRIUM_BIN PLUGIN_DIR SOURCE_DIR DOCKER_DIR [PGDIR]
# DOCKER_DIR is scripts/dev/dockerd.sh's directory (DOCKER_DIR/socket names
# the engine's socket). With PGDIR (scripts/dev/postgres.sh's directory) it
# runs on PostgreSQL, on an emptied public schema, instead of SQLite. Exits
# 77 (skipped) when the engine is not there.
set -euo pipefail
atrium=$1 plugins=$2 src=$3 dockerdir=$4 pgdir=${5:-}
if [ ! -s "$dockerdir/socket" ]; then
  echo "SKIP: no Docker engine: $dockerdir/socket is missing (the dockerd fixture did not start; see its test's output)"
  exit 77
fi
sock=$(cat "$dockerdir/socket")
if ! curl -fsS --max-time 5 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; then
  echo "SKIP: the Docker engine at $sock does not answer /_ping"
  exit 77
fi
tmp=$(mktemp -d /tmp/atrium-docker-XXXXXX)
server_pid=
owner_id=
bg_pids=()
# Removes what this run made on the engine (by the owner's id, which is
# new in every run), whatever state the test stopped in.
engine_cleanup() {
  [ -n "$owner_id" ] || return 0
  local f="{\"label\":[\"dev.atrium.owner_id=$owner_id\"]}"
  for c in $(curl -sS --unix-socket "$sock" -G --data-urlencode "all=1" --data-urlencode "filters=$f" \
    http://localhost/containers/json | python3 -c 'import json,sys; print(" ".join(c["Id"] for c in json.load(sys.stdin)))'); do
    curl -sS --unix-socket "$sock" -X DELETE "http://localhost/containers/$c?force=1" >/dev/null || true
  done
  for v in $(curl -sS --unix-socket "$sock" -G --data-urlencode "filters=$f" http://localhost/volumes |
    python3 -c 'import json,sys; print(" ".join(v["Name"] for v in json.load(sys.stdin)["Volumes"] or []))'); do
    curl -sS --unix-socket "$sock" -X DELETE "http://localhost/volumes/$v?force=1" >/dev/null || true
  done
}
stop_server() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
  fi
}
engine_paused=
cleanup() {
  [ -z "$engine_paused" ] || "$src/scripts/dev/dockerd.sh" resume "$dockerdir" >/dev/null || true
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  stop_server
  engine_cleanup || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- stdout:"; cat "$tmp/out" 2>/dev/null || true
  echo "--- stderr:"; cat "$tmp/err" 2>/dev/null || true
  echo "--- server log (last 40 lines):"; tail -n 40 "$tmp/server.log" 2>/dev/null || true
  exit 1
}
started=$(date +%s)
step() { echo "[$(($(date +%s) - started))s] $*"; }

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
unset ATRIUM_URL ATRIUM_SESSION_TOKEN XDG_CONFIG_HOME DOCKER_HOST
export ATRIUM_CONFIG_DIR=$tmp/config/atrium
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
password="Canary-$RANDOM$RANDOM-pw"
template=$src/examples/templates/docker
[ -f "$template/template.yaml" ] || fail "no template at $template"
image="atrium-test/busybox:1"
[ "$(curl -sS -o /dev/null -w '%{http_code}' --unix-socket "$sock" "http://localhost/images/$image/json")" = 200 ] ||
  fail "the engine at $sock has no image $image (scripts/dev/dockerd.sh imports it)"
ncpu=$(curl -sS --unix-socket "$sock" http://localhost/info | python3 -c 'import json,sys; print(json.load(sys.stdin)["NCPU"])')

if [ -n "$pgdir" ]; then
  dsn=$(cat "$pgdir/dsn")
  psql -q -v ON_ERROR_STOP=1 "$dsn" \
    -c "SET client_min_messages = warning; DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public" >/dev/null
  storage="  storage_postgres:
    enabled: true
    dsn: \"$dsn\""
else
  storage="  storage_sqlite:
    enabled: true"
fi
# write_config FILE HEARTBEAT_INTERVAL HEARTBEAT_TIMEOUT REAPER_INTERVAL
write_config() {
  cat >"$1" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins]
provisioner:
  daemons: 4
  heartbeat_interval: $2
  heartbeat_timeout: $3
  pending_timeout: 5m
  reaper_interval: $4
plugins:
$storage
  auth_password:
    enabled: true
  provisioner_docker:
    enabled: true
    socket: $sock
    allowed_images: [atrium-test/]
    pull_policy: never
    network_mode: none
    start_timeout: 30s
YAML
}
write_config "$tmp/atrium.yaml" 1s 60s 1s
# Short heartbeats, for the server that must reap its killed predecessor's job.
write_config "$tmp/atrium-reap.yaml" 200ms 1s 100ms

# start_server CONFIG: runs the server in the background (its log is
# appended to $tmp/server.log) and waits until it answers.
start_server() {
  "$atrium" server --config "$1" --http.address="127.0.0.1:$port" >>"$tmp/server.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 300); do
    curl -fsS "$url/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited"
    sleep 0.1
  done
  fail "the server did not start"
}
start_server "$tmp/atrium.yaml"

# run ARGS...: stdout, stderr and the exit status into $tmp/out, $tmp/err
# and $rc.
run() {
  set +e
  "$atrium" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
}
expect_rc() { [ "$rc" = "$1" ] || fail "$2: exit status $rc, wanted $1"; }
expect_out() { grep -qxF -- "$1" "$tmp/out" || fail "$2: stdout lacks the line \"$1\""; }
out_has() { grep -qE -- "$1" "$tmp/out" || fail "$2: stdout lacks /$1/"; }
err_has() { grep -qE -- "$1" "$tmp/err" || fail "$2: stderr lacks /$1/"; }
both_have() { grep -qF -- "$1" "$tmp/out" "$tmp/err" || fail "$2: the output lacks \"$1\""; }
# api METHOD PATH [JSON]: the answer's body on stdout (any status); the
# status into $tmp/status.
api() {
  local data=()
  [ $# -lt 3 ] || data=(-H "Content-Type: application/json" -d "$3")
  curl -sS -X "$1" -H "Atrium-Session-Token: $token" "${data[@]}" -o "$tmp/api.json" \
    -w '%{http_code}' "$url$2" >"$tmp/status"
  cat "$tmp/api.json"
}
status() { cat "$tmp/status"; }
# jv EXPR: evaluate a Python expression over the JSON on stdin (as j).
jv() { python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
ws_json() { api GET "/api/v2/users/me/workspace/$1"; }
ws_id_of() { ws_json "$1" | jv 'j["id"]'; }

# eng METHOD PATH [JSON]: the Docker engine's API, as api.
eng() {
  local data=()
  [ $# -lt 3 ] || data=(-H "Content-Type: application/json" -d "$3")
  curl -sS --unix-socket "$sock" -X "$1" "${data[@]}" -o "$tmp/eng.json" \
    -w '%{http_code}' "http://localhost$2" >"$tmp/eng.status"
  cat "$tmp/eng.json"
}
eng_status() { cat "$tmp/eng.status"; }
# containers_of WORKSPACE_ID: the workspace's containers, running or not,
# as the engine lists them (by atrium's label).
containers_of() {
  curl -sS --unix-socket "$sock" -G --data-urlencode "all=1" \
    --data-urlencode "filters={\"label\":[\"dev.atrium.workspace_id=$1\"]}" http://localhost/containers/json
}
volumes_of() {
  curl -sS --unix-socket "$sock" -G \
    --data-urlencode "filters={\"label\":[\"dev.atrium.workspace_id=$1\"]}" http://localhost/volumes
}
# in_container NAME ARGV...: runs ARGV in the container (an engine exec) and
# prints its exit status.
in_container() {
  local name=$1 body id
  shift
  body=$(python3 -c 'import json,sys; print(json.dumps({"Cmd": sys.argv[1:]}))' "$@")
  id=$(eng POST "/containers/$name/exec" "$body" | jv 'j["Id"]') ||
    fail "exec in $name: $(cat "$tmp/eng.json")"
  eng POST "/exec/$id/start" '{"Detach": true}' >/dev/null
  [ "$(eng_status)" = 200 ] || fail "exec start in $name: $(cat "$tmp/eng.json")"
  for _ in $(seq 100); do
    eng GET "/exec/$id/json" >/dev/null
    [ "$(jv 'j["Running"]' <"$tmp/eng.json")" = False ] && break
    sleep 0.1
  done
  jv 'j["ExitCode"]' <"$tmp/eng.json"
}
# file_in CONTAINER PATH: the file's contents, read through the engine.
file_in() {
  curl -sS -f --unix-socket "$sock" "http://localhost/containers/$1/archive?path=$2" | tar -xO
}

# ---- the first user ---------------------------------------------------------
step "first user"
set +e
printf '%s' "$password" | "$atrium" login "$url" --first-user --username admin \
  --email admin@example.com >"$tmp/out" 2>"$tmp/err"
rc=$?
set -e
expect_rc 0 "first user + login"
token=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["session_token"])' \
  "$ATRIUM_CONFIG_DIR/session.json")
owner_id=$(api GET /api/v2/users/me | jv 'j["id"]')

# ---- push ----------------------------------------------------------------------
step "templates push"
run templates push "$template" -y
expect_rc 0 "templates push"
out_has '^Template version [a-z0-9_-]+ imported in [0-9.]+s\.$' "push: import"
out_has '^Template docker created; its active version is ' "push: created"
template_id=$(api GET /api/v2/organizations/default/templates/docker | jv 'j["id"]')
[ "$(status)" = 200 ] || fail "the template docker: HTTP $(status)"
run templates show docker
expect_rc 0 "templates show"
grep -Eq '^cpus +number +1 +no +yes$' "$tmp/out" || fail "templates show: cpus"
grep -Eq '^memory +number +256 +no +yes$' "$tmp/out" || fail "templates show: memory"
grep -Eq "^image +string +$image +no +yes$" "$tmp/out" || fail "templates show: image"

# An image outside allowed_images, written into workspace.yaml: the import
# fails with a message naming the image and the allowed prefixes.
cp -r "$template" "$tmp/evil"
sed -i 's|^image: .*|image: busybox:latest|' "$tmp/evil/workspace.yaml"
sed -i 's|^name: docker$|name: evil|' "$tmp/evil/template.yaml"
run templates push "$tmp/evil" -y
expect_rc 1 "push a template whose image is not allowed"
line=$(grep -n '^image: busybox:latest$' "$tmp/evil/workspace.yaml" | cut -d: -f1)
err_has "^atrium templates push: the import of template version [a-z0-9-]+ failed in [0-9.]+s: .*workspace\.yaml:$line:[0-9]+: image \"busybox:latest\" is not allowed; allowed prefixes: atrium-test/ \(plugins\.provisioner_docker\.allowed_images\)$" \
  "push evil: the message"
run templates list
grep -q '^evil ' "$tmp/out" && fail "an import with a refused image made a template"

# A reference to a parameter that does not exist: refused at import, named
# with where it is.
cp -r "$template" "$tmp/typo"
# shellcheck disable=SC2016 # the reference is for the plugin, not the shell
sed -i 's|^name: docker$|name: typo|; s|\${param.cpus}|${param.cpu}|' "$tmp/typo/"*.yaml
run templates push "$tmp/typo" -y
expect_rc 1 "push a template with an unknown reference"
line=$(grep -n 'param\.cpu}' "$tmp/typo/workspace.yaml" | cut -d: -f1)
err_has "workspace\.yaml:$line:[0-9]+: unknown reference \\\$\{param\.cpu\} \(parameters: cpus, memory, image\)$" \
  "push typo: the message names the reference, where and the parameters"

# A container that exits right away: the start fails with its exit status
# and its last lines.
cp -r "$template" "$tmp/quits"
sed -i 's|^name: docker$|name: quits|' "$tmp/quits/template.yaml"
sed -i 's|^command: .*|command: "echo giving up on purpose; exit 3"|' "$tmp/quits/workspace.yaml"
run templates push "$tmp/quits" -y
expect_rc 0 "push quits"

# ---- builds that fail ---------------------------------------------------------
step "builds that fail"
run create quits --template quits -y
expect_rc 1 "create from a template whose container exits"
err_has '^Build 1 \(start\) failed' "create quits: the end"
run logs quits
grep -qF "giving up on purpose" "$tmp/out" || fail "logs quits: the container's last lines"
quits_id=$(ws_id_of quits)
error=$(ws_json quits | jv 'j["latest_build"]["job"]["error"]')
grep -qE '(code|status) 3([^0-9]|$)' <<<"$error" || fail "the job's error lacks the exit status: $error"

# The image from a parameter: refused when the build starts.
run create evil --template docker -y --parameter image=busybox:latest
expect_rc 1 "create with an image that is not allowed"
both_have 'image "busybox:latest" is not allowed; allowed prefixes: atrium-test/' "create evil: the message"
[ "$(ws_json evil | jv 'j["latest_build"]["status"]')" = failed ] || fail "evil is not failed"
[ "$(containers_of "$(ws_id_of evil)" | jv 'len(j)')" = 0 ] || fail "a refused image made a container"

# Allowed but not on the engine, with pull_policy never: the engine's message.
run create nosuch --template docker -y --parameter image=atrium-test/missing:1
expect_rc 1 "create with a missing image"
err_has '^Build 1 \(start\) failed' "create nosuch: the end"
run logs nosuch
expect_rc 0 "logs nosuch"
grep -qF "No such image: atrium-test/missing:1" "$tmp/out" || fail "logs nosuch: the engine's message"
ws_json nosuch >"$tmp/ws.json"
[ "$(jv 'j["latest_build"]["status"]' <"$tmp/ws.json")" = failed ] || fail "nosuch is not failed"
error=$(jv 'j["latest_build"]["job"]["error"]' <"$tmp/ws.json")
grep -qF "No such image: atrium-test/missing:1" <<<"$error" || fail "the job's error lacks the engine's message: $error"

# More CPUs than the engine's machine has: the engine refuses the container,
# and its message reaches the log.
if [ "$ncpu" -lt 8 ]; then
  run create greedy --template docker -y --parameter cpus=8
  expect_rc 1 "create with 8 CPUs on a machine with $ncpu"
  run logs greedy
  grep -qiF "range of CPUs is from 0.01 to $ncpu.00" "$tmp/out" ||
    fail "logs greedy: the engine's message about the CPUs"
fi

# ---- create --------------------------------------------------------------------
step "create dev"
cpus=$((ncpu >= 2 ? 2 : 1))
run create dev --template docker -y --parameter cpus=$cpus --parameter memory=512
expect_rc 0 "create dev"
expect_out "Workspace dev created from template docker." "create"
out_has '^Build 1 \(start\) succeeded in [0-9.]+s$' "create: the build"
name="atrium-admin-dev"
ws_json dev >"$tmp/ws.json"
[ "$(jv 'j["latest_build"]["status"]' <"$tmp/ws.json")" = running ] || fail "dev is not running"
ws_id=$(jv 'j["id"]' <"$tmp/ws.json")
build1=$(jv 'j["latest_build"]["id"]' <"$tmp/ws.json")
volume=atrium-$ws_id-home

eng GET "/containers/$name/json" >"$tmp/c1.json"
[ "$(eng_status)" = 200 ] || fail "no container $name: $(cat "$tmp/c1.json")"
python3 - "$tmp/c1.json" "$cpus" "$ws_id" "$owner_id" "$template_id" "$volume" "$image" <<'PY' ||
import json, sys
c = json.load(open(sys.argv[1]))
cpus, ws, owner, tmpl, volume, image = sys.argv[2:]
hc, cfg = c["HostConfig"], c["Config"]
assert c["State"]["Running"], c["State"]
assert hc["NanoCpus"] == int(cpus) * 10**9, ("NanoCpus", hc["NanoCpus"])
assert hc["Memory"] == 512 * 2**20, ("Memory", hc["Memory"])
# The starter asks for the host network: its agent must reach the server.
assert hc["NetworkMode"] == "host", ("NetworkMode", hc["NetworkMode"])
assert cfg["Image"] == image, ("Image", cfg["Image"])
want = {"dev.atrium.workspace_id": ws, "dev.atrium.workspace_name": "dev",
        "dev.atrium.owner_id": owner, "dev.atrium.owner_name": "admin",
        "dev.atrium.template_id": tmpl, "dev.atrium.build_number": "1",
        "starter": "docker", "template": "docker"}
got = cfg["Labels"] or {}
for k, v in want.items():
    assert got.get(k) == v, ("label", k, got.get(k), v)
env = dict(e.split("=", 1) for e in cfg["Env"] or [])
assert env.get("ATRIUM_WORKSPACE_NAME") == "dev" and env.get("ATRIUM_WORKSPACE_OWNER") == "admin", env
assert cfg["WorkingDir"] == "/home/dev", cfg["WorkingDir"]
mounts = [(m["Type"], m.get("Name"), m["Destination"]) for m in c["Mounts"]]
assert ("volume", volume, "/home/dev") in mounts, mounts
PY
  fail "the container $name: $(head -c 600 "$tmp/c1.json")"
cid1=$(jv 'j["Id"]' <"$tmp/c1.json")
eng GET "/volumes/$volume" >"$tmp/v.json"
[ "$(eng_status)" = 200 ] || fail "no volume $volume"
labels='j["Labels"].get("dev.atrium.workspace_id"), j["Labels"].get("dev.atrium.workspace_name"), j["Labels"].get("dev.atrium.owner_id"), j["Labels"].get("dev.atrium.owner_name"), j["Labels"].get("dev.atrium.template_id")'
[ "$(jv "$labels" <"$tmp/v.json")" = "('$ws_id', 'dev', '$owner_id', 'admin', '$template_id')" ] ||
  fail "the volume's labels: $(cat "$tmp/v.json")"

# The build's resources: the container (its image and status) and the volume.
api GET "/api/v2/workspacebuilds/$build1/resources" >"$tmp/res.json"
python3 - "$tmp/res.json" "$name" "$cid1" "$volume" "$image" <<'PY' || fail "build 1's resources: $(cat "$tmp/res.json")"
import json, sys
res = json.load(open(sys.argv[1]))
name, cid, volume, image = sys.argv[2:]
def meta(r): return {m["key"]: m["value"] for m in r["metadata"]}
cs = [r for r in res if r["type"] == "docker_container"]
vs = [r for r in res if r["type"] == "docker_volume"]
assert len(cs) == 1 and len(vs) == 1, [(r["type"], r["name"]) for r in res]
c, v = cs[0], vs[0]
assert c["name"] == name, ("container name", c["name"])
assert meta(c).get("image") == image, ("image", meta(c))
assert meta(c).get("status") == "running", ("status", meta(c))
assert cid in meta(c).values(), ("the container's id", meta(c))
assert v["name"] == volume, ("volume name", v["name"])
assert c["transition"] == "start" and v["transition"] == "start"
PY
# The build's state: what exists, for the next build.
api GET "/api/v2/workspacebuilds/$build1/state" >"$tmp/state.json"
[ "$(status)" = 200 ] || fail "build 1's state: HTTP $(status)"
python3 - "$tmp/state.json" "$name" "$cid1" "$volume" "$image" <<'PY' || fail "build 1's state: $(head -c 600 "$tmp/state.json")"
import json, sys
s = json.load(open(sys.argv[1]))
name, cid, volume, image = sys.argv[2:]
assert [(c["name"], c["id"]) for c in s["containers"]] == [(name, cid)], s["containers"]
assert [v["name"] for v in s["volumes"]] == [volume], s["volumes"]
assert s["image"] == image, s["image"]
PY
run logs dev
expect_rc 0 "logs dev"
[ -s "$tmp/out" ] || fail "build 1 of dev has no log"
# The container's name is the owner's and the workspace's, lower-cased.
run create Big-Box --template docker -y
expect_rc 0 "create Big-Box"
eng GET /containers/atrium-admin-big-box/json >/dev/null
[ "$(eng_status)" = 200 ] || fail "Big-Box's container is not atrium-admin-big-box"

# ---- the home volume through stop and start --------------------------------------
step "stop, start"
note="written by build 1 $RANDOM$RANDOM"
[ "$(in_container "$name" /bin/sh -c "echo '$note' >/home/dev/notes.txt")" = 0 ] ||
  fail "could not write into the home volume"
[ "$(file_in "$name" /home/dev/notes.txt)" = "$note" ] || fail "the file did not land"
run stop dev
expect_rc 0 "stop"
out_has '^Build 2 \(stop\) succeeded in [0-9.]+s$' "stop"
eng GET "/containers/$name/json" >/dev/null
[ "$(eng_status)" = 404 ] || fail "stop left the container: HTTP $(eng_status)"
eng GET "/volumes/$volume" >/dev/null
[ "$(eng_status)" = 200 ] || fail "stop removed the volume: HTTP $(eng_status)"
ws_json dev >"$tmp/ws.json"
[ "$(jv 'j["latest_build"]["status"]' <"$tmp/ws.json")" = stopped ] || fail "dev is not stopped"
# A stopped workspace's resources: the volume, no container.
api GET "/api/v2/workspacebuilds/$(jv 'j["latest_build"]["id"]' <"$tmp/ws.json")/resources" >"$tmp/res.json"
[ "$(jv '[(r["type"], r["name"]) for r in j]' <"$tmp/res.json")" = "[('docker_volume', '$volume')]" ] ||
  fail "the stop build's resources: $(cat "$tmp/res.json")"
# A start with a changed (mutable) value: a new container with the new
# limits, and the same home.
run start dev --parameter cpus=1 --parameter memory=256
expect_rc 0 "start"
out_has '^Build 3 \(start\) succeeded in [0-9.]+s$' "start"
eng GET "/containers/$name/json" >"$tmp/c3.json"
[ "$(eng_status)" = 200 ] || fail "start made no container"
cid3=$(jv 'j["Id"]' <"$tmp/c3.json")
[ "$cid3" != "$cid1" ] || fail "start reused the stopped container"
[ "$(jv 'j["State"]["Running"], j["HostConfig"]["NanoCpus"], j["HostConfig"]["Memory"], j["Config"]["Labels"]["dev.atrium.build_number"]' <"$tmp/c3.json")" = \
  "(True, 1000000000, 268435456, '3')" ] || fail "the restarted container: $(head -c 600 "$tmp/c3.json")"
[ "$(file_in "$name" /home/dev/notes.txt)" = "$note" ] || fail "the file did not survive stop and start"
[ "$(containers_of "$ws_id" | jv 'len(j)')" = 1 ] || fail "dev has more than one container"
[ "$(volumes_of "$ws_id" | jv 'len(j["Volumes"] or [])')" = 1 ] || fail "dev has more than one volume"
# A stop is prompt: the container ends on SIGTERM, not after the 10 s grace.
t0=$(date +%s%N)
run stop dev
expect_rc 0 "a second stop"
elapsed=$((($(date +%s%N) - t0) / 1000000))
[ "$elapsed" -lt 8000 ] || fail "the stop took ${elapsed}ms: the container ignored SIGTERM"
# Stopping a stopped workspace: nothing to stop is not an error.
run stop dev
expect_rc 0 "stop a stopped workspace"
run start dev
expect_rc 0 "start again"

# ---- 10 workspaces at once ------------------------------------------------------------
step "10 at once"
pids=()
for i in $(seq 1 10); do
  "$atrium" create "w$i" --template docker -y </dev/null >"$tmp/w$i.out" 2>"$tmp/w$i.err" &
  pids+=("$!")
done
bg_pids+=("${pids[@]}")
for i in $(seq 1 10); do
  set +e; wait "${pids[$((i - 1))]}"; crc=$?; set -e
  [ "$crc" = 0 ] || { cat "$tmp/w$i.out" "$tmp/w$i.err"; fail "create w$i: exit $crc"; }
done
api GET "/api/v2/workspaces?owner=me&limit=100" >"$tmp/all.json"
curl -sS --unix-socket "$sock" -G --data-urlencode "all=1" \
  --data-urlencode "filters={\"label\":[\"dev.atrium.owner_id=$owner_id\"]}" \
  http://localhost/containers/json >"$tmp/containers.json"
python3 - "$tmp/all.json" "$tmp/containers.json" <<'PY' || fail "10 at once"
import collections, json, sys
ws = {w["name"]: w for w in json.load(open(sys.argv[1]))["workspaces"]}
per_ws = collections.defaultdict(list)
for c in json.load(open(sys.argv[2])):
    per_ws[c["Labels"]["dev.atrium.workspace_id"]].append(c)
for i in range(1, 11):
    w = ws.get("w%d" % i)
    assert w, "w%d is not listed" % i
    b = w["latest_build"]
    assert b["build_number"] == 1 and b["status"] == "running", (w["name"], b["status"])
    cs = per_ws[w["id"]]
    assert len(cs) == 1, (w["name"], [c["Names"] for c in cs])
    assert cs[0]["State"] == "running", (w["name"], cs[0]["State"])
    assert cs[0]["Names"] == ["/atrium-admin-w%d" % i], cs[0]["Names"]
PY

# ---- the server killed during a start --------------------------------------------------
step "server killed during a start"
run create crash --template docker -y
expect_rc 0 "create crash"
crash_id=$(ws_id_of crash)
# The engine is frozen while the second start runs, so the build cannot
# finish before the kill, however fast the machine or busy the engine.
"$src/scripts/dev/dockerd.sh" pause "$dockerdir" >/dev/null
engine_paused=1
api POST "/api/v2/workspaces/$crash_id/builds" '{"transition": "start"}' >"$tmp/b.json"
[ "$(status)" = 201 ] || fail "a second start of crash: HTTP $(status) $(cat "$tmp/b.json")"
crash_build=$(jv 'j["id"]' <"$tmp/b.json")
# Kill the server once its daemon has taken the job (its engine calls are
# waiting on the frozen engine). The braces keep bash's "Killed" notice
# out of the output.
set +e
{ python3 - "$url" "$token" "$crash_build" "$server_pid" 2>&1 <<'PY'
import json, os, signal, sys, time, urllib.request
url, token, build, pid = sys.argv[1:]
req = urllib.request.Request("%s/api/v2/workspacebuilds/%s" % (url, build),
                             headers={"Atrium-Session-Token": token})
end = time.time() + 30
while time.time() < end:
    st = json.load(urllib.request.urlopen(req))["job"]["status"]
    if st != "pending":
        break
    time.sleep(0.05)
os.kill(int(pid), signal.SIGKILL)
print("the job was %s when the server was killed" % st)
sys.exit(0 if st == "running" else 1)
PY
  krc=$?; wait "$server_pid"; } 2>/dev/null
set -e
server_pid=
"$src/scripts/dev/dockerd.sh" resume "$dockerdir" >/dev/null
engine_paused=
[ "$krc" = 0 ] || fail "the server was not killed while the crash build ran"
echo "after the kill, the engine has: $(containers_of "$crash_id" | jv '[(c["Names"][0], c["State"], c["Labels"]["dev.atrium.build_number"]) for c in j]')"
start_server "$tmp/atrium-reap.yaml"
for _ in $(seq 100); do
  [ "$(api GET "/api/v2/workspacebuilds/$crash_build" | jv 'j["job"]["status"]')" = running ] || break
  sleep 0.1
done
api GET "/api/v2/workspacebuilds/$crash_build" >"$tmp/b.json"
[ "$(jv 'j["job"]["status"], j["status"]' <"$tmp/b.json")" = "('failed', 'failed')" ] ||
  fail "the killed server's job was not reaped: $(cat "$tmp/b.json")"
error=$(jv 'j["job"]["error"]' <"$tmp/b.json")
grep -q heartbeat <<<"$error" || fail "the reaped job's error does not say why: $error"
echo "the killed build's last line: $(api GET "/api/v2/workspacebuilds/$crash_build/logs" | jv 'j[-1]["output"] if j else None')"
run start crash
expect_rc 0 "start after the reaped build"
out_has '^Build 3 \(start\) succeeded in [0-9.]+s$' "start after the reaped build"
containers_of "$crash_id" >"$tmp/crash.json"
[ "$(jv '[(c["Names"], c["State"], c["Labels"]["dev.atrium.build_number"]) for c in j]' <"$tmp/crash.json")" = \
  "[(['/atrium-admin-crash'], 'running', '3')]" ] ||
  fail "crash did not converge to one running container: $(cat "$tmp/crash.json")"
vols=$(volumes_of "$crash_id" | jv '[v["Name"] for v in j["Volumes"] or []]')
[ "$vols" = "['atrium-$crash_id-home']" ] || fail "crash's volumes: $vols"

# ---- delete ---------------------------------------------------------------------------
step "delete"
run delete dev -y
expect_rc 0 "delete"
out_has '^Build 7 \(delete\) succeeded in [0-9.]+s$' "delete"
eng GET "/containers/$name/json" >/dev/null
[ "$(eng_status)" = 404 ] || fail "delete left the container"
eng GET "/volumes/$volume" >/dev/null
[ "$(eng_status)" = 404 ] || fail "delete left the volume"
[ "$(containers_of "$ws_id" | jv 'len(j)')" = 0 ] || fail "delete left containers"
# Workspaces whose start failed delete cleanly too: nosuch made nothing,
# quits a volume and an exited container.
run delete nosuch -y
expect_rc 0 "delete a workspace whose start failed"
run delete quits -y
expect_rc 0 "delete quits"
[ "$(containers_of "$quits_id" | jv 'len(j)')" = 0 ] || fail "delete of quits left its container"
[ "$(volumes_of "$quits_id" | jv 'len(j["Volumes"] or [])')" = 0 ] || fail "delete of quits left its volume"
# Deleting a stopped workspace removes its volume.
run stop w1
expect_rc 0 "stop w1"
run delete w1 -y
expect_rc 0 "delete w1"
w1_id=$(api GET "/api/v2/workspaces?owner=me&deleted=true&limit=100" |
  jv '[w["id"] for w in j["workspaces"] if w["name"] == "w1"][0]')
[ "$(volumes_of "$w1_id" | jv 'len(j["Volumes"] or [])')" = 0 ] || fail "delete of a stopped w1 left its volume"
[ "$(containers_of "$w1_id" | jv 'len(j)')" = 0 ] || fail "delete of a stopped w1 left containers"
step "PASS"
echo "PASS"
