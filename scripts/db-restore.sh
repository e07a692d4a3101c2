#!/usr/bin/env bash
# Replace atrium's database with a backup made by db-backup.sh or
# `atrium db backup`. Stop every atrium server using the database first:
# restore replaces all content underneath them.
#
#   db-restore.sh FILE [--config FILE] [--yes]
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 BACKUP_FILE [--config FILE] [--yes]" >&2
  exit 2
fi
file=$1
shift
config=()
yes=no
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config=(--config "$2"); shift 2 ;;
    --yes) yes=yes; shift ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ ! -r "$file" ]; then
  echo "db-restore: cannot read $file" >&2
  exit 1
fi
if [ "$yes" != yes ]; then
  if [ ! -t 0 ]; then
    echo "db-restore: refusing to restore without --yes when not on a terminal" >&2
    exit 2
  fi
  read -r -p "Replace the database with $file? Servers must be stopped. [y/N] " answer
  [ "$answer" = y ] || [ "$answer" = Y ] || exit 1
fi
here=$(cd "$(dirname "$0")/.." && pwd)
atrium=${ATRIUM:-$(command -v atrium || echo "$here/build/bin/atrium")}
"$atrium" db restore "$file" "${config[@]}"
