#!/usr/bin/env python3
"""The agent's SSH server (core/agent/agent_ssh.h) with OpenSSH's clients.

agent_ssh_server serves 127.0.0.1:0 with a host key file made by OpenSSL
(PKCS#8 PEM, as the server makes them); ssh, scp, sftp and tmux drive it:
- the host key served is the file's (known_hosts written from the key,
  StrictHostKeyChecking=yes) and the same on a second run; an OpenSSH-form
  key works too; no key: an ephemeral one with a warning; a broken key is
  refused without being printed;
- `echo $((6*7))` prints 42; `false` exits 1, `exit 7` 7, a signal is an
  exit-signal; stdout and stderr apart; stdin reaches the command and its EOF ends `cat`;
- LANG goes through SendEnv, other names do not; the configured env, the
  start directory, HOME and USER;
- 5 MB through a command's stdout, and by scp (SFTP) both ways, SHA-256
  equal; sftp lists the start directory;
- direct-tcpip (ssh -W) reaches a loopback listener, another host is
  refused;
- two channels at once on one multiplexed connection;
- a PTY in tmux: `stty size` says 24 80, after resize-window 30 100; TERM
  is the client's; the shell's exit status comes back;
- a client killed mid-command: its process is hung up and reaped;
- SIGTERM with a session open: agent_ssh_free ends it, exit 0.
Every wait is a bounded poll for a state.

With --busybox: the server bundled as the agent is (cmake/agent_bundle.cmake:
its libraries, libssh among them, the loader, OpenSSH's sftp-server and
nss_wrapper) runs in a root holding nothing but a static busybox, /proc and
/dev/null (no /etc/passwd, as the test image); ssh runs a command in
busybox's sh, sftp lists and scp copies both ways through the bundle's
sftp-server.

usage: agent_ssh.py AGENT_SSH_SERVER
       agent_ssh.py AGENT_SSH_SERVER --busybox CMAKE BUNDLE_SCRIPT
                    SFTP_SERVER NSS_WRAPPER BUSYBOX
"""
import base64
import hashlib
import os
import queue
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "hardening"))
from server import Checks  # noqa: E402

CHECKS = Checks()
PROCS = []  # processes to stop on the way out
BIG = 5 * 1024 * 1024


