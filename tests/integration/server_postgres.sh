#!/usr/bin/env bash
# `atrium server` on PostgreSQL: it migrates on start, /readyz answers 200;
# while the database is down /readyz answers 503 with the JSON error shape
# and /healthz still 200; once the database is back /readyz is 200 again.
#   server_postgres.sh ATRIUM_BIN PLUGIN_DIR PG_SCRIPT PG_DIR
set -euo pipefail
# The server's log is read as text below (not a terminal: JSON by default).
export ATRIUM_LOG_FORMAT=text
atrium=$1 plugins=$2 pg=$3 pgdir=$4
tmp=$(mktemp -d /tmp/atrium-srvpg-XXXXXX)
server=
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  bash "$pg" stop "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
bash "$pg" start "$pgdir" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/atrium.yaml" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins]
http:
  address: 127.0.0.1:$port
plugins:
  storage_postgres:
    enabled: true
    dsn: "$(cat "$pgdir/dsn")"
    connect_timeout: 2s
    acquire_timeout: 2s
YAML
"$atrium" server --config "$tmp/atrium.yaml" >"$tmp/log" 2>&1 &
server=$!
url=http://127.0.0.1:$port
for _ in $(seq 1 100); do
  curl -fsS "$url/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
code() { curl -s -o "$tmp/body" -w '%{http_code}' "$url$1"; }
[ "$(code /readyz)" = 200 ] || { echo "FAIL: /readyz before the outage"; cat "$tmp/log"; exit 1; }
# migrated on start (on a reused cluster, by an earlier run)
if "$atrium" db status --config "$tmp/atrium.yaml" | grep -q pending; then
  echo "FAIL: migrations pending after the server started"; cat "$tmp/log"; exit 1
fi

bash "$pg" stop "$pgdir" >/dev/null
[ "$(code /readyz)" = 503 ] || { echo "FAIL: /readyz during the outage: $(cat "$tmp/body")"; exit 1; }
grep -q '"message":"The server is not ready."' "$tmp/body" || { echo "FAIL: 503 body: $(cat "$tmp/body")"; exit 1; }
[ "$(code /healthz)" = 200 ] || { echo "FAIL: /healthz during the outage"; exit 1; }

bash "$pg" start "$pgdir" >/dev/null
ok=no
for _ in $(seq 1 50); do
  if [ "$(code /readyz)" = 200 ]; then ok=yes; break; fi
  sleep 0.2
done
[ $ok = yes ] || { echo "FAIL: /readyz after the database came back: $(cat "$tmp/body")"; cat "$tmp/log"; exit 1; }
if grep -q "password=" "$tmp/log"; then echo "FAIL: the DSN reached the log"; exit 1; fi

kill -TERM "$server"
wait "$server" && status=0 || status=$?
server=
[ "$status" = 0 ] || { echo "FAIL: exit status $status after SIGTERM"; exit 1; }
echo PASS
