"""A real `atrium server` for the hardening tests: start it on SQLite in a
temporary directory, talk to it, stop it by its PID."""
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, token=None, timeout=30,
            ctype=None):
    """(status, JSON answer or raw bytes); raises OSError when the server
    hangs up or is gone. ctype: the Content-Type, JSON unless told."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": ctype or "application/json"}
    if token:
        headers["Atrium-Session-Token"] = token
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, json.loads(data) if data else None
    except ValueError:
        return r.status, data


def targz(files):
    """{name: text} as a .tar.gz archive (bytes), for a template upload."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def stop_process(proc):
    """SIGTERM, then SIGKILL when it has not exited in 15 s; reaped."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Server:
    def __init__(self, atrium, plugins, tmp, http_extra="", extra="",
                 plugins_extra=""):
        """http_extra: more lines under http: (each "  key: value\n");
        extra: more top-level YAML; plugins_extra: more under plugins:."""
        self.atrium, self.plugins, self.tmp = atrium, plugins, tmp
        self.http_extra, self.extra = http_extra, extra
        self.plugins_extra = plugins_extra
        self.proc, self.port = None, None
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
            os.environ.pop(var, None)

    def start(self, ready=True):
        """Start; wait (bounded, 30 s) until /healthz answers, and also
        /readyz when ready is true."""
        self.port = free_port()
        conf = os.path.join(self.tmp, "atrium.yaml")
        with open(conf, "w") as f:
            f.write(f"http:\n  address: 127.0.0.1:{self.port}\n"
                    f"{self.http_extra}"
                    f"data_dir: {self.tmp}/data\n"
                    f"plugin_dirs: [{self.plugins}]\n"
                    f"{self.extra}"
                    "plugins:\n  storage_sqlite:\n    enabled: true\n"
                    "  auth_password:\n    enabled: true\n"
                    f"{self.plugins_extra}")
        self.log = os.path.join(self.tmp, "server.log")
        self.proc = subprocess.Popen(
            [self.atrium, "server", "--config", conf],
            stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        path = "/readyz" if ready else "/healthz"
        for _ in range(300):
            if self.proc.poll() is not None:
                sys.exit("the server exited while starting:\n" +
                         open(self.log).read()[-2000:])
            try:
                if request(self.port, "GET", path, timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        self.stop()
        sys.exit(f"the server did not answer {path} in 30 s")

    def request(self, *args, **kw):
        return request(self.port, *args, **kw)

    def alive(self):
        return self.proc.poll() is None and \
            request(self.port, "GET", "/healthz", timeout=5)[0] == 200

    def first_user(self):
        """Create the first user and sign in: the session token."""
        first = {"email": "admin@example.com", "username": "admin",
                 "password": "Hardening-tests-1234", "name": "Admin"}
        status, _ = self.request("POST", "/api/v2/users/first",
                                 json.dumps(first))
        assert status == 201, f"first user: {status}"
        status, answer = self.request("POST", "/api/v2/users/login", json.dumps(
            {"email": first["email"], "password": first["password"]}))
        assert status == 201, f"login: {status}"
        return answer["session_token"]

    def stop(self):
        if not self.proc:
            return
        stop_process(self.proc)
        self.proc = None

    def log_tail(self, n=3000):
        return open(self.log).read()[-n:]


class Checks:
    def __init__(self):
        self.failures = []

    def check(self, cond, what):
        print(("ok   " if cond else "FAIL ") + what)
        if not cond:
            self.failures.append(what)

    def done(self):
        print(f"{len(self.failures)} failed")
        return 1 if self.failures else 0
