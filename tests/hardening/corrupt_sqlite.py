#!/usr/bin/env python3
"""A SQLite database damaged in a middle page (issue 13).

  corrupt_sqlite.py ATRIUM_BIN PLUGIN_DIR

Before the integrity check the damaged file started, /readyz answered 200
and the health report said healthy while sign-in answered 500. Here the
server makes its database and a user, stops; the root page of the users
table is overwritten; the server starts again and must say, on /readyz
and in its log, that the integrity check failed.
"""
import os
import shutil
import sqlite3
import sys
import tempfile

from server import Checks, Server

ATRIUM, PLUGINS = sys.argv[1], sys.argv[2]
checks = Checks()
check = checks.check


def damage(path):
    """Overwrite the root page of the users table; the page size and the
    page come from the file itself."""
    db = sqlite3.connect(path)
    # every page in the main file, none left in the write-ahead log
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master "
                      "WHERE type = 'table' AND name = 'users'").fetchone()[0]
    db.close()
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)
    return root


def main():
    tmp = tempfile.mkdtemp(prefix="atrium-corrupt-")
    srv = Server(ATRIUM, PLUGINS, tmp)
    try:
        srv.start()
        srv.first_user()
        status, report = srv.request("GET", "/readyz")
        check(status == 200, f"a sound database is ready (got {status})")
        srv.stop()
        root = damage(os.path.join(tmp, "data", "atrium.db"))
        srv.start(ready=False)
        status, answer = srv.request("GET", "/readyz")
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        check(status == 503 and "integrity check failed" in text,
              f"page {root} damaged: /readyz answers 503 naming the "
              f"integrity check (got {status} {text[:200]})")
        log = srv.log_tail(20000)
        check("the database integrity check failed" in log,
              "the server logs that the integrity check failed")
        check(srv.alive(), "/healthz still answers (the process is fine)")
    finally:
        srv.stop()
        if checks.failures:
            print(srv.log_tail())
        shutil.rmtree(tmp, ignore_errors=True)
    return checks.done()


if __name__ == "__main__":
    sys.exit(main())
