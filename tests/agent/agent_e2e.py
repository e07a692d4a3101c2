#!/usr/bin/env python3
"""The workspace agent against a real server (docs/agent.md).

A server on SQLite with the echo provisioner writing agent env files
(agent_env_dir); for each case a template whose agent has a startup script,
a workspace, and the agent started by hand with --env-file:
- `echo` script: ready, its output in the agent's log (atrium agent);
- `exit 3`: start_error, "startup script exited with code 3" in the log,
  startup_script_exit_code 3 in the agent JSON and `atrium show` printing
  "start_error (startup script exited 3)"
  (the bundle's launcher);
- `sleep 30` with a 1 s timeout: start_timeout;
then a stop build: the agent reports off, exits 0, and its token is refused.
Every wait is a bounded poll for a state.

usage: agent_e2e.py ATRIUM PLUGIN_DIR BUNDLE_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "hardening"))
from server import (Checks, free_port, request, stop_process,  # noqa: E402
                    targz)

PASSWORD = "Agent-tests-1234"
CHECKS = Checks()
AGENTS = []  # processes to stop on the way out


def template(name, script, timeout="10s"):
    return (f"name: {name}\nprovisioner: echo\n"
            "agent:\n"
            f"  startup_script: {json.dumps(script)}\n"
            f"  startup_script_timeout: {timeout}\n"
            "  shutdown_script: \"echo saving work\"\n"
            "  shutdown_script_timeout: 10s\n"
            "  env: { GREETING: hello }\n"
            "  metadata:\n"
            "    - { key: load, display_name: Load, script: \"echo 0.5\","
            " interval: 1s, timeout: 1s }\n")


class Deployment:
    def __init__(self, atrium, plugins, tmp):
        self.atrium, self.plugins, self.tmp = atrium, plugins, tmp
        self.port = free_port()
        self.env_dir = os.path.join(tmp, "agentenv")
        os.mkdir(self.env_dir, 0o700)
        self.token = None
        self.proc = None
        self.plugins_extra = ""  # more lines under plugins:
        self.log = os.path.join(tmp, "server.log")

    def start(self):
        conf = os.path.join(self.tmp, "atrium.yaml")
        with open(conf, "w") as f:
            f.write(f"http:\n  address: 127.0.0.1:{self.port}\n"
                    f"access_url: http://127.0.0.1:{self.port}\n"
                    f"data_dir: {self.tmp}/data\n"
                    f"plugin_dirs: [{self.plugins}]\n"
                    "plugins:\n  storage_sqlite:\n    enabled: true\n"
                    "  auth_password:\n    enabled: true\n"
                    "  provisioner_echo:\n    enabled: true\n"
                    f"    agent_env_dir: {self.env_dir}\n"
                    f"{self.plugins_extra}")
        env = dict(os.environ)
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            env.pop(var, None)
        self.proc = subprocess.Popen(
            [self.atrium, "server", "--config", conf],
            stdout=open(self.log, "a"), stderr=subprocess.STDOUT, env=env)
        for _ in range(300):
            if self.proc.poll() is not None:
                fail("the server exited while starting")
            try:
                if self.call("GET", "/readyz")[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        fail("the server did not get ready in 30 s")

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.proc = None

    def call(self, method, path, body=None, raw=None, ctype=None, token=None):
        return request(self.port, method, path,
                       raw if raw is not None else
                       (json.dumps(body) if body is not None else None),
                       token=token or self.token, ctype=ctype)

    def must(self, want, method, path, body=None, **kw):
        status, answer = self.call(method, path, body, **kw)
        if status != want:
            fail(f"{method} {path}: {status} {answer}, want {want}")
        return answer


DEP = None


def tail(path, n=3000):
    return open(path, errors="replace").read()[-n:] \
        if os.path.exists(path) else ""


def kill_agents():
    for p, _ in AGENTS:
        if p.poll() is None:
            p.kill()
            p.wait()


def clean_up(tmp):
    """The way out of a test: agents killed, the server stopped, tmp
    removed when every check passed (else kept to look at)."""
    kill_agents()
    if DEP:
        DEP.stop()
    if not CHECKS.failures:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print("kept", tmp)


def fail(msg):
    print("FAIL:", msg)
    CHECKS.failures.append(msg)
    kill_agents()
    for _, log in AGENTS:
        print(f"--- {log} (tail):\n" + tail(log))
    if DEP:
        DEP.stop()
        print("--- server.log (tail):\n" + tail(DEP.log))
    sys.exit(1)


def wait_for(what, fn, seconds=60):
    """Poll fn (bounded) until it returns something true; that value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    fail(f"timed out waiting for {what}")


