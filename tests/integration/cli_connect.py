#!/usr/bin/env python3
"""`atrium ssh --stdio`, `atrium port-forward` and `atrium config-ssh`
against a fake server (plain sockets, loopback, a port the OS picks).

The fake server answers the workspace lookups the CLI makes and the tunnel
upgrade (GET /api/v2/workspaceagents/{id}/tunnel, RAW mode of
docs/design/connect.md): 101, then a line naming the tunnel's kind and
port, then every byte it receives echoed back; at the client's EOF it
writes "BYE\\n" and closes, so a test sees that the half-close went through
while the other direction still carried bytes. Agent "agent-refuse"
answers 502 with a JSON error, as the server does when the agent refuses.

Workspace "box"'s agent is fixture_sshd (a tiny libssh server): its ssh
tunnels are spliced to it, so `atrium ssh` and OpenSSH through the block
`config-ssh` writes are tested end to end but for the real agent.

usage: cli_connect.py ATRIUM_BINARY FIXTURE_SSHD
"""
import fcntl
import hashlib
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import struct
import tempfile
import termios
import threading
import time

TOKEN = "tok-" + "x" * 30
MB = 1024 * 1024

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


def workspace(name, agent_id, build_status="running", agent_status="connected"):
    return {
        "id": "ws-" + name, "name": name, "owner_name": "alice",
        "latest_build": {
            "transition": "start", "status": build_status,
            "resources": [{"name": "main", "agents": [{
                "id": agent_id, "name": "main", "status": agent_status,
                "lifecycle_state": "ready"}]}]},
    }


WORKSPACES = {
    "dev": workspace("dev", "agent-ok"),
    "refused": workspace("refused", "agent-refuse"),
    "stopped": workspace("stopped", "agent-x", build_status="stopped"),
    "away": workspace("away", "agent-y", agent_status="disconnected"),
    "box": workspace("box", "agent-sshd"),
}
DUO = workspace("duo", "agent-duo-main")
DUO["latest_build"]["resources"].append({"name": "gpu", "agents": [{
    "id": "agent-duo-gpu", "name": "gpu", "status": "connected",
    "lifecycle_state": "ready"}]})
WORKSPACES["duo"] = DUO


class FakeServer:
    def __init__(self, tls=None):
        self.tls = tls  # an ssl.SSLContext: https://
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.tunnels = []  # (agent, query) of each 101
        self.sshd_port = None  # fixture_sshd's, for agent-sshd
        self.lock = threading.Lock()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            conn, _ = self.sock.accept()
            threading.Thread(target=self.handle, args=(conn,),
                             daemon=True).start()

    @staticmethod
    def read_head(conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(1)  # byte by byte: the tunnel's bytes follow
            if not chunk:
                return None
            data += chunk
        return data.decode()

    @staticmethod
    def answer(conn, status, body):
        raw = json.dumps(body).encode()
        conn.sendall(b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n"
                     % (status, len(raw)) + raw)

    def handle(self, conn):
        try:
            if self.tls:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except OSError:  # the client refused our certificate
                    return
            head = self.read_head(conn)
            if head is None:
                return
            line, *rest = head.split("\r\n")
            headers = {}
            for h in rest:
                if ":" in h:
                    k, v = h.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            target = line.split(" ")[1]
            if headers.get("atrium-session-token") != TOKEN:
                self.answer(conn, 401, {"message": "no session"})
                return
            m = re.match(r"/api/v2/users/(?:me|alice)/workspace/([^/?]+)$", target)
            if m:
                ws = WORKSPACES.get(m.group(1))
                if ws:
                    self.answer(conn, 200, ws)
                else:
                    self.answer(conn, 404, {"message": "Workspace not found"})
                return
            if target.startswith("/api/v2/workspaces?"):
                items = [] if "offset=0" not in target else [
                    WORKSPACES["refused"], WORKSPACES["duo"], WORKSPACES["dev"],
                    WORKSPACES["box"]]
                self.answer(conn, 200, {"workspaces": items,
                                        "count": len(items) if items else 4})
                return
            m = re.match(r"/api/v2/workspaceagents/([^/]+)/tunnel\?(.*)$",
                         target)
            if not m:
                self.answer(conn, 404, {"message": "no route " + target})
                return
            self.tunnel(conn, m.group(1), m.group(2), headers)
        finally:
            conn.close()

    def tunnel(self, conn, agent, query, headers):
        if (headers.get("upgrade") != "atrium-tunnel" or
                headers.get("connection", "").lower() != "upgrade"):
            self.answer(conn, 400, {"message": "not an upgrade"})
            return
        if agent == "agent-refuse":
            self.answer(conn, 502, {"message": "The agent refused the tunnel.",
                                    "detail": "connect: connection refused"})
            return
        with self.lock:
            self.tunnels.append((agent, query))
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                     b"Connection: Upgrade\r\nUpgrade: atrium-tunnel\r\n\r\n")
        if agent == "agent-sshd":
            self.splice(conn, socket.create_connection(
                ("127.0.0.1", self.sshd_port)))
            return
        conn.sendall(query.encode() + b"\n")
        while True:
            data = conn.recv(65536)
            if not data:
                break
            conn.sendall(data)
        conn.sendall(b"BYE\n")
        if self.tls:
            try:
                conn.unwrap()  # close_notify
            except (OSError, ValueError):
                pass
        else:
            conn.shutdown(socket.SHUT_WR)


    @staticmethod
    def splice(a, b):
        def copy(src, dst):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    dst.sendall(data)
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        t = threading.Thread(target=copy, args=(b, a), daemon=True)
        t.start()
        copy(a, b)
        t.join(60)
        b.close()


