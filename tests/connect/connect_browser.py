#!/usr/bin/env python3
"""Real apps through the server, in headless Chromium (issue 15): a
terraform-local workspace whose agent starts code-server and Jupyter
Notebook as apps; Chromium, driven by playwright-core, signs in through
the login route (the session cookie) and opens
- /@admin/dev/apps/code-server/?folder=…: the VS Code workbench renders
  and its explorer lists a file of the workspace (over code-server's
  websocket, through the proxy);
- /@admin/dev/apps/jupyter/notebooks/t.ipynb: a cell runs `6*7` → 42 on
  the kernel (over Jupyter's websockets, through the proxy);
- the echo app's page: document.cookie there holds no session cookie.
connect_browser_direct.py runs the same tools without atrium.

usage: connect_browser.py ATRIUM PLUGIN_DIR SOURCE_DIR NPM_DIR
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_terraform as tf  # noqa: E402
from connect_lib import HERE, PASSWORD, TERRAFORM, WS, run_test  # noqa: E402


def browse(c, npm, check, path, extra=()):
    r = subprocess.run(
        ["node", os.path.join(HERE, "browser.js"), "--check", check,
         "--url", c.url + path, "--login", c.url,
         "--email", "admin@example.com", "--password", PASSWORD,
         "--timeout", "120",
         "--screenshot", os.path.join(c.tmp, check + ".png")] + list(extra),
        capture_output=True, text=True, timeout=300, cwd=c.tmp,
        env=dict(c.env, NODE_PATH=os.path.join(npm, "node_modules")))
    print(r.stdout.strip()[-3000:])
    return r.returncode == 0, r.stdout


def run(atrium, plugins, src, npm):
    c = tf.start(atrium, plugins, src,
                 {"CODE_SERVER": os.path.join(npm, "bin", "code-server")})
    c.logs += [os.path.join(c.wsdir, n) for n in ("code-server.log",
                                                   "jupyter.log")]
    c.app_health("code-server", "healthy", 120)
    ok, _ = browse(c, npm, "code-server",
                   f"/@admin/{WS}/apps/code-server/?folder={c.wsdir}/proj")
    c.check(ok, "code-server through /@admin/dev/apps/code-server/: the "
            "workbench renders and lists the workspace's file (websocket)")
    ok, _ = browse(c, npm, "jupyter",
                   f"/@admin/{WS}/apps/jupyter/notebooks/t.ipynb")
    c.check(ok, "Jupyter through /@admin/dev/apps/jupyter/: a cell runs "
            "6*7 -> 42 (kernel websockets)")
    ok, out = browse(c, npm, "cookies", f"/@admin/{WS}/apps/echo/")
    line = [x for x in out.splitlines() if x.startswith("ok: cookies:")]
    c.check(ok and line and "atrium_session" not in line[0] and
            c.token not in line[0],
            f"the app's page cannot read the session cookie ({line})")
    c.cli(["stop", WS])
    c.kill_workspace_servers()
    return c


def main():
    atrium, plugins, src, npm = sys.argv[1:5]
    if not os.access(TERRAFORM, os.X_OK):
        print(f"skipped: {TERRAFORM} is missing")
        return 77
    if not os.path.exists(os.path.join(plugins, "provisioner_terraform.so")):
        print("skipped: no terraform provisioner")
        return 77
    npm = os.path.abspath(npm)
    return run_test("connect_browser", lambda: run(atrium, plugins, src, npm))


if __name__ == "__main__":
    sys.exit(main())
