// Command launcher is the demo's stand-in for k8sm-scheduler: it subscribes
// to a Mesos master (the mesos-double) as a framework, takes one offer,
// assigns the pod's wildcard host ports from it, launches the pod as a task
// whose executor is k8sm-agent, prints every status update, fetches the
// pod's page at HostIP:HostPort, kills the task, shuts the executor down and
// checks that no container and no cgroup of it is left. Any failure exits 1.
//
// Contracts: it touches only the master it is given and the executor it
// launched; it exits non-zero on any failure, printing what it saw.
//
// Imports: podspec, ports (the pod's host ports from the offer),
// scheduler (NewTask: the TaskInfo as k8sm-scheduler makes it),
// agent/runtime (to check that no container of the pod is left).
package main
