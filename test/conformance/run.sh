#!/usr/bin/env bash
# make conformance: the upstream Kubernetes v1.35.8 node conformance specs
# (test/e2e/common/node, common/storage, node: 175 specs, minus skip.txt)
# against the two-node dev cluster of "make up".
#
#   1. the dev cluster: brought up with "make up" unless it answers already
#   2. build.sh: e2e.test, ginkgo, agnhost, ... (skipped when current)
#   3. images.sh: the specs' images, imported into each node's dockerd
#   4. nodes: one pinned pause pod per node (an executor registers its Node
#      only once it runs a pod), until every node is Ready (120 s at most)
#   5. cmd/select: the specs to run (CONFORMANCE_SMOKE=1: smoke.txt only;
#      CONFORMANCE_FOCUS=<regexp> narrows further), minus skip.txt
#   6. ginkgo: CONFORMANCE_PROCS (16) processes, CONFORMANCE_TIMEOUT (90m)
#      for the suite, and a hard kill 5 minutes after that
#   7. cmd/report: _output/conformance/report.md; the last line of stdout is
#      "conformance: N passed, N failed, N skipped of M"
#
# Exit status 0 only when no spec failed and every selected spec ran. The
# pinned pods (namespace k8sm-conformance) are deleted on exit; the cluster
# is left up ("make down" removes it). Logs: _output/conformance/e2e.log.
# Root needed.
set -euo pipefail
# shellcheck source=../up/lib.sh
source "$(dirname "$0")/../up/lib.sh"
log() { printf '[k8sm-conformance] %s\n' "$*" >&2; }
require_root

MOD=$K8SM_ROOT/test/conformance
CONF_BIN=$BIN/conformance
OUT=$K8SM_ROOT/_output/conformance
NS=k8sm-conformance
PIN_IMAGE=registry.k8s.io/pause:3.10.1
PROCS=${CONFORMANCE_PROCS:-16}
TIMEOUT=${CONFORMANCE_TIMEOUT:-90m}
SMOKE=${CONFORMANCE_SMOKE:-}
FOCUS=${CONFORMANCE_FOCUS:-}
NODE_WAIT=120

