"""Apps through the server (`/@owner/workspace/apps/slug/…`) and who may
reach what, checked with plain HTTP the way a browser sends it: cookies
kept in a jar, redirects followed. Used by connect_terraform.py."""
import http.client
import http.cookiejar
import json
import urllib.error
import urllib.request

from connect_lib import WS


def opener(c, session=None):
    """A browser-like client: a cookie jar (with the session cookie the
    login route sets, when given), redirects followed, no proxy."""
    jar = http.cookiejar.CookieJar()
    if session:
        jar.set_cookie(http.cookiejar.Cookie(
            0, "atrium_session", session, None, False, "127.0.0.1", False,
            False, "/", True, False, None, False, None, None, {}))
    o = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                    urllib.request.HTTPCookieProcessor(jar))
    return o, jar


def get(o, c, path, headers=None):
    """(status, body bytes, final URL, content type)."""
    req = urllib.request.Request(c.url + path, headers=headers or {})
    try:
        r = o.open(req, timeout=30)
        return r.status, r.read(), r.geturl(), r.headers.get(
            "Content-Type", "")
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.geturl(), e.headers.get(
            "Content-Type", "")


def app(slug, rest=""):
    return f"/@admin/{WS}/apps/{slug}/{rest}"


def apps(c, member_token):
    # a public app, without any session
    o, _ = opener(c)
    st, body, url, _ = get(o, c, app("files", "hello.txt"))
    c.check(st == 200 and b"served from the workspace" in body,
            f"a public app opens without a session ({st}, {body[:100]!r})")
    # the owner's app, with the session cookie the login route set
    o, jar = opener(c, c.token)
    st, body, url, _ = get(o, c, app("echo", "some/path?q=1"),
                           {"X-Forwarded-For": "203.0.113.9"})
    seen = {}
    try:
        seen = json.loads(body)
    except ValueError:
        pass
    c.check(st == 200 and seen.get("app") == "echo",
            f"the owner opens an owner app with the session cookie ({st}, "
            f"{body[:200]!r})")
    h = {k.lower(): v for k, v in (seen.get("headers") or {}).items()}
    c.check(seen.get("path") == "/some/path?q=1",
            f"the app sees the path after its prefix ({seen.get('path')!r})")
    text = json.dumps(seen)
    c.check(c.token not in text and "atrium_session" not in text and
            "atrium-session-token" not in h,
            "the app does not receive the session (cookie or header): "
            f"{h.get('cookie')!r}")
    c.check(h.get("x-forwarded-proto") == "http" and
            h.get("x-forwarded-host") == f"127.0.0.1:{c.port}",
            f"X-Forwarded-Proto/Host say how the user reached the server "
            f"({h.get('x-forwarded-proto')!r}, {h.get('x-forwarded-host')!r})")
    xff = h.get("x-forwarded-for", "")
    c.check(xff.endswith("127.0.0.1"),
            f"X-Forwarded-For ends with the user's address ({xff!r})")
    app_cookies = [k.name for k in jar if k.name != "atrium_session"]
    st, body, url, _ = get(o, c, app("echo", "redirect"))
    c.check(st == 200 and url.endswith(app("echo", "landed")),
            f"a relative redirect stays under the app's path ({st}, {url})")
    # the session header is not passed on either
    o2, _ = opener(c)
    st, body, _, _ = get(o2, c, app("echo", "h"),
                         {"Atrium-Session-Token": c.token})
    c.check(c.token.encode() not in body,
            f"Atrium-Session-Token is not passed on to the app ({st})")
    # the app's cookie is scoped to the app's path
    for k in jar:
        if k.name in app_cookies:
            c.check(k.path.startswith(f"/@admin/{WS}/apps/echo"),
                    f"the app cookie {k.name} is scoped to the app's path "
                    f"({k.path})")
    # no session: the app is not served
    o, _ = opener(c)
    st, body, url, _ = get(o, c, app("echo", ""))
    c.check(b'"app": "echo"' not in body and st in (200, 401, 403),
            f"without a session the owner app is not served ({st}, {url})")
    # another member: 403 on the owner app, the authenticated app opens
    o, _ = opener(c, member_token)
    st, body, _, _ = get(o, c, app("echo", ""))
    c.check(st == 403 and b'"app": "echo"' not in body,
            f"another member gets 403 on an owner app (got {st})")
    st, body, _, _ = get(o, c, app("shared", "x"))
    c.check(st == 200 and b'"app": "echo"' in body,
            f"an authenticated app opens for another member ({st})")
    # an app nothing listens on (unhealthy, or refused when dialed): a
    # clear HTML page, 503 or 502
    o, _ = opener(c, c.token)
    st, body, _, ctype = get(o, c, app("code-server", ""))
    c.check(st in (502, 503) and "text/html" in ctype,
            f"an app that is down: a 502/503 HTML page ({st}, {ctype}, "
            f"{body[:120]!r})")


