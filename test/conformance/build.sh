#!/usr/bin/env bash
# Builds the node conformance harness into _output/bin/conformance/:
#   e2e.test          the upstream v1.35.8 specs k8sm runs (go test -c ./e2e)
#   ginkgo            the ginkgo CLI of the same version (runs e2e.test in parallel)
#   agnhost           k8s.io/kubernetes/test/images/agnhost, static (for images.sh)
#   nnp               k8s.io/kubernetes/test/images/nonewprivs, static (images.sh)
#   select, report    this directory's cmd/select and cmd/report
#   conformance.yaml  upstream's list of conformance specs, from the module cache
# Everything comes from the Go module proxy (test/conformance/go.mod). A stamp
# of the inputs skips the build when nothing changed; cold, e2e.test takes
# several minutes on two cores. No root needed.
set -euo pipefail
# shellcheck source=../env/lib.sh
source "$(dirname "$0")/../env/lib.sh"
log() { printf '[k8sm-conformance] %s\n' "$*" >&2; }

MOD=$K8SM_ROOT/test/conformance
OUT=$BIN/conformance
KUBE_LDFLAGS="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$KUBE_MINOR"
AGNHOST_VERSION=2.59
OUTPUTS=(e2e.test ginkgo agnhost nnp select report conformance.yaml)

inputs() {
	(cd "$MOD" && ls go.mod go.sum build.sh e2e/*.go cmd/*/*.go internal/*/*.go | sed "s#^#$MOD/#")
}

current() {
	local f
	for f in "${OUTPUTS[@]}"; do [ -s "$OUT/$f" ] || return 1; done
	[ "$(cat "$OUT/.stamp" 2>/dev/null)" = "$1" ]
}

# timed NAME CMD...: run one build step, log how long it took.
timed() {
	local name=$1 t0 ms
	shift
	t0=$(date +%s%3N)
	log "build: $name"
	"$@"
	ms=$(($(date +%s%3N) - t0))
	log "build: $name done in $((ms / 1000)).$((ms % 1000 / 100))s"
}

gobuild() { (cd "$MOD" && GOFLAGS="${GOFLAGS:-} -mod=mod" go "$@"); }

copy_conformance_yaml() {
	local dir
	dir=$(cd "$MOD" && GOFLAGS="${GOFLAGS:-} -mod=mod" go list -m -f '{{.Dir}}' k8s.io/kubernetes)
	[ -n "$dir" ] || die "go list -m k8s.io/kubernetes: module not downloaded"
	install -m 0644 "$dir/test/conformance/testdata/conformance.yaml" "$OUT/conformance.yaml"
}

main() {
	local stamp t0
	# shellcheck disable=SC2046 # one file name a line, no spaces
	stamp=$( (go version; cat $(inputs)) | sha256sum | cut -c1-16)
	if current "$stamp"; then
		log "build: $OUT current (stamp $stamp)"
		return
	fi
	mkdir -p "$OUT"
	rm -f "$OUT/.stamp"
	t0=$(date +%s)
	timed "modules (go mod download k8s.io/kubernetes)" gobuild mod download k8s.io/kubernetes github.com/onsi/ginkgo/v2
	timed conformance.yaml copy_conformance_yaml
	timed "select, report" gobuild build -o "$OUT/" ./cmd/select ./cmd/report
	timed ginkgo gobuild build -o "$OUT/ginkgo" github.com/onsi/ginkgo/v2/ginkgo
	timed "agnhost $AGNHOST_VERSION (static)" env CGO_ENABLED=0 bash -c \
		'cd "$1" && GOFLAGS="${GOFLAGS:-} -mod=mod" go build -trimpath -ldflags "-s -w -X main.Version=$2" -o "$3" k8s.io/kubernetes/test/images/agnhost' \
		_ "$MOD" "$AGNHOST_VERSION" "$OUT/agnhost"
	timed "nnp (nonewprivs, static)" env CGO_ENABLED=0 bash -c \
		'cd "$1" && GOFLAGS="${GOFLAGS:-} -mod=mod" go build -trimpath -ldflags "-s -w" -o "$2" k8s.io/kubernetes/test/images/nonewprivs' \
		_ "$MOD" "$OUT/nnp"
	timed "e2e.test (go test -c)" gobuild test -c -ldflags "-s -w $KUBE_LDFLAGS" -o "$OUT/e2e.test" ./e2e
	echo "$stamp" >"$OUT/.stamp"
	log "build: $OUT built in $(($(date +%s) - t0))s (stamp $stamp)"
}

main "$@"
