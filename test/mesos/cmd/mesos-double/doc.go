// Command mesos-double runs the Mesos test double (package
// github.com/k8sm/k8sm/test/mesos) as a process: a master on --master and
// one agent on --agent, for the demo and for process-level tests. It is a
// test tool, not Mesos: see the package documentation for what it does and
// what it leaves out.
package main
