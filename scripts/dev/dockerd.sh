#!/usr/bin/env bash
# scripts/dev/dockerd.sh — a throwaway Docker Engine for tests and development.
#
#   dockerd.sh start DIR     start dockerd on the socket DIR/docker.sock (or
#                            under /tmp, see below), wait for /_ping and
#                            import the image atrium-test/busybox:1
#   dockerd.sh stop DIR      stop it by its PID and wait for it, its
#                            containerd and the containers' shims
#   dockerd.sh status DIR    "running ..." (exit 0) or "stopped" (exit 3)
#   dockerd.sh pause DIR     freeze dockerd (SIGSTOP): every Engine API call
#                            waits, so a test can hold a build mid-apply
#   dockerd.sh resume DIR    let it go on (SIGCONT)
#
# The engine is Debian docker.io's dockerd, run as root with its own data
# root, exec root and pid file, without a bridge and without touching
# iptables: containers get network mode none or host, nothing else. It is
# a private engine, separate from a system one; never keep data in it.
#
# `start` leaves the socket's path in DIR/socket. A unix socket path holds
# at most 107 bytes and containerd puts deeper sockets under the exec root,
# so when DIR is longer than 40 bytes the engine lives in a directory under
# /tmp instead, linked from DIR/base. The engine's log is BASE/dockerd.log.
#
# The image atrium-test/busybox:1 is made offline, without a registry: a
# root file system of busybox-static's /bin/busybox with links for sh,
# sleep, ls, cat, echo, mkdir, touch, test and true, loaded with
# `docker import`. It stays in the data root between runs.
#
# Every command is idempotent and takes a lock on DIR, so concurrent calls
# for the same DIR wait for each other. Needs: dockerd and docker
# (docker.io), busybox-static, curl.
set -euo pipefail

prog=$(basename "$0")
image=atrium-test/busybox:1
links=(sh sleep ls cat echo mkdir touch test true)

die() {
  echo "$prog: $*" >&2
  exit 1
}

usage() {
  echo "usage: $prog start|stop|status|pause|resume DIR" >&2
  exit 2
}

