"""What the connect tests share (docs/connect.md, docs/design/connect.md):
a real `atrium server`, a template from tests/connect/templates pushed with
the CLI, a workspace `dev` created with the CLI, its agent ready; then the
real clients: OpenSSH's ssh/scp/sftp, rsync, tmux, curl, a WebSocket
client, `atrium port-forward`.

Every wait is a bounded poll for a state; every process a test starts is
stopped by its PID (Ctx.procs, Ctx.pid_files). A failure prints the tails
of the logs and keeps the temporary directory.
"""
import hashlib
import http.client
import json
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "hardening"))
from server import Checks, free_port  # noqa: E402,F401

TERRAFORM = "/usr/local/bin/terraform"
RUN_AS = "atrium-build"
WS = "dev"
PASSWORD = "Connect-tests-%s" % uuid.uuid4().hex[:8]
# Debian's python3: its python3-websocket and jupyter-notebook (the
# interpreter first on PATH may be another one).
PYTHON = "/usr/bin/python3"


class Failed(Exception):
    pass


CURRENT = []  # the Ctx of this process, for run_test's cleanup


class Ctx:
    """One deployment: the server, the CLI's config, the workspace."""

    def __init__(self, atrium, plugins, src, tmp):
        # absolute: the agent runs in the workspace's directory
        self.atrium, self.plugins, self.src, self.tmp = (
            os.path.abspath(atrium), os.path.abspath(plugins),
            os.path.abspath(src), tmp)
        self.checks = Checks()
        CURRENT.append(self)
        self.cleanup_dirs = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = os.path.join(tmp, "server.log")
        self.token = None
        self.server = None
        self.agent = None
        self.agent_id = None
        self.procs = []       # (Popen, what) to stop on the way out
        self.pid_files = []   # files of session ids in a workspace
        self.logs = [self.log]
        self.home = os.path.join(tmp, "home")  # the temp HOME for ssh
        os.makedirs(os.path.join(self.home, ".ssh"), mode=0o700)
        self.env = dict(os.environ)
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                    "no_proxy", "NO_PROXY"):
            self.env.pop(var, None)
        self.env.update(ATRIUM_CONFIG_DIR=os.path.join(tmp, "config"),
                        ATRIUM_LOG_FORMAT="text", HOME=self.home)

    # ---- failing and cleaning up

    def check(self, cond, what):
        self.checks.check(cond, what)
        return cond

    def fail(self, msg):
        print("FAIL:", msg)
        self.checks.failures.append(msg)
        raise Failed(msg)

    def dump(self):
        for path in self.logs:
            if os.path.exists(path):
                text = open(path, errors="replace").read()[-4000:]
                print(f"--- {path} (tail):\n{text}")

    def close(self):
        if hasattr(self, "real_before"):
            self.check(self.real_ssh_config() == self.real_before,
                       "this machine's own ~/.ssh/config is untouched")
        for p, _ in reversed(self.procs):
            stop_proc(p, signal.SIGTERM, 10)
        if getattr(self, "deleting", False) and self.server and \
                self.server.poll() is None:
            # leave no container on the shared engine
            try:
                self.call("POST", f"/api/v2/workspaces/{self.ws_id}/builds",
                          {"transition": "delete"})
                self.wait_build("delete", 120)
            except (OSError, Failed):
                print("note: the workspace could not be deleted")
        self.kill_workspace_servers()
        stop_proc(self.agent, signal.SIGKILL)
        stop_proc(self.server, signal.SIGTERM, 30)

    def kill_workspace_servers(self):
        """SIGTERM to every process in the sessions listed in pid_files
        (the startup scripts' sessions: the servers and their children),
        SIGKILL to what is left after 10 s."""
        sids = set()
        for f in self.pid_files:
            try:
                sids |= {int(x) for x in open(f).read().split()}
            except (OSError, ValueError):
                continue
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in in_sessions(sids):
                try:
                    os.kill(pid, sig)
                except (ProcessLookupError, PermissionError):
                    pass
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and in_sessions(sids):
                time.sleep(0.1)
        self.pid_files = []

    # ---- the server

    def start_server(self, provisioners):
        conf = os.path.join(self.tmp, "atrium.yaml")
        with open(conf, "w") as f:
            f.write(f"http:\n  address: 127.0.0.1:{self.port}\n"
                    f"access_url: {self.url}\n"
                    f"data_dir: {self.tmp}/data\n"
                    f"plugin_dirs: [{self.plugins}]\n"
                    "plugins:\n  storage_sqlite:\n    enabled: true\n"
                    "  auth_password:\n    enabled: true\n"
                    f"{provisioners}")
        self.server = subprocess.Popen(
            [self.atrium, "server", "--config", conf],
            stdout=open(self.log, "a"), stderr=subprocess.STDOUT,
            env=self.server_env())

        def up():
            if self.server.poll() is not None:
                self.fail("the server exited while starting")
            try:
                return self.call("GET", "/readyz")[0] == 200
            except OSError:
                return False
        self.wait_for("the server's start", up, 30)

    def server_env(self):
        return dict(self.env)

    def call(self, method, path, body=None, token=None, headers=None,
             raw=False):
        """(status, JSON or bytes, response headers)[:2] unless raw."""
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        h = {"Content-Type": "application/json"}
        tok = self.token if token is None else token
        if tok:
            h["Atrium-Session-Token"] = tok
        h.update(headers or {})
        c.request(method, path,
                  body=json.dumps(body) if body is not None else None,
                  headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        if raw:
            return r.status, data, r
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data

    def must(self, want, method, path, body=None, **kw):
        status, answer = self.call(method, path, body, **kw)
        if status != want:
            self.fail(f"{method} {path}: {status} {answer}, want {want}")
        return answer

    def wait_for(self, what, fn, seconds=60):
        """Poll fn (bounded) until it returns something true; that value."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            v = fn()
            if v:
                return v
            time.sleep(0.1)
        self.fail(f"timed out waiting for {what} ({seconds}s)")

    # ---- the CLI

    def cli(self, args, stdin=None, timeout=300, ok=True, env=None):
        """(exit status, stdout+stderr) of `atrium ARGS`."""
        out = os.path.join(self.tmp, "cli.out")
        with open(out, "w") as f:
            r = subprocess.run([self.atrium] + args, input=stdin, stdout=f,
                               stderr=subprocess.STDOUT, text=True,
                               timeout=timeout, env=env or self.env)
        text = open(out, errors="replace").read()
        with open(os.path.join(self.tmp, "cli-all.log"), "a") as f:
            f.write(f"$ atrium {' '.join(args)}\n{text}")
        if ok and r.returncode != 0:
            print(text[-3000:])
            self.fail(f"atrium {' '.join(args)} exited {r.returncode}")
        return r.returncode, text

    def first_user(self):
        self.cli(["login", self.url, "--first-user", "--username", "admin",
                  "--email", "admin@example.com"], stdin=PASSWORD)
        self.token = self.must(201, "POST", "/api/v2/users/login",
                               {"email": "admin@example.com",
                                "password": PASSWORD})["session_token"]

    def member(self, name):
        """A second member of the organization; their session token."""
        org = self.must(200, "GET", "/api/v2/users/me")
        org_id = (org.get("organization_ids") or [None])[0]
        body = {"email": f"{name}@example.com", "username": name,
                "password": PASSWORD}
        if org_id:
            body["organization_id"] = org_id
        self.must(201, "POST", "/api/v2/users", body)
        return self.must(201, "POST", "/api/v2/users/login",
                         {"email": f"{name}@example.com",
                          "password": PASSWORD}, token="")["session_token"]

    # ---- templates and the workspace

    def template_dir(self, kind, subst, base):
        """tests/connect/templates/KIND/template.yaml beside the starter
        template's other files (BASE, under examples/templates), every
        @NAME@ replaced from subst: a directory to push."""
        d = os.path.join(self.tmp, "template-" + kind)
        shutil.copytree(os.path.join(self.src, "examples", "templates", base),
                        d)
        text = open(os.path.join(HERE, "templates", kind,
                                 "template.yaml")).read()
        for k, v in subst.items():
            text = text.replace(f"@{k}@", str(v))
        left = re.findall(r"@[A-Z_]+@", text)
        if left:
            self.fail(f"template {kind}: no value for {sorted(set(left))}")
        with open(os.path.join(d, "template.yaml"), "w") as f:
            f.write(text)
        return d

    def create_workspace(self, template_dir, name):
        self.cli(["templates", "push", template_dir, "--name", name, "-y"])
        self.cli(["create", WS, "--template", name, "-y"])
        ws = self.must(200, "GET", f"/api/v2/users/me/workspace/{WS}")
        self.ws_id = ws["id"]
        return ws

    def wait_build(self, transition, seconds=240):
        def done():
            b = self.must(200, "GET",
                          f"/api/v2/workspaces/{self.ws_id}")["latest_build"]
            if b["transition"] == transition and b["job"]["status"] in (
                    "succeeded", "failed", "canceled"):
                return b
            return None
        b = self.wait_for(f"the {transition} build", done, seconds)
        if b["job"]["status"] != "succeeded":
            self.fail(f"the {transition} build: {b['job']}")
        return b

    def the_agent(self):
        ws = self.must(200, "GET", f"/api/v2/workspaces/{self.ws_id}")
        for r in ws["latest_build"].get("resources") or []:
            for a in r.get("agents") or []:
                return a
        return None

    def wait_ready(self, seconds=120):
        a = self.wait_for("the agent's lifecycle ready", lambda: (
            lambda a: a if a and a.get("lifecycle_state") == "ready"
            and a.get("status") == "connected" else None)(self.the_agent()),
            seconds)
        self.agent_id = a["id"]
        return a

    def app_health(self, slug, want="healthy", seconds=90):
        def health():
            a = self.the_agent() or {}
            for app in a.get("apps") or []:
                if app.get("slug") == slug:
                    return app if app.get("health") == want else None
            return None
        return self.wait_for(f"app {slug} {want}", health, seconds)

    # ---- terraform-local: the agent as a host process

    def start_host_agent(self, wsdir):
        """`atrium agent --env-file WSDIR/agent.env` in the workspace's
        directory, as the file's owner when that user can run the binary
        (as agent_terraform.py does); the user it runs as."""
        env_file = os.path.join(wsdir, "agent.env")
        self.wait_for("agent.env", lambda: os.path.exists(env_file), 30)
        st = os.stat(env_file)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": wsdir,
               "LANG": "C.UTF-8", "ATRIUM_AGENT_LOG_FLUSH": "50ms",
               "ATRIUM_AGENT_KILL_GRACE": "1s",
               # the first stats report (tunnel and session counts, bytes)
               # within a second, not after 30: it runs beside the tunnels
               "ATRIUM_AGENT_STATS_INTERVAL": "1s"}
        kw, uid = {}, os.geteuid()
        if st.st_uid != uid and runs_as(self.atrium, st.st_uid, st.st_gid):
            kw = {"user": st.st_uid, "group": st.st_gid, "extra_groups": []}
            uid = st.st_uid
        log = os.path.join(self.tmp, "agent.log")
        self.logs.append(log)
        self.agent = subprocess.Popen(
            [self.atrium, "agent", "--env-file", env_file],
            stdout=open(log, "a"), stderr=subprocess.STDOUT, env=env,
            cwd=wsdir, stdin=subprocess.DEVNULL, **kw)
        return pwd.getpwuid(uid).pw_name

    # ---- OpenSSH through `atrium config-ssh`

    def config_ssh_cmd(self, *args):
        """`atrium config-ssh --ssh-config <temp HOME>/.ssh/config ARGS`:
        config-ssh's ~ is the passwd entry's home, as OpenSSH's, so the
        file is always named and this machine's own ~/.ssh/config is never
        touched (real_ssh_config_untouched checks it)."""
        return ["config-ssh", "--ssh-config",
                os.path.join(self.home, ".ssh", "config")] + list(args)

    def real_ssh_config(self):
        p = os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".ssh", "config")
        try:
            return open(p, "rb").read()
        except OSError:
            return None

    def config_ssh(self):
        """`atrium config-ssh` into the temp HOME: the managed block, written
        once (a second run changes nothing, --dry-run writes nothing)."""
        self.real_before = self.real_ssh_config()
        cfg = os.path.join(self.home, ".ssh", "config")
        with open(cfg, "w") as f:
            f.write("# mine, before atrium's block\nHost other.example\n"
                    "  User someone\n")
        self.cli(self.config_ssh_cmd("-y"))
        text = open(cfg).read()
        self.check("Host atrium.dev" in text or re.search(
            r"Host .*atrium\.\*", text) is not None,
            "config-ssh wrote a Host entry for atrium.dev")
        self.check("ProxyCommand" in text and "--stdio" in text,
                   "the entry's ProxyCommand is `atrium ssh --stdio`")
        self.check("Host other.example" in text,
                   "config-ssh kept the user's own entries")
        self.cli(self.config_ssh_cmd("-y"))
        self.check(open(cfg).read() == text,
                   "a second config-ssh leaves ~/.ssh/config as it was")
        self.ssh_config = cfg
        return text

    def ssh_opts(self, strict=None):
        """-F: OpenSSH reads ~/.ssh from the passwd entry, not $HOME. The
        block's own UserKnownHostsFile and StrictHostKeyChecking
        (accept-new) apply unless strict is given."""
        o = ["-F", self.ssh_config, "-o", "BatchMode=yes"]
        if strict:
            o += ["-o", f"StrictHostKeyChecking={strict}"]
        return o

    def ssh(self, command, stdin=None, strict=None, timeout=120,
            extra=(), env=None):
        """CompletedProcess of `ssh atrium.dev COMMAND` (bytes)."""
        return subprocess.run(
            ["ssh"] + self.ssh_opts(strict) + list(extra) +
            ["atrium." + WS, command], input=stdin, capture_output=True,
            timeout=timeout, env=env or self.env)

    def spawn(self, args, log_name, env=None):
        log = os.path.join(self.tmp, log_name)
        self.logs.append(log)
        p = subprocess.Popen(args, stdout=open(log, "a"),
                             stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=env or self.env)
        self.procs.append((p, log_name))
        return p

    def stop(self, p):
        stop_proc(p, signal.SIGTERM, 10)
        self.procs = [(q, n) for q, n in self.procs if q is not p]


def in_sessions(sids):
    """The PIDs of the processes whose session id is in sids (/proc)."""
    pids = []
    if not sids:
        return pids
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session: comm may hold spaces
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and int(fields[3]) in sids:
            pids.append(int(d))
    return pids


def stop_proc(p, sig=signal.SIGTERM, seconds=15):
    if p is None or p.poll() is not None:
        return
    p.send_signal(sig)
    try:
        p.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def runs_as(atrium, uid, gid):
    try:
        return subprocess.run([atrium, "version"], user=uid, group=gid,
                              extra_groups=[], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=30,
                              cwd="/").returncode == 0
    except OSError:
        return False


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def http_get(port, path, headers=None, timeout=10):
    """(status, body bytes, headers) of a plain GET on loopback; raises
    OSError when nothing answers."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, body, r


def section(c, fn, *args):
    """fn(c, *args), one group of checks: a failure in it (a Failed, a
    client that hung) is recorded and the next group still runs, so one
    report says which parts work."""
    import traceback
    try:
        return fn(c, *args)
    except Failed:
        return None
    except Exception as e:  # noqa: BLE001 — recorded as a failure
        traceback.print_exc()
        c.checks.failures.append(f"{fn.__name__}: {e!r}")
        print(f"FAIL {fn.__name__}: {e!r}")
        return None


def run_test(name, body):
    """body() with the cleanup and the report every connect test has: the
    process's exit status. A failure keeps the temporary directory and
    prints the logs' tails."""
    import traceback
    ctx = None
    try:
        body()
    except Failed:
        pass
    except Exception:  # noqa: BLE001 — reported as a failure, with where
        traceback.print_exc()
        if CURRENT:
            CURRENT[0].checks.failures.append("an exception (above)")
    ctx = CURRENT[0] if CURRENT else None
    if ctx is None:
        print(f"{name}: failed before the server started")
        return 1
    if ctx.checks.failures:
        ctx.dump()
    ctx.close()
    for d in ctx.cleanup_dirs:
        # the build user's files: removed as root, whoever made them
        subprocess.run(["rm", "-rf", d])
    if not ctx.checks.failures:
        shutil.rmtree(ctx.tmp, ignore_errors=True)
    else:
        print("kept", ctx.tmp)
    print(f"{name}: ", end="")
    return ctx.checks.done()
