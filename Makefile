# k8sm: build, test and test-bed targets.
#
#   make demo       a pod through a Mesos (double) agent and the real executor
#   make test       everything: unit + integration tests on the real test bed
#                   (root; sets the bed up first). The README's test command.
#   make test-unit  unit tests only (no root, no test bed)
#   make env        set up the test bed (test/env/setup.sh); env-down removes it
#   make bench      benchmarks (root)   make lint   golangci-lint + gofmt
#   make fuzz       each fuzz target for FUZZTIME (default 30s)
#   make conformance        upstream Kubernetes node conformance specs on the
#                           dev cluster (root; brings it up if needed)
#   make conformance-smoke  the same, smoke.txt's API-only specs only (CI)

SHELL := /bin/bash
GO ?= go
BIN := _output/bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(BIN)/golangci-lint-$(GOLANGCI_LINT_VERSION)
FUZZTIME ?= 30s

.PHONY: all build test test-unit env env-down bench lint fuzz clean demo up down test-up conformance conformance-smoke

all: build

build:
	$(GO) build -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/k8sm-agent ./cmd/k8sm-scheduler ./test/mesos/cmd/mesos-double

test-unit:
	$(GO) test -count=1 ./...

# Integration tests are behind the "integration" build tag, and everything
# runs under the race detector; K8SM_TEST_STRICT=1
# turns every "component missing" skip into a failure.
test: build env
	$(GO) vet ./...
	$(GO) vet -tags integration ./...
	K8SM_TEST_STRICT=1 bash test/run-tests.sh -race -tags integration ./...
	@# The conformance harness's own tools (spec selection, the report).
	cd test/conformance && $(GO) vet ./cmd/... ./internal/... && $(GO) test -count=1 ./cmd/... ./internal/...

# A pod launched through the Mesos double with the real executor (root).
demo:
	bash test/demo/demo.sh

env:
	bash test/env/setup.sh

env-down:
	bash test/env/teardown.sh

# Benchmarks, the integration ones (real cgroups, dockerd) included: root.
bench: env
	$(GO) test -tags integration -timeout 90m -run '^$$' -bench . -benchmem ./...

lint: $(GOLANGCI_LINT)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt: files above need formatting"; exit 1; }
	$(GOLANGCI_LINT) run ./...
	$(GOLANGCI_LINT) run --build-tags integration ./...
	@# The conformance tools module's own code (not the upstream e2e suite it links).
	cd test/conformance && $(abspath $(GOLANGCI_LINT)) run ./cmd/... ./internal/...

$(GOLANGCI_LINT):
	mkdir -p $(BIN)
	GOBIN=$(abspath $(BIN))/.golangci && GOBIN=$$GOBIN $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) && mv $$GOBIN/golangci-lint $@

# Each fuzz target for FUZZTIME; a short minimize time keeps the fuzzer
# fuzzing (Go's default spends up to 60 s minimizing each new input).
FUZZ_TARGETS := ./podspec:FuzzDecodeValidate ./ports:FuzzAssign ./staticpods:FuzzUnpack
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t#*:} ($${t%%:*}) for $(FUZZTIME)"; \
		$(GO) test $${t%%:*} -run '^$$' -fuzz "^$${t#*:}$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s; \
	done

# clean removes k8sm's own build output. The versioned Kubernetes and etcd
# binaries (_output/bin/kube-*, etcd-*) are kept: they take minutes to build.
clean:
	rm -f $(BIN)/k8sm-agent $(BIN)/k8sm-scheduler $(BIN)/test.log
	rm -rf $(BIN)/golangci-lint-* $(BIN)/.golangci

# A two-node dev cluster in network namespaces (root): make up leaves it
# running and prints what to try; make down removes it and the test bed.
# test-up: up, the smoke test (Deployment -> Service -> proxy), down.
up: build
	bash test/up/up.sh

down:
	bash test/up/down.sh

test-up: build
	bash test/up/up.sh
	bash test/up/smoke.sh || { bash test/up/down.sh; exit 1; }
	bash test/up/down.sh

# Upstream Kubernetes v1.35.8 node conformance (test/e2e/common/node,
# common/storage, node; minus test/conformance/skip.txt) against the dev
# cluster, which it brings up when it is not (root). Report in
# _output/conformance/report.md. Knobs: CONFORMANCE_PROCS (16),
# CONFORMANCE_TIMEOUT (90m), CONFORMANCE_FOCUS=<regexp>.
conformance:
	bash test/conformance/run.sh

# CI's smoke run: only the API-only specs of test/conformance/smoke.txt.
conformance-smoke:
	CONFORMANCE_SMOKE=1 CONFORMANCE_TIMEOUT=10m CONFORMANCE_PROCS=4 bash test/conformance/run.sh
