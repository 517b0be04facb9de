// Package ports handles host ports: range sets over Mesos "ports" resources
// and the assignment of a pod's host ports from an offer (strategies "fixed"
// and "wildcard"), and EnvName, the K8SM_PORT_<containerPort> variable that
// the executor (agent/pods, the one place that sets it) gives containers.
//
// Contracts:
//   - Assign never modifies its input pod or set: it returns a copy of the
//     pod with every hostPort final, the resources consumed (keeping each
//     offered pool's role and reservation) and the set that remains.
//   - A host port is consumed once per number, whatever the protocols that
//     declare it; a declared hostPort that is not offered, or declared twice
//     for one protocol, is an error naming the pod, the port and the ranges.
//   - With "wildcard", each hostPort 0 takes the lowest free offered port, so
//     the same pod and offer always give the same assignment.
//   - A pod's declared host ports are podspec.HostPorts (the one walk of
//     them); Wildcards counts the ports "wildcard" adds.
//   - FormatRanges (and FormatRange for one range) is the one formatting of
//     port ranges: "[31000-31005,31010]".
//
// It is pure: no I/O, no clock. Imports: podspec only.
package ports
