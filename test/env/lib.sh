# shellcheck shell=bash
# Shared paths and helpers of the k8sm test bed. Sourced by setup.sh and
# teardown.sh; every path the bed owns is defined here, and nothing outside
# these paths (and the bridge, netns and cgroup names below) is ever touched.

K8SM_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
RUN_DIR=${K8SM_TEST_RUN_DIR:-/run/k8sm-test}
STATE_DIR=${K8SM_TEST_STATE_DIR:-/var/lib/k8sm-test}
LOG_DIR=$STATE_DIR/logs
BIN=$K8SM_ROOT/_output/bin

# Docker: our own daemon on our own socket, bridge and data root.
DOCKER_SOCK=$RUN_DIR/docker.sock
DOCKER_HOST_URL=unix://$DOCKER_SOCK
DOCKER_PIDFILE=$RUN_DIR/docker.pid
DOCKER_BRIDGE=${K8SM_TEST_BRIDGE:-k8sm-test0}
DOCKER_BRIDGE_CIDR=${K8SM_TEST_BRIDGE_CIDR:-172.30.255.1/24}
# Debian's client, the same version as the daemon (the machine may have a
# newer client earlier in PATH).
DOCKER=/usr/bin/docker

BUSYBOX_IMAGE=k8sm.local/busybox:test
PAUSE_IMAGE=k8sm.local/pause:test

# Kubernetes control plane, built from the Go module proxy (shared/KUBE.md).
KUBE_VERSION=v1.35.8
KUBE_MINOR=35
ETCD_VERSION=v3.6.16
KUBE_BIN=$BIN/kube-$KUBE_VERSION
ETCD_BIN=$BIN/etcd-$ETCD_VERSION
KUBE_DIR=$STATE_DIR/kube
SERVICE_CIDR=${K8SM_TEST_SERVICE_CIDR:-10.96.0.0/16}
KUBECONFIG_ADMIN=$RUN_DIR/kubeconfig
# Node identities that get a token and kubeconfig (system:node:<name>).
TEST_NODES=${K8SM_TEST_NODES:-"k8sm-node1 k8sm-node2 k8sm-node3 k8sm-sched1 k8sm-sched2 $(hostname | tr '[:upper:]' '[:lower:]')"}

