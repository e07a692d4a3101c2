"""Database encryption at rest (issue 13, docs/security.md "Database
encryption"), against the real server and CLI:

1. a server with a key builds a workspace with a sensitive value: the raw
   database (SQLite: the files' bytes and every cell; PostgreSQL: pg_dump)
   holds neither the value nor the build's provisioner state;
2. restarted with [new, old], `atrium db encrypt rotate` runs while the
   server builds; afterwards every value is under the new key, the old key
   is revoked, and the server still builds and reads its states;
3. start-up without the key, with a wrong key, or with a key file others
   may read fails, naming the key id (or the file mode), never a key;
4. `atrium db encrypt decrypt` leaves everything in clear and the server
   starts without keys; `atrium db encrypt delete --yes` drops what a lost
   key sealed.

   dbcrypt.py ATRIUM_BIN PLUGIN_DIR                  SQLite
   dbcrypt.py ATRIUM_BIN PLUGIN_DIR postgres PGDIR   the fixture's cluster
"""
import base64
import glob
import http.client
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from server import Checks, free_port, request, targz  # noqa: E402

SECRET = "Sensitive-" + base64.b32encode(os.urandom(10)).decode() + "-value"
# What a deployment policy sets the sensitive parameter to on a start.
POLICY_SECRET = "Policy-" + base64.b32encode(os.urandom(10)).decode()
POLICY = f"""function build(input)
  if input.transition == "start" then policy.set("token", "{POLICY_SECRET}") end
end
"""
PASSWORD = "Dbcrypt-tests-1234"
TEMPLATE = """name: dev
provisioner: echo
parameters:
  - name: region
    type: string
    default: eu
  - name: token
    type: string
    default: ""
    sensitive: true
    mutable: true
"""
CHECKS = Checks()


def new_key():
    return base64.b64encode(os.urandom(32)).decode()


def key_id(key):
    import hashlib
    return hashlib.sha256(b"aes256gcm" + base64.b64decode(key)).hexdigest()[:7]


