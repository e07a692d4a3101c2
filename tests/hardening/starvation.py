#!/usr/bin/env python3
"""No starvation (issue 13): a real `atrium server` keeps answering while
clients hold connections open.

  starvation.py ATRIUM_BIN PLUGIN_DIR [SLOW_PLUGIN_DIR]

With civetweb each connection held one of http.threads workers for its
whole life: 16 idle connections, 16 followed logs or one client trickling
bytes made /healthz unreachable. Now:
  1. 1,000 idle connections and 50 log followers of a workspace build
     that is running (the echo provisioner holds its apply while
     hold_file exists) leave /healthz answering in < 100 ms and a
     signed-in GET /api/v2/users/me in < 1 s, and the followers add no
     server threads; once the hold file is removed every follower gets
     the stream's `end` event;
  2. a client sending a header byte at a time is cut off after
     http.header_timeout while others are served;
  3. http.max_connections_per_address closes the extra connections from
     one address, not those from another, and logs it once;
  4. a kept-alive connection is closed after http.idle_timeout, and
     http.max_connections closes connections past it (logged once);
  5. with every worker inside a slow handler (the fixture_slow plugin of
     tests/integration, when its directory is given), /healthz still
     answers in < 100 ms and /readyz long before any worker is free.
Connections come from 127.0.0.2..21 (all of 127/8 is loopback on Linux),
so the per-address cap is not what keeps them out. Every wait is a
bounded poll for the state wanted; the only timings asserted are the
issue's two thresholds.
"""
import http.client
import io
import json
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

from server import Checks, Server

ATRIUM, PLUGINS = sys.argv[1], sys.argv[2]
SLOW_DIR = sys.argv[3] if len(sys.argv) > 3 else None
SLOW_MS, BUSY_THREADS = 10000, 4
checks = Checks()
check = checks.check