# seconds DURATION: a ginkgo/Go duration made of h, m and s parts ("90m",
# "1h30m", "600s") in seconds.
seconds() {
	local d=$1 total=0
	[[ $d =~ ^([0-9]+[hms])+$ ]] || die "CONFORMANCE_TIMEOUT=$1: want a duration such as 90m, 1h30m or 600s"
	while [[ $d =~ ^([0-9]+)([hms])(.*)$ ]]; do
		case ${BASH_REMATCH[2]} in
		h) total=$((total + 10#${BASH_REMATCH[1]} * 3600)) ;;
		m) total=$((total + 10#${BASH_REMATCH[1]} * 60)) ;;
		s) total=$((total + 10#${BASH_REMATCH[1]})) ;;
		esac
		d=${BASH_REMATCH[3]}
	done
	echo "$total"
}

cluster_up() {
	[ -x "$BIN/kubectl" ] && [ -s "$KUBECONFIG_ADMIN" ] &&
		timeout 10 "${KUBECTL[@]}" get --raw /readyz >/dev/null 2>&1 &&
		pid_alive "$UP_RUN/mesos-double.pid" mesos-double &&
		pid_alive "$UP_RUN/k8sm-scheduler.pid" k8sm-scheduler
}

ensure_cluster() {
	if cluster_up; then
		log "dev cluster up (API /readyz, mesos-double, k8sm-scheduler)"
		return
	fi
	log "dev cluster not up: make up"
	make -C "$K8SM_ROOT" up >&2
	cluster_up || die "the dev cluster is still not up after make up (logs: $LOG_DIR/up-*.log)"
}

# pin_pods: one pause pod per node, pinned by kubernetes.io/hostname.
pin_pods() {
	local n
	if [ "$(timeout 10 "${KUBECTL[@]}" get namespace "$NS" -o jsonpath='{.status.phase}' 2>/dev/null)" = Terminating ]; then
		log "namespace $NS of an earlier run is terminating: waiting (60 s at most)"
		timeout 70 "${KUBECTL[@]}" wait --for=delete "namespace/$NS" --timeout=60s >&2 || true
	fi
	{
		printf 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: %s\n' "$NS"
		for n in $UP_NODES; do
			cat <<YAML
---
apiVersion: v1
kind: Pod
metadata:
  name: pin-$n
  namespace: $NS
  labels:
    app.kubernetes.io/name: k8sm-conformance-pin
spec:
  nodeSelector:
    kubernetes.io/hostname: $n
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 1
  containers:
  - name: pause
    image: $PIN_IMAGE
YAML
		done
	} | timeout 60 "${KUBECTL[@]}" apply -f - >&2
}

unpin_pods() {
	log "deleting namespace $NS (the pinned pods)"
	timeout 90 "${KUBECTL[@]}" delete namespace "$NS" --ignore-not-found --timeout=60s >&2 ||
		log "WARNING: namespace $NS not deleted within 60 s"
}

# ready_nodes: the names of the Nodes whose Ready condition is True.
ready_nodes() {
	timeout 10 "${KUBECTL[@]}" get nodes \
		-o jsonpath='{range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null |
		sed -n 's/=True$//p'
}

all_nodes_ready() {
	local ready n
	ready=$(ready_nodes)
	for n in $UP_NODES; do
		grep -qx "$n" <<<"$ready" || return 1
	done
}

register_nodes() {
	pin_pods
	local i
	for ((i = 0; i < NODE_WAIT; i += 2)); do
		all_nodes_ready && break
		sleep 2
	done
	if ! all_nodes_ready; then
		timeout 10 "${KUBECTL[@]}" get nodes -o wide >&2 || true
		timeout 10 "${KUBECTL[@]}" -n "$NS" get pods -o wide >&2 || true
		die "nodes $UP_NODES not all Ready within ${NODE_WAIT}s (logs: $LOG_DIR/up-*.log)"
	fi
	log "nodes Ready: $(ready_nodes | tr '\n' ' ')"
}

select_specs() {
	local args=(-conformance "$CONF_BIN/conformance.yaml")
	[ -z "$SMOKE" ] || args+=(-only "$MOD/smoke.txt")
	[ -z "$FOCUS" ] || args+=(-focus "$FOCUS")
	"$CONF_BIN/select" "${args[@]}" -files >"$OUT/selection.tsv"
	[ -s "$OUT/selection.tsv" ] || die "no spec selected (CONFORMANCE_FOCUS=$FOCUS)"
	"$CONF_BIN/select" "${args[@]}" -skip "$MOD/skip.txt" >"$OUT/run.txt"
	if [ -s "$OUT/run.txt" ]; then
		"$CONF_BIN/select" "${args[@]}" -skip "$MOD/skip.txt" -regexp >"$OUT/focus.txt"
	else
		: >"$OUT/focus.txt"
	fi
	log "specs: $(wc -l <"$OUT/selection.tsv") selected, $(wc -l <"$OUT/run.txt") to run (lists in $OUT)"
}

run_ginkgo() {
	if [ ! -s "$OUT/focus.txt" ]; then
		log "ginkgo: every selected spec is in skip.txt, nothing to run"
		return
	fi
	local secs hard rc
	secs=$(seconds "$TIMEOUT")
	hard=$((secs + 300))
	log "ginkgo: $(wc -l <"$OUT/run.txt") specs, $PROCS processes, suite timeout $TIMEOUT (killed after ${hard}s); output in $OUT/e2e.log"
	set +e
	timeout --kill-after=30 "$hard" "$CONF_BIN/ginkgo" \
		--procs="$PROCS" --timeout="$TIMEOUT" --no-color \
		--junit-report=junit.xml --output-dir="$OUT" \
		--focus="$(cat "$OUT/focus.txt")" \
		"$CONF_BIN/e2e.test" -- \
		--kubeconfig="$KUBECONFIG_ADMIN" --provider=skeleton --report-dir="$OUT" \
		--kubectl-path="$BIN/kubectl" --e2e-output-dir="$OUT" 2>&1 | tee "$OUT/e2e.log" >&2
	rc=${PIPESTATUS[0]}
	set -e
	case $rc in
	0) log "ginkgo: suite passed" ;;
	124 | 137) log "ginkgo: killed after ${hard}s (suite timeout $TIMEOUT + 5 min)" ;;
	*) log "ginkgo: exit status $rc" ;;
	esac
}

main() {
	local t0
	t0=$(date +%s)
	[[ $PROCS =~ ^[1-9][0-9]*$ ]] || die "CONFORMANCE_PROCS=$PROCS: want a positive number"
	seconds "$TIMEOUT" >/dev/null
	mkdir -p "$OUT"
	rm -f "$OUT"/junit.xml "$OUT"/report.md "$OUT"/e2e.log

	step cluster ensure_cluster
	step build bash "$MOD/build.sh"
	local urls=() n
	for n in $UP_NODES; do urls+=("$(node_docker "$n")"); done
	step images bash "$MOD/images.sh" "${urls[@]}"
	if [ -s "$OUT/images-missing.txt" ]; then
		log "WARNING: images missing (their specs will fail):"
		sed 's/^/  /' "$OUT/images-missing.txt" >&2
	fi
	trap unpin_pods EXIT
	step nodes register_nodes
	step select select_specs
	step ginkgo run_ginkgo

	log "report"
	local rc=0
	"$CONF_BIN/report" -selection "$OUT/selection.tsv" -junit "$OUT/junit.xml" \
		-skip "$MOD/skip.txt" -out "$OUT/report.md" >"$OUT/verdict.txt" || rc=$?
	unpin_pods
	trap - EXIT
	print_step_times
	log "done in $(($(date +%s) - t0))s; report: $OUT/report.md"
	cat "$OUT/verdict.txt"
	return "$rc"
}

main "$@"
