"""The checks both workspace kinds go through (docs/connect.md), with real
clients: OpenSSH after `atrium config-ssh`, scp/sftp, tmux driving an
interactive session, `atrium port-forward` with curl, and the web
terminal's WebSocket. `sh` is how a command is named in the workspace:
"" on a host (terraform-local), "busybox " in the busybox image, which
links only a few applets."""
import json
import os
import re
import subprocess
import time
import uuid

from connect_lib import WS, free_port, sha256

MB50 = 50 * 1024 * 1024


def ssh_basics(c):
    r = c.ssh("echo $((6*7))")
    c.check(r.returncode == 0 and r.stdout == b"42\n",
            f"ssh atrium.dev 'echo $((6*7))' prints 42 (status "
            f"{r.returncode}, out {r.stdout[:200]!r}, err "
            f"{r.stderr[-300:]!r})")
    r = c.ssh("false")
    c.check(r.returncode == 1, f"ssh atrium.dev false exits 1 (got "
            f"{r.returncode})")
    r = c.ssh("echo to-err >&2; exit 7")
    c.check(r.returncode == 7 and b"to-err" in r.stderr and
            b"to-err" not in r.stdout,
            f"stderr apart from stdout, exit status 7 (got {r.returncode}, "
            f"err {r.stderr[-200:]!r})")
    data = os.urandom(200000)
    r = c.ssh("cat", stdin=data)
    c.check(r.returncode == 0 and r.stdout == data,
            f"stdin reaches the command and comes back whole "
            f"({len(r.stdout)} of {len(data)} bytes)")
    r = c.ssh("echo \"$LANG\"", extra=["-o", "SendEnv=LANG"],
              env=dict(c.env, LANG="C.UTF-8"))
    c.check(r.stdout == b"C.UTF-8\n",
            f"LANG is forwarded (got {r.stdout[:100]!r})")
    r = c.ssh("echo \"[$TERM]\"", extra=["-tt"],
              env=dict(c.env, TERM="xterm-256color"))
    c.check(b"[xterm-256color]" in r.stdout,
            f"TERM comes with the PTY (got {r.stdout[:100]!r})")


def host_key_stable(c):
    """A second connection with StrictHostKeyChecking=yes against the host
    key the first one stored: the same key."""
    r = c.ssh("true", strict="yes")
    c.check(r.returncode == 0, "the host key is the one stored before "
            f"(StrictHostKeyChecking=yes: status {r.returncode}, "
            f"{r.stderr[-300:]!r})")


def scp_sftp(c, sh):
    up = os.path.join(c.tmp, "up.bin")
    with open(up, "wb") as f:
        for _ in range(50):
            f.write(os.urandom(1 << 20))
    want = sha256(up)
    t = time.monotonic()
    r = subprocess.run(["scp", "-q"] + c.ssh_opts() +
                       [up, f"atrium.{WS}:up.bin"], capture_output=True,
                       timeout=300, env=c.env)
    secs = time.monotonic() - t
    c.check(r.returncode == 0, f"scp of 50 MB up ({secs:.1f} s; status "
            f"{r.returncode}, {r.stderr[-300:]!r})")
    r = c.ssh(f"{sh}sha256sum up.bin")
    got = r.stdout.split()[0].decode() if r.stdout.split() else ""
    c.check(got == want, f"the SHA-256 in the workspace matches ({got[:16]}"
            f" vs {want[:16]})")
    r = c.ssh(f"{sh}head -c {MB50} /dev/urandom > down.bin && "
              f"{sh}sha256sum down.bin")
    remote = r.stdout.split()[0].decode() if r.stdout.split() else "?"
    down = os.path.join(c.tmp, "down.bin")
    t = time.monotonic()
    r = subprocess.run(["scp", "-q"] + c.ssh_opts() +
                       [f"atrium.{WS}:down.bin", down], capture_output=True,
                       timeout=300, env=c.env)
    secs = time.monotonic() - t
    c.check(r.returncode == 0 and os.path.exists(down) and
            os.path.getsize(down) == MB50,
            f"scp of 50 MB down ({secs:.1f} s; status {r.returncode}, "
            f"{r.stderr[-300:]!r})")
    c.check(os.path.exists(down) and sha256(down) == remote,
            "the SHA-256 here matches the workspace's")
    r = subprocess.run(["sftp", "-b", "-"] + c.ssh_opts() +
                       [f"atrium.{WS}"], input=b"ls -1\n",
                       capture_output=True, timeout=120, env=c.env)
    names = r.stdout.decode(errors="replace").split()
    c.check(r.returncode == 0 and "up.bin" in names and "down.bin" in names,
            f"sftp lists the home directory (status {r.returncode}: "
            f"{names[:20]}, {r.stderr[-300:]!r})")
    for f in (up, down):
        if os.path.exists(f):
            os.remove(f)
    c.ssh("rm -f up.bin down.bin")


