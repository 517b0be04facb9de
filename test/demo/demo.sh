#!/usr/bin/env bash
# make demo: a Kubernetes pod launched through a Mesos (double) agent with
# the real k8sm executor. Sets up the test bed if it is not up, starts
# mesos-double, runs the launcher (test/demo/launcher) and tears down what it
# started. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../env/lib.sh
source test/env/lib.sh

say() { printf '\n### %s\n' "$*"; }
[ "$(id -u)" = 0 ] || { echo "make demo needs root (cgroups, dockerd)" >&2; exit 2; }

mesos_existed=0
[ -d /sys/fs/cgroup/memory/mesos ] || [ -d /sys/fs/cgroup/mesos ] && mesos_existed=1
bed_was_up=0
[ -S "$DOCKER_SOCK" ] && bed_was_up=1
say "test bed (dockerd on $DOCKER_HOST_URL, local images)"
bash test/env/setup.sh >/dev/null

say "building k8sm-agent, mesos-double and the demo launcher"
make -s build
go build -o _output/bin/k8sm-demo-launcher ./test/demo/launcher

work=$(mktemp -d /tmp/k8sm-demo.XXXXXX)
root=mesos/${CGROUP_PREFIX}demo-$$
mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
aport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
	rc=$?
	[ -n "${double_pid:-}" ] && kill "$double_pid" 2>/dev/null && wait "$double_pid" 2>/dev/null || true
	for d in /sys/fs/cgroup/*/"$root" /sys/fs/cgroup/"$root"; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
	if [ "$mesos_existed" = 0 ]; then # /mesos is ours: remove it if nothing else is in it
		for d in /sys/fs/cgroup/*/mesos /sys/fs/cgroup/mesos; do [ -d "$d" ] && rmdir "$d" 2>/dev/null || true; done
	fi
	rm -rf "$work"
	if [ "$bed_was_up" = 0 ]; then say "tearing the test bed down"; bash test/env/teardown.sh >/dev/null || true; fi
	if [ "$rc" = 0 ]; then say "demo done"; else say "demo FAILED (exit $rc); mesos-double log: $work/double.log (removed)"; fi
	exit "$rc"
}
trap cleanup EXIT

say "mesos-double: master 127.0.0.1:$mport, agent 127.0.0.1:$aport, cgroup root /$root"
_output/bin/mesos-double --master "127.0.0.1:$mport" --agent "127.0.0.1:$aport" --work-dir "$work" \
	--resources 'cpus:2;mem:2048;ports:[31000-31099]' --attributes 'rack:r1;zone:z1' --hostname "$(hostname)" \
	--cgroup-root "$root" --executor-shutdown-grace-period 5s --allocation-interval 200ms 2>"$work/double.log" &
double_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$mport/state" >/dev/null && break; sleep 0.1; done

say "launching examples/web.yaml"
if ! _output/bin/k8sm-demo-launcher --master "127.0.0.1:$mport" --pod examples/web.yaml \
	--executor _output/bin/k8sm-agent --cgroup-root "$root" --docker-endpoint "$DOCKER_HOST_URL" --node-api-dir "$work/sockets" \
	--executor-args "--docker-endpoint $DOCKER_HOST_URL --pause-image $PAUSE_IMAGE --cgroup-root /$root --host-ip 127.0.0.1 --node-api-dir $work/sockets"; then
	echo "--- mesos-double log:"; tail -n 30 "$work/double.log"
	for f in "$work"/slaves/*/frameworks/*/executors/*/runs/*/stderr; do [ -f "$f" ] && { echo "--- executor log $f:"; tail -n 30 "$f"; }; done
	exit 1
fi
