#!/usr/bin/env python3
"""Hostile requests against a real `atrium server` (issue 13).

  hostile_requests.py ATRIUM_BIN PLUGIN_DIR

Before the JSON bounds, a small body nested deeply enough crashed the
server from a worker thread (SIGSEGV) before any sign-in, and six 15 MiB
bodies of tiny arrays grew it to gigabytes. Each case here sends one, and
asserts the exact answer, that the server still serves, and how far its
peak memory moved. Paths with an encoded NUL (which civetweb's decoding
cut short, so "/users%00/x" reached "/users"), invalid UTF-8 or an
encoded dot segment answer 400, and a CORS preflight gets no grant.
"""
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading

from server import Checks, Server

ATRIUM, PLUGINS = sys.argv[1], sys.argv[2]
checks = Checks()
check = checks.check


def peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def deep_bodies(srv):
    for name, body in [
            ("arrays", "[" * 100000 + "]" * 100000),
            ("objects", '{"a":' * 20000 + "1" + "}" * 20000)]:
        status, answer = srv.request("POST", "/api/v2/users/login", body)
        check(status == 413 and answer == {
            "message": "Request body too complex.",
            "detail": "The body is nested deeper than 16 levels."},
            f"100,000-deep {name} before sign-in: 413 naming the depth "
            f"(got {status} {answer})")
        check(srv.alive(), f"the server serves after deep {name}")


def many_values(srv):
    body = ("[" + ",".join(["[]"] * 5000000) + "]").encode()
    before = peak_kib(srv.proc.pid)
    statuses = []

    def send():
        try:
            statuses.append(srv.request("POST", "/api/v2/users/login",
                                    body, timeout=120)[0])
        except OSError as e:
            statuses.append(str(e))
    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    grown = (peak_kib(srv.proc.pid) - before) // 1024
    check(statuses == [413] * 6,
          f"six 15 MiB bodies of 5,000,000 arrays: 413 each (got {statuses})")
    # The bodies themselves are read (6 x 15 MiB); nothing is parsed.
    check(grown < 256, f"peak memory grew by {grown} MiB (< 256 MiB)")
    check(srv.alive(), "the server serves after them")


def signed_in_bodies(srv):
    token = srv.first_user()
    deep = '{"username": "x", "extra": ' + "[" * 65 + "]" * 65 + "}"
    status, answer = srv.request("POST", "/api/v2/users", deep, token)
    check(status == 413 and answer.get("detail") ==
          "The body is nested deeper than 64 levels.",
          f"a 65-deep body when signed in: 413 (got {status} {answer})")
    fine = '{"extra": ' + "[" * 60 + "]" * 60 + "}"
    status, _ = srv.request("POST", "/api/v2/users", fine, token)
    check(status == 400, f"a 60-deep body reaches validation: 400 (got {status})")
    like_wildcards(srv, token)
    org_templates_for_members_only(srv, token)
    query_encoding(srv, token)
    check(srv.alive(), "the server serves after signed-in bodies")


def hostile_paths(srv):
    for path, detail in [
            ("/api/v2/users%00/first", "The path has an encoded NUL (%00)."),
            ("/api/v2/users/%ff%fe", "The path is not valid UTF-8."),
            ("/api/v2/users/%C0%AF", "The path is not valid UTF-8."),
            ("/api/v2/users/%2e%2e", 'The path has a "." or ".." segment.'),
            ("/api/v2/users/%4", "The path has a malformed percent escape.")]:
        status, answer = srv.request("GET", path)
        check(status == 400 and answer == {
            "message": "Invalid request path.", "detail": detail},
            f"GET {path}: 400 {detail} (got {status} {answer})")
    status, answer = srv.request("GET", "/api/v2/buildinfo")
    check(status == 200, f"an ordinary path still answers (got {status})")
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    c.request("OPTIONS", "/api/v2/users/login", headers={
        "Origin": "http://elsewhere.example",
        "Access-Control-Request-Method": "POST"})
    r = c.getresponse()
    r.read()
    c.close()
    check(r.getheader("Access-Control-Allow-Origin") is None,
          "a CORS preflight from another origin gets no "
          f"Access-Control-Allow-Origin (got {r.status} "
          f"{r.getheader('Access-Control-Allow-Origin')})")