def rsync(c):
    src = os.path.join(c.tmp, "tree")
    os.makedirs(os.path.join(src, "sub"))
    for i in range(20):
        with open(os.path.join(src, "sub" if i % 2 else "", f"f{i}"),
                  "wb") as f:
            f.write(os.urandom(10000 + i))
    ssh = " ".join(["ssh"] + c.ssh_opts())
    r = subprocess.run(["rsync", "-a", "-e", ssh, src + "/",
                        f"atrium.{WS}:tree/"], capture_output=True,
                       timeout=120, env=c.env)
    c.check(r.returncode == 0, f"rsync -e ssh up (status {r.returncode}, "
            f"{r.stderr[-300:]!r})")
    back = os.path.join(c.tmp, "tree-back")
    r = subprocess.run(["rsync", "-a", "-e", ssh, f"atrium.{WS}:tree/",
                        back + "/"], capture_output=True, timeout=120,
                       env=c.env)
    same = r.returncode == 0 and all(
        open(os.path.join(src, d, n), "rb").read() ==
        open(os.path.join(back, d, n), "rb").read()
        for d, _, files in [(os.path.relpath(p, src), 0, fs)
                            for p, _, fs in os.walk(src)] for n in files)
    c.check(same, f"rsync brings the same 20 files back (status "
            f"{r.returncode}, {r.stderr[-300:]!r})")
    c.ssh("rm -rf tree")


def tmux_resize(c, sh, cli=False):
    """An interactive session in tmux: `stty size` shows 24 80, the window
    is resized, `stty size` shows the new size. Keys are sent again while
    polling: the window-change message and the keys are independent.
    cli: `atrium ssh dev` (the CLI's own client) instead of OpenSSH."""
    sock = os.path.join(c.tmp, "tmux-cli.sock" if cli else "tmux.sock")
    ssh = " ".join(["ssh", "-tt"] + c.ssh_opts() + [f"atrium.{WS}"])
    if cli:
        ssh = f"{c.atrium} ssh {WS}"
    what = "atrium ssh dev" if cli else "ssh -tt atrium.dev"
    env = dict(c.env, TERM="xterm")
    tmux = ["tmux", "-S", sock]
    subprocess.run(tmux + ["-f", "/dev/null", "new-session", "-d", "-s",
                           "t", "-x", "80", "-y", "24", ssh],
                   check=True, env=env, timeout=30)
    try:
        def screen():
            return subprocess.run(tmux + ["capture-pane", "-p", "-t", "t"],
                                  capture_output=True, text=True,
                                  timeout=30, env=env).stdout

        def shows(rows, cols):
            def poll():
                subprocess.run(tmux + ["send-keys", "-t", "t",
                                       f"{sh}clear; {sh}stty size", "Enter"],
                               env=env, timeout=30)
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:
                    if re.search(rf"^{rows} {cols}\s*$", screen(), re.M):
                        return True
                    time.sleep(0.1)
                return False
            return c.wait_for(f"`stty size` to print {rows} {cols}", poll,
                              60)
        c.check(shows(24, 80), f"{what} in a tmux pane of 80x24: stty size "
                "says 24 80")
        subprocess.run(tmux + ["resize-window", "-t", "t", "-x", "100",
                               "-y", "30"], check=True, env=env, timeout=30)
        c.check(shows(30, 100), f"{what}: after the resize to 100x30, "
                "30 100")
        subprocess.run(tmux + ["send-keys", "-t", "t", "exit 3", "Enter"],
                       env=env, timeout=30)
    finally:
        subprocess.run(tmux + ["kill-server"], env=env, timeout=30,
                       capture_output=True)


def port_forward(c, remote_port, want, extra_port=None, extra_want=None):
    """`atrium port-forward dev --tcp L:R` (two at once when extra_port):
    curl through each local port gets what the server in the workspace
    serves."""
    local = free_port()
    args = ["port-forward", WS, "--tcp", f"{local}:{remote_port}"]
    local2 = None
    if extra_port:
        local2 = free_port()
        args += ["--tcp", f"{local2}:{extra_port}"]
    p = c.spawn([c.atrium] + args, "port-forward.log")

    def curl(port, path):
        r = subprocess.run(["curl", "-s", "--max-time", "10",
                            f"http://127.0.0.1:{port}{path}"],
                           capture_output=True, timeout=30, env=c.env)
        return r.stdout.decode(errors="replace") if r.returncode == 0 \
            else None
    try:
        got = c.wait_for("curl through the forwarded port",
                         lambda: (lambda t: t if t and want in t else None)(
                             curl(local, "/hello.txt")), 60)
        c.check(want in got, f"curl through port-forward {local}:"
                f"{remote_port} reaches the workspace's server ({got!r})")
        if local2:
            got = c.wait_for("curl through the second forward",
                             lambda: (lambda t: t if t and extra_want in t
                                      else None)(curl(local2, "/x")), 60)
            c.check(extra_want in got, "a second --tcp at once works too")
        # several at once over the same forward
        procs = [subprocess.Popen(["curl", "-s", "--max-time", "20",
                                   f"http://127.0.0.1:{local}/hello.txt"],
                                  stdout=subprocess.PIPE, env=c.env)
                 for _ in range(8)]
        outs = [q.communicate(timeout=60)[0].decode() for q in procs]
        c.check(all(want in o for o in outs),
                "8 concurrent connections through one forward")
    finally:
        c.stop(p)


