#!/usr/bin/env bash
# Templates, workspaces and builds end to end, through the CLI against a real
# `atrium server` with the terraform provisioner (plus curl for the raw API):
# push examples/templates/terraform-local, create a workspace and watch its
# directory appear, stop and start it, refused parameter changes that queue
# no build, cancel during a slow start, a start that fails, a sensitive value
# that shows up nowhere, 20 workspaces created at once, and delete.
#   test_builds.sh ATRIUM_BIN PLUGIN_DIR SOURCE_DIR [PGDIR]
# With PGDIR (scripts/dev/postgres.sh's directory) it runs on PostgreSQL,
# on an emptied public schema, instead of SQLite. Exits 77 (skipped) when
# /usr/local/bin/terraform is missing.
set -euo pipefail
# The server's log is read as text below (not a terminal: JSON by default).
export ATRIUM_LOG_FORMAT=text
atrium=$1 plugins=$2 src=$3 pgdir=${4:-}
terraform=/usr/local/bin/terraform
if [ ! -x "$terraform" ]; then
  echo "SKIP: $terraform is missing; the builds test needs Terraform there"
  exit 77
fi
tmp=$(mktemp -d /tmp/atrium-builds-XXXXXX)
server_pid=
bg_pids=()
cleanup() {
  for p in "${bg_pids[@]}"; do kill "$p" 2>/dev/null || true; done
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
  echo "--- server log (last 40 lines):"; tail -n 40 "$tmp/server.log" 2>/dev/null || true
  exit 1
}
started=$(date +%s)
step() { echo "[$(($(date +%s) - started))s] $*"; }

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
unset ATRIUM_URL ATRIUM_SESSION_TOKEN XDG_CONFIG_HOME
export ATRIUM_CONFIG_DIR=$tmp/config/atrium
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
password="Canary-$RANDOM$RANDOM-pw"
secret="Sensitive-$RANDOM$RANDOM-value"
# Where the template puts workspaces: the operator's TF_VAR_root, not a
# parameter. Builds may run as the build user (provisioner.run_as), who
# must reach it.
root=$tmp/workspaces
mkdir -m 1777 "$root"
chmod 0711 "$tmp"
export TF_VAR_root=$root
template=$src/examples/templates/terraform-local
[ -f "$template/template.yaml" ] || fail "no template at $template"

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
# A deployment policy: a greeting that is refused, one that is warned
# about, and one a policy replaces.
mkdir -p "$tmp/policies"
cat >"$tmp/policies/greetings.lua" <<'LUA'
local function greeting(input) return input.parameters.new.greeting end
function workspace_create(input)
  if greeting(input) == "forbidden" then
    policy.deny("that greeting is not allowed here", "greeting")
  elseif greeting(input) == "hi" then
    policy.warn("say hello, not hi")
  elseif greeting(input) == "yo" then
    policy.set("greeting", "hello")
  end
end
function build(input)
  if input.transition == "stop" and greeting(input) == "stay-up" then
    policy.deny("this workspace stays up")
  end
