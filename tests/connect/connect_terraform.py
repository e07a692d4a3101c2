#!/usr/bin/env python3
"""Getting into a terraform-local workspace (its agent a host process)
with real clients, through a real server (docs/connect.md, issue 15):

- `atrium config-ssh` into a temporary HOME (idempotent, --dry-run writes
  nothing, --remove takes the block out); then plain OpenSSH: `ssh
  atrium.dev 'echo $((6*7))'` prints 42, `false` exits 1, stderr and
  stdin, LANG forwarded; scp of 50 MB both ways with matching SHA-256;
  sftp lists the home directory; rsync -e ssh; an interactive session in
  tmux sees a window resize (`stty size`);
- `atrium port-forward dev --tcp L:R --tcp L2:R2` and curl to
  `python3 -m http.server` and another server in the workspace;
- the web terminal over a WebSocket: a dropped socket reconnects to the
  same shell with its scrollback;
- apps at /@admin/dev/apps/SLUG/: public without a session, owner apps
  with the owner's session only, the session cookie never reaches the
  app, X-Forwarded-*, a 502 page for an app that is down;
- another member: 403 on the ssh tunnel, a port-forward, the terminal and
  an owner app, each in the audit log;
- the agent restarted: the host key is the same.

usage: connect_terraform.py ATRIUM PLUGIN_DIR SOURCE_DIR
Exits 77 (skipped) without /usr/local/bin/terraform.
"""
import os
import pwd
import re
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_apps  # noqa: E402
import connect_checks as checks  # noqa: E402
from connect_lib import (HERE, PYTHON, RUN_AS, TERRAFORM, WS, Ctx,
                         free_port, run_test, section, stop_proc)

def subst(root_tmp):
    return {"PYTHON": PYTHON, "CONNECT_DIR": HERE,
            "HTTP_PORT": free_port(), "ECHO_PORT": free_port(),
            "CS_PORT": free_port(), "JUPYTER_PORT": free_port(),
            "CODE_SERVER": "", "JUPYTER": "/usr/bin/jupyter"}


class TfCtx(Ctx):
    def __init__(self, *a, root):
        super().__init__(*a)
        self.root = root

    def server_env(self):
        # main.tf reads the workspaces' root from TF_VAR_root.
        return dict(self.env, TF_VAR_root=self.root)


def start(atrium, plugins, src, extra_subst=None):
    """A server, the first user, the connect-local template and a ready
    workspace `dev`: the context."""
    tmp = tempfile.mkdtemp(prefix="atrium-connect-tf-")
    root = tempfile.mkdtemp(prefix="atrium-connect-tf-ws-")
    c = TfCtx(atrium, plugins, src, tmp, root=root)
    c.cleanup_dirs.append(root)
    try:
        bu = pwd.getpwnam(RUN_AS) if os.geteuid() == 0 else None
    except KeyError:
        bu = None
    if bu:
        os.chown(root, bu.pw_uid, bu.pw_gid)
    c.start_server("  provisioner_terraform:\n    enabled: true\n"
                   f"    binary: {TERRAFORM}\n")
    c.first_user()
    s = subst(tmp)
    s.update(extra_subst or {})
    c.ports = s
    d = c.template_dir("terraform-local", s, "terraform-local")
    c.create_workspace(d, "connect-local")
    c.wait_build("start")
    c.wsdir = os.path.join(root, "admin", WS)
    c.agent_user = c.start_host_agent(c.wsdir)
    c.pid_files.append(os.path.join(c.wsdir, ".connect-sids"))
    c.wait_ready()
    print(f"note: the agent runs as {c.agent_user}")
    return c


def restart_agent(c):
    """The agent killed and started again (same build, same token), as
    after a crash or a host's reboot: it reconnects, and the host key must
    be the one recorded before. (SIGKILL: an agent stopped with SIGTERM
    reports `off`, which the server keeps.)"""
    stop_proc(c.agent, signal.SIGKILL, 30)
    c.agent = None
    c.wait_for("the agent to be seen as gone", lambda: (
        lambda a: a and a.get("status") != "connected")(c.the_agent()), 60)
    c.start_host_agent(c.wsdir)
    c.wait_ready()


