#!/usr/bin/env python3
"""Who gets into a workspace, and the trail it leaves (docs/design/connect.md
§3, §5), through a real server and a real agent (the bundle's launcher):

- the workspace's owner opens a RAW tcp tunnel to a local echo service and
  300,000 bytes come back; the audit log then holds its "open" and "end"
  entries (action connect, resource the workspace, one connection_id), the
  end with reason closed, 200 and exactly the bytes each way;
- another member is refused (403) on /tunnel and /pty, and each refusal is
  an audit entry of theirs with status 403;
- the agent's token opens no tunnel (401);
- the workspace's SSH host key (the manifest's ssh_host_key) is in no
  answer but the manifest, not in the audit log, not in the server's log;
  the agent JSON shows its public half;
- once the agent process is gone, a tunnel is 409 "The agent of workspace
  admin/dev is not connected (status: disconnected)."
Every wait is a bounded poll for a state.

usage: connect_audit.py ATRIUM PLUGIN_DIR BUNDLE_DIR
"""
import json
import os
import socket
import sys
import tempfile
import threading
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_e2e as e2e  # noqa: E402
from agent_e2e import (CHECKS, Deployment, agent_of, clean_up,  # noqa: E402
                       fail, make_template, set_up, start_agent, wait_build,
                       wait_for)

SIZE = 300000
MEMBER_PW = "Quartz-Tunnels-5678"


def open_raw(port, token, path, upgrade="atrium-tunnel"):
    """(socket, bytes past the 101) or (None, (status, JSON body))."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    auth = f"Atrium-Session-Token: {token}\r\n" if token else ""
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               f"Connection: Upgrade\r\nUpgrade: {upgrade}\r\n"
               "Sec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               f"{auth}\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    if status == 101:
        return s, rest
    n = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            n = int(line.split(b":", 1)[1])
    while len(rest) < n:
        chunk = s.recv(65536)
        if not chunk:
            break
        rest += chunk
    s.close()
    try:
        return None, (status, json.loads(rest))
    except ValueError:
        return None, (status, rest)


def echo_server():
    """A one-connection echo service on loopback: its port."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)

    def serve():
        c, _ = ls.accept()
        while True:
            b = c.recv(65536)
            if not b:
                break
            c.sendall(b)
        c.shutdown(socket.SHUT_WR)
        c.close()
        ls.close()
    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


def round_trip(d, agent_id):
    port = echo_server()
    s, rest = open_raw(d.port, d.token,
                       f"/api/v2/workspaceagents/{agent_id}/tunnel"
                       f"?kind=tcp&port={port}")
    if not s:
        fail(f"tcp tunnel: {rest}")
    sent = bytes(i % 251 for i in range(SIZE))

    def up():
        s.sendall(sent)
        s.shutdown(socket.SHUT_WR)
    threading.Thread(target=up, daemon=True).start()
    back = rest
    while True:
        b = s.recv(65536)
        if not b:
            break
        back += b
    s.close()
    CHECKS.check(back == sent,
                 f"owner: {SIZE} bytes through the tunnel and back "
                 f"(got {len(back)})")


def connect_entries(d, query=""):
    return d.must(200, "GET", "/api/v2/audit?action=connect&"
                  f"resource_type=workspace&limit=100{query}")["audit_logs"]


def check_owner_trail(d, ws, agent_id):
    def ended():
        es = connect_entries(d)
        ends = [e for e in es if e["additional_fields"].get("phase") == "end"]
        return (es, ends[0]) if ends else None
    es, end = wait_for("the tunnel's end entry", ended)
    x = end["additional_fields"]
    opens = [e for e in es if e["additional_fields"].get("phase") == "open"
             and e["additional_fields"].get("connection_id") ==
             x.get("connection_id")]
    CHECKS.check(len(opens) == 1 and opens[0]["status_code"] == 200 and
                 opens[0]["additional_fields"].get("port") == x.get("port"),
                 f"owner: one open entry with the end's connection_id "
                 f"({json.dumps(opens)})")
    CHECKS.check(end["resource_id"] == ws and end["resource_target"] == "dev"
                 and (end.get("user") or {}).get("username") == "admin",
                 f"owner: the entry names the workspace and who "
                 f"({end['resource_id']}, {end.get('user')})")
    CHECKS.check(end["status_code"] == 200 and x.get("reason") == "closed"
                 and x.get("opened") is True and x.get("kind") == "tcp"
                 and x.get("agent_id") == agent_id,
                 f"owner: the end is closed, 200 ({json.dumps(x)})")
    CHECKS.check(x.get("bytes_to_agent") == SIZE and
                 x.get("bytes_from_agent") == SIZE and
                 isinstance(x.get("duration_ms"), int),
                 f"owner: the end counts {SIZE} bytes each way "
                 f"({x.get('bytes_to_agent')}, {x.get('bytes_from_agent')})")


