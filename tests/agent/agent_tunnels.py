#!/usr/bin/env python3
"""Tunnels through a real server into a real agent (docs/design/connect.md).

A server on SQLite with the echo provisioner writing agent env files; a
workspace whose agent (the bundle's launcher) runs as a host process.
Through the server's routes, as a user with a session:
- tcp: 4 MiB to a local echo server and back, byte for byte; the user's
  EOF reaches the echo server, whose EOF comes back as the tunnel's end;
- tcp to a port nothing listens on: 502 with the agent's reason;
- ssh: OpenSSH's ssh with this script as its ProxyCommand (a RAW tunnel
  of kind ssh): `echo $((6*7))` prints 42, `false` exits 1, and the host
  key is the same on a second connection and after the agent process was
  killed and started again (the manifest's key);
- pty: the web terminal's WebSocket: `echo $((6*7))` shows 42, and a new
  connection with the same reconnect id replays it;
- SIGTERM with a tunnel and an ssh session open: the agent exits 0 and
  both end.
Every wait is a bounded poll for a state.

usage: agent_tunnels.py ATRIUM PLUGIN_DIR BUNDLE_DIR
       agent_tunnels.py --proxy PORT AGENT_ID   (ssh's ProxyCommand; the
       session token in ATRIUM_TEST_TOKEN)
"""
import base64
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_e2e as e2e  # noqa: E402
from agent_e2e import (CHECKS, Deployment, agent_of, clean_up,  # noqa: E402
                       fail, set_up, start_agent, wait_build, wait_for)
from server import targz  # noqa: E402

TEMPLATE = ("name: tunnels\nprovisioner: echo\n"
            "agent:\n"
            "  startup_script: \"true\"\n"
            "  startup_script_timeout: 10s\n")


# ---- the user's side of a tunnel ------------------------------------------

def open_raw(port, token, path, extra=""):
    """A RAW tunnel (Upgrade: atrium-tunnel): (socket, bytes already
    read past the 101) or (None, (status, head, body)) when refused."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "Connection: Upgrade\r\nUpgrade: atrium-tunnel\r\n"
               f"Atrium-Session-Token: {token}\r\n{extra}\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    if status == 101:
        return s, rest
    s.settimeout(10)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
            if b"content-length:" in head.lower():
                n = int(head.lower().split(b"content-length:")[1]
                        .split(b"\r\n")[0])
                if len(rest) >= n:
                    break
    except socket.timeout:
        pass
    s.close()
    return None, (status, head.decode(errors="replace"),
                  rest.decode(errors="replace"))


def proxy(port, agent_id):
    """ssh's ProxyCommand: stdin/stdout spliced with an ssh tunnel."""
    token = os.environ["ATRIUM_TEST_TOKEN"]
    s, rest = open_raw(port, token,
                       f"/api/v2/workspaceagents/{agent_id}/tunnel?kind=ssh")
    if s is None:
        sys.stderr.write(f"tunnel refused: {rest}\n")
        return 1
    s.settimeout(None)
    out = sys.stdout.buffer
    if rest:
        out.write(rest)
        out.flush()

    def up():
        while True:
            b = os.read(0, 65536)
            if not b:
                s.shutdown(socket.SHUT_WR)
                return
            s.sendall(b)
    threading.Thread(target=up, daemon=True).start()
    while True:
        b = s.recv(65536)
        if not b:
            return 0
        out.write(b)
        out.flush()


# ---- a local echo server (the workspace's service) -------------------------

class Echo:
    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.eofs = 0
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.one, args=(c,), daemon=True).start()

    def one(self, c):
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        self.eofs += 1
        c.shutdown(socket.SHUT_WR)
        c.close()


def check_tcp(d, agent_id):
    echo = Echo()
    s, rest = open_raw(d.port, d.token,
                       f"/api/v2/workspaceagents/{agent_id}/tunnel"
                       f"?kind=tcp&port={echo.port}")
    if s is None:
        fail(f"tcp tunnel refused: {rest}")
    data = os.urandom(4 << 20)
    got = [rest]

    def reader():
        while True:
            b = s.recv(1 << 16)
            if not b:
                return
            got.append(b)
    t = threading.Thread(target=reader)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)  # the user's EOF
    t.join(60)
    CHECKS.check(not t.is_alive(), "tcp: the tunnel ended after both EOFs")
    back = b"".join(got)
    CHECKS.check(len(back) == len(data) and
                 hashlib.sha256(back).digest() == hashlib.sha256(data).digest(),
                 f"tcp: 4 MiB came back unchanged (got {len(back)} bytes)")
    CHECKS.check(wait_for("the echo server's EOF", lambda: echo.eofs >= 1),
                 "tcp: the user's EOF reached the workspace's service")
    s.close()
    echo.sock.close()
    # a port nothing listens on: the agent's reason, at once
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    closed = probe.getsockname()[1]
    probe.close()
    s, (status, _, body) = open_raw(
        d.port, d.token,
        f"/api/v2/workspaceagents/{agent_id}/tunnel?kind=tcp&port={closed}")
    CHECKS.check(s is None and status == 502,
                 f"tcp: a refused dial answers 502 (got {status})")
    CHECKS.check(f"cannot connect to 127.0.0.1:{closed}: connection refused"
                 in body, f"tcp: the agent's reason reaches the user: {body}")