class Deployment:
    def __init__(self, atrium, plugins, tmp, dsn):
        self.atrium, self.plugins, self.tmp, self.dsn = atrium, plugins, tmp, dsn
        self.proc, self.port, self.token = None, None, None
        self.exits = []
        self.conf = os.path.join(tmp, "atrium.yaml")
        self.log = os.path.join(tmp, "server.log")

    def write_conf(self, keys="", key_file=""):
        if self.dsn:
            storage = f"  storage_postgres:\n    enabled: true\n    dsn: \"{self.dsn}\"\n"
        else:
            storage = "  storage_sqlite:\n    enabled: true\n"
        self.port = free_port()
        policy = os.path.join(self.tmp, "set-token.lua")
        with open(policy, "w") as f:
            f.write(POLICY)
        with open(self.conf, "w") as f:
            f.write(f"http:\n  address: 127.0.0.1:{self.port}\n"
                    f"policy:\n  files: [\"{policy}\"]\n"
                    f"data_dir: {self.tmp}/data\n"
                    f"plugin_dirs: [{self.plugins}]\n"
                    f"database:\n  encryption_keys: \"{keys}\"\n"
                    f"  encryption_key_file: \"{key_file}\"\n"
                    "plugins:\n" + storage +
                    "  auth_password:\n    enabled: true\n"
                    "  provisioner_echo:\n    enabled: true\n    delay: 300ms\n")

    def start(self, keys="", key_file=""):
        self.write_conf(keys, key_file)
        self.proc = subprocess.Popen(
            [self.atrium, "server", "--config", self.conf],
            stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        for _ in range(300):
            if self.proc.poll() is not None:
                fail("the server exited while starting:\n" + tail(self.log))
            try:
                if request(self.port, "GET", "/readyz", timeout=1)[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        fail("the server did not answer /readyz in 30 s")

    def refused_start(self, keys="", key_file=""):
        """Start a server that must refuse: (exit status, its output)."""
        self.write_conf(keys, key_file)
        p = subprocess.run([self.atrium, "server", "--config", self.conf],
                           capture_output=True, text=True, timeout=60)
        CHECKS.check("Sanitizer" not in p.stderr and
                     "runtime error" not in p.stderr,
                     "the sanitizers found nothing in a refused start")
        return p.returncode, p.stdout + p.stderr

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.exits.append(self.proc.wait(timeout=15))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.exits.append(self.proc.wait())
            self.proc = None

    def cli(self, *args):
        p = subprocess.run([self.atrium, "db", "encrypt", *args, "--config",
                            self.conf], capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        CHECKS.check("Sanitizer" not in p.stderr and
                     "runtime error" not in p.stderr,
                     f"the sanitizers found nothing in db encrypt {args[0]}")
        return p.returncode, p.stdout + p.stderr

    def call(self, method, path, body=None, raw=None, ctype=None):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Content-Type": ctype or "application/json"}
        if self.token:
            headers["Atrium-Session-Token"] = self.token
        c.request(method, path, body=raw if raw is not None else
                  (json.dumps(body) if body is not None else None),
                  headers=headers)
        r = c.getresponse()
        data = r.read()
        c.close()
        try:
            return r.status, json.loads(data) if data else None
        except ValueError:
            return r.status, data

    def must(self, want, method, path, body=None, **kw):
        status, answer = self.call(method, path, body, **kw)
        if status != want:
            fail(f"{method} {path}: {status} {answer}, want {want}")
        return answer

    def wait_build(self, build_id):
        for _ in range(600):
            b = self.must(200, "GET", f"/api/v2/workspacebuilds/{build_id}")
            if b["job"]["status"] in ("succeeded", "failed", "canceled"):
                CHECKS.check(b["job"]["status"] == "succeeded",
                             f"build {b['build_number']} succeeded "
                             f"({b['job'].get('error')})")
                return b
            time.sleep(0.1)
        fail(f"build {build_id} did not end in 60 s")

    def build(self, ws, transition, values=None):
        body = {"transition": transition}
        if values:
            body["rich_parameter_values"] = values
        return self.must(201, "POST", f"/api/v2/workspaces/{ws}/builds",
                         body)["id"]

    def state(self, build_id):
        status, data = self.call("GET",
                                 f"/api/v2/workspacebuilds/{build_id}/state")
        if status != 200:
            fail(f"state of {build_id}: {status} {data}")
        return data if isinstance(data, bytes) else json.dumps(data).encode()

    def sql(self, query):
        """Rows of one query, straight from the database."""
        if self.dsn:
            out = subprocess.run(["psql", "-X", "-A", "-t", "-F", "|", self.dsn,
                                  "-c", query], capture_output=True, text=True,
                                 check=True).stdout
            return [tuple(line.split("|")) for line in out.splitlines() if line]
        c = sqlite3.connect(os.path.join(self.tmp, "data", "atrium.db"))
        rows = c.execute(query).fetchall()
        c.close()
        return [tuple("" if v is None else str(v) for v in r) for r in rows]

    def raw_database(self):
        """Every byte the database keeps, as one bytes value."""
        if self.dsn:
            return subprocess.run(["pg_dump", "--no-owner", self.dsn],
                                  capture_output=True, check=True).stdout
        out = b""
        for path in sorted(glob.glob(os.path.join(self.tmp, "data",
                                                  "atrium.db*"))):
            out += open(path, "rb").read()
        c = sqlite3.connect(os.path.join(self.tmp, "data", "atrium.db"))
        tables = [r[0] for r in c.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")]
        for t in tables:
            for row in c.execute(f'SELECT * FROM "{t}"'):
                for v in row:
                    out += v if isinstance(v, bytes) else str(v).encode()
        c.close()
        return out


def tail(path, n=3000):
    return open(path, errors="replace").read()[-n:] if os.path.exists(path) else ""


DEPLOYMENT = None


def fail(msg):
    print("FAIL:", msg)
    if DEPLOYMENT:
        DEPLOYMENT.stop()
        print("--- server.log (tail):\n" + tail(DEPLOYMENT.log))
    sys.exit(1)


def set_up(d):
    """First user, the template, a workspace built with the secret: (ws id,
    first build id)."""
    first = d.must(201, "POST", "/api/v2/users/first",
                   {"email": "admin@example.com", "username": "admin",
                    "password": PASSWORD})
    org = first["organization_id"]
    d.token = d.must(201, "POST", "/api/v2/users/login",
                     {"email": "admin@example.com",
                      "password": PASSWORD})["session_token"]
    status, f = d.call("POST", "/api/v2/files",
                       raw=targz({"template.yaml": TEMPLATE,
                                  "main.txt": "echo\n"}),
                       ctype="application/gzip")
    if status not in (200, 201):
        fail(f"upload: {status} {f}")
    v = d.must(201, "POST", f"/api/v2/organizations/{org}/templateversions",
               {"file_id": f["hash"], "name": "v1"})
    for _ in range(600):
        job = d.must(200, "GET", f"/api/v2/templateversions/{v['id']}")["job"]
        if job["status"] not in ("pending", "running"):
            break
        time.sleep(0.1)
    if job["status"] != "succeeded":
        fail(f"import: {job}")
    t = d.must(201, "POST", f"/api/v2/organizations/{org}/templates",
               {"name": "dev", "template_version_id": v["id"]})
    ws = d.must(201, "POST", "/api/v2/users/me/workspaces",
                {"name": "ws1", "template_id": t["id"],
                 "rich_parameter_values": [{"name": "token",
                                            "value": SECRET}]})
    return ws["id"], ws["latest_build"]["id"]


def key_ids_of(d):
    """Every key id the sealed columns use, and how many values are in
    clear that should not be."""
    ids = set()
    for table, col in (("workspace_build_parameters", "value_key_id"),
                       ("workspace_builds", "provisioner_state_key_id")):
        ids |= {r[0] for r in d.sql(f"SELECT DISTINCT {col} FROM {table} "
                                    f"WHERE {col} IS NOT NULL")}
    clear = int(d.sql("SELECT COUNT(*) FROM workspace_build_parameters "
                      "WHERE name = 'token' AND value_key_id IS NULL")[0][0])
    clear += int(d.sql("SELECT COUNT(*) FROM workspace_builds WHERE "
                       "provisioner_state IS NOT NULL AND "
                       "provisioner_state_key_id IS NULL")[0][0])
    return ids, clear


def stolen_file(d, key_a):
    ws, b1 = set_up(d)
    d.wait_build(b1)
    state = d.state(b1)
    CHECKS.check(state.startswith(b"echo:start:1"),
                 f"the server reads its sealed state back ({state[:20]!r})")
    params = d.must(200, "GET", f"/api/v2/workspacebuilds/{b1}/parameters")
    CHECKS.check(all(p["value"] != SECRET for p in params),
                 "the API masks the sensitive value")
    raw = d.raw_database()
    CHECKS.check(SECRET.encode() not in raw,
                 "the raw database holds no sensitive parameter value")
    CHECKS.check(state not in raw,
                 "the raw database holds no provisioner state")
    CHECKS.check(key_a.encode() not in raw, "the raw database holds no key")
    CHECKS.check(key_ids_of(d) == ({key_id(key_a)}, 0),
                 f"every secret is under key id {key_id(key_a)}: "
                 f"{key_ids_of(d)}")
    return ws


def rotation(d, ws, key_a, key_b):
    d.stop()
    d.start(keys=f"{key_b},{key_a}")
    b2 = d.build(ws, "stop")
    # The build runs (or has ended) meanwhile: either way its state is
    # written under the primary key, which is the new one.
    rc, out = d.cli("rotate")
    CHECKS.check(rc == 0 and f"encrypted with key id {key_id(key_b)}" in out
                 and f"revoked key id {key_id(key_a)}" in out,
                 f"rotate re-encrypts and revokes the old key: {out.strip()}")
    d.wait_build(b2)
    b3 = d.build(ws, "start", [{"name": "token", "value": SECRET + "2"}])
    d.wait_build(b3)
    CHECKS.check(d.state(b3).startswith(b"echo:start:3"),
                 "after the rotation the server still reads its states")
    CHECKS.check(key_ids_of(d) == ({key_id(key_b)}, 0),
                 f"every secret is under the new key id {key_id(key_b)}: "
                 f"{key_ids_of(d)}")
    revoked = d.sql("SELECT key_id FROM dbcrypt_keys WHERE state = 'revoked'")
    CHECKS.check(revoked == [(key_id(key_a),)], f"the old key is revoked: {revoked}")
    raw = d.raw_database()
    CHECKS.check(SECRET.encode() not in raw,
                 "after the rotation the raw database holds no secret")
    CHECKS.check(POLICY_SECRET.encode() not in raw,
                 "nor the value a policy set (audit log included)")
    decisions = d.sql("SELECT diff FROM audit_logs WHERE action = 'policy'")
    CHECKS.check(len(decisions) == 1 and "********" in decisions[0][0],
                 f"the policy's decision is audited, masked: {decisions}")
    d.stop()


def refusals(d, key_b, key_c):
    want = f"has values encrypted with key id {key_id(key_b)}"
    for keys, what in (("", "no key"), (key_c, "a wrong key")):
        rc, out = d.refused_start(keys=keys)
        CHECKS.check(rc != 0 and want in out and key_b not in out and
                     (not keys or keys not in out),
                     f"start-up with {what} fails naming the key id: "
                     f"{out.strip()[-300:]}")
    path = os.path.join(d.tmp, "keys")
    with open(path, "w") as f:
        f.write(f"# the deployment's key\n{key_b}\n")
    os.chmod(path, 0o644)
    rc, out = d.refused_start(key_file=path)
    CHECKS.check(rc != 0 and "mode 0644" in out and key_b not in out,
                 f"a key file others may read is refused: {out.strip()[-300:]}")
    os.chmod(path, 0o600)
    return path


def decrypt_and_delete(d, ws, key_file, key_d):
    d.write_conf(key_file=key_file)
    rc, out = d.cli("decrypt")
    CHECKS.check(rc == 0 and "decrypted" in out, f"decrypt: {out.strip()}")
    CHECKS.check(key_ids_of(d)[0] == set(), "after decrypt no value is sealed")
    d.start()  # no key needed any more
    d.token = d.must(201, "POST", "/api/v2/users/login",
                     {"email": "admin@example.com",
                      "password": PASSWORD})["session_token"]
    b4 = d.build(ws, "stop")
    d.wait_build(b4)
    d.stop()
    # A key that seals a build and is then lost: delete, then start without.
    d.start(keys=key_d)
    d.token = d.must(201, "POST", "/api/v2/users/login",
                     {"email": "admin@example.com",
                      "password": PASSWORD})["session_token"]
    b5 = d.build(ws, "start")
    d.wait_build(b5)
    d.stop()
    d.write_conf()
    rc, out = d.cli("delete")
    CHECKS.check(rc != 0 and "--yes" in out,
                 f"delete without a terminal asks for --yes: {out.strip()}")
    rc, out = d.cli("delete", "--yes")
    CHECKS.check(rc == 0 and "deleted" in out, f"delete --yes: {out.strip()}")
    CHECKS.check(key_ids_of(d)[0] == set(), "after delete no value is sealed")
    d.start()


def main():
    global DEPLOYMENT
    atrium, plugins = sys.argv[1], sys.argv[2]
    dsn = None
    if len(sys.argv) > 4 and sys.argv[3] == "postgres":
        dsn = open(os.path.join(sys.argv[4], "dsn")).read().strip()
        subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", dsn, "-c",
                        "SET client_min_messages = warning; DROP SCHEMA IF "
                        "EXISTS public CASCADE; CREATE SCHEMA public"],
                       check=True, capture_output=True)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        os.environ.pop(var, None)
    os.environ["ATRIUM_LOG_FORMAT"] = "text"
    key_a, key_b, key_c, key_d = new_key(), new_key(), new_key(), new_key()
    with tempfile.TemporaryDirectory(prefix="atrium-dbcrypt-") as tmp:
        d = DEPLOYMENT = Deployment(atrium, plugins, tmp, dsn)
        d.start(keys=key_a)
        ws = stolen_file(d, key_a)
        rotation(d, ws, key_a, key_b)
        key_file = refusals(d, key_b, key_c)
        decrypt_and_delete(d, ws, key_file, key_d)
        d.stop()
        log = open(d.log).read()
        CHECKS.check(not any(k in log for k in (key_a, key_b, key_c, key_d)),
                     "no key appears in the server's log")
        CHECKS.check(not any(s in log for s in ("Sanitizer", "runtime error")),
                     "the sanitizers found nothing in the server")
        CHECKS.check(d.exits == [0] * len(d.exits),
                     f"every server exited cleanly: {d.exits}")
    return CHECKS.done()


if __name__ == "__main__":
    sys.exit(main())