def check_refusals(d, agent_id, agent_token):
    d.must(201, "POST", "/api/v2/users",
           {"email": "member@example.com", "username": "member",
            "password": MEMBER_PW})
    member = d.must(201, "POST", "/api/v2/users/login",
                    {"email": "member@example.com",
                     "password": MEMBER_PW})["session_token"]
    base = f"/api/v2/workspaceagents/{agent_id}"
    for path, up in ((f"{base}/tunnel?kind=ssh", "atrium-tunnel"),
                     (f"{base}/pty?reconnect={uuid.uuid4()}", "websocket")):
        s, (status, body) = open_raw(d.port, member, path, up)
        CHECKS.check(status == 403 and body.get("message") == "Forbidden.",
                     f"member: {path.split('/')[-1]} is 403 ({status} {body})")
        s, (status, body) = open_raw(d.port, agent_token, path, up)
        CHECKS.check(status == 401,
                     f"the agent's token: {path.split('/')[-1]} is 401 "
                     f"({status})")
    denied = connect_entries(d, "&status_code=403&username=member")
    CHECKS.check(len(denied) == 2 and
                 {e["additional_fields"].get("kind") for e in denied} ==
                 {"ssh", "pty"},
                 f"member: both refusals audited ({len(denied)})")


def check_host_key(d, agent_id, agent_token):
    status, m = d.call("GET", "/api/v2/workspaceagents/me/manifest",
                       token=agent_token)
    key = m.get("ssh_host_key", "") if status == 200 else ""
    CHECKS.check(key.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n"),
                 "the manifest carries the workspace's host key")
    lines = key.splitlines()
    secret = lines[4][:40] if len(lines) > 5 else "(no key)"
    seen = []
    for path in (f"/api/v2/workspaceagents/{agent_id}",
                 "/api/v2/workspaces", "/api/v2/audit?limit=1000"):
        _, body = d.call("GET", path)
        text = json.dumps(body)
        if secret in text or "PRIVATE KEY" in text:
            seen.append(path)
    CHECKS.check(not seen, f"the host key is in no user's answer {seen}")
    log = open(d.log, errors="replace").read()
    CHECKS.check(secret not in log and "PRIVATE KEY" not in log,
                 "the host key is not in the server's log")
    a = d.must(200, "GET", f"/api/v2/workspaceagents/{agent_id}")
    CHECKS.check(str(a.get("ssh_host_public_key")).startswith("ssh-ed25519 ")
                 and str(a.get("ssh_host_key_fingerprint"))
                 .startswith("SHA256:"),
                 "the agent shows the key's public half and fingerprint")


def check_disconnected(d, ws, agent_id, proc):
    proc.kill()
    proc.wait()
    wait_for("the agent disconnected", lambda: (agent_of(d, ws) or {})
             .get("status") == "disconnected")
    s, (status, body) = open_raw(
        d.port, d.token, f"/api/v2/workspaceagents/{agent_id}/tunnel?kind=ssh")
    want = ("The agent of workspace admin/dev is not connected "
            "(status: disconnected).")
    CHECKS.check(status == 409 and body.get("message") == want,
                 f"a gone agent: 409 with a clear message ({status} {body})")


def main():
    atrium, plugins, bundle = sys.argv[1:4]
    if not os.path.exists(os.path.join(plugins, "provisioner_echo.so")):
        print("skipped: no echo provisioner")
        return 77
    tmp = tempfile.mkdtemp(prefix="atrium-connect-audit-")
    try:
        d = e2e.DEP = Deployment(atrium, plugins, tmp)
        d.start()
        org = set_up(d)
        tid = make_template(d, org, "conn", "true")
        ws = d.must(201, "POST", "/api/v2/users/me/workspaces",
                    {"name": "dev", "template_id": tid})
        wait_build(d, ws["latest_build"]["id"])
        proc, _, agent_token = start_agent(
            d, ws["id"], [os.path.join(bundle, "atrium-agent")], "conn")
        a = wait_for("the agent ready", lambda: (
            lambda a: a if a and a.get("lifecycle_state") == "ready" and
            a.get("status") == "connected" else None)(agent_of(d, ws["id"])))
        round_trip(d, a["id"])
        check_owner_trail(d, ws["id"], a["id"])
        check_refusals(d, a["id"], agent_token)
        check_host_key(d, a["id"], agent_token)
        check_disconnected(d, ws["id"], a["id"], proc)
        d.stop()
    finally:
        clean_up(tmp)
    return CHECKS.done()


if __name__ == "__main__":
    sys.exit(main())