def check_ssh(d, agent_id, restart):
    known = os.path.join(d.tmp, "known_hosts")
    me = os.path.abspath(__file__)
    env = dict(os.environ, ATRIUM_TEST_TOKEN=d.token)

    def ssh(cmd, strict="accept-new"):
        return subprocess.run(
            ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
             "-o", f"StrictHostKeyChecking={strict}",
             "-o", f"UserKnownHostsFile={known}",
             "-o", f"ProxyCommand={sys.executable} {me} --proxy "
                   f"{d.port} {agent_id}",
             "dev@atrium.tunnels", cmd],
            capture_output=True, text=True, env=env, timeout=60)
    r = ssh("echo $((6*7))")
    CHECKS.check(r.returncode == 0 and r.stdout.strip() == "42",
                 f"ssh: echo $((6*7)) printed 42 (rc {r.returncode}, "
                 f"out {r.stdout!r}, err {r.stderr[-500:]!r})")
    r = ssh("false", strict="yes")
    CHECKS.check(r.returncode == 1,
                 f"ssh: false exits 1, with the same host key (rc "
                 f"{r.returncode}, err {r.stderr[-500:]!r})")
    # A new agent process (kill -9, started again) serves the manifest's
    # key, not one of its own: the known key still matches.
    restart()
    seen = []

    def again():
        r = ssh("echo again", strict="yes")
        seen.append(r.stderr)
        return r.returncode == 0 and r.stdout.strip() == "again"
    wait_for("ssh through the restarted agent", again)
    CHECKS.check(not any("IDENTIFICATION HAS CHANGED" in e for e in seen),
                 "ssh: the restarted agent has the same host key")