def set_up(d):
    first = d.must(201, "POST", "/api/v2/users/first",
                   {"email": "admin@example.com", "username": "admin",
                    "password": PASSWORD})
    d.token = d.must(201, "POST", "/api/v2/users/login",
                     {"email": "admin@example.com",
                      "password": PASSWORD})["session_token"]
    return first["organization_id"]


def make_template(d, org, name, script, timeout="10s"):
    status, f = d.call("POST", "/api/v2/files",
                       raw=targz({"template.yaml":
                                  template(name, script, timeout),
                                  "main.txt": "echo\n"}),
                       ctype="application/gzip")
    if status not in (200, 201):
        fail(f"upload: {status} {f}")
    v = d.must(201, "POST", f"/api/v2/organizations/{org}/templateversions",
               {"file_id": f["hash"], "name": "v1"})
    job = wait_for("the import", lambda: (lambda j: j if j["status"] not in (
        "pending", "running") else None)(d.must(
            200, "GET", f"/api/v2/templateversions/{v['id']}")["job"]))
    if job["status"] != "succeeded":
        fail(f"import of {name}: {job}")
    return d.must(201, "POST", f"/api/v2/organizations/{org}/templates",
                  {"name": name, "template_version_id": v["id"]})["id"]


def wait_build(d, build_id):
    def done():
        b = d.must(200, "GET", f"/api/v2/workspacebuilds/{build_id}")
        return b if b["job"]["status"] in ("succeeded", "failed",
                                           "canceled") else None
    b = wait_for(f"build {build_id}", done)
    if b["job"]["status"] != "succeeded":
        fail(f"build failed: {b['job']}")
    return b


def agent_of(d, ws_id):
    ws = d.must(200, "GET", f"/api/v2/workspaces/{ws_id}")
    for r in ws["latest_build"].get("resources", []):
        for a in r.get("agents", []):
            return a
    return None


def agent_log(d, agent_id):
    _, lines = d.call("GET", f"/api/v2/workspaceagents/{agent_id}/logs")
    if isinstance(lines, dict):
        lines = lines.get("logs", [])
    return "\n".join(line.get("output", "") for line in lines or [])


def start_agent(d, ws_id, cmd, name, log_dir=None):
    env_file = os.path.join(d.env_dir, f"{ws_id}.env")
    wait_for("the env file", lambda: os.path.exists(env_file))
    CHECKS.check(os.stat(env_file).st_mode & 0o077 == 0,
                 f"{name}: the env file is private")
    log = os.path.join(d.tmp, f"agent-{name}.log")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": d.tmp, "ATRIUM_AGENT_LOG_FLUSH": "50ms",
           "ATRIUM_AGENT_KILL_GRACE": "1s",
           "ATRIUM_AGENT_PORTS_INTERVAL": "200ms"}
    extra = ["--log-dir", log_dir] if log_dir else []
    p = subprocess.Popen(cmd + ["agent", "--env-file", env_file] + extra,
                         stdout=open(log, "w"), stderr=subprocess.STDOUT,
                         env=env, cwd=d.tmp)
    AGENTS.append((p, log))
    token = None
    for line in open(env_file):
        if line.startswith("ATRIUM_AGENT_TOKEN="):
            token = line.split("=", 1)[1].strip()
    return p, log, token


def check_reports(d, name, agent_id):
    """Metadata values and listening ports reach the server."""
    def metadata():
        _, items = d.call("GET", f"/api/v2/workspaceagents/{agent_id}/metadata")
        if isinstance(items, dict):
            items = items.get("metadata", [])
        return any(i.get("key") == "load" and i.get("value") == "0.5"
                   for i in items or [])
    CHECKS.check(wait_for(f"{name}: metadata", metadata),
                 f"{name}: the metadata value reached the server")

    def ports():
        _, body = d.call("GET",
                         f"/api/v2/workspaceagents/{agent_id}/listening-ports")
        items = body.get("ports", []) if isinstance(body, dict) else body
        return any(p.get("port") == d.port for p in items or [])
    # the server's own port is listening in the agent's network namespace
    CHECKS.check(wait_for(f"{name}: listening ports", ports),
                 f"{name}: the listening ports reached the server")


