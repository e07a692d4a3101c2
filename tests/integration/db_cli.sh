#!/usr/bin/env bash
# `atrium db migrate|status|backup|restore` and scripts/db-backup.sh /
# db-restore.sh on the SQLite backend: a backup taken, the database changed,
# the restore brings the earlier content back.
#   db_cli.sh ATRIUM_BIN PLUGIN_DIR SOURCE_DIR
set -euo pipefail
# The server's log is read as text below (not a terminal: JSON by default).
export ATRIUM_LOG_FORMAT=text
atrium=$1 plugins=$2 src=$3
tmp=$(mktemp -d /tmp/atrium-dbcli-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/atrium.yaml" <<YAML
data_dir: $tmp/data
plugin_dirs: [$plugins]
plugins:
  storage_sqlite:
    enabled: true
YAML
run() { "$atrium" "$@" --config "$tmp/atrium.yaml"; }
sql() { python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print(r[0][0] if r else '')" "$tmp/data/atrium.db" "$1"; }

out=$(run db status)
echo "$out" | grep -q "pending" || { echo "FAIL: fresh status shows no pending migration: $out"; exit 1; }
run db migrate | grep -q "the database schema is at version" || { echo "FAIL: migrate"; exit 1; }
out=$(run db status)
if echo "$out" | grep -q pending; then echo "FAIL: still pending after migrate: $out"; exit 1; fi

# Without a key there is nothing to rotate to, and it says so
# (tests/hardening/dbcrypt.py tests the commands with keys).
set +e
out=$(run db encrypt rotate 2>&1)
rc=$?
set -e
[ "$rc" = 1 ] && echo "$out" | grep -q "atrium db encrypt rotate: no database encryption key is configured" ||
  { echo "FAIL: db encrypt rotate without a key (rc $rc): $out"; exit 1; }

sql "INSERT INTO organizations (id, name, display_name, description, icon, created_at, updated_at, is_default) VALUES ('00000000-0000-4000-8000-0000000000aa', 'before', 'Before', '', '', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z', FALSE)" >/dev/null
backup=$(ATRIUM="$atrium" "$src/scripts/db-backup.sh" --dir "$tmp/backups" --keep 2 --config "$tmp/atrium.yaml" | tail -n1)
[ -s "$backup" ] || { echo "FAIL: no backup file at $backup"; exit 1; }
sql "UPDATE organizations SET name = 'after' WHERE name = 'before'" >/dev/null
[ "$(sql "SELECT COUNT(*) FROM organizations WHERE name = 'after'")" = 1 ]
ATRIUM="$atrium" "$src/scripts/db-restore.sh" "$backup" --config "$tmp/atrium.yaml" --yes
[ "$(sql "SELECT COUNT(*) FROM organizations WHERE name = 'before'")" = 1 ] || { echo "FAIL: restore did not bring back the earlier row"; exit 1; }

# retention keeps the newest two
for _ in 1 2 3; do
  sleep 1
  ATRIUM="$atrium" "$src/scripts/db-backup.sh" --dir "$tmp/backups" --keep 2 --config "$tmp/atrium.yaml" >/dev/null
done
[ "$(ls "$tmp/backups" | wc -l)" = 2 ] || { echo "FAIL: retention"; ls "$tmp/backups"; exit 1; }

if run db restore "$tmp/atrium.yaml" 2>"$tmp/err"; then echo "FAIL: restored a non-database"; exit 1; fi
grep -q "atrium.yaml" "$tmp/err" || { echo "FAIL: restore error does not name the file: $(cat "$tmp/err")"; exit 1; }
echo "PASS"