end
LUA
cat >"$tmp/atrium.yaml" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins]
policy:
  files: [$tmp/policies/*.lua]
provisioner:
  daemons: 4
  heartbeat_interval: 1s
  heartbeat_timeout: 60s
  pending_timeout: 5m
  reaper_interval: 1s
plugins:
$storage
  auth_password:
    enabled: true
  provisioner_terraform:
    enabled: true
    binary: $terraform
    cancel_grace: 2s
YAML

"$atrium" server --config "$tmp/atrium.yaml" --http.address="127.0.0.1:$port" \
  >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || fail "the server exited"
  sleep 0.1
done
curl -fsS "$url/healthz" >/dev/null 2>&1 || fail "the server did not start"

# run ARGS...: stdout, stderr and the exit status into $tmp/out, $tmp/err and
# $rc; everything shown is kept in $tmp/shown for the leak checks.
run() {
  set +e
  "$atrium" "$@" </dev/null >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  cat "$tmp/out" "$tmp/err" >>"$tmp/shown"
}
expect_rc() { [ "$rc" = "$1" ] || fail "$2: exit status $rc, wanted $1"; }
expect_out() { grep -qxF -- "$1" "$tmp/out" || fail "$2: stdout lacks the line \"$1\""; }
expect_err() { grep -qxF -- "$1" "$tmp/err" || fail "$2: stderr lacks the line \"$1\""; }
out_has() { grep -qE -- "$1" "$tmp/out" || fail "$2: stdout lacks /$1/"; }
err_has() { grep -qE -- "$1" "$tmp/err" || fail "$2: stderr lacks /$1/"; }
# api METHOD PATH: the answer's body on stdout (any status); the status
# into $tmp/status.
api() {
  curl -sS -X "$1" -H "Atrium-Session-Token: $token" -o "$tmp/api.json" \
    -w '%{http_code}' "$url$2" >"$tmp/status"
  cat "$tmp/api.json"
}
# api_post PATH JSON: as api, with a JSON body.
api_post() {
  curl -sS -X POST -H "Atrium-Session-Token: $token" -H "Content-Type: application/json" \
    -d "$2" -o "$tmp/api.json" -w '%{http_code}' "$url$1" >"$tmp/status"
  cat "$tmp/api.json"
}
status() { cat "$tmp/status"; }
# jv EXPR: evaluate a Python expression over the JSON on stdin (as j).
jv() { python3 -c 'import json,sys; j=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }
ws_json() { api GET "/api/v2/users/me/workspace/$1"; }
builds_of() { api GET "/api/v2/workspaces/$(ws_json "$1" | jv 'j["id"]')/builds?limit=100"; }
nbuilds() { builds_of "$1" | jv 'len(j)'; }

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

# ---- push --------------------------------------------------------------------
step "templates push"
run templates push "$template" -y
expect_rc 0 "templates push"
out_has '^Uploading .*terraform-local \([0-9]+ files, ' "push: upload line"
out_has '^Template version [a-z0-9_-]+ imported in [0-9.]+s\.$' "push: import"
out_has '^Template terraform-local created; its active version is ' "push: created"

run templates list
expect_rc 0 "templates list"
grep -Eq '^terraform-local +terraform +0 +admin ' "$tmp/out" || fail "templates list: the template"
run templates show terraform-local
expect_rc 0 "templates show"
grep -Eq '^cpus +number +2 +no +yes$' "$tmp/out" || fail "templates show: cpus"
grep -Eq '^root ' "$tmp/out" && fail "templates show: root, a host path, is a parameter"
run templates versions terraform-local -o json
expect_rc 0 "templates versions"
[ "$(jv 'j[0]["job"]["status"]' <"$tmp/out")" = succeeded ] || fail "versions: the import job"

# Pushing again makes a second version that is not active without --activate.
run templates push "$template" -y
expect_rc 0 "push a second version"
out_has '^Version [a-z0-9_-]+ of template terraform-local is not active; ' "push again"
run templates push "$template" -y --activate
expect_rc 0 "push --activate"
out_has '^Template terraform-local now uses version [a-z0-9_-]+\.$' "push --activate"

# A directory without template.yaml is refused before anything is sent.
mkdir -p "$tmp/empty"
run templates push "$tmp/empty" -y
expect_rc 2 "push without template.yaml"
err_has "has no template.yaml" "push without template.yaml"

# An import that fails: push exits non-zero with the job's error, and no
# template is made.
cp -r "$template" "$tmp/broken"
echo 'resource "terraform_data" "x" {' >>"$tmp/broken/main.tf"
run templates push "$tmp/broken" -y
expect_rc 1 "push a template that does not import"
err_has '^atrium templates push: the import of template version [a-z0-9_-]+ failed in [0-9.]+s: .*terraform' \
  "push broken: the job's error"
run templates list
grep -q '^broken ' "$tmp/out" && fail "a failed import made a template"

# Required parameters: named when there is no terminal, asked for on one.
mkdir -p "$tmp/asks"
cat >"$tmp/asks/template.yaml" <<'YAML'
name: asks
provisioner: terraform
parameters:
  - name: cpus
    type: number
    validation: { min: 1, max: 8 }
  - name: region
    type: string
    options:
      - { name: Europe, value: eu }
      - { name: America, value: us }
YAML
cat >"$tmp/asks/main.tf" <<'TF'
variable "cpus" {
  type = number
}
variable "region" {
  type = string
}
output "where" {
  value = "${var.region}:${var.cpus}"
}
TF
run templates push "$tmp/asks" -y
expect_rc 0 "push asks"
run create quiet --template asks -y
expect_rc 2 "create without required values and without a terminal"
err_has 'the template needs values for: cpus, region; give --parameter NAME=VALUE' \
  "missing required values: message"
ws_json quiet >/dev/null
[ "$(status)" = 404 ] || fail "create without required values made a workspace"
python3 - "$atrium" "$tmp/tty" <<'PY' || { cat "$tmp/tty"; fail "prompts on a terminal"; }
import os, pty, sys, time
atrium, transcript = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(atrium, [atrium, "create", "asked", "--template", "asks", "-y"])
seen = b""
def wait_for(text, timeout=60):
    global seen
    end = time.time() + timeout
    while text.encode() not in seen:
        if time.time() > end:
            open(transcript, "wb").write(seen)
            raise SystemExit("no %r" % text)
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
wait_for("cpus (number, 1\u20138): ")
os.write(fd, b"4\n")
wait_for("region (string, one of: eu, us): ")
os.write(fd, b"eu\n")
wait_for("Build 1 (start) succeeded")
_, status = os.waitpid(pid, 0)
open(transcript, "wb").write(seen)
sys.exit(os.waitstatus_to_exitcode(status))
PY
cat "$tmp/tty" >>"$tmp/shown"
b=$(ws_json asked | jv 'j["latest_build"]["id"]')
[ "$(api GET "/api/v2/workspacebuilds/$b/parameters" | jv 'sorted((p["name"], p["value"]) for p in j)')" = \
  "[('cpus', '4'), ('region', 'eu')]" ] || fail "the prompted values: $(cat "$tmp/api.json")"

# ---- create ------------------------------------------------------------------
step "create dev"
run create dev --template terraform-local -y \
  --parameter greeting=hi --parameter cpus=3 --parameter "secret_token=$secret"
expect_rc 0 "create dev"
expect_out "Workspace dev created from template terraform-local." "create"
out_has '^Build 1 \(start\) succeeded in [0-9.]+s$' "create: the build"
out_has 'terraform-local: workspace dev is running in ' "create: the start script's line"
dir=$root/admin/dev
[ -d "$dir" ] || fail "no workspace directory $dir"
[ "$(jv 'j["greeting"], j["cpus"]' <"$dir/parameters.json")" = "('hi', 3)" ] ||
  fail "parameters.json: $(cat "$dir/parameters.json")"
[ -f "$dir/running" ] || fail "no running marker"
[ "$(cat "$dir/.token")" = "$secret" ] || fail "the secret did not reach .token"
[ "$(stat -c %a "$dir/.token")" = 600 ] || fail ".token mode"

ws_json dev >"$tmp/ws.json"
[ "$(jv 'j["latest_build"]["status"]' <"$tmp/ws.json")" = running ] || fail "dev is not running"
ws_id=$(jv 'j["id"]' <"$tmp/ws.json")
build1=$(jv 'j["latest_build"]["id"]' <"$tmp/ws.json")
api GET "/api/v2/workspacebuilds/$build1/parameters" >"$tmp/params.json"
[ "$(jv '{p["name"]: p["value"] for p in j}["secret_token"]' <"$tmp/params.json")" = "********" ] ||
  fail "build parameters show the sensitive value: $(cat "$tmp/params.json")"

run list
expect_rc 0 "list"
# The template has an agent that nothing runs here: it never connects.
grep -Eq '^dev +terraform-local +running \(agent connecting\) +[0-9]+s ago +no$' "$tmp/out" || fail "list: dev"
run show dev
expect_rc 0 "show"
expect_out "Status:     running" "show: status"
expect_out "agent main: connecting, created" "show: the agent"
grep -q '^  secret_token = \*\*\*\*\*\*\*\*$' "$tmp/out" || fail "show: the secret is masked"

# ---- stop, start -------------------------------------------------------------
step "stop, start"
run stop dev
expect_rc 0 "stop"
out_has '^Build 2 \(stop\) succeeded in [0-9.]+s$' "stop"
[ -d "$dir" ] || fail "stop removed the directory"
[ ! -e "$dir/running" ] || fail "stop left the running marker"
[ ! -e "$dir/.token" ] || fail "stop left .token"
run start dev
expect_rc 0 "start"
out_has '^Build 3 \(start\) succeeded in [0-9.]+s$' "start"
[ -f "$dir/running" ] || fail "start: no running marker"
[ "$(cat "$dir/.token")" = "$secret" ] || fail "start: the secret was not carried over"
builds_of dev >"$tmp/builds.json"
[ "$(jv '[b["build_number"] for b in j]' <"$tmp/builds.json")" = "[3, 2, 1]" ] ||
  fail "builds newest first: $(cat "$tmp/builds.json")"
[ "$(jv 'j[0]["job"]["status"], j[0]["transition"]' <"$tmp/builds.json")" = "('succeeded', 'start')" ] ||
  fail "build 3's job"
build3=$(jv 'j[0]["id"]' <"$tmp/builds.json")
# The home directory is the same resource before and after stop/start: the
# provisioner's id for it (metadata "id") is unchanged.
home_of() {
  api GET "/api/v2/workspacebuilds/$1/resources" |
    jv '[m["value"] for r in j if r["name"] == "home" for m in r["metadata"] if m["key"] == "id"]'
}
home1=$(home_of "$build1") home3=$(home_of "$build3")
[ "$home1" != "[]" ] || fail "build 1 has no home resource: $(cat "$tmp/api.json")"
[ "$home1" = "$home3" ] || fail "the home resource changed: $home1 → $home3"

# ---- refused parameter changes queue nothing ---------------------------------
step "refused parameters"
before=$(nbuilds dev)
run start dev --parameter cpus=99
expect_rc 1 "start with cpus=99"
grep -q '^atrium start: ' "$tmp/err" || fail "cpus=99: the server's message"
expect_err "  cpus: Between 1 and 8 CPUs" "cpus=99: validation"
run start dev --parameter "root=/etc"
expect_rc 1 "start with a root of the member's choice"
err_has "root" "root=/etc: the refusal names it"
[ "$(nbuilds dev)" = "$before" ] || fail "a refused build was queued"
run create bad --template terraform-local -y --parameter cpus=99 --parameter nope=1
expect_rc 1 "create with bad values"
expect_err "  cpus: Between 1 and 8 CPUs" "create cpus=99"
expect_err "  nope: is not a parameter of this template" "create unknown parameter"
ws_json bad >/dev/null
[ "$(status)" = 404 ] || fail "a refused create made workspace bad: $(status)"

# ---- cancel during a slow start ----------------------------------------------
step "cancel"
"$atrium" create slow --template terraform-local -y \
  --parameter sleep_seconds=30 </dev/null >"$tmp/slow.out" 2>"$tmp/slow.err" &
slow_pid=$!
bg_pids+=("$slow_pid")
for _ in $(seq 600); do
  grep -q "sleeping 30s" "$tmp/slow.out" && break
  kill -0 "$slow_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q "sleeping 30s" "$tmp/slow.out" || { cat "$tmp/slow.out" "$tmp/slow.err"; fail "the slow start did not begin"; }
# Another build while this one runs: 409, nothing queued.
run stop slow
expect_rc 1 "stop while the start runs"
slow_id=$(ws_json slow | jv 'j["id"]')
api_post "/api/v2/workspaces/$slow_id/builds" '{"transition": "stop"}' >/dev/null
[ "$(status)" = 409 ] || fail "a build while one runs: HTTP $(status), wanted 409"
[ "$(nbuilds slow)" = 1 ] || fail "a build was queued while one ran"
# Ctrl-C stops following, not the build.
kill -INT "$slow_pid"
set +e; wait "$slow_pid"; slow_rc=$?; set -e
cat "$tmp/slow.out" "$tmp/slow.err" >>"$tmp/shown"
[ "$slow_rc" = 130 ] || fail "Ctrl-C while following: exit $slow_rc"
grep -q 'Run `atrium cancel slow` to cancel it' "$tmp/slow.err" || fail "Ctrl-C: the hint"
[ "$(ws_json slow | jv 'j["latest_build"]["job"]["status"]')" = running ] ||
  fail "Ctrl-C stopped the build"
t0=$(date +%s)
run cancel slow
expect_rc 0 "cancel"
out_has '^Canceling build 1 \(start\) of slow\.$' "cancel: first line"
err_has '^Build 1 \(start\) canceled' "cancel: the end"
[ $(($(date +%s) - t0)) -le 15 ] || fail "cancel took $(($(date +%s) - t0))s"
ws_json slow >"$tmp/ws.json"
[ "$(jv 'j["latest_build"]["status"], j["latest_build"]["job"]["status"]' <"$tmp/ws.json")" = "('canceled', 'canceled')" ] ||
  fail "after cancel: $(cat "$tmp/ws.json")"
[ -d "$root/admin/slow" ] || fail "cancel lost the directory the build had made"
# The canceled build kept a state (what terraform saved on SIGINT): the
# home directory it had made is in it.
slow_build1=$(ws_json slow | jv 'j["latest_build"]["id"]')
api GET "/api/v2/workspacebuilds/$slow_build1/state" >"$tmp/state.json"
[ "$(status)" = 200 ] || fail "state of the canceled build: HTTP $(status)"
grep -q '"terraform_data"' "$tmp/state.json" && grep -q '"home"' "$tmp/state.json" ||
  fail "the canceled build's state lacks terraform_data.home: $(head -c 400 "$tmp/state.json")"
run start slow --parameter sleep_seconds=0
expect_rc 0 "start after cancel"
out_has '^Build 2 \(start\) succeeded' "start after cancel"
[ -f "$root/admin/slow/running" ] || fail "start after cancel: no running marker"
run cancel slow
expect_rc 1 "cancel a finished build"

# ---- policies: deny, warn and set through the CLI -------------------------------
step "policies"
run create nope --template terraform-local -y --parameter greeting=forbidden
expect_rc 1 "create denied by policy"
err_has 'Denied by policy' "deny: the message"
err_has 'greetings.lua: that greeting is not allowed here' "deny: policy and reason"
err_has 'greeting: that greeting is not allowed here' "deny: the field"
run create warned --template terraform-local -y --parameter greeting=hi
expect_rc 0 "create warned"
err_has '^warning \(greetings.lua\): say hello, not hi$' "warning printed"
run create replaced --template terraform-local -y --parameter greeting=yo
expect_rc 0 "create with a value the policy replaces"
grep -q '"hello"' "$root/admin/replaced/parameters.json" ||
  fail "the policy's value did not reach the workspace: $(cat "$root/admin/replaced/parameters.json")"
api GET "/api/v2/audit?action=policy&limit=100" >"$tmp/audit.json"
[ "$(jv 'len([e for e in j["audit_logs"] if e["action"] == "policy"])' <"$tmp/audit.json")" -ge 3 ] ||
  fail "policy decisions are not all audited: $(head -c 600 "$tmp/audit.json")"
run create stayup --template terraform-local -y --parameter greeting=stay-up
expect_rc 0 "create stayup"
run stop stayup
expect_rc 1 "stop denied by policy"
err_has 'greetings.lua: this workspace stays up' "build deny: policy and reason"
run delete stayup -y
expect_rc 0 "delete stayup"
run delete warned -y
expect_rc 0 "delete warned"
run delete replaced -y
expect_rc 0 "delete replaced"

# ---- a start that fails --------------------------------------------------------
step "failing start"
run create broken --template terraform-local -y --parameter fail=true
expect_rc 1 "create broken"
err_has '^Build 1 \(start\) failed in [0-9.]+s' "create broken: the end"
[ "$(ws_json broken | jv 'j["latest_build"]["status"]')" = failed ] || fail "broken is not failed"
# The failed apply's state was saved: the home directory made before the
# failing step is in it, so the next build knows about it.
broken_build1=$(ws_json broken | jv 'j["latest_build"]["id"]')
api GET "/api/v2/workspacebuilds/$broken_build1/state" >"$tmp/state.json"
[ "$(status)" = 200 ] || fail "state of the failed build: HTTP $(status)"
grep -q '"home"' "$tmp/state.json" ||
  fail "the failed build's state lacks terraform_data.home: $(head -c 400 "$tmp/state.json")"
run logs broken
expect_rc 0 "logs broken"
grep -q "failing on purpose because fail is true" "$tmp/out" || fail "logs: why it failed"
err_has '^Build 1 \(start\) failed: ' "logs: the error"
run logs broken --build 7
expect_rc 1 "logs of a build that does not exist"
run logs dev --build 2
expect_rc 0 "logs --build 2"
run logs dev -f
expect_rc 0 "logs -f of an ended build"
out_has '^Build 3 \(start\) succeeded' "logs -f: the end"

# ---- nothing sensitive anywhere ----------------------------------------------
step "leaks"
for b in $(builds_of dev | jv '" ".join(x["id"] for x in j)'); do
  api GET "/api/v2/workspacebuilds/$b/logs" >>"$tmp/all-logs.json"
done
grep -q "terraform-local: workspace dev is running" "$tmp/all-logs.json" || fail "no build logs to check"
if grep -qF -- "$secret" "$tmp/all-logs.json"; then fail "the sensitive value is in the build logs"; fi
if grep -qF -- "$secret" "$tmp/shown"; then fail "the CLI printed the sensitive value"; fi
if grep -qF -- "$secret" "$tmp/server.log"; then fail "the sensitive value is in the server log"; fi
for s in "$password" "${token#*-}"; do
  if grep -qF -- "$s" "$tmp/shown" "$tmp/server.log"; then fail "a password or token leaked"; fi
done

# ---- 20 workspaces at once -----------------------------------------------------
step "20 at once"
pids=()
for i in $(seq 1 20); do
  "$atrium" create "c$i" --template terraform-local -y \
    </dev/null >"$tmp/c$i.out" 2>"$tmp/c$i.err" &
  pids+=("$!")
done
bg_pids+=("${pids[@]}")
for i in $(seq 1 20); do
  set +e; wait "${pids[$((i - 1))]}"; crc=$?; set -e
  cat "$tmp/c$i.out" "$tmp/c$i.err" >>"$tmp/shown"
  [ "$crc" = 0 ] || { cat "$tmp/c$i.out" "$tmp/c$i.err"; fail "create c$i: exit $crc"; }
done
api GET "/api/v2/workspaces?owner=me&limit=100" >"$tmp/all.json"
python3 - "$tmp/all.json" "$root" <<'PY' || fail "20 at once"
import json, os, sys
ws = {w["name"]: w for w in json.load(open(sys.argv[1]))["workspaces"]}
jobs = set()
for i in range(1, 21):
    w = ws.get("c%d" % i)
    assert w, "c%d is not listed" % i
    b = w["latest_build"]
    assert b["build_number"] == 1 and b["status"] == "running", (w["name"], b["build_number"], b["status"])
    assert b["job"]["status"] == "succeeded" and b["job"]["worker_id"], (w["name"], b["job"])
    assert b["job"]["id"] not in jobs, "two builds share job %s" % b["job"]["id"]
    jobs.add(b["job"]["id"])
    assert os.path.isfile(os.path.join(sys.argv[2], "admin", w["name"], "running")), w["name"]
PY
for i in 1 7 20; do
  [ "$(nbuilds "c$i")" = 1 ] || fail "c$i has more than one build"
done
# Each of those jobs was taken by one daemon, once (the server logs each
# claim as "daemon N runs workspace_build job ID").
for job in $(jv '" ".join(w["latest_build"]["job"]["id"] for w in j["workspaces"] if w["name"].startswith("c"))' <"$tmp/all.json"); do
  n=$(grep -c "runs workspace_build job $job" "$tmp/server.log" || true)
  [ "$n" = 1 ] || fail "job $job was claimed $n times"
done

# ---- delete ---------------------------------------------------------------------
step "delete"
run delete dev
expect_rc 1 "delete without -y and without a terminal"
err_has "give -y" "delete: refusal"
[ -d "$dir" ] || fail "a refused delete removed the directory"
run delete dev -y
expect_rc 0 "delete"
out_has '^Build 4 \(delete\) succeeded in [0-9.]+s$' "delete"
[ ! -e "$dir" ] || fail "delete left $dir"
ws=$(api GET "/api/v2/workspaces/$ws_id")
if [ "$(status)" = 200 ]; then
  [ "$(jv 'j["deleted"]' <<<"$ws")" = True ] || fail "dev is not deleted: $ws"
fi
run list
grep -Eq '^dev ' "$tmp/out" && fail "list still shows dev"
run delete c1 -y --orphan
expect_rc 0 "delete --orphan"
[ -d "$root/admin/c1" ] || fail "delete --orphan removed the directory"
run show c1
expect_rc 1 "show a deleted workspace"

# The sensitive value, once more, after everything.
if grep -qF -- "$secret" "$tmp/shown" "$tmp/server.log"; then fail "the sensitive value leaked"; fi
step "PASS"
echo "PASS"
