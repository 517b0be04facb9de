// Command k8sm-agent is the node side of k8sm. Its subcommands:
//
//	executor  the custom Mesos executor that runs pods as Docker containers
//	diag      the operator's view of what k8sm has on this node
//	proxy     the Service proxy alone, or --cleanup of its iptables rules
//	version   print the build version
//
// Only this package reads flags and environment; it turns them into the Config
// structs of the libraries and wires the real adapters.
package main
