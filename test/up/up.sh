#!/usr/bin/env bash
# make up: a two-node k8sm dev cluster on this machine, left running.
#
# Each node is a network namespace (k8sm-node1, k8sm-node2) on the bridge
# k8sm-br0 (a test subnet, no route out), with its own dockerd (started with
# nsenter --net=, so /sys and the cgroup mounts stay the host's), its own
# Mesos double agent (listening and starting executors in the namespace, own
# cgroup root, attribute zone:z1 / zone:z2), and so its own executors and
# proxy rules. The API server and the Mesos double master listen on the
# bridge address; kube-controller-manager and k8sm-scheduler run in the host
# namespace. "make down" removes all of it (and the test bed).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require_root
mkdir -p "$UP_RUN" "$UP_STATE" "$LOG_DIR"

make_network() {
	if ! ip link show "$UP_BRIDGE" >/dev/null 2>&1; then
		if ip -4 route show to match "$UP_GW" | grep -qv '^default'; then
			die "$UP_SUBNET.0/24 is already routed on this machine; set K8SM_UP_SUBNET"
		fi
		ip link add "$UP_BRIDGE" type bridge
		ip addr add "$UP_GW/24" dev "$UP_BRIDGE"
		ip link set "$UP_BRIDGE" up
	fi
	local n i
	for n in $UP_NODES; do
		i=$(node_index "$n")
		ip netns list | grep -qw "^$n" || ip netns add "$n"
		if ! ip link show "k8sm-v$i" >/dev/null 2>&1; then
			ip link add "k8sm-v$i" type veth peer name eth0 netns "$n"
			ip link set "k8sm-v$i" master "$UP_BRIDGE" up
			ip -n "$n" addr add "$(node_ip "$n")/24" dev eth0
			ip -n "$n" link set eth0 up
			ip -n "$n" link set lo up
		fi
		# No default route (nothing leaves the machine), but cluster IPs
		# need a route for a connect() to reach the proxy's DNAT in OUTPUT.
		ip -n "$n" route replace "$SERVICE_CIDR" dev eth0
	done
	log "network: bridge $UP_BRIDGE $UP_GW/24, nodes $(for n in $UP_NODES; do printf '%s=%s ' "$n" "$(node_ip "$n")"; done)"
}

start_node_dockerd() {
	local n=$1 run=$UP_RUN/$1
	mkdir -p "$run" "$UP_STATE/$n/docker"
	if pid_alive "$run/docker.pid" dockerd && "$DOCKER" -H "$(node_docker "$n")" version >/dev/null 2>&1; then
		return
	fi
	nsenter --net="/var/run/netns/$n" setsid dockerd \
		--host "$(node_docker "$n")" --data-root "$UP_STATE/$n/docker" --exec-root "$run/exec" \
		--pidfile "$run/docker.pid" \
		--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$UP_CGROUP_ROOT-docker" \
		--iptables=false --ip-forward=false --ip-masq=false --userland-proxy=true \
		--containerd-namespace "$n" --containerd-plugins-namespace "$n-plugins" \
		--shutdown-timeout 5 >"$LOG_DIR/up-$n-dockerd.log" 2>&1 </dev/null &
	wait_for "dockerd of $n" 60 "$DOCKER" -H "$(node_docker "$n")" version ||
		{ tail -20 "$LOG_DIR/up-$n-dockerd.log" >&2; die "dockerd of $n did not come up"; }
	"$DOCKER" -H "$DOCKER_HOST_URL" save k8sm.local/busybox:test k8sm.local/pause:test |
		"$DOCKER" -H "$(node_docker "$n")" load >/dev/null
	log "$n: dockerd up at $(node_docker "$n") with the two local images"
}

