#!/usr/bin/env bash
# scripts/dev/postgres.sh — a throwaway PostgreSQL for tests and development.
#
#   postgres.sh start DIR     create a cluster in DIR/data if missing, start it
#   postgres.sh stop DIR      stop it (fast shutdown) and wait for the process
#   postgres.sh restart DIR   stop, then start on the same port
#   postgres.sh status DIR    "running ..." (exit 0) or "stopped" (exit 3)
#
# The cluster trusts every local connection (initdb -A trust), listens on
# 127.0.0.1 on a free port and on a unix socket in DIR, and trades
# durability for speed (fsync, full_page_writes and synchronous_commit off):
# never keep data you care about in it. `start` leaves two libpq connection
# strings behind for the database `atrium` (role `atrium`):
#   DIR/dsn      host=DIR port=P user=atrium dbname=atrium   (unix socket)
#   DIR/dsn_tcp  host=127.0.0.1 port=P user=atrium dbname=atrium
# The server log is DIR/postgres.log.
#
# PostgreSQL refuses to run as root, so when this script runs as root it
# hands DIR to the `postgres` user and runs the server binaries through
# `runuser -u postgres --`. When that user cannot reach DIR (a parent
# directory it may not enter, such as /root) or DIR is too long for a unix
# socket path, the cluster lives in a directory under /tmp instead, linked
# from DIR/base; DIR/dsn names the socket directory actually used.
#
# Every command is idempotent and takes a lock on DIR, so concurrent calls
# for the same DIR wait for each other. Binaries: $ATRIUM_PG_BIN_DIR, else
# /usr/lib/postgresql/15/bin, else the newest /usr/lib/postgresql/*/bin.
set -euo pipefail

prog=$(basename "$0")

die() {
  echo "$prog: $*" >&2
  exit 1
}

usage() {
  echo "usage: $prog start|stop|restart|status DIR" >&2
  exit 2
}

# The caller's PG* variables must not redirect our own client calls.
for var in $(compgen -e); do
  case $var in PG*) unset "$var" ;; esac
done