def raw_tunnel_status(c, path, token):
    """The status of a RAW tunnel request (Upgrade: atrium-tunnel)."""
    conn = http.client.HTTPConnection("127.0.0.1", c.port, timeout=30)
    conn.request("GET", path, headers={
        "Atrium-Session-Token": token, "Connection": "Upgrade",
        "Upgrade": "atrium-tunnel"})
    r = conn.getresponse()
    st = r.status
    conn.close()
    return st


def denied(c, member_token):
    """Another member: 403 on ssh, port-forward and the terminal of a
    workspace that is not theirs, each audited."""
    a = c.agent_id
    st = raw_tunnel_status(c, f"/api/v2/workspaceagents/{a}/tunnel?kind=ssh",
                           member_token)
    c.check(st == 403, f"another member: 403 on the ssh tunnel (got {st})")
    st = raw_tunnel_status(
        c, f"/api/v2/workspaceagents/{a}/tunnel?kind=tcp&port=22",
        member_token)
    c.check(st == 403, f"another member: 403 on a port-forward (got {st})")
    import websocket
    try:
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{c.port}/api/v2/workspaceagents/{a}/pty?"
            "reconnect=6f1c7a52-1d4b-4f8e-9d2a-3c4b5a6d7e8f&width=80&height=24",
            header=[f"Atrium-Session-Token: {member_token}"], timeout=30)
        ws.close()
        st = 101
    except websocket.WebSocketBadStatusException as e:
        st = e.status_code
    c.check(st == 403, f"another member: 403 on the terminal (got {st})")
    # the owner's side of the same: a tunnel opens (101) for the owner
    st = raw_tunnel_status(c, f"/api/v2/workspaceagents/{a}/tunnel?kind=ssh",
                           c.token)
    c.check(st == 101, f"the owner's ssh tunnel is switched (got {st})")


def audited(c):
    """The audit log has the member's denied connects: one per kind (ssh,
    tcp, pty, and the app), each with status 403."""
    import re

    def kinds_denied():
        st, body = c.call("GET", "/api/v2/audit?username=bob&limit=100")
        if st != 200:
            return None
        logs = body.get("audit_logs", body) if isinstance(body, dict) \
            else body
        kinds = set()
        for e in logs or []:
            if e.get("status_code") != 403 or e.get("action") != "connect":
                continue
            text = json.dumps(e).replace('\\"', '"')
            m = re.search(r'"kind": ?"(\w+)"', text)
            kinds.add(m.group(1) if m else
                      ("app" if "apps" in text or "slug" in text else "?"))
        return kinds if {"ssh", "tcp", "pty"} <= kinds and \
            kinds - {"ssh", "tcp", "pty"} else None
    got = c.wait_for("bob's denied connects (ssh, tcp, pty, app) in the "
                     "audit log", kinds_denied, 30)
    c.check(bool(got), f"the audit log holds bob's denied connects, by "
            f"kind: {sorted(got)}")
    st, body = c.call("GET", "/api/v2/audit?username=admin&limit=200")
    text = json.dumps(body)
    c.check(st == 200 and '"connect"' in text and "duration_ms" in text,
            "the owner's connects are audited, with their duration")
