#!/usr/bin/env bash
# An observer plugin receives the core's events: a real `atrium server` with
# the echo provisioner and the fixture observer observer_record (which
# appends "<type> <json>" per event to a file). A first user signs up, a
# template is pushed and a workspace created; the observer must have
# received audit entries (the login, the workspace), the build's end (transition start, succeeded)
# and the completion of its job.
#   observer_events.sh ATRIUM_BIN PLUGIN_DIR OBSERVER_SO
set -euo pipefail
export ATRIUM_LOG_FORMAT=text
atrium=$1 plugins=$2 observer_so=$3
tmp=$(mktemp -d /tmp/atrium-observer-XXXXXX)
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
  echo "--- events:"; cat "$tmp/events.txt" 2>/dev/null || true
  echo "--- server log (last lines):"; tail -n 30 "$tmp/server.log" 2>/dev/null || true
  exit 1
}
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
unset ATRIUM_URL ATRIUM_SESSION_TOKEN XDG_CONFIG_HOME
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^ATRIUM_' || true)
export ATRIUM_LOG_FORMAT=text
export ATRIUM_CONFIG_DIR=$tmp/config/atrium
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port

# The loader refuses a group-writable plugin directory entry: a private copy.
mkdir -p "$tmp/fixtures"
cp "$observer_so" "$tmp/fixtures/observer_record.so"
chmod 0755 "$tmp/fixtures" && chmod 0644 "$tmp/fixtures/observer_record.so"

cat >"$tmp/atrium.yaml" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins, $tmp/fixtures]
provisioner:
  daemons: 1
plugins:
  storage_sqlite:
    enabled: true
  auth_password:
    enabled: true
    memory_cost: 8MiB
    time_cost: 1
  provisioner_echo:
    enabled: true
  observer_record:
    enabled: true
    output: $tmp/events.txt
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

run() {
  set +e
  printf '%s' "${input:-}" | "$atrium" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
}
input="Observer-Test-pw-$RANDOM$RANDOM
" run login "$url" --first-user --username ops --email ops@example.com --password-stdin
[ "$rc" = 0 ] || fail "first user: exit status $rc"

mkdir -p "$tmp/template"
cat >"$tmp/template/template.yaml" <<YAML
name: dev
provisioner: echo
parameters:
  - name: region
    type: string
    default: here
YAML
echo "echo files" >"$tmp/template/main.txt"
input="" run templates push "$tmp/template" --name dev -y
[ "$rc" = 0 ] || fail "templates push: exit status $rc"
input="" run create box --template dev -y
[ "$rc" = 0 ] || fail "create box: exit status $rc"

# create waits for the build; the events were handed over before the job's
# end was visible, so they are in the file now. Allow a moment anyway for
# the job_completed line, written after the build's line.
for _ in $(seq 50); do
  grep -q '^job_completed .*"type":"workspace_build"' "$tmp/events.txt" 2>/dev/null && break
  sleep 0.1
done

python3 - "$tmp/events.txt" <<'PY' || fail "the observer's events are wrong (above)"
import json, sys
events = []
for line in open(sys.argv[1]):
    kind, _, body = line.rstrip("\n").partition(" ")
    events.append((kind, json.loads(body)))
def find(kind, **want):
    for k, e in events:
        if k == kind and all(e.get(f) == v for f, v in want.items()):
            return e
    sys.exit("no %s event with %r among:\n%s" % (kind, want, "\n".join(
        "%s %s" % (k, json.dumps(e, sort_keys=True)) for k, e in events)))
find("audit", action="login", resource_type="user", status_code=201)
find("audit", resource_type="workspace", action="create")
b = find("build", transition="start", status="succeeded", workspace_name="box",
         build_number=1)
assert len(b["build_id"]) == 36, b
find("job_completed", type="workspace_build", result="succeeded",
     provisioner="echo")
find("job_completed", type="template_version_import", result="succeeded")
print("observer: ok (%d events)" % len(events))
PY
echo "PASS"
