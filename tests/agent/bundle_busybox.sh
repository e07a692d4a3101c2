#!/bin/sh
# The agent bundle needs nothing from the image it runs in: a root file
# system holding only a static busybox (/bin/sh) runs `atrium-agent
# version`, and `atrium-agent agent` parses its command line and refuses a
# group-readable env file there.
# usage: bundle_busybox.sh BUNDLE_DIR [BUSYBOX]
set -u
bundle=$1
busybox=${2:-/bin/busybox}
if [ "$(id -u)" != 0 ]; then
  echo "skipped: chroot needs root"
  exit 77
fi
if [ ! -x "$busybox" ] || ! file -L "$busybox" 2>/dev/null | grep -q static; then
  case "$(ldd "$busybox" 2>&1)" in
  *"not a dynamic"*) ;;
  *) echo "skipped: no static busybox (Debian busybox-static)"; exit 77 ;;
  esac
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/opt" "$root/tmp"
cp "$busybox" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
cp -a "$bundle" "$root/opt/atrium"
fail() {
  echo "FAIL: $*"
  exit 1
}
[ -e "$root/lib" ] || [ -e "$root/usr" ] && fail "the root is not empty"
out=$(chroot "$root" /opt/atrium/atrium-agent version 2>&1) ||
  fail "atrium-agent version: $out"
echo "$out"
case "$out" in
"atrium-agent "*) ;;
*) fail "unexpected output: $out" ;;
esac
# Without its URL and token: the command line is read, exit 2.
out=$(chroot "$root" /bin/busybox env -i /opt/atrium/atrium-agent agent 2>&1)
[ $? = 2 ] || fail "agent without a URL: $out"
echo "$out" | grep -q ATRIUM_AGENT_URL || fail "agent without a URL: $out"
# An env file others may read is refused, and its token is not printed.
printf 'ATRIUM_AGENT_URL=http://127.0.0.1:9\nATRIUM_AGENT_TOKEN=atragt_secret\n' \
  >"$root/tmp/agent.env"
chmod 644 "$root/tmp/agent.env"
out=$(chroot "$root" /bin/busybox env -i /opt/atrium/atrium-agent agent --env-file /tmp/agent.env 2>&1)
[ $? = 1 ] || fail "a 0644 env file was accepted: $out"
echo "$out" | grep -q "chmod 600" || fail "no reason given: $out"
echo "$out" | grep -q atragt_secret && fail "the token was printed"
# OpenSSH's sftp-server (the SSH server's sftp subsystem) runs there too,
# through its launcher, the bundled loader and nss_wrapper, which gives it
# the passwd entry this root lacks (agent_ssh_busybox serves sftp and scp
# with it).
if [ -x "$root/opt/atrium/libexec/sftp-server" ] &&
  [ -f "$root/opt/atrium/lib/libnss_wrapper.so" ]; then
  mkdir -p "$root/dev" && mknod "$root/dev/null" c 1 3 # as a container has
  echo 'root:x:0:0:root:/:/bin/sh' >"$root/tmp/passwd"
  echo 'root:x:0:' >"$root/tmp/group"
  out=$(chroot "$root" /bin/busybox env NSS_WRAPPER_PASSWD=/tmp/passwd \
    NSS_WRAPPER_GROUP=/tmp/group /opt/atrium/libexec/sftp-server -h 2>&1)
  echo "$out" | grep -q "usage: sftp-server" ||
    fail "the bundle's sftp-server does not start: $out"
fi
echo "ok: the bundle runs in a busybox-only root"
