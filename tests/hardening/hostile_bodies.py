#!/usr/bin/env python3
"""Hostile request bodies against a real `atrium server` (issue 13).

  hostile_bodies.py ATRIUM_BIN PLUGIN_DIR

Before the JSON bounds, a small body nested deeply enough crashed the
server from a worker thread (SIGSEGV) before any sign-in, and six 15 MiB
bodies of tiny arrays grew it to gigabytes. Each case here sends one, and
asserts the exact answer, that the server still serves, and how far its
peak memory moved.
"""
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ATRIUM, PLUGINS = sys.argv[1], sys.argv[2]
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, token=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"}
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


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def start(tmp):
    port = free_port()
    with open(os.path.join(tmp, "atrium.yaml"), "w") as f:
        f.write(f"http:\n  address: 127.0.0.1:{port}\n"
                f"data_dir: {tmp}/data\nplugin_dirs: [{PLUGINS}]\n"
                "plugins:\n  storage_sqlite:\n    enabled: true\n"
                "  auth_password:\n    enabled: true\n")
    log = open(os.path.join(tmp, "server.log"), "w")
    proc = subprocess.Popen([ATRIUM, "server", "--config",
                             os.path.join(tmp, "atrium.yaml")],
                            stdout=log, stderr=subprocess.STDOUT)
    for _ in range(300):  # up to 30 s for the server to answer /readyz
        if proc.poll() is not None:
            sys.exit("the server exited while starting")
        try:
            if request(port, "GET", "/readyz", timeout=1)[0] == 200:
                return proc, port
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    sys.exit("the server did not become ready in 30 s")


def alive(proc, port):
    return proc.poll() is None and \
        request(port, "GET", "/healthz", timeout=5)[0] == 200


def deep_bodies(proc, port):
    for name, body in [
            ("arrays", "[" * 100000 + "]" * 100000),
            ("objects", '{"a":' * 20000 + "1" + "}" * 20000)]:
        status, answer = request(port, "POST", "/api/v2/users/login", body)
        check(status == 413 and answer == {
            "message": "Request body too complex.",
            "detail": "The body is nested deeper than 16 levels."},
            f"100,000-deep {name} before sign-in: 413 naming the depth "
            f"(got {status} {answer})")
        check(alive(proc, port), f"the server serves after deep {name}")


def many_values(proc, port):
    body = ("[" + ",".join(["[]"] * 5000000) + "]").encode()
    before = peak_kib(proc.pid)
    statuses = []

    def send():
        try:
            statuses.append(request(port, "POST", "/api/v2/users/login",
                                    body, timeout=120)[0])
        except OSError as e:
            statuses.append(str(e))
    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = (peak_kib(proc.pid) - before) // 1024
    check(statuses == [413] * 6,
          f"six 15 MiB bodies of 5,000,000 arrays: 413 each (got {statuses})")
    # The bodies themselves are read (6 x 15 MiB); nothing is parsed.
    check(grown < 256, f"peak memory grew by {grown} MiB (< 256 MiB)")
    check(alive(proc, port), "the server serves after them")


def signed_in_bodies(proc, port):
    first = {"email": "admin@example.com", "username": "admin",
             "password": "Hostile-bodies-1234", "name": "Admin"}
    status, _ = request(port, "POST", "/api/v2/users/first", json.dumps(first))
    check(status == 201, f"first user created (got {status})")
    status, answer = request(port, "POST", "/api/v2/users/login", json.dumps(
        {"email": first["email"], "password": first["password"]}))
    token = answer.get("session_token") if isinstance(answer, dict) else None
    check(status == 201 and token, f"signed in (got {status})")
    deep = '{"username": "x", "extra": ' + "[" * 65 + "]" * 65 + "}"
    status, answer = request(port, "POST", "/api/v2/users", deep, token)
    check(status == 413 and answer.get("detail") ==
          "The body is nested deeper than 64 levels.",
          f"a 65-deep body when signed in: 413 (got {status} {answer})")
    fine = '{"extra": ' + "[" * 60 + "]" * 60 + "}"
    status, _ = request(port, "POST", "/api/v2/users", fine, token)
    check(status == 400, f"a 60-deep body reaches validation: 400 (got {status})")
    check(alive(proc, port), "the server serves after signed-in bodies")


def main():
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(var, None)
    tmp = tempfile.mkdtemp(prefix="atrium-hostile-")
    proc, port = start(tmp)
    try:
        for case in (deep_bodies, many_values, signed_in_bodies):
            try:
                case(proc, port)
            except OSError as e:  # the server hung up or is gone
                check(False, f"{case.__name__}: {e!r}; server exit status "
                      f"{proc.poll()}")
                if proc.poll() is not None:
                    break
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if failures:
            print(open(os.path.join(tmp, "server.log")).read()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
