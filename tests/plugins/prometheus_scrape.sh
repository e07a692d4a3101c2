#!/usr/bin/env bash
# A real Prometheus server scrapes a real `atrium server` with the
# observer_prometheus plugin, with packaging/observability's alert rules
# loaded:
#  - the scrape itself: content type, the families with HELP and TYPE, API
#    requests by route template (never a raw id), the plugin list, process
#    metrics, and `promtool check metrics` on it;
#  - before it, an integration run (password sign-in, provisioner_echo, a
#    deployment policy): first user, a template pushed and imported, a
#    workspace started (the policy warns), a stop the policy denies (403);
#    the scrape has their builds, job durations, policy decisions and
#    database statements;
#  - Prometheus (Debian package prometheus, on 127.0.0.1, scraping every
#    1s, storage in a temp dir) answers /api/v1/query for atrium_build_info
#    and atrium_api_requests_total, the target is healthy and every alert
#    rule evaluates without error;
#  - after the server stops, up turns 0 and AtriumServerDown goes pending.
# Both processes are stopped by PID.
#   prometheus_scrape.sh ATRIUM_BIN PLUGIN_DIR SOURCE_DIR
# Exits 77 (skipped) when prometheus or promtool is missing.
set -euo pipefail
atrium=$1 plugins=$2 src=$3
for tool in prometheus promtool; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: $tool is missing (Debian package prometheus); atrium was not scraped by a real Prometheus"
    exit 77
  fi
done
tmp=$(mktemp -d /tmp/atrium-prometheus-XXXXXX)
server_pid=
prom_pid=
stop() { # PID: SIGTERM, then wait for it
  [ -n "$1" ] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop "$prom_pid"
  stop "$server_pid"
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  echo "--- server log (last 20 lines):"; tail -n 20 "$tmp/server.log" 2>/dev/null || true
  echo "--- prometheus log (last 20 lines):"; tail -n 20 "$tmp/prometheus.log" 2>/dev/null || true
  exit 1
}
pass=0
ok() { pass=$((pass + 1)); echo "ok: $*"; }

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
url=http://127.0.0.1:$port

# ---- atrium with the plugin on a port of its choosing ------------------------
# A deployment policy: warns on every workspace creation, denies stops.
mkdir -p "$tmp/policies"
cat >"$tmp/policies/scrape.lua" <<'LUA'
function workspace_create(input) policy.warn("hello") end
function build(input)
  if input.transition == "stop" then policy.deny("no stopping here") end
end
LUA
cat >"$tmp/atrium.yaml" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins]
policy:
  files: [$tmp/policies/*.lua]
plugins:
  storage_sqlite:
    enabled: true
  auth_password:
    enabled: true
  provisioner_echo:
    enabled: true
    delay: 0s
  observer_prometheus:
    enabled: true
    listen_address: 127.0.0.1:0
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
metrics=$(grep -o 'serving metrics on http://127\.0\.0\.1:[0-9]*/metrics' "$tmp/server.log" |
  head -n 1 | sed 's/^serving metrics on //')
[ -n "$metrics" ] || fail "no 'serving metrics on' line in the server log"
mport=$(echo "$metrics" | sed 's|^http://127\.0\.0\.1:\([0-9]*\)/metrics$|\1|')
ok "the plugin serves $metrics"

# Requests the scrape must count: a success, a 401, a 404 and a route with
# an id in its path.
curl -fsS "$url/api/v2/buildinfo" >/dev/null
code=$(curl -sS -o /dev/null -w '%{http_code}' "$url/api/v2/users/me")
[ "$code" = 401 ] || fail "GET /api/v2/users/me without a session: $code, wanted 401"
curl -sS -o /dev/null "$url/no/such/path"
curl -sS -o /dev/null "$url/api/v2/workspaces/6c4cf7e2-3f0b-4d55-9d2a-0f6f4a1f7c11"

