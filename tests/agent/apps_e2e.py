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
  with its bytes.
Every wait is a bounded poll for a state.

usage: apps_e2e.py ATRIUM PLUGIN_DIR
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


def run(d, org):
    app_port = free_port()
    APP_PROCS.append(subprocess.Popen(
        [sys.executable, os.path.join(HERE, "echo_app.py"), str(app_port)]))
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
        run(d, org)
        d.stop()
    finally:
        for p in APP_PROCS:
            stop_process(p)
        e.clean_up(tmp)
    return CHECKS.done()


if __name__ == "__main__":
    sys.exit(main())
