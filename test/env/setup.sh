#!/usr/bin/env bash
# Sets up the k8sm test bed on this machine: Debian packages, a private
# dockerd, the two local test images, the Kubernetes control-plane binaries
# built from the Go module proxy, and a stock control plane: etcd on
# loopback, kube-apiserver on the bed bridge's address (or make up's), and
# kube-controller-manager.
#
# Idempotent: what is already up and current is reused, so a second run on a
# ready machine takes seconds. Needs root. Touches only the paths in lib.sh,
# its own bridge, and never the machine's iptables or another Docker daemon.
#
# Usage: test/env/setup.sh            (everything)
#        K8SM_TEST_SKIP_KUBE=1 ...    (no Kubernetes control plane)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"

PACKAGES=(docker.io iptables iproute2 busybox-static openssl conntrack procps util-linux curl ca-certificates pigz)

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		log "packages present"
		return
	fi
	log "installing: ${missing[*]}"
	# Keep the packages' own services (the system docker daemon) from being
	# started by the install: we only want the binaries. policy-rc.d is
	# removed again unless it was there before.
	local policy=/usr/sbin/policy-rc.d own_policy=
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod 755 "$policy"
		own_policy=1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >"$LOG_DIR/apt.log" 2>&1 ||
		{ [ -n "$own_policy" ] && rm -f "$policy"; tail -20 "$LOG_DIR/apt.log"; die "apt-get install failed (log: $LOG_DIR/apt.log)"; }
	[ -n "$own_policy" ] && rm -f "$policy"
	return 0
}

