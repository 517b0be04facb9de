#!/usr/bin/env bash
# Tears the k8sm test bed down: kube-apiserver, etcd, every container of the
# bed's own dockerd and the daemon itself, then any mount, bridge, network
# namespace or cgroup the bed or its tests left behind. Only objects of the
# bed (paths in lib.sh, names with the k8sm-test- prefix) are touched.
#
# Images and built binaries are kept so the next setup is fast;
# K8SM_TEST_PURGE=1 also deletes the bed's state directory.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

remove_containers() {
	docker_up || return 0
	local ids
	ids=$("$DOCKER" -H "$DOCKER_HOST_URL" ps -aq)
	if [ -n "$ids" ]; then
		log "removing $(echo "$ids" | wc -l) container(s) of the test dockerd"
		# shellcheck disable=SC2086
		"$DOCKER" -H "$DOCKER_HOST_URL" rm -f $ids >/dev/null
	fi
}

# remove_private_dockerds: daemons a test started with testenv.NewDockerd
# ($RUN_DIR/k8sm-test-*/docker.pid) and left behind when it was killed: their
# containers, the daemon, its data and its bridge.
remove_private_dockerds() {
	local run name ids
	for run in "$RUN_DIR"/"$NETNS_PREFIX"*/; do
		[ -d "$run" ] || continue
		name=$(basename "$run")
		if pid_alive "$run/docker.pid" dockerd; then
			ids=$("$DOCKER" -H "unix://$run/docker.sock" ps -aq 2>/dev/null || true)
			# shellcheck disable=SC2086
			[ -z "$ids" ] || "$DOCKER" -H "unix://$run/docker.sock" rm -f $ids >/dev/null 2>&1 || true
			stop_pidfile "$run/docker.pid" dockerd 30
		fi
		log "removing leftover private dockerd $name"
		unmount_under "$run"
		unmount_under "$STATE_DIR/$name"
		rm -rf "$run" "${STATE_DIR:?}/$name"
		if ip link show "$name" >/dev/null 2>&1; then
			ip link delete "$name"
		fi
	done
}

remove_netns() {
	local n
	for n in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $n in "$NETNS_PREFIX"*)
			log "removing leftover network namespace $n"
			ip netns delete "$n"
			;;
		esac
	done
}

# remove_cgroups: leftover test cgroups <hierarchy>/mesos/k8sm-test-* and the
# bed dockerd's default parent; any process still in one is SIGKILLed first
# (they can only be test processes), frozen ones are thawed so they can die.
remove_cgroups() {
	local d f pid dirs=()
	for d in /sys/fs/cgroup/*/mesos/"$CGROUP_PREFIX"* /sys/fs/cgroup/mesos/"$CGROUP_PREFIX"* \
		/sys/fs/cgroup/*"$DOCKER_CGROUP_PARENT" /sys/fs/cgroup"$DOCKER_CGROUP_PARENT"; do
		[ -d "$d" ] && dirs+=("$d")
	done
	if [ ${#dirs[@]} -eq 0 ]; then
		remove_mesos_root
		return 0
	fi
	log "removing leftover test cgroups: ${dirs[*]}"
	for d in "${dirs[@]}"; do
		find "$d" -name freezer.state | while read -r f; do echo THAWED >"$f"; done
		find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | while read -r pid; do
			kill -KILL "$pid" 2>/dev/null || true
		done
	done
	for d in "${dirs[@]}"; do
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null ||
			{ sleep 0.5; find "$d" -depth -type d -exec rmdir {} +; }
	done
	remove_mesos_root
}

# remove_mesos_root: /mesos itself, only when the bed's tests created it (a
# marker says so) and it is empty; a real Mesos agent's /mesos is never
# touched.
remove_mesos_root() {
	[ -e "$RUN_DIR/mesos-cgroup-created" ] || return 0
	local d
	for d in /sys/fs/cgroup/*/mesos /sys/fs/cgroup/mesos; do
		[ -d "$d" ] && rmdir "$d" 2>/dev/null
	done
	rm -f "$RUN_DIR/mesos-cgroup-created"
}

main() {
	require_root
	stop_pidfile "$RUN_DIR/kube-controller-manager.pid" kube-controller-manager
	stop_pidfile "$RUN_DIR/kube-apiserver.pid" kube-apiserver
	stop_pidfile "$RUN_DIR/etcd.pid" etcd
	remove_private_dockerds
	remove_containers
	stop_pidfile "$DOCKER_PIDFILE" dockerd 30
	unmount_under "$RUN_DIR"
	unmount_under "$STATE_DIR"
	if ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1; then
		ip link delete "$DOCKER_BRIDGE"
	fi
	remove_netns
	remove_cgroups
	rm -rf "$RUN_DIR"
	rm -rf "${STATE_DIR:?}/kube/etcd"
	if [ -n "${K8SM_TEST_PURGE:-}" ]; then
		rm -rf "${STATE_DIR:?}"
	fi
	log "test bed down"
}

main "$@"
