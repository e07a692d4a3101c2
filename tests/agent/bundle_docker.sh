#!/bin/sh
# The agent bundle as a container's PID 1 on the real engine (the dockerd
# fixture, image atrium-test/busybox:1): bind-mounted read-only at
# /opt/atrium as the docker provisioner does, `atrium-agent agent --init`
# reaps an orphan the workload leaves (its pid disappears from /proc, not a
# zombie) and exits with the workload's status.
# usage: bundle_docker.sh BUNDLE_DIR DOCKER_DIR
set -u
bundle=$1
dockerdir=$2
if [ ! -s "$dockerdir/socket" ]; then
  echo "skipped: no Docker engine ($dockerdir/socket is missing)"
  exit 77
fi
host="unix://$(cat "$dockerdir/socket")"
# The workload orphans a child that records its pid and exits; it waits
# (bounded) until that pid is gone from /proc: reaped by PID 1, the agent.
workload='(sh -c "echo \$\$ >/orphan.pid; exit 0" &)
n=0
while [ $n -lt 200 ]; do
  if [ -s /orphan.pid ] && [ ! -e /proc/$(cat /orphan.pid) ]; then exit 5; fi
  sleep 0.05; n=$((n+1))
done
exit 9'
docker -H "$host" run --rm --network none \
  -v "$bundle:/opt/atrium:ro" \
  -e ATRIUM_AGENT_URL=http://127.0.0.1:9 -e ATRIUM_AGENT_TOKEN=atragt_test \
  -e ATRIUM_AGENT_FINAL_WAIT=1s \
  --entrypoint /opt/atrium/atrium-agent atrium-test/busybox:1 \
  agent --init -- /bin/sh -c "$workload"
rc=$?
case $rc in
5) echo "ok: the orphan was reaped and the agent exited with the workload's status" ;;
9) echo "FAIL: the orphan stayed a zombie (PID 1 did not reap it)"; exit 1 ;;
*) echo "FAIL: the container exited $rc, want 5"; exit 1 ;;
esac
