// Package podspec defines what k8sm accepts as a pod: decoding, validation
// against a security policy, defaulting of limits, and the resource sums that
// become Mesos task resources. All pod arithmetic lives here.
//
// It is pure and imports nothing of k8sm.
package podspec
