#!/usr/bin/env bash
# Install what is missing, build, and run `atrium server` on the default
# configuration (config/atrium.yaml: 127.0.0.1:3000, data in ./atrium-data).
# Extra arguments go to `atrium server`, e.g. --http.address=127.0.0.1:4000.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/deps.sh
atrium_install_missing $ATRIUM_BUILD_PACKAGES
atrium_build_user
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATRIUM_BUILD_TESTS=OFF
cmake --build build -j "$(atrium_jobs)"
exec build/bin/atrium server "$@"