def ws_frame(payload, opcode=1):
    mask = os.urandom(4)
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class Terminal:
    """The web terminal's WebSocket (docs/design/connect.md §3)."""

    def __init__(self, d, agent_id, reconnect):
        key = base64.b64encode(os.urandom(16)).decode()
        self.s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
        self.s.sendall((
            f"GET /api/v2/workspaceagents/{agent_id}/pty?reconnect="
            f"{reconnect}&width=80&height=24 HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{d.port}\r\nConnection: Upgrade\r\n"
            "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            f"Atrium-Session-Token: {d.token}\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                fail(f"pty: the upgrade was refused: {self.buf!r}")
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            fail(f"pty: the upgrade was refused: {head!r}")
        self.out = b""

    def send(self, text):
        self.s.sendall(ws_frame(json.dumps({"data": text}).encode()))

    def read_until(self, want):
        """Output until want shows up (bounded by the socket's timeout)."""
        while want not in self.out:
            while len(self.buf) < 2 or len(self.buf) < self.frame_len():
                chunk = self.s.recv(65536)
                if not chunk:
                    return False
                self.buf += chunk
            n, off = self.frame_len(), self.header_len()
            if self.buf[0] & 0x0f in (1, 2, 0):
                self.out += self.buf[off:n]
            self.buf = self.buf[n:]
        return True

    def header_len(self):
        ln = self.buf[1] & 0x7f
        return 2 + (2 if ln == 126 else 8 if ln == 127 else 0)

    def frame_len(self):
        if len(self.buf) < 2:
            return 2
        ln = self.buf[1] & 0x7f
        h = self.header_len()
        if len(self.buf) < h:
            return h
        if ln == 126:
            ln = struct.unpack(">H", self.buf[2:4])[0]
        elif ln == 127:
            ln = struct.unpack(">Q", self.buf[2:10])[0]
        return h + ln

    def close(self):
        self.s.close()


def check_pty(d, agent_id):
    rid = str(uuid.uuid4())
    t = Terminal(d, agent_id, rid)
    t.send("echo $((6*7))tunnel\r")
    CHECKS.check(t.read_until(b"42tunnel"),
                 "pty: the terminal ran echo $((6*7)) and showed 42")
    t.close()
    t = Terminal(d, agent_id, rid)
    CHECKS.check(t.read_until(b"42tunnel"),
                 "pty: a new connection with the same id replays the "
                 "scrollback")
    t.close()


def check_exit(d, agent_id, agent):
    """SIGTERM with a tunnel and an ssh session open: the agent shuts
    down, exits 0, and the user's connections end."""
    echo = Echo()
    s, rest = open_raw(d.port, d.token,
                       f"/api/v2/workspaceagents/{agent_id}/tunnel"
                       f"?kind=tcp&port={echo.port}")
    if s is None:
        fail(f"tcp tunnel refused: {rest}")
    s.sendall(b"still here")
    got = rest
    while len(got) < 10:
        b = s.recv(100)
        if not b:
            break
        got += b
    CHECKS.check(got == b"still here", "exit: the tunnel is open")
    env = dict(os.environ, ATRIUM_TEST_TOKEN=d.token)
    me = os.path.abspath(__file__)
    sh = subprocess.Popen(
        ["ssh", "-F", "/dev/null", "-o", "BatchMode=yes",
         "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
         "-o", f"ProxyCommand={sys.executable} {me} --proxy "
               f"{d.port} {agent_id}",
         "dev@atrium.tunnels", "echo up $$; exec sleep 600"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    line = sh.stdout.readline().split()
    CHECKS.check(len(line) == 2 and line[0] == b"up",
                 "exit: an ssh session runs")
    pid = int(line[1]) if len(line) == 2 else 0
    agent.send_signal(15)
    try:
        rc = agent.wait(timeout=60)
    except subprocess.TimeoutExpired:
        fail("exit: the agent did not exit after SIGTERM")
    CHECKS.check(rc == 0, f"exit: the agent exited 0 (got {rc})")
    s.settimeout(30)
    try:
        end = s.recv(100)
    except ConnectionResetError:
        end = b""
    CHECKS.check(end == b"", "exit: the user's tunnel ended")
    try:
        sh.wait(timeout=30)
    except subprocess.TimeoutExpired:
        sh.kill()
        fail("exit: the ssh client went on after the agent exited")
    CHECKS.check(sh.returncode != 0,
                 f"exit: the ssh session ended (rc {sh.returncode})")

    def gone():
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return True
    CHECKS.check(pid > 0 and wait_for("the session's process to end", gone),
                 "exit: the session's process was ended")
    s.close()
    echo.sock.close()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--proxy":
        return proxy(int(sys.argv[2]), sys.argv[3])
    atrium, plugins, bundle = sys.argv[1:4]
    if not os.path.exists(os.path.join(plugins, "provisioner_echo.so")):
        print("skipped: no echo provisioner")
        return 77
    tmp = tempfile.mkdtemp(prefix="atrium-agent-tunnels-")
    try:
        d = e2e.DEP = Deployment(atrium, plugins, tmp)
        d.start()
        org = set_up(d)
        status, f = d.call("POST", "/api/v2/files",
                           raw=targz({"template.yaml": TEMPLATE,
                                      "main.txt": "echo\n"}),
                           ctype="application/gzip")
        if status not in (200, 201):
            fail(f"upload: {status} {f}")
        v = d.must(201, "POST",
                   f"/api/v2/organizations/{org}/templateversions",
                   {"file_id": f["hash"], "name": "v1"})
        wait_for("the import", lambda: d.must(
            200, "GET", f"/api/v2/templateversions/{v['id']}")["job"]
            ["status"] == "succeeded")
        tid = d.must(201, "POST", f"/api/v2/organizations/{org}/templates",
                     {"name": "tunnels", "template_version_id": v["id"]})["id"]
        ws = d.must(201, "POST", "/api/v2/users/me/workspaces",
                    {"name": "dev", "template_id": tid})
        wait_build(d, ws["latest_build"]["id"])
        launcher = [os.path.join(bundle, "atrium-agent")]
        agent = [start_agent(d, ws["id"], launcher, "tunnels")[0]]

        def restart():
            agent[0].kill()
            agent[0].wait()
            agent[0] = start_agent(d, ws["id"], launcher, "tunnels-2")[0]
        a = wait_for("the agent ready", lambda: (
            lambda a: a if a and a.get("lifecycle_state") == "ready" and
            a.get("status") == "connected" else None)(agent_of(d, ws["id"])))
        try:
            check_tcp(d, a["id"])
            check_ssh(d, a["id"], restart)
            check_pty(d, a["id"])
            check_exit(d, a["id"], agent[0])
        except OSError as e:  # a socket's error: show the logs
            fail(f"{type(e).__name__}: {e}")
        d.stop()
    finally:
        clean_up(tmp)
    return CHECKS.done()


if __name__ == "__main__":
    sys.exit(main())