find_bin_dir() {
  local d
  for d in "${ATRIUM_PG_BIN_DIR:-}" /usr/lib/postgresql/15/bin \
    $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -rn); do
    if [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] &&
      [ -x "$d/postgres" ] && [ -x "$d/psql" ] && [ -x "$d/pg_isready" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

# Run a server binary as the cluster's owner, with no descriptor but 0-2
# open: the server must not inherit our lock or a caller's pipe.
as_owner() {
  (
    cd /
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then
        eval "exec $fd>&-"
      fi
    done
    if [ "$(id -u)" -eq 0 ]; then
      exec runuser -u postgres -- "$@"
    fi
    exec "$@"
  )
}

owner_can_use() { # DIR
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- test -d "$1" -a -w "$1" -a -x "$1" 2>/dev/null
  else
    test -d "$1" -a -w "$1" -a -x "$1"
  fi
}

give_to_owner() { # PATH
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres:postgres "$1"
  fi
}

port_is_free() { # PORT
  if command -v python3 >/dev/null 2>&1; then
    python3 - "$1" <<'EOF' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.close()
EOF
  elif (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    return 1 # something answers there
  fi
}

pick_port() {
  if command -v python3 >/dev/null 2>&1; then
    python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
    return
  fi
  local p=$((20000 + RANDOM % 20000)) i
  for ((i = 0; i < 200; i++)); do
    if port_is_free "$p"; then
      echo "$p"
      return
    fi
    p=$((p + 1))
  done
  die "no free TCP port found on 127.0.0.1"
}

# The directory holding data/, the socket and the log: DIR itself when the
# cluster's owner can use it and a socket path in it fits (107 bytes), else
# a directory under /tmp remembered through the symlink DIR/base.
resolve_base() { # create?
  local create=$1
  if [ -L "$dir/base" ]; then
    base=$(readlink "$dir/base")
    if [ -d "$base" ]; then
      return 0
    fi
    rm -f "$dir/base"
  fi
  base=$dir
  if [ ${#dir} -le 90 ] && owner_can_use "$dir"; then
    return 0
  fi
  if [ "$create" != yes ]; then
    base=""
    return 0
  fi
  base=$(mktemp -d /tmp/atrium-pg.XXXXXX)
  chmod 0700 "$base"
  give_to_owner "$base"
  ln -s "$base" "$dir/base"
  echo "$prog: $dir is not usable by the server (unreachable or too long" \
    "for a socket path); the cluster lives in $base" >&2
}

postmaster_pid() { # prints the live postmaster's PID, or fails
  local pidfile=$base/data/postmaster.pid pid
  [ -n "$base" ] && [ -f "$pidfile" ] || return 1
  pid=$(head -n 1 "$pidfile" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = postgres ] || return 1
  echo "$pid"
}

write_dsn_files() { # PORT
  local tmp
  tmp=$(mktemp "$dir/.dsn.XXXXXX")
  echo "host=$base port=$1 user=atrium dbname=atrium" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$dir/dsn"
  tmp=$(mktemp "$dir/.dsn.XXXXXX")
  echo "host=127.0.0.1 port=$1 user=atrium dbname=atrium" >"$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$dir/dsn_tcp"
  echo "$1" >"$dir/port"
}

init_cluster() {
  local data=$base/data
  if [ -f "$data/PG_VERSION" ]; then
    return 0
  fi
  rm -rf "$data"
  echo "$prog: creating a cluster in $data" >&2
  as_owner "$bin/initdb" -D "$data" -A trust -U atrium -E UTF8 --locale=C \
    --no-sync --no-instructions >"$base/initdb.log" 2>&1 ||
    die "initdb failed; see $base/initdb.log"
  # Appended last, so these win over initdb's defaults. The port is given
  # on the command line at each start.
  as_owner tee -a "$data/postgresql.conf" >/dev/null <<EOF

# scripts/dev/postgres.sh: a throwaway cluster, fast and not durable.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$base'
fsync = off
full_page_writes = off
synchronous_commit = off
max_connections = 200
EOF
}

start_on() { # PORT
  as_owner "$bin/pg_ctl" -D "$base/data" -l "$base/postgres.log" -w -t 60 \
    -o "-p $1" start >/dev/null 2>&1
}

wait_ready() { # PORT
  local i
  for ((i = 0; i < 300; i++)); do
    if "$bin/pg_isready" -q -h "$base" -p "$1" -U atrium -d postgres; then
      return 0
    fi
    sleep 0.1
  done
  die "the server on port $1 did not become ready; see $base/postgres.log"
}

create_database() { # PORT
  local psql=("$bin/psql" -X -q -A -t -h "$base" -p "$1" -U atrium
    -d postgres -v ON_ERROR_STOP=1)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'atrium'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE atrium" >/dev/null
  fi
}

cmd_start() {
  resolve_base yes
  local pid port
  if pid=$(postmaster_pid); then
    port=$(sed -n 4p "$base/data/postmaster.pid")
    write_dsn_files "$port"
    echo "$prog: already running on port $port (pid $pid)"
    return 0
  fi
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 ||
      die "running as root needs the OS user postgres (install postgresql-15)"
  fi
  init_cluster
  # The port used before first (restart keeps it), then fresh ones.
  local tries=() i
  if [ -f "$dir/port" ] && port=$(cat "$dir/port") && [[ $port =~ ^[0-9]+$ ]]; then
    if port_is_free "$port"; then
      tries+=("$port")
    else
      echo "$prog: port $port is taken now; picking another" >&2
    fi
  fi
  for ((i = 0; i < 3; i++)); do
    tries+=("$(pick_port)")
  done
  for port in "${tries[@]}"; do
    if start_on "$port"; then
      wait_ready "$port"
      create_database "$port"
      write_dsn_files "$port"
      echo "$prog: running on 127.0.0.1:$port and $base (pid $(postmaster_pid)); dsn in $dir/dsn"
      return 0
    fi
    if postmaster_pid >/dev/null; then
      break # up but not ready within pg_ctl's wait: not a port problem
    fi
  done
  tail -n 20 "$base/postgres.log" >&2 2>/dev/null || true
  die "could not start PostgreSQL in $base/data; see $base/postgres.log"
}

cmd_stop() {
  resolve_base no
  local pid i
  if ! pid=$(postmaster_pid); then
    echo "$prog: not running"
    return 0
  fi
  as_owner "$bin/pg_ctl" -D "$base/data" -m fast -w -t 60 stop >/dev/null 2>&1 ||
    true
  for ((i = 0; i < 300; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$prog: stopped (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  echo "$prog: pid $pid did not stop; sending SIGQUIT (immediate shutdown)" >&2
  kill -QUIT "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "$prog: stopped (pid $pid)"
      return 0
    fi
    sleep 0.1
  done
  die "PostgreSQL (pid $pid) is still running"
}

cmd_status() {
  resolve_base no
  local pid
  if pid=$(postmaster_pid); then
    echo "running: port $(sed -n 4p "$base/data/postmaster.pid"), pid $pid, dsn $(cat "$dir/dsn" 2>/dev/null)"
    return 0
  fi
  echo "stopped"
  return 3
}

[ $# -eq 2 ] || usage
action=$1
case $action in start | stop | restart | status) ;; *) usage ;; esac

bin=$(find_bin_dir) ||
  die "PostgreSQL server binaries not found in /usr/lib/postgresql/15/bin; install postgresql-15 (apt-get install postgresql-15) or set ATRIUM_PG_BIN_DIR"

if [ "$action" = start ] || [ "$action" = restart ]; then
  mkdir -p "$2"
elif [ ! -d "$2" ]; then
  [ "$action" = status ] && {
    echo "stopped"
    exit 3
  }
  echo "$prog: not running"
  exit 0
fi
dir=$(cd "$2" && pwd -P)
if [ "$(id -u)" -eq 0 ] && [ "$action" != status ]; then
  chown postgres:postgres "$dir"
fi

exec 9>>"$dir/.lock"
flock 9

case $action in
start) cmd_start ;;
stop) cmd_stop ;;
restart)
  cmd_stop
  cmd_start
  ;;
status) cmd_status ;;
esac
