// Package cgroups finds the cgroup Mesos put the executor in, creates one child
// cgroup per pod below it with the pod's limits, reads their usage, and kills
// everything inside them. It supports cgroup v1 (per controller), v2 (unified)
// and hybrid hosts (v1 controllers plus a controller-less cgroup2, treated as
// v1), and is built on github.com/containerd/cgroups/v3.
//
// Contract: nothing of a pod runs outside the executor's cgroup, so Mesos
// accounts and enforces all of it.
//
//   - Self / ParseProcCgroup read /proc/<pid>/cgroup (procRoot injectable);
//     Paths.Executor picks the executor cgroup (memory, else cpu, else
//     freezer on v1; the unified path on v2).
//   - Manager (New takes a Config with an injectable Root, so tests run on a
//     fake cgroupfs in a temp dir; it creates nothing) owns the pod cgroups
//     <executor>/<pod-uid>. Create is idempotent and makes the cgroup in every
//     v1 hierarchy (Docker's --cgroup-parent applies to all of them), with
//     memory limit, CPU shares from the request and CFS quota from the limit
//     (the kubelet's formulas, see Limits), optional pids limit, cpuset
//     inherited from the parent.
//   - PodCgroup.KillAll blocks until no process is left in the pod cgroup or
//     its descendants (v1: freeze, SIGKILL all, thaw; v2: cgroup.kill), or
//     ctx ends. Delete removes the pod cgroup and everything below it in every
//     hierarchy and leaves no directory on success; it refuses while
//     processes remain. Stats and OOMKills read usage and the kernel's OOM
//     kill count (the agent polls OOMKills to learn of OOM kills).
//   - EnterLeaf moves the executor into <executor>/executor on v2 so that its
//     cgroup may delegate controllers to pod cgroups; a no-op on v1.
//   - DockerParent gives the --cgroup-parent for Docker's cgroupfs driver and
//     refuses the systemd driver with ErrSystemdDriver, which says how to
//     reconfigure the daemon.
//
// Methods are safe to call from one goroutine per pod; none caches kernel
// state. Linux only: elsewhere everything returns errors.ErrUnsupported.
//
// Imports: nothing of k8sm.
package cgroups
