#!/usr/bin/env python3
"""A terraform-local workspace whose agent runs as a host process
(docs/agent.md, issue 14's acceptance).

A real server with the Terraform provisioner; the terraform-local starter
template (examples/templates/terraform-local) pushed with the CLI; a
workspace created with the CLI. Its start build writes
<root>/<owner>/<workspace>/agent.env (mode 0600); the test then does what
an operator's systemd unit does: `atrium agent --env-file <that file>` in
the workspace's directory, as the file's owner (the build user when the
server is root). Then:
- the agent reaches `ready` through the API, its startup log is readable
  through GET /api/v2/workspaceagents/{id}/logs and `atrium logs WS
  --agent`; `atrium show WS` prints the agent line and the log tail;
  `atrium list` shows the workspace without an agent mark (with one,
  "agent connecting", before the agent runs);
- `atrium stop WS`: the agent reports `off` and exits 0, agent.env is
  gone, the old token gets 401 on an agent route, and the token is in no
  log.
Every wait is a bounded poll for a state.

usage: agent_terraform.py ATRIUM PLUGIN_DIR SOURCE_DIR
Exits 77 (skipped) without /usr/local/bin/terraform.
"""
import http.client
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "hardening"))
from server import Checks, free_port  # noqa: E402

TERRAFORM = "/usr/local/bin/terraform"
RUN_AS = "atrium-build"
WS = "dev"
CHECKS = Checks()
# What a failing run must stop (by PID) and show.
LEFT = {"server": None, "agent": None, "tmp": None}


def tail(path, n=3000):
    if not os.path.exists(path):
        return ""
    return open(path, errors="replace").read()[-n:]


def stop_proc(p, sig=signal.SIGTERM, seconds=15):
    if p is None or p.poll() is not None:
        return
    p.send_signal(sig)
    try:
        p.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def fail(msg):
    print("FAIL:", msg)
    CHECKS.failures.append(msg)
    stop_proc(LEFT["agent"], signal.SIGKILL)
    stop_proc(LEFT["server"])
    tmp = LEFT["tmp"]
    if tmp:
        for name in ("server.log", "agent.log", "cli.out"):
            print(f"--- {name} (tail):\n" + tail(os.path.join(tmp, name)))
        print("kept", tmp)
    sys.exit(1)


def wait_for(what, fn, seconds=60):
    """Poll fn (bounded) until it returns something true; that value."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    fail(f"timed out waiting for {what} ({seconds}s)")


def build_user():
    """Who builds run as: provisioner.run_as when the server is root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUN_AS)
    except KeyError:
        print(f"note: no user {RUN_AS}: builds run as root")
        return None


