#!/usr/bin/env python3
"""Workspace apps through the server with a real agent (docs/api.md,
"Workspace apps"; docs/design/connect.md §2).

A server on SQLite with the echo provisioner, a workspace whose agent
(a host process, `atrium agent --env-file`) has two apps on one app
process (echo_app.py, on a free port): `echo` shared with its owner and
`pub` shared with anyone. With curl, through /@admin/dev/apps/<slug>/:
- a GET reaches the app with the prefix stripped, X-Forwarded-* set, and
  neither the session header nor any atrium_* cookie;
- a browser's session cookie is traded for the app token (303), and with
  both cookies the app still sees only its own ("theme=dark");
- an app URL with {owner}/{workspace} gets its base path, which the
  startup script can build from ATRIUM_WORKSPACE_OWNER_NAME/_NAME;
- a 20 MB POST streams through (Content-Length, then chunked): the app's
  SHA-256 matches;
- another member gets 403; a public app opens without a session;
- a WebSocket through the app echoes a message, and its end is audited
  with its bytes;
- headless Chromium (when installed, driven over DevTools) signs in on
  the 401 page's form and lands on the app, whose page can read neither
  the session nor the app token and which got neither;
- Jupyter Notebook (Debian's jupyter-notebook, when installed) behind its
  base path: its own _xsrf cookie comes back to it, a kernel starts, and
  a cell runs over the kernel's WebSocket (its Origin check passes: the
  client's Host goes through).
Every wait is a bounded poll for a state.

usage: apps_e2e.py ATRIUM PLUGIN_DIR
"""
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "hardening"))
import agent_e2e as e  # noqa: E402
from server import free_port, stop_process  # noqa: E402

CHECKS = e.CHECKS
APP_PROCS = []


def template(port):
    return ("name: apps\nprovisioner: echo\n"
            "agent:\n"
            "  startup_script: \"echo base=/@$ATRIUM_WORKSPACE_OWNER_NAME/"
            "$ATRIUM_WORKSPACE_NAME/apps/based/\"\n"
            "  apps:\n"
            "    - slug: echo\n"
            f"      url: http://127.0.0.1:{port}/\n"
            "      share: owner\n"
            "    - slug: pub\n"
            f"      url: http://localhost:{port}/\n"
            "      share: public\n"
            "    - slug: based\n"
            f"      url: http://127.0.0.1:{port}/@{{owner}}/{{workspace}}/apps/"
            "based/\n")


def make_template(d, org, text):
    status, f = d.call("POST", "/api/v2/files",
                       raw=e.targz({"template.yaml": text,
                                    "main.txt": "echo\n"}),
                       ctype="application/gzip")
    if status not in (200, 201):
        e.fail(f"upload: {status} {f}")
    v = d.must(201, "POST", f"/api/v2/organizations/{org}/templateversions",
               {"file_id": f["hash"], "name": "v1"})
    job = e.wait_for("the import", lambda: (lambda j: j if j["status"] not in (
        "pending", "running") else None)(d.must(
            200, "GET", f"/api/v2/templateversions/{v['id']}")["job"]))
    if job["status"] != "succeeded":
        e.fail(f"import: {job}")
    return d.must(201, "POST", f"/api/v2/organizations/{org}/templates",
                  {"name": "apps", "template_version_id": v["id"]})["id"]


def curl(d, path, *args):
    """(status, headers text, body bytes) of curl through the server."""
    out = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "-D", "-", "-o", "-",
         "--max-time", "60", *args, f"http://127.0.0.1:{d.port}{path}"],
        capture_output=True, check=False)
    if out.returncode != 0:
        e.fail(f"curl {path}: exit {out.returncode}: {out.stderr.decode()}")
    raw = out.stdout
    # skip interim answers (100 Continue)
    while raw.startswith(b"HTTP/1.1 1"):
        raw = raw.split(b"\r\n\r\n", 1)[1]
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head.decode(errors="replace"), body


def said(d, path, *args, want=200):
    status, head, body = curl(d, path, *args)
    if status != want:
        e.fail(f"{path}: {status}, want {want}:\n{head}\n{body[:500]!r}")
    return json.loads(body) if want == 200 else head


def header(answer, name):
    return [v for k, v in answer["headers"] if k.lower() == name.lower()]


