#!/usr/bin/env python3
"""The workspace agent in a real container (docs/agent.md): the docker
starter template (examples/templates/docker) on the test engine's busybox
image. The docker provisioner mounts the agent bundle at /opt/atrium and
runs the agent as PID 1 in front of the workspace's command; the agent
reaches the server over the host network, runs the startup script and
reports ready, with its metadata. A stop build: the agent reports off
before the container goes, and a delete removes the rest.

usage: agent_docker.py ATRIUM PLUGIN_DIR DOCKER_DIR SOURCE_DIR
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import agent_e2e as e2e  # noqa: E402


def main():
    atrium, plugins, dockerdir, src = sys.argv[1:5]
    sock_file = os.path.join(dockerdir, "socket")
    if not os.path.exists(sock_file) or not os.path.exists(
            os.path.join(plugins, "provisioner_docker.so")):
        print("skipped: no Docker engine or no docker provisioner")
        return 77
    sock = open(sock_file).read().strip()
    tmp = tempfile.mkdtemp(prefix="atrium-agent-docker-")
    checks = e2e.CHECKS
    d = None
    ws = None
    try:
        d = e2e.DEP = e2e.Deployment(atrium, plugins, tmp)
        d.plugins_extra = ("  provisioner_docker:\n    enabled: true\n"
                           f"    socket: {sock}\n"
                           "    allowed_images: [atrium-test/]\n"
                           "    pull_policy: never\n"
                           "    start_timeout: 30s\n")
        d.start()
        org = e2e.set_up(d)
        tdir = os.path.join(src, "examples", "templates", "docker")
        files = {n: open(os.path.join(tdir, n)).read()
                 for n in os.listdir(tdir)}
        status, f = d.call("POST", "/api/v2/files", raw=e2e.targz(files),
                           ctype="application/gzip")
        if status not in (200, 201):
            e2e.fail(f"upload: {status} {f}")
        v = d.must(201, "POST",
                   f"/api/v2/organizations/{org}/templateversions",
                   {"file_id": f["hash"], "name": "v1"})
        e2e.wait_for("the import", lambda: d.must(
            200, "GET", f"/api/v2/templateversions/{v['id']}")["job"][
                "status"] == "succeeded")
        t = d.must(201, "POST", f"/api/v2/organizations/{org}/templates",
                   {"name": "docker", "template_version_id": v["id"]})
        ws = d.must(201, "POST", "/api/v2/users/me/workspaces",
                    {"name": "dev", "template_id": t["id"]})
        e2e.wait_build(d, ws["latest_build"]["id"])
        a = e2e.wait_for("lifecycle ready", lambda: (
            lambda a: a if a and a.get("lifecycle_state") == "ready"
            else None)(e2e.agent_of(d, ws["id"])), seconds=120)
        checks.check(True, "the agent in the container reached ready")
        checks.check(a.get("status") == "connected",
                     f"the agent is connected (got {a.get('status')})")

        def metadata():
            _, items = d.call("GET",
                              f"/api/v2/workspaceagents/{a['id']}/metadata")
            if isinstance(items, dict):
                items = items.get("metadata", [])
            return any(i.get("key") == "load" and i.get("value")
                       for i in items or [])
        checks.check(e2e.wait_for("metadata", metadata, seconds=60),
                     "the load metadata arrived from the container")
        b = d.must(201, "POST", f"/api/v2/workspaces/{ws['id']}/builds",
                   {"transition": "stop"})
        e2e.wait_build(d, b["id"])
        got = d.must(200, "GET", f"/api/v2/workspaceagents/{a['id']}")
        checks.check(got.get("lifecycle_state") == "off",
                     f"the agent reported off before the container stopped "
                     f"(got {got.get('lifecycle_state')})")
        b = d.must(201, "POST", f"/api/v2/workspaces/{ws['id']}/builds",
                   {"transition": "delete"})
        e2e.wait_build(d, b["id"])
        ws = None
        d.stop()
    finally:
        if d and ws and d.proc:
            # leave nothing on the shared engine
            d.call("POST", f"/api/v2/workspaces/{ws['id']}/builds",
                   {"transition": "delete"})
        e2e.clean_up(tmp)
    return checks.done()


if __name__ == "__main__":
    sys.exit(main())