ensure_bridge() {
	if ip link show "$DOCKER_BRIDGE" >/dev/null 2>&1; then return; fi
	local net=${DOCKER_BRIDGE_CIDR%/*}
	# Refuse a subnet the machine already routes somewhere (other than by
	# its default route): the bridge would shadow a real network.
	if ip -4 route show to match "$net" | grep -qv '^default'; then
		die "$net is already routed on this machine ($(ip -4 route show to match "$net" | grep -v '^default' | head -1)); set K8SM_TEST_BRIDGE_CIDR"
	fi
	ip link add "$DOCKER_BRIDGE" type bridge
	ip addr add "$DOCKER_BRIDGE_CIDR" dev "$DOCKER_BRIDGE"
	ip link set "$DOCKER_BRIDGE" up
}

start_dockerd() {
	if docker_up; then
		log "dockerd already up on $DOCKER_SOCK"
		return
	fi
	stop_pidfile "$DOCKER_PIDFILE" dockerd
	ensure_bridge
	mkdir -p "$STATE_DIR/docker" "$RUN_DIR/docker"
	# --iptables=false etc.: never change the machine's own network setup;
	# published ports go through docker-proxy (the userland proxy).
	# Own containerd namespace: even if dockerd finds a system containerd, it
	# never sees another daemon's containers.
	setsid dockerd \
		--host "$DOCKER_HOST_URL" \
		--data-root "$STATE_DIR/docker" \
		--exec-root "$RUN_DIR/docker" \
		--pidfile "$DOCKER_PIDFILE" \
		--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "$DOCKER_CGROUP_PARENT" \
		--bridge "$DOCKER_BRIDGE" \
		--iptables=false --ip-forward=false --ip-masq=false --userland-proxy=true \
		--containerd-namespace k8sm-test --containerd-plugins-namespace k8sm-test-plugins \
		--shutdown-timeout 5 \
		>"$LOG_DIR/dockerd.log" 2>&1 </dev/null &
	if ! wait_for dockerd 60 "$DOCKER" -H "$DOCKER_HOST_URL" version; then
		tail -30 "$LOG_DIR/dockerd.log" >&2
		die "dockerd did not come up on $DOCKER_SOCK (log: $LOG_DIR/dockerd.log)"
	fi
	local driver
	driver=$("$DOCKER" -H "$DOCKER_HOST_URL" info -f '{{.CgroupDriver}} {{.Driver}}')
	log "dockerd up: cgroup driver, storage driver: $driver"
}

# import_image NAME HASH ROOTFS CHANGE...: docker import ROOTFS as NAME unless
# an image of that NAME already carries label io.k8sm.test.hash=HASH.
import_image() {
	local name=$1 hash=$2 rootfs=$3
	shift 3
	if image_hash_is "$DOCKER_HOST_URL" "$name" "$hash"; then
		log "image $name current"
		return
	fi
	tar -C "$rootfs" -c . | import_labelled "$DOCKER_HOST_URL" "$name" "$hash" - "$@"
	log "image $name built"
}

build_images() {
	local tmp
	tmp=$(mktemp -d)
	# busybox: Debian's static busybox with every applet linked in.
	local bb=$tmp/busybox
	busybox_tree "$bb"
	mkdir -p "$bb"/{etc,root,var/www,home,proc,sys,dev}
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n' >"$bb/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$bb/etc/group"
	local bbhash
	bbhash=$( (sha256sum /bin/busybox; cat "$bb/etc/passwd" "$bb/etc/group"; ls "$bb/bin") | sha256sum | cut -c1-16)
	import_image "$BUSYBOX_IMAGE" "$bbhash" "$bb" 'ENV PATH=/bin' 'CMD ["sh"]'

	# pause: the repo's static pause program, alone in the image.
	local pz=$tmp/pause
	mkdir -p "$pz"
	build_pause "$pz"
	import_image "$PAUSE_IMAGE" "$(stamp_of "$pz/pause")" "$pz" 'ENTRYPOINT ["/pause"]'
	rm -rf "$tmp"
}

build_kube() {
	local stamp
	stamp=$(stamp_of "$K8SM_ROOT/test/tools/kube/go.mod" "$K8SM_ROOT/test/tools/kube/go.sum")
	if [ "$(cat "$KUBE_BIN/.stamp" 2>/dev/null)" = "$stamp" ]; then
		log "kubernetes $KUBE_VERSION binaries current in $KUBE_BIN"
	else
		log "building kube-apiserver, kubectl, kube-controller-manager, kube-proxy $KUBE_VERSION (cold: ~10 min, ~3 GB build cache)"
		local v=k8s.io/component-base/version
		go_build_tool "$K8SM_ROOT/test/tools/kube" "$KUBE_BIN" \
			"-s -w -X $v.gitVersion=$KUBE_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$KUBE_MINOR -X $v.gitTreeState=clean" \
			k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl \
			k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-proxy
		echo "$stamp" >"$KUBE_BIN/.stamp"
	fi
	stamp=$(stamp_of "$K8SM_ROOT/test/tools/etcd/go.mod" "$K8SM_ROOT/test/tools/etcd/go.sum")
	if [ "$(cat "$ETCD_BIN/.stamp" 2>/dev/null)" = "$stamp" ]; then
		log "etcd $ETCD_VERSION current in $ETCD_BIN"
	else
		log "building etcd $ETCD_VERSION (cold: ~1.5 min)"
		go_build_tool "$K8SM_ROOT/test/tools/etcd" "$ETCD_BIN" "-s -w" go.etcd.io/etcd/server/v3
		mv "$ETCD_BIN/server" "$ETCD_BIN/etcd"
		echo "$stamp" >"$ETCD_BIN/.stamp"
	fi
	local t
	for t in kube-apiserver kubectl kube-controller-manager kube-proxy; do
		ln -sfn "kube-$KUBE_VERSION/$t" "$BIN/$t"
	done
	ln -sfn "etcd-$ETCD_VERSION/etcd" "$BIN/etcd"
}

# kube_stamp: what the running control plane was started from: the
# functions that start it (bash prints them without comments) and the
# settings they read. A control plane of other flags is restarted rather
# than reused; an edit elsewhere in these files restarts nothing.
kube_stamp() {
	{
		declare -f gen_certs write_kubeconfig bind_roles start_kcm run_kcm start_kube
		echo "$API_ADDRESS $SERVICE_CIDR $TEST_NODES $KUBE_VERSION ${K8SM_TEST_APISERVER_SANS:-}"
	} | sha256sum | cut -c1-16
}

apiserver_up() {
	[ -s "$KUBECONFIG_ADMIN" ] && pid_alive "$RUN_DIR/kube-apiserver.pid" kube-apiserver &&
		[ "$(cat "$RUN_DIR/kube.stamp" 2>/dev/null)" = "$(kube_stamp)" ] &&
		grep -q "server: https://$API_ADDRESS:" "$KUBECONFIG_ADMIN" &&
		"$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" get --raw /readyz >/dev/null 2>&1
}

gen_certs() {
	local d=$KUBE_DIR/pki
	[ -s "$d/apiserver.crt" ] && [ -s "$d/sa.key" ] && [ -s "$d/kubelet-client.crt" ] &&
		openssl x509 -in "$d/apiserver.crt" -noout -text | grep -q "IP Address:$API_ADDRESS\b" && return
	mkdir -p "$d"
	chmod 700 "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=k8sm-test-ca" \
		-keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
	local sans="IP:127.0.0.1,IP:$API_ADDRESS,IP:${SERVICE_CIDR%.0/*}.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
	[ -n "${K8SM_TEST_APISERVER_SANS:-}" ] && sans="$sans,$K8SM_TEST_APISERVER_SANS"
	openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
		-keyout "$d/apiserver.key" -out "$d/apiserver.csr" 2>/dev/null
	openssl x509 -req -in "$d/apiserver.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 3650 -extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' "$sans") \
		-out "$d/apiserver.crt" 2>/dev/null
	# The API server's client certificate for the kubelet API (logs, exec,
	# port-forward), as kubeadm's apiserver-kubelet-client: bound to
	# system:kubelet-api-admin in bind_roles.
	openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver-kubelet-client" \
		-keyout "$d/kubelet-client.key" -out "$d/kubelet-client.csr" 2>/dev/null
	openssl x509 -req -in "$d/kubelet-client.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-days 3650 -extfile <(printf 'extendedKeyUsage=clientAuth\n') -out "$d/kubelet-client.crt" 2>/dev/null
	openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
	openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

# write_kubeconfig FILE USER TOKEN SERVER
write_kubeconfig() {
	local file=$1 user=$2 token=$3 server=$4
	umask 077
	cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: k8sm-test
  cluster:
    server: $server
    certificate-authority: $RUN_DIR/ca.crt
users:
- name: $user
  user:
    token: $token
contexts:
- name: k8sm-test
  context:
    cluster: k8sm-test
    user: $user
current-context: k8sm-test
EOF
}

# bind_roles: the proxy inside each executor reads EndpointSlices, as
# kube-proxy does, so nodes get the bootstrap role system:node-proxier (the
# Node authorizer lets them read Services but not EndpointSlices). The
# scheduler identity gets k8sm-scheduler's own role (deploy/rbac.yaml). The
# API server's kubelet client certificate gets system:kubelet-api-admin.
bind_roles() {
	local k=("$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN")
	"${k[@]}" create clusterrolebinding k8sm-node-proxier \
		--clusterrole=system:node-proxier --group=system:nodes --dry-run=client -o yaml |
		"${k[@]}" apply -f - >/dev/null ||
		die "cannot bind system:node-proxier to system:nodes"
	"${k[@]}" apply -f "$K8SM_ROOT/deploy/rbac.yaml" >/dev/null || die "cannot create the k8sm-scheduler ClusterRole"
	"${k[@]}" create clusterrolebinding k8sm-scheduler \
		--clusterrole=k8sm-scheduler --user=system:kube-scheduler --dry-run=client -o yaml |
		"${k[@]}" apply -f - >/dev/null ||
		die "cannot bind k8sm-scheduler to system:kube-scheduler"
	"${k[@]}" create clusterrolebinding k8sm-apiserver-kubelet-client \
		--clusterrole=system:kubelet-api-admin --user=kube-apiserver-kubelet-client --dry-run=client -o yaml |
		"${k[@]}" apply -f - >/dev/null ||
		die "cannot bind system:kubelet-api-admin to kube-apiserver-kubelet-client"
}

# start_kcm runs kube-controller-manager (same Kubernetes version) as a
# stock cluster does: every default controller ("*": service accounts and
# their tokens, kube-root-ca.crt, node lifecycle, pod GC, Deployments,
# EndpointSlices, ...), with the service-account signing key, the root CA
# and the cluster signing CA for CSRs.
kcm_up() { pid_alive "$RUN_DIR/kube-controller-manager.pid" kube-controller-manager; }
start_kcm() {
	if ! kcm_up; then
		run_kcm
	fi
	# Pods are admitted only once their namespace's ServiceAccount exists
	# (also checked when kcm was already up: it may have died making it).
	wait_for "ServiceAccount default/default" 60 "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" -n default get serviceaccount default ||
		{ tail -20 "$LOG_DIR/kube-controller-manager.log" >&2; die "kube-controller-manager made no ServiceAccount default/default in 60s (log: $LOG_DIR/kube-controller-manager.log)"; }
}

run_kcm() {
	local pki=$KUBE_DIR/pki
	setsid "$KUBE_BIN/kube-controller-manager" \
		--kubeconfig="$KUBECONFIG_ADMIN" --leader-elect=false \
		--controllers='*' \
		--service-account-private-key-file="$pki/sa.key" --root-ca-file="$pki/ca.crt" \
		--cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
		--secure-port=0 --use-service-account-credentials=false \
		--concurrent-deployment-syncs=5 --concurrent-replicaset-syncs=5 \
		>"$LOG_DIR/kube-controller-manager.log" 2>&1 </dev/null &
	echo $! >"$RUN_DIR/kube-controller-manager.pid"
	sleep 1
	kcm_up || { tail -20 "$LOG_DIR/kube-controller-manager.log" >&2; die "kube-controller-manager exited (log: $LOG_DIR/kube-controller-manager.log)"; }
	log "kube-controller-manager running (pid $(cat "$RUN_DIR/kube-controller-manager.pid"))"
}

start_kube() {
	if apiserver_up; then
		log "kube-apiserver already up ($(grep -m1 server: "$KUBECONFIG_ADMIN" | awk '{print $2}'))"
		bind_roles
		return
	fi
	stop_pidfile "$RUN_DIR/kube-controller-manager.pid" kube-controller-manager
	stop_pidfile "$RUN_DIR/kube-apiserver.pid" kube-apiserver
	stop_pidfile "$RUN_DIR/etcd.pid" etcd
	mkdir -p "$KUBE_DIR" "$RUN_DIR"
	rm -f "$RUN_DIR/kube.stamp"
	# By default the API server listens on the bed bridge's address
	# (lib.sh API_ADDRESS; make up gives its own bridge's).
	ensure_bridge
	gen_certs
	cp "$KUBE_DIR/pki/ca.crt" "$RUN_DIR/ca.crt"

	local etcd_port etcd_peer api_port
	etcd_port=$(free_port)
	etcd_peer=$(free_port)
	api_port=$(free_port)

	# A fresh etcd every time the bed starts: tests never see an old cluster.
	rm -rf "$KUBE_DIR/etcd"
	setsid "$BIN/etcd" --name k8sm-test --data-dir "$KUBE_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
		--initial-cluster "k8sm-test=http://127.0.0.1:$etcd_peer" \
		--unsafe-no-fsync --log-level warn \
		>"$LOG_DIR/etcd.log" 2>&1 </dev/null &
	echo $! >"$RUN_DIR/etcd.pid"
	wait_for etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health" ||
		{ tail -20 "$LOG_DIR/etcd.log" >&2; die "etcd did not become healthy (log: $LOG_DIR/etcd.log)"; }

	# One token per identity: admin, the scheduler, and each test node, so
	# tests run under the Node authorizer with real identities.
	local tokens=$RUN_DIR/tokens.csv admin_token sched_token n
	umask 077
	admin_token=$(openssl rand -hex 16)
	sched_token=$(openssl rand -hex 16)
	{
		echo "$admin_token,admin,admin,\"system:masters\""
		echo "$sched_token,system:kube-scheduler,system:kube-scheduler"
	} >"$tokens"
	declare -A node_tokens
	for n in $TEST_NODES; do
		node_tokens[$n]=$(openssl rand -hex 16)
		echo "${node_tokens[$n]},system:node:$n,system:node:$n,\"system:nodes\"" >>"$tokens"
	done

	setsid "$KUBE_BIN/kube-apiserver" \
		--etcd-servers="http://127.0.0.1:$etcd_port" \
		--bind-address="$API_ADDRESS" --advertise-address="$API_ADDRESS" --secure-port="$api_port" \
		--tls-cert-file="$KUBE_DIR/pki/apiserver.crt" --tls-private-key-file="$KUBE_DIR/pki/apiserver.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$KUBE_DIR/pki/sa.pub" --service-account-signing-key-file="$KUBE_DIR/pki/sa.key" \
		--token-auth-file="$tokens" \
		--authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
		--kubelet-preferred-address-types=InternalIP,Hostname \
		--kubelet-client-certificate="$KUBE_DIR/pki/kubelet-client.crt" --kubelet-client-key="$KUBE_DIR/pki/kubelet-client.key" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		>"$LOG_DIR/kube-apiserver.log" 2>&1 </dev/null &
	echo $! >"$RUN_DIR/kube-apiserver.pid"

	local server=https://$API_ADDRESS:$api_port
	write_kubeconfig "$KUBECONFIG_ADMIN" admin "$admin_token" "$server"
	write_kubeconfig "$RUN_DIR/kubeconfig-scheduler" system:kube-scheduler "$sched_token" "$server"
	for n in $TEST_NODES; do
		write_kubeconfig "$RUN_DIR/kubeconfig-node-$n" "system:node:$n" "${node_tokens[$n]}" "$server"
	done
	if ! wait_for kube-apiserver 90 "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" get --raw /readyz; then
		tail -30 "$LOG_DIR/kube-apiserver.log" >&2
		die "kube-apiserver did not become ready (log: $LOG_DIR/kube-apiserver.log)"
	fi
	bind_roles
	kube_stamp >"$RUN_DIR/kube.stamp"
	cat >"$RUN_DIR/env" <<EOF
# Written by test/env/setup.sh; source it for the test bed's endpoints.
K8SM_TEST_DOCKER_HOST=$DOCKER_HOST_URL
K8SM_TEST_KUBECONFIG=$KUBECONFIG_ADMIN
K8SM_TEST_APISERVER=$server
K8SM_TEST_ETCD=http://127.0.0.1:$etcd_port
K8SM_TEST_NODES="$TEST_NODES"
EOF
	log "kube-apiserver ready at $server (etcd 127.0.0.1:$etcd_port)"
}

main() {
	require_root
	mkdir -p "$RUN_DIR" "$STATE_DIR" "$LOG_DIR"
	chmod 700 "$RUN_DIR"
	local t0
	t0=$(date +%s)
	step packages install_packages
	step dockerd start_dockerd
	step images build_images
	if [ -z "${K8SM_TEST_SKIP_KUBE:-}" ]; then
		step kube-binaries build_kube
		step etcd+apiserver start_kube
		step controller-manager start_kcm
		"$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" get ns >/dev/null ||
			die "kubectl get ns failed against the new API server"
	fi
	print_step_times
	log "test bed ready in $(($(date +%s) - t0))s: docker $DOCKER_HOST_URL, kubeconfig $KUBECONFIG_ADMIN"
}

main "$@"
