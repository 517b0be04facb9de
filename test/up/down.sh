#!/usr/bin/env bash
# make down: removes what make up made: the scheduler, the Mesos double (it
# destroys its executors' cgroups), the nodes' containers and dockerds, the
# network namespaces, veths and bridge, the k8sm-up cgroups, and then the
# whole test bed (its API server listened on the bridge address).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require_root

stop_pidfile "$UP_RUN/k8sm-scheduler.pid" k8sm-scheduler
stop_pidfile "$UP_RUN/mesos-double.pid" mesos-double 30
for n in $UP_NODES; do
	run=$UP_RUN/$n
	if pid_alive "$run/docker.pid" dockerd; then
		ids=$("$DOCKER" -H "$(node_docker "$n")" ps -aq 2>/dev/null || true)
		# shellcheck disable=SC2086
		[ -z "$ids" ] || "$DOCKER" -H "$(node_docker "$n")" rm -f $ids >/dev/null 2>&1 || true
		stop_pidfile "$run/docker.pid" dockerd 30
	fi
	unmount_under "$run"
	unmount_under "$UP_STATE/$n"
	if ip netns list | grep -qw "^$n"; then
		ip netns delete "$n"
		log "removed network namespace $n"
	fi
	i=$(node_index "$n")
	# Deleting the namespace removes the veth too, but asynchronously: the
	# link may vanish between a check and a delete. Gone either way is done.
	ip link delete "k8sm-v$i" 2>/dev/null || ! ip link show "k8sm-v$i" >/dev/null 2>&1 ||
		die "cannot delete veth k8sm-v$i"
done
if ip link show "$UP_BRIDGE" >/dev/null 2>&1; then
	ip link delete "$UP_BRIDGE"
	log "removed bridge $UP_BRIDGE"
fi
# The cgroups: deepest first; anything still inside is killed first.
for root in "$UP_CGROUP_ROOT" "$UP_CGROUP_ROOT-docker"; do
	for h in /sys/fs/cgroup/*/"$root" /sys/fs/cgroup/"$root"; do
		[ -d "$h" ] || continue
		find "$h" -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null || true
		find "$h" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[ ! -d "$h" ] || log "WARN: could not remove cgroup $h"
	done
done
rm -rf "$UP_RUN" "${UP_STATE:?}"
bash "$K8SM_ROOT/test/env/teardown.sh"
log "dev cluster down"