def start_sshd(fixture, keyfile):
    p = subprocess.Popen([fixture, keyfile], stdout=subprocess.PIPE)
    line = p.stdout.readline().decode()
    m = re.match(r"port (\d+)", line)
    if not m:
        p.kill()
        raise RuntimeError(f"fixture_sshd said {line!r}")
    return p, int(m.group(1))


def stop(p):
    p.kill()
    p.wait()
    if p.stdout:
        p.stdout.close()


def payload(seed):
    block = hashlib.sha256(seed.encode()).digest()
    return (block * (MB // len(block) + 1))[:MB]


def run(atrium, env, *args, stdin=None, timeout=60):
    return subprocess.run([atrium, *args], env=env, input=stdin,
                          capture_output=True, timeout=timeout)


def test_stdio(atrium, env, server):
    data = payload("stdio")
    r = run(atrium, env, "ssh", "--stdio", "dev", stdin=data)
    check(r.returncode == 0, "ssh --stdio exits 0 when both sides ended "
          f"(rc {r.returncode}, stderr {r.stderr[-300:]!r})")
    expect = b"kind=ssh\n" + data + b"BYE\n"
    check(hashlib.sha256(r.stdout).hexdigest() ==
          hashlib.sha256(expect).hexdigest(),
          "ssh --stdio: 1 MB through the tunnel and back, same SHA-256, "
          "then the server's bytes after it saw our EOF (half-close)")
    check(("agent-ok", "kind=ssh") in server.tunnels,
          "ssh --stdio opened kind=ssh on the workspace's agent")


def test_refused(atrium, env):
    r = run(atrium, env, "ssh", "--stdio", "refused", stdin=b"")
    err = r.stderr.decode()
    check(r.returncode == 1 and "The agent refused the tunnel." in err and
          "connection refused" in err,
          f"a 502 instead of 101: exit 1 with the server's message ({err!r})")
    r = run(atrium, env, "ssh", "--stdio", "stopped", stdin=b"")
    err = r.stderr.decode()
    check(r.returncode == 1 and "workspace stopped is not running" in err and
          "atrium start stopped" in err,
          f"a stopped workspace: its state and what to run ({err!r})")
    r = run(atrium, env, "ssh", "away", "--", "true")
    err = r.stderr.decode()
    check(r.returncode == 1 and "agent main of workspace away is "
          "disconnected" in err,
          f"a disconnected agent: named with its state ({err!r})")
    r = run(atrium, env, "port-forward", "nope", "--tcp", "0:80")
    err = r.stderr.decode()
    check(r.returncode == 1 and "Workspace not found" in err,
          f"an unknown workspace: the server's 404 message ({err!r})")


def exchange(port, seed, results, i):
    data = payload(seed)
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    sender = threading.Thread(target=lambda: (s.sendall(data),
                                              s.shutdown(socket.SHUT_WR)))
    sender.start()
    got = bytearray()
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    sender.join()
    s.close()
    results[i] = (bytes(got), data)


def test_port_forward(atrium, env, server):
    p = subprocess.Popen([atrium, "port-forward", "dev", "--tcp", "0:8080",
                          "--tcp", "127.0.0.1:0:5432"], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        ports = {}
        deadline = time.monotonic() + 20
        buf = b""
        while len(ports) < 2 and time.monotonic() < deadline:
            ready, _, _ = select.select([p.stdout], [], [], 0.5)
            if ready:
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
                for m in re.finditer(rb"Forwarding 127\.0\.0\.1:(\d+) -> "
                                     rb"alice/dev port (\d+)", buf):
                    ports[int(m.group(2))] = int(m.group(1))
        check(set(ports) == {8080, 5432},
              f"port-forward prints each forward ({buf!r})")
        if len(ports) < 2:
            return
        results = [None] * 3
        threads = [threading.Thread(target=exchange, args=(
            ports[remote], f"fwd{i}", results, i))
            for i, remote in enumerate([8080, 8080, 5432])]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for i, remote in enumerate([8080, 8080, 5432]):
            got, data = results[i] or (b"", b"")
            expect = f"kind=tcp&port={remote}\n".encode() + data + b"BYE\n"
            check(hashlib.sha256(got).digest() ==
                  hashlib.sha256(expect).digest(),
                  f"connection {i} to port {remote}: 1 MB each way, same "
                  "SHA-256, half-close seen by the far end")
        p.send_signal(signal.SIGINT)
        rc = p.wait(10)
        check(rc == 0, f"port-forward exits 0 on SIGINT (rc {rc})")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def test_config_ssh(atrium, env, tmp):
    cfg = os.path.join(tmp, "ssh", "config")
    os.makedirs(os.path.dirname(cfg), mode=0o700)
    before = b"Host other\r\n  User bob\r\n"
    with open(cfg, "wb") as f:
        f.write(before)
    r = run(atrium, env, "config-ssh", "--ssh-config", cfg, "--dry-run")
    out = r.stdout.decode()
    with open(cfg, "rb") as f:
        check(f.read() == before, "config-ssh --dry-run changes nothing")
    check(r.returncode == 0 and "+Host atrium.dev" in out and
          out.startswith("--- "), f"--dry-run prints a unified diff ({out!r})")
    r = run(atrium, env, "config-ssh", "--ssh-config", cfg, "-y")
    with open(cfg, "rb") as f:
        first = f.read()
    check(r.returncode == 0 and first.startswith(before) and
          b"Host atrium.dev\r\n" in first and b"Host atrium.refused" in first,
          "config-ssh keeps what was there (CRLF) and adds one Host per "
          "workspace")
    check(first.index(b"Host atrium.box") < first.index(b"Host atrium.dev") <
          first.index(b"Host atrium.duo.gpu") <
          first.index(b"Host atrium.duo.main") <
          first.index(b"Host atrium.refused") and
          b"ssh --stdio alice/duo.gpu\r\n" in first and
          b"Host atrium.duo\r\n" not in first,
          "Hosts are sorted by name; a workspace with two agents gets "
          "atrium.NAME.AGENT for each")
    os.makedirs(os.path.join(tmp, "newhome"))
    fresh = os.path.join(tmp, "newhome", ".ssh", "config")
    r = run(atrium, env, "config-ssh", "--ssh-config", fresh, "-y")
    check(r.returncode == 0 and
          os.stat(fresh).st_mode & 0o777 == 0o600 and
          os.stat(os.path.dirname(fresh)).st_mode & 0o777 == 0o700,
          "a new file is made 0600 in a 0700 directory")
    r = run(atrium, env, "config-ssh", "--ssh-config", cfg, "-y")
    with open(cfg, "rb") as f:
        check(f.read() == first and "up to date" in r.stdout.decode(),
              "config-ssh twice: the same file")
    g = subprocess.run(["ssh", "-F", cfg, "-G", "atrium.dev"],
                       capture_output=True, timeout=20)
    conf = g.stdout.decode()
    check(g.returncode == 0 and
          f"ssh --stdio alice/dev" in conf and
          "hostkeyalias atrium.alice.dev" in conf and
          "stricthostkeychecking accept-new" in conf.lower(),
          "OpenSSH reads the block: ProxyCommand, HostKeyAlias, "
          f"accept-new ({g.stderr.decode()!r})")
    r = run(atrium, env, "config-ssh", "--ssh-config", cfg, "--remove", "-y")
    with open(cfg, "rb") as f:
        check(r.returncode == 0 and f.read() == before,
              "config-ssh --remove gives back the file as it was")


def test_ssh_exec(atrium, env, tmp):
    r = run(atrium, env, "ssh", "box", "--",
            "echo out; echo err >&2; exit 7")
    check(r.returncode == 7 and r.stdout == b"out\n" and
          r.stderr == b"err\n",
          f"ssh COMMAND: stdout and stderr apart, its exit status "
          f"({r.returncode}, {r.stdout!r}, {r.stderr!r})")
    data = payload("exec")
    r = run(atrium, env, "ssh", "box", "--", "cat", stdin=data)
    check(r.returncode == 0 and hashlib.sha256(r.stdout).digest() ==
          hashlib.sha256(data).digest(),
          f"ssh box -- cat: 1 MB of stdin back with the same SHA-256, then "
          f"EOF ends it (rc {r.returncode}, {len(r.stdout)} bytes)")
    e = dict(env, LANG="C.UTF-8", TERM="xterm-test")
    r = run(atrium, e, "ssh", "box", "echo", "$LANG", "$TERM")
    check(r.stdout == b"C.UTF-8 xterm-test\n",
          f"LANG and TERM are forwarded ({r.stdout!r} {r.stderr!r})")
    r = run(atrium, env, "ssh", "box", "--", "false")
    check(r.returncode == 1, f"the exit status of false is 1 ({r.returncode})")
    known = os.path.join(env["ATRIUM_CONFIG_DIR"], "known_hosts")
    with open(known) as f:
        lines = [l for l in f.read().splitlines()
                 if l.startswith("atrium.alice.box ")]
    check(len(lines) == 1 and lines[0].split(" ")[1] == "ssh-ed25519",
          f"the host key was recorded once, under atrium.alice.box ({lines})")


def read_until(fd, pattern, seconds=20):
    got = b""
    deadline = time.monotonic() + seconds
    while not re.search(pattern, got) and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            got += chunk
    return got


def test_ssh_interactive(atrium, env):
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    before = termios.tcgetattr(slave)
    e = dict(env, LANG="C.UTF-8", TERM="xterm-test")
    p = subprocess.Popen([atrium, "ssh", "box"], env=e, stdin=slave,
                         stdout=slave, stderr=slave)
    try:
        got = read_until(master, rb"pty \S+ \d+x\d+ LANG=\S*\r\n")
        check(b"pty xterm-test 100x30 LANG=C.UTF-8" in got,
              f"interactive: a pty with TERM and the terminal's size ({got!r})")
        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", 40, 120, 0, 0))
        p.send_signal(signal.SIGWINCH)
        got = read_until(master, rb"size \d+x\d+")
        check(b"size 120x40" in got, f"SIGWINCH sends window-change ({got!r})")
        os.write(master, b"hello")
        got = read_until(master, rb"hello")
        check(b"hello" in got, "keys reach the shell, raw, and come back")
        os.write(master, b"q")
        rc = p.wait(20)
        check(rc == 3, f"the shell's exit status is ssh's ({rc})")
        check(termios.tcgetattr(slave) == before,
              "the terminal is as it was after ssh exits")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
        os.close(slave)


def test_openssh(env, tmp):
    cfg = os.path.join(tmp, ".ssh", "config")
    r = subprocess.run(["ssh", "-F", cfg, "atrium.box", "echo $((6*7))"],
                       env=env, capture_output=True, timeout=60)
    check(r.returncode == 0 and r.stdout == b"42\n",
          f"OpenSSH through config-ssh's ProxyCommand: 42 ({r.stdout!r} "
          f"{r.stderr!r})")
    r = subprocess.run(["ssh", "-F", cfg, "atrium.box", "exit 5"], env=env,
                       capture_output=True, timeout=60)
    check(r.returncode == 5,
          f"OpenSSH gets the exit status ({r.returncode}, {r.stderr!r})")


def test_host_key_changed(atrium, env, server, fixture, tmp):
    p, server.sshd_port = start_sshd(fixture, os.path.join(tmp, "other_key"))
    try:
        r = run(atrium, env, "ssh", "box", "--", "true")
        err = r.stderr.decode()
        check(r.returncode == 1 and "host key of workspace alice/box changed"
              in err and "Refusing to connect" in err,
              f"a changed host key is refused ({err!r})")
    finally:
        stop(p)


def test_tls(atrium, tmp):
    """The same tunnel over https://: curl does TLS, a thread pumps. The
    self-signed CA is made the system's only in a mount namespace of the
    CLI's own (unshare -m), so nothing on the machine changes."""
    import ssl
    key, cert = os.path.join(tmp, "tls.key"), os.path.join(tmp, "tls.crt")
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out",
         cert, "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1"], capture_output=True)
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True)
    if made.returncode != 0 or probe.returncode != 0:
        print("skip https: no openssl or no unshare -m here")
        return
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = FakeServer(tls=ctx)
    env = dict(os.environ, ATRIUM_URL=f"https://127.0.0.1:{server.port}",
               ATRIUM_SESSION_TOKEN=TOKEN,
               ATRIUM_CONFIG_DIR=os.path.join(tmp, "atrium-tls"), HOME=tmp)
    wrap = ["unshare", "-m", "sh", "-c",
            'mount --bind "$0" /etc/ssl/certs/ca-certificates.crt && '
            'exec "$@"', cert, atrium]
    data = payload("tls")
    r = subprocess.run(wrap + ["ssh", "--stdio", "dev"], env=env, input=data,
                       capture_output=True, timeout=60)
    expect = b"kind=ssh\n" + data + b"BYE\n"
    check(r.returncode == 0 and hashlib.sha256(r.stdout).digest() ==
          hashlib.sha256(expect).digest(),
          f"https: 1 MB each way through TLS, half-close seen (rc "
          f"{r.returncode}, {len(r.stdout)} bytes, {r.stderr[-300:]!r})")
    r = subprocess.run(wrap + ["ssh", "--stdio", "refused"], env=env,
                       input=b"", capture_output=True, timeout=60)
    check(r.returncode == 1 and b"The agent refused the tunnel." in r.stderr,
          f"https: a 502 prints the server's message ({r.stderr!r})")
    r = run(atrium, env, "ssh", "--stdio", "dev", stdin=b"")
    check(r.returncode == 1 and b"cannot reach" in r.stderr,
          f"https: a certificate nobody trusts is refused ({r.stderr!r})")


def main():
    atrium = os.path.abspath(sys.argv[1])
    fixture = os.path.abspath(sys.argv[2])
    server = FakeServer()
    with tempfile.TemporaryDirectory() as tmp:
        sshd, server.sshd_port = start_sshd(fixture,
                                            os.path.join(tmp, "host_key"))
        env = dict(os.environ, ATRIUM_URL=f"http://127.0.0.1:{server.port}",
                   ATRIUM_SESSION_TOKEN=TOKEN,
                   ATRIUM_CONFIG_DIR=os.path.join(tmp, "atrium"), HOME=tmp)
        test_stdio(atrium, env, server)
        test_refused(atrium, env)
        test_port_forward(atrium, env, server)
        test_config_ssh(atrium, env, tmp)
        try:
            test_ssh_exec(atrium, env, tmp)
            test_ssh_interactive(atrium, env)
            run(atrium, env, "config-ssh", "-y", "--ssh-config",
                os.path.join(tmp, ".ssh", "config"))
            test_openssh(env, tmp)
        finally:
            stop(sshd)
        test_host_key_changed(atrium, env, server, fixture, tmp)
        test_tls(atrium, tmp)
    if FAILURES:
        print(f"{len(FAILURES)} failed")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
