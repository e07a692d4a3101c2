#!/usr/bin/env python3
"""The browser tools on loopback, without atrium: code-server's workbench
renders in headless Chromium (driven by playwright-core) and lists a file
of the opened folder (over its websocket), and a Jupyter notebook served
under a base path like an app's runs a cell `6*7` → 42 (kernels over
websockets). connect_browser.py does the same through the server's app
proxy, where only the URLs change: when this passes and that fails, the
proxy is at fault.

usage: connect_browser_direct.py NPM_DIR
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from connect_lib import (HERE, Checks, free_port, http_get, in_sessions,  # noqa
                         stop_proc)


def wait_http(port, path, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if http_get(port, path, timeout=2)[0] < 500:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def browse(npm, tmp, check, url, extra=()):
    r = subprocess.run(["node", os.path.join(HERE, "browser.js"), "--check",
                        check, "--url", url, "--timeout", "90",
                        "--screenshot", os.path.join(tmp, check + ".png")] +
                       list(extra), capture_output=True, text=True,
                       timeout=240, cwd=tmp,
                       env=dict(os.environ,
                                NODE_PATH=os.path.join(npm, "node_modules")))
    print(r.stdout.strip()[-3000:])
    return r.returncode == 0


def main():
    npm = os.path.abspath(sys.argv[1])
    checks = Checks()
    tmp = tempfile.mkdtemp(prefix="atrium-connect-direct-")
    procs = []
    env = dict(os.environ, HOME=tmp)
    for v in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        env.pop(v, None)
    try:
        os.makedirs(os.path.join(tmp, "proj"))
        open(os.path.join(tmp, "proj", "hello-atrium.txt"), "w").write("hi\n")
        cs_port = free_port()
        procs.append(subprocess.Popen(
            [os.path.join(npm, "bin", "code-server"), "--auth", "none",
             "--bind-addr", f"127.0.0.1:{cs_port}", "--disable-telemetry",
             "--disable-update-check", "--user-data-dir",
             os.path.join(tmp, "cs-data"), "--extensions-dir",
             os.path.join(tmp, "cs-ext")],
            stdout=open(os.path.join(tmp, "code-server.log"), "w"),
            stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL,
            start_new_session=True))
        checks.check(wait_http(cs_port, "/healthz"),
                     "code-server answers /healthz")
        checks.check(browse(npm, tmp, "code-server",
                            f"http://127.0.0.1:{cs_port}/?folder={tmp}/proj"),
                     "code-server's workbench renders in Chromium")
        nb = os.path.join(tmp, "nb")
        os.makedirs(nb)
        shutil.copy(os.path.join(HERE, "t.ipynb"), nb)
        jp = free_port()
        base = "/@admin/dev/apps/jupyter/"
        procs.append(subprocess.Popen(
            ["/usr/bin/jupyter", "notebook", "--no-browser", "--allow-root",
             "--ip=127.0.0.1", f"--port={jp}", f"--notebook-dir={nb}",
             "--NotebookApp.token=", "--NotebookApp.password=",
             f"--NotebookApp.base_url={base}"],
            stdout=open(os.path.join(tmp, "jupyter.log"), "w"),
            stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL,
            start_new_session=True))
        checks.check(wait_http(jp, base + "api"), "Jupyter answers")
        checks.check(browse(npm, tmp, "jupyter",
                            f"http://127.0.0.1:{jp}{base}notebooks/t.ipynb"),
                     "a Jupyter cell runs 6*7 -> 42 in Chromium")
    finally:
        # each server in a session of its own: code-server's extension
        # host is in a process group of its own, but in that session
        for p in procs:
            stop_proc(p, seconds=10)
        for pid in in_sessions({p.pid for p in procs}):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    if checks.failures:
        for name in ("code-server.log", "jupyter.log"):
            p = os.path.join(tmp, name)
            if os.path.exists(p):
                print(f"--- {name}:\n" + open(p).read()[-2000:])
        print("kept", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return checks.done()


if __name__ == "__main__":
    sys.exit(main())