# ---- an integration run: first user, template, workspace, policies -----------
# api METHOD PATH [JSON]: the answer's body into $tmp/api.json, the status on
# stdout.
api() {
  local data=()
  [ $# -lt 3 ] || data=(-H "Content-Type: application/json" -d "$3")
  curl -sS -X "$1" ${token:+-H "Atrium-Session-Token: $token"} "${data[@]}" \
    -o "$tmp/api.json" -w '%{http_code}' "$url$2"
}
# field EXPR: a Python expression over $tmp/api.json (as j).
field() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$tmp/api.json" "$1"; }
password="Scrape-$RANDOM$RANDOM-pw"
token=
code=$(api POST /api/v2/users/first \
  "{\"email\":\"admin@example.com\",\"username\":\"admin\",\"password\":\"$password\"}")
[ "$code" = 201 ] || fail "POST /api/v2/users/first: $code $(cat "$tmp/api.json")"
org=$(field 'j["organization_id"]')
code=$(api POST /api/v2/users/login "{\"email\":\"admin@example.com\",\"password\":\"$password\"}")
[ "$code" = 201 ] || fail "POST /api/v2/users/login: $code $(cat "$tmp/api.json")"
token=$(field 'j["session_token"]')

mkdir -p "$tmp/template"
printf 'name: t\nprovisioner: echo\nparameters:\n  - name: cpus\n    type: number\n    default: 1\n    mutable: true\n' \
  >"$tmp/template/template.yaml"
tar -C "$tmp/template" -czf "$tmp/template.tar.gz" template.yaml
code=$(curl -sS -X POST -H "Atrium-Session-Token: $token" -H "Content-Type: application/gzip" \
  --data-binary @"$tmp/template.tar.gz" -o "$tmp/api.json" -w '%{http_code}' "$url/api/v2/files")
case $code in 200 | 201) ;; *) fail "POST /api/v2/files: $code $(cat "$tmp/api.json")" ;; esac
file_id=$(field 'j["hash"]')
code=$(api POST "/api/v2/organizations/$org/templateversions" "{\"file_id\":\"$file_id\"}")
[ "$code" = 201 ] || fail "POST templateversions: $code $(cat "$tmp/api.json")"
version=$(field 'j["id"]')
for _ in $(seq 150); do
  api GET "/api/v2/templateversions/$version" >/dev/null
  jstatus=$(field 'j["job"]["status"]')
  case $jstatus in succeeded | failed | canceled) break ;; esac
  sleep 0.1
done
[ "$jstatus" = succeeded ] || fail "the template import: $jstatus $(cat "$tmp/api.json")"
code=$(api POST "/api/v2/organizations/$org/templates" \
  "{\"name\":\"t\",\"template_version_id\":\"$version\"}")
[ "$code" = 201 ] || fail "POST templates: $code $(cat "$tmp/api.json")"
template_id=$(field 'j["id"]')
ok "a template imported by the echo provisioner"

code=$(api POST /api/v2/users/me/workspaces "{\"name\":\"w\",\"template_id\":\"$template_id\"}")
[ "$code" = 201 ] || fail "POST /api/v2/users/me/workspaces: $code $(cat "$tmp/api.json")"
grep -q hello "$tmp/api.json" || fail "the policy's warning is not in the answer: $(cat "$tmp/api.json")"
workspace=$(field 'j["id"]')
for _ in $(seq 150); do
  api GET "/api/v2/workspaces/$workspace" >/dev/null
  wstatus=$(field 'j["latest_build"]["status"]')
  case $wstatus in running | failed | canceled) break ;; esac
  sleep 0.1
done
[ "$wstatus" = running ] || fail "the workspace build: $wstatus $(cat "$tmp/api.json")"
ok "a workspace started, with the policy's warning"
code=$(api POST "/api/v2/workspaces/$workspace/builds" '{"transition":"stop"}')
[ "$code" = 403 ] || fail "POST builds stop: $code, wanted 403 (policy deny): $(cat "$tmp/api.json")"
grep -q 'no stopping here' "$tmp/api.json" || fail "the deny message: $(cat "$tmp/api.json")"
ok "the policy denies a stop with 403"