IDLE, FOLLOWERS, ADDRESSES = 1000, 50, 20
PER_ADDRESS_CAP = 60
SOURCES = [f"127.0.0.{i}" for i in range(2, 2 + ADDRESSES)]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 8192) if hard != resource.RLIM_INFINITY else 8192
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def threads_of(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return 0


def sockets_of(pid):
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def wait_for(cond, seconds):
    """Poll cond every 50 ms for at most `seconds`; its last value."""
    until = time.monotonic() + seconds
    while True:
        value = cond()
        if value or time.monotonic() > until:
            return value
        time.sleep(0.05)


def connect(port, source):
    s = socket.create_connection(("127.0.0.1", port), timeout=10,
                                 source_address=(source, 0))
    return s


def closed(s):
    """The server closed s (EOF or reset); never blocks."""
    try:
        r, _, _ = select.select([s], [], [], 0)
        if not r:
            return False
        return s.recv(65536) == b""
    except OSError:
        return True


def timed(fn):
    t = time.monotonic()
    result = fn()
    return time.monotonic() - t, result


def archive():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, text in (("template.yaml", "name: dev\nprovisioner: echo\n"),
                           ("main.txt", "echo files\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def upload_template(srv, token):
    """The echo template imported (imports are not held): its id."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.request("POST", "/api/v2/files", body=archive(), headers={
        "Content-Type": "application/x-tar", "Atrium-Session-Token": token})
    r = c.getresponse()
    answer = json.loads(r.read() or b"{}")
    c.close()
    check(r.status in (200, 201), f"archive uploaded (got {r.status} {answer})")
    status, version = srv.request(
        "POST", "/api/v2/organizations/default/templateversions",
        json.dumps({"file_id": answer.get("hash"), "name": "v1"}), token)
    check(status == 201, f"template version created (got {status} {version})")
    job = wait_for(lambda: (lambda v: v if v[1].get("job", {}).get(
        "status") not in ("pending", "running") else None)(srv.request(
            "GET", f"/api/v2/templateversions/{version['id']}", token=token)),
        60)
    check(job and job[1]["job"]["status"] == "succeeded",
          f"the template version imports ({job and job[1].get('job')})")
    status, template = srv.request(
        "POST", "/api/v2/organizations/default/templates",
        json.dumps({"name": "dev", "template_version_id": version["id"]}),
        token)
    check(status == 201, f"template created (got {status} {template})")
    return template["id"]


def held(srv, token, build):
    """Wait (bounded) until the build's apply logs that it is held."""
    def logs():
        status, answer = srv.request(
            "GET", f"/api/v2/workspacebuilds/{build}/logs", token=token)
        return status == 200 and "held until" in json.dumps(answer)
    ok = wait_for(logs, 60)
    check(ok, f"build {build} is running, held by the echo's hold_file")
    return ok


def running_build(srv, token):
    """A workspace whose first build is running, held: (ws id, build id)."""
    open(srv.hold, "w").close()
    template = upload_template(srv, token)
    status, ws = srv.request("POST", "/api/v2/users/me/workspaces",
                             json.dumps({"name": "ws1",
                                         "template_id": template}), token)
    check(status == 201, f"workspace created (got {status} {ws})")
    build = ws["latest_build"]["id"]
    held(srv, token, build)
    return ws["id"], build


def logs_path(build):
    return f"/api/v2/workspacebuilds/{build}/logs?follow=true"


def ended(socks, seconds):
    """Read every follower until its `end` event (bounded): how many got
    it."""
    data = {s: b"" for s in socks}
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        waiting = [s for s in socks if b"event: end" not in data[s]]
        if not waiting:
            break
        r, _, _ = select.select(waiting, [], [], 0.5)
        for s in r:
            try:
                chunk = s.recv(65536)
            except OSError:
                chunk = b""
            data[s] += chunk or b"event: closed-without-end"
    return sum(1 for s in socks if b"event: end" in data[s])


def follow(port, source, path, token):
    """A follower: the stream's head read, the socket left open."""
    s = connect(port, source)
    s.sendall((f"GET {path} "
               f"HTTP/1.1\r\nHost: x\r\nAtrium-Session-Token: {token}\r\n"
               "\r\n").encode())
    head = b""
    until = time.monotonic() + 10
    while b"\r\n\r\n" not in head and time.monotonic() < until:
        r, _, _ = select.select([s], [], [], 1)
        if r:
            chunk = s.recv(4096)
            if not chunk:
                break
            head += chunk
    return s, head


def probe_latencies(srv, token):
    health = []
    for _ in range(10):
        took, (status, _) = timed(
            lambda: srv.request("GET", "/healthz", timeout=5))
        health.append((took, status))
    me = []
    for _ in range(3):
        took, (status, _) = timed(
            lambda: srv.request("GET", "/api/v2/users/me", token=token,
                                timeout=5))
        me.append((took, status))
    return health, me


def drain_ends_streams(srv, ws, token):
    """SIGTERM with followers of a running (held) build open: they end, the
    server exits 0."""
    open(srv.hold, "w").close()
    status, build = srv.request("POST", f"/api/v2/workspaces/{ws}/builds",
                                json.dumps({"transition": "stop"}), token)
    check(status == 201, f"a stop build started (got {status} {build})")
    held(srv, token, build["id"])
    followers = [follow(srv.port, "127.0.0.70", logs_path(build["id"]),
                        token)[0] for _ in range(3)]
    srv.proc.send_signal(signal.SIGTERM)
    try:
        rc = srv.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        rc = "still running after 15 s"
    check(rc == 0, f"SIGTERM with 3 followers open: exit status {rc}")
    check(all(wait_for(lambda s=s: closed(s), 5) for s in followers),
          "the followers' streams end")
    for s in followers:
        s.close()
    srv.proc = None


def idle_and_followers(srv, token):
    ws, build = running_build(srv, token)
    srv.workspace = ws
    before = threads_of(srv.proc.pid)
    followers = []
    for i in range(FOLLOWERS):
        s, head = follow(srv.port, SOURCES[i % ADDRESSES], logs_path(build),
                         token)
        followers.append(s)
        if i == 0:
            check(head.startswith(b"HTTP/1.1 200") and
                  b"text/event-stream" in head,
                  f"a follower gets the event stream (got {head[:80]!r})")
    after = threads_of(srv.proc.pid)
    check(after <= before + 1, f"{FOLLOWERS} followers: server threads "
          f"{before} -> {after} (no thread per stream)")
    idle = [connect(srv.port, SOURCES[i % ADDRESSES]) for i in range(IDLE)]
    held = wait_for(
        lambda: sockets_of(srv.proc.pid) >= IDLE + FOLLOWERS, 30)
    check(held, f"the server holds {IDLE} idle connections and "
          f"{FOLLOWERS} followers ({sockets_of(srv.proc.pid)} sockets)")
    health, me = probe_latencies(srv, token)
    worst = max(t for t, _ in health)
    check(all(st == 200 for _, st in health) and worst < 0.1,
          f"/healthz x10: 200, slowest {worst * 1000:.1f} ms (< 100 ms)")
    worst = max(t for t, _ in me)
    check(all(st == 200 for _, st in me) and worst < 1.0,
          f"GET /api/v2/users/me x3: 200, slowest {worst * 1000:.1f} ms "
          "(< 1 s)")
    still = sum(1 for s in followers if not closed(s))
    check(still == FOLLOWERS, f"all {FOLLOWERS} followers still streaming "
          f"({still})")
    check(threads_of(srv.proc.pid) <= before + 1,
          f"server threads with everything open: {threads_of(srv.proc.pid)} "
          f"(before the followers: {before})")
    for s in idle:
        s.close()
    os.unlink(srv.hold)
    got = ended(followers, 60)
    check(got == FOLLOWERS, f"the hold file removed, the build ends and all "
          f"{FOLLOWERS} followers get the end event ({got})")
    for s in followers:
        s.close()


def slowloris(srv):
    s = connect(srv.port, "127.0.0.40")
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200
    started, cut, sent = time.monotonic(), False, 0
    while time.monotonic() - started < 15 and not cut:
        try:
            s.send(request[sent % len(request):][:1])
            sent += 1
        except OSError:
            cut = True
            break
        cut = closed(s)
        if not cut and sent % 3 == 0:
            status, _ = srv.request("GET", "/healthz", timeout=5)
            if status != 200:
                check(False, f"/healthz while trickling: {status}")
        time.sleep(0.2)
    s.close()
    check(cut, f"a client trickling header bytes is cut off (after {sent} "
          f"bytes, {time.monotonic() - started:.1f} s; header_timeout 1s)")


def per_address_cap(srv):
    conns = [connect(srv.port, "127.0.0.50")
             for _ in range(PER_ADDRESS_CAP + 5)]
    shut = wait_for(lambda: sum(closed(s) for s in conns) >= 5 and
                    [s for s in conns if closed(s)] or None, 10)
    shut = shut or []
    live = [s for s in conns if s not in shut]
    answered = 0
    for s in live:
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        except OSError:
            continue
    for s in live:
        s.settimeout(10)
        try:
            if s.recv(4096).startswith(b"HTTP/1.1 200"):
                answered += 1
        except OSError:
            pass
    check(len(shut) == 5 and answered == PER_ADDRESS_CAP,
          f"{PER_ADDRESS_CAP + 5} connections from one address: 5 closed "
          f"(got {len(shut)}), the other {PER_ADDRESS_CAP} answer "
          f"(got {answered})")
    line = f"over http.max_connections_per_address={PER_ADDRESS_CAP} "
    logged = wait_for(lambda: srv.log_tail(10 ** 7).count(line), 10)
    check(logged == 1 and "from 127.0.0.50" in srv.log_tail(10 ** 7),
          f"the refusals are logged once, naming the cap and the address "
          f"({logged} lines)")
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10,
                                   source_address=("127.0.0.51", 0))
    c.request("GET", "/healthz")
    check(c.getresponse().status == 200, "another address is still served")
    c.close()
    for s in conns:
        s.close()


def read_answers(s, n, seconds=10):
    """Read until n whole answers (by Content-Length) or EOF; the bytes."""
    data, until = b"", time.monotonic() + seconds
    s.settimeout(1)
    while time.monotonic() < until:
        done, rest = 0, data
        while b"\r\n\r\n" in rest:
            head, rest = rest.split(b"\r\n\r\n", 1)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            if len(rest) < length:
                break
            rest, done = rest[length:], done + 1
        if done >= n:
            break
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            break
        data += chunk
    return data


def protocol(srv):
    """Pipelining, Expect: 100-continue, a chunked body, HTTP/1.0."""
    s = connect(srv.port, "127.0.0.80")
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /api/v2/buildinfo HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /healthz?again HTTP/1.1\r\nHost: x\r\n\r\n")
    data = read_answers(s, 3)
    statuses = re.findall(rb"HTTP/1\.1 (\d{3}) ", data)
    check(statuses == [b"200"] * 3 and data.index(b"OK") <
          data.index(b"plugin_abi"), "three pipelined requests answered in "
          f"order ({statuses})")
    s.sendall(b"POST /api/v2/users/login HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: 2\r\n"
              b"Expect: 100-continue\r\n\r\n")
    s.settimeout(10)
    interim = s.recv(4096)
    check(interim.startswith(b"HTTP/1.1 100 Continue"),
          f"Expect: 100-continue gets 100 first (got {interim[:40]!r})")
    s.sendall(b"{}")
    answer = read_answers(s, 1)
    check(answer.startswith(b"HTTP/1.1 400"),
          f"...then the answer to the body (got {answer[:20]!r})")
    s.sendall(b"POST /api/v2/users/login HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n1\r\n}\r\n"
              b"0\r\n\r\n")
    answer = read_answers(s, 1)
    check(answer.startswith(b"HTTP/1.1 400") and b"email" in answer.lower(),
          f"a chunked body reaches the handler (got {answer[:60]!r})")
    s.close()
    s = connect(srv.port, "127.0.0.80")
    s.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
    answer = read_answers(s, 1)
    check(answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in
          answer and wait_for(lambda: closed(s), 5),
          "an HTTP/1.0 request is answered and the connection closed")
    s.close()


def idle_timeout_and_max_connections(plugins_tmp):
    srv = Server(ATRIUM, PLUGINS, plugins_tmp,
                 http_extra="  idle_timeout: 1s\n  max_connections: 10\n")
    srv.start()
    try:
        s = connect(srv.port, "127.0.0.60")
        for _ in range(2):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(10)
            answer = s.recv(4096)
        check(answer.startswith(b"HTTP/1.1 200"),
              "two requests on one kept-alive connection")
        check(wait_for(lambda: closed(s), 10),
              "the kept-alive connection is closed after idle_timeout (1s)")
        s.close()
        held = [connect(srv.port, "127.0.0.61") for _ in range(12)]
        shut = wait_for(lambda: sum(closed(c) for c in held) >= 2, 10)
        check(shut and sum(closed(c) for c in held) == 2,
              "max_connections 10: 2 of 12 connections closed at once "
              f"(got {sum(closed(c) for c in held)})")
        line = "over http.max_connections=10 "
        logged = wait_for(lambda: srv.log_tail(10 ** 7).count(line), 10)
        check(logged == 1, "the refusals are logged once, naming the cap "
              f"({logged} lines)")
        for c in held:
            c.close()

        def serves():
            try:
                return srv.alive()
            except OSError:  # the closes may not have been seen yet
                return False
        check(wait_for(serves, 10), "the server serves after them")
    finally:
        srv.stop()


def busy_workers(tmp):
    """Every worker sleeps in /fixture/slow: the probes do not wait."""
    srv = Server(ATRIUM, f"{PLUGINS}, {SLOW_DIR}", tmp,
                 http_extra=f"  threads: {BUSY_THREADS}\n",
                 plugins_extra=("  fixture_slow:\n    enabled: true\n"
                                f"    delay: {SLOW_MS}ms\n"))
    srv.start()
    results = []

    def slow():
        try:
            results.append(srv.request("GET", "/fixture/slow",
                                       timeout=60)[0])
        except OSError as e:
            results.append(repr(e))
    callers = [threading.Thread(target=slow) for _ in range(BUSY_THREADS)]
    try:
        for t in callers:
            t.start()
        busy = wait_for(lambda: srv.log_tail(100000).count(
            "slow request began") >= BUSY_THREADS, 30)
        check(busy, f"all {BUSY_THREADS} workers are inside /fixture/slow")
        health = [timed(lambda: srv.request("GET", "/healthz", timeout=5))
                  for _ in range(10)]
        worst = max(t for t, _ in health)
        check(all(r[0] == 200 for _, r in health) and worst < 0.1,
              f"/healthz x10 with every worker busy: 200, slowest "
              f"{worst * 1000:.1f} ms (< 100 ms)")
        took, (status, _) = timed(
            lambda: srv.request("GET", "/readyz", timeout=30))
        check(status == 200 and took < SLOW_MS / 2000,
              f"/readyz with every worker busy: {status} in "
              f"{took * 1000:.0f} ms (workers are busy for {SLOW_MS} ms)")
        for t in callers:
            t.join()
        check(results == [200] * BUSY_THREADS,
              f"the slow requests all answer 200 (got {results})")
    finally:
        srv.stop()


def main():
    limit = raise_nofile()
    if limit < IDLE + FOLLOWERS + 200:
        print(f"open file limit {limit} is too low for {IDLE} connections")
        return 77
    tmp = tempfile.mkdtemp(prefix="atrium-starve-")
    hold = os.path.join(tmp, "hold")
    srv = Server(ATRIUM, PLUGINS, tmp,
                 http_extra=("  threads: 4\n  header_timeout: 1s\n"
                             "  idle_timeout: 10m\n"
                             f"  max_connections_per_address: "
                             f"{PER_ADDRESS_CAP}\n"),
                 extra="provisioner:\n  daemons: 1\n",
                 plugins_extra=("  provisioner_echo:\n    enabled: true\n"
                                f"    hold_file: {hold}\n"
                                "    hold_timeout: 600s\n"))
    srv.hold = hold
    srv.start()
    try:
        token = srv.first_user()
        for case in (idle_and_followers, slowloris, per_address_cap,
                     protocol):
            try:
                case(srv, token) if case is idle_and_followers else case(srv)
            except OSError as e:
                check(False, f"{case.__name__}: {e!r}; server exit status "
                      f"{srv.proc.poll()}")
                if srv.proc.poll() is not None:
                    break
        check(srv.alive(), "the server still serves")
        if getattr(srv, "workspace", None):
            drain_ends_streams(srv, srv.workspace, token)
    finally:
        srv.stop()
        if checks.failures:
            print(srv.log_tail())
    other = os.path.join(tmp, "second")
    os.makedirs(other)
    try:
        idle_timeout_and_max_connections(other)
    except OSError as e:
        check(False, f"idle_timeout_and_max_connections: {e!r}")
    if SLOW_DIR:
        third = os.path.join(tmp, "third")
        os.makedirs(third)
        try:
            busy_workers(third)
        except OSError as e:
            check(False, f"busy_workers: {e!r}")
    shutil.rmtree(tmp, ignore_errors=True)
    return checks.done()


if __name__ == "__main__":
    sys.exit(main())
