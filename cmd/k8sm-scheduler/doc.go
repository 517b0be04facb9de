// Command k8sm-scheduler is the k8sm Mesos framework scheduler: it pairs
// pending Kubernetes pods with Mesos resource offers and launches them as
// tasks run by "k8sm-agent executor".
//
// Only this package reads flags and environment.
package main
