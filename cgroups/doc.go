// Package cgroups finds the cgroup Mesos put the executor in, creates one child
// cgroup per pod below it with the pod's limits, reads their usage, and kills
// everything inside them. It supports cgroup v1 (per controller), v2 (unified)
// and hybrid hosts, and is built on github.com/containerd/cgroups/v3.
//
// Contract: nothing of a pod runs outside the executor's cgroup, so Mesos
// accounts and enforces all of it. Every OS path is rooted at an injectable
// directory so tests can run on a fake cgroupfs.
//
// Imports: nothing of k8sm.
package cgroups