def request_from(srv, source_ip, method, path, body=None, headers=None):
    """A request from another loopback address (127.0.0.0/8 is all ours)."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10,
                                   source_address=(source_ip, 0))
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def no_lockout_from_elsewhere(srv):
    """Failed sign-ins for the admin from other addresses (each within its
    own limit) do not keep the admin out from theirs."""
    wrong = json.dumps({"email": "admin@example.com", "password": "nope"})
    statuses = set()
    for i in range(2, 14):  # 12 addresses, one failure each
        r, _ = request_from(srv, f"127.0.0.{i}", "POST", "/api/v2/users/login",
                            wrong)
        statuses.add(r.status)
    check(statuses == {401}, f"each failure answers 401 (got {statuses})")
    right = json.dumps({"email": "admin@example.com",
                        "password": "Hardening-tests-1234"})
    r, _ = request_from(srv, "127.0.0.50", "POST", "/api/v2/users/login", right)
    check(r.status == 201,
          f"the admin still signs in from a fresh address (got {r.status})")


def csrf_bound_to_session(srv):
    right = json.dumps({"email": "admin@example.com",
                        "password": "Hardening-tests-1234"})
    r, _ = request_from(srv, "127.0.0.60", "POST", "/api/v2/users/login", right)
    cookies = {}
    for name, value in r.getheaders():
        if name.lower() == "set-cookie":
            k, v = value.split(";", 1)[0].split("=", 1)
            cookies[k] = v
    session, csrf = cookies.get("atrium_session"), cookies.get("atrium_csrf")
    check(session and csrf and len(csrf) == 32,
          f"sign-in sets the session and CSRF cookies ({sorted(cookies)})")
    body = json.dumps({"token_name": "csrf-probe", "lifetime": 3600})
    path = "/api/v2/users/me/keys/tokens"
    planted = "0" * 32  # a sibling site can set a cookie, not compute this
    r, _ = request_from(srv, "127.0.0.60", "POST", path, body, {
        "Cookie": f"atrium_session={session}; atrium_csrf={planted}",
        "Atrium-CSRF-Token": planted})
    check(r.status == 403, f"a planted CSRF cookie and header: 403 (got "
          f"{r.status})")
    r, data = request_from(srv, "127.0.0.60", "POST", path, body, {
        "Cookie": f"atrium_session={session}; atrium_csrf={csrf}",
        "Atrium-CSRF-Token": csrf})
    check(r.status == 201, f"the session's own CSRF token: 201 (got "
          f"{r.status} {data[:200]})")


def like_wildcards(srv, token):
    for name, email in (("scored", "under_score@example.com"),
                        ("plain", "plainuser@example.com")):
        status, _ = srv.request("POST", "/api/v2/users", json.dumps({
            "email": email, "username": name,
            "password": "Hardening-tests-1234"}), token)
        check(status == 201, f"user {name} created (got {status})")
    for q, want in (("_", ["scored"]), ("%", []), ("r_s", ["scored"]),
                    ("rs", [])):
        status, answer = srv.request("GET", f"/api/v2/users?q={q.replace('%', '%25')}",
                                     None, token)
        names = sorted(u["username"] for u in (answer or {}).get("users", [])
                       if u["username"] != "admin")
        check(status == 200 and names == want,
              f"users?q={q} finds {want} only (got {status} {names})")


def org_templates_for_members_only(srv, token):
    """A member reads their own organization's templates, not another's
    (before: 403 on the organization itself, 200 on its templates)."""
    status, _ = srv.request("POST", "/api/v2/organizations",
                            json.dumps({"name": "other"}), token)
    check(status == 201, f"organization other created (got {status})")
    status, answer = srv.request("POST", "/api/v2/users/login", json.dumps(
        {"email": "plainuser@example.com",
         "password": "Hardening-tests-1234"}))
    member = answer.get("session_token") if status == 201 else None
    check(member is not None, f"the member signs in (got {status})")
    for org, want in (("other", 403), ("default", 200)):
        status, _ = srv.request(
            "GET", f"/api/v2/organizations/{org}/templates", None, member)
        check(status == want, f"a member of default lists {org}'s templates: "
              f"{want} (got {status})")
    status, _ = srv.request("GET", "/api/v2/organizations/other", None, member)
    check(status == 403, f"...and reads organization other: 403 (got {status})")


def query_encoding(srv, token):
    """A decoded NUL or a broken %-escape in a query value is refused,
    naming the parameter, not cut short or passed on undecoded."""
    for query, why in (("q=ad%00min", "NUL"), ("q=ad%zzmin", "percent"),
                       ("q=admin%2", "percent"), ("limit=5&q=%00", "NUL")):
        status, answer = srv.request("GET", f"/api/v2/users?{query}", None,
                                     token)
        fields = [v.get("field") for v in
                  (answer or {}).get("validations", []) or []] \
            if isinstance(answer, dict) else []
        detail = " ".join(v.get("detail", "") for v in
                          (answer or {}).get("validations", []) or []) \
            if isinstance(answer, dict) else ""
        check(status == 400 and fields == ["q"] and why in detail,
              f"users?{query}: 400 naming q ({why}) (got {status} {answer})")
    status, _ = srv.request("GET", "/api/v2/users?q=ad%6Din", None, token)
    check(status == 200, f"users?q=ad%6Din still answers 200 (got {status})")


def nul_in_yaml(srv):
    """A NUL written as \\0 in a YAML string is refused, not cut short."""
    import subprocess
    bad = os.path.join(srv.tmp, "nul.yaml")
    with open(bad, "w") as f:
        f.write('http:\n  address: "127.0.0.1:1\\0trailer"\n')
    p = subprocess.run([ATRIUM, "server", "--config", bad, "--print-config"],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode != 0 and "NUL character" in p.stderr,
          f"config with \\0 refused naming the NUL (rc {p.returncode}: "
          f"{p.stderr.strip()[:200]})")


def main():
    tmp = tempfile.mkdtemp(prefix="atrium-hostile-")
    srv = Server(ATRIUM, PLUGINS, tmp)
    srv.start()
    try:
        for case in (deep_bodies, many_values, signed_in_bodies,
                     hostile_paths, no_lockout_from_elsewhere,
                     csrf_bound_to_session, nul_in_yaml):
            try:
                case(srv)
            except OSError as e:  # the server hung up or is gone
                check(False, f"{case.__name__}: {e!r}; server exit status "
                      f"{srv.proc.poll()}")
                if srv.proc.poll() is not None:
                    break
    finally:
        srv.stop()
        if checks.failures:
            print(srv.log_tail())
        shutil.rmtree(tmp, ignore_errors=True)
    return checks.done()


if __name__ == "__main__":
    sys.exit(main())
