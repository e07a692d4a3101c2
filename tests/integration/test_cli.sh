#!/usr/bin/env bash
# The client commands (login, logout, whoami, users, tokens) against a real
# `atrium server` on SQLite with password sign-in: what a user types, what
# they see, the exit status, the session file and its modes, and that the
# password and session tokens never show up in any output or the server log.
#   test_cli.sh ATRIUM_BIN PLUGIN_DIR [PGDIR]
# With PGDIR (scripts/dev/postgres.sh's directory) it runs on PostgreSQL,
# on an emptied public schema, instead of SQLite.
set -euo pipefail
# The server's log is read as text below (not a terminal: JSON by default).
export ATRIUM_LOG_FORMAT=text
atrium=$1 plugins=$2 pgdir=${3:-}
tmp=$(mktemp -d /tmp/atrium-cli-XXXXXX)
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
  exit 1
}

unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy
unset ATRIUM_URL ATRIUM_SESSION_TOKEN XDG_CONFIG_HOME
export ATRIUM_CONFIG_DIR=$tmp/config/atrium
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
password="Canary-$RANDOM$RANDOM-pw"
other_password="Other-$RANDOM$RANDOM-pw"

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
cat >"$tmp/atrium.yaml" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins]
plugins:
$storage
  auth_password:
    enabled: true
YAML
# http_get PATH [TOKEN]: the body (of any status) on stdout; fails when the
# server does not answer.
http_get() {
  python3 - "$url$1" "${2:-}" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
if sys.argv[2]:
    req.add_header("Atrium-Session-Token", sys.argv[2])
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    body = opener.open(req, timeout=5).read()
except urllib.error.HTTPError as e:
    body = e.read()
sys.stdout.write(body.decode())
PY
}