def websocket_echo(d, path, token, message):
    """One message through a WebSocket to the app: what came back."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{d.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
               f"Atrium-Session-Token: {token}\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        piece = s.recv(4096)
        if not piece:
            e.fail(f"websocket: closed during the handshake: {buf!r}")
        buf += piece
    head, _, rest = buf.partition(b"\r\n\r\n")
    want = base64.b64encode(hashlib.sha1(
        (key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest())
    CHECKS.check(head.startswith(b"HTTP/1.1 101") and want in head,
                 "websocket: the app's 101 reached the client")
    data = message.encode()
    mask = os.urandom(4)
    s.sendall(bytes([0x81, 0x80 | len(data)]) + mask +
              bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
    while len(rest) < 2 + len(data):
        piece = s.recv(4096)
        if not piece:
            break
        rest += piece
    got = rest[2:2 + rest[1]] if len(rest) >= 2 else b""
    s.sendall(bytes([0x88, 0x80]) + mask)  # close
    try:
        while s.recv(4096):
            pass
    except OSError:
        pass
    s.close()
    return got.decode(errors="replace")


def audit_ends(d):
    _, body = d.call("GET", "/api/v2/audit?q=action:connect")
    return [a for a in (body or {}).get("audit_logs", [])
            if a["additional_fields"].get("phase") == "end"]


def listening(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def run(d, org):
    app_port = free_port()
    APP_PROCS.append(subprocess.Popen(
        [sys.executable, os.path.join(HERE, "echo_app.py"), str(app_port)]))
    e.wait_for("the app to listen", lambda: listening(app_port))
    tid = make_template(d, org, template(app_port))
    ws = d.must(201, "POST", "/api/v2/users/me/workspaces",
                {"name": "dev", "template_id": tid})
    e.wait_build(d, ws["latest_build"]["id"])
    e.start_agent(d, ws["id"], [d.atrium], "apps")
    a = e.wait_for("the agent connected and ready", lambda: (
        lambda a: a if a and a.get("status") == "connected" and
        a.get("lifecycle_state") == "ready" else None)(e.agent_of(d, ws["id"])))
    apps = {x["slug"]: x for x in a["apps"]}
    CHECKS.check(apps["echo"]["sharing_level"] == "owner" and
                 apps["echo"]["subdomain"] is False and
                 apps["echo"]["url"] == f"http://127.0.0.1:{app_port}/",
                 "the agent's apps carry Coder's fields")
    tok = d.token

    # a GET: the prefix stripped, our credentials gone, X-Forwarded-* ours
    got = said(d, "/@admin/dev/apps/echo/hello/x?y=1&z=%20",
               "-H", f"Atrium-Session-Token: {tok}",
               "-H", "X-Forwarded-For: 6.6.6.6",
               "-H", "Cookie: theme=dark; atrium_csrf=c")
    CHECKS.check(got["path"] == "/hello/x?y=1&z=%20",
                 f"GET: the app got the path without the prefix ({got['path']})")
    CHECKS.check(not header(got, "Atrium-Session-Token"),
                 "GET: the session header did not reach the app")
    CHECKS.check(header(got, "Cookie") == ["theme=dark"],
                 f"GET: only the app's cookies reached it ({header(got, 'Cookie')})")
    CHECKS.check(header(got, "X-Forwarded-For") == ["127.0.0.1"] and
                 header(got, "X-Forwarded-Proto") == ["http"] and
                 header(got, "X-Forwarded-Host") == [f"127.0.0.1:{d.port}"],
                 "GET: X-Forwarded-For/-Proto/-Host are the server's")
    CHECKS.check(header(got, "Connection") == ["close"],
                 "GET: one request per tunnel (Connection: close)")

    # a browser: its session cookie traded for the app token
    head = said(d, "/@admin/dev/apps/echo/page?q=1", "-H",
                f"Cookie: atrium_session={tok}; theme=dark", want=303)
    cookie = [ln for ln in head.split("\r\n")
              if ln.lower().startswith("set-cookie: atrium_app_token=")]
    CHECKS.check(len(cookie) == 1 and
                 "; Path=/@admin/dev/apps/echo/;" in cookie[0] and
                 "HttpOnly" in cookie[0] and "SameSite=Lax" in cookie[0],
                 "browser: the app token's cookie is HttpOnly, for the app's "
                 "path only")
    app_token = cookie[0].split("=", 1)[1].split(";")[0] if cookie else ""
    got = said(d, "/@admin/dev/apps/echo/page?q=1", "-H",
               f"Cookie: atrium_session={tok}; theme=dark; "
               f"atrium_app_token={app_token}")
    CHECKS.check(header(got, "Cookie") == ["theme=dark"],
                 "browser: neither the session nor the app token reached the "
                 f"app ({header(got, 'Cookie')})")
    CHECKS.check(tok not in json.dumps(got) and app_token not in json.dumps(got),
                 "browser: no credential of ours anywhere in what the app got")

    # 20 MB streamed, with a length and chunked
    big = os.path.join(d.tmp, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(20 * 1024 * 1024))
    want = hashlib.sha256(open(big, "rb").read()).hexdigest()
    for how, extra in (("Content-Length", []),
                       ("chunked", ["-H", "Transfer-Encoding: chunked"])):
        got = said(d, "/@admin/dev/apps/echo/upload", "-X", "POST",
                   "--data-binary", f"@{big}", "-H",
                   f"Atrium-Session-Token: {tok}", *extra)
        CHECKS.check(got["length"] == 20 * 1024 * 1024 and
                     got["sha256"] == want,
                     f"POST 20 MB ({how}): the app read every byte "
                     f"({got['length']})")

    # another member: 403; a public app: no session needed
    d.must(201, "POST", "/api/v2/users",
           {"email": "member@example.com", "username": "member",
            "password": e.PASSWORD})
    member = d.must(201, "POST", "/api/v2/users/login",
                    {"email": "member@example.com",
                     "password": e.PASSWORD})["session_token"]
    status, _, body = curl(d, "/@admin/dev/apps/echo/", "-H",
                           f"Atrium-Session-Token: {member}")
    CHECKS.check(status == 403 and b"You may not open this app" in body,
                 "another member gets 403")
    got = said(d, "/@admin/dev/apps/pub/anyone")
    CHECKS.check(got["path"] == "/anyone", "a public app opens without a "
                 "session")

    # an app that knows its base path: from the URL's placeholders, and
    # the scripts' environment names the workspace to start it with
    got = said(d, "/@admin/dev/apps/based/tree?x=1",
               "-H", f"Atrium-Session-Token: {tok}")
    CHECKS.check(got["path"] == "/@admin/dev/apps/based/tree?x=1",
                 f"base path: the app got its full path ({got['path']})")
    text = e.wait_for("the startup script's line", lambda: (
        lambda t: t if "base=" in t else None)(e.agent_log(d, a["id"])))
    CHECKS.check("base=/@admin/dev/apps/based/" in text,
                 "base path: the scripts' environment names the workspace")

    # a WebSocket: echoed, and audited at its end with its bytes
    echoed = websocket_echo(d, "/@admin/dev/apps/echo/ws", tok, "hello ws")
    CHECKS.check(echoed == "hello ws", f"websocket: echoed ({echoed!r})")
    end = e.wait_for("the websocket's end entry", lambda: audit_ends(d))
    extra = end[0]["additional_fields"]
    CHECKS.check(extra.get("kind") == "app" and extra.get("slug") == "echo" and
                 extra.get("bytes_to_agent", 0) > 0 and
                 extra.get("bytes_from_agent", 0) > 0,
                 f"websocket: its end is audited with its bytes ({extra})")
    return app_token



class WS:
    """A minimal WebSocket client over a socket already upgraded."""

    def __init__(self, sock, rest):
        self.s, self.buf = sock, rest

    def _need(self, n):
        while len(self.buf) < n:
            piece = self.s.recv(65536)
            if not piece:
                raise OSError("closed")
            self.buf += piece

    def recv(self):
        self._need(2)
        op, n, at = self.buf[0] & 0x0F, self.buf[1] & 0x7F, 2
        if n == 126:
            self._need(4)
            n, at = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, at = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(at + n)
        data, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return op, data

    def send_text(self, text):
        data, mask = text.encode(), os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else
                                bytes([0x80 | 126]) + struct.pack(">H", n))
        self.s.sendall(head + mask +
                       bytes(b ^ mask[i % 4] for i, b in enumerate(data)))


def upgrade(d, path, headers):
    return upgrade_to(d.port, path, headers)


def upgrade_to(port, path, headers):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Upgrade: websocket", "Connection: Upgrade",
             f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    s.sendall(("\r\n".join(lines + headers) + "\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        piece = s.recv(4096)
        if not piece:
            break
        buf += piece
    head, _, rest = buf.partition(b"\r\n\r\n")
    return s, head.decode(errors="replace"), rest


def jupyter_case(d, org):
    """Jupyter Notebook (Debian's) behind its base path runs a cell over
    its kernel's WebSocket, through the server: its _xsrf cookie and the
    WebSocket's Origin check pass, and what it computes comes back."""
    if not shutil.which("jupyter-notebook"):
        print("skipped: Jupyter (no jupyter-notebook)")
        return
    port = free_port()
    base = "/@admin/nb/apps/jupyter/"
    home = os.path.join(d.tmp, "jhome")
    os.mkdir(home)
    env = dict(os.environ, HOME=home, JUPYTER_RUNTIME_DIR=home,
               JUPYTER_CONFIG_DIR=home, JUPYTER_DATA_DIR=home)
    APP_PROCS.append(subprocess.Popen(
        ["jupyter-notebook", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", "--NotebookApp.token=", "--NotebookApp.password=",
         f"--NotebookApp.base_url={base}", f"--notebook-dir={home}"] +
        (["--allow-root"] if os.geteuid() == 0 else []),
        env=env, cwd=home, stdout=open(os.path.join(d.tmp, "jupyter.log"),
                                       "w"), stderr=subprocess.STDOUT))
    text = ("name: nb\nprovisioner: echo\nagent:\n  apps:\n"
            "    - slug: jupyter\n"
            f"      url: http://localhost:{port}/@{{owner}}/{{workspace}}/"
            "apps/jupyter/\n")
    status, f = d.call("POST", "/api/v2/files",
                       raw=e.targz({"template.yaml": text, "main.txt": "x\n"}),
                       ctype="application/gzip")
    v = d.must(201, "POST", f"/api/v2/organizations/{org}/templateversions",
               {"file_id": f["hash"], "name": "v1"})
    e.wait_for("the import", lambda: d.must(
        200, "GET", f"/api/v2/templateversions/{v['id']}")["job"]["status"]
        == "succeeded")
    tid = d.must(201, "POST", f"/api/v2/organizations/{org}/templates",
                 {"name": "nb", "template_version_id": v["id"]})["id"]
    ws = d.must(201, "POST", "/api/v2/users/me/workspaces",
                {"name": "nb", "template_id": tid})
    e.wait_build(d, ws["latest_build"]["id"])
    e.start_agent(d, ws["id"], [d.atrium], "nb")
    e.wait_for("the nb agent", lambda: (lambda a: a and a.get("status") ==
                                        "connected")(e.agent_of(d, ws["id"])))
    tok = ["-H", f"Atrium-Session-Token: {d.token}"]
    e.wait_for("Jupyter to answer", lambda: curl(
        d, base + "api/status", *tok)[0] == 200)
    # the tree page sets Jupyter's own _xsrf cookie (Path=/: an app's
    # answer is not rewritten), which must come back to it whole
    status, head, _ = curl(d, base + "tree", *tok)
    xsrf = [ln.split("=", 1)[1].split(";")[0] for ln in head.split("\r\n")
            if ln.lower().startswith("set-cookie: _xsrf=")]
    CHECKS.check(status == 200 and len(xsrf) == 1,
                 f"Jupyter: its page and its own cookie come through ({status})")
    cookie = f"_xsrf={xsrf[0] if xsrf else ''}"
    status, _, body = curl(d, base + "api/kernels", "-X", "POST", *tok,
                           "-H", f"Cookie: {cookie}",
                           "-H", f"X-XSRFToken: {xsrf[0] if xsrf else ''}",
                           "-H", "Content-Type: application/json",
                           "--data", '{"name":"python3"}')
    CHECKS.check(status == 201, f"Jupyter: a kernel starts ({status})")
    kid = json.loads(body).get("id", "") if status == 201 else ""
    s, head, rest = upgrade(
        d, f"{base}api/kernels/{kid}/channels?session_id=e2e",
        [f"Origin: http://127.0.0.1:{d.port}", f"Cookie: {cookie}",
         f"Atrium-Session-Token: {d.token}"])
    CHECKS.check(head.startswith("HTTP/1.1 101"),
                 f"Jupyter: the kernel's WebSocket opens ({head[:60]!r})")
    ws_ = WS(s, rest)
    msg = {"header": {"msg_id": "e2e-1", "username": "e2e", "session": "e2e",
                      "msg_type": "execute_request", "version": "5.3",
                      "date": ""},
           "parent_header": {}, "metadata": {}, "channel": "shell",
           "buffers": [],
           "content": {"code": "print(6*7)", "silent": False,
                       "store_history": False, "user_expressions": {},
                       "allow_stdin": False, "stop_on_error": True}}
    ws_.send_text(json.dumps(msg))
    out = ""
    try:
        while "42" not in out:
            op, data = ws_.recv()
            if op != 1:
                continue
            m = json.loads(data)
            if (m.get("msg_type") == "stream" and
                    m["parent_header"].get("msg_id") == "e2e-1"):
                out += m["content"].get("text", "")
    except (OSError, ValueError) as err:
        out += f" ({err})"
    s.close()
    CHECKS.check(out.strip() == "42",
                 f"Jupyter: a cell ran through the proxy ({out.strip()!r})")



class Browser:
    """Headless Chromium driven over the DevTools protocol (its WebSocket,
    with the WS client above): navigate, evaluate."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "chromium")
        os.mkdir(self.dir)
        self.proc = subprocess.Popen(
            ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
             "--no-first-run", "--remote-debugging-port=0",
             f"--user-data-dir={self.dir}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        APP_PROCS.append(self.proc)
        active = os.path.join(self.dir, "DevToolsActivePort")
        e.wait_for("Chromium's DevTools port", lambda: os.path.exists(active)
                   and len(open(active).read().split()) == 2)
        port = int(open(active).read().split()[0])
        pages = e.wait_for("a Chromium page", lambda: [
            t for t in json.loads(subprocess.run(
                ["curl", "-s", "--noproxy", "*",
                 f"http://127.0.0.1:{port}/json/list"],
                capture_output=True).stdout or b"[]") if t["type"] == "page"])
        path = pages[0]["webSocketDebuggerUrl"].split(str(port), 1)[1]
        s, head, rest = upgrade_to(port, path, [])
        if not head.startswith("HTTP/1.1 101"):
            e.fail(f"DevTools: {head}")
        self.ws, self.next = WS(s, rest), 0

    def call(self, method, **params):
        self.next += 1
        self.ws.send_text(json.dumps({"id": self.next, "method": method,
                                      "params": params}))
        while True:
            op, data = self.ws.recv()
            m = json.loads(data) if op == 1 else {}
            if m.get("id") == self.next:
                return m.get("result", {})

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        return r.get("result", {}).get("value")


def browser_case(d):
    """A browser's whole way into an app: the 401 page's sign-in form, the
    session cookie traded for the app token, the app's page; its scripts
    see neither cookie, and the app got neither."""
    if not shutil.which("chromium"):
        print("skipped: the browser (no chromium)")
        return
    b = Browser(d.tmp)
    url = f"http://127.0.0.1:{d.port}/@admin/dev/apps/echo/page?b=1"
    b.call("Page.navigate", url=url)
    e.wait_for("the sign-in page", lambda: b.eval(
        "document.querySelector('input[name=email]') !== null"))
    b.eval("document.querySelector('[name=email]').value='admin@example.com';"
           f"document.querySelector('[name=password]').value='{e.PASSWORD}';"
           "document.querySelector('button').click(); true")
    text = e.wait_for("the app's page after signing in", lambda: (
        lambda t: t if t and '"path": "/page?b=1"' in t else None)(
            b.eval("document.body ? document.body.innerText : ''")))
    got = json.loads(text)
    CHECKS.check(not [v for k, v in got["headers"]
                      if k.lower() == "cookie" and "atrium_" in v.lower()],
                 "browser: the app got no atrium cookie")
    seen = b.eval("document.cookie") or ""
    CHECKS.check("atrium_session" not in seen and
                 "atrium_app_token" not in seen,
                 f"browser: the app's page cannot read the session or the "
                 f"app token ({seen.split('=')[0] if seen else 'nothing'})")
    CHECKS.check(b.eval("location.pathname") == "/@admin/dev/apps/echo/page",
                 "browser: it stays on the app's URL")


def main():
    atrium, plugins = sys.argv[1:3]
    if not os.path.exists(os.path.join(plugins, "provisioner_echo.so")):
        print("skipped: no echo provisioner")
        return 77
    tmp = tempfile.mkdtemp(prefix="atrium-apps-e2e-")
    try:
        d = e.DEP = e.Deployment(atrium, plugins, tmp)
        d.start()
        org = e.set_up(d)
        app_token = run(d, org)
        browser_case(d)
        jupyter_case(d, org)
        e.kill_agents()
        proc, d.proc = d.proc, None
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
        log = e.tail(d.log, 10 ** 7)
        CHECKS.check(rc == 0 and "Sanitizer" not in log,
                     f"the server exited 0 with no sanitizer report ({rc})")
        CHECKS.check(d.token not in log and app_token not in log,
                     "the server's log holds neither session nor app token")
    finally:
        for p in APP_PROCS:
            stop_process(p)
        e.clean_up(tmp)
    return CHECKS.done()


if __name__ == "__main__":
    sys.exit(main())
