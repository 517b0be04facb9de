// Package e2e is the entry point of k8sm's node conformance test binary,
// e2e.test (built by ../build.sh with go test -c).
//
// It is a trimmed copy of k8s.io/kubernetes v1.35.8's test/e2e/e2e_test.go
// and e2e.go: it registers the framework's common and cluster flags, the
// embedded testing manifests, fixtures and conformance test data, and runs
// the specs through ginkgo; but it links in only the suites k8sm runs,
// test/e2e/common (common/node, common/storage and, by import, common/network)
// and test/e2e/node, and none of the cloud providers (--provider=skeleton).
//
// The package holds no code of its own outside the _test.go files; run.sh
// drives the binary through the ginkgo CLI, and cmd/select and cmd/report
// choose the specs and summarise the results.
package e2e
