#!/usr/bin/env python3
"""The agent's logs arrive exactly once across a server killed with -9.

A startup script prints 1000 lines, waits for a hold file, prints 1000
more and exits. Once the server has stored some of the first half, the
server is killed with SIGKILL (batches may be in flight, committed or
not), the hold is released so the second half is written while the server
is down, and the server is started again on the same port and database.
The agent reconnects by itself, resends what was not acked and reports
ready; the stored startup log is then exactly "line 1" .. "line 2000", in
order, with no gap and no duplicate.

usage: agent_reconnect.py ATRIUM PLUGIN_DIR
"""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_e2e as e2e  # noqa: E402

LINES = 2000


def all_logs(d, agent_id):
    out, after = [], 0
    while True:
        _, page = d.call(
            "GET", f"/api/v2/workspaceagents/{agent_id}/logs?after={after}"
            "&limit=1000")
        if isinstance(page, dict):
            page = page.get("logs", [])
        if not page:
            return out
        out.extend(page)
        after = page[-1]["id"]


def main():
    atrium, plugins = sys.argv[1:3]
    if not os.path.exists(os.path.join(plugins, "provisioner_echo.so")):
        print("skipped: no echo provisioner")
        return 77
    tmp = tempfile.mkdtemp(prefix="atrium-agent-reconnect-")
    hold = os.path.join(tmp, "hold")
    checks = e2e.CHECKS
    try:
        d = e2e.DEP = e2e.Deployment(atrium, plugins, tmp)
        d.start()
        org = e2e.set_up(d)
        script = (f"i=1; while [ $i -le {LINES // 2} ]; do echo line $i; "
                  f"i=$((i+1)); done; n=0; while [ ! -e {hold} ] && "
                  f"[ $n -lt 1200 ]; do sleep 0.05; n=$((n+1)); done; "
                  f"while [ $i -le {LINES} ]; do echo line $i; i=$((i+1)); "
                  "done")
        tid = e2e.make_template(d, org, "lines", script, "120s")
        ws = d.must(201, "POST", "/api/v2/users/me/workspaces",
                    {"name": "ws-lines", "template_id": tid})
        e2e.wait_build(d, ws["latest_build"]["id"])
        os.environ["ATRIUM_AGENT_BACKOFF_MAX"] = "1s"
        p, log, _ = e2e.start_agent(d, ws["id"], [atrium], "lines")
        a = e2e.wait_for("the agent", lambda: e2e.agent_of(d, ws["id"]))
        e2e.wait_for("some stored lines",
                     lambda: "line 1\n" in e2e.agent_log(d, a["id"]) + "\n")
        d.proc.kill()  # SIGKILL: no drain, batches may be mid-commit
        d.proc.wait()
        d.proc = None
        open(hold, "w").close()
        d.start()
        e2e.wait_for("ready after the restart",
                     lambda: (e2e.agent_of(d, ws["id"]) or {}).get(
                         "lifecycle_state") == "ready", seconds=120)

        def complete():
            lines = [x["output"] for x in all_logs(d, a["id"])
                     if x["output"].startswith("line ")]
            return lines if len(lines) >= LINES else None
        lines = e2e.wait_for("every line", complete, seconds=120)
        want = [f"line {i}" for i in range(1, LINES + 1)]
        checks.check(lines == want, f"the {LINES} lines are stored once each, "
                     f"in order (got {len(lines)})")
        ids = [x["id"] for x in all_logs(d, a["id"])]
        checks.check(ids == sorted(set(ids)), "log ids are unique and rising")
        checks.check(e2e.tail(log, 10 ** 6).count("connected to ") >= 2,
                     "the agent reconnected by itself")
        checks.check(p.poll() is None, "the agent is still running")
        p.terminate()
        try:
            rc = p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            e2e.fail("the agent did not exit after SIGTERM")
        checks.check(rc == 0, f"the agent exited 0 after SIGTERM (got {rc})")
        d.stop()
    finally:
        e2e.clean_up(tmp)
    return checks.done()


if __name__ == "__main__":
    sys.exit(main())
