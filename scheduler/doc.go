// Package scheduler is the k8sm Mesos framework scheduler: it pairs pending
// pods with resource offers, binds them, launches Mesos tasks whose data is the
// bound pod, keeps Node objects for agents, writes HostIP:HostPort
// EndpointSlices, and takes part in leader election.
//
// Imports: podspec, ports, staticpods. Never agent.
package scheduler
