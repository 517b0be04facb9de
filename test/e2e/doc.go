// Package e2e holds the end-to-end suites: the real k8sm-agent binary run
// as a Mesos executor by the Mesos test double (test/mesos), on the test
// bed's dockerd and the machine's real cgroups. The tests build the binary
// themselves and are behind the integration build tag; they need root.
package e2e