# The directory holding the engine's files: DIR itself when short enough,
# else a directory under /tmp remembered through the symlink DIR/base.
resolve_base() { # create?
  if [ -L "$dir/base" ]; then
    base=$(readlink "$dir/base")
    if [ -d "$base" ]; then
      return 0
    fi
    rm -f "$dir/base"
  fi
  base=$dir
  if [ ${#dir} -le 40 ]; then
    return 0
  fi
  if [ "$1" != yes ]; then
    base=""
    return 0
  fi
  base=$(mktemp -d /tmp/atr-dk.XXXXXX)
  chmod 0711 "$base"
  ln -s "$base" "$dir/base"
  echo "$prog: $dir is too long for the engine's socket paths; the engine" \
    "lives in $base" >&2
}

sock() { echo "$base/docker.sock"; }

# The live dockerd's PID, or fails.
dockerd_pid() {
  local pid
  [ -n "$base" ] && [ -f "$base/docker.pid" ] || return 1
  pid=$(cat "$base/docker.pid" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  [ "$(ps -o comm= -p "$pid" 2>/dev/null)" = dockerd ] || return 1
  echo "$pid"
}

ping() {
  [ "$(curl -s -m 5 --unix-socket "$(sock)" http://localhost/_ping 2>/dev/null)" = OK ]
}

# PIDs of the processes this engine started that outlive dockerd itself:
# its containerd (pid file in the exec root) and the containers' shims,
# which name that containerd's socket on their command line.
engine_children() {
  local address=$base/exec/containerd/containerd.sock p
  if [ -f "$base/exec/containerd/containerd.pid" ]; then
    cat "$base/exec/containerd/containerd.pid"
    echo
  fi
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' 2>/dev/null <"$p/cmdline" | grep -qF -- "-address $address "; then
      echo "${p#/proc/}"
    fi
  done
}

# Run dockerd detached, in its own session, with no descriptor but 0-2
# open: it must not inherit our lock or a caller's pipe (ctest waits for
# those to close).
launch() {
  (
    cd /
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then
        eval "exec $fd>&-"
      fi
    done
    exec setsid "$dockerd" \
      --host "unix://$(sock)" \
      --data-root "$base/root" \
      --exec-root "$base/exec" \
      --pidfile "$base/docker.pid" \
      --bridge=none --iptables=false --ip6tables=false \
      --shutdown-timeout 5 \
      </dev/null >>"$base/dockerd.log" 2>&1
  ) &
}

wait_ready() {
  local i
  for ((i = 0; i < 600; i++)); do
    if ping; then
      return 0
    fi
    if [ "$i" -gt 20 ] && ! dockerd_pid >/dev/null; then
      tail -n 20 "$base/dockerd.log" >&2 || true
      die "dockerd exited while starting; see $base/dockerd.log"
    fi
    sleep 0.1
  done
  tail -n 20 "$base/dockerd.log" >&2 || true
  die "dockerd did not answer /_ping on $(sock) within 60 s; see $base/dockerd.log"
}

import_image() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$(sock)" \
    "http://localhost/images/$image/json")
  if [ "$code" = 200 ]; then
    return 0
  fi
  [ -x /bin/busybox ] || die "/bin/busybox is missing; install busybox-static"
  if ldd /bin/busybox >/dev/null 2>&1; then
    die "/bin/busybox is linked dynamically; install busybox-static"
  fi
  local rootfs=$base/rootfs l
  rm -rf "$rootfs"
  mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/home"
  chmod 1777 "$rootfs/tmp"
  cp /bin/busybox "$rootfs/bin/busybox"
  for l in "${links[@]}"; do
    ln -s busybox "$rootfs/bin/$l"
  done
  tar -C "$rootfs" -c . |
    DOCKER_HOST="unix://$(sock)" DOCKER_CONFIG="$base/cli" \
      "$docker" import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' \
      - "$image" >/dev/null ||
    die "docker import of $image failed"
  rm -rf "$rootfs"
  echo "$prog: imported $image"
}

cmd_start() {
  resolve_base yes
  local pid
  if pid=$(dockerd_pid) && ping; then
    echo "$(sock)" >"$dir/socket"
    import_image
    echo "$prog: already running on $(sock) (pid $pid)"
    return 0
  fi
  [ "$(id -u)" -eq 0 ] || die "dockerd must run as root (it is run as $(id -un))"
  dockerd=$(command -v dockerd) ||
    die "dockerd not found; install docker.io (apt-get install docker.io)"
  docker=$(command -v docker) ||
    die "docker (the CLI) not found; install docker.io (apt-get install docker.io)"
  command -v curl >/dev/null || die "curl not found; install curl"
  rm -f "$(sock)" "$dir/socket"
  launch
  wait_ready
  import_image
  echo "$(sock)" >"$dir/socket"
  echo "$prog: running on $(sock) (pid $(dockerd_pid)); socket path in $dir/socket"
}

wait_gone() { # SECONDS PID...
  local tenths=$(($1 * 10)) i p alive
  shift
  for ((i = 0; i < tenths; i++)); do
    alive=0
    for p in "$@"; do
      if kill -0 "$p" 2>/dev/null; then
        alive=1
      fi
    done
    [ $alive -eq 0 ] && return 0
    sleep 0.1
  done
  return 1
}

cmd_stop() {
  resolve_base no
  rm -f "$dir/socket"
  local pid children=() p
  if ! pid=$(dockerd_pid); then
    echo "$prog: not running"
    return 0
  fi
  mapfile -t children < <(engine_children | grep -E '^[0-9]+$' || true)
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone 30 "$pid"; then
    echo "$prog: dockerd (pid $pid) did not stop in 30 s; sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone 10 "$pid" || die "dockerd (pid $pid) is still running"
  fi
  if [ ${#children[@]} -gt 0 ] && ! wait_gone 10 "${children[@]}"; then
    for p in "${children[@]}"; do
      if kill -0 "$p" 2>/dev/null; then
        echo "$prog: pid $p ($(ps -o comm= -p "$p" 2>/dev/null)) outlived dockerd; sending SIGKILL" >&2
        kill -KILL "$p" 2>/dev/null || true
      fi
    done
    wait_gone 10 "${children[@]}" || die "processes ${children[*]} are still running"
  fi
  rm -f "$(sock)"
  echo "$prog: stopped (pid $pid)"
}

cmd_status() {
  resolve_base no
  local pid
  if pid=$(dockerd_pid) && ping; then
    echo "running: $(sock), pid $pid"
    return 0
  fi
  echo "stopped"
  return 3
}

# Freezing dockerd alone (not containerd, not the containers) is enough:
# atrium's provisioner only ever talks to dockerd's API.
cmd_signal() { # SIGNAL
  resolve_base no
  local pid
  pid=$(dockerd_pid) || die "not running"
  kill "-$1" "$pid"
  echo "$prog: sent SIG$1 to dockerd (pid $pid)"
}

[ $# -eq 2 ] || usage
action=$1
case $action in start | stop | status | pause | resume) ;; *) usage ;; esac

if [ "$action" = start ]; then
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

exec 9>>"$dir/.lock"
flock 9

case $action in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
pause) cmd_signal STOP ;;
resume) cmd_signal CONT ;;
esac
