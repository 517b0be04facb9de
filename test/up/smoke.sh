#!/usr/bin/env bash
# The dev cluster end to end (after make up): a Deployment of 2 through the
# scheduler spreads over both nodes, its Service gets k8sm EndpointSlices
# (HostIP:HostPort), and k8sm's proxy in each node namespace reaches it at
# the cluster IP; kubectl exec and logs reach each node's kubelet API.
# Traffic stays inside the namespaces make up created.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
require_root
fail() { log "FAIL: $*"; "${KUBECTL[@]}" get pods,endpointslices -o wide >&2 || true; tail -30 "$LOG_DIR/up-scheduler.log" >&2; exit 1; }

"${KUBECTL[@]}" apply -f "$K8SM_ROOT/examples/hello.yaml" >/dev/null
running() { "${KUBECTL[@]}" get pods -l app=hello -o jsonpath='{range .items[?(@.status.phase=="Running")]}{.spec.nodeName}{"\n"}{end}'; }
for _ in $(seq 180); do [ "$(running | wc -l)" -eq 2 ] && break; sleep 1; done
[ "$(running | wc -l)" -eq 2 ] || fail "the 2 hello pods are not Running"
[ "$(running | sort -u | wc -l)" -eq 2 ] || fail "both replicas on one node: $(running | tr '\n' ' ')"
log "hello pods Running on $(running | sort | tr '\n' ' ')"
ip=$("${KUBECTL[@]}" get svc hello -o jsonpath='{.spec.clusterIP}')
for n in $UP_NODES; do
	ok=
	for _ in $(seq 60); do
		if out=$(ip netns exec "$n" wget -qO- -T 2 "http://$ip/" 2>/dev/null) && [[ $out == *"hello from k8sm"* ]]; then
			ok=1
			break
		fi
		sleep 1
	done
	[ -n "$ok" ] || fail "$n: http://$ip/ (Service hello) did not answer through the proxy"
	log "$n: http://$ip/ answered: $out"
done
for p in $("${KUBECTL[@]}" get pods -l app=hello -o name); do
	out=$("${KUBECTL[@]}" exec "$p" -- cat /www/index.html 2>&1) || fail "$p: kubectl exec through the node's kubelet API: $out"
	[[ $out == *"hello from k8sm"* ]] || fail "$p: kubectl exec printed: $out"
	"${KUBECTL[@]}" logs "$p" >/dev/null || fail "$p: kubectl logs through the node's kubelet API"
done
log "kubectl exec and logs reach both nodes' kubelet API"
slices=$("${KUBECTL[@]}" get endpointslices -l kubernetes.io/service-name=hello,endpointslice.kubernetes.io/managed-by=k8sm-scheduler.k8sm.io -o jsonpath='{range .items[*]}{.endpoints[*].addresses[0]}:{.ports[0].port} {end}')
[[ $slices == *"$UP_SUBNET."* ]] || fail "k8sm EndpointSlices: $slices"
log "k8sm EndpointSlices: $slices"
"${KUBECTL[@]}" delete -f "$K8SM_ROOT/examples/hello.yaml" --wait=false >/dev/null
for _ in $(seq 60); do [ -z "$("${KUBECTL[@]}" get pods -l app=hello -o name)" ] && break; sleep 1; done
[ -z "$("${KUBECTL[@]}" get pods -l app=hello -o name)" ] || fail "the hello pods were not removed"
log "smoke test passed"
