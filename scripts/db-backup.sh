#!/usr/bin/env bash
# Back up atrium's database (SQLite or PostgreSQL, whichever the config
# enables) into a time-stamped file, and keep only the newest ones. Meant for
# cron, e.g.:   17 3 * * *  /opt/atrium/scripts/db-backup.sh --dir /var/backups/atrium
#
#   db-backup.sh [--dir DIR] [--keep N] [--config FILE]
#
# ATRIUM (default: `atrium` on PATH, else build/bin/atrium) is the binary.
set -euo pipefail
dir=./backups
keep=14
config=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --keep) keep=$2; shift 2 ;;
    --config) config=(--config "$2"); shift 2 ;;
    *) echo "usage: $0 [--dir DIR] [--keep N] [--config FILE]" >&2; exit 2 ;;
  esac
done
here=$(cd "$(dirname "$0")/.." && pwd)
atrium=${ATRIUM:-$(command -v atrium || echo "$here/build/bin/atrium")}
mkdir -p "$dir"
chmod 700 "$dir"
file="$dir/atrium-$(date -u +%Y%m%dT%H%M%SZ).backup"
"$atrium" db backup "$file" "${config[@]}"
# Oldest first; drop all but the newest $keep.
mapfile -t old < <(ls -1 "$dir"/atrium-*.backup 2>/dev/null | sort | head -n "-$keep")
for f in "${old[@]}"; do
  rm -f -- "$f"
done
echo "$file"