def show(d, ws_name):
    """`atrium show WS` as the admin (ATRIUM_URL/ATRIUM_SESSION_TOKEN)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": d.tmp,
           "ATRIUM_URL": f"http://127.0.0.1:{d.port}",
           "ATRIUM_SESSION_TOKEN": d.token}
    r = subprocess.run([d.atrium, "show", ws_name], env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    if r.returncode != 0:
        fail(f"atrium show {ws_name} exited {r.returncode}: {r.stdout}")
    return r.stdout


def run_case(d, org, name, script, timeout, want_state, want_log, cmd,
             reports=False, log_dir=None, want_code=None):
    tid = make_template(d, org, name, script, timeout)
    ws = d.must(201, "POST", "/api/v2/users/me/workspaces",
                {"name": f"ws-{name}", "template_id": tid})
    wait_build(d, ws["latest_build"]["id"])
    p, log, token = start_agent(d, ws["id"], cmd, name, log_dir)
    if log_dir:
        log = os.path.join(log_dir, "atrium-agent.log")
    a = wait_for(f"{name}: lifecycle {want_state}",
                 lambda: (lambda a: a if a and a.get("lifecycle_state") ==
                          want_state else None)(agent_of(d, ws["id"])))
    CHECKS.check(a["lifecycle_state"] == want_state,
                 f"{name}: the agent reached {want_state}")
    text = wait_for(f"{name}: log line {want_log!r}",
                    lambda: (lambda t: t if want_log in t else None)(
                        agent_log(d, a["id"])))
    CHECKS.check(want_log in text, f"{name}: {want_log!r} is in the log")
    # the exit code rides with the start_error report (null otherwise)
    CHECKS.check(a.get("startup_script_exit_code", "absent") == want_code,
                 f"{name}: startup_script_exit_code is {want_code} (got "
                 f"{a.get('startup_script_exit_code', 'absent')})")
    if want_code is not None:
        out = show(d, f"ws-{name}")
        line = (f"{want_state} (startup script exited {want_code})")
        msg = f"{name}: `atrium show` prints {line!r}"
        CHECKS.check(line in out, msg if line in out else f"{msg} (got "
                     f"{out!r})")
    if reports:
        check_reports(d, name, a["id"])
    # stop: the agent shuts down, reports off and exits 0
    b = d.must(201, "POST", f"/api/v2/workspaces/{ws['id']}/builds",
               {"transition": "stop"})
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        fail(f"{name}: the agent did not exit after the stop")
    CHECKS.check(rc == 0, f"{name}: the agent exited 0 (got {rc})")
    wait_build(d, b["id"])
    text = agent_log(d, a["id"])
    CHECKS.check("-> off" in tail(log, 100000),
                 f"{name}: the agent reported off")
    CHECKS.check("saving work" in text,
                 f"{name}: the shutdown script's output is in the log")
    status, _ = d.call("GET", "/api/v2/workspaceagents/me/manifest",
                       token=token)
    CHECKS.check(status == 401, f"{name}: the token is refused after the "
                 f"stop (got {status})")
    agent_text = tail(log, 100000)
    CHECKS.check(token not in agent_text,
                 f"{name}: the agent's log does not hold its token")
    CHECKS.check(token not in tail(d.log, 10 ** 7),
                 f"{name}: the server's log does not hold the token")
    return a


def main():
    global DEP
    atrium, plugins, bundle = sys.argv[1:4]
    if not os.path.exists(os.path.join(plugins, "provisioner_echo.so")):
        print("skipped: no echo provisioner")
        return 77
    tmp = tempfile.mkdtemp(prefix="atrium-agent-e2e-")
    try:
        d = DEP = Deployment(atrium, plugins, tmp)
        d.start()
        org = set_up(d)
        launcher = [os.path.join(bundle, "atrium-agent")]
        run_case(d, org, "ready", "echo $GREETING from $(pwd)", "10s",
                 "ready", "hello from ", [atrium], reports=True)
        log_dir = os.path.join(tmp, "agent-logs")
        run_case(d, org, "fails", "echo failing; exit 3", "10s",
                 "start_error", "startup script exited with code 3",
                 launcher, log_dir=log_dir, want_code=3)
        st = os.stat(os.path.join(log_dir, "atrium-agent.log"))
        CHECKS.check(st.st_mode & 0o077 == 0,
                     "--log-dir: the agent's log file is private")
        run_case(d, org, "slow", "sleep 30", "1s", "start_timeout",
                 "startup script timed out", launcher)
        d.stop()
    finally:
        clean_up(tmp)
    return CHECKS.done()


if __name__ == "__main__":
    sys.exit(main())