def poll(fn, timeout=20.0, step=0.05):
    """fn() until it is truthy (returned) or timeout (None)."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def stop(proc, sig=signal.SIGTERM, timeout=30):
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """agent_ssh_server: its port, its "connections N" answers."""

    def __init__(self, binary, tmp, key, name, args=None):
        self.err_path = os.path.join(tmp, f"{name}.err")
        if args is None:
            args = ["--directory", os.path.join(tmp, "home"),
                    "--env", "ATRIUM_TEST_CFG=from-config"]
            if key:
                args += ["--host-key", key]
        args = [binary] + args
        self.err = open(self.err_path, "w")
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True)
        PROCS.append(self.proc)
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        first = self.line(20)
        if not first or not first.startswith("port "):
            raise RuntimeError(f"server did not start: {first!r}, "
                               f"{self.stderr()}")
        self.port = int(first.split()[1])

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def line(self, timeout):
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def connections(self):
        self.proc.send_signal(signal.SIGUSR1)
        line = self.line(10)
        return int(line.split()[1]) if line and line.startswith(
            "connections ") else -1

    def wait_connections(self, n, timeout=20):
        return poll(lambda: self.connections() == n, timeout, 0.1)

    def stop(self):
        stop(self.proc)
        rest = []
        while True:
            line = self.line(5)
            if line is None:
                break
            rest.append(line)
        self.err.close()
        return self.proc.returncode, rest

    def stderr(self):
        with open(self.err_path) as f:
            return f.read()


class Ssh:
    def __init__(self, tmp, port, known):
        self.port, self.known = port, known
        self.opts = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=yes",
                     "-o", f"UserKnownHostsFile={known}",
                     "-o", "GlobalKnownHostsFile=/dev/null",
                     "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
                     "-o", "ConnectTimeout=20"]

    def run(self, *args, input=None, env=None, timeout=60, text=True):
        cmd = ["ssh"] + self.opts + ["-p", str(self.port)] + list(args)
        return subprocess.run(cmd, input=input, capture_output=True,
                              env=env, timeout=timeout, text=text)

    def argv(self, *args):
        return ["ssh"] + self.opts + ["-p", str(self.port)] + list(args)


def known_line(port, key_pem):
    """The known_hosts line for an ed25519 key, from its PEM (OpenSSL)."""
    der = subprocess.run(["openssl", "pkey", "-in", key_pem, "-pubout",
                          "-outform", "DER"], capture_output=True,
                         check=True).stdout
    raw = der[-32:]

    def s(b):
        return len(b).to_bytes(4, "big") + b
    blob = s(b"ssh-ed25519") + s(raw)
    return (f"[127.0.0.1]:{port} ssh-ed25519 "
            f"{base64.b64encode(blob).decode()}\n")


def keyscan_fp(port):
    out = subprocess.run(["ssh-keyscan", "-t", "ed25519", "-p", str(port),
                          "127.0.0.1"], capture_output=True, text=True,
                         timeout=30).stdout
    with tempfile.NamedTemporaryFile("w", delete=False) as f:
        f.write(out)
    fp = subprocess.run(["ssh-keygen", "-lf", f.name], capture_output=True,
                        text=True).stdout.split()
    os.unlink(f.name)
    return fp[1] if len(fp) > 1 else None


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def check_host_keys(binary, tmp, key):
    known = os.path.join(tmp, "known_hosts")
    fps = []
    for run in (1, 2):
        srv = Server(binary, tmp, key, f"keyrun{run}")
        with open(known, "a") as f:
            f.write(known_line(srv.port, key))
        r = Ssh(tmp, srv.port, known).run("127.0.0.1", "true")
        CHECKS.check(r.returncode == 0,
                     f"run {run}: the host key is the file's (strict "
                     f"known_hosts check passes): {r.stderr.strip()}")
        fps.append(keyscan_fp(srv.port))
        rc, _ = srv.stop()
        CHECKS.check(rc == 0, f"run {run}: the server stopped cleanly ({rc})")
    CHECKS.check(fps[0] is not None and fps[0] == fps[1],
                 f"the same fingerprint on both runs: {fps}")
    # An OpenSSH-form key (ssh-keygen) is served as well.
    okey = os.path.join(tmp, "openssh_key")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    okey], check=True)
    srv = Server(binary, tmp, okey, "opensshkey")
    with open(okey + ".pub") as f:
        pub = f.read().split()
    oknown = os.path.join(tmp, "known_openssh")
    with open(oknown, "w") as f:
        f.write(f"[127.0.0.1]:{srv.port} {pub[0]} {pub[1]}\n")
    r = Ssh(tmp, srv.port, oknown).run("127.0.0.1", "true")
    CHECKS.check(r.returncode == 0,
                 f"an OpenSSH-form host key is served: {r.stderr.strip()}")
    srv.stop()
    # No key: an ephemeral one, with a warning that names no key.
    srv = Server(binary, tmp, None, "ephemeral")
    r = subprocess.run(["ssh", "-F", "/dev/null", "-o",
                        "StrictHostKeyChecking=no", "-o",
                        "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                        "-o", "LogLevel=ERROR", "-p", str(srv.port),
                        "127.0.0.1", "echo ephemeral"],
                       capture_output=True, text=True, timeout=60)
    srv.stop()
    CHECKS.check(r.stdout == "ephemeral\n" and "ephemeral ed25519 key" in
                 srv.stderr() and "PRIVATE KEY" not in srv.stderr(),
                 f"without a key: an ephemeral one and a warning: "
                 f"{r.stdout!r} {srv.stderr()[-300:]!r}")
    # A key that is not one: refused, and not printed.
    bad = os.path.join(tmp, "bad_key")
    with open(bad, "w") as f:
        f.write("-----BEGIN PRIVATE KEY-----\nNOTAKEYsecretish\n"
                "-----END PRIVATE KEY-----\n")
    p = subprocess.run([binary, "--host-key", bad], capture_output=True,
                       text=True, timeout=30)
    CHECKS.check(p.returncode == 1 and "ssh_host_key: not an unencrypted "
                 "private key" in p.stderr and "secretish" not in p.stderr,
                 f"a broken host key is refused without its text: "
                 f"{p.returncode} {p.stderr.strip()}")


def check_commands(ssh, home):
    r = ssh.run("127.0.0.1", "echo $((6*7))")
    CHECKS.check(r.returncode == 0 and r.stdout == "42\n",
                 f"echo $((6*7)) prints 42: {r.stdout!r} {r.stderr!r}")
    r = ssh.run("127.0.0.1", "false")
    CHECKS.check(r.returncode == 1, f"false exits 1: {r.returncode}")
    r = ssh.run("127.0.0.1", "exit 7")
    CHECKS.check(r.returncode == 7, f"exit 7 exits 7: {r.returncode}")
    r = ssh.run("-v", "127.0.0.1", "kill -TERM $$")
    CHECKS.check(r.returncode == 255 and "rtype exit-signal" in r.stderr,
                 f"a command killed by a signal: exit-signal "
                 f"({r.returncode})")
    r = ssh.run("127.0.0.1", "echo out; echo err >&2; echo out2")
    CHECKS.check(r.stdout == "out\nout2\n" and r.stderr == "err\n",
                 f"stdout and stderr apart: {r.stdout!r} {r.stderr!r}")
    r = ssh.run("127.0.0.1", "cat; echo; echo done", input="from stdin")
    CHECKS.check(r.returncode == 0 and r.stdout == "from stdin\ndone\n",
                 f"stdin reaches the command, its EOF ends cat: {r.stdout!r}")
    env = dict(os.environ, LANG="xx_TEST.UTF-8", LC_TIME="C",
               ATRIUM_NOT_SENT="leak")
    r = ssh.run("-o", "SendEnv=LANG LC_TIME ATRIUM_NOT_SENT", "127.0.0.1",
                "echo \"$LANG|$LC_TIME|${ATRIUM_NOT_SENT-unset}\"", env=env)
    CHECKS.check(r.stdout == "xx_TEST.UTF-8|C|unset\n",
                 f"LANG and LC_* forwarded, other names not: {r.stdout!r}")
    r = ssh.run("127.0.0.1", "pwd; echo $ATRIUM_TEST_CFG; "
                "test -n \"$HOME\" && test -n \"$USER\" && echo home+user")
    CHECKS.check(r.stdout == f"{home}\nfrom-config\nhome+user\n",
                 f"start directory, configured env, HOME and USER: "
                 f"{r.stdout!r}")


def check_files(ssh, tmp, home):
    src = os.path.join(tmp, "big.bin")
    with open(src, "wb") as f:
        f.write(os.urandom(BIG))
    want = sha256(src)
    r = ssh.run("127.0.0.1", f"cat {src}", text=False, timeout=120)
    CHECKS.check(r.returncode == 0 and
                 hashlib.sha256(r.stdout).hexdigest() == want,
                 f"5 MB through a command's stdout: {len(r.stdout)} bytes")
    scp = ["scp"] + ssh.opts + ["-P", str(ssh.port)]
    up = os.path.join(home, "up.bin")
    r = subprocess.run(scp + [src, f"127.0.0.1:{up}"], capture_output=True,
                       text=True, timeout=120)
    CHECKS.check(r.returncode == 0 and os.path.exists(up) and
                 sha256(up) == want,
                 f"scp up: the same SHA-256 ({r.stderr.strip()})")
    down = os.path.join(tmp, "down.bin")
    r = subprocess.run(scp + [f"127.0.0.1:{up}", down], capture_output=True,
                       text=True, timeout=120)
    CHECKS.check(r.returncode == 0 and os.path.exists(down) and
                 sha256(down) == want,
                 f"scp down: the same SHA-256 ({r.stderr.strip()})")
    sftp = ["sftp"] + ssh.opts + ["-P", str(ssh.port), "-b", "-",
                                  "127.0.0.1"]
    r = subprocess.run(sftp, input="ls -1\n", capture_output=True,
                       text=True, timeout=60)
    CHECKS.check(r.returncode == 0 and "up.bin" in r.stdout.split(),
                 f"sftp lists the start directory: {r.stdout!r} "
                 f"{r.stderr.strip()}")


def echo_listener():
    """A loopback listener answering one connection with b"echo:" + data."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)

    def serve():
        c, _ = s.accept()
        data = b""
        while not data.endswith(b"\n"):
            chunk = c.recv(100)
            if not chunk:
                break
            data += chunk
        c.sendall(b"echo:" + data)
        c.close()
        s.close()
    threading.Thread(target=serve, daemon=True).start()
    return s.getsockname()[1]


