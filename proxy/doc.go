// Package proxy turns Kubernetes Services and k8sm-managed EndpointSlices into
// iptables nat rules so that ClusterIP:port reaches one of the pods'
// HostIP:HostPort endpoints.
//
// Contract: rules live only in chains prefixed "K8SM-", are rendered whole by
// a pure function and applied with one iptables-restore --noflush per sync, and
// are removed on clean exit. Imports: ports only.
package proxy
