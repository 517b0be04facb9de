// Package ports handles host ports: range sets over Mesos "ports" resources
// and the assignment of a pod's host ports from an offer (strategies "fixed"
// and "wildcard"), with the K8SM_PORT_<containerPort> environment it implies.
//
// It is pure: no I/O, no clock. Imports: podspec only.
package ports