# ---- the scrape ----------------------------------------------------------------
curl -fsS -D "$tmp/headers" -o "$tmp/scrape.txt" "$metrics" || fail "GET $metrics"
grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$tmp/headers" ||
  fail "content type: $(grep -i '^Content-Type' "$tmp/headers")"
has() { grep -qxF -- "$1" "$tmp/scrape.txt" || fail "the scrape lacks the line: $1"; }
has '# TYPE atrium_build_info gauge'
has '# TYPE atrium_api_requests_total counter'
has '# TYPE atrium_api_request_duration_seconds histogram'
has 'atrium_api_requests_total{method="GET",route="/api/v2/buildinfo",code="200"} 1'
has 'atrium_api_requests_total{method="GET",route="/api/v2/users/{user}",code="401"} 1'
has 'atrium_api_requests_total{method="GET",route="/api/v2/workspaces/{workspace}",code="401"} 1'
has 'atrium_api_requests_total{method="GET",route="unmatched",code="404"} 1'
has 'atrium_plugin_info{name="storage_sqlite",kind="storage",version="1.0.0"} 1'
has 'atrium_plugin_info{name="observer_prometheus",kind="observer",version="1.0.0"} 1'
for family in process_cpu_seconds_total process_resident_memory_bytes \
  process_open_fds process_max_fds process_start_time_seconds; do
  grep -q "^# HELP $family " "$tmp/scrape.txt" || fail "no HELP for $family"
  grep -q "^# TYPE $family " "$tmp/scrape.txt" || fail "no TYPE for $family"
