// Package diag is "k8sm-agent diag": what k8sm has on a node and what is
// wrong with it.
//
// Contracts:
//   - Gather reads every source it is given, each optional: the executors'
//     node API sockets (/executor, /pods, /stats/summary, /proxy), Docker
//     (containers with k8sm's labels and the cgroup driver), the cgroups
//     below the Mesos cgroup root, and iptables-save (the K8SM- chains). A
//     source that cannot be read becomes a problem, never an error: diag
//     works on a node where the executor died or Docker is down.
//   - Evaluate is pure: observations in, a Report with problems out (OK,
//     WARN or FAIL, each with what to do). Only cgroups below k8sm
//     executors' Mesos containers (known from sockets or Docker labels)
//     are considered, never other frameworks'.
//   - Orphan containers are decided by the executors' own definition
//     (pods.Orphans), over every agent and framework on the dockerd: older
//     than the orphan grace, of an executor container that is gone. Gone
//     means nothing listens on its socket (refused, or no file); a socket
//     that does not answer in time is of an executor that may be alive and
//     busy, and nothing of it is reaped.
//   - Reap removes only what Evaluate found orphaned and what carries
//     k8sm's labels or prefix: containers of dead executors, pod cgroups no
//     pod owns, dead executors' sockets, and K8SM- chains when no proxy
//     runs. With dry run it changes nothing.
//   - Report.WriteTable prints aligned sections; WriteJSON the same data.
//
// Imports: agent/executor (the node API's types), agent/pods (the orphan
// definition), agent/runtime, cgroups, proxy (chain names); never the
// scheduler.
package diag