# Prefixes of the throw-away objects tests create; teardown removes leftovers.
NETNS_PREFIX=k8sm-test-
# The API server's address: the bed bridge's own address for tests (the
# default endpoint reconciler refuses a loopback address for the
# "kubernetes" Service); "make up" sets the dev cluster's bridge address so
# that node namespaces reach it.
API_ADDRESS=${K8SM_TEST_API_ADDRESS:-${DOCKER_BRIDGE_CIDR%/*}}
CGROUP_PREFIX=k8sm-test-
# Default cgroup parent of the bed's containers started without one (Docker's
# own default, /docker, may belong to another daemon).
DOCKER_CGROUP_PARENT=/k8sm-test-docker

log() { printf '[k8sm-env] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

require_root() {
	[ "$(id -u)" -eq 0 ] || die "the test bed needs root (cgroups, dockerd, network namespaces): run as root or with sudo"
}

# step NAME CMD...: run one setup step and record how long it took.
STEP_TIMES=()
step() {
	local name=$1
	shift
	local t0 ms
	t0=$(date +%s%3N)
	log "step: $name"
	"$@"
	ms=$(($(date +%s%3N) - t0))
	STEP_TIMES+=("$(printf '%-20s %4d.%01ds' "$name" $((ms / 1000)) $((ms % 1000 / 100)))")
}

print_step_times() {
	log "step times:"
	local l
	for l in "${STEP_TIMES[@]}"; do log "  $l"; done
}

# pid_alive PIDFILE EXE: true when the pidfile names a live process running EXE
# (so a recycled pid is never mistaken for ours).
pid_alive() {
	local pidfile=$1 exe=$2 pid
	[ -s "$pidfile" ] || return 1
	pid=$(cat "$pidfile")
	[ -d "/proc/$pid" ] || return 1
	[ "$(basename "$(readlink "/proc/$pid/exe" 2>/dev/null)")" = "$(basename "$exe")" ]
}

# stop_pidfile PIDFILE EXE [TIMEOUT]: SIGTERM, wait, then SIGKILL.
stop_pidfile() {
	local pidfile=$1 exe=$2 timeout=${3:-20} pid i
	if ! pid_alive "$pidfile" "$exe"; then
		rm -f "$pidfile"
		return 0
	fi
	pid=$(cat "$pidfile")
	log "stopping $(basename "$exe") (pid $pid)"
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < timeout * 10; i++)); do
		[ -d "/proc/$pid" ] || break
		sleep 0.1
	done
	if [ -d "/proc/$pid" ]; then
		log "$(basename "$exe") ignored SIGTERM for ${timeout}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		while [ -d "/proc/$pid" ]; do sleep 0.1; done
	fi
	rm -f "$pidfile"
}

# free_port: a TCP port on loopback nobody listens on.
free_port() {
	local p
	for p in $(shuf -i 20000-29999 -n 100); do
		if [ -z "$(ss -Htln "sport = :$p")" ]; then
			echo "$p"
			return 0
		fi
	done
	die "no free TCP port found in 20000-29999"
}

# wait_for DESC SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
	local desc=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.2
	done
	return 1
}

docker_up() {
	[ -S "$DOCKER_SOCK" ] && pid_alive "$DOCKER_PIDFILE" dockerd &&
		"$DOCKER" -H "$DOCKER_HOST_URL" version >/dev/null 2>&1
}

# go_build_tool MODULE_DIR OUT_DIR LDFLAGS PKG...: build binaries of a tools
# module into OUT_DIR.
go_build_tool() {
	local dir=$1 out=$2 ldflags=$3
	shift 3
	mkdir -p "$out"
	(cd "$dir" && GOFLAGS=-mod=mod go build -ldflags "$ldflags" -o "$out/" "$@")
}

# busybox_tree DIR: Debian's static busybox at DIR/bin/busybox with every
# applet linked beside it, and a world-writable DIR/tmp: the base of the
# bed's and the conformance harness's busybox-based images.
busybox_tree() {
	local d=$1 a
	mkdir -p "$d/bin" "$d/tmp"
	chmod 1777 "$d/tmp"
	cp /bin/busybox "$d/bin/busybox"
	for a in $(/bin/busybox --list); do
		[ "$a" = busybox ] || ln -sf busybox "$d/bin/$a"
	done
}

# build_pause DIR: the repo's static pause program at DIR/pause.
build_pause() {
	(cd "$K8SM_ROOT" && CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$1/pause" ./test/images/pause)
}

# image_hash_is HOST NAME HASH: image NAME in the dockerd at HOST carries
# the label io.k8sm.test.hash=HASH (it was imported from that content).
image_hash_is() {
	[ "$("$DOCKER" -H "$1" image inspect -f '{{index .Config.Labels "io.k8sm.test.hash"}}' "$2" 2>/dev/null || true)" = "$3" ]
}

# import_labelled HOST NAME HASH TAR CHANGE...: docker import TAR (a file,
# or - for standard input) as NAME into the dockerd at HOST, with the
# CHANGEs and the label io.k8sm.test.hash=HASH.
import_labelled() {
	local host=$1 name=$2 hash=$3 tar=$4 c
	shift 4
	local changes=()
	for c in "$@" "LABEL io.k8sm.test.hash=$hash"; do changes+=(--change "$c"); done
	"$DOCKER" -H "$host" import "${changes[@]}" "$tar" "$name" >/dev/null
}

# stamp_of FILE...: a short content hash of the files that define a build.
stamp_of() { cat "$@" | sha256sum | cut -c1-16; }

# unmount_under DIR: every mount point below DIR, deepest first.
unmount_under() {
	local dir=$1 m
	[ -d "$dir" ] || return 0
	awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
		while read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m"
		done
}
