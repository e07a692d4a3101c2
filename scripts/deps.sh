# scripts/deps.sh — sourced by run.sh and test.sh: install the Debian
# packages atrium needs that are missing (as root, with apt-get).

ATRIUM_BUILD_PACKAGES="build-essential cmake pkg-config git \
  libcivetweb-dev libuv1-dev libjansson-dev libyaml-dev uuid-dev \
  libsqlite3-dev libpq-dev libargon2-dev libssl-dev libarchive-dev \
  libcurl4-openssl-dev liblua5.4-dev libpcre2-dev libhttp-parser-dev \
  libwslay-dev libnghttp2-dev libssh-dev openssh-sftp-server libnss-wrapper"
ATRIUM_TEST_PACKAGES="libcmocka-dev python3 \
  postgresql-15 curl prometheus \
  docker.io busybox-static \
  clang \
  clang-tidy cppcheck \
  clang-format \
  abigail-tools g++ \
  openssh-client tmux rsync netcat-openbsd python3-websocket \
  chromium jupyter-notebook libkrb5-dev ripgrep nodejs \
  $(command -v npm >/dev/null 2>&1 || echo npm)"
# The connect tests (tests/connect): real OpenSSH, tmux, rsync and nc
# clients, Debian's python3 with its websocket client, Chromium and Jupyter;
# Node.js 20 and npm install code-server and playwright-core into the build
# tree (tests/connect/setup.sh). npm is asked for only when no npm is on
# PATH: Node.js builds that bundle npm conflict with Debian's npm package.

atrium_install_missing() {
  local missing=()
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null |
      grep -q "install ok installed"; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -eq 0 ]; then
    return 0
  fi
  echo "atrium: installing ${missing[*]}" >&2
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The unprivileged user builds run as when the server is root
# (provisioner.run_as, docs/security.md). Made once; a no-op when it exists
# or when not root (a server that is not root runs builds as itself).
atrium_build_user() {
  local user=${1:-atrium-build}
  if [ "$(id -u)" -ne 0 ] || id -u "$user" >/dev/null 2>&1; then
    return 0
  fi
  echo "atrium: creating the build user $user" >&2
  useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
}

atrium_jobs() {
  nproc 2>/dev/null || echo 2
}
