#!/usr/bin/env python3
"""Getting into a docker workspace (the agent as PID 1 of a busybox
container on the test engine) with real clients, through a real server
(docs/connect.md, issue 15): `atrium config-ssh`, then `ssh atrium.dev
'echo $((6*7))'` → 42, `false` → 1, stderr and stdin; scp of 50 MB both
ways with matching SHA-256 (the agent bundle's sftp-server: the image has
none); sftp lists the home directory; tmux sees a resize; `atrium
port-forward` and curl to `busybox httpd` in the container; the web
terminal reconnects to the same shell; the app through the server.

usage: connect_docker.py ATRIUM PLUGIN_DIR DOCKER_DIR SOURCE_DIR
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import connect_apps  # noqa: E402
import connect_checks as checks  # noqa: E402
from connect_apps import app, get, opener  # noqa: E402
from connect_lib import Ctx, free_port, run_test, section  # noqa: E402

BB = "busybox "  # the image links only sh, ls, cat, echo, …


def files_app(c):
    o, _ = opener(c, c.token)
    st, body, _, _ = get(o, c, app("files", "hello.txt"))
    c.check(st == 200 and b"served from the container" in body,
            f"the owner opens the container's app through the server ({st})")


def member_app(c, member):
    o, _ = opener(c, member)
    st, body, _, _ = get(o, c, app("files", "hello.txt"))
    c.check(st == 403, f"another member gets 403 on the container's app "
            f"({st})")


def run(atrium, plugins, dockerdir, src):
    sock = open(os.path.join(dockerdir, "socket")).read().strip()
    tmp = tempfile.mkdtemp(prefix="atrium-connect-docker-")
    c = Ctx(atrium, plugins, src, tmp)
    c.start_server("  provisioner_docker:\n    enabled: true\n"
                   f"    socket: {sock}\n"
                   "    allowed_images: [atrium-test/]\n"
                   "    pull_policy: never\n"
                   "    start_timeout: 30s\n")
    c.first_user()
    member = c.member("bob")
    port = free_port()
    d = c.template_dir("docker", {"HTTP_PORT": port}, "docker")
    c.create_workspace(d, "connect-docker")
    c.deleting = True  # from here on, the workspace must go at the end
    c.wait_build("start")
    c.wait_ready()
    c.config_ssh()
    section(c, checks.ssh_basics)
    section(c, checks.scp_sftp, BB)
    section(c, checks.tmux_resize, BB)
    section(c, checks.tmux_resize, BB, True)
    section(c, checks.port_forward, port, "served from the container")
    section(c, checks.ssh_local_forward, port, "served from the container")
    section(c, checks.pty_ws, BB)
    section(c, files_app)
    section(c, connect_apps.denied, member)
    section(c, member_app, member)
    section(c, connect_apps.audited)
    c.cli(["delete", "dev", "-y"])
    c.wait_build("delete")
    c.deleting = False
    return c


def main():
    atrium, plugins, dockerdir, src = sys.argv[1:5]
    if not os.path.exists(os.path.join(dockerdir, "socket")) or \
            not os.path.exists(os.path.join(plugins,
                                            "provisioner_docker.so")):
        print("skipped: no Docker engine or no docker provisioner")
        return 77
    return run_test("connect_docker",
                    lambda: run(atrium, plugins, dockerdir, src))


if __name__ == "__main__":
    sys.exit(main())