def pty_ws(c, sh, shell_cmd='echo "=$((6*7))="'):
    """The web terminal: a WebSocket to …/pty?reconnect=ID; the shell runs
    a command, sets a variable; the socket is dropped; a new one with the
    same id replays the scrollback (42 in it) and the shell still has the
    variable. The output is looked for as =42=, which the echoed command
    line does not contain: a first prompt may come after the typed line
    (the terminal echoes before the shell is ready), so no line start is
    assumed."""
    import websocket  # Debian's python3-websocket
    rid = str(uuid.uuid4())
    url = (f"ws://127.0.0.1:{c.port}/api/v2/workspaceagents/{c.agent_id}"
           f"/pty?reconnect={rid}&width=80&height=24")
    hdr = [f"Atrium-Session-Token: {c.token}"]

    def read_until(ws, pattern, seconds=30):
        buf = b""
        deadline = time.monotonic() + seconds
        ws.settimeout(1)
        while time.monotonic() < deadline:
            try:
                op, data = ws.recv_data()
            except websocket.WebSocketTimeoutException:
                continue
            if op == websocket.ABNF.OPCODE_CLOSE:
                break
            buf += data if isinstance(data, bytes) else data.encode()
            if re.search(pattern, buf):
                return buf
        return buf

    def send(ws, text):
        ws.send(json.dumps({"data": text}))

    try:
        ws = websocket.create_connection(url, header=hdr, timeout=30)
    except Exception as e:  # noqa: BLE001 — the status is in the message
        c.check(False, f"the web terminal's WebSocket opens ({e})")
        return
    send(ws, shell_cmd + "\r")
    out = read_until(ws, rb"=42=")
    c.check(b"=42=" in out,
            f"the web terminal runs `{shell_cmd}`: =42= ({out[-200:]!r})")
    send(ws, "KEPT=persist$((40+2)); echo set-$KEPT\r")
    out = read_until(ws, rb"set-persist42")
    c.check(b"set-persist42" in out, "the variable is set in the shell")
    ws.close()  # dropped: the next socket must find the same shell
    ws = websocket.create_connection(url, header=hdr, timeout=30)
    out = read_until(ws, rb"=42=")
    c.check(b"=42=" in out,
            f"a reconnect with the same id replays the scrollback with =42= "
            f"({out[-200:]!r})")
    send(ws, "echo \"[$KEPT]\"\r")
    out = read_until(ws, rb"\[persist42\]\r?\n")
    c.check(b"[persist42]" in out,
            f"the same shell: the variable set before the drop is there "
            f"({out[-200:]!r})")
    ws.send(json.dumps({"height": 30, "width": 100}))
    send(ws, f"{sh}stty size\r")
    out = read_until(ws, rb"30 100")
    c.check(b"30 100" in out, "a resize message reaches the terminal")
    ws.close()



def ssh_local_forward(c, remote_port, want):
    """`ssh -L` (direct-tcpip, what editors' remote-SSH modes use to reach
    their server in the workspace): curl through it."""
    local = free_port()
    p = c.spawn(["ssh", "-N", "-o", "ExitOnForwardFailure=yes", "-L",
                 f"127.0.0.1:{local}:127.0.0.1:{remote_port}"] +
                c.ssh_opts() + [f"atrium.{WS}"], "ssh-L.log")

    def curl():
        r = subprocess.run(["curl", "-s", "--max-time", "10",
                            f"http://127.0.0.1:{local}/hello.txt"],
                           capture_output=True, timeout=30, env=c.env)
        t = r.stdout.decode(errors="replace")
        return t if want in t else None
    try:
        got = c.wait_for("curl through ssh -L", curl, 60)
        c.check(want in got, f"ssh -L {local}:127.0.0.1:{remote_port} "
                "(direct-tcpip) reaches the workspace's server")
    finally:
        c.stop(p)