done
if grep -Eq 'route="[^"]*[0-9a-f]{8}-[0-9a-f]{4}-' "$tmp/scrape.txt"; then
  fail "a route label holds a raw id: $(grep -E 'route="[^"]*[0-9a-f]{8}-' "$tmp/scrape.txt" | head -n 1)"
fi
ok "the scrape has the families, the request counts and route templates"
# What the integration run left in the scrape. The sampled gauges
# (atrium_provisioner_jobs, atrium_workspaces) refresh every 10 s: not required.
# sample_ge REGEX MIN: some sample line matching ^REGEX has a value >= MIN.
sample_ge() {
  awk -v re="^$1 " -v min="$2" '$0 ~ re && $NF + 0 >= min + 0 { found = 1 } END { exit !found }' \
    "$tmp/scrape.txt" || fail "no sample /$1/ >= $2: $(grep -F -- "${1%%[^a-z_]*}" "$tmp/scrape.txt" | grep -v "^#" | head -n 8)"
}
has '# TYPE atrium_workspace_builds_total counter'
sample_ge 'atrium_workspace_builds_total\{transition="start",result="succeeded"\}' 1
has '# TYPE atrium_provisioner_job_duration_seconds histogram'
sample_ge 'atrium_provisioner_job_duration_seconds_count\{type="template_version_import",result="succeeded"\}' 1
sample_ge 'atrium_provisioner_job_duration_seconds_count\{type="workspace_build",result="succeeded"\}' 1
has '# TYPE atrium_policy_decisions_total counter'
sample_ge 'atrium_policy_decisions_total\{hook="workspace_create",result="warn"\}' 1
sample_ge 'atrium_policy_decisions_total\{hook="build",result="deny"\}' 1
has '# TYPE atrium_db_query_duration_seconds histogram'
sample_ge 'atrium_db_query_duration_seconds_count' 1
ok "the scrape counts the builds, jobs, policy decisions and database statements"
promtool check metrics <"$tmp/scrape.txt" >"$tmp/promtool.txt" 2>&1 ||
  fail "promtool check metrics: $(cat "$tmp/promtool.txt")"
ok "promtool check metrics passes"

# ---- a real Prometheus ----------------------------------------------------------
pport=$(free_port)
prom=http://127.0.0.1:$pport
cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $src/packaging/observability/atrium-alerts.yaml
scrape_configs:
  - job_name: atrium
    static_configs:
      - targets: ["127.0.0.1:$mport"]
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
  --web.listen-address="127.0.0.1:$pport" --log.level=warn \
  >"$tmp/prometheus.log" 2>&1 &
prom_pid=$!

# query PROMQL: the API's JSON answer on stdout.
query() {
  curl -fsS -G --data-urlencode "query=$1" "$prom/api/v1/query" 2>/dev/null || true
}
# jv EXPR: a Python expression over the JSON on stdin (as j); "" on bad JSON.
jv() {
  python3 -c 'import json,sys
try: j=json.load(sys.stdin)
except Exception: print(""); sys.exit(0)
print(eval(sys.argv[1]))' "$1"
}
# wait_for SECONDS PROMQL EXPR WANT: poll until EXPR over the answer is WANT.
wait_for() {
  local got=
  for _ in $(seq $(($1 * 5))); do
    kill -0 "$prom_pid" 2>/dev/null || fail "prometheus exited"
    got=$(query "$2" | jv "$3" 2>/dev/null || true)
    [ "$got" = "$4" ] && return 0
    sleep 0.2
  done
  fail "$2: after $1s, $3 is '$got', wanted '$4'"
}
first='j["data"]["result"][0]'
wait_for 30 'atrium_build_info' "$first[\"metric\"][\"job\"] if j[\"data\"][\"result\"] else \"\"" atrium
version=$(query 'atrium_build_info' | jv "$first[\"metric\"][\"version\"]")
[ -n "$version" ] || fail "atrium_build_info has no version label"
ok "Prometheus answers atrium_build_info (version $version)"
wait_for 10 'atrium_api_requests_total{route="/api/v2/buildinfo",code="200"}' \
  "$first[\"value\"][1] if j[\"data\"][\"result\"] else \"\"" 1
ok "Prometheus answers atrium_api_requests_total"
wait_for 10 'up{job="atrium"}' "$first[\"value\"][1] if j[\"data\"][\"result\"] else \"\"" 1
health=$(curl -fsS "$prom/api/v1/targets" | jv '[(t["health"], t["lastError"]) for t in j["data"]["activeTargets"]]')
[ "$health" = "[('up', '')]" ] || fail "targets: $health"
ok "the target is up without scrape errors"

# Every alert rule has been evaluated, without error, and none fires.
rules_state() {
  curl -fsS "$prom/api/v1/rules" 2>/dev/null |
    jv 'sorted(set((r["health"], r.get("lastError", ""), r["state"]) for g in j["data"]["groups"] for r in g["rules"]))'
}
for _ in $(seq 50); do
  state=$(rules_state)
  [ "$state" = "[('ok', '', 'inactive')]" ] && break
  sleep 0.2
done
[ "$state" = "[('ok', '', 'inactive')]" ] || fail "rules: $state"
nrules=$(curl -fsS "$prom/api/v1/rules" | jv 'sum(len(g["rules"]) for g in j["data"]["groups"])')
[ "$nrules" = 6 ] || fail "Prometheus loaded $nrules rules, wanted 6"
ok "the 6 alert rules evaluate without error and none fires"

# ---- the server goes away --------------------------------------------------------
stop "$server_pid"
server_pid=
wait_for 15 'up{job="atrium"}' "$first[\"value\"][1] if j[\"data\"][\"result\"] else \"\"" 0
for _ in $(seq 50); do
  alerts=$(curl -fsS "$prom/api/v1/alerts" | jv '[(a["labels"]["alertname"], a["state"]) for a in j["data"]["alerts"]]')
  [ "$alerts" = "[('AtriumServerDown', 'pending')]" ] && break
  sleep 0.2
done
[ "$alerts" = "[('AtriumServerDown', 'pending')]" ] || fail "alerts after the server stopped: $alerts"
ok "after the server stopped, up is 0 and AtriumServerDown is pending"

stop "$prom_pid"
prom_pid=
echo "$pass passed, 0 failed"