"$atrium" server --config "$tmp/atrium.yaml" --http.address="127.0.0.1:$port" \
  >"$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 150); do
  [ "$(http_get /healthz 2>/dev/null)" = OK ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log"; fail "server exited"; }
  sleep 0.1
done
[ "$(http_get /healthz 2>/dev/null)" = OK ] || fail "server did not start"

# run ARGS...: stdin from $input (empty when unset); stdout, stderr and the
# exit status into $tmp/out, $tmp/err and $rc; everything shown is kept in
# $tmp/shown for the leak checks at the end.
run() {
  set +e
  printf '%s' "${input:-}" | "$atrium" "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  set -e
  cat "$tmp/out" "$tmp/err" >>"$tmp/shown"
}
expect_rc() { [ "$rc" = "$1" ] || fail "$2: exit status $rc, wanted $1"; }
expect_out() { grep -qxF -- "$1" "$tmp/out" || fail "$2: stdout lacks the line \"$1\""; }
expect_err() { grep -qxF -- "$1" "$tmp/err" || fail "$2: stderr lacks the line \"$1\""; }
json_get() { python3 -c 'import json,sys; print(eval("j"+sys.argv[2], {"j": json.load(open(sys.argv[1]))}))' "$1" "$2"; }

# ---- before signing in ------------------------------------------------------
run whoami
expect_rc 1 "whoami before login"
grep -q "you are not signed in" "$tmp/err" || fail "whoami before login says why"

run login "$url" --bogus
expect_rc 2 "unknown flag"
expect_err "atrium login: unknown flag --bogus" "unknown flag"

run users show
expect_rc 2 "users show without USER"
grep -q "missing argument" "$tmp/err" || fail "users show: missing argument"

run users frobnicate
expect_rc 2 "unknown users command"
expect_err 'atrium users: unknown command "frobnicate"' "unknown users command"

run tokens create --lifetime 3x
expect_rc 2 "bad lifetime"
grep -q -- "--lifetime 3x is not a duration" "$tmp/err" || fail "bad lifetime: message"

input="" run login "$url" --email admin@example.com
expect_rc 2 "no password on stdin"
grep -q "no password on standard input" "$tmp/err" || fail "no password: message"

input="$password" run login "$url"
expect_rc 2 "no --email when stdin is not a terminal"
grep -q -- "give --email" "$tmp/err" || fail "no --email: message"

# ---- the first user, signed in with the password on stdin ------------------
input="$password" run login "$url" --first-user --username admin \
  --email admin@example.com --name "Ada Admin"
expect_rc 0 "first user + login"
expect_out "Created the first user, admin." "first user"
expect_out "Signed in to $url as admin" "first user login"

session=$ATRIUM_CONFIG_DIR/session.json
[ -f "$session" ] || fail "no session file at $session"
[ "$(stat -c %a "$session")" = 600 ] || fail "session file mode $(stat -c %a "$session")"
[ "$(stat -c %a "$ATRIUM_CONFIG_DIR")" = 700 ] || fail "config dir mode"
[ "$(json_get "$session" '["url"]')" = "$url" ] || fail "session file url"
token=$(json_get "$session" '["session_token"]')
[[ "$token" =~ ^[A-Za-z0-9]{10}-[A-Za-z0-9]{22}$ ]] || fail "session token shape"
grep -qF -- "$password" "$session" && fail "the password is in the session file"

# ---- who am I -------------------------------------------------------------
run whoami
expect_rc 0 "whoami"
[ "$(cat "$tmp/out")" = "admin (admin@example.com) roles: owner" ] ||
  fail "whoami prints \"$(cat "$tmp/out")\""

run whoami --output json
expect_rc 0 "whoami json"
[ "$(json_get "$tmp/out" '["username"]')" = admin ] || fail "whoami json username"
[ "$(json_get "$tmp/out" '["name"]')" = "Ada Admin" ] || fail "whoami json name"
[ "$(json_get "$tmp/out" '["roles"][0]["name"]')" = owner ] || fail "whoami json roles"

run users show me
expect_rc 0 "users show me"
head -n1 "$tmp/out" | grep -q "^USERNAME  *EMAIL  *STATUS  *ROLES  *CREATED AT$" ||
  fail "users show: header"
sed -n 2p "$tmp/out" | grep -Eq "^admin +admin@example.com +active +owner +[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$" ||
  fail "users show: row"

run users show admin -o json
expect_rc 0 "users show json"
[ "$(json_get "$tmp/out" '["email"]')" = admin@example.com ] || fail "users show json"

# An error answer: the server's message, then its detail.
http_get /api/v2/users/nobody "$token" >"$tmp/answer.json"
message=$(json_get "$tmp/answer.json" '["message"]')
detail=$(json_get "$tmp/answer.json" '["detail"]')
if [ -z "$message" ] || [ -z "$detail" ]; then fail "no message and detail to compare"; fi
run users show nobody
expect_rc 1 "users show nobody"
[ "$(cat "$tmp/err")" = "atrium users show: $message
$detail" ] || fail "users show nobody: the server's message and detail"

# ---- a bad password --------------------------------------------------------
input="$other_password" run login "$url" --email admin@example.com
expect_rc 1 "bad password"
expect_err "atrium login: Incorrect email or password." "bad password"
[ "$(json_get "$session" '["session_token"]')" = "$token" ] ||
  fail "a failed login replaced the stored session"

# ---- users -----------------------------------------------------------------
input="$other_password" run users create --email not-an-email --username bob
expect_rc 1 "users create with a bad email"
expect_err "atrium users create: Validation failed." "validation message"
expect_err "  email: Must be a valid email address." "validation field"

input="$other_password" run users create --email bob@example.com --username bob --name Bob
expect_rc 0 "users create"
expect_out "Created user bob (bob@example.com)." "users create"

run users list
expect_rc 0 "users list"
grep -Eq "^bob +bob@example.com +active +none " "$tmp/out" || fail "users list: bob"
grep -Eq "^admin +admin@example.com +active +owner " "$tmp/out" || fail "users list: admin"

run users list --output json
expect_rc 0 "users list json"
[ "$(json_get "$tmp/out" '["count"]')" = 2 ] || fail "users list json count"

run users suspend bob
expect_rc 0 "users suspend"
expect_out "Suspended bob." "users suspend"
run users show bob --output=json
[ "$(json_get "$tmp/out" '["status"]')" = suspended ] || fail "bob is not suspended"
input="$other_password" run login "$url" --email bob@example.com
expect_rc 1 "a suspended user signs in"
expect_err "atrium login: Incorrect email or password." "a suspended user signs in"
run users activate bob
expect_rc 0 "users activate"
expect_out "Activated bob." "users activate"

run users suspend me
expect_rc 1 "users suspend me"
expect_err "atrium users suspend: You cannot do this to yourself." "suspend me"

# ---- tokens ----------------------------------------------------------------
run tokens create --name ci --lifetime 24h
expect_rc 0 "tokens create"
api_token=$(cat "$tmp/out")
[[ "$api_token" =~ ^[A-Za-z0-9]{10}-[A-Za-z0-9]{22}$ ]] || fail "tokens create prints the token alone"
# The one place a token may be shown: keep it out of the leak check.
grep -vxF -- "$api_token" "$tmp/shown" >"$tmp/shown.new" || true
mv "$tmp/shown.new" "$tmp/shown"
ATRIUM_SESSION_TOKEN=$api_token run whoami
expect_rc 0 "whoami with the new token"
[ "$(cat "$tmp/out")" = "admin (admin@example.com) roles: owner" ] || fail "whoami by token"

run tokens list
expect_rc 0 "tokens list"
head -n1 "$tmp/out" | grep -q "^ID  *NAME  *LAST USED  *EXPIRES AT  *CREATED AT$" || fail "tokens list: header"
grep -Eq "^${api_token%%-*} +ci " "$tmp/out" || fail "tokens list: the ci token"

run tokens create --lifetime 999d
expect_rc 1 "tokens create with a too long lifetime"
grep -q "^  lifetime: " "$tmp/err" || fail "lifetime validation"

run tokens remove ci
expect_rc 0 "tokens remove"
expect_out "Removed token ci." "tokens remove"
ATRIUM_SESSION_TOKEN=$api_token run whoami
expect_rc 1 "whoami with a removed token"
run tokens remove ci
expect_rc 1 "tokens remove twice"
expect_err "atrium tokens remove: Token not found." "tokens remove twice"

# ---- the stored token is never sent to another URL -------------------------
ATRIUM_URL=http://localhost:$port run whoami
expect_rc 1 "stored token with another ATRIUM_URL"
grep -q "you are not signed in" "$tmp/err" || fail "another ATRIUM_URL"
ATRIUM_URL=$url/ run whoami
expect_rc 0 "ATRIUM_URL with a trailing slash is the same server"

# ---- a terminal: prompts, and no echo of the password ----------------------
python3 - "$atrium" "$url" "$password" "$tmp/tty" <<'PY'
import os, pty, sys, time
atrium, url, password, transcript = sys.argv[1:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(atrium, [atrium, "login", url])
seen = b""
def wait_for(text, timeout=20):
    global seen
    end = time.time() + timeout
    while text.encode() not in seen:
        if time.time() > end:
            raise SystemExit("no %r in %r" % (text, seen))
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
wait_for("Email: ")
os.write(fd, b"admin@example.com\n")
wait_for("Password: ")
os.write(fd, password.encode() + b"\n")
wait_for("Signed in to")
wait_for("\n", 5)
_, status = os.waitpid(pid, 0)
open(transcript, "wb").write(seen)
sys.exit(os.waitstatus_to_exitcode(status))
PY
cat "$tmp/tty" >>"$tmp/shown"
grep -q "as admin" "$tmp/tty" || fail "terminal login: $(cat "$tmp/tty")"

# ---- logout ----------------------------------------------------------------
old_token=$(json_get "$session" '["session_token"]')
run logout
expect_rc 0 "logout"
expect_out "Signed out of $url" "logout"
[ ! -e "$session" ] || fail "logout left the session file"
run whoami
expect_rc 1 "whoami after logout"
grep -q "you are not signed in" "$tmp/err" || fail "whoami after logout: message"
ATRIUM_URL=$url ATRIUM_SESSION_TOKEN=$old_token run whoami
expect_rc 1 "whoami with the logged-out token"
expect_err "atrium whoami: You are not signed in." "the server's message"
expect_err "The session token is invalid or has expired." "the server's detail"

# ---- nothing secret leaked -------------------------------------------------
for secret in "$password" "$other_password" "$token" "$old_token" "$api_token"; do
  if grep -qF -- "$secret" "$tmp/shown"; then fail "a secret was printed"; fi
  if grep -qF -- "${secret#*-}" "$tmp/server.log"; then fail "a secret is in the server log"; fi
done
echo "PASS"
