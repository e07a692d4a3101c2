#!/usr/bin/env python3
"""Getting into a workspace under load (issue 15): each figure next to a
baseline measured in the same run, as a ratio; printed, never asserted.

A real server with the terraform provisioner, a terraform-local workspace
whose agent is a host process (tests/connect's template and helpers),
`atrium config-ssh` into a temporary HOME; then:

1. set-up time of `ssh atrium.dev true` (OpenSSH through `atrium ssh
   --stdio`), RUNS times: p50/p90, next to `atrium ssh dev -- true` (the
   CLI's own client) and to `curl /healthz` (a process that reaches the
   server and is answered: the floor under any client);
2. scp of MB megabytes up and down through the relay, next to the same
   bytes over plain loopback TCP with nc (one process each side): MB/s
   and the ratio;
3. SESSIONS concurrent `ssh atrium.dev` sessions, each holding a shell
   that runs a loop, on one server: the server's and the agent's RSS
   before, with all open, and after they closed; the time until all were
   open.

usage: bench_connect.py ATRIUM PLUGIN_DIR SOURCE_DIR [--runs N]
                        [--mb N] [--sessions N]
Exits 77 (skipped) without /usr/local/bin/terraform.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "connect"))
import connect_terraform as tf  # noqa: E402
from connect_lib import TERRAFORM, WS, free_port, run_test, sha256  # noqa


def rss_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def timed(args, env, timeout=60):
    t = time.monotonic()
    r = subprocess.run(args, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                       env=env, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{args[0]} exited {r.returncode}: "
                           f"{r.stderr[-300:]!r}")
    return (time.monotonic() - t) * 1000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def setup_times(c, runs):
    ssh = ["ssh"] + c.ssh_opts() + [f"atrium.{WS}", "true"]
    cli = [c.atrium, "ssh", WS, "--", "true"]
    curl = ["curl", "-sf", "-o", "/dev/null", c.url + "/healthz"]
    timed(ssh, c.env)  # the first records the host key
    rows = []
    for name, args in (("ssh atrium.dev true", ssh),
                       ("atrium ssh dev -- true", cli),
                       ("curl /healthz (baseline)", curl)):
        xs = [timed(args, c.env) for _ in range(runs)]
        rows.append((name, statistics.median(xs), pct(xs, 90)))
    base = rows[-1][1]
    print(f"\n== set-up time, {runs} runs each ==")
    print(f"{'':28} {'p50 ms':>8} {'p90 ms':>8} {'p50 / baseline':>15}")
    for name, p50, p90 in rows:
        print(f"{name:28} {p50:8.1f} {p90:8.1f} {p50 / base:14.1f}x")


def listening(port):
    """Whether something listens on 127.0.0.1:port (/proc/net/tcp, state
    0A): a probe connection would be the one nc -l accepts."""
    want = f"0100007F:{port:04X}"
    try:
        for line in open("/proc/net/tcp").readlines()[1:]:
            f = line.split()
            if f[1] == want and f[3] == "0A":
                return True
    except OSError:
        pass
    return False


def nc_copy(path, size):
    """Seconds to send the file over loopback TCP: nc -l writes it to a
    file; nc -N sends it and closes."""
    port = free_port()
    out = path + ".nc"
    rx = subprocess.Popen(["nc", "-l", "127.0.0.1", str(port)],
                          stdout=open(out, "wb"), stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not listening(port):
            time.sleep(0.02)
        t = time.monotonic()
        subprocess.run(["nc", "-N", "127.0.0.1", str(port)],
                       stdin=open(path, "rb"), check=True, timeout=300)
        rx.wait(timeout=300)
        secs = time.monotonic() - t
    finally:
        if rx.poll() is None:
            rx.kill()
            rx.wait()
    ok = os.path.getsize(out) == size
    os.remove(out)
    return secs, ok


def throughput(c, mb):
    path = os.path.join(c.tmp, "bench.bin")
    with open(path, "wb") as f:
        for _ in range(mb):
            f.write(os.urandom(1 << 20))
    size = mb << 20
    scp = ["scp", "-q"] + c.ssh_opts()
    t = time.monotonic()
    subprocess.run(scp + [path, f"atrium.{WS}:bench.bin"], check=True,
                   timeout=600, env=c.env)
    up = time.monotonic() - t
    back = path + ".back"
    t = time.monotonic()
    subprocess.run(scp + [f"atrium.{WS}:bench.bin", back], check=True,
                   timeout=600, env=c.env)
    down = time.monotonic() - t
    same = sha256(back) == sha256(path)
    nc, nc_ok = nc_copy(path, size)
    print(f"\n== throughput, {mb} MB ==")
    print(f"{'':28} {'s':>7} {'MB/s':>8} {'vs nc':>7}")
    for name, secs in (("scp up (relay)", up), ("scp down (relay)", down),
                       ("nc over loopback (baseline)", nc)):
        print(f"{name:28} {secs:7.2f} {mb / secs:8.1f} {nc / secs:6.2f}x")
    print(f"(the copy back matches: {same}; nc copied every byte: {nc_ok})")
    os.remove(back)
    os.remove(path)
    c.ssh("rm -f bench.bin")


def sessions(c, n):
    srv, agent = c.server.pid, c.agent.pid
    before = rss_kib(srv), rss_kib(agent)
    procs = []
    t = time.monotonic()
    try:
        for i in range(n):
            procs.append(subprocess.Popen(
                ["ssh"] + c.ssh_opts() + [
                    f"atrium.{WS}",
                    "echo open; while :; do sleep 1; done"],
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                stdin=subprocess.DEVNULL, env=c.env))
        opened = 0
        for p in procs:  # each prints "open" once its shell runs
            line = p.stdout.readline()
            opened += line.strip() == b"open"
        secs = time.monotonic() - t
        during = rss_kib(srv), rss_kib(agent)
        st, body = c.call("GET", "/api/v2/workspaceagents/" + c.agent_id)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def agent_idle():
        # the agent's shells end when their channels close
        r = subprocess.run(["pgrep", "-c", "-P", str(agent)],
                           capture_output=True, text=True)
        return int(r.stdout.strip() or 0) <= 4
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not agent_idle():
        time.sleep(0.1)
    after = rss_kib(srv), rss_kib(agent)
    print(f"\n== {n} concurrent ssh sessions (each a shell in a loop) ==")
    print(f"all {opened} of {n} open in {secs:.2f} s")
    print(f"{'RSS KiB':28} {'before':>9} {'all open':>9} {'after':>9} "
          f"{'per session':>12}")
    for i, name in enumerate(("server", "agent (host process)")):
        per = (during[i] - before[i]) / max(n, 1)
        print(f"{name:28} {before[i]:9d} {during[i]:9d} {after[i]:9d} "
              f"{per:11.1f}")


def run(args):
    c = tf.start(args.atrium, args.plugins, args.src)
    c.config_ssh()
    for part, fn in (("set-up", lambda: setup_times(c, args.runs)),
                     ("throughput", lambda: throughput(c, args.mb)),
                     ("sessions", lambda: sessions(c, args.sessions))):
        try:
            fn()
        except Exception as e:  # noqa: BLE001 — a bench reports and goes on
            c.checks.failures.append(f"{part}: {e!r}")
            print(f"FAIL {part}: {e!r}")
    c.cli(["stop", WS])
    c.kill_workspace_servers()
    return c


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("atrium")
    ap.add_argument("plugins")
    ap.add_argument("src")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--mb", type=int, default=200)
    ap.add_argument("--sessions", type=int, default=100)
    args = ap.parse_args()
    args.runs = max(3, min(args.runs, 1000))
    args.mb = max(1, min(args.mb, 2000))
    args.sessions = max(1, min(args.sessions, 500))
    if not os.access(TERRAFORM, os.X_OK):
        print(f"skipped: {TERRAFORM} is missing")
        return 77
    return run_test("bench_connect", lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
