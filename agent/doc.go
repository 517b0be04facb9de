// Package agent is the k8sm executor: the Mesos executor event loop, one pod
// worker goroutine per pod, the Docker runtime adapter, the orphan reaper, and
// node and pod status reporting to the Kubernetes API server.
//
// Contracts (shared/DESIGN.md): every container it creates carries the k8sm
// ownership labels and lives under the pod's cgroup inside the executor's
// Mesos cgroup; every status update is kept until the agent acknowledges it;
// on SHUTDOWN all pods are killed inside the executor shutdown grace period.
//
// Imports: podspec, ports, staticpods, cgroups, proxy. Never scheduler.
// Libraries here take a Config and a *slog.Logger; only cmd/ reads flags and
// environment.
package agent
