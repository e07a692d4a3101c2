#!/usr/bin/env bash
# A real Prometheus server scrapes a real `atrium server` with the
# observer_prometheus plugin, with packaging/observability's alert rules
# loaded:
#  - the scrape itself: content type, the families with HELP and TYPE, API
#    requests by route template (never a raw id), the plugin list, process
#    metrics, and `promtool check metrics` on it;
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
cat >"$tmp/atrium.yaml" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins]
plugins:
  storage_sqlite:
    enabled: true
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