start_mesos() {
	if pid_alive "$UP_RUN/mesos-double.pid" mesos-double; then
		return
	fi
	local f=$UP_RUN/agents.yaml n
	: >"$f"
	for n in $UP_NODES; do
		mkdir -p "$UP_STATE/$n/work"
		cat >>"$f" <<YAML
- hostname: $n
  addr: $(node_ip "$n"):5051
  netns: /var/run/netns/$n
  cgroupRoot: $UP_CGROUP_ROOT/$n
  workDir: $UP_STATE/$n/work
  resources: "cpus:2;mem:2048;ports:[31000-31999]"
  attributes: "zone:z$(node_index "$n")"
  env:
  - DOCKER_HOST=$(node_docker "$n")
  - K8SM_KUBECONFIG=$RUN_DIR/kubeconfig-node-$n
YAML
	done
	setsid "$BIN/mesos-double" --master "$UP_MASTER" --agents "$f" \
		>"$LOG_DIR/up-mesos-double.log" 2>&1 </dev/null &
	echo $! >"$UP_RUN/mesos-double.pid"
	wait_for mesos-double 30 curl -fsS "http://$UP_MASTER/state" ||
		{ tail -20 "$LOG_DIR/up-mesos-double.log" >&2; die "mesos-double did not come up"; }
	log "Mesos double master at $UP_MASTER, agents in $UP_NODES"
}

start_scheduler() {
	if pid_alive "$UP_RUN/k8sm-scheduler.pid" k8sm-scheduler; then
		return
	fi
	setsid "$BIN/k8sm-scheduler" --master "$UP_MASTER" --kubeconfig "$RUN_DIR/kubeconfig-scheduler" \
		--executor-path "$BIN/k8sm-agent" \
		--executor-arg=--cgroup-root="/$UP_CGROUP_ROOT" --executor-arg=--pause-image=k8sm.local/pause:test \
		--executor-arg=--client-ca-file="$RUN_DIR/ca.crt" \
		--listen-address 127.0.0.1:10251 \
		>"$LOG_DIR/up-scheduler.log" 2>&1 </dev/null &
	echo $! >"$UP_RUN/k8sm-scheduler.pid"
	wait_for k8sm-scheduler 30 curl -fsS http://127.0.0.1:10251/healthz ||
		{ tail -20 "$LOG_DIR/up-scheduler.log" >&2; die "k8sm-scheduler did not come up"; }
	log "k8sm-scheduler up (/metrics on 127.0.0.1:10251)"
}

main() {
	[ -x "$BIN/k8sm-scheduler" ] && [ -x "$BIN/mesos-double" ] && [ -x "$BIN/k8sm-agent" ] || die "run make build first"
	make_network
	local stamp
	stamp=$(cat "$RUN_DIR/kube.stamp" 2>/dev/null || true)
	K8SM_TEST_API_ADDRESS=$UP_GW bash "$K8SM_ROOT/test/env/setup.sh"
	if [ -n "$stamp" ] && [ "$stamp" != "$(cat "$RUN_DIR/kube.stamp" 2>/dev/null)" ]; then
		# A new control plane (fresh etcd, new tokens): what talks to the
		# old one starts again.
		log "the control plane was restarted: restarting k8sm-scheduler and mesos-double"
		stop_pidfile "$UP_RUN/k8sm-scheduler.pid" k8sm-scheduler
		stop_pidfile "$UP_RUN/mesos-double.pid" mesos-double 30
	fi
	local n
	for n in $UP_NODES; do start_node_dockerd "$n"; done
	start_mesos
	start_scheduler
	cat <<MSG

k8sm dev cluster up: nodes $UP_NODES (network namespaces on $UP_BRIDGE), Mesos
master http://$UP_MASTER/state, logs in $LOG_DIR/up-*.log.

  export KUBECONFIG=$KUBECONFIG_ADMIN
  kubectl apply -f examples/hello.yaml        # a Deployment of 2 and a Service
  kubectl get pods -o wide                    # spread over k8sm-node1 and k8sm-node2
  kubectl get svc hello                       # its cluster IP
  ip netns exec k8sm-node1 wget -qO- http://<cluster-ip>   # through k8sm's proxy
  $BIN/k8sm-agent diag --docker-endpoint $(node_docker k8sm-node1) --cgroup-root /$UP_CGROUP_ROOT --iptables ''

kubectl is $BIN/kubectl. "make down" removes everything.
MSG
}

main "$@"