class Server:
    def __init__(self, atrium, plugins, tmp, root):
        self.atrium, self.tmp = atrium, tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(tmp, "server.log")
        self.conf = os.path.join(tmp, "atrium.yaml")
        self.token = None
        self.proc = None
        with open(self.conf, "w") as f:
            f.write(f"http:\n  address: 127.0.0.1:{self.port}\n"
                    f"access_url: {self.url}\n"
                    f"data_dir: {tmp}/data\n"
                    f"plugin_dirs: [{plugins}]\n"
                    "plugins:\n  storage_sqlite:\n    enabled: true\n"
                    "  auth_password:\n    enabled: true\n"
                    "  provisioner_terraform:\n    enabled: true\n"
                    f"    binary: {TERRAFORM}\n")
        # main.tf reads the workspaces' root from TF_VAR_root, which the
        # plugin passes on from the server's environment.
        self.env = dict(os.environ, TF_VAR_root=root)

    def start(self):
        self.proc = subprocess.Popen(
            [self.atrium, "server", "--config", self.conf],
            stdout=open(self.log, "a"), stderr=subprocess.STDOUT,
            env=self.env)
        LEFT["server"] = self.proc

        def up():
            if self.proc.poll() is not None:
                fail("the server exited while starting")
            try:
                return self.call("GET", "/readyz")[0] == 200
            except OSError:
                return False
        wait_for("the server's start", up, 30)

    def call(self, method, path, body=None, token=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": "application/json"}
        tok = token or self.token
        if tok:
            headers["Atrium-Session-Token"] = tok
        c.request(method, path,
                  body=json.dumps(body) if body is not None else None,
                  headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data

    def must(self, want, method, path, body=None):
        status, answer = self.call(method, path, body)
        if status != want:
            fail(f"{method} {path}: {status} {answer}, want {want}")
        return answer


def cli(atrium, tmp, args, stdin=None, timeout=300):
    """The CLI's output (stdout and stderr), failing on a non-zero exit."""
    out = os.path.join(tmp, "cli.out")
    with open(out, "w") as f:
        r = subprocess.run([atrium] + args, input=stdin, stdout=f,
                           stderr=subprocess.STDOUT, text=True,
                           timeout=timeout)
    text = open(out, errors="replace").read()
    with open(os.path.join(tmp, "cli-all.log"), "a") as f:
        f.write(text)
    if r.returncode != 0:
        fail(f"atrium {' '.join(args)} exited {r.returncode}")
    return text


def the_agent(s, ws_id):
    ws = s.must(200, "GET", f"/api/v2/workspaces/{ws_id}")
    for r in ws["latest_build"].get("resources") or []:
        for a in r.get("agents") or []:
            return a
    return None


def agent_log(s, agent_id):
    _, lines = s.call("GET", f"/api/v2/workspaceagents/{agent_id}/logs")
    if isinstance(lines, dict):
        lines = lines.get("logs", [])
    return "\n".join(line.get("output", "") for line in lines or [])


def wait_build(s, ws_id, transition):
    def done():
        b = s.must(200, "GET", f"/api/v2/workspaces/{ws_id}")["latest_build"]
        if b["transition"] == transition and b["job"]["status"] in (
                "succeeded", "failed", "canceled"):
            return b
        return None
    b = wait_for(f"the {transition} build", done, 240)
    if b["job"]["status"] != "succeeded":
        fail(f"the {transition} build: {b['job']}")
    return b


def runs_as(atrium, uid, gid):
    """Whether the file's owner can run the binary (a build tree under a
    private home is out of the build user's reach)."""
    try:
        return subprocess.run([atrium, "version"], user=uid, group=gid,
                              extra_groups=[], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30,
                              cwd="/").returncode == 0
    except OSError:
        return False


def start_agent(atrium, tmp, env_file, wsdir):
    """`atrium agent --env-file FILE` as the file's owner, in the
    workspace's directory with it as HOME: what the systemd unit in the
    template's README does. The process and the user it runs as."""
    st = os.stat(env_file)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "HOME": wsdir, "ATRIUM_AGENT_LOG_FLUSH": "50ms",
           "ATRIUM_AGENT_KILL_GRACE": "1s"}
    kw, uid = {}, os.geteuid()
    if st.st_uid != uid:
        if runs_as(atrium, st.st_uid, st.st_gid):
            kw = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}
            uid = st.st_uid
        else:
            print(f"note: uid {st.st_uid} cannot run {atrium}: the agent "
                  "runs as this test's user")
    p = subprocess.Popen([atrium, "agent", "--env-file", env_file],
                         stdout=open(os.path.join(tmp, "agent.log"), "w"),
                         stderr=subprocess.STDOUT, env=env, cwd=wsdir,
                         stdin=subprocess.DEVNULL, **kw)
    LEFT["agent"] = p
    return p, pwd.getpwuid(uid).pw_name


def read_token(env_file):
    for line in open(env_file):
        if line.startswith("ATRIUM_AGENT_TOKEN="):
            return line.split("=", 1)[1].strip()
    fail("agent.env holds no ATRIUM_AGENT_TOKEN")


def check_ready(atrium, tmp, s, ws_id, wsdir, user):
    a = wait_for("lifecycle ready", lambda: (
        lambda a: a if a and a.get("lifecycle_state") == "ready" else None)(
            the_agent(s, ws_id)), 120)
    CHECKS.check(a.get("status") == "connected",
                 f"the agent is connected (got {a.get('status')})")
    want = f"agent started in {wsdir} as {user}"
    text = wait_for("the startup line in the API's log", lambda: (
        lambda t: t if want in t else None)(agent_log(s, a["id"])), 30)
    CHECKS.check(want in text, f"GET .../logs holds {want!r}")
    out = cli(atrium, tmp, ["logs", WS, "--agent"])
    CHECKS.check(want in out, f"`atrium logs {WS} --agent` prints {want!r}")
    out = cli(atrium, tmp, ["show", WS])
    CHECKS.check("agent main: connected, ready" in out,
                 "`atrium show` prints the agent line (connected, ready)")
    CHECKS.check(want in out, "`atrium show` prints the log tail")
    row = list_row(atrium, tmp)
    CHECKS.check("running" in row and "agent" not in row,
                 f"`atrium list`: {WS} running without an agent mark "
                 f"({row!r})")
    return a


def list_row(atrium, tmp):
    rows = [ln for ln in cli(atrium, tmp, ["list"]).splitlines()
            if ln.split()[:1] == [WS]]
    if len(rows) != 1:
        fail(f"`atrium list` has {len(rows)} rows for {WS}")
    return rows[0]


