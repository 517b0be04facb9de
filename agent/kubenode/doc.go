// Package kubenode keeps a k8sm node's presence in the Kubernetes API
// server: the Node object (named after the Mesos agent's hostname, labels
// kubernetes.io/hostname and k8sm.io/attribute-<name>, capacity and
// allocatable from the agent's resources less the executor's), its Lease in
// kube-node-lease (component-helpers' lease controller, owned by the Node),
// the NodeReady heartbeat, status.nodeInfo (SystemInfo: kubelet version
// v1.35.8-k8sm.<version>, OS image, kernel, docker://<version>), and the
// pods' status through the status subresource.
//
// Contracts:
//   - It acts only as the node identity system:node:<name>, so the Node
//     authorizer and NodeRestriction hold: it touches its own Node, Lease and
//     the pods bound to it, nothing else.
//   - An existing Node is only patched (labels, status), never rewritten:
//     its taints and spec belong to the node lifecycle controller and to
//     operators.
//   - PodStatus never blocks; writes are coalesced per pod, at most one per
//     MinPodWrite, always the newest status, with the pod's UID as a
//     precondition. A failed write is retried; a pod gone from the API server
//     is dropped.
//   - Without an API server the executor runs in Mesos-only mode and this
//     package is not used.
//
// Imports: client-go, component-helpers, k8s.io/utils; of k8sm only
// staticpods (the hash annotation a mirror pod carries).
package kubenode
