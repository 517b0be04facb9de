// Package testenv gives integration tests the real components of the k8sm
// test bed (test/env/setup.sh): the bed's own dockerd, the local test images,
// the kube-apiserver with per-identity kubeconfigs, fresh network namespaces
// and throw-away "Mesos" parent cgroups.
//
// Each Require*/New* helper skips the test with the reason when the component
// is missing. With K8SM_TEST_STRICT=1 (set by "make test" and so by CI) every
// such skip becomes a failure, so the real tests can never silently not run.
//
// Everything a helper creates is named with the k8sm-test- prefix and removed
// by t.Cleanup; test/env/teardown.sh removes leftovers of killed test runs.
// Helpers never touch objects they did not create.
//
// Imports: nothing of k8sm (every package's tests may import it).
package testenv