def check_stopped(atrium, tmp, s, ws_id, agent_id, agent, env_file, token):
    out = cli(atrium, tmp, ["stop", WS])
    CHECKS.check("(stop) succeeded" in out, "`atrium stop` succeeded")
    try:
        rc = agent.wait(timeout=120)
    except subprocess.TimeoutExpired:
        fail("the agent did not exit after the stop")
    CHECKS.check(rc == 0, f"the agent exited 0 (got {rc})")
    wait_build(s, ws_id, "stop")
    a = s.must(200, "GET", f"/api/v2/workspaceagents/{agent_id}")
    CHECKS.check(a.get("lifecycle_state") == "off",
                 f"the agent reported off (got {a.get('lifecycle_state')})")
    CHECKS.check(not os.path.exists(env_file),
                 "the stop build removed agent.env")
    status, _ = s.call("GET", "/api/v2/workspaceagents/me/manifest",
                       token=token)
    CHECKS.check(status == 401,
                 f"the old agent token is refused (got {status})")
    for name in ("server.log", "agent.log", "cli-all.log"):
        text = tail(os.path.join(tmp, name), 10 ** 7)
        CHECKS.check(token not in text,
                     f"{name} does not hold the agent token")
        # the Sanitize build's reports, which do not always change a status
        CHECKS.check(not any(s in text for s in ("Sanitizer",
                                                  "runtime error")),
                     f"{name} holds no sanitizer report")


def check_build_secret(s, build_id, token):
    """The token reached agent.env through local-exec's environment only:
    neither the stored Terraform state nor the build log holds it."""
    for what in ("state", "logs"):
        status, body = s.call("GET",
                              f"/api/v2/workspacebuilds/{build_id}/{what}")
        text = body if isinstance(body, (bytes, str)) else json.dumps(body)
        if isinstance(text, bytes):
            text = text.decode(errors="replace")
        CHECKS.check(status == 200 and token not in text,
                     f"the start build's {what} does not hold the agent "
                     f"token (status {status})")
        if what == "state":  # else the check above proves nothing
            CHECKS.check("agent_env" in text,
                         "the state holds terraform_data.agent_env")


def run(atrium, plugins, src, tmp, root):
    s = Server(atrium, plugins, tmp, root)
    s.start()
    password = "Tflocal-%s-pw" % uuid.uuid4().hex[:8]
    cli(atrium, tmp, ["login", s.url, "--first-user", "--username", "admin",
                      "--email", "admin@example.com"], stdin=password)
    s.token = s.must(201, "POST", "/api/v2/users/login",
                     {"email": "admin@example.com",
                      "password": password})["session_token"]
    cli(atrium, tmp, ["templates", "push",
                      os.path.join(src, "examples/templates/terraform-local"),
                      "-y"])
    cli(atrium, tmp, ["create", WS, "--template", "terraform-local", "-y"])
    ws = s.must(200, "GET", f"/api/v2/users/me/workspace/{WS}")
    start = wait_build(s, ws["id"], "start")
    wsdir = os.path.join(root, "admin", WS)
    env_file = os.path.join(wsdir, "agent.env")
    wait_for("agent.env", lambda: os.path.exists(env_file), 30)
    st = os.stat(env_file)
    CHECKS.check(st.st_mode & 0o077 == 0, "agent.env is private (0600)")
    token = read_token(env_file)
    check_build_secret(s, start["id"], token)
    # No agent yet: the mark the ready check below must not find.
    row = list_row(atrium, tmp)
    CHECKS.check("running (agent connecting)" in row,
                 f"`atrium list` marks {WS} before its agent runs ({row!r})")
    agent, user = start_agent(atrium, tmp, env_file, wsdir)
    a = check_ready(atrium, tmp, s, ws["id"], wsdir, user)
    check_stopped(atrium, tmp, s, ws["id"], a["id"], agent, env_file, token)
    LEFT["agent"] = None
    s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait(timeout=60)
    CHECKS.check(rc == 0, f"the server stopped with status 0 (got {rc})")
    LEFT["server"] = None


def main():
    atrium, plugins, src = sys.argv[1:4]
    if not os.access(TERRAFORM, os.X_OK):
        print(f"skipped: {TERRAFORM} is missing")
        return 77
    if not os.path.exists(os.path.join(plugins, "provisioner_terraform.so")):
        print("skipped: no terraform provisioner")
        return 77
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(var, None)
    tmp = LEFT["tmp"] = tempfile.mkdtemp(prefix="atrium-agent-tf-")
    os.environ["ATRIUM_CONFIG_DIR"] = os.path.join(tmp, "config")
    os.environ["ATRIUM_LOG_FORMAT"] = "text"
    # The workspaces' root: the build user's (the template README's
    # `install -d -o atrium-build -m 0700`), outside tmp (0700, root's).
    root = tempfile.mkdtemp(prefix="atrium-agent-tf-ws-")
    bu = build_user()
    if bu:
        os.chown(root, bu.pw_uid, bu.pw_gid)
    try:
        run(atrium, plugins, src, tmp, root)
    finally:
        stop_proc(LEFT["agent"], signal.SIGKILL)
        stop_proc(LEFT["server"])
        shutil.rmtree(root, ignore_errors=True)
        if not CHECKS.failures:
            shutil.rmtree(tmp, ignore_errors=True)
    return CHECKS.done()


if __name__ == "__main__":
    sys.exit(main())