def check_forwarding(ssh):
    port = echo_listener()
    r = ssh.run("-W", f"127.0.0.1:{port}", "127.0.0.1", input="hello\n")
    CHECKS.check(r.stdout == "echo:hello\n",
                 f"direct-tcpip reaches a loopback listener: {r.stdout!r} "
                 f"{r.stderr.strip()}")
    r = ssh.run("-W", "192.0.2.1:80", "127.0.0.1", input="x\n")
    CHECKS.check(r.returncode == 255 and r.stdout == "",
                 f"direct-tcpip to another host is refused: {r.returncode} "
                 f"{r.stderr.strip()}")


def check_multiplexed(ssh, srv, tmp):
    ctl = os.path.join(tmp, "ctl")
    master = subprocess.Popen(ssh.argv("-M", "-S", ctl, "-N", "127.0.0.1"),
                              stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    PROCS.append(master)
    up = poll(lambda: subprocess.run(
        ["ssh", "-S", ctl, "-O", "check", "x"], capture_output=True)
        .returncode == 0, 20, 0.1)
    CHECKS.check(up, "the multiplexing master is up")
    flag = os.path.join(tmp, "flag")
    started = os.path.join(tmp, "a_started")
    # a waits for what b does: both channels are served at once.
    a = subprocess.Popen(ssh.argv("-S", ctl, "127.0.0.1",
                                  f"touch {started}; "
                                  f"while [ ! -e {flag} ]; do sleep 0.05; "
                                  "done; echo a"),
                         stdout=subprocess.PIPE, text=True)
    PROCS.append(a)
    CHECKS.check(bool(poll(lambda: os.path.exists(started))),
                 "the first command runs")
    # earlier clients' connections may still be ending: poll
    CHECKS.check(bool(srv.wait_connections(1)),
                 "it runs on the master's one connection")
    b = ssh.run("-S", ctl, "127.0.0.1", f"touch {flag}; echo b")
    try:
        out_a = a.communicate(timeout=30)[0]
    except subprocess.TimeoutExpired:
        out_a = None
    CHECKS.check(b.stdout == "b\n" and out_a == "a\n",
                 f"two channels at once on one connection: {out_a!r} "
                 f"{b.stdout!r}")
    subprocess.run(["ssh", "-S", ctl, "-O", "exit", "x"],
                   capture_output=True, timeout=30)
    try:
        master.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stop(master)


def check_pty(ssh, tmp):
    if not shutil.which("tmux"):
        CHECKS.check(False, "tmux is installed (Debian tmux)")
        return
    sock = os.path.join(tmp, "tmux.sock")
    tmux = ["tmux", "-S", sock, "-f", "/dev/null"]
    inner = " ".join(ssh.argv("-tt", "127.0.0.1"))
    subprocess.run(tmux + ["new-session", "-d", "-x", "80", "-y", "24",
                           f"{inner}; echo SSH_RC=$?; exec cat"], check=True)
    pid = subprocess.run(tmux + ["display", "-p", "#{pid}"],
                         capture_output=True, text=True).stdout.strip()

    def pane():
        return subprocess.run(tmux + ["capture-pane", "-p", "-S", "-100"],
                              capture_output=True, text=True).stdout

    def send(keys):
        subprocess.run(tmux + ["send-keys", keys, "Enter"], check=True)

    try:
        term = subprocess.run(tmux + ["show", "-gv", "default-terminal"],
                              capture_output=True, text=True).stdout.strip()
        send("stty size; echo TERM=$TERM")
        ok = poll(lambda: "\n24 80\n" in "\n" + pane())
        CHECKS.check(bool(ok), f"stty size in the PTY says 24 80: "
                     f"{pane()[-300:]!r}")
        CHECKS.check(f"TERM={term}" in pane(),
                     f"TERM is the client's ({term})")
        subprocess.run(tmux + ["resize-window", "-x", "100", "-y", "30"],
                       check=True)
        # the resize reaches the remote terminal: poll for it, since ssh
        # sends window-change when its SIGWINCH arrives.
        ok = poll(lambda: (send("stty size") or True) and
                  "\n30 100\n" in "\n" + pane(), 20, 0.3)
        CHECKS.check(bool(ok), f"after resize-window stty size says 30 100: "
                     f"{pane()[-300:]!r}")
        send("exit 3")
        ok = poll(lambda: "SSH_RC=3" in pane())
        CHECKS.check(bool(ok), f"the shell's exit status through the PTY: "
                     f"{pane()[-200:]!r}")
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        if pid.isdigit():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def check_hangup(ssh, srv, tmp):
    pidfile = os.path.join(tmp, "remote.pid")
    client = subprocess.Popen(ssh.argv("127.0.0.1",
                                       f"echo $$ > {pidfile}.tmp; "
                                       f"mv {pidfile}.tmp {pidfile}; "
                                       "exec sleep 1000"),
                              stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL)
    PROCS.append(client)
    got = poll(lambda: os.path.exists(pidfile))
    CHECKS.check(bool(got), "the remote command started")
    if not got:
        return
    with open(pidfile) as f:
        rpid = int(f.read())
    CHECKS.check(alive(rpid), "its process runs")
    stop(client, signal.SIGKILL)
    gone = poll(lambda: not alive(rpid), 20)
    CHECKS.check(bool(gone), "a client gone: its process is hung up and "
                 "reaped (no zombie left)")
    CHECKS.check(bool(srv.wait_connections(0)), "and its connection ended")


def check_stop_with_session(binary, tmp, key):
    srv = Server(binary, tmp, key, "stoprun")
    known = os.path.join(tmp, "known_stop")
    with open(known, "w") as f:
        f.write(known_line(srv.port, key))
    ssh = Ssh(tmp, srv.port, known)
    client = subprocess.Popen(ssh.argv("127.0.0.1", "sleep 1000"),
                              stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    PROCS.append(client)
    CHECKS.check(bool(srv.wait_connections(1)), "a session is open")
    rc, rest = srv.stop()
    CHECKS.check(rc == 0 and "stopped" in rest,
                 f"SIGTERM with a session open: agent_ssh_free ends it, "
                 f"exit 0 ({rc}, {rest}, {srv.stderr()[-500:]!r})")
    try:
        client.wait(timeout=30)
        ended = True
    except subprocess.TimeoutExpired:
        ended = False
    CHECKS.check(ended, "the client saw its connection end")


def static_busybox(path):
    if not os.access(path, os.X_OK):
        return False
    out = subprocess.run(["ldd", path], capture_output=True, text=True)
    return "not a dynamic" in out.stdout + out.stderr


def busybox_main(binary, cmake, script, sftp_server, nss_wrapper, busybox):
    if os.getuid() != 0:
        print("skipped: chroot needs root")
        return 77
    if not static_busybox(busybox):
        print("skipped: no static busybox (Debian busybox-static)")
        return 77
    if not os.access(sftp_server, os.X_OK):
        print(f"skipped: no {sftp_server} (Debian openssh-sftp-server)")
        return 77
    tmp = tempfile.mkdtemp(prefix="agent_ssh_busybox.")
    root = os.path.join(tmp, "root")
    for d in ("bin", "opt", "tmp", "proc", "dev"):
        os.makedirs(os.path.join(root, d))
    # What a container has: /dev/null (sftp-server opens it).
    os.mknod(os.path.join(root, "dev", "null"), 0o666 | stat.S_IFCHR,
             os.makedev(1, 3))
    shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
    os.symlink("busybox", os.path.join(root, "bin", "sh"))
    bundle = os.path.join(root, "opt", "atrium")
    subprocess.run([cmake, f"-DAGENT={binary}", f"-DOUT={bundle}",
                    f"-DSFTP_SERVER={sftp_server}",
                    f"-DNSS_WRAPPER={nss_wrapper}", "-P", script],
                   check=True)
    libs = os.listdir(os.path.join(bundle, "lib"))
    CHECKS.check("libssh.so.4" in libs and "libcrypto.so.3" in libs,
                 f"ldd put libssh and its libraries in the bundle: {libs}")
    CHECKS.check(os.access(os.path.join(bundle, "libexec", "sftp-server"),
                           os.X_OK), "the bundle has libexec/sftp-server")
    key = os.path.join(root, "tmp", "host_key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out",
                    key], check=True)
    mounted = subprocess.run(["mount", "-t", "proc", "proc",
                              os.path.join(root, "proc")]).returncode == 0
    srv = None
    try:
        if not mounted:
            print("skipped: cannot mount /proc in the root")
            return 77
        # The server as the agent runs: its launcher, the bundled loader.
        srv = Server("chroot", tmp, None, "busybox",
                     [root, "/opt/atrium/atrium-agent", "--host-key",
                      "/tmp/host_key.pem", "--directory", "/tmp"])
        known = os.path.join(tmp, "known_hosts")
        with open(known, "w") as f:
            f.write(known_line(srv.port, key))
        ssh = Ssh(tmp, srv.port, known)
        r = ssh.run("127.0.0.1", "echo $((6*7)); test -e /usr || "
                    "test -e /lib || echo bare; ls /bin")
        CHECKS.check(r.returncode == 0 and
                     r.stdout.split() == ["42", "bare", "busybox", "sh"],
                     f"a command in the busybox root: {r.stdout!r} "
                     f"{r.stderr.strip()}")
        src = os.path.join(tmp, "one.bin")
        with open(src, "wb") as f:
            f.write(os.urandom(1024 * 1024))
        scp = ["scp"] + ssh.opts + ["-P", str(ssh.port)]
        r = subprocess.run(scp + [src, "127.0.0.1:/tmp/up.bin"],
                           capture_output=True, text=True, timeout=120)
        up = os.path.join(root, "tmp", "up.bin")
        CHECKS.check(r.returncode == 0 and os.path.exists(up) and
                     sha256(up) == sha256(src),
                     f"scp up through the bundle's sftp-server: "
                     f"{r.stderr.strip()}")
        down = os.path.join(tmp, "down.bin")
        r = subprocess.run(scp + ["127.0.0.1:/tmp/up.bin", down],
                           capture_output=True, text=True, timeout=120)
        CHECKS.check(r.returncode == 0 and os.path.exists(down) and
                     sha256(down) == sha256(src),
                     f"scp down through it: {r.stderr.strip()}")
        r = subprocess.run(["sftp"] + ssh.opts + ["-P", str(ssh.port), "-b",
                                                  "-", "127.0.0.1"],
                           input="ls -1\n", capture_output=True, text=True,
                           timeout=60)
        CHECKS.check(r.returncode == 0 and "up.bin" in r.stdout.split(),
                     f"sftp lists /tmp: {r.stdout!r} {r.stderr.strip()}")
        rc, rest = srv.stop()
        srv = None
        CHECKS.check(rc == 0 and "stopped" in rest,
                     f"the server stopped cleanly ({rc}, {rest})")
    finally:
        if srv:
            srv.stop()
        for p in PROCS:
            stop(p, signal.SIGKILL)
        # never rmtree through a /proc still mounted
        if not mounted or subprocess.run(
                ["umount", "-l", os.path.join(root, "proc")]).returncode == 0:
            shutil.rmtree(tmp, ignore_errors=True)
    return CHECKS.done()


def main():
    binary = sys.argv[1]
    if len(sys.argv) == 8 and sys.argv[2] == "--busybox":
        return busybox_main(binary, *sys.argv[3:])
    for tool in ("ssh", "scp", "sftp", "ssh-keygen", "ssh-keyscan",
                 "openssl"):
        if not shutil.which(tool):
            print(f"skipped: {tool} is not installed")
            return 77
    tmp = tempfile.mkdtemp(prefix="agent_ssh.")
    home = os.path.join(tmp, "home")
    os.mkdir(home)
    key = os.path.join(tmp, "host_key.pem")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out",
                    key], check=True)
    with open(key) as f:
        CHECKS.check(f.readline().strip() == "-----BEGIN PRIVATE KEY-----",
                     "the host key is PKCS#8 PEM, as the server makes it")
    try:
        check_host_keys(binary, tmp, key)
        srv = Server(binary, tmp, key, "main")
        known = os.path.join(tmp, "known_main")
        with open(known, "w") as f:
            f.write(known_line(srv.port, key))
        ssh = Ssh(tmp, srv.port, known)
        check_commands(ssh, home)
        check_files(ssh, tmp, home)
        check_forwarding(ssh)
        check_multiplexed(ssh, srv, tmp)
        check_pty(ssh, tmp)
        check_hangup(ssh, srv, tmp)
        CHECKS.check(bool(srv.wait_connections(0)),
                     "every connection ended: connections 0")
        rc, rest = srv.stop()
        CHECKS.check(rc == 0 and "stopped" in rest,
                     f"the server stopped cleanly ({rc}; "
                     f"{srv.stderr()[-800:]!r})")
        check_stop_with_session(binary, tmp, key)
    finally:
        for p in PROCS:
            stop(p, signal.SIGKILL)
        shutil.rmtree(tmp, ignore_errors=True)
    return CHECKS.done()


if __name__ == "__main__":
    sys.exit(main())
