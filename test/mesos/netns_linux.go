package mesos

import "github.com/k8sm/k8sm/test/testenv"

// inNetns runs fn in the network namespace at path ("": the current one):
// see testenv.InNetns.
func inNetns(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	return testenv.InNetns(path, fn)
}