def config_ssh_dry_run_and_remove(c):
    cfg = c.ssh_config
    before = open(cfg).read()
    rc, out = c.cli(c.config_ssh_cmd("--remove", "--dry-run"))
    c.check(open(cfg).read() == before and "-Host atrium.dev" in out,
            "config-ssh --remove --dry-run shows the diff, writes nothing")
    c.cli(c.config_ssh_cmd("--remove", "-y"))
    after = open(cfg).read()
    c.check("atrium.dev" not in after and "Host other.example" in after,
            "config-ssh --remove takes the block out, keeps the rest")
    rc, out = c.cli(c.config_ssh_cmd("--dry-run"))
    c.check(open(cfg).read() == after and "+Host atrium.dev" in out,
            "config-ssh --dry-run shows the block it would add")


def atrium_ssh(c):
    """`atrium ssh dev -- COMMAND` itself: the output and the status."""
    # one word: the words after -- are joined with spaces, as OpenSSH does
    r = subprocess.run([c.atrium, "ssh", WS, "--", "echo $((6*7)); exit 5"],
                       capture_output=True,
                       timeout=120, env=c.env, stdin=subprocess.DEVNULL)
    c.check(r.returncode == 5 and r.stdout.strip() == b"42",
            f"atrium ssh dev -- COMMAND: its output and status ("
            f"{r.returncode}, {r.stdout[:100]!r}, {r.stderr[-200:]!r})")


def metrics(c):
    """The server's metrics count the connections by kind and the bytes
    relayed (after the checks above moved 100 MB over ssh)."""
    body = c.must(200, "GET", "/api/v2/debug/metrics")

    def samples(name):
        for m in body.get("metrics", []):
            if m.get("name") == name:
                return m.get("samples") or []
        return []

    def total(name, **labels):
        return sum(s.get("value") or 0 for s in samples(name)
                   if all((s.get("labels") or {}).get(k) == v
                          for k, v in labels.items()))
    n = total("atrium_connections_total", kind="ssh")
    c.check(n >= 5, f"atrium_connections_total counts the ssh connections "
            f"({n})")
    up = total("atrium_connection_bytes_total", kind="ssh",
               direction="to_agent")
    c.check(up >= 50 * 1024 * 1024, f"atrium_connection_bytes_total: the "
            f"50 MB scp'd up went to the agent ({up:.0f} bytes)")
    c.check(any((s.get("labels") or {}).get("kind")
                for s in samples("atrium_connections_open")) or
            any(m.get("name") == "atrium_connections_open"
                for m in body.get("metrics", [])),
            "atrium_connections_open is exported")


def run(atrium, plugins, src):
    c = start(atrium, plugins, src)
    member = c.member("bob")
    c.config_ssh()
    section(c, checks.ssh_basics)
    section(c, atrium_ssh)
    section(c, checks.scp_sftp, "")
    section(c, checks.rsync)
    section(c, checks.tmux_resize, "")
    section(c, checks.tmux_resize, "", True)
    section(c, checks.port_forward, c.ports["HTTP_PORT"],
            "served from the workspace", c.ports["ECHO_PORT"],
            '"app": "echo"')
    section(c, checks.ssh_local_forward, c.ports["HTTP_PORT"],
            "served from the workspace")
    section(c, checks.pty_ws, "")
    section(c, connect_apps.apps, member)
    section(c, connect_apps.denied, member)
    section(c, connect_apps.audited)
    section(c, metrics)
    c.check(c.agent.poll() is None and
            (c.the_agent() or {}).get("status") == "connected",
            f"the agent ran through it all, reporting stats each second "
            f"(exit status {c.agent.poll()})")
    restart_agent(c)
    section(c, checks.host_key_stable)
    section(c, config_ssh_dry_run_and_remove)
    rc, out = c.cli(["stop", WS])
    c.kill_workspace_servers()
    try:
        code = c.agent.wait(timeout=120)
    except subprocess.TimeoutExpired:
        c.fail("the agent did not exit after the stop")
    c.check(code == 0, f"the agent exited 0 after the stop (got {code})")
    for name in ("server.log", "agent.log", "cli-all.log"):
        p = os.path.join(c.tmp, name)
        text = open(p, errors="replace").read() if os.path.exists(p) else ""
        c.check(c.token not in text and member not in text,
                f"{name} holds no session token")
        c.check(not re.search(r"Sanitizer|runtime error", text),
                f"{name} holds no sanitizer report")
    return c


def main():
    atrium, plugins, src = sys.argv[1:4]
    if not os.access(TERRAFORM, os.X_OK):
        print(f"skipped: {TERRAFORM} is missing")
        return 77
    if not os.path.exists(os.path.join(plugins, "provisioner_terraform.so")):
        print("skipped: no terraform provisioner")
        return 77
    return run_test("connect_terraform", lambda: run(atrium, plugins, src))


if __name__ == "__main__":
    sys.exit(main())
